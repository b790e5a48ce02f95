//! The GraphQL schema: root types, per-request context, and the guards that bound every request
//! (depth, complexity, aliases, operations) before any resolver runs.

//! Layout: one directory per area, the same names as in the store — `access`, `contacts`,
//! `groups`, `pricing`, `orders`, `routing`, `sla`, `sequences`, `consent`, `webhooks`, `events`, `audit` — each with `object` (GraphQL types), `query` and
//! `mutation`; `relay` (page info, connections), `node` (the Node interface), `ids` (global ids)
//! and `loaders` (per-request batching) are shared. Query and mutation modules never import each
//! other; object types reference each other where the schema graph does (a contact's memberships
//! name groups, a group's members are contacts).

pub mod access;
pub mod audit;
pub mod consent;
pub mod contacts;
pub mod events;
pub mod external;
pub mod groups;
pub mod ids;
pub mod loaders;
pub mod node;
pub mod orders;
pub mod pricing;
pub mod relay;
pub mod routing;
pub mod sequences;
pub mod sla;
pub mod sync;
pub mod usage;
pub mod webhooks;

use crate::config::Limits;
use crate::error::ApiError;
use async_graphql::dataloader::DataLoader;
use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql::{Context, Schema, ServerError, ServerResult, ValidationResult, Variables};
use cohort_store::{DataHandle, Viewer};
use loaders::Loaders;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The query root: one object per area, merged.
#[derive(async_graphql::MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    access::AccessQuery,
    node::NodeQuery,
    contacts::ContactQuery,
    groups::GroupQuery,
    pricing::PricingQuery,
    external::ExternalIdQuery,
    sync::SyncQuery,
    orders::OrderQuery,
    events::EventQuery,
    routing::RoutingQuery,
    sla::SlaQuery,
    sequences::SequenceQuery,
    consent::ConsentQuery,
    webhooks::WebhookQuery,
    usage::UsageQuery,
    audit::AuditQuery,
);

/// The mutation root: one object per area, merged.
#[derive(async_graphql::MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    access::AccessMutation,
    contacts::ContactMutation,
    groups::GroupMutation,
    pricing::PricingMutation,
    external::ExternalIdMutation,
    sync::SyncMutation,
    orders::OrderMutation,
    routing::RoutingMutation,
    sla::SlaMutation,
    sequences::SequenceMutation,
    consent::ConsentMutation,
    webhooks::WebhookMutation,
    usage::UsageMutation,
);

/// The subscription root: over WebSocket only (`graphql-transport-ws` on `/graphql`).
#[derive(async_graphql::MergedSubscription, Default)]
#[graphql(name = "Subscription")]
pub struct SubscriptionRoot(events::EventSubscription);

pub type AppSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// The tenant key (`tid`) of the request's viewer.
pub struct TenantKey(pub String);

/// Set when a request fails before execution (parse, validation, limits): such a response has no
/// `data` and, for `application/graphql-response+json`, status 400.
#[derive(Clone, Default)]
pub struct RequestFailed(pub Arc<AtomicBool>);

