//! One error type for the API, mapped to a stable `extensions.code` (DESIGN §2 "Errors").
//! Internal causes are logged with the request id and never shown: the client sees `INTERNAL`
//! and the id to quote.

use async_graphql::ErrorExtensions;
use cohort_store::StoreError;

///
/// Deliberately *not* `Display`: async-graphql converts any `Display` type into an error without a
/// code, so a stray `?` would drop the code. Without `Display`, the coded conversion below is the
/// only way an `ApiError` can reach a client.
#[derive(Debug)]
pub enum ApiError {
    Unauthenticated,
    Forbidden(String),
    /// Unknown, hidden, deleted and wrong-type ids all answer with exactly this.
    NotFound,
    BadUserInput {
        field: Option<String>,
        message: String,
    },
    Conflict(String),
    /// The cause is logged, never shown.
    /// No price applies (DESIGN §1: no list, and the list price is in another currency).
    NoPrice(String),
    /// A request would resolve group memberships for more contacts than allowed (bulk export).
    ExportLimit(usize),
    /// The answer would take the user's (contact, group) pairs of the day beyond the budget.
    ExportBudget(u64),
    /// The answer would reveal contacts beyond the user's daily blocking threshold.
    DataUsageLimit(u64),
    /// The cause is logged, never shown.
    Internal(String),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated => "UNAUTHENTICATED",
            ApiError::Forbidden(_) => "FORBIDDEN",
            ApiError::NotFound => "NOT_FOUND",
            ApiError::BadUserInput { .. } => "BAD_USER_INPUT",
            ApiError::Conflict(_) => "CONFLICT",
            ApiError::ExportLimit(_) | ApiError::ExportBudget(_) => "EXPORT_LIMIT",
            ApiError::DataUsageLimit(_) => "DATA_USAGE_LIMIT",
            ApiError::NoPrice(_) => "NO_PRICE",
            ApiError::Internal(_) => "INTERNAL",
        }
    }
    /// The client-facing message (never the internal cause).
    pub fn message(&self) -> String {
        match self {
            ApiError::Unauthenticated => "authentication required".into(),
            ApiError::Forbidden(m) | ApiError::Conflict(m) | ApiError::NoPrice(m) => m.clone(),
            ApiError::NotFound => "not found".into(),
            ApiError::BadUserInput { message, .. } => message.clone(),
            ApiError::ExportLimit(n) => {
                format!(
                    "this request would resolve group memberships for more than {n} contacts; ask for fewer contacts per request"
                )
            }
            ApiError::ExportBudget(n) => format!(
                "this answer would take today's group memberships received beyond your daily budget of {n}; \
                 an admin can lift it for today (liftDataUsageBlock)"
            ),
            ApiError::DataUsageLimit(n) => format!(
                "this answer would show contacts beyond your daily limit of {n} distinct contacts; contacts you \
                 have seen today stay readable, and an admin can lift the block for today (liftDataUsageBlock)"
            ),
            ApiError::Internal(_) => "internal error".into(),
        }
    }
    pub fn bad_input(field: &str, message: impl Into<String>) -> Self {
        ApiError::BadUserInput { field: Some(field.to_owned()), message: message.into() }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::Forbidden(m) => ApiError::Forbidden(m),
            StoreError::Invalid(d) => {
                ApiError::BadUserInput { field: Some(d.field().to_owned()), message: d.to_string() }
            }
            StoreError::Conflict(m) => ApiError::Conflict(m),
            StoreError::NoPrice(m) => ApiError::NoPrice(m),
            StoreError::Database(db) => ApiError::Internal(db.to_string()),
            // Logged with the value by `Internal`'s handler; the client sees only INTERNAL.
            e @ StoreError::Corrupt { .. } => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(e: ApiError) -> Self {
        e.extend()
    }
}

impl ErrorExtensions for ApiError {
    fn extend(&self) -> async_graphql::Error {
        let message = match self {
            ApiError::Internal(cause) => {
                // The cause goes to the log (the request id is on the enclosing span); the client
                // gets a generic message. The HTTP layer adds `requestId` to the extensions.
                tracing::error!(cause = %cause, "internal error");
                "internal error".to_owned()
            }
            other => other.message(),
        };
        async_graphql::Error::new(message).extend_with(|_, ext| {
            ext.set("code", self.code());
            if let ApiError::BadUserInput { field: Some(f), .. } = self {
                ext.set("field", f.as_str());
            }
        })
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
