//! The REST facade (`/api/v1/...`): the calls integrators make most, as plain JSON over HTTP, with
//! an OpenAPI 3.1 document generated from this code (`GET /api/v1/openapi.json`, `cohort openapi`).
//!
//! **One implementation underneath.** Each endpoint is a fixed GraphQL document (one `const` per
//! endpoint, selecting exactly the fields the REST response returns), run through the very path
//! `POST /graphql` takes: the token goes through [`crate::http::admit`] (the gate: the only way to a
//! request-scoped data handle) and the document through [`crate::http::execute_one`] — so the
//! export guard, data-usage settlement and refusals, error codes, metrics and tracing are the same
//! code, not a second copy. This is the design of Hasura's "RESTified endpoints". The handler
//! builds the variables from the path, query and body, and reads `data.<rootField>` into the
//! documented response type (see [`types`]) before sending it: an answer that does not fit its
//! OpenAPI schema is a logged `INTERNAL`, never a silently different body.
//!
//! **Errors** are RFC 9457 problem details with GraphQL's codes (see [`problem`] for the status
//! of each code and the `type` URIs). Bodies must be `application/json` (415 otherwise); a body
//! that is not JSON is 400, JSON of the wrong shape 422 (`BAD_USER_INPUT` naming the `field`).
//! Unknown `/api/v1/...` routes are a 404 problem, known ones with another method 405.
//!
//! **Idempotency** (draft-ietf-httpapi-idempotency-key-header): the write endpoints take an
//! `Idempotency-Key` header and pass it to the mutation's `idempotencyKey`. A retry with the same
//! key (same caller and request, within 24 h) answers what the first request was answered and
//! writes nothing; `POST /api/v1/orders` marks such an answer `Idempotent-Replayed: true`. The
//! same key with another body is `CONFLICT` (409: the store reports both a key in use by another
//! request and a concurrent conflict as `CONFLICT`, so the draft's 422 is not told apart).

mod endpoints;
mod openapi;
pub mod problem;
pub mod types;

use crate::http::{AppState, AuthFailure, Params, admit, execute_one, request_id, with_identity};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use cohort_store::DataHandle;
pub use openapi::openapi_json;
pub use problem::Problem;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A refusal on its way out (boxed: a problem is large, and travels through every `?`).
pub(crate) type Refused = Box<Problem>;

/// The fixed GraphQL operation behind one endpoint.
pub(crate) struct Operation {
    /// The operation's name in the document (also its `operation` label in the metrics).
    pub name: &'static str,
    /// The root field whose value is the REST answer.
    pub root: &'static str,
    pub document: &'static str,
}

/// The routes of the facade (merged into the API router: CORS, request ids, access log, metrics
/// with the route template as label, limits — like `/graphql`).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi::serve).fallback(not_allowed("GET")))
        .route("/api/v1/prices:resolve", post(endpoints::resolve_price).fallback(not_allowed("POST")))
        .route("/api/v1/quotes", post(endpoints::quote_order).fallback(not_allowed("POST")))
        .route("/api/v1/orders", post(endpoints::place_order).fallback(not_allowed("POST")))
        .route("/api/v1/orders/{id}", get(endpoints::get_order).fallback(not_allowed("GET")))
        .route("/api/v1/contacts:upsert", post(endpoints::upsert_contacts).fallback(not_allowed("POST")))
        .route("/api/v1/contacts/{system}/{external_id}", put(endpoints::put_contact).fallback(not_allowed("PUT")))
        .route("/api/v1/groups/{id}/members", put(endpoints::set_group_members).fallback(not_allowed("PUT")))
        .route("/api/v1/changes", get(endpoints::changes).fallback(not_allowed("GET")))
        .route("/api/v1", any(no_such_endpoint))
        .route("/api/v1/{*rest}", any(no_such_endpoint))
}

async fn no_such_endpoint(headers: HeaderMap) -> Response {
    Problem::new("NOT_FOUND", "no such endpoint").with_request_id(&request_id(&headers)).into_response()
}

