//! The one door to tenant data.
//!
//! [`Gate`] holds the store and the token verifier; its only way in is [`Gate::admit`], which
//! verifies a bearer token and returns a [`DataHandle`] bound to one tenant and one viewer (with
//! the viewer's grant snapshot). Every read and write of tenant data is a method of that handle
//! (writes open a [`UnitOfWork`](crate::core::uow::UnitOfWork) from it), so a resolver that holds a
//! handle can reach exactly what its viewer may, and a resolver cannot hold anything else: the
//! raw [`Store`], the [`SystemHandle`](crate::SystemHandle), migrations and statement recording
//! are not reachable from a handle, and `Identity`/`Viewer` have no public constructor.

use crate::access::token::{AuthError, KeyConfigError, TokenSettings, TokenVerifier};
use crate::access::viewer::{Identity, Viewer};
use crate::error::StoreError;
use crate::{Store, StoreMetrics};
use sea_orm::DatabaseConnection;
use std::sync::Arc;

/// A request's capability: one tenant, one viewer. Cheap to clone (the request's loaders hold a
/// clone). Deliberately has no getter for its connection or store.
#[derive(Clone)]
pub struct DataHandle {
    pub(crate) db: DatabaseConnection,
    pub(crate) viewer: Arc<Viewer>,
    /// Carried into the events this handle's writes emit.
    pub(crate) request_id: Option<Arc<str>>,
    /// Notified after a commit that wrote events (see `Store::outbox`).
    pub(crate) outbox: Arc<crate::events::OutboxSignal>,
    /// The process-wide metering buffer, and this operation's meter (`crate::usage`).
    pub(crate) usage: Arc<crate::usage::UsageBook>,
    pub(crate) meter: Arc<crate::usage::Meter>,
    /// The keys of the suppression list (the store's, see `Store::use_link_keys`).
    pub(crate) link_keys: crate::consent::links::SharedLinkKeys,
}

impl DataHandle {
    pub(crate) fn new(
        db: DatabaseConnection,
        viewer: Viewer,
        request_id: Option<&str>,
        outbox: Arc<crate::events::OutboxSignal>,
        usage: Arc<crate::usage::UsageBook>,
        link_keys: crate::consent::links::SharedLinkKeys,
    ) -> DataHandle {
        DataHandle {
            db,
            viewer: Arc::new(viewer),
            request_id: request_id.map(Arc::from),
            outbox,
            usage,
            meter: Arc::default(),
            link_keys,
        }
    }

    /// Who this handle acts for.
    pub fn viewer(&self) -> &Viewer {
        &self.viewer
    }
}

impl std::fmt::Debug for DataHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataHandle").field("viewer", &self.viewer).field("request_id", &self.request_id).finish()
    }
}

/// Why [`Gate::admit`] refused a request.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The token is missing, malformed, expired, wrongly signed or carries unusable claims. The
    /// reason is for the server's log only; clients see `UNAUTHENTICATED`.
    #[error("token refused: {0}")]
    Unauthenticated(String),
    /// The token is fine but resolving the viewer failed (database down, …): `INTERNAL`.
    #[error("resolving the viewer failed: {0}")]
    Internal(StoreError),
}

impl From<AuthError> for Refused {
    fn from(e: AuthError) -> Self {
        Refused::Unauthenticated(e.to_string())
    }
}

/// A token the gate has admitted for a long-lived connection. [`Admission::renew`] admits that
/// same token again — verified again (expiry, signature, claims) and its viewer resolved again
/// (grants) — so a connection acts on what its token allows *now* and stops when the token has
/// expired. It admits no other token: a holder can do nothing the token's own requests could not.
#[derive(Clone)]
pub struct Admission {
    gate: Arc<Gate>,
    token: Arc<secrecy::SecretString>,
    request_id: Option<Arc<str>>,
}

impl Admission {
    /// A fresh handle for the admitted token (see [`Gate::admit`]).
    pub async fn renew(&self) -> Result<DataHandle, Refused> {
        use secrecy::ExposeSecret;
        self.gate.admit(self.token.expose_secret(), self.request_id.as_deref()).await
    }
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission").field("token", &"[REDACTED]").field("request_id", &self.request_id).finish()
    }
}

/// The token verifier in front of the store. The HTTP layer keeps it in its own state; it is
/// never put into the GraphQL schema or request data.
pub struct Gate {
    store: Store,
    verifier: TokenVerifier,
}

impl Gate {
    pub fn new(store: Store, tokens: &TokenSettings) -> Result<Gate, KeyConfigError> {
        Ok(Gate { store, verifier: TokenVerifier::from_settings(tokens)? })
    }

    /// Verifies `token` and resolves its viewer (creating tenant and user just in time).
    pub async fn admit(&self, token: &str, request_id: Option<&str>) -> Result<DataHandle, Refused> {
        let identity = self.verifier.verify(token)?;
        self.resolve(&identity, request_id).await
    }

    /// [`Gate::admit`] for a long-lived connection (a GraphQL subscription over WebSocket): the
    /// handle, and an [`Admission`] that admits the same token again whenever the connection
    /// acts later.
    pub async fn admit_renewable(
        self: &Arc<Self>,
        token: &str,
        request_id: Option<&str>,
    ) -> Result<(DataHandle, Admission), Refused> {
        let handle = self.admit(token, request_id).await?;
        let admission = Admission {
            gate: self.clone(),
            token: Arc::new(secrecy::SecretString::from(token.to_owned())),
            request_id: request_id.map(Arc::from),
        };
        Ok((handle, admission))
    }

    async fn resolve(&self, identity: &Identity, request_id: Option<&str>) -> Result<DataHandle, Refused> {
        match self.store.resolve_viewer(identity).await {
            Ok(v) => Ok(DataHandle::new(
                self.store.db.clone(),
                v,
                request_id,
                self.store.outbox.clone(),
                self.store.usage.clone(),
                self.store.link_keys.clone(),
            )),
            Err(StoreError::Invalid(e)) => Err(Refused::Unauthenticated(e.to_string())),
            Err(e) => Err(Refused::Internal(e)),
        }
    }

    /// Ready = the database answers and no migration is pending.
    pub async fn is_ready(&self) -> bool {
        self.store.is_ready().await
    }

    pub fn metrics(&self) -> &StoreMetrics {
        self.store.metrics()
    }

    pub fn backend_name(&self) -> &'static str {
        self.store.backend_name()
    }

    /// (open connections, idle connections) of the pool.
    pub fn pool_stats(&self) -> (u32, u32) {
        self.store.pool_stats()
    }
}
