//! HTTP: GraphQL over HTTP (POST and GET, both response media types, status codes as the spec's
//! audit expects), GraphiQL, health, readiness and metrics, wrapped in request ids, tracing,
//! CORS, body-size and time limits.

use crate::config::{Limits, Settings};
use crate::error::ApiError;
use crate::graphql::groups::{ExportGuard, ExportGuardRef};
use crate::graphql::loaders::Loaders;
use crate::graphql::{AppSchema, OperationShapes, RequestFailed, TenantKey};
use crate::metrics::{Metrics, OpLabels, PathLabels, RouteLabels};
use async_graphql::dataloader::DataLoader;
use async_graphql::parser::types::{DocumentOperations, OperationType, Selection};
use async_graphql::{ErrorExtensions, Variables};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use cohort_store::{DataHandle, Gate, Refused, UsageRefusal};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use tracing::Instrument;

const GQL_RESPONSE: &str = "application/graphql-response+json; charset=utf-8";
const JSON: &str = "application/json; charset=utf-8";

#[derive(Clone)]
pub struct AppState {
    pub schema: AppSchema,
    /// The non-null root fields of Query and Mutation (from the schema's SDL), for error
    /// propagation to `data` (see `null_data_for_failed_non_null_root`).
    pub non_null_roots: Arc<NonNullRoots>,
    /// The only way in: verifies a token and hands out the request's data handle.
    pub gate: Arc<Gate>,
    pub metrics: Arc<Metrics>,
    pub limits: Limits,
    pub graphiql: bool,
    /// The outbound policy webhook endpoints are checked against when configured.
    pub webhooks: Arc<crate::config::WebhookSettings>,
    /// Signs preference links (`preferenceLink`).
    pub links: Arc<cohort_store::PublicLinks>,
    /// GraphQL subscriptions over WebSocket (see [`crate::ws`]).
    pub live: Arc<crate::ws::LiveState>,
    /// Persisted documents: automatic persisted queries or trusted documents.
    pub persisted: Arc<crate::persisted::Persisted>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Media {
    Json,
    GraphqlResponse,
}

impl Media {
    fn content_type(self) -> &'static str {
        match self {
            Media::Json => JSON,
            Media::GraphqlResponse => GQL_RESPONSE,
        }
    }
}

/// Picks the response media type from `Accept` (first acceptable entry wins; no header = JSON).
fn negotiate(headers: &HeaderMap) -> Option<Media> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some(Media::Json);
    };
    if accept.trim().is_empty() {
        return Some(Media::Json);
    }
    for part in accept.split(',') {
        let mut it = part.split(';');
        let mime = it.next().unwrap_or("").trim().to_ascii_lowercase();
        let q_zero = it.any(|p| {
            let p = p.trim().replace(' ', "");
            p == "q=0" || p == "q=0.0" || p == "q=0.00" || p == "q=0.000"
        });
        if q_zero {
            continue;
        }
        match mime.as_str() {
            "application/graphql-response+json" => return Some(Media::GraphqlResponse),
            "application/json" | "*/*" | "application/*" => return Some(Media::Json),
            _ => {}
        }
    }
    None
}

pub(crate) fn request_id(headers: &HeaderMap) -> String {
    headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-").to_owned()
}

fn error_body(message: &str, code: &str) -> Value {
    json!({ "errors": [ { "message": message, "extensions": { "code": code } } ] })
}

fn respond(status: StatusCode, media: Media, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(media.content_type()));
    r
}

/// A request that could not even be read as a GraphQL request (bad JSON, bad parameters): 400,
/// with `errors` and no `data`, whichever media type the client accepts (the current
/// GraphQL-over-HTTP audit recommends 400 for legacy `application/json` clients too).
fn request_error(media: Media, message: &str) -> Response {
    respond(StatusCode::BAD_REQUEST, media, &error_body(message, "BAD_REQUEST"))
}

fn unauthenticated(media: Media) -> Response {
    let mut r = respond(StatusCode::UNAUTHORIZED, media, &error_body("invalid or expired token", "UNAUTHENTICATED"));
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""));
    r
}

/// A request whose persisted document could not be resolved (see [`crate::persisted`]). Never
/// cached: the same URL may work once the document has been sent.
fn persisted_refusal(media: Media, r: &crate::persisted::Refusal) -> Response {
    let status = StatusCode::from_u16(r.status(media == Media::GraphqlResponse)).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = respond(status, media, &r.body());
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache, must-revalidate"));
    resp
}

