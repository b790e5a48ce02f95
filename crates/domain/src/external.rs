//! External ids (issue 19, "Integrators' sync"): the key an integrator's source system (an ERP, a
//! webshop) uses for one of our contacts, groups, products or price lists. One id per entity and
//! system, unique per tenant, kind and system.

use crate::error::{DomainError, DomainResult};
use crate::text::Name;

/// What an external id names. The text form is stored in `external_ids.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExternalKind {
    Contact,
    Group,
    Product,
    PriceList,
}

impl ExternalKind {
    pub const ALL: [ExternalKind; 4] =
        [ExternalKind::Contact, ExternalKind::Group, ExternalKind::Product, ExternalKind::PriceList];

    pub fn as_str(self) -> &'static str {
        match self {
            ExternalKind::Contact => "contact",
            ExternalKind::Group => "group",
            ExternalKind::Product => "product",
            ExternalKind::PriceList => "price_list",
        }
    }
}

/// The name of a source system (`erp`, `shop.de`, `sap-prod`): 1 to 64 characters, lower-case
/// ASCII letters and digits, then also `.`, `_` and `-`. Deliberately strict and not folded:
/// `ERP` is refused rather than silently becoming a second spelling of `erp`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExternalSystem(String);

impl ExternalSystem {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(field: &'static str, raw: &str) -> DomainResult<Self> {
        let rule = "must be 1 to 64 characters: a-z or 0-9 first, then a-z, 0-9, '.', '_' or '-'";
        let mut chars = raw.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
        if !first_ok || !rest_ok || raw.len() > Self::MAX_CHARS {
            return Err(DomainError::invalid(field, rule));
        }
        Ok(ExternalSystem(raw.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn into_string(self) -> String {
        self.0
    }
}

/// The id a source system gives an entity (`4711`, `CUST-0815`): trimmed, 1 to 200 characters,
/// no control characters. Compared exactly (case-sensitive): source systems differ on case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExternalKey(String);

impl ExternalKey {
    pub const MAX_CHARS: usize = Name::MAX_CHARS;

    /// The rules of a [`Name`] (trimmed, 1 to 200 characters, one line); a type of
    /// its own so the two are not mixed up.
    pub fn parse(field: &'static str, raw: &str) -> DomainResult<Self> {
        Name::parse(field, raw).map(|n| ExternalKey(n.into_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systems() {
        for ok in ["erp", "0", "shop.de", "sap_prod-2", &"a".repeat(64)] {
            assert!(ExternalSystem::parse("system", ok).is_ok(), "{ok}");
        }
        for bad in ["", "ERP", ".erp", "-x", "_x", "e rp", " erp", "erp/1", "ä", &"a".repeat(65)] {
            assert_eq!(ExternalSystem::parse("system", bad).map_err(|e| e.field()), Err("system"), "{bad:?}");
        }
    }

    #[test]
    fn keys() {
        assert_eq!(ExternalKey::parse("id", "  4711 ").map(ExternalKey::into_string), Ok("4711".to_owned()));
        assert!(ExternalKey::parse("id", &"x".repeat(200)).is_ok());
        for bad in ["", "   ", "a\u{0}b", "a\nb", "\u{7f}"] {
            assert!(ExternalKey::parse("id", bad).is_err(), "{bad:?}");
        }
        assert!(ExternalKey::parse("id", &"x".repeat(201)).is_err());
    }
}
