use crate::core::dialect::Dialect;
use cohort_domain::ids::{TenantId, UserId};
use cohort_domain::{AccessLevel, Roles};
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

/// A verified identity: what a valid token proves. Only the token verifier
/// ([`crate::TokenVerifier`]) makes one — its fields are private and it has no public
/// constructor — and turning it into a [`Viewer`] goes through the [`crate::Gate`] (which creates
/// the tenant and user just in time).
#[derive(Debug, Clone)]
pub struct Identity {
    /// The token's `tid` claim.
    pub(crate) tenant_key: String,
    /// The token's `sub` claim.
    pub(crate) subject: String,
    pub(crate) roles: Roles,
    pub(crate) name: Option<String>,
    pub(crate) email: Option<String>,
}

impl Identity {
    pub(crate) fn new(
        tenant_key: String,
        subject: String,
        roles: Roles,
        name: Option<String>,
        email: Option<String>,
    ) -> Identity {
        Identity { tenant_key, subject, roles, name, email }
    }

    pub fn tenant_key(&self) -> &str {
        &self.tenant_key
    }
    pub fn subject(&self) -> &str {
        &self.subject
    }
    pub fn roles(&self) -> &Roles {
        &self.roles
    }
}

/// Who is asking. Only the store constructs one (from an [`Identity`], or for the system handle's
/// own work), and it lives inside the request's [`crate::DataHandle`]: the capability that scopes
/// every query. Fields are crate-private; there is no public constructor.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub(crate) tenant_id: TenantId,
    /// The token's `tid`.
    pub(crate) tenant_key: String,
    pub(crate) user_id: UserId,
    pub(crate) subject: String,
    pub(crate) roles: Roles,
    pub(crate) name: Option<String>,
    pub(crate) email: Option<String>,
    /// The viewer's grants, read once when the request resolved its viewer (in the same statement
    /// as the user). Visibility filters bind these books as a list instead of re-deriving them
    /// from `address_book_grants` inside every statement: the rows are the same, but the planner
    /// no longer plans a nested grants subquery per statement (which cost more than the work).
    /// A revoked grant still takes effect on the next request; within one request every
    /// statement sees the same grants, like a snapshot.
    pub(crate) grants: Arc<GrantSnapshot>,
    /// How the visibility rule is rendered for this viewer's database.
    pub(crate) dialect: Dialect,
}

/// The effective level per address book of one viewer, or `Unresolved` when the viewer holds
/// more grants than the store binds inline (then every filter falls back to the grants subquery
/// in SQL, which is correct for any number of grants, only slower to plan).
#[derive(Debug, Clone, Default)]
pub(crate) enum GrantSnapshot {
    /// Admins: grants are irrelevant (they hold MANAGE on every book of their tenant).
    #[default]
    NotNeeded,
    Inline(BTreeMap<Uuid, AccessLevel>),
    Unresolved,
}

impl GrantSnapshot {
    /// From (book, level) grant rows (direct and through user groups; a book may repeat).
    pub(crate) fn from_rows(rows: impl IntoIterator<Item = (Uuid, AccessLevel)>, max_inline: usize) -> Self {
        let mut levels = BTreeMap::new();
        for (book, level) in rows {
            let e = levels.entry(book).or_insert(level);
            if level > *e {
                *e = level;
            }
        }
        if levels.len() > max_inline { GrantSnapshot::Unresolved } else { GrantSnapshot::Inline(levels) }
    }

    /// The level per book, when inline.
    pub(crate) fn levels(&self) -> Option<&BTreeMap<Uuid, AccessLevel>> {
        match self {
            GrantSnapshot::Inline(levels) => Some(levels),
            _ => None,
        }
    }

    /// The books where the viewer holds at least `min`, in id order (so the statement text is
    /// stable for a given set of grants), or `None` when the snapshot is not inline.
    pub(crate) fn books(&self, min: AccessLevel) -> Option<Vec<Uuid>> {
        match self {
            GrantSnapshot::Inline(levels) => Some(levels.iter().filter(|(_, l)| **l >= min).map(|(b, _)| *b).collect()),
            _ => None,
        }
    }
}

impl Viewer {
    #[cfg(test)]
    pub(crate) fn for_tests(
        tenant_id: TenantId,
        user_id: UserId,
        roles: Roles,
        grants: Arc<GrantSnapshot>,
        dialect: Dialect,
    ) -> Viewer {
        Viewer {
            tenant_id,
            tenant_key: "test".into(),
            user_id,
            subject: "test".into(),
            roles,
            name: None,
            email: None,
            grants,
            dialect,
        }
    }

    pub fn tenant_id(&self) -> TenantId {
        self.tenant_id
    }
    pub fn tenant_key(&self) -> &str {
        &self.tenant_key
    }
    pub fn user_id(&self) -> UserId {
        self.user_id
    }
    pub fn subject(&self) -> &str {
        &self.subject
    }
    pub fn roles(&self) -> &Roles {
        &self.roles
    }
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    pub fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }
    pub fn is_admin(&self) -> bool {
        self.roles.is_admin()
    }
}
