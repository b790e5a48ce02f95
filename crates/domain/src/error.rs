use thiserror::Error;

/// A rule of the domain was broken by the input. Always safe to show to the client: the message
/// names the offending field and the rule, never internal state.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
}

impl DomainError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        DomainError::Invalid { field, message: message.into() }
    }
    pub fn field(&self) -> &'static str {
        match self {
            DomainError::Invalid { field, .. } => field,
        }
    }
}

pub type DomainResult<T> = Result<T, DomainError>;