impl RequestFailed {
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// What the parsed document's operations are (name, whether a mutation, root field names): the
/// HTTP layer settles data usage per operation with them, without parsing the document again.
#[derive(Clone, Default)]
pub struct OperationShapes(pub Arc<std::sync::Mutex<Vec<OperationShape>>>);

#[derive(Clone, Debug)]
pub struct OperationShape {
    pub name: Option<String>,
    /// `query`, `mutation` or `subscription`.
    pub kind: &'static str,
    pub is_mutation: bool,
    pub root_fields: Vec<String>,
}

impl OperationShapes {
    /// The operation a request runs: the only one, or the one named.
    pub fn chosen(&self, name: Option<&str>) -> Option<OperationShape> {
        let ops = self.0.lock().ok()?;
        if ops.len() == 1 {
            return ops.first().cloned();
        }
        ops.iter().find(|o| o.name.as_deref() == name && name.is_some()).cloned()
    }
}

fn root_fields(doc: &ExecutableDocument, set: &SelectionSet, out: &mut Vec<String>, depth: usize) {
    if depth > 8 {
        return;
    }
    for s in &set.items {
        match &s.node {
            Selection::Field(f) => {
                let name = f.node.name.node.as_str();
                if !name.starts_with("__") && !out.iter().any(|o| o == name) {
                    out.push(name.to_owned());
                }
            }
            Selection::InlineFragment(f) => root_fields(doc, &f.node.selection_set.node, out, depth + 1),
            Selection::FragmentSpread(f) => {
                if let Some(fr) = doc.fragments.get(f.node.fragment_name.node.as_str()) {
                    root_fields(doc, &fr.node.selection_set.node, out, depth + 1);
                }
            }
        }
    }
}

fn record_shapes(ctx: &ExtensionContext<'_>, doc: &ExecutableDocument) {
    let Some(slot) = ctx.data_opt::<OperationShapes>() else { return };
    let shapes: Vec<OperationShape> = doc
        .operations
        .iter()
        .map(|(name, op)| {
            let mut fields = vec![];
            root_fields(doc, &op.node.selection_set.node, &mut fields, 0);
            OperationShape {
                name: name.map(|n| n.to_string()),
                kind: match op.node.ty {
                    OperationType::Query => "query",
                    OperationType::Mutation => "mutation",
                    OperationType::Subscription => "subscription",
                },
                is_mutation: op.node.ty == OperationType::Mutation,
                root_fields: fields,
            }
        })
        .collect();
    if let Ok(mut s) = slot.0.lock() {
        *s = shapes;
    }
}

/// The request's data handle: the only way a resolver reaches tenant data. Absent for anonymous
/// requests, which therefore get `UNAUTHENTICATED` from any field that needs data.
pub(crate) fn data<'a>(ctx: &Context<'a>) -> Result<&'a DataHandle, ApiError> {
    ctx.data_opt::<DataHandle>().ok_or(ApiError::Unauthenticated)
}

pub(crate) fn viewer<'a>(ctx: &Context<'a>) -> Result<&'a Viewer, ApiError> {
    Ok(data(ctx)?.viewer())
}

/// The per-request loaders. Their cache lives as long as the request, so a page prefetched with
/// `load_many` is served from memory when each row asks for its part.
pub type RequestLoader = DataLoader<Loaders, async_graphql::dataloader::HashMapCache>;

pub(crate) fn loader<'a>(ctx: &Context<'a>) -> Result<&'a RequestLoader, ApiError> {
    viewer(ctx)?;
    ctx.data_opt::<RequestLoader>().ok_or_else(|| ApiError::Internal("loaders missing from request".into()))
}

/// `MaybeUndefined` as a patch value: absent = leave as is, `null` = clear, a value = set.
pub(crate) fn patch<T>(m: async_graphql::MaybeUndefined<T>) -> Option<Option<T>> {
    match m {
        async_graphql::MaybeUndefined::Undefined => None,
        async_graphql::MaybeUndefined::Null => Some(None),
        async_graphql::MaybeUndefined::Value(v) => Some(Some(v)),
    }
}

pub(crate) fn tenant_key<'a>(ctx: &Context<'a>) -> Result<&'a str, ApiError> {
    ctx.data_opt::<TenantKey>().map(|t| t.0.as_str()).ok_or(ApiError::Unauthenticated)
}

/// Builds the schema. It holds no data of its own: tenant data arrives per request, as the
/// request's [`DataHandle`] (the store itself is never put into the schema).
pub fn build_schema(limits: &Limits, introspection: bool) -> AppSchema {
    // Depth is checked by `RequestGuard` (not async-graphql's `limit_depth`), so that the
    // standard introspection query passes without loosening the limit for ordinary queries.
    // Complexity, too, is checked by `RequestGuard`: its refusal names the cost and the limit.
    let mut b = Schema::build(QueryRoot::default(), MutationRoot::default(), SubscriptionRoot::default())
        .limit_recursive_depth(64)
        .limit_directives(10)
        .disable_suggestions()
        // Before (around) the guard: its checks run first, and it does not recode these refusals.
        .extension(crate::ws::WebSocketRules)
        .extension(RequestGuard {
            max_complexity: limits.max_complexity,
            max_aliases: limits.max_aliases,
            max_operations: limits.max_batch.max(1) * 2,
            max_depth: limits.max_depth,
        });
    if !introspection {
        b = b.disable_introspection();
    }
    b.finish()
}

