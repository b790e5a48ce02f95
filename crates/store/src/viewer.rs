use cohort_domain::ids::{TenantId, UserId};
use cohort_domain::{AccessLevel, Roles};

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
