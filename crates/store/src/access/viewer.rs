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

/// The effective level per address book of one viewer, or `InStatement` when the grants are read
/// inside every statement that filters by them (a viewer resolved from the [`ViewerCache`], or
/// one holding more grants than the store binds inline).
#[derive(Debug, Clone, Default)]
pub(crate) enum GrantSnapshot {
    /// Admins: grants are irrelevant (they hold MANAGE on every book of their tenant).
    #[default]
    NotNeeded,
    Inline(BTreeMap<Uuid, AccessLevel>),
    /// Read inside every statement that filters by them. The levels themselves are read into
    /// the cell at most once per request, the first time Rust code needs a level (a write
    /// checking WRITE on a book): the same once-per-request snapshot as before, paid only by the
    /// requests that need it.
    InStatement(std::sync::OnceLock<BTreeMap<Uuid, AccessLevel>>),
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
        if levels.len() > max_inline {
            GrantSnapshot::InStatement(std::sync::OnceLock::from(levels))
        } else {
            GrantSnapshot::Inline(levels)
        }
    }

    /// The level per book, when inline.
    pub(crate) fn levels(&self) -> Option<&BTreeMap<Uuid, AccessLevel>> {
        match self {
            GrantSnapshot::Inline(levels) => Some(levels),
            _ => None,
        }
    }

    /// The levels read for Rust-side checks of an `InStatement` snapshot, once read.
    pub(crate) fn loaded(&self) -> Option<&BTreeMap<Uuid, AccessLevel>> {
        match self {
            GrantSnapshot::InStatement(cell) => cell.get(),
            _ => None,
        }
    }

    /// Keeps the levels read for an `InStatement` snapshot (see [`GrantSnapshot::loaded`]).
    pub(crate) fn remember(&self, levels: BTreeMap<Uuid, AccessLevel>) {
        if let GrantSnapshot::InStatement(cell) = self {
            let _ = cell.set(levels); // ok: a concurrent reader of the same request set the same rows
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

/// What resolving an identity found, kept for a minute: the tenant's and the user's ids never
/// change for a (tenant key, subject), so a request of a viewer seen recently needs no statement
/// of its own to learn them. Their grants are not kept (they are read inside the request's
/// statements). The full resolution runs again when the entry is a minute old — that keeps the
/// user's last-seen time and profile fresh as before — or when the token names the user
/// differently than the entry does.
#[derive(Debug, Clone)]
pub(crate) struct KnownViewer {
    pub(crate) tenant_id: TenantId,
    pub(crate) user_id: UserId,
    pub(crate) name: Option<String>,
    pub(crate) email: Option<String>,
}

/// The process's [`KnownViewer`]s, by (tenant key, subject). Bounded: when full it starts over
/// (a burst of new users costs each one statement again, nothing more).
#[derive(Debug, Default)]
pub(crate) struct ViewerCache {
    entries: std::sync::Mutex<std::collections::HashMap<(String, String), (std::time::Instant, KnownViewer)>>,
}

impl ViewerCache {
    const TTL: std::time::Duration = std::time::Duration::from_secs(60);
    const MAX_ENTRIES: usize = 10_000;

    pub(crate) fn get(&self, id: &Identity) -> Option<KnownViewer> {
        let entries = self.entries.lock().ok()?;
        // Two short copies for the key: cheaper than the statement this saves by four orders.
        let (at, known) = entries.get(&(id.tenant_key.clone(), id.subject.clone()))?;
        let renamed = (id.name.is_some() && id.name != known.name) || (id.email.is_some() && id.email != known.email);
        (at.elapsed() < Self::TTL && !renamed).then(|| known.clone())
    }

    pub(crate) fn put(&self, id: &Identity, known: KnownViewer) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= Self::MAX_ENTRIES {
                entries.clear();
            }
            entries.insert((id.tenant_key.clone(), id.subject.clone()), (std::time::Instant::now(), known));
        }
    }
}