/// The SDL, as committed in `schema.graphql`.
pub fn sdl() -> String {
    build_schema(&Limits::default(), true).sdl()
}

/// Whether a GraphQL document has a `\uXXXX` escape naming a UTF-16 surrogate
/// (`\uD800`–`\uDFFF`) in a string literal. Such an escape is no character, and the parser
/// (async-graphql 7.2) panics on it, so documents are checked before they are parsed. Comments
/// and block strings (which have no `\u` escapes) are skipped.
pub(crate) fn has_surrogate_escape(doc: &str) -> bool {
    let b = doc.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'#' {
            while i < b.len() && b[i] != b'\n' && b[i] != b'\r' {
                i += 1;
            }
        } else if b[i..].starts_with(b"\"\"\"") {
            i += 3;
            while i < b.len() && !b[i..].starts_with(b"\"\"\"") {
                i += if b[i..].starts_with(b"\\\"\"\"") { 4 } else { 1 };
            }
            i += 3;
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && !matches!(b[i], b'"' | b'\n' | b'\r') {
                if b[i] == b'\\' {
                    let hex = b
                        .get(i + 2..i + 6)
                        .filter(|h| b.get(i + 1) == Some(&b'u') && h.iter().all(u8::is_ascii_hexdigit));
                    let code =
                        hex.and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u32::from_str_radix(h, 16).ok());
                    if code.is_some_and(|c| (0xD800..=0xDFFF).contains(&c)) {
                        return true;
                    }
                    i += 2;
                } else {
                    i += 1;
                }
            }
            i += 1;
        } else {
            i += 1;
        }
    }
    false
}

/// Refuses oversized documents right after parsing (before validation, whose cost grows with the
/// document) and flags request-level failures for the HTTP layer.
struct RequestGuard {
    max_complexity: usize,
    max_aliases: usize,
    max_operations: usize,
    max_depth: usize,
}

impl ExtensionFactory for RequestGuard {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RequestGuardExt {
            max_complexity: self.max_complexity,
            max_aliases: self.max_aliases,
            max_operations: self.max_operations,
            max_depth: self.max_depth,
        })
    }
}

struct RequestGuardExt {
    max_complexity: usize,
    max_aliases: usize,
    max_operations: usize,
    max_depth: usize,
}

/// Introspection fields that return lists: nesting them multiplies the answer (types × fields ×
/// fields …), so inside `__schema` / `__type` at most [`MAX_INTROSPECTION_LISTS`] may nest — the
/// standard introspection query nests three (`types → fields → args`).
const INTROSPECTION_LISTS: &[&str] =
    &["types", "fields", "inputFields", "interfaces", "possibleTypes", "enumValues", "args", "directives"];
const MAX_INTROSPECTION_LISTS: usize = 3;
/// `ofType` is a chain (one type each), so its nesting costs nothing to answer; graphql-js asks
/// for nine levels (a `[[T!]!]!`-style wrapper chain), tools for up to a few more.
const MAX_OF_TYPE: usize = 16;

/// The depth rule. Ordinary fields count one level each, as async-graphql's `limit_depth` did.
/// Inside introspection, what can make an answer large is bounded instead: nested list fields
/// and the `ofType` chain — so `getIntrospectionQuery()` (graphql-js), which is 15 levels deep,
/// passes at the default depth of 12, and `fields { type { fields { type { fields … } } } }`
/// does not.
struct DepthCheck<'a> {
    doc: &'a ExecutableDocument,
    fragments: Vec<&'a str>,
}

