//! `/public/v1`: the unauthenticated endpoints of public groups — web-form definitions and
//! submissions, double opt-in confirmation, the preference centre and RFC 8058 one-click
//! unsubscribe — as JSON for programs and as small server-rendered pages for people.
//!
//! Protection, since there is no login:
//! - every write goes through [`PublicDoor`], bound to one form key or one signed link;
//! - per-IP and per-form rate limits (`governor`, GCRA) answer `429` with `Retry-After`;
//! - small bodies (16 KiB) and strict parsing (`400`/`413`/`415`, RFC 9457 problem details);
//! - a honeypot field (`website`): filled in, the submission is answered as usual and dropped;
//! - CORS only for the origins a form lists, and only on the form's own endpoints;
//! - pages carry a `Content-Security-Policy` that allows no script at all, `no-store`, and
//!   `Referrer-Policy: no-referrer` (the link is the credential and must not leak in a
//!   `Referer`); their forms post to the same URL, and no cookie or other ambient credential
//!   is involved, so a cross-site request cannot act without the link (CSRF).

// Handlers return their refusal as a finished `Response` (`Result<_, Response>`): it is built
// once, on the error path, and returned as is.
#![allow(clippy::result_large_err)]

mod pages;

use crate::graphql::ids;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cohort_domain::consent::RawSubmission;
use cohort_domain::ids::GroupId;
use cohort_store::{
    ConfirmOutcome, Evidence, LinkError, PreferenceChange, PreferencesRecord, PublicDoor, PublicFormRecord,
    PublicRefusal, StoreError, SubmissionInput,
};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use serde_json::{Value, json};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

pub use pages::Lang;

/// Bodies of public requests are small: a form submission or a preference change.
pub const MAX_PUBLIC_BODY: usize = 16 * 1024;

/// `COHORT_PUBLIC_RATE_PER_IP` / `COHORT_PUBLIC_RATE_PER_FORM`: `N/s`, `N/min` or `N/h` — at
/// most N requests in that window, refilled evenly (a burst of N, then one per window/N).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

impl Rate {
    pub fn parse(name: &str, s: &str) -> Result<Rate, crate::config::ConfigError> {
        let bad = || crate::config::ConfigError(format!("{name}: '{s}' is not a rate such as 20/min, 5/s or 1000/h"));
        let (n, unit) = s.trim().split_once('/').ok_or_else(bad)?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        let per = match unit.trim() {
            "s" | "sec" => Duration::from_secs(1),
            "m" | "min" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        if count == 0 {
            return Err(bad());
        }
        Ok(Rate { count, per })
    }

    fn quota(self) -> Quota {
        let burst = NonZeroU32::new(self.count).unwrap_or(NonZeroU32::MIN);
        Quota::with_period(self.per / self.count).unwrap_or_else(|| Quota::per_second(burst)).allow_burst(burst)
    }
}

/// Settings of the public endpoints (`COHORT_PUBLIC_*`).
#[derive(Debug, Clone)]
pub struct PublicSettings {
    pub per_ip: Rate,
    pub per_form: Rate,
    /// Take the client address from the last `X-Forwarded-For` entry (behind a reverse proxy
    /// that sets it; `COHORT_TRUST_FORWARDED_FOR`). Off: the TCP peer.
    pub trust_forwarded_for: bool,
}

impl Default for PublicSettings {
    fn default() -> Self {
        PublicSettings {
            per_ip: Rate { count: 30, per: Duration::from_secs(60) },
            per_form: Rate { count: 600, per: Duration::from_secs(60) },
            trust_forwarded_for: false,
        }
    }
}

#[derive(Clone)]
pub struct PublicState {
    door: Arc<PublicDoor>,
    per_ip: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    per_form: Arc<DefaultKeyedRateLimiter<String>>,
    trust_forwarded_for: bool,
}

impl PublicState {
    pub fn new(door: Arc<PublicDoor>, s: &PublicSettings) -> PublicState {
        PublicState {
            door,
            per_ip: Arc::new(DefaultKeyedRateLimiter::keyed(s.per_ip.quota())),
            per_form: Arc::new(DefaultKeyedRateLimiter::keyed(s.per_form.quota())),
            trust_forwarded_for: s.trust_forwarded_for,
        }
    }

