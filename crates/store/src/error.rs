use cohort_domain::DomainError;
use sea_orm::DbErr;
use thiserror::Error;

/// What can go wrong in the store. The API maps each variant to a stable GraphQL error code;
/// `Database` is the only one whose text must never reach a client.
#[derive(Debug, Error)]
pub enum StoreError {
    /// Unknown, hidden or of another tenant: deliberately indistinguishable.
    #[error("not found")]
    NotFound,
    /// The viewer can see the object but may not do this to it.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Input broke a domain rule.
    #[error(transparent)]
    Invalid(#[from] DomainError),
    /// The change conflicts with existing state (a duplicate name, a non-empty container, …).
    #[error("conflict: {0}")]
    Conflict(String),
    /// No price list applies and the list price is in another currency.
    #[error("no price: {0}")]
    NoPrice(String),
    #[error("database error: {0}")]
    Database(#[from] DbErr),
    /// A stored value that this version cannot read (corrupt, or written by a newer version).
    /// Never reinterpreted as some default: the request fails (`INTERNAL`, logged with the value).
    #[error("unreadable stored value in {what}: {value:?}")]
    Corrupt { what: &'static str, value: String },
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// What a client is told about this error as one item of a batch (`upsertContacts`): the
    /// same code, message and field the API gives a whole request (see the API's `ApiError`).
    /// Database and corrupt-value errors are never item errors (the call fails as a whole and
    /// the cause is logged), so their view is the generic one.
    pub(crate) fn client_view(&self) -> (&'static str, String, Option<String>) {
        match self {
            StoreError::NotFound => ("NOT_FOUND", "not found".into(), None),
            StoreError::Forbidden(m) => ("FORBIDDEN", m.clone(), None),
            StoreError::Invalid(d) => ("BAD_USER_INPUT", d.to_string(), Some(d.field().to_owned())),
            StoreError::Conflict(m) => ("CONFLICT", m.clone(), None),
            StoreError::NoPrice(m) => ("NO_PRICE", m.clone(), None),
            StoreError::Database(_) | StoreError::Corrupt { .. } => ("INTERNAL", "internal error".into(), None),
        }
    }
    pub(crate) fn forbidden(msg: impl Into<String>) -> Self {
        StoreError::Forbidden(msg.into())
    }
    pub(crate) fn invalid(field: &'static str, msg: impl Into<String>) -> Self {
        StoreError::Invalid(DomainError::invalid(field, msg))
    }
    pub(crate) fn corrupt(what: &'static str, value: impl std::fmt::Debug) -> Self {
        StoreError::Corrupt { what, value: format!("{value:?}") }
    }
    /// Turns a unique-constraint violation into a `Conflict` with `msg`; other errors pass through.
    pub(crate) fn unique_as_conflict(e: DbErr, msg: &str) -> Self {
        match e.sql_err() {
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => StoreError::Conflict(msg.to_owned()),
            _ => StoreError::Database(e),
        }
    }
}
