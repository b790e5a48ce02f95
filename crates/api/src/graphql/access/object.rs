//! Address books, grants, users, user groups and the viewer, as GraphQL objects.

use crate::error::ApiError;
use crate::graphql::contacts::*;
use crate::graphql::relay::*;
use crate::graphql::{data, ids, loader, viewer};
use async_graphql::{Context, Enum, ID, Object, Union};
use chrono::{DateTime, Utc};
use cohort_domain::ids::{AddressBookId, UserGroupId, UserId};
use cohort_store::{
    AddressBookRecord, ContactFilter, ContactRecord, GrantRecord, PageRequest, Principal, UserGroupRecord, UserRecord,
};

/// Access to an address book; ordered READ < WRITE < MANAGE.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum AccessLevel {
    /// May see the book's contacts and groups.
    Read,
    /// READ, and may create, change and delete the book's contacts and change the members of its
    /// groups.
    Write,
    /// WRITE, and may create and configure the book's groups and grant and revoke access to it.
    Manage,
}

impl From<cohort_domain::AccessLevel> for AccessLevel {
    fn from(l: cohort_domain::AccessLevel) -> Self {
        match l {
            cohort_domain::AccessLevel::Read => AccessLevel::Read,
            cohort_domain::AccessLevel::Write => AccessLevel::Write,
            cohort_domain::AccessLevel::Manage => AccessLevel::Manage,
        }
    }
}

impl From<AccessLevel> for cohort_domain::AccessLevel {
    fn from(l: AccessLevel) -> Self {
        match l {
            AccessLevel::Read => cohort_domain::AccessLevel::Read,
            AccessLevel::Write => cohort_domain::AccessLevel::Write,
            AccessLevel::Manage => cohort_domain::AccessLevel::Manage,
        }
    }
}

/// A role from the token's `roles` claim; it decides what a user may do beyond their address-book
/// grants.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum Role {
    /// Tenant administrator: sees every address book and configures the tenant (users, books, price
    /// lists, SLAs, routing, webhooks).
    Admin,
    /// A person working with contacts: sees the books they are granted.
    Agent,
    /// A script or system acting through the API with its own grants (imports, shops, mailers).
    Integration,
}

connection!(
    AddressBookConnection,
    AddressBookEdge,
    AddressBook,
    AddressBookRecord,
    "A page of the address books the viewer can see, by name.",
    "An address book on a page, with its cursor.",
    "How many address books the viewer can see, on every page together."
);
connection!(
    UserConnection,
    UserEdge,
    User,
    UserRecord,
    "A page of the tenant's users, by subject.",
    "A user on a page, with its cursor.",
    "How many users the tenant has, on every page together."
);
connection!(
    UserGroupConnection,
    UserGroupEdge,
    UserGroup,
    UserGroupRecord,
    "A page of user groups, by name.",
    "A user group on a page, with its cursor.",
    "How many user groups the list holds for the viewer (all of them for admins, their own for others), on every page together."
);

// Address books

pub struct AddressBook(pub AddressBookRecord);

impl From<AddressBookRecord> for AddressBook {
    fn from(r: AddressBookRecord) -> Self {
        AddressBook(r)
    }
}

/// A contact directory: where contacts live and where access is granted.
#[Object]
impl AddressBook {
    /// The address book's global id (opaque; for `node(id:)` and inputs that take an address book).
    pub(crate) async fn id(&self) -> ID {
        ids::encode(AddressBookId::TAG, self.0.id.0)
    }
    /// The book's name, unique in the tenant.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// What the book is for, as its creator wrote it; `null` if none.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// When the book was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// The viewer's own access level on this book.
    async fn my_access(&self) -> AccessLevel {
        self.0.my_access.into()
    }
    /// Who has access (needs MANAGE on the book).
    async fn grants(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<AddressBookGrant>> {
        let g = data(ctx)?.grants(self.0.id).await.map_err(ApiError::from)?;
        Ok(g.into_iter().map(AddressBookGrant).collect())
    }
    /// The book's contacts, by name.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn contacts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<ContactConnection> {
        let page = PageRequest::new(first, after).map_err(ApiError::from)?;
        let filter = ContactFilter { address_books: Some(vec![self.0.id]), ..Default::default() };
        let p = data(ctx)?.contacts(&filter, cohort_store::ContactOrder::Name, &page).await.map_err(ApiError::from)?;
        let rows: Vec<&ContactRecord> = p.rows.iter().map(|r| &r.1).collect();
        prefetch_contacts(ctx, ctx.look_ahead().field("edges").field("node"), &rows).await?;
        Ok(ContactConnection::from_page(p, CountSource::Contacts(filter)))
    }
}

/// Who an address-book grant is for: a user or a user group.
#[derive(Union)]
pub enum GrantPrincipal {
    User(User),
    UserGroup(UserGroup),
}