    /// Forgets limiter state of keys that are back to full (called periodically, so the maps do
    /// not grow with every address ever seen).
    pub fn sweep(&self) {
        self.per_ip.retain_recent();
        self.per_form.retain_recent();
    }
}

/// The `/public/v1` routes (their own state; the caller adds the common layers).
pub fn routes(st: PublicState) -> Router {
    let sweeper = st.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            sweeper.sweep();
        }
    });
    Router::new()
        .route("/public/v1/forms/{key}", get(form_definition).options(preflight))
        .route("/public/v1/forms/{key}/submissions", axum::routing::post(submit).options(preflight))
        .route("/public/v1/confirm/{token}", get(confirm).post(confirm))
        .route("/public/v1/preferences/{token}", get(preferences).post(update_preferences))
        .layer(DefaultBodyLimit::max(MAX_PUBLIC_BODY))
        .with_state(st)
}

// ---------------------------------------------------------------------------------------------
// Answers

/// An RFC 9457 problem, with Cohort's stable `code` (and `field` for bad input).
pub(crate) fn problem(status: StatusCode, code: &str, detail: &str, field: Option<&str>) -> Response {
    let mut body = json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("error"),
        "status": status.as_u16(),
        "detail": detail,
        "code": code,
    });
    if let Some(f) = field {
        body["field"] = json!(f);
    }
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    no_store(r)
}

fn no_store(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    r
}

fn json_ok(status: StatusCode, v: Value) -> Response {
    let mut r = (status, v.to_string()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    no_store(r)
}

fn store_problem(e: StoreError) -> Response {
    match e {
        StoreError::NotFound => problem(StatusCode::NOT_FOUND, "NOT_FOUND", "not found", None),
        StoreError::Invalid(d) => problem(StatusCode::BAD_REQUEST, "BAD_USER_INPUT", &d.to_string(), Some(d.field())),
        StoreError::Forbidden(m) => problem(StatusCode::FORBIDDEN, "FORBIDDEN", &m, None),
        StoreError::Conflict(m) => problem(StatusCode::CONFLICT, "CONFLICT", &m, None),
        e => {
            tracing::error!(error = %e, "public endpoint failed");
            problem(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "internal error", None)
        }
    }
}

fn refusal(e: PublicRefusal, html: Option<Lang>) -> Response {
    let (status, code, detail) = match &e {
        PublicRefusal::Link(LinkError::Invalid) => {
            (StatusCode::BAD_REQUEST, "LINK_INVALID", "this link is not valid (mistyped, changed or revoked)")
        }
        PublicRefusal::Link(LinkError::Expired) => (StatusCode::GONE, "LINK_EXPIRED", "this link has expired"),
        PublicRefusal::Used => {
            (StatusCode::CONFLICT, "LINK_USED", "the consent this link confirms was withdrawn; subscribe again")
        }
        PublicRefusal::Store(_) => {
            return match e {
                PublicRefusal::Store(s) => store_problem(s),
                _ => unreachable!(),
            };
        }
    };
    match html {
        Some(lang) => pages::respond(status, pages::link_problem(lang, code)),
        None => problem(status, code, detail, None),
    }
}

fn rate_limited(wait: Duration) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut r = problem(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", "too many requests; try again later", None);
    if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

// ---------------------------------------------------------------------------------------------
// Request helpers

fn client_ip(st: &PublicState, headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<IpAddr> {
    if st.trust_forwarded_for
        && let Some(ip) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse().ok())
    {
        return Some(ip);
    }
    peer.map(|p| p.ip())
}

/// The limiter's key for an address: IPv6 by its /64 (one host usually has a whole /64, and
/// would otherwise have 2^64 buckets), IPv4 as it is.
fn limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// Per-IP limit (every public endpoint), then per-form (submissions).
fn check_limits(st: &PublicState, ip: Option<IpAddr>, form: Option<&str>) -> Result<(), Response> {
    let clock = DefaultClock::default();
    if let Some(ip) = ip
        && let Err(n) = st.per_ip.check_key(&limit_key(ip))
    {
        return Err(rate_limited(n.wait_time_from(clock.now())));
    }
    if let Some(f) = form
        && let Err(n) = st.per_form.check_key(&f.to_owned())
    {
        return Err(rate_limited(n.wait_time_from(clock.now())));
    }
    Ok(())
}

/// The TCP peer, as the server put it into the request (absent when the router is driven
/// without a connection, e.g. in a unit test).
pub(crate) struct Peer(Option<SocketAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)))
    }
}