fn not_allowed(
    allow: &'static str,
) -> impl Fn(HeaderMap) -> std::future::Ready<Response> + Clone + Send + Sync + 'static {
    move |headers: HeaderMap| {
        let mut r = Problem::new("METHOD_NOT_ALLOWED", format!("this endpoint answers {allow} only"))
            .with_request_id(&request_id(&headers))
            .into_response();
        r.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
        std::future::ready(r)
    }
}

/// An authenticated REST request: the caller's data handle and the request id.
pub(crate) struct Call {
    st: AppState,
    viewer: Option<(DataHandle, String)>,
    rid: String,
}

/// Reads a JSON request body (when `body` is given) and admits the caller: 415 for another media
/// type, 413 over the body limit, 400 for a body that is not JSON, then 401 without a valid token.
pub(crate) async fn prepare(
    st: AppState,
    headers: &HeaderMap,
    body: Option<Result<Bytes, BytesRejection>>,
) -> Result<(Call, Value), Response> {
    let rid = request_id(headers);
    let early = |p: Problem| p.with_request_id(&rid).into_response();
    let value = match body {
        Some(body) => json_body(&st, headers, body).map_err(|p| early(*p))?,
        None => Value::Null,
    };
    let viewer = match admit(&st, headers).await {
        Ok(Some(v)) => Some(v),
        Ok(None) => return Err(early(Problem::new("UNAUTHENTICATED", "authentication required"))),
        Err(AuthFailure::Unauthenticated) => {
            return Err(early(Problem::new("UNAUTHENTICATED", "invalid or expired token")));
        }
        Err(AuthFailure::Internal) => return Err(early(Problem::internal())),
    };
    Ok((Call { st, viewer, rid }, value))
}

fn json_body(st: &AppState, headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Value, Refused> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let mut parts = ct.split(';').map(str::trim);
    if parts.next() != Some("application/json") {
        return Err(Problem::new("UNSUPPORTED_MEDIA_TYPE", "send the body as application/json").into());
    }
    if parts.any(|p| p.starts_with("charset=") && p != "charset=utf-8" && p != "charset=\"utf-8\"") {
        return Err(Problem::new("UNSUPPORTED_MEDIA_TYPE", "only UTF-8 is accepted").into());
    }
    let body = match body {
        Ok(b) => b,
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let m = format!("the request body is larger than {} bytes", st.limits.max_body_bytes);
            return Err(Problem::new("PAYLOAD_TOO_LARGE", m).into());
        }
        Err(_) => return Err(Problem::new("BAD_REQUEST", "the request body could not be read").into()),
    };
    serde_json::from_slice(&body).map_err(|_| Problem::new("BAD_REQUEST", "the request body is not valid JSON").into())
}

/// A JSON value (a body) as `T`; a mismatch is `BAD_USER_INPUT` naming the field
/// (`lines[0].quantity`).
pub(crate) fn typed<T: DeserializeOwned>(value: Value) -> Result<T, Refused> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| -> Refused {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        // serde reports a missing field at its parent; name the field itself.
        let missing = message.strip_prefix("missing field `").and_then(|rest| rest.split('`').next());
        let field = match (path.as_str(), missing) {
            (".", Some(n)) => Some(n.to_owned()),
            (p, Some(n)) => Some(format!("{p}.{n}")),
            (".", None) => None,
            (p, None) => Some(p.to_owned()),
        };
        // serde's own words, without the line/column of a body that was re-read from a value.
        let p = Problem::new("BAD_USER_INPUT", format!("the request body does not fit: {message}"));
        Box::new(match field {
            Some(f) => p.with_field(f),
            None => p,
        })
    })
}

/// A JSON success response.
pub(crate) fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// The `Idempotency-Key` header: a string (the draft's Structured Field string, `"…"`, or the
/// bare value many clients send).
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Refused> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let bad = || -> Refused { Problem::bad_input(IDEMPOTENCY_KEY, "must be 1 to 200 printable characters").into() };
    let s = v.to_str().map_err(|_| bad())?.trim();
    let s = match s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) => inner,
        None => s,
    };
    if s.is_empty() {
        return Err(bad());
    }
    Ok(Some(s.to_owned()))
}