pub struct AddressBookGrant(pub GrantRecord);

/// Access to one address book, held by a user or a user group.
#[Object]
impl AddressBookGrant {
    /// The user or user group holding the grant.
    async fn principal(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<GrantPrincipal>> {
        Ok(match self.0.principal {
            Principal::User(u) => loader(ctx)?.load_one(u).await?.map(|u| GrantPrincipal::User(User(u))),
            Principal::UserGroup(g) => loader(ctx)?.load_one(g).await?.map(|g| GrantPrincipal::UserGroup(UserGroup(g))),
        })
    }
    /// The access the grant gives.
    async fn level(&self) -> AccessLevel {
        self.0.level.into()
    }
    /// When the grant was made or last changed.
    async fn granted_at(&self) -> DateTime<Utc> {
        self.0.granted_at
    }
    /// Who made the grant; `null` if unknown (e.g. made by the system).
    async fn granted_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        match self.0.granted_by {
            None => Ok(None),
            Some(u) => Ok(loader(ctx)?.load_one(u).await?.map(User)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Principals

pub struct User(pub UserRecord);

impl From<UserRecord> for User {
    fn from(r: UserRecord) -> Self {
        User(r)
    }
}

/// A worker of the tenant (the JWT `sub`).
#[Object]
impl User {
    /// The user's global id (opaque; for `node(id:)` and inputs that take a user).
    pub(crate) async fn id(&self) -> ID {
        ids::encode(UserId::TAG, self.0.id.0)
    }
    /// The identity provider's subject (`sub`).
    async fn subject(&self) -> &str {
        &self.0.subject
    }
    /// Display name (the token's `name` claim, or as pre-created); `null` if unknown.
    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }
    /// E-mail address (the token's `email` claim, or as pre-created); `null` if unknown.
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    /// When the user was first seen or pre-created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the user last made an authenticated request; `null` if they never have.
    async fn last_seen_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_seen_at
    }
}

pub struct UserGroup(pub UserGroupRecord);

impl From<UserGroupRecord> for UserGroup {
    fn from(r: UserGroupRecord) -> Self {
        UserGroup(r)
    }
}

/// A team of users, used in address-book grants.
#[Object]
impl UserGroup {
    /// The user group's global id (opaque; for `node(id:)` and inputs that take a user group).
    pub(crate) async fn id(&self) -> ID {
        ids::encode(UserGroupId::TAG, self.0.id.0)
    }
    /// The group's name, unique in the tenant.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// What the team is, as its creator wrote it; `null` if none.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// When the user group was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Members (admin only).
    async fn members(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<User>> {
        let m = data(ctx)?.user_group_members(self.0.id).await.map_err(ApiError::from)?;
        Ok(m.into_iter().map(User).collect())
    }
}

/// The authenticated caller.
pub struct ViewerInfo;

/// The authenticated caller: who they are, their roles and their own data usage.
#[Object]
impl ViewerInfo {
    /// The viewer's own data usage today and the limits that apply to them: reads are monitored,
    /// and users can see what is counted (DESIGN §1 "Protecting the data").
    async fn data_usage(&self, ctx: &Context<'_>) -> async_graphql::Result<crate::graphql::usage::MyDataUsage> {
        let d = crate::graphql::data(ctx)?;
        let (today, operations) = d.my_data_usage().await.map_err(ApiError::from)?;
        let limits = d.my_data_usage_limits().await.map_err(ApiError::from)?;
        let time_zone = d.data_usage_time_zone().await.map_err(ApiError::from)?.name().to_owned();
        Ok(crate::graphql::usage::MyDataUsage { today, operations, limits, time_zone })
    }
    /// The caller's user record.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        let v = viewer(ctx)?;
        loader(ctx)?.load_one(v.user_id()).await?.map(User).ok_or_else(|| ApiError::NotFound.into())
    }
    /// The tenant key (the token's `tid`).
    async fn tenant(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        Ok(crate::graphql::tenant_key(ctx)?.to_owned())
    }
    /// The roles the caller's token carries.
    async fn roles(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Role>> {
        Ok(viewer(ctx)?
            .roles()
            .iter()
            .map(|r| match r {
                cohort_domain::Role::Admin => Role::Admin,
                cohort_domain::Role::Agent => Role::Agent,
                cohort_domain::Role::Integration => Role::Integration,
            })
            .collect())
    }
    /// Whether the caller is a tenant admin (has the `admin` role).
    async fn is_admin(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        Ok(viewer(ctx)?.is_admin())
    }
    /// The user groups the viewer belongs to.
    async fn user_groups(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<UserGroup>> {
        let g = data(ctx)?.my_user_groups().await.map_err(ApiError::from)?;
        Ok(g.into_iter().map(UserGroup).collect())
    }
}