fn peer(conn: &Peer) -> Option<SocketAddr> {
    conn.0
}

fn evidence(ip: Option<IpAddr>, headers: &HeaderMap) -> Evidence {
    Evidence {
        ip: ip.map(|i| i.to_string()),
        user_agent: headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned),
    }
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// A person's browser (an HTML page is wanted) rather than a program.
fn wants_html(headers: &HeaderMap) -> bool {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    accept.contains("text/html")
}

fn is_form_encoded(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.trim_start().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|c| {
        let c = c.trim_start().to_ascii_lowercase();
        c.starts_with("application/json") || c.starts_with("application/problem+json")
    })
}

fn group_ids(raw: &[String]) -> Result<Vec<GroupId>, Response> {
    raw.iter()
        .map(|g| {
            ids::decode(GroupId::TAG, &async_graphql::ID(g.clone())).map(GroupId).map_err(|_| {
                problem(StatusCode::BAD_REQUEST, "BAD_USER_INPUT", "groups: not a group id", Some("groups"))
            })
        })
        .collect()
}

fn group_json(g: &cohort_store::PublicGroupRecord) -> Value {
    json!({"id": ids::encode(GroupId::TAG, g.id.0).to_string(), "name": g.public_name, "description": g.public_description})
}

/// CORS for a form's own endpoints: the request's `Origin`, when the form lists it.
fn allow_origin(mut r: Response, origin: Option<&str>, form: &PublicFormRecord) -> Response {
    let h = r.headers_mut();
    h.append(header::VARY, HeaderValue::from_static("origin"));
    if let Some(o) = origin
        && form.origins.iter().any(|x| x == o)
        && let Ok(v) = HeaderValue::from_str(o)
    {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    r
}

fn origin(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
}

// ---------------------------------------------------------------------------------------------
// Handlers

async fn form_definition(
    State(st): State<PublicState>,
    conn: Peer,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check_limits(&st, client_ip(&st, &headers, peer(&conn)), None) {
        return r;
    }
    let f = match st.door.form(&key).await {
        Ok(f) => f,
        Err(e) => return store_problem(e),
    };
    let body = json!({
        "key": f.key,
        "version": f.version,
        "organisation": f.tenant_name,
        "title": f.title,
        "submitLabel": f.submit_label,
        "fields": f.fields.iter().map(|s| json!({"name": s.field.input_name(), "required": s.required})).collect::<Vec<_>>(),
        "groups": f.groups.iter().map(group_json).collect::<Vec<_>>(),
        "consent": {
            "purpose": f.consent_text.purpose,
            "language": f.consent_text.language,
            "version": f.consent_text.version,
            "text": f.consent_text.body,
            "sha256": f.consent_text.sha256,
        },
        "doubleOptIn": f.double_opt_in,
        "honeypotField": "website",
        "submitUrl": format!("/public/v1/forms/{}/submissions", f.key),
    });
    allow_origin(json_ok(StatusCode::OK, body), origin(&headers), &f)
}

/// Preflight for a form's endpoints: allowed only for the form's origins.
async fn preflight(State(st): State<PublicState>, conn: Peer, Path(key): Path<String>, headers: HeaderMap) -> Response {
    if let Err(r) = check_limits(&st, client_ip(&st, &headers, peer(&conn)), None) {
        return r;
    }
    let f = match st.door.form(&key).await {
        Ok(f) => f,
        Err(e) => return store_problem(e),
    };
    let mut r = StatusCode::NO_CONTENT.into_response();
    let o = origin(&headers);
    if o.is_some_and(|o| f.origins.iter().any(|x| x == o)) {
        let h = r.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST"));
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("content-type, accept"));
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("3600"));
    }
    allow_origin(r, o, &f)
}