/// The header's name, as problems name it in `field`.
pub(crate) const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

impl Call {
    /// Runs `op` with `variables` through the GraphQL executor and reads `data.<root>` as `T`; a
    /// GraphQL error is its problem.
    pub(crate) async fn run<T: DeserializeOwned>(&self, op: &Operation, variables: Value) -> Result<T, Refused> {
        let p = Params {
            query: op.document.to_owned(),
            operation_name: Some(op.name.to_owned()),
            variables: Some(variables),
        };
        let (body, _) = execute_one(&self.st, p, &self.viewer, &self.rid).await;
        if let Some(e) = body.get("errors").and_then(Value::as_array).and_then(|a| a.first()) {
            return Err(problem_of(op, e).into());
        }
        let Some(data) = body.get("data").and_then(|d| d.get(op.root)) else {
            tracing::error!(operation = op.name, "a REST operation answered no data and no error");
            return Err(Problem::internal().into());
        };
        serde_path_to_error::deserialize::<_, T>(data.clone()).map_err(|e| {
            // The path only: the value may be personal data.
            tracing::error!(operation = op.name, path = %e.path(), "a REST answer does not fit its documented type");
            Problem::internal().into()
        })
    }

    /// The response (or the problem, with the request id), with who asked for the access log.
    pub(crate) fn finish(&self, r: Result<Response, Refused>) -> Response {
        let r = r.unwrap_or_else(|p| (*p).with_request_id(&self.rid).into_response());
        with_identity(r, &self.viewer)
    }
}

/// The problem of a GraphQL error (the first of the answer).
fn problem_of(op: &Operation, e: &Value) -> Problem {
    let code = e["extensions"]["code"].as_str().unwrap_or("INTERNAL");
    let message = e["message"].as_str().unwrap_or_default();
    if !problem::is_known(code) || code == "BAD_REQUEST" {
        // A fixed document that does not validate (or any code the facade does not know) is a
        // bug here, not the client's: logged, and INTERNAL.
        tracing::error!(operation = op.name, code, message, "a REST operation's GraphQL document failed");
        return Problem::internal();
    }
    let p = Problem::new(code, message);
    let field = e["extensions"]["field"].as_str().map(str::to_owned).or_else(|| argument_field(message));
    match field {
        Some(f) => p.with_field(f),
        None => p,
    }
}

/// The field an `Invalid value for argument "input.lines.0.quantity", …` message is about, in
/// the REST body's terms (`lines[0].quantity`).
fn argument_field(message: &str) -> Option<String> {
    let path = message.strip_prefix("Invalid value for argument \"")?.split('"').next()?;
    let mut segments = path.split('.');
    let first = segments.next()?;
    let mut out = String::new();
    // The argument itself (`input`) is the body; other arguments are body or query fields.
    if first != "input" {
        out.push_str(first);
    }
    for s in segments {
        if s.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(&format!("[{s}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(s);
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn argument_paths_become_body_fields() {
        assert_eq!(
            argument_field("Invalid value for argument \"input.lines.0.quantity\", expected type \"Decimal\"")
                .as_deref(),
            Some("lines[0].quantity")
        );
        assert_eq!(argument_field("Invalid value for argument \"first\", …").as_deref(), Some("first"));
        assert_eq!(argument_field("Invalid value for argument \"input\", …"), None);
        assert_eq!(argument_field("something else"), None);
    }

    #[test]
    fn shape_errors_name_the_field() {
        let e = typed::<types::OrderRequest>(json!({"contactId": "c", "currency": "EUR", "lines": [{"quantity": 1}]}))
            .unwrap_err();
        assert_eq!((e.code.as_str(), e.status, e.field.as_deref()), ("BAD_USER_INPUT", 422, Some("lines[0].quantity")));
        let e = typed::<types::OrderRequest>(json!({"contactId": "c", "lines": []})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("currency"));
        let e = typed::<types::OrderRequest>(json!({"contactId": "c", "currency": "EUR", "lines": [], "extra": 1}))
            .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("extra"));
        let e = typed::<types::OrderRequest>(json!("an order")).unwrap_err();
        assert_eq!(e.field, None);
    }
}