impl<'a> DepthCheck<'a> {
    /// The deepest ordinary nesting in `set` (introspection subtrees checked on the way).
    fn ordinary(&mut self, set: &'a SelectionSet) -> Result<usize, ()> {
        let mut deepest = 0;
        for s in &set.items {
            let d = match &s.node {
                Selection::Field(f) => {
                    let name = f.node.name.node.as_str();
                    if name == "__schema" || name == "__type" {
                        self.introspection(&f.node.selection_set.node, 0, 0)?;
                        1
                    } else {
                        1 + self.ordinary(&f.node.selection_set.node)?
                    }
                }
                Selection::InlineFragment(f) => self.ordinary(&f.node.selection_set.node)?,
                Selection::FragmentSpread(f) => match self.spread(f.node.fragment_name.node.as_str()) {
                    Some(set) => {
                        let d = self.ordinary(set)?;
                        self.fragments.pop();
                        d
                    }
                    None => 0,
                },
            };
            deepest = deepest.max(d);
        }
        Ok(deepest)
    }

    fn introspection(&mut self, set: &'a SelectionSet, lists: usize, of_type: usize) -> Result<(), ()> {
        for s in &set.items {
            match &s.node {
                Selection::Field(f) => {
                    let name = f.node.name.node.as_str();
                    let lists = lists + usize::from(INTROSPECTION_LISTS.contains(&name));
                    let of_type = of_type + usize::from(name == "ofType");
                    if lists > MAX_INTROSPECTION_LISTS || of_type > MAX_OF_TYPE {
                        return Err(());
                    }
                    self.introspection(&f.node.selection_set.node, lists, of_type)?;
                }
                Selection::InlineFragment(f) => self.introspection(&f.node.selection_set.node, lists, of_type)?,
                Selection::FragmentSpread(f) => {
                    if let Some(set) = self.spread(f.node.fragment_name.node.as_str()) {
                        self.introspection(set, lists, of_type)?;
                        self.fragments.pop();
                    }
                }
            }
        }
        Ok(())
    }

