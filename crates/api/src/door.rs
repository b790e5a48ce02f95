//! **One door**: what API code can and cannot do with tenant data, proven by the compiler.
//!
//! Each `compile_fail` example below is code a resolver (or any other code in this crate) might
//! be tempted to write; `cargo test` fails if any of them ever compiles. Each has a twin that
//! does compile, so the failure is known to come from the forbidden part, not from a typo.
//!
//! A verified identity cannot be made from claims — only the token verifier makes one:
//!
//! ```compile_fail
//! let roles = cohort_domain::Roles::from_claims(["admin"]);
//! let _forged = cohort_store::Identity {
//!     tenant_key: "victim".into(), subject: "me".into(), roles, name: None, email: None,
//! };
//! ```
//! ```compile_fail
//! let roles = cohort_domain::Roles::from_claims(["admin"]);
//! let _forged = cohort_store::Identity::new("victim".into(), "me".into(), roles, None, None);
//! ```
//! ```
//! // Reading a verified identity is fine.
//! fn tenant(id: &cohort_store::Identity) -> &str { id.tenant_key() }
//! ```
//!
//! Nor can a viewer, the capability inside every handle:
//!
//! ```compile_fail
//! fn forge(v: &cohort_store::Viewer) -> cohort_store::Viewer {
//!     cohort_store::Viewer { roles: cohort_domain::Roles::from_claims(["admin"]), ..v.clone() }
//! }
//! ```
//! ```
//! fn is_admin(v: &cohort_store::Viewer) -> bool { v.is_admin() }
//! ```
//!
//! A resolver holds the request's [`cohort_store::DataHandle`]; from it there is no way to the
//! system handle, the raw store or its connection, nor to a transaction that skips the unit of
//! work:
//!
//! ```compile_fail
//! async fn resolver(ctx: &async_graphql::Context<'_>) {
//!     let Ok(h) = ctx.data::<cohort_store::DataHandle>() else { return };
//!     let _everything = h.system();
//! }
//! ```
//! ```compile_fail
//! async fn resolver(ctx: &async_graphql::Context<'_>) {
//!     let Ok(h) = ctx.data::<cohort_store::DataHandle>() else { return };
//!     let _raw = h.store();
//! }
//! ```
//! ```compile_fail
//! async fn resolver(ctx: &async_graphql::Context<'_>) {
//!     let Ok(h) = ctx.data::<cohort_store::DataHandle>() else { return };
//!     let _conn = &h.db;
//! }
//! ```
//! ```compile_fail
//! async fn resolver(ctx: &async_graphql::Context<'_>) {
//!     let Ok(h) = ctx.data::<cohort_store::DataHandle>() else { return };
//!     let _txn = h.begin().await;
//! }
//! ```
//! ```
//! async fn resolver(ctx: &async_graphql::Context<'_>) {
//!     let Ok(h) = ctx.data::<cohort_store::DataHandle>() else { return };
//!     let _me = h.viewer().user_id();
//! }
//! ```
//!
//! The HTTP layer's gate keeps its store to itself:
//!
//! ```compile_fail
//! fn leak(g: &cohort_store::Gate) -> cohort_store::SystemHandle { g.store.system() }
//! ```
//! ```
//! async fn ready(g: &cohort_store::Gate) -> bool { g.is_ready().await }
//! ```
//!
//! A subscription's WebSocket keeps an admission that re-admits its own token for each batch
//! of events; the gate alone makes one, from a token it has verified:
//!
//! ```compile_fail
//! fn forge(gate: std::sync::Arc<cohort_store::Gate>) -> cohort_store::Admission {
//!     cohort_store::Admission { gate, token: std::sync::Arc::new("x".to_owned().into()), request_id: None }
//! }
//! ```
//! ```
//! async fn renew(a: &cohort_store::Admission) -> bool { a.renew().await.is_ok() }
//! ```
//!
//! And the schema itself is built without any store: [`crate::graphql::build_schema`] takes
//! only limits, so nothing a resolver can read from the schema data leads to the database.
