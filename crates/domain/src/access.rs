//! Roles (from the JWT) and address-book access levels, and the policies built on them.

use serde::{Deserialize, Serialize};

/// A role carried by the token's `roles` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Configures everything and reads every address book of the tenant.
    Admin,
    /// An ordinary worker: sees what grants allow.
    Agent,
    /// A machine client (ERP, webshop, scripts): same rules as `Agent`.
    Integration,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "agent" => Some(Role::Agent),
            "integration" => Some(Role::Integration),
            _ => None,
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Agent => "agent",
            Role::Integration => "integration",
        }
    }
}

/// The set of roles a viewer holds. Unknown role names in a token are ignored (deny by default):
/// they grant nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roles(Vec<Role>);

impl Roles {
    pub fn from_claims<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut v: Vec<Role> = names.into_iter().filter_map(Role::parse).collect();
        v.sort_by_key(|r| r.as_str());
        v.dedup();
        Roles(v)
    }
    pub fn new(roles: impl IntoIterator<Item = Role>) -> Self {
        let mut v: Vec<Role> = roles.into_iter().collect();
        v.sort_by_key(|r| r.as_str());
        v.dedup();
        Roles(v)
    }
    pub fn is_admin(&self) -> bool {
        self.0.contains(&Role::Admin)
    }
    pub fn is_integration(&self) -> bool {
        self.0.contains(&Role::Integration)
    }
    pub fn iter(&self) -> impl Iterator<Item = &Role> {
        self.0.iter()
    }
}

/// Access to one address book. Levels are ordered: `Read < Write < Manage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AccessLevel {
    /// See the book's contacts.
    Read = 1,
    /// Create and edit contacts in the book; add/remove members of groups homed in it.
    Write = 2,
    /// Grant access to the book and configure groups homed in it.
    Manage = 3,
}

impl AccessLevel {
    /// The level as the API spells it: `READ`, `WRITE`, `MANAGE`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Read => "READ",
            Self::Write => "WRITE",
            Self::Manage => "MANAGE",
        }
    }
    pub fn as_i16(self) -> i16 {
        self as i16
    }
    pub fn from_i16(v: i16) -> Option<Self> {
        match v {
            1 => Some(Self::Read),
            2 => Some(Self::Write),
            3 => Some(Self::Manage),
            _ => None,
        }
    }
    /// The effective level of a viewer on a book: admins hold `Manage` everywhere; others hold the
    /// highest of their direct and user-group grants, or nothing.
    pub fn effective(is_admin: bool, granted: impl IntoIterator<Item = AccessLevel>) -> Option<Self> {
        if is_admin {
            return Some(Self::Manage);
        }
        granted.into_iter().max()
    }
    /// Whether `held` satisfies `needed`.
    pub fn allows(held: Option<AccessLevel>, needed: AccessLevel) -> bool {
        held.is_some_and(|h| h >= needed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_ordered() {
        assert!(AccessLevel::Read < AccessLevel::Write);
        assert!(AccessLevel::Write < AccessLevel::Manage);
        assert!(AccessLevel::allows(Some(AccessLevel::Manage), AccessLevel::Read));
        assert!(!AccessLevel::allows(Some(AccessLevel::Read), AccessLevel::Write));
        assert!(!AccessLevel::allows(None, AccessLevel::Read));
    }

    #[test]
    fn effective_level_is_the_highest_grant_or_admin() {
        assert_eq!(AccessLevel::effective(true, []), Some(AccessLevel::Manage));
        assert_eq!(AccessLevel::effective(false, []), None);
        assert_eq!(AccessLevel::effective(false, [AccessLevel::Read, AccessLevel::Write]), Some(AccessLevel::Write));
    }

    #[test]
    fn unknown_roles_grant_nothing() {
        let r = Roles::from_claims(["superuser", "root", "agent"]);
        assert!(!r.is_admin());
        assert_eq!(r.iter().count(), 1);
    }

    #[test]
    fn level_roundtrips_through_i16() {
        for l in [AccessLevel::Read, AccessLevel::Write, AccessLevel::Manage] {
            assert_eq!(AccessLevel::from_i16(l.as_i16()), Some(l));
        }
        assert_eq!(AccessLevel::from_i16(0), None);
        assert_eq!(AccessLevel::from_i16(4), None);
    }
}