/// A submission, parsed from JSON or from an HTML form (`groups` repeated for checkboxes).
struct ParsedSubmission {
    raw: RawSubmission,
    groups: Vec<String>,
    honeypot: bool,
}

fn parse_submission(headers: &HeaderMap, body: &[u8]) -> Result<(ParsedSubmission, bool), Response> {
    let bad = |m: &str| problem(StatusCode::BAD_REQUEST, "BAD_USER_INPUT", m, None);
    if is_form_encoded(headers) {
        let mut p = ParsedSubmission { raw: RawSubmission::default(), groups: vec![], honeypot: false };
        for (k, v) in form_urlencoded_pairs(body)? {
            match k.as_str() {
                "email" => p.raw.email = Some(v),
                "firstName" => p.raw.first_name = Some(v),
                "lastName" => p.raw.last_name = Some(v),
                "phone" => p.raw.phone = Some(v),
                "groups" => p.groups.push(v),
                "website" => p.honeypot |= !v.trim().is_empty(),
                _ => return Err(bad(&format!("unknown field '{}'", k.chars().take(40).collect::<String>()))),
            }
        }
        return Ok((p, true));
    }
    if !is_json(headers) {
        return Err(problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "BAD_USER_INPUT",
            "send application/json or application/x-www-form-urlencoded",
            None,
        ));
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Body {
        email: Option<String>,
        first_name: Option<String>,
        last_name: Option<String>,
        phone: Option<String>,
        #[serde(default)]
        groups: Vec<String>,
        #[serde(default)]
        website: Option<String>,
    }
    let b: Body = serde_json::from_slice(body).map_err(|e| bad(&format!("malformed JSON body: {e}")))?;
    Ok((
        ParsedSubmission {
            raw: RawSubmission { email: b.email, first_name: b.first_name, last_name: b.last_name, phone: b.phone },
            groups: b.groups,
            honeypot: b.website.is_some_and(|w| !w.trim().is_empty()),
        },
        false,
    ))
}