/// One GraphQL request's parameters, checked for shape.
pub(crate) struct Params {
    pub(crate) query: String,
    pub(crate) operation_name: Option<String>,
    pub(crate) variables: Option<Value>,
}

fn params_from_object(obj: &Map<String, Value>) -> Result<Params, &'static str> {
    let query = match obj.get("query") {
        Some(Value::String(q)) => q.clone(),
        None | Some(Value::Null) => return Err("missing 'query' parameter"),
        Some(_) => return Err("'query' must be a string"),
    };
    let operation_name = match obj.get("operationName") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err("'operationName' must be a string or null"),
    };
    let variables = match obj.get("variables") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(_) => return Err("'variables' must be an object or null"),
    };
    match obj.get("extensions") {
        None | Some(Value::Null) | Some(Value::Object(_)) => {}
        Some(_) => return Err("'extensions' must be an object or null"),
    }
    Ok(Params { query, operation_name, variables })
}

/// Why a request's bearer token let nobody in.
pub(crate) enum AuthFailure {
    /// A missing, malformed, invalid or expired token.
    Unauthenticated,
    /// Resolving the viewer failed (logged with the request id).
    Internal,
}

/// Resolves the bearer token, if any, into the request's data handle through the gate — the one
/// way in for GraphQL and the REST facade alike. `Ok(None)` = no `Authorization` header.
pub(crate) async fn admit(st: &AppState, headers: &HeaderMap) -> Result<Option<(DataHandle, String)>, AuthFailure> {
    let Some(h) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let token = h
        .to_str()
        .ok()
        .and_then(|s| s.strip_prefix("Bearer ").or_else(|| s.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(AuthFailure::Unauthenticated);
    };
    let rid = request_id(headers);
    match st.gate.admit(token, Some(&rid)).await {
        Ok(handle) => {
            let tenant_key = handle.viewer().tenant_key().to_owned();
            Ok(Some((handle, tenant_key)))
        }
        Err(Refused::Unauthenticated(reason)) => {
            tracing::debug!(%reason, "token rejected");
            Err(AuthFailure::Unauthenticated)
        }
        Err(Refused::Internal(e)) => {
            tracing::error!(error = %e, request_id = %rid, "resolving viewer failed");
            Err(AuthFailure::Internal)
        }
    }
}

/// [`admit`] for GraphQL: `Ok(None)` = anonymous (only `__typename` and errors).
async fn authenticate(st: &AppState, headers: &HeaderMap) -> Result<Option<(DataHandle, String)>, Response> {
    let media = negotiate(headers).unwrap_or(Media::Json);
    admit(st, headers).await.map_err(|f| match f {
        AuthFailure::Unauthenticated => unauthenticated(media),
        AuthFailure::Internal => {
            let rid = request_id(headers);
            let body = json!({"errors": [{"message": "internal error", "extensions": {"code": "INTERNAL", "requestId": rid}}]});
            respond(StatusCode::INTERNAL_SERVER_ERROR, media, &body)
        }
    })
}

/// Runs one request; returns the JSON body and whether it failed before execution. Each
/// operation (of a batch, too) is a `graphql.operation` span of the trace (exported only).
pub(crate) async fn execute_one(
    st: &AppState,
    p: Params,
    viewer: &Option<(DataHandle, String)>,
    rid: &str,
) -> (Value, bool) {
    let span = tracing::info_span!(
        target: crate::telemetry::TRACE_TARGET,
        "graphql.operation",
        graphql.operation.name = tracing::field::Empty,
        graphql.operation.type = tracing::field::Empty,
    );
    // The request's span, for the data loaders' tasks (see `telemetry::request_spawner`).
    let request = tracing::Span::current();
    execute_operation(st, p, viewer, rid, &span, request).instrument(span.clone()).await
}

async fn execute_operation(
    st: &AppState,
    p: Params,
    viewer: &Option<(DataHandle, String)>,
    rid: &str,
    span: &tracing::Span,
    request: tracing::Span,
) -> (Value, bool) {
    let failed = RequestFailed::default();
    let op_name = p.operation_name.clone();
    let export_guard = Arc::new(ExportGuard::default());
    let query_text = p.query.clone();
    let shapes = OperationShapes::default();
    let mut req = async_graphql::Request::new(p.query)
        .data(failed.clone())
        .data(ExportGuardRef(export_guard.clone()))
        .data(shapes.clone());
    // Each operation (of a batch, too) gets its own meter: what it received is settled below.
    let metered = viewer.as_ref().map(|(h, _)| h.metered());
    if let Some(op) = p.operation_name {
        req = req.operation_name(op);
    }
    if let Some(v) = p.variables {
        req = req.variables(Variables::from_json(v));
    }
    if let (Some(handle), Some((_, tenant_key))) = (&metered, viewer) {
        let loaders = DataLoader::with_cache(
            Loaders::new(handle.clone()),
            crate::telemetry::request_spawner(request),
            async_graphql::dataloader::HashMapCache::default(),
        );
        req = req
            .data(handle.clone())
            .data(TenantKey(tenant_key.clone()))
            .data(loaders)
            .data(st.webhooks.clone())
            .data(st.links.clone());
    }
    let resp = st.schema.execute(req).await;
    if !span.is_disabled()
        && let Some(shape) = shapes.chosen(op_name.as_deref())
    {
        // What the operation is, from the parsed document: its name and type only — the
        // document and the variables (values, secrets) never reach a span.
        if let Some(name) = &shape.name {
            span.record("graphql.operation.name", name.as_str());
        }
        span.record("graphql.operation.type", shape.kind);
    }
    let mut request_failed = failed.is_set();
    let mut body = serde_json::to_value(&resp).unwrap_or_else(|_| json!({}));
    if let Some(handle) = &metered
        && !request_failed
    {
        // Data usage: count what this answer received and, for a query, withhold it whole if it
        // would cross the user's blocking threshold or export budget (DESIGN §1).
        let shape = shapes.chosen(op_name.as_deref());
        let (fields, is_mutation) = match &shape {
            Some(s) => (s.root_fields.as_slice(), s.is_mutation),
            None => (&[][..], false),
        };
        let refusal = match handle.settle_usage(fields, !is_mutation).await {
            Ok(Ok(())) => None,
            Ok(Err(UsageRefusal::ContactLimit { limit })) => Some(ApiError::DataUsageLimit(limit)),
            Ok(Err(UsageRefusal::PairBudget { budget })) => Some(ApiError::ExportBudget(budget)),
            // Metering must not fail silently into an unmetered answer: the query is refused.
            Err(e) => (!is_mutation).then(|| ApiError::from(e)),
        };
        if let Some(e) = refusal {
            // Like the per-request export cap below: the whole answer is withheld.
            request_failed = true;
            body = json!({ "errors": [e.extend()] });
        }
    }
    if export_guard.tripped.load(std::sync::atomic::Ordering::Relaxed) && !is_mutation(&query_text, op_name.as_deref())
    {
        // A query is refused as a whole: no partial export. (A mutation keeps its data — it has
        // run and committed — and carries the field errors.)
        request_failed = true;
        let e = ApiError::ExportLimit(crate::graphql::groups::MAX_MEMBERSHIP_CONTACTS).extend();
        body = json!({ "errors": [e] });
    }
    let mut first_code: Option<String> = None;
    if let Some(errors) = body.get_mut("errors").and_then(Value::as_array_mut) {
        for e in errors.iter_mut() {
            let Some(obj) = e.as_object_mut() else {
                continue;
            };
            let message = obj.get("message").and_then(Value::as_str).unwrap_or_default().to_owned();
            let ext = obj.entry("extensions").or_insert_with(|| json!({}));
            if let Some(ext) = ext.as_object_mut() {
                if !ext.contains_key("code") {
                    // Errors without our code come from async-graphql itself: request-level ones
                    // (syntax, validation, limits) or input-value coercion during execution.
                    // Only value coercion means the client's data is wrong; every other request-level
                    // message (the "Variable …" validation rules included) is a validation failure.
                    let bad_value = message.starts_with("Invalid value for argument");
                    let code =
                        if request_failed && !bad_value { "GRAPHQL_VALIDATION_FAILED" } else { "BAD_USER_INPUT" };
                    ext.insert("code".into(), json!(code));
                }
                if ext.get("code").and_then(Value::as_str) == Some("INTERNAL") {
                    ext.insert("requestId".into(), json!(rid));
                }
                if first_code.is_none() {
                    first_code = ext.get("code").and_then(Value::as_str).map(str::to_owned);
                }
            }
        }
    }
    if request_failed && let Some(o) = body.as_object_mut() {
        o.remove("data");
    }
    null_data_for_failed_non_null_root(&mut body, &st.non_null_roots, &query_text, op_name.as_deref());
    st.metrics
        .graphql_operations
        .get_or_create(&OpLabels {
            operation: st.metrics.operation_label(op_name.as_deref(), viewer.is_some()),
            code: first_code.unwrap_or_else(|| "OK".into()),
        })
        .inc();
    (body, request_failed)
}

/// The non-null fields of the root types, by operation type.
#[derive(Default)]
pub struct NonNullRoots {
    query: HashSet<String>,
    mutation: HashSet<String>,
}

impl NonNullRoots {
    /// Read off the schema's SDL once, at start-up.
    pub fn of(schema: &AppSchema) -> NonNullRoots {
        use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
        let mut roots = NonNullRoots::default();
        let Ok(doc) = async_graphql::parser::parse_schema(schema.sdl()) else { return roots };
        for d in doc.definitions {
            if let TypeSystemDefinition::Type(t) = d
                && let TypeKind::Object(o) = &t.node.kind
            {
                let set = match t.node.name.node.as_str() {
                    "Query" => &mut roots.query,
                    "Mutation" => &mut roots.mutation,
                    _ => continue,
                };
                for f in &o.fields {
                    if !f.node.ty.node.nullable {
                        set.insert(f.node.name.node.to_string());
                    }
                }
            }
        }
        roots
    }
}

/// GraphQL spec §6.4.4 (handling field errors): an error in a non-null field propagates to its
/// parent, and above a root field that parent is `data` itself — `data` must then be `null`.
/// async-graphql leaves a failed root field out of `data` instead; this puts the rule back, for
/// root fields whose type is non-null (a failed nullable root field stays `null`, the rest of
/// `data` stays).
fn null_data_for_failed_non_null_root(body: &mut Value, roots: &NonNullRoots, query: &str, op: Option<&str>) {
    let Some(o) = body.as_object_mut() else { return };
    let failed: Vec<String> = match (o.get("data"), o.get("errors").and_then(Value::as_array)) {
        (Some(Value::Object(data)), Some(errors)) => errors
            .iter()
            .filter_map(|e| e.pointer("/path/0").and_then(Value::as_str))
            .filter(|k| !data.contains_key(*k))
            .map(str::to_owned)
            .collect(),
        _ => return,
    };
    if failed.is_empty() || crate::graphql::has_surrogate_escape(query) {
        return;
    }
    let Ok(doc) = async_graphql::parser::parse_query(query) else { return };
    let Some(operation) = selected_operation(&doc, op) else {
        return;
    };
    let roots = match operation.node.ty {
        OperationType::Query => &roots.query,
        OperationType::Mutation => &roots.mutation,
        OperationType::Subscription => return,
    };
    // Response key (alias or name) → field name, through fragments at the root.
    let mut keys: HashMap<String, String> = HashMap::new();
    let mut sets = vec![&operation.node.selection_set.node];
    let mut seen = 0;
    while let Some(set) = sets.pop() {
        seen += 1;
        if seen > 64 {
            break;
        }
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => {
                    let name = f.node.name.node.to_string();
                    let key = f.node.alias.as_ref().map(|a| a.node.to_string()).unwrap_or_else(|| name.clone());
                    keys.insert(key, name);
                }
                Selection::InlineFragment(i) => sets.push(&i.node.selection_set.node),
                Selection::FragmentSpread(s) => {
                    if let Some(f) = doc.fragments.get(&s.node.fragment_name.node) {
                        sets.push(&f.node.selection_set.node);
                    }
                }
            }
        }
    }
    if failed.iter().any(|k| keys.get(k).is_some_and(|f| roots.contains(f))) {
        o.insert("data".into(), Value::Null);
    }
}

