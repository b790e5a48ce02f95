//! Problem details (RFC 9457): every refusal of the REST facade is an
//! `application/problem+json` body with the same `code` GraphQL puts into `extensions.code`.
//!
//! | `code` | status | `type` |
//! |---|---|---|
//! | `BAD_REQUEST` (not JSON, bad parameters) | 400 | `https://cohort.dev/problems/bad-request` |
//! | `UNAUTHENTICATED` | 401 | `…/unauthenticated` |
//! | `FORBIDDEN` | 403 | `…/forbidden` |
//! | `EXPORT_LIMIT` | 403 | `…/export-limit` |
//! | `DATA_USAGE_LIMIT` | 403 | `…/data-usage-limit` |
//! | `NOT_FOUND` (unknown, hidden or wrong-type id; unknown route) | 404 | `…/not-found` |
//! | `METHOD_NOT_ALLOWED` | 405 | `…/method-not-allowed` |
//! | `CONFLICT` (also an idempotency key reused for another request) | 409 | `…/conflict` |
//! | `PAYLOAD_TOO_LARGE` | 413 | `…/payload-too-large` |
//! | `UNSUPPORTED_MEDIA_TYPE` | 415 | `…/unsupported-media-type` |
//! | `BAD_USER_INPUT` (JSON of the wrong shape, invalid values; `field` names it) | 422 | `…/bad-user-input` |
//! | `NO_PRICE` | 422 | `…/no-price` |
//! | `RATE_LIMITED` | 429 | `…/rate-limited` |
//! | `INTERNAL` (with `requestId`) | 500 | `…/internal` |
//!
//! The export and data-usage limits are 403, not 429: they are refusals a retry cannot cure (the
//! block lasts until an admin lifts it or the day ends), and 429 tells clients to back off and
//! retry. `type` URIs are absolute and stable identifiers of the code (clients compare them, or
//! `code`); they are not promised to resolve to a page.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The media type of problem bodies.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// What every problem `type` starts with; the rest is the code in kebab case.
pub const TYPE_BASE: &str = "https://cohort.dev/problems/";

/// A refused request (RFC 9457 problem details). `code` is the stable error code (the same as
/// GraphQL's `extensions.code`); `type` identifies it as a URI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// `https://cohort.dev/problems/` and the code in kebab case (`…/not-found`).
    #[serde(rename = "type")]
    #[schema(example = "https://cohort.dev/problems/not-found")]
    pub problem_type: String,
    /// A short summary of the problem type (the same for every problem of this `code`).
    #[schema(example = "Not found")]
    pub title: String,
    /// The HTTP status code.
    #[schema(example = 404)]
    pub status: u16,
    /// What went wrong with this request, for people (never database or internal text).
    #[schema(example = "not found")]
    pub detail: String,
    /// The stable error code: `UNAUTHENTICATED`, `FORBIDDEN`, `NOT_FOUND`, `BAD_USER_INPUT`,
    /// `CONFLICT`, `NO_PRICE`, `EXPORT_LIMIT`, `DATA_USAGE_LIMIT`, `RATE_LIMITED`, `INTERNAL`,
    /// or for requests that could not be read `BAD_REQUEST`, `UNSUPPORTED_MEDIA_TYPE`,
    /// `PAYLOAD_TOO_LARGE`, `METHOD_NOT_ALLOWED`.
    #[schema(example = "NOT_FOUND")]
    pub code: String,
    /// The request's id (also in the `x-request-id` response header): quote it when reporting an
    /// `INTERNAL` problem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub request_id: Option<String>,
    /// The input field (or header, or query parameter) the problem is about, when there is one
    /// (`lines[0].quantity`, `Idempotency-Key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub field: Option<String>,
    /// The failed items of a batch that was not committed (`contacts:upsert`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub errors: Option<Vec<ProblemItem>>,
}

/// One failed item of a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProblemItem {
    /// The item's position in the request (0-based).
    pub index: i32,
    /// The item's id in the source system.
    pub external_id: String,
    /// The item's error code (as `Problem.code`).
    pub code: String,
    /// What is wrong with it.
    pub message: String,
    /// The item's field the error is about, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub field: Option<String>,
}

