//! GraphQL object types. Each wraps a store record (never a sea-orm model) and resolves related
//! objects through the per-request loaders, so visibility rules apply to every hop.

use super::{data, ids, loader, viewer};
use crate::error::ApiError;
use async_graphql::{ComplexObject, Context, Enum, ID, Interface, Object, SimpleObject, Union};
use chrono::{DateTime, Utc};
use cohort_domain::ids::{AddressBookId, ContactId, UserGroupId, UserId};
use cohort_store::{
    AddressBookRecord, BusinessStatusRecord, ContactFilter, ContactRecord, GrantRecord, Page, PageRequest, Principal,
    StatusChangeRecord, UserGroupRecord, UserRecord,
};

use super::loaders::ChannelsOf;

// ---------------------------------------------------------------------------------------------
// Enums

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ContactKind {
    Person,
    Company,
}

impl From<cohort_domain::contact::ContactKind> for ContactKind {
    fn from(k: cohort_domain::contact::ContactKind) -> Self {
        match k {
            cohort_domain::contact::ContactKind::Person => ContactKind::Person,
            cohort_domain::contact::ContactKind::Company => ContactKind::Company,
        }
    }
}

impl From<ContactKind> for cohort_domain::contact::ContactKind {
    fn from(k: ContactKind) -> Self {
        match k {
            ContactKind::Person => cohort_domain::contact::ContactKind::Person,
            ContactKind::Company => cohort_domain::contact::ContactKind::Company,
        }
    }
}

/// Access to an address book; ordered READ < WRITE < MANAGE.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum AccessLevel {
    Read,
    Write,
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

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum Role {
    Admin,
    Agent,
    Integration,
}

// ---------------------------------------------------------------------------------------------
// Relay plumbing

#[derive(SimpleObject, Clone, Debug)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}

pub(crate) fn page_info<T>(p: &Page<T>) -> PageInfo {
    PageInfo {
        has_next_page: p.has_next_page,
        has_previous_page: p.has_previous_page,
        start_cursor: p.rows.first().map(|r| r.0.clone()),
        end_cursor: p.rows.last().map(|r| r.0.clone()),
    }
}

macro_rules! connection {
    ($conn:ident, $edge:ident, $node:ty, $rec:ty, $doc:literal) => {
        #[doc = $doc]
        #[derive(SimpleObject)]
        pub struct $edge {
            pub cursor: String,
            pub node: $node,
        }

        #[derive(SimpleObject)]
        #[graphql(complex)]
        pub struct $conn {
            pub edges: Vec<$edge>,
            pub page_info: PageInfo,
            #[graphql(skip)]
            pub count: Option<CountSource>,
        }

        impl $conn {
            pub fn from_page(p: Page<$rec>, count: Option<CountSource>) -> Self {
                let page_info = page_info(&p);
                $conn {
                    edges: p.rows.into_iter().map(|(cursor, r)| $edge { cursor, node: r.into() }).collect(),
                    page_info,
                    count,
                }
            }
        }
    };
}

/// What `totalCount` counts; evaluated only when the field is selected.
#[derive(Clone)]
pub enum CountSource {
    Contacts(ContactFilter),
}

async fn total_count(ctx: &Context<'_>, c: &Option<CountSource>) -> async_graphql::Result<i64> {
    match c {
        Some(CountSource::Contacts(f)) => Ok(data(ctx)?.count_contacts(f).await.map_err(ApiError::from)? as i64),
        None => Err(ApiError::bad_input("totalCount", "not available for this list").into()),
    }
}

connection!(ContactConnection, ContactEdge, Contact, ContactRecord, "A contact in a page of contacts.");
connection!(AddressBookConnection, AddressBookEdge, AddressBook, AddressBookRecord, "An address book in a page.");
connection!(UserConnection, UserEdge, User, UserRecord, "A user in a page.");
connection!(UserGroupConnection, UserGroupEdge, UserGroup, UserGroupRecord, "A user group in a page.");
connection!(StatusChangeConnection, StatusChangeEdge, StatusChange, StatusChangeRecord, "A business-status change.");

#[ComplexObject]
impl ContactConnection {
    /// The number of matching contacts the viewer can see (never counts hidden ones).
    async fn total_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        total_count(ctx, &self.count).await
    }
}
#[ComplexObject]
impl AddressBookConnection {}
#[ComplexObject]
impl UserConnection {}
#[ComplexObject]
impl UserGroupConnection {}
#[ComplexObject]
impl StatusChangeConnection {}