fn form_urlencoded_pairs(body: &[u8]) -> Result<Vec<(String, String)>, Response> {
    let text = std::str::from_utf8(body)
        .map_err(|_| problem(StatusCode::BAD_REQUEST, "BAD_USER_INPUT", "the body is not UTF-8", None))?;
    let decode = |s: &str| -> Result<String, Response> {
        let s = s.replace('+', " ");
        percent_decode(&s)
            .ok_or_else(|| problem(StatusCode::BAD_REQUEST, "BAD_USER_INPUT", "malformed form body", None))
    };
    let mut out = vec![];
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.push((decode(k)?, decode(v)?));
        if out.len() > 200 {
            return Err(problem(StatusCode::BAD_REQUEST, "BAD_USER_INPUT", "too many fields", None));
        }
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

async fn submit(
    State(st): State<PublicState>,
    conn: Peer,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let ip = client_ip(&st, &headers, peer(&conn));
    if let Err(r) = check_limits(&st, ip, Some(&key)) {
        return r;
    }
    let body = match read_body(body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let form = match st.door.form(&key).await {
        Ok(f) => f,
        Err(e) => return store_problem(e),
    };
    // A browser posting from a site the form does not list is refused (plain HTML forms and
    // servers without an Origin header are not affected).
    if let Some(o) = origin(&headers)
        && !form.origins.is_empty()
        && !form.origins.iter().any(|x| x == o)
    {
        return problem(StatusCode::FORBIDDEN, "FORBIDDEN", "this form is not accepted from this site", None);
    }
    let (parsed, from_html) = match parse_submission(&headers, &body) {
        Ok(p) => p,
        Err(r) => return allow_origin(r, origin(&headers), &form),
    };
    let receipt_body = json!({"status": "RECEIVED", "confirmationRequired": form.double_opt_in});
    let answer = |form: &PublicFormRecord| -> Response {
        if from_html && wants_html(&headers) {
            if let Some(u) = &form.success_url {
                return see_other(u);
            }
            return pages::respond(StatusCode::OK, pages::received(Lang::from_headers(&headers), form));
        }
        allow_origin(json_ok(StatusCode::ACCEPTED, receipt_body.clone()), origin(&headers), form)
    };
    if parsed.honeypot {
        // Same answer as a real submission: a bot learns nothing from it.
        tracing::info!(form = %key, "honeypot field filled in; submission dropped");
        return answer(&form);
    }
    let groups = match group_ids(&parsed.groups) {
        Ok(g) => g,
        Err(r) => return allow_origin(r, origin(&headers), &form),
    };
    let input = SubmissionInput { raw: parsed.raw, groups, evidence: evidence(ip, &headers) };
    match st.door.submit(&key, input, request_id(&headers).as_deref()).await {
        Ok(_) => answer(&form),
        // A person who posted a plain HTML form gets a page, not JSON.
        Err(StoreError::Invalid(d)) if from_html && wants_html(&headers) => pages::respond(
            StatusCode::BAD_REQUEST,
            pages::form_problem(Lang::from_headers(&headers), &form.tenant_name, &d.to_string()),
        ),
        Err(e) => allow_origin(store_problem(e), origin(&headers), &form),
    }
}

/// Whether `body` is an RFC 8058 one-click unsubscribe: `List-Unsubscribe=One-Click`, as
/// `application/x-www-form-urlencoded` or as one `multipart/form-data` field.
fn is_one_click(headers: &HeaderMap, body: &[u8]) -> bool {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    if ct.starts_with("multipart/form-data") {
        let Some(boundary) =
            ct.split(';').find_map(|p| p.trim().strip_prefix("boundary=")).map(|b| b.trim_matches('"'))
        else {
            return false;
        };
        // The original boundary's case matters; find it in the body case-insensitively via the
        // header's raw value.
        let raw = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let boundary = raw
            .split(';')
            .find_map(|p| p.trim().strip_prefix("boundary=").or_else(|| p.trim().strip_prefix("BOUNDARY=")))
            .map(|b| b.trim_matches('"').to_owned())
            .unwrap_or_else(|| boundary.to_owned());
        let Ok(text) = std::str::from_utf8(body) else { return false };
        return text.split(&format!("--{boundary}")).any(|part| {
            let Some((head, value)) = part.split_once("\r\n\r\n").or_else(|| part.split_once("\n\n")) else {
                return false;
            };
            let named = head.lines().any(|l| {
                let l = l.to_ascii_lowercase();
                l.starts_with("content-disposition:") && l.contains("name=\"list-unsubscribe\"")
            });
            named && value.trim_end_matches(['\r', '\n', '-']).trim() == "One-Click"
        });
    }
    if ct.starts_with("application/x-www-form-urlencoded") || ct.is_empty() || ct.starts_with("text/plain") {
        return form_urlencoded_pairs(body)
            .is_ok_and(|p| p.iter().any(|(k, v)| k == "List-Unsubscribe" && v == "One-Click"));
    }
    false
}

/// The body, or the problem that it was too large (`413`) or could not be read (`400`).
fn read_body(body: Result<Bytes, axum::extract::rejection::BytesRejection>) -> Result<Bytes, Response> {
    body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            problem(StatusCode::PAYLOAD_TOO_LARGE, "BAD_USER_INPUT", "the body is too large", None)
        }
        _ => problem(StatusCode::BAD_REQUEST, "BAD_USER_INPUT", "unreadable body", None),
    })
}