/// One problem type: its code, status, `type` slug and title.
struct Kind {
    code: &'static str,
    status: u16,
    slug: &'static str,
    title: &'static str,
}

const KINDS: &[Kind] = &[
    Kind { code: "BAD_REQUEST", status: 400, slug: "bad-request", title: "Bad request" },
    Kind { code: "UNAUTHENTICATED", status: 401, slug: "unauthenticated", title: "Unauthenticated" },
    Kind { code: "FORBIDDEN", status: 403, slug: "forbidden", title: "Forbidden" },
    Kind { code: "EXPORT_LIMIT", status: 403, slug: "export-limit", title: "Export limit reached" },
    Kind { code: "DATA_USAGE_LIMIT", status: 403, slug: "data-usage-limit", title: "Data-usage limit reached" },
    Kind { code: "NOT_FOUND", status: 404, slug: "not-found", title: "Not found" },
    Kind { code: "METHOD_NOT_ALLOWED", status: 405, slug: "method-not-allowed", title: "Method not allowed" },
    Kind { code: "CONFLICT", status: 409, slug: "conflict", title: "Conflict" },
    Kind { code: "PAYLOAD_TOO_LARGE", status: 413, slug: "payload-too-large", title: "Payload too large" },
    Kind {
        code: "UNSUPPORTED_MEDIA_TYPE",
        status: 415,
        slug: "unsupported-media-type",
        title: "Unsupported media type",
    },
    Kind { code: "BAD_USER_INPUT", status: 422, slug: "bad-user-input", title: "Invalid input" },
    Kind { code: "NO_PRICE", status: 422, slug: "no-price", title: "No price" },
    Kind { code: "RATE_LIMITED", status: 429, slug: "rate-limited", title: "Too many requests" },
    Kind { code: "INTERNAL", status: 500, slug: "internal", title: "Internal error" },
];

/// Whether `code` is one the REST facade answers with (others become `INTERNAL`).
pub(crate) fn is_known(code: &str) -> bool {
    KINDS.iter().any(|k| k.code == code)
}

impl Problem {
    /// A problem of `code` (an unknown code is `INTERNAL`) with `detail`.
    pub fn new(code: &str, detail: impl Into<String>) -> Problem {
        let kind = KINDS.iter().find(|k| k.code == code).unwrap_or(&KINDS[KINDS.len() - 1]);
        Problem {
            problem_type: format!("{TYPE_BASE}{}", kind.slug),
            title: kind.title.to_owned(),
            status: kind.status,
            detail: if kind.code == code { detail.into() } else { "internal error".into() },
            code: kind.code.to_owned(),
            request_id: None,
            field: None,
            errors: None,
        }
    }

    /// `INTERNAL`: the cause is logged by the caller, never shown.
    pub fn internal() -> Problem {
        Problem::new("INTERNAL", "internal error")
    }

    /// `BAD_USER_INPUT` about `field`.
    pub fn bad_input(field: impl Into<String>, detail: impl Into<String>) -> Problem {
        Problem::new("BAD_USER_INPUT", detail).with_field(field)
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Problem {
        self.field = Some(field.into());
        self
    }

    pub fn with_request_id(mut self, rid: &str) -> Problem {
        if rid != "-" {
            self.request_id = Some(rid.to_owned());
        }
        self
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let unauthenticated = self.code == "UNAUTHENTICATED";
        let bytes = serde_json::to_vec(&self).unwrap_or_default();
        let mut r = Response::new(axum::body::Body::from(bytes));
        *r.status_mut() = status;
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if unauthenticated {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_one_kind_and_a_kebab_type() {
        for k in KINDS {
            assert_eq!(KINDS.iter().filter(|o| o.code == k.code).count(), 1, "{}", k.code);
            assert_eq!(k.slug, k.code.to_ascii_lowercase().replace('_', "-"));
            let p = Problem::new(k.code, "x");
            assert_eq!((p.status, p.code.as_str()), (k.status, k.code));
        }
        let p = Problem::new("SOMETHING_ELSE", "database said: relation does not exist");
        assert_eq!((p.code.as_str(), p.status, p.detail.as_str()), ("INTERNAL", 500, "internal error"));
    }
}