/// The Relay `Node` interface: anything with a global id that `node(id:)` can fetch.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "Opaque, type-checked global id."))]
pub enum Node {
    Contact(Contact),
    AddressBook(AddressBook),
    User(User),
    UserGroup(UserGroup),
    Group(super::groups::Group),
    Order(super::pricing::Order),
}

// ---------------------------------------------------------------------------------------------
// Contacts

/// Loads, for a whole page of contacts at once, each per-row field the query selects under
/// `node` (one store call per field, whatever the page size). Rows then read from the loaders'
/// request cache. Batching therefore never depends on how fast sibling rows happen to resolve.
pub(crate) async fn prefetch_contacts(
    ctx: &Context<'_>,
    node: async_graphql::Lookahead<'_>,
    contacts: &[&ContactRecord],
) -> async_graphql::Result<()> {
    if contacts.is_empty() || !node.exists() {
        return Ok(());
    }
    let l = loader(ctx)?;
    if node.field("emails").exists() || node.field("phones").exists() {
        l.load_many(contacts.iter().map(|c| ChannelsOf(c.id))).await?;
    }
    if node.field("addressBook").exists() {
        l.load_many(contacts.iter().map(|c| c.address_book_id)).await?;
    }
    if node.field("businessStatus").exists() {
        l.load_many(contacts.iter().filter_map(|c| c.business_status_id)).await?;
    }
    if node.field("company").exists() {
        l.load_many(contacts.iter().filter_map(|c| c.company_id)).await?;
    }
    if node.field("memberships").exists() {
        l.load_many(contacts.iter().map(|c| super::loaders::MembershipsOf(c.id))).await?;
    }
    Ok(())
}

pub struct Contact(pub ContactRecord);

impl From<ContactRecord> for Contact {
    fn from(r: ContactRecord) -> Self {
        Contact(r)
    }
}

#[derive(SimpleObject, Clone)]
pub struct EmailAddress {
    pub address: String,
    pub label: Option<String>,
}

#[derive(SimpleObject, Clone)]
pub struct PhoneNumber {
    pub number: String,
    pub label: Option<String>,
}

