//! Contact groups in GraphQL: the `Group` type, member pages with provenance, membership history,
//! and the group queries and mutations.

use super::loaders::{EffectiveOf, MemberCountOf, MembershipsOf};
use super::types::*;
use super::{data, ids, loader, viewer};
use crate::error::ApiError;
use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use chrono::{DateTime, Utc};
use cohort_domain::group::MembershipSource as DomainSource;
use cohort_domain::ids::{AddressBookId, ContactId, GroupId, MembershipEventId};
use cohort_store::{
    GroupFilter, GroupInput, GroupPatch, GroupRecord, MemberOrder, MemberRecord, MembershipEventRecord,
    MembershipRecord, Page, PageRequest, SubgroupPolicy,
};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// How a contact came to be in a group.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum MembershipSource {
    Assigned,
    Import,
    Api,
    WebForm,
    SelfService,
    Automation,
}

impl From<DomainSource> for MembershipSource {
    fn from(s: DomainSource) -> Self {
        match s {
            DomainSource::Assigned => Self::Assigned,
            DomainSource::Import => Self::Import,
            DomainSource::Api => Self::Api,
            DomainSource::WebForm => Self::WebForm,
            DomainSource::SelfService => Self::SelfService,
            DomainSource::Automation => Self::Automation,
        }
    }
}

