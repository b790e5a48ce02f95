//! Strict decoding of stored enum text and codes: one fallible path for every stored value that
//! Rust reads back as an enum. A value this version does not know (corrupt data, or written by a
//! newer version) is an error — logged with the value and answered `INTERNAL` — never quietly
//! reinterpreted as some default (an unknown currency is not EUR, an unknown kind not a person).

use crate::error::{StoreError, StoreResult};
use cohort_domain::AccessLevel;
use cohort_domain::contact::ContactKind;
use cohort_domain::group::MembershipSource;
use cohort_domain::money::Currency;

/// `parsed` or a `Corrupt` error naming `what` and the raw value.
pub(crate) fn strict<T, R: std::fmt::Debug + ?Sized>(what: &'static str, raw: &R, parsed: Option<T>) -> StoreResult<T> {
    parsed.ok_or_else(|| {
        let e = StoreError::corrupt(what, raw);
        tracing::error!(error = %e, "unreadable stored value");
        e
    })
}

pub(crate) fn contact_kind(s: &str) -> StoreResult<ContactKind> {
    strict("contacts.kind", s, ContactKind::parse(s))
}

pub(crate) fn membership_source(s: &str) -> StoreResult<MembershipSource> {
    strict("membership source", s, MembershipSource::parse(s))
}

pub(crate) fn currency(s: &str) -> StoreResult<Currency> {
    strict("currency", s, Currency::parse(s).ok())
}

pub(crate) fn access_level(n: i16) -> StoreResult<AccessLevel> {
    strict("access level", &n, AccessLevel::from_i16(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_values_are_errors_not_defaults() {
        assert!(matches!(currency("XXQ"), Err(StoreError::Corrupt { .. })));
        assert!(matches!(contact_kind("ROBOT"), Err(StoreError::Corrupt { .. })));
        assert!(matches!(membership_source("TELEPATHY"), Err(StoreError::Corrupt { .. })));
        assert!(matches!(access_level(99), Err(StoreError::Corrupt { .. })));
        assert!(currency("EUR").is_ok() && contact_kind("PERSON").is_ok());
    }
}