/// A person or company in one address book.
#[Object]
impl Contact {
    async fn id(&self) -> ID {
        ids::encode(ContactId::TAG, self.0.id.0)
    }
    async fn kind(&self) -> ContactKind {
        self.0.kind.into()
    }
    async fn first_name(&self) -> Option<&str> {
        self.0.first_name.as_deref()
    }
    async fn last_name(&self) -> Option<&str> {
        self.0.last_name.as_deref()
    }
    async fn company_name(&self) -> Option<&str> {
        self.0.company_name.as_deref()
    }
    /// "First Last" for a person, the company name for a company.
    async fn display_name(&self) -> &str {
        &self.0.display_name
    }
    async fn emails(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<EmailAddress>> {
        let ch = loader(ctx)?.load_one(ChannelsOf(self.0.id)).await?.unwrap_or_default();
        Ok(ch.emails.into_iter().map(|e| EmailAddress { address: e.address, label: e.label }).collect())
    }
    async fn phones(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<PhoneNumber>> {
        let ch = loader(ctx)?.load_one(ChannelsOf(self.0.id)).await?.unwrap_or_default();
        Ok(ch.phones.into_iter().map(|p| PhoneNumber { number: p.number, label: p.label }).collect())
    }
    /// A person's company — `null` when there is none or the viewer cannot see it.
    async fn company(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Contact>> {
        match self.0.company_id {
            None => Ok(None),
            Some(c) => Ok(loader(ctx)?.load_one(c).await?.map(Contact)),
        }
    }
    async fn address_book(&self, ctx: &Context<'_>) -> async_graphql::Result<AddressBook> {
        // A visible contact's book is always visible; a miss here means it changed mid-request.
        loader(ctx)?.load_one(self.0.address_book_id).await?.map(AddressBook).ok_or_else(|| ApiError::NotFound.into())
    }
    async fn business_status(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<BusinessStatus>> {
        match self.0.business_status_id {
            None => Ok(None),
            Some(s) => Ok(loader(ctx)?.load_one(s).await?.map(BusinessStatus)),
        }
    }
    /// Every business-status change, newest first.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn status_history(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<StatusChangeConnection> {
        let page = PageRequest::new(first, after).map_err(ApiError::from)?;
        let p = data(ctx)?.status_history(self.0.id, &page).await.map_err(ApiError::from)?;
        Ok(StatusChangeConnection::from_page(p, None))
    }
    /// The contact's orders, newest first.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn orders(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<super::pricing::OrderConnection> {
        super::pricing::contact_orders(ctx, self.0.id, first, after).await
    }
    /// The contact's memberships in groups the viewer can see, by group name. Resolving this
    /// for more than 100 contacts in one request refuses the request (`EXPORT_LIMIT`).
    async fn memberships(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<super::groups::GroupMembership>> {
        super::groups::contact_memberships(ctx, self.0.id).await
    }
    /// Every join and leave of this contact in groups the viewer can see, newest first.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn membership_history(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<super::groups::MembershipEventConnection> {
        super::groups::contact_membership_history(ctx, self.0.id, first, after).await
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

pub struct BusinessStatus(pub BusinessStatusRecord);

/// One entry of the tenant's business-status classification.
#[Object]
impl BusinessStatus {
    /// Stable key, used in filters and `setContactBusinessStatus` (e.g. `lead_hot`).
    async fn key(&self) -> &str {
        &self.0.key
    }
    async fn label(&self) -> &str {
        &self.0.label
    }
    /// LEAD, PROSPECT, CUSTOMER or DEAD.
    async fn category(&self) -> &str {
        &self.0.category
    }
    async fn position(&self) -> i32 {
        self.0.position
    }
}

pub struct StatusChange(pub StatusChangeRecord);

impl From<StatusChangeRecord> for StatusChange {
    fn from(r: StatusChangeRecord) -> Self {
        StatusChange(r)
    }
}

#[Object]
impl StatusChange {
    async fn from(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<BusinessStatus>> {
        match self.0.from_status_id {
            None => Ok(None),
            Some(s) => Ok(loader(ctx)?.load_one(s).await?.map(BusinessStatus)),
        }
    }
    async fn to(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<BusinessStatus>> {
        match self.0.to_status_id {
            None => Ok(None),
            Some(s) => Ok(loader(ctx)?.load_one(s).await?.map(BusinessStatus)),
        }
    }
    async fn changed_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        match self.0.changed_by {
            None => Ok(None),
            Some(u) => Ok(loader(ctx)?.load_one(u).await?.map(User)),
        }
    }
    async fn changed_at(&self) -> DateTime<Utc> {
        self.0.changed_at
    }
    async fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }
}

// ---------------------------------------------------------------------------------------------
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
    async fn id(&self) -> ID {
        ids::encode(AddressBookId::TAG, self.0.id.0)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
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
        Ok(ContactConnection::from_page(p, Some(CountSource::Contacts(filter))))
    }
}

#[derive(Union)]
pub enum GrantPrincipal {
    User(User),
    UserGroup(UserGroup),
}

pub struct AddressBookGrant(pub GrantRecord);

#[Object]
impl AddressBookGrant {
    /// The user or user group holding the grant.
    async fn principal(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<GrantPrincipal>> {
        Ok(match self.0.principal {
            Principal::User(u) => loader(ctx)?.load_one(u).await?.map(|u| GrantPrincipal::User(User(u))),
            Principal::UserGroup(g) => loader(ctx)?.load_one(g).await?.map(|g| GrantPrincipal::UserGroup(UserGroup(g))),
        })
    }
    async fn level(&self) -> AccessLevel {
        self.0.level.into()
    }
    async fn granted_at(&self) -> DateTime<Utc> {
        self.0.granted_at
    }
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
    async fn id(&self) -> ID {
        ids::encode(UserId::TAG, self.0.id.0)
    }
    /// The identity provider's subject (`sub`).
    async fn subject(&self) -> &str {
        &self.0.subject
    }
    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
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
    async fn id(&self) -> ID {
        ids::encode(UserGroupId::TAG, self.0.id.0)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
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

#[Object]
impl ViewerInfo {
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        let v = viewer(ctx)?;
        loader(ctx)?.load_one(v.user_id()).await?.map(User).ok_or_else(|| ApiError::NotFound.into())
    }
    /// The tenant key (the token's `tid`).
    async fn tenant(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        Ok(super::tenant_key(ctx)?.to_owned())
    }
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
    async fn is_admin(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        Ok(viewer(ctx)?.is_admin())
    }
    /// The user groups the viewer belongs to.
    async fn user_groups(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<UserGroup>> {
        let g = data(ctx)?.my_user_groups().await.map_err(ApiError::from)?;
        Ok(g.into_iter().map(UserGroup).collect())
    }
}