fn see_other(url: &str) -> Response {
    match HeaderValue::from_str(url) {
        Ok(v) => no_store((StatusCode::SEE_OTHER, [(header::LOCATION, v)]).into_response()),
        Err(_) => problem(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "internal error", None),
    }
}

async fn confirm(State(st): State<PublicState>, conn: Peer, Path(token): Path<String>, headers: HeaderMap) -> Response {
    let ip = client_ip(&st, &headers, peer(&conn));
    if let Err(r) = check_limits(&st, ip, None) {
        return r;
    }
    let html = wants_html(&headers).then(|| Lang::from_headers(&headers));
    match st.door.confirm(&token, evidence(ip, &headers), request_id(&headers).as_deref()).await {
        Ok(o) => confirmed(o, html),
        Err(e) => refusal(e, html),
    }
}

fn confirmed(o: ConfirmOutcome, html: Option<Lang>) -> Response {
    match html {
        Some(lang) => match &o.redirect {
            Some(u) => see_other(u),
            None => pages::respond(StatusCode::OK, pages::confirmed(lang, &o)),
        },
        None => json_ok(
            StatusCode::OK,
            json!({
                "status": "CONFIRMED",
                "alreadyConfirmed": o.already_confirmed,
                "organisation": o.tenant_name,
                "groups": o.groups.iter().map(group_json).collect::<Vec<_>>(),
            }),
        ),
    }
}

fn preferences_json(p: &PreferencesRecord) -> Value {
    json!({
        "organisation": p.tenant_name,
        "groups": p.groups.iter().map(|g| {
            let mut v = group_json(&g.group);
            v["subscribed"] = json!(g.subscribed);
            v["pending"] = json!(g.pending);
            // What subscribing here agrees to (groups one is not subscribed to).
            if let Some(t) = &g.consent_text {
                v["consent"] = json!({"text": t.text.body, "version": t.text.version, "language": t.text.language, "sha256": t.sha256});
            }
            v
        }).collect::<Vec<_>>(),
    })
}

async fn preferences(
    State(st): State<PublicState>,
    conn: Peer,
    Path(token): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check_limits(&st, client_ip(&st, &headers, peer(&conn)), None) {
        return r;
    }
    let html = wants_html(&headers).then(|| Lang::from_headers(&headers));
    match st.door.preferences(&token).await {
        Ok(p) => match html {
            Some(lang) => {
                let saved = uri.query().is_some_and(|q| q.split('&').any(|kv| kv == "saved=1"));
                pages::respond(StatusCode::OK, pages::preferences(lang, &p, saved))
            }
            None => json_ok(StatusCode::OK, preferences_json(&p)),
        },
        Err(e) => refusal(e, html),
    }
}