    /// The selection set of fragment `name`, entered (`None` if unknown or already being walked:
    /// validation refuses cycles and unknown fragments with its own message).
    fn spread(&mut self, name: &'a str) -> Option<&'a SelectionSet> {
        if self.fragments.contains(&name) || self.fragments.len() > 64 {
            return None;
        }
        let f = self.doc.fragments.get(name)?;
        self.fragments.push(name);
        Some(&f.node.selection_set.node)
    }
}

/// Whether every operation of `doc` is within `max_depth` (see [`DepthCheck`]).
fn depth_ok(doc: &ExecutableDocument, max_depth: usize) -> bool {
    doc.operations.iter().all(|(_, op)| {
        let mut c = DepthCheck { doc, fragments: vec![] };
        c.ordinary(&op.node.selection_set.node).is_ok_and(|d| d <= max_depth)
    })
}

fn coded(message: String, code: &str) -> ServerError {
    let mut e = ServerError::new(message, None);
    let mut ext = async_graphql::ErrorExtensionValues::default();
    ext.set("code", code);
    e.extensions = Some(ext);
    e
}

fn count_aliases(set: &SelectionSet) -> usize {
    set.items
        .iter()
        .map(|s| match &s.node {
            Selection::Field(f) => usize::from(f.node.alias.is_some()) + count_aliases(&f.node.selection_set.node),
            Selection::InlineFragment(f) => count_aliases(&f.node.selection_set.node),
            Selection::FragmentSpread(_) => 0,
        })
        .sum()
}

/// Marks the request as refused before execution (see `RequestFailed`).
pub(crate) fn mark_failed(ctx: &ExtensionContext<'_>) {
    if let Some(f) = ctx.data_opt::<RequestFailed>() {
        f.0.store(true, Ordering::Relaxed);
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for RequestGuardExt {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        if has_surrogate_escape(query) {
            mark_failed(ctx);
            return Err(coded(
                "a \\u escape in a string names a UTF-16 surrogate, which is not a character".into(),
                "GRAPHQL_PARSE_FAILED",
            ));
        }
        let doc = next.run(ctx, query, variables).await.map_err(|mut e| {
            mark_failed(ctx);
            e.extensions.get_or_insert_with(Default::default).set("code", "GRAPHQL_PARSE_FAILED");
            e
        })?;
        let operations = match &doc.operations {
            DocumentOperations::Single(_) => 1,
            DocumentOperations::Multiple(m) => m.len(),
        };
        if operations > self.max_operations {
            mark_failed(ctx);
            return Err(coded(
                format!("too many operations in one document (limit {})", self.max_operations),
                "BAD_REQUEST",
            ));
        }
        let aliases: usize =
            doc.operations.iter().map(|(_, op)| count_aliases(&op.node.selection_set.node)).sum::<usize>()
                + doc.fragments.values().map(|f| count_aliases(&f.node.selection_set.node)).sum::<usize>();
        if aliases > self.max_aliases {
            mark_failed(ctx);
            return Err(coded(format!("too many aliases (limit {})", self.max_aliases), "BAD_REQUEST"));
        }
        if !depth_ok(&doc, self.max_depth) {
            mark_failed(ctx);
            return Err(coded("Query is nested too deep.".into(), "GRAPHQL_VALIDATION_FAILED"));
        }
        record_shapes(ctx, &doc);
        Ok(doc)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let r = next.run(ctx).await.inspect_err(|_| mark_failed(ctx))?;
        if r.complexity > self.max_complexity {
            // The client learns what its document costs and what is allowed, so it can ask for
            // fewer rows (`first`) or fields instead of guessing.
            mark_failed(ctx);
            let mut e = coded(
                format!("Query is too complex: it costs {}, the limit is {}.", r.complexity, self.max_complexity),
                "GRAPHQL_VALIDATION_FAILED",
            );
            if let Some(ext) = e.extensions.as_mut() {
                ext.set("cost", r.complexity as u64);
                ext.set("limit", self.max_complexity as u64);
            }
            return Err(vec![e]);
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::{depth_ok, has_surrogate_escape};

    fn ok(q: &str, max: usize) -> bool {
        depth_ok(&async_graphql::parser::parse_query(q).expect("parses"), max)
    }

    #[test]
    fn depth_counts_ordinary_fields_and_bounds_what_multiplies_in_introspection() {
        assert!(ok("{ a { b { c } } }", 3));
        assert!(!ok("{ a { b { c { d } } } }", 3));
        assert!(!ok("query { ...F } fragment F on Query { a { b { c { d } } } }", 3), "through fragments");
        assert!(ok("query { ...F } fragment F on Query { ...F }", 3), "a cycle is validation's to refuse");
        let of_type = |n: usize| {
            let mut t = "name".to_owned();
            for _ in 0..n {
                t = format!("kind ofType {{ {t} }}");
            }
            format!("{{ __schema {{ types {{ fields {{ args {{ type {{ {t} }} }} }} }} }} }}")
        };
        assert!(ok(&of_type(16), 3), "the ofType chain does not count as depth");
        assert!(!ok(&of_type(17), 3));
        assert!(
            !ok("{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }", 12),
            "lists multiply"
        );
        assert!(!ok(
            "{ __type(name: \"Query\") { fields { type { fields { type { fields { type { fields { name } } } } } } } } }",
            12
        ));
    }

    #[test]
    fn surrogate_escapes_are_found_in_strings_only() {
        assert!(has_surrogate_escape(r#"{ contacts(filter: {search: "\uD800"}) { totalCount } }"#));
        assert!(has_surrogate_escape(r#"{ a(x: "ok \" still \udfff") }"#));
        assert!(!has_surrogate_escape(r#"{ a(x: "\u00e9 \\uD800") }"#), "an escaped backslash is no escape");
        assert!(!has_surrogate_escape("# \\uD800 in a comment\n{ a }"));
        assert!(!has_surrogate_escape(r#"{ a(x: """block \uD800 \""" still block""") }"#));
        assert!(!has_surrogate_escape(r#"{ a(x: "\uD7FF\uE000") }"#));
        // The parser accepts every document the check lets through.
        for ok in [r#"{ a(x: "\uD7FF\uE000") }"#, r#"{ a(x: """\uD800""") }"#] {
            assert!(async_graphql::parser::parse_query(ok).is_ok(), "{ok}");
        }
    }
}