fn is_mutation(query: &str, operation_name: Option<&str>) -> bool {
    // Documents the parser cannot take (it panics on them) are refused when executed.
    if crate::graphql::has_surrogate_escape(query) {
        return false;
    }
    let Ok(doc) = async_graphql::parser::parse_query(query) else {
        return false;
    };
    selected_operation(&doc, operation_name).is_some_and(|o| o.node.ty == OperationType::Mutation)
}

/// The operation a request runs: the document's only one, or the one `operation_name` names.
/// (The parser keeps a document's only operation under `Multiple` when it is named, so "only one"
/// is checked there too.)
fn selected_operation<'a>(
    doc: &'a async_graphql::parser::types::ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<&'a async_graphql::Positioned<async_graphql::parser::types::OperationDefinition>> {
    match &doc.operations {
        DocumentOperations::Single(op) => Some(op),
        DocumentOperations::Multiple(m) => match operation_name {
            Some(n) => m.get(n),
            None if m.len() == 1 => m.values().next(),
            None => None,
        },
    }
}

async fn graphql_get(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(media) = negotiate(&headers) else {
        return StatusCode::NOT_ACCEPTABLE.into_response();
    };
    let rid = request_id(&headers);
    let mut obj = Map::new();
    if let Some(s) = q.get("query") {
        obj.insert("query".into(), json!(s));
    }
    if let Some(s) = q.get("operationName") {
        obj.insert("operationName".into(), json!(s));
    }
    if let Some(s) = q.get("documentId") {
        obj.insert("documentId".into(), json!(s));
    }
    for key in ["variables", "extensions"] {
        if let Some(s) = q.get(key) {
            match serde_json::from_str::<Value>(s) {
                Ok(v) => {
                    obj.insert(key.into(), v);
                }
                Err(_) => {
                    return request_error(media, &format!("'{key}' must be URL-encoded JSON"));
                }
            }
        }
    }
    let (obj, pending) = match st.persisted.resolve(obj) {
        Ok(r) => r,
        Err(r) => return persisted_refusal(media, &r),
    };
    let p = match params_from_object(&obj) {
        Ok(p) => p,
        Err(m) => return request_error(media, m),
    };
    if is_mutation(&p.query, p.operation_name.as_deref()) {
        let mut r = respond(
            StatusCode::METHOD_NOT_ALLOWED,
            media,
            &error_body("mutations must be sent with POST", "BAD_REQUEST"),
        );
        r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    let viewer = match authenticate(&st, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let (body, failed) = execute_one(&st, p, &viewer, &rid).await;
    st.persisted.settle(pending, failed);
    let status = if failed && media == Media::GraphqlResponse { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    with_identity(respond(status, media, &body), &viewer)
}

/// Who made a request, for its access-log line (set on the response by the GraphQL handlers).
#[derive(Clone, Copy)]
struct AccessIdentity {
    tenant: uuid::Uuid,
    user: uuid::Uuid,
}

pub(crate) fn with_identity(mut r: Response, viewer: &Option<(DataHandle, String)>) -> Response {
    if let Some((h, _)) = viewer {
        let v = h.viewer();
        r.extensions_mut().insert(AccessIdentity { tenant: v.tenant_id().0, user: v.user_id().0 });
    }
    r
}

async fn graphql_post(State(st): State<AppState>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    let Some(media) = negotiate(&headers) else {
        return StatusCode::NOT_ACCEPTABLE.into_response();
    };
    let rid = request_id(&headers);
    // Only JSON bodies, in UTF-8.
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let mut ct_parts = ct.split(';').map(str::trim);
    if ct_parts.next() != Some("application/json") {
        return respond(StatusCode::UNSUPPORTED_MEDIA_TYPE, media, &error_body("send application/json", "BAD_REQUEST"));
    }
    if ct_parts.any(|p| p.starts_with("charset=") && p != "charset=utf-8" && p != "charset=\"utf-8\"") {
        return respond(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            media,
            &error_body("only UTF-8 is accepted", "BAD_REQUEST"),
        );
    }
    // A body over the limit (`COHORT_MAX_BODY_BYTES`) is 413 in the GraphQL-over-HTTP error
    // shape, like every other refusal, under whichever media type was negotiated.
    let body = match body {
        Ok(b) => b,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let message = format!("the request body is larger than {} bytes", st.limits.max_body_bytes);
            return respond(StatusCode::PAYLOAD_TOO_LARGE, media, &error_body(&message, "PAYLOAD_TOO_LARGE"));
        }
        Err(_) => return request_error(media, "the request body could not be read"),
    };
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return request_error(media, "the request body is not valid JSON"),
    };
    let viewer = match authenticate(&st, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let r = graphql_post_body(&st, media, parsed, &viewer, &rid).await;
    with_identity(r, &viewer)
}

async fn graphql_post_body(
    st: &AppState,
    media: Media,
    parsed: Value,
    viewer: &Option<(DataHandle, String)>,
    rid: &str,
) -> Response {
    match parsed {
        Value::Object(obj) => {
            let (obj, pending) = match st.persisted.resolve(obj) {
                Ok(r) => r,
                Err(r) => return persisted_refusal(media, &r),
            };
            let p = match params_from_object(&obj) {
                Ok(p) => p,
                Err(m) => return request_error(media, m),
            };
            let (body, failed) = execute_one(st, p, viewer, rid).await;
            st.persisted.settle(pending, failed);
            let status =
                if failed && media == Media::GraphqlResponse { StatusCode::BAD_REQUEST } else { StatusCode::OK };
            respond(status, media, &body)
        }
        Value::Array(items) => {
            if items.is_empty() || items.len() > st.limits.max_batch {
                return request_error(media, &format!("a batch holds 1 to {} operations", st.limits.max_batch));
            }
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let Value::Object(obj) = item else {
                    out.push(error_body("each batch entry must be an object", "BAD_REQUEST"));
                    continue;
                };
                let (obj, pending) = match st.persisted.resolve(obj) {
                    Ok(r) => r,
                    Err(r) => {
                        out.push(r.body());
                        continue;
                    }
                };
                match params_from_object(&obj) {
                    Ok(p) => {
                        let (body, failed) = execute_one(st, p, viewer, rid).await;
                        st.persisted.settle(pending, failed);
                        out.push(body);
                    }
                    Err(m) => out.push(error_body(m, "BAD_REQUEST")),
                }
            }
            respond(StatusCode::OK, media, &Value::Array(out))
        }
        _ => request_error(media, "the request body must be a JSON object"),
    }
}

/// GraphiQL's page, served with its assets from the binary (see [`crate::graphiql`]).
async fn graphiql(State(st): State<AppState>) -> Response {
    if !st.graphiql {
        return StatusCode::NOT_FOUND.into_response();
    }
    (crate::graphiql::page_headers(), Html(crate::graphiql::page_html())).into_response()
}

async fn healthz() -> Response {
    (StatusCode::OK, axum::Json(json!({"status": "ok"}))).into_response()
}

async fn readyz(State(st): State<AppState>) -> Response {
    if st.gate.is_ready().await {
        (StatusCode::OK, axum::Json(json!({"status": "ready", "database": st.gate.backend_name()}))).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({"status": "unavailable"}))).into_response()
    }
}

