use cohort_domain::ids::{TenantId, UserId};
use cohort_domain::{AccessLevel, Roles};
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

/// A verified identity, as the API extracts it from a valid token. Turning it into a [`Viewer`]
/// goes through the store (which creates the tenant and user just in time).
#[derive(Debug, Clone)]
pub struct Identity {
    /// The token's `tid` claim.
    pub tenant_key: String,
    /// The token's `sub` claim.
    pub subject: String,
    pub roles: Roles,
    pub name: Option<String>,
    pub email: Option<String>,
}

/// Who is asking. Only the store can construct one (from an [`Identity`]), and every data access
/// method takes one: it is the capability that scopes every query.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub(crate) tenant_id: TenantId,
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
}

/// The effective level per address book of one viewer, or `Unresolved` when the viewer holds
/// more grants than the store binds inline (then every filter falls back to the grants subquery
/// in SQL, which is correct for any number of grants, only slower to plan).
#[derive(Debug, Clone, Default)]
pub(crate) enum GrantSnapshot {
    /// Admins: grants are irrelevant (they hold MANAGE on every book of their tenant).
    #[default]
    NotNeeded,
    /// `postgres`: how the books are bound (one array parameter there, a list on SQLite).
    Inline {
        levels: BTreeMap<Uuid, AccessLevel>,
        postgres: bool,
    },
    Unresolved,
}

impl GrantSnapshot {
    /// From (book, level) grant rows (direct and through user groups; a book may repeat).
    pub(crate) fn from_rows(
        rows: impl IntoIterator<Item = (Uuid, AccessLevel)>,
        max_inline: usize,
        postgres: bool,
    ) -> Self {
        let mut levels = BTreeMap::new();
        for (book, level) in rows {
            let e = levels.entry(book).or_insert(level);
            if level > *e {
                *e = level;
            }
        }
        if levels.len() > max_inline { GrantSnapshot::Unresolved } else { GrantSnapshot::Inline { levels, postgres } }
    }

    /// The level per book, when inline.
    pub(crate) fn levels(&self) -> Option<&BTreeMap<Uuid, AccessLevel>> {
        match self {
            GrantSnapshot::Inline { levels, .. } => Some(levels),
            _ => None,
        }
    }

    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self, GrantSnapshot::Inline { postgres: true, .. })
    }

    /// The same books as a PostgreSQL array literal (`{id,id,…}`), bound as one text parameter:
    /// see [`crate::sql::Sql::visible_books`] for why not a list of parameters there.
    pub(crate) fn pg_array(books: &[Uuid]) -> String {
        let mut s = String::with_capacity(2 + books.len() * 37);
        s.push('{');
        for (i, b) in books.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&b.hyphenated().to_string());
        }
        s.push('}');
        s
    }

    /// The books where the viewer holds at least `min`, in id order (so the statement text is
    /// stable for a given set of grants), or `None` when the snapshot is not inline.
    pub(crate) fn books(&self, min: AccessLevel) -> Option<Vec<Uuid>> {
        match self {
            GrantSnapshot::Inline { levels, .. } => {
                Some(levels.iter().filter(|(_, l)| **l >= min).map(|(b, _)| *b).collect())
            }
            _ => None,
        }
    }
}

impl Viewer {
    pub fn tenant_id(&self) -> TenantId {
        self.tenant_id
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
    /// Admins hold `Manage` on every book; others only what grants say (looked up per request).
    pub(crate) fn admin_level(&self) -> Option<AccessLevel> {
        self.is_admin().then_some(AccessLevel::Manage)
    }
}