async fn update_preferences(
    State(st): State<PublicState>,
    conn: Peer,
    Path(token): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    debug_assert_eq!(method, Method::POST);
    if let Err(r) = check_limits(&st, client_ip(&st, &headers, peer(&conn)), None) {
        return r;
    }
    let body = match read_body(body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let html = wants_html(&headers).then(|| Lang::from_headers(&headers));
    // RFC 8058 §3.1: the one-click POST SHOULD be multipart/form-data; mail providers also send
    // it urlencoded. Either way its only field is `List-Unsubscribe=One-Click`.
    let one_click_body = is_one_click(&headers, &body);
    let (change, from_page) = if one_click_body {
        (PreferenceChange::OneClick, false)
    } else if is_form_encoded(&headers) {
        let pairs = match form_urlencoded_pairs(&body) {
            Ok(p) => p,
            Err(r) => return r,
        };
        {
            let action = pairs.iter().find(|(k, _)| k == "action").map(|(_, v)| v.as_str()).unwrap_or("save");
            match action {
                "withdraw_all" => (PreferenceChange::WithdrawAll, true),
                "save" => {
                    let raw: Vec<String> =
                        pairs.iter().filter(|(k, _)| k == "subscribed").map(|(_, v)| v.clone()).collect();
                    match group_ids(&raw) {
                        Ok(g) => (PreferenceChange::Set(g), true),
                        Err(r) => return r,
                    }
                }
                _ => return problem(StatusCode::BAD_REQUEST, "BAD_USER_INPUT", "unknown action", Some("action")),
            }
        }
    } else if is_json(&headers) {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields, rename_all = "camelCase")]
        struct Body {
            subscribed: Option<Vec<String>>,
            subscribe: Option<Vec<String>>,
            unsubscribe: Option<Vec<String>>,
            #[serde(default)]
            withdraw_all: bool,
        }
        let b: Body = match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(e) => {
                return problem(StatusCode::BAD_REQUEST, "BAD_USER_INPUT", &format!("malformed JSON body: {e}"), None);
            }
        };
        let given = usize::from(b.subscribed.is_some())
            + usize::from(b.subscribe.is_some())
            + usize::from(b.unsubscribe.is_some())
            + usize::from(b.withdraw_all);
        if given != 1 {
            return problem(
                StatusCode::BAD_REQUEST,
                "BAD_USER_INPUT",
                "send exactly one of subscribed, subscribe, unsubscribe, withdrawAll",
                None,
            );
        }
        let ch = if b.withdraw_all {
            Ok(PreferenceChange::WithdrawAll)
        } else if let Some(s) = b.subscribed {
            group_ids(&s).map(PreferenceChange::Set)
        } else if let Some(s) = b.subscribe {
            group_ids(&s).map(PreferenceChange::Subscribe)
        } else {
            group_ids(&b.unsubscribe.unwrap_or_default()).map(PreferenceChange::Unsubscribe)
        };
        match ch {
            Ok(c) => (c, false),
            Err(r) => return r,
        }
    } else {
        return problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "BAD_USER_INPUT",
            "send application/json or application/x-www-form-urlencoded",
            None,
        );
    };
    let one_click = change == PreferenceChange::OneClick;
    match st.door.update_preferences(&token, change, request_id(&headers).as_deref()).await {
        // Post/redirect/get: the page is shown again with a confirmation line.
        Ok(_) if from_page && html.is_some() => see_other(&format!("/public/v1/preferences/{token}?saved=1")),
        Ok(_) if one_click => json_ok(StatusCode::OK, json!({"status": "UNSUBSCRIBED"})),
        Ok(p) => match html {
            Some(lang) => pages::respond(StatusCode::OK, pages::preferences(lang, &p, true)),
            None => json_ok(StatusCode::OK, preferences_json(&p)),
        },
        Err(e) => refusal(e, html),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(Rate::parse("x", "20/min").expect("test value"), Rate { count: 20, per: Duration::from_secs(60) });
        assert_eq!(Rate::parse("x", " 5 / s ").expect("test value"), Rate { count: 5, per: Duration::from_secs(1) });
        assert!(Rate::parse("x", "0/min").is_err());
        assert!(Rate::parse("x", "20").is_err());
        assert!(Rate::parse("x", "20/week").is_err());
    }

    #[test]
    fn form_bodies_decode() {
        let pairs =
            form_urlencoded_pairs(b"email=eva%40x.io&groups=a&groups=b&firstName=Eva+Maria").expect("test value");
        assert_eq!(pairs[0], ("email".into(), "eva@x.io".into()));
        assert_eq!(pairs[3], ("firstName".into(), "Eva Maria".into()));
        assert!(form_urlencoded_pairs(b"email=%zz").is_err());
        assert!(form_urlencoded_pairs(b"email=%C3").is_err());
    }
}