async fn metrics(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|a| a.to_str().ok()).unwrap_or("");
    let (content_type, body) = st.metrics.render_for(&st.gate, accept);
    ([(header::CONTENT_TYPE, content_type), (header::VARY, "accept")], body).into_response()
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, axum::Json(error_body("no such route", "NOT_FOUND"))).into_response()
}

async fn record_http(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let matched = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let route = matched.clone().unwrap_or_else(|| "unmatched".into());
    let start = Instant::now();
    let method = req.method().clone();
    let resp = next.run(req).await;
    let elapsed = start.elapsed();
    // One access-log line per request (inside the request span, which carries the request id).
    // Never the token, the query or any value: who, what route, how it ended, how long.
    let who = resp.extensions().get::<AccessIdentity>().copied();
    tracing::info!(
        target: "cohort::access",
        method = %method,
        route = %route,
        status = resp.status().as_u16(),
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        tenant_id = who.map(|w| w.tenant.to_string()).unwrap_or_default(),
        user_id = who.map(|w| w.user.to_string()).unwrap_or_default(),
        "request"
    );
    crate::telemetry::record_response(&method, matched.as_deref(), resp.status().as_u16());
    st.metrics.http_duration.get_or_create(&PathLabels { route: route.clone() }).observe(elapsed.as_secs_f64());
    st.metrics.http_requests.get_or_create(&RouteLabels { route, status: resp.status().as_u16() }).inc();
    resp
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    let e = ApiError::Internal("panic".into()).extend();
    respond(StatusCode::INTERNAL_SERVER_ERROR, Media::Json, &json!({"errors": [e]}))
}