impl From<MembershipSource> for DomainSource {
    fn from(s: MembershipSource) -> Self {
        match s {
            MembershipSource::Assigned => Self::Assigned,
            MembershipSource::Import => Self::Import,
            MembershipSource::Api => Self::Api,
            MembershipSource::WebForm => Self::WebForm,
            MembershipSource::SelfService => Self::SelfService,
            MembershipSource::Automation => Self::Automation,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum MemberOrderBy {
    /// By the contact's sort name (a person's last name, a company's name), then id.
    Name,
    /// Earliest member first.
    JoinedAt,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum MembershipAction {
    Join,
    Leave,
}

/// Caps how many contacts one request may resolve memberships for (DESIGN §1 "Protecting the
/// data": no bulk export of contacts together with their groups). Over the cap the whole request
/// is refused: the HTTP layer drops `data`.
#[derive(Default)]
pub struct ExportGuard {
    contacts: AtomicUsize,
    pub tripped: AtomicBool,
}

pub const MAX_MEMBERSHIP_CONTACTS: usize = 100;

/// The request's guard, shared with the HTTP layer (request data must be owned).
pub struct ExportGuardRef(pub std::sync::Arc<ExportGuard>);

impl ExportGuard {
    fn admit(&self) -> Result<(), ApiError> {
        if self.contacts.fetch_add(1, Ordering::Relaxed) >= MAX_MEMBERSHIP_CONTACTS {
            self.tripped.store(true, Ordering::Relaxed);
            return Err(ApiError::ExportLimit(MAX_MEMBERSHIP_CONTACTS));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------

pub struct Group(pub GroupRecord);

impl From<GroupRecord> for Group {
    fn from(r: GroupRecord) -> Self {
        Group(r)
    }
}

/// Member counts go through a loader: a page of groups costs one statement, not one per group.
async fn member_count(ctx: &Context<'_>, group: GroupId, include_subgroups: bool) -> async_graphql::Result<i64> {
    let n = loader(ctx)?.load_one(MemberCountOf { group, include_subgroups }).await?.unwrap_or(0);
    Ok(n as i64)
}

fn page_req(first: Option<i32>, after: Option<String>) -> Result<PageRequest, ApiError> {
    PageRequest::new(first, after).map_err(ApiError::from)
}

/// A segment of contacts. Reading it needs READ on its home address book; it may hold contacts
/// of any book, and shows each viewer exactly the members they could see anyway.
#[Object]
impl Group {
    pub async fn id(&self) -> ID {
        ids::encode(GroupId::TAG, self.0.id.0)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// The home address book: reading needs READ there, configuring MANAGE.
    async fn address_book(&self, ctx: &Context<'_>) -> async_graphql::Result<AddressBook> {
        loader(ctx)?.load_one(self.0.address_book_id).await?.map(AddressBook).ok_or_else(|| ApiError::NotFound.into())
    }
    /// Smaller first: decides between a contact's groups (routing).
    async fn precedence(&self) -> i32 {
        self.0.precedence
    }
    async fn public_name(&self) -> Option<&str> {
        self.0.public_name.as_deref()
    }
    async fn public_description(&self) -> Option<&str> {
        self.0.public_description.as_deref()
    }
    /// A group with a public name is public: members may unsubscribe themselves.
    async fn is_public(&self) -> bool {
        self.0.public_name.is_some()
    }
    async fn my_access(&self) -> AccessLevel {
        self.0.my_access.into()
    }
    /// The parent group; `null` for a root (or a parent the viewer cannot see).
    async fn parent(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Group>> {
        match self.0.parent_id {
            None => Ok(None),
            Some(p) => Ok(loader(ctx)?.load_one(p).await?.map(Group)),
        }
    }
    /// Direct subgroups the viewer can see, by name.
    async fn children(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Group>> {
        let c = data(ctx)?.group_children(self.0.id).await.map_err(ApiError::from)?;
        Ok(c.into_iter().map(Group).collect())
    }
    /// Ancestors the viewer can see, nearest first.
    async fn ancestors(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Group>> {
        let a = data(ctx)?.group_ancestors(self.0.id).await.map_err(ApiError::from)?;
        Ok(a.into_iter().map(Group).collect())
    }
    /// All groups below this one that the viewer can see, by name.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn descendants(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<GroupConnection> {
        let p = data(ctx)?.group_descendants(self.0.id, &page_req(first, after)?).await.map_err(ApiError::from)?;
        Ok(GroupConnection::from_page(p))
    }
    /// Members the viewer can see. With `includeSubgroups`, members of any descendant count too
    /// (each contact once).
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn members(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(desc = "Count members of descendant groups too (default false).")] include_subgroups: Option<bool>,
        #[graphql(desc = "Default NAME.")] order_by: Option<MemberOrderBy>,
    ) -> async_graphql::Result<GroupMemberConnection> {
        let include_subgroups = include_subgroups.unwrap_or(false);
        let order = match order_by.unwrap_or(MemberOrderBy::Name) {
            MemberOrderBy::Name => MemberOrder::Name,
            MemberOrderBy::JoinedAt => MemberOrder::JoinedAt,
        };
        let p = data(ctx)?
            .group_members(self.0.id, include_subgroups, order, &page_req(first, after)?)
            .await
            .map_err(ApiError::from)?;
        // Prefetch what the edges ask for, for the whole page at once.
        let edges = ctx.look_ahead().field("edges");
        let rows: Vec<&cohort_store::ContactRecord> = p.rows.iter().map(|r| &r.1.contact).collect();
        prefetch_contacts(ctx, edges.field("node"), &rows).await?;
        let l = loader(ctx)?;
        let wants_membership = ["joinedAt", "source", "assignedBy", "group"].iter().any(|f| edges.field(f).exists());
        let mut memberships: Vec<MembershipRecord> = p.rows.iter().filter_map(|r| r.1.membership.clone()).collect();
        if include_subgroups && wants_membership {
            let keys = p.rows.iter().map(|r| EffectiveOf { root: self.0.id, contact: r.1.contact.id });
            memberships.extend(l.load_many(keys).await?.into_values().flatten());
        }
        if edges.field("assignedBy").exists() {
            l.load_many(memberships.iter().filter_map(|m| m.assigned_by)).await?;
        }
        if edges.field("group").exists() {
            l.load_many(memberships.iter().map(|m| m.group_id)).await?;
        }
        Ok(GroupMemberConnection::new(p, self.0.id, include_subgroups))
    }
    /// How many members the viewer can see.
    async fn member_count(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Count members of descendant groups too (default false).")] include_subgroups: Option<bool>,
    ) -> async_graphql::Result<i64> {
        member_count(ctx, self.0.id, include_subgroups.unwrap_or(false)).await
    }
    /// Every join and leave of a member the viewer can see, newest first.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn membership_history(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<MembershipEventConnection> {
        let p = data(ctx)?
            .membership_history(Some(self.0.id), None, &page_req(first, after)?)
            .await
            .map_err(ApiError::from)?;
        Ok(MembershipEventConnection::from_page(p))
    }
    /// Orders of the members the viewer can see, newest first.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn orders(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        include_subgroups: Option<bool>,
    ) -> async_graphql::Result<super::pricing::OrderConnection> {
        super::pricing::group_orders(ctx, self.0.id, include_subgroups.unwrap_or(false), first, after).await
    }
    /// Order count and totals per currency over the members the viewer can see, for orders
    /// placed in `[from, to)`.
    async fn order_summary(
        &self,
        ctx: &Context<'_>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        include_subgroups: Option<bool>,
    ) -> async_graphql::Result<Vec<super::pricing::OrderSummary>> {
        super::pricing::group_order_summary(ctx, self.0.id, include_subgroups.unwrap_or(false), from, to).await
    }
    /// The group's own price lists, by priority.
    async fn price_lists(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<super::pricing::GroupPriceList>> {
        super::pricing::group_price_lists(ctx, self.0.id, false).await
    }
    /// The lists that apply to the group's members: its own, else the nearest ancestor's
    /// (`definedOn` names where they come from).
    async fn effective_price_lists(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<super::pricing::GroupPriceList>> {
        super::pricing::group_price_lists(ctx, self.0.id, true).await
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

#[derive(SimpleObject)]
pub struct GroupEdge {
    pub cursor: String,
    pub node: Group,
}

#[derive(SimpleObject)]
pub struct GroupConnection {
    pub edges: Vec<GroupEdge>,
    pub page_info: PageInfo,
}

impl GroupConnection {
    pub fn from_page(p: Page<GroupRecord>) -> Self {
        let page_info = page_info(&p);
        GroupConnection {
            edges: p.rows.into_iter().map(|(cursor, g)| GroupEdge { cursor, node: Group(g) }).collect(),
            page_info,
        }
    }
}

/// A member on a page, with how and when they joined.
pub struct GroupMemberEdge {
    cursor: String,
    rec: MemberRecord,
    root: GroupId,
}

impl GroupMemberEdge {
    async fn membership(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<MembershipRecord>> {
        match &self.rec.membership {
            Some(m) => Ok(Some(m.clone())),
            None => Ok(loader(ctx)?
                .load_one(EffectiveOf { root: self.root, contact: self.rec.contact.id })
                .await?
                .flatten()),
        }
    }
}

#[Object]
impl GroupMemberEdge {
    async fn cursor(&self) -> &str {
        &self.cursor
    }
    async fn node(&self) -> Contact {
        Contact(self.rec.contact.clone())
    }
    /// When the contact joined (with `includeSubgroups`: joined this group, else the earliest
    /// subgroup).
    async fn joined_at(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<DateTime<Utc>>> {
        Ok(self.membership(ctx).await?.map(|m| m.joined_at))
    }
    async fn source(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<MembershipSource>> {
        Ok(self.membership(ctx).await?.map(|m| m.source.into()))
    }
    /// Who added the contact (for memberships added by a user or script).
    async fn assigned_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        match self.membership(ctx).await?.and_then(|m| m.assigned_by) {
            None => Ok(None),
            Some(u) => Ok(loader(ctx)?.load_one(u).await?.map(User)),
        }
    }
    /// The group the membership is in: this group, or with `includeSubgroups` possibly a subgroup.
    async fn group(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Group>> {
        match self.membership(ctx).await? {
            None => Ok(None),
            Some(m) => Ok(loader(ctx)?.load_one(m.group_id).await?.map(Group)),
        }
    }
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct GroupMemberConnection {
    pub edges: Vec<GroupMemberEdge>,
    pub page_info: PageInfo,
    #[graphql(skip)]
    group: GroupId,
    #[graphql(skip)]
    include_subgroups: bool,
}

impl GroupMemberConnection {
    fn new(p: Page<MemberRecord>, group: GroupId, include_subgroups: bool) -> Self {
        let page_info = page_info(&p);
        GroupMemberConnection {
            edges: p.rows.into_iter().map(|(cursor, rec)| GroupMemberEdge { cursor, rec, root: group }).collect(),
            page_info,
            group,
            include_subgroups,
        }
    }
}

#[ComplexObject]
impl GroupMemberConnection {
    /// The number of members the viewer can see.
    async fn total_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        member_count(ctx, self.group, self.include_subgroups).await
    }
}

/// A contact's membership in one group.
pub struct GroupMembership(pub MembershipRecord);

#[Object]
impl GroupMembership {
    async fn group(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Group>> {
        Ok(loader(ctx)?.load_one(self.0.group_id).await?.map(Group))
    }
    async fn joined_at(&self) -> DateTime<Utc> {
        self.0.joined_at
    }
    async fn source(&self) -> MembershipSource {
        self.0.source.into()
    }
    async fn assigned_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        match self.0.assigned_by {
            None => Ok(None),
            Some(u) => Ok(loader(ctx)?.load_one(u).await?.map(User)),
        }
    }
}

/// One join or leave, as recorded (never rewritten).
pub struct MembershipEvent(pub MembershipEventRecord);

#[Object]
impl MembershipEvent {
    async fn id(&self) -> ID {
        ids::encode(MembershipEventId::TAG, self.0.id.0)
    }
    async fn action(&self) -> MembershipAction {
        if self.0.action == "LEAVE" { MembershipAction::Leave } else { MembershipAction::Join }
    }
    async fn contact(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Contact>> {
        Ok(loader(ctx)?.load_one(self.0.contact_id).await?.map(Contact))
    }
    async fn group(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Group>> {
        Ok(loader(ctx)?.load_one(self.0.group_id).await?.map(Group))
    }
    /// Who made the change.
    async fn actor(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        match self.0.actor_id {
            None => Ok(None),
            Some(u) => Ok(loader(ctx)?.load_one(u).await?.map(User)),
        }
    }
    async fn source(&self) -> MembershipSource {
        self.0.source.into()
    }
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
}

#[derive(SimpleObject)]
pub struct MembershipEventEdge {
    pub cursor: String,
    pub node: MembershipEvent,
}

#[derive(SimpleObject)]
pub struct MembershipEventConnection {
    pub edges: Vec<MembershipEventEdge>,
    pub page_info: PageInfo,
}

impl MembershipEventConnection {
    pub fn from_page(p: Page<MembershipEventRecord>) -> Self {
        let page_info = page_info(&p);
        MembershipEventConnection {
            edges: p
                .rows
                .into_iter()
                .map(|(cursor, e)| MembershipEventEdge { cursor, node: MembershipEvent(e) })
                .collect(),
            page_info,
        }
    }
}

/// Group fields of `Contact` (kept here, next to the group types).
pub async fn contact_memberships(ctx: &Context<'_>, contact: ContactId) -> async_graphql::Result<Vec<GroupMembership>> {
    if let Some(g) = ctx.data_opt::<ExportGuardRef>() {
        g.0.admit()?;
    }
    let m = loader(ctx)?.load_one(MembershipsOf(contact)).await?.unwrap_or_default();
    Ok(m.into_iter().map(GroupMembership).collect())
}

pub async fn contact_membership_history(
    ctx: &Context<'_>,
    contact: ContactId,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<MembershipEventConnection> {
    // A contact's history reveals its memberships too: it counts against the export cap.
    if let Some(g) = ctx.data_opt::<ExportGuardRef>() {
        g.0.admit()?;
    }
    let p =
        data(ctx)?.membership_history(None, Some(contact), &page_req(first, after)?).await.map_err(ApiError::from)?;
    Ok(MembershipEventConnection::from_page(p))
}

// ---------------------------------------------------------------------------------------------
// Queries

#[derive(InputObject, Default)]
pub struct GroupFilterInput {
    /// Only direct subgroups of this group.
    pub parent_id: Option<ID>,
    /// Only groups without a parent.
    #[graphql(default)]
    pub roots_only: bool,
    /// Case-insensitive prefix of the group's name.
    pub search: Option<String>,
    pub is_public: Option<bool>,
}

#[derive(Default)]
pub struct GroupQuery;

#[Object]
impl GroupQuery {
    /// One group; `NOT_FOUND` if the viewer cannot see it (exactly as for one that never existed).
    async fn group(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Group> {
        viewer(ctx)?;
        let id = GroupId(ids::decode(GroupId::TAG, &id)?);
        loader(ctx)?.load_one(id).await?.map(Group).ok_or_else(|| ApiError::NotFound.into())
    }

    /// Groups the viewer can see, by name.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn groups(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<GroupFilterInput>,
    ) -> async_graphql::Result<GroupConnection> {
        let f = filter.unwrap_or_default();
        let filter = GroupFilter {
            parent_id: f.parent_id.as_ref().map(|p| ids::decode(GroupId::TAG, p).map(GroupId)).transpose()?,
            roots_only: f.roots_only,
            search: f.search,
            is_public: f.is_public,
        };
        let p = data(ctx)?.groups(&filter, &page_req(first, after)?).await.map_err(ApiError::from)?;
        Ok(GroupConnection::from_page(p))
    }
}

// ---------------------------------------------------------------------------------------------
// Mutations

#[derive(InputObject)]
pub struct CreateGroupInput {
    /// The home address book (needs MANAGE there).
    pub address_book_id: ID,
    pub name: String,
    pub description: Option<String>,
    /// The parent group (needs MANAGE on its home book too).
    pub parent_id: Option<ID>,
    #[graphql(default)]
    pub precedence: i32,
    /// Setting a public name makes the group public.
    pub public_name: Option<String>,
    pub public_description: Option<String>,
}

#[derive(SimpleObject)]
pub struct CreateGroupPayload {
    pub group: Group,
}

/// Omitted fields stay as they are; `null` clears an optional field.
#[derive(InputObject)]
pub struct UpdateGroupInput {
    pub id: ID,
    /// Re-home the group (needs MANAGE on both books).
    pub address_book_id: Option<ID>,
    pub name: Option<String>,
    pub description: MaybeUndefined<String>,
    pub precedence: Option<i32>,
    pub public_name: MaybeUndefined<String>,
    pub public_description: MaybeUndefined<String>,
}

#[derive(SimpleObject)]
pub struct UpdateGroupPayload {
    pub group: Group,
}

#[derive(InputObject)]
pub struct MoveGroupInput {
    pub id: ID,
    /// The new parent; `null` makes the group a root. Cycles are refused.
    pub parent_id: Option<ID>,
}

#[derive(SimpleObject)]
pub struct MoveGroupPayload {
    pub group: Group,
}

/// A group with subgroups is only deleted when the request says what happens to them.
#[derive(InputObject)]
pub struct DeleteGroupInput {
    pub id: ID,
    /// Move the subgroups under this group (`null`: make them roots).
    pub reparent_children_to: MaybeUndefined<ID>,
    /// Delete the whole subtree (needs MANAGE on every subgroup).
    #[graphql(default)]
    pub delete_subgroups: bool,
}

#[derive(SimpleObject)]
pub struct DeleteGroupPayload {
    pub deleted_id: ID,
    /// The group and, with `deleteSubgroups`, every deleted subgroup.
    pub deleted_ids: Vec<ID>,
}

#[derive(InputObject)]
pub struct AddGroupMembersInput {
    pub group_id: ID,
    /// Up to 10,000 contact ids.
    pub contact_ids: Vec<ID>,
    /// Default: API for integration tokens, ASSIGNED otherwise.
    pub source: Option<MembershipSource>,
    /// Replaying a request with the same key returns the first answer and changes nothing.
    pub idempotency_key: Option<String>,
}

#[derive(SimpleObject)]
pub struct AddGroupMembersPayload {
    pub group: Group,
    pub added_count: i32,
    pub already_member_count: i32,
    /// Ids that are unknown — or that you cannot see: the two are indistinguishable.
    pub not_found: Vec<ID>,
}

#[derive(InputObject)]
pub struct RemoveGroupMembersInput {
    pub group_id: ID,
    /// Up to 10,000 contact ids.
    pub contact_ids: Vec<ID>,
    /// Why (kept in the membership history).
    pub reason: Option<String>,
    pub idempotency_key: Option<String>,
}

#[derive(SimpleObject)]
pub struct RemoveGroupMembersPayload {
    pub group: Group,
    pub removed_count: i32,
    /// Visible contacts that were not members.
    pub not_member_count: i32,
    pub not_found: Vec<ID>,
}

fn group_id(id: &ID) -> Result<GroupId, ApiError> {
    Ok(GroupId(ids::decode(GroupId::TAG, id)?))
}

/// Splits client ids into decodable contact ids and the rest (which are simply not found), and
/// renders the final `notFound` list in the client's order, each id once.
fn contact_ids(input: &[ID]) -> Result<Vec<ContactId>, ApiError> {
    if input.len() > cohort_domain::group::MAX_BULK_IDS {
        return Err(ApiError::bad_input(
            "contactIds",
            format!("at most {} ids per call", cohort_domain::group::MAX_BULK_IDS),
        ));
    }
    Ok(input.iter().filter_map(|i| ids::decode(ContactId::TAG, i).ok()).map(ContactId).collect())
}

fn not_found(input: &[ID], missing: &[ContactId]) -> Vec<ID> {
    let missing: std::collections::HashSet<uuid::Uuid> = missing.iter().map(|c| c.0).collect();
    let mut seen = std::collections::HashSet::new();
    input
        .iter()
        .filter(|i| match ids::decode(ContactId::TAG, i) {
            Ok(u) => missing.contains(&u),
            Err(_) => true,
        })
        .filter(|i| seen.insert(i.as_str().to_owned()))
        .cloned()
        .collect()
}

async fn reload(ctx: &Context<'_>, id: GroupId) -> async_graphql::Result<Group> {
    let g = data(ctx)?.groups_by_ids(&[id]).await.map_err(ApiError::from)?;
    g.into_iter().next().map(Group).ok_or_else(|| ApiError::NotFound.into())
}

#[derive(Default)]
pub struct GroupMutation;

#[Object]
impl GroupMutation {
    /// Creates a group (MANAGE on its home book, and on the parent's if it has one).
    async fn create_group(
        &self,
        ctx: &Context<'_>,
        input: CreateGroupInput,
    ) -> async_graphql::Result<CreateGroupPayload> {
        let g = data(ctx)?
            .create_group(GroupInput {
                address_book_id: AddressBookId(ids::decode(AddressBookId::TAG, &input.address_book_id)?),
                parent_id: input.parent_id.as_ref().map(group_id).transpose()?,
                name: input.name,
                description: input.description,
                precedence: input.precedence,
                public_name: input.public_name,
                public_description: input.public_description,
            })
            .await
            .map_err(ApiError::from)?;
        Ok(CreateGroupPayload { group: Group(g) })
    }

    /// Changes a group's settings (MANAGE on its home book).
    async fn update_group(
        &self,
        ctx: &Context<'_>,
        input: UpdateGroupInput,
    ) -> async_graphql::Result<UpdateGroupPayload> {
        let id = group_id(&input.id)?;
        let patch = GroupPatch {
            address_book_id: input
                .address_book_id
                .as_ref()
                .map(|b| ids::decode(AddressBookId::TAG, b).map(AddressBookId))
                .transpose()?,
            name: input.name,
            description: super::patch(input.description),
            precedence: input.precedence,
            public_name: super::patch(input.public_name),
            public_description: super::patch(input.public_description),
        };
        let g = data(ctx)?.update_group(id, patch).await.map_err(ApiError::from)?;
        Ok(UpdateGroupPayload { group: Group(g) })
    }

    /// Moves a group and its subtree; memberships stay.
    async fn move_group(&self, ctx: &Context<'_>, input: MoveGroupInput) -> async_graphql::Result<MoveGroupPayload> {
        let id = group_id(&input.id)?;
        let parent = input.parent_id.as_ref().map(group_id).transpose()?;
        let g = data(ctx)?.move_group(id, parent).await.map_err(ApiError::from)?;
        Ok(MoveGroupPayload { group: Group(g) })
    }

    /// Deletes a group; its memberships end with history entries.
    async fn delete_group(
        &self,
        ctx: &Context<'_>,
        input: DeleteGroupInput,
    ) -> async_graphql::Result<DeleteGroupPayload> {
        let id = group_id(&input.id)?;
        let policy = match (super::patch(input.reparent_children_to), input.delete_subgroups) {
            (Some(_), true) => {
                return Err(ApiError::bad_input(
                    "deleteSubgroups",
                    "give either reparentChildrenTo or deleteSubgroups",
                )
                .into());
            }
            (Some(target), false) => SubgroupPolicy::ReparentTo(target.as_ref().map(group_id).transpose()?),
            (None, true) => SubgroupPolicy::Delete,
            (None, false) => SubgroupPolicy::Refuse,
        };
        let deleted = data(ctx)?.delete_group(id, policy).await.map_err(ApiError::from)?;
        Ok(DeleteGroupPayload {
            deleted_id: input.id,
            deleted_ids: deleted.into_iter().map(|g| ids::encode(GroupId::TAG, g.0)).collect(),
        })
    }

    /// Adds up to 10,000 contacts to a group in one transaction (WRITE on the group's home book).
    async fn add_group_members(
        &self,
        ctx: &Context<'_>,
        input: AddGroupMembersInput,
    ) -> async_graphql::Result<AddGroupMembersPayload> {
        let gid = group_id(&input.group_id)?;
        let wanted = contact_ids(&input.contact_ids)?;
        let out = data(ctx)?
            .add_group_members(gid, &wanted, input.source.map(Into::into), input.idempotency_key.as_deref())
            .await
            .map_err(ApiError::from)?;
        Ok(AddGroupMembersPayload {
            group: reload(ctx, gid).await?,
            added_count: out.added as i32,
            already_member_count: out.already_members as i32,
            not_found: not_found(&input.contact_ids, &out.not_found),
        })
    }

    /// Removes up to 10,000 contacts from a group in one transaction.
    async fn remove_group_members(
        &self,
        ctx: &Context<'_>,
        input: RemoveGroupMembersInput,
    ) -> async_graphql::Result<RemoveGroupMembersPayload> {
        let gid = group_id(&input.group_id)?;
        let wanted = contact_ids(&input.contact_ids)?;
        let out = data(ctx)?
            .remove_group_members(gid, &wanted, input.reason.as_deref(), input.idempotency_key.as_deref())
            .await
            .map_err(ApiError::from)?;
        Ok(RemoveGroupMembersPayload {
            group: reload(ctx, gid).await?,
            removed_count: out.removed as i32,
            not_member_count: out.not_members as i32,
            not_found: not_found(&input.contact_ids, &out.not_found),
        })
    }
}