fn cors(origins: &[String], headers: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    // Validated when the configuration was read.
    let allowed: Vec<header::HeaderName> =
        headers.iter().filter_map(|h| header::HeaderName::from_bytes(h.as_bytes()).ok()).collect();
    // PUT and the response headers a client reads are for the REST facade (`crate::rest`).
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::PUT])
        .allow_headers(allowed)
        .expose_headers([
            header::HeaderName::from_static("x-request-id"),
            header::LOCATION,
            header::HeaderName::from_static("idempotent-replayed"),
        ])
        .max_age(std::time::Duration::from_secs(3600));
    if origins.iter().any(|o| o == "*") {
        return Some(layer.allow_origin(AllowOrigin::any()));
    }
    let list: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    Some(layer.allow_origin(AllowOrigin::list(list)))
}

/// The path as logged: public links carry their signed token in the path, and a token in a log
/// is a working link, so it is cut off.
fn loggable_path(path: &str) -> &str {
    for prefix in ["/public/v1/confirm/", "/public/v1/preferences/"] {
        if path.starts_with(prefix) {
            return prefix;
        }
    }
    path
}

/// The complete router with all middleware.
pub fn router(st: AppState, public: crate::public::PublicState, settings: &Settings) -> Router {
    let body_limit = st.limits.max_body_bytes;
    let timeout = st.limits.request_timeout;
    let mut api = Router::new()
        .route(
            "/graphql",
            get(graphql_get)
                .post(graphql_post)
                .layer(middleware::from_fn_with_state(st.clone(), crate::ws::upgrade_or_next)),
        )
        .route("/graphiql", get(graphiql))
        .route("/graphiql/assets/{*path}", get(crate::graphiql::asset_handler))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(crate::rest::routes())
        .with_state(st.clone());
    // The configured origins are the API's browser clients; the public endpoints answer CORS
    // per web form (the origins each form lists), so this layer stays off them.
    if let Some(c) = cors(&settings.cors_origins, &settings.cors_headers) {
        api = api.layer(c);
    }
    let r = Router::new()
        .merge(api)
        .merge(crate::public::routes(public))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(st, record_http))
        .layer(DefaultBodyLimit::max(body_limit));
    r.layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let rid = req
                .extensions()
                .get::<RequestId>()
                .and_then(|r| r.header_value().to_str().ok())
                .unwrap_or("-")
                .to_owned();
            let (method, path) = (req.method(), loggable_path(req.uri().path()));
            // W3C trace context: the request joins the caller's trace, or starts one.
            let parent = crate::telemetry::caller_context(req.headers());
            if crate::telemetry::exporting() {
                // The tracer decides the ids (`join_trace` records them); the span kind is for
                // the exporter and appears in log lines only while spans are exported.
                let span = tracing::info_span!("request", otel.kind = "server", method = %method, path = %path, request_id = %rid, trace_id = tracing::field::Empty);
                crate::telemetry::join_trace(&span, parent);
                span
            } else {
                let trace_id = crate::telemetry::local_trace_id(&parent);
                tracing::info_span!("request", method = %method, path = %path, request_id = %rid, trace_id = %trace_id)
            }
        }))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failed_non_null_root_fields_null_the_data() {
        let roots = NonNullRoots { query: ["contacts".to_owned()].into(), mutation: HashSet::new() };
        let run = |body: Value, q: &str| {
            let mut b = body;
            null_data_for_failed_non_null_root(&mut b, &roots, q, None);
            b["data"].clone()
        };
        let err = |p: &str| json!([{"message": "x", "path": [p]}]);
        // A non-null root field left out of `data` with an error: `data` is null.
        assert_eq!(
            run(json!({"data": {"t": "Query"}, "errors": err("c")}), "{ t: __typename c: contacts { n } }"),
            Value::Null
        );
        // A nullable one (`node`): the rest stays.
        let d = run(json!({"data": {"t": "Query"}, "errors": err("node")}), "{ t: __typename node(id: 1) { id } }");
        assert_eq!(d, json!({"t": "Query"}));
        // An error below a root field that is present: nothing to propagate here.
        let d = run(json!({"data": {"contacts": null}, "errors": err("contacts")}), "{ contacts { n } }");
        assert_eq!(d, json!({"contacts": null}));
    }
}
