//! Contact groups, memberships and their history, as GraphQL objects.

use crate::error::ApiError;
use crate::graphql::access::*;
use crate::graphql::contacts::*;
use crate::graphql::loaders::*;
use crate::graphql::relay::*;
use crate::graphql::{data, ids, loader};
use async_graphql::{ComplexObject, Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use cohort_domain::group::MembershipSource as DomainSource;
use cohort_domain::ids::{ContactId, GroupId, MembershipEventId};
use cohort_store::{GroupRecord, MemberOrder, MemberRecord, MembershipEventRecord, MembershipRecord, Page};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Whether a member page's edges (`edges`) ask for the membership's provenance.
fn wants_provenance(edges: &async_graphql::Lookahead<'_>) -> bool {
    ["joinedAt", "source", "assignedBy", "group", "consent"].iter().any(|f| edges.field(f).exists())
}

/// The page a `group(id)` resolver prefetched for this very `members` field, if any.
fn take_prefetched(ctx: &Context<'_>, key: &MembersKey) -> async_graphql::Result<Option<PrefetchedMembers>> {
    let mut waiting = loader(ctx)?
        .loader()
        .prefetched_members
        .lock()
        .map_err(|_| ApiError::Internal("prefetched member pages poisoned".into()))?;
    Ok(waiting.iter().position(|p| &p.key == key).map(|i| waiting.swap_remove(i)))
}

/// `group(id) { members(…) { … } }` in one statement: when the selection asks for exactly one
/// `members` field (no directives), the group and that page are read together
/// ([`cohort_store::DataHandle::group_with_members`]) and the page waits in the request's
/// loaders for the field. `Ok(None)` when the shortcut does not apply (the caller loads the group
/// alone, and `members` reads its page as usual — and reports any bad argument); otherwise the
/// group, or `Some(None)` when the viewer cannot see it.
pub(crate) async fn group_with_members(
    ctx: &Context<'_>,
    id: GroupId,
) -> async_graphql::Result<Option<Option<GroupRecord>>> {
    use async_graphql::InputType;
    let fields = ctx.look_ahead().field("members").selection_fields();
    let [field] = fields.as_slice() else { return Ok(None) };
    if !field.directives()?.is_empty() {
        return Ok(None);
    }
    let args = field.arguments()?;
    // Each argument parsed as the `members` resolver parses it; anything it would refuse makes
    // the shortcut step aside so the resolver reports it.
    fn arg<T: InputType>(args: &[(async_graphql::Name, async_graphql::Value)], name: &str) -> Option<T> {
        T::parse(args.iter().find(|(n, _)| n.as_str() == name).map(|(_, v)| v.clone())).ok()
    }
    let (Some(first), Some(after), Some(include_subgroups), Some(order_by), Some(consent)) = (
        arg::<Option<i32>>(&args, "first"),
        arg::<Option<String>>(&args, "after"),
        arg::<Option<bool>>(&args, "includeSubgroups"),
        arg::<Option<MemberOrderBy>>(&args, "orderBy"),
        arg::<Option<crate::graphql::consent::ConsentStatus>>(&args, "consent"),
    ) else {
        return Ok(None);
    };
    let Ok(req) = page_req(first, after) else { return Ok(None) };
    let members = async_graphql::Lookahead::from(*field);
    let with_total = members.field("totalCount").exists();
    let parts = contact_parts(&members.field("edges").field("node"));
    let membership = wants_provenance(&members.field("edges"));
    let key = MembersKey {
        group: id,
        include_subgroups: include_subgroups.unwrap_or(false),
        order: match order_by.unwrap_or(MemberOrderBy::Name) {
            MemberOrderBy::Name => MemberOrder::Name,
            MemberOrderBy::JoinedAt => MemberOrder::JoinedAt,
        },
        consent: consent.map(Into::into),
        first: req.first,
        after: req.after.clone(),
        with_total,
        membership,
    };
    let found = match data(ctx)?
        .group_with_members(
            id,
            key.include_subgroups,
            key.order,
            key.consent,
            &req,
            cohort_store::ReadAlong { total: with_total, parts, membership },
        )
        .await
    {
        Ok(found) => found,
        // A bad cursor: let the field report it as it always does.
        Err(cohort_store::StoreError::Invalid(_)) => return Ok(None),
        Err(e) => return Err(ApiError::from(e).into()),
    };
    let Some((group, page, total)) = found else { return Ok(Some(None)) };
    loader(ctx)?
        .loader()
        .prefetched_members
        .lock()
        .map_err(|_| ApiError::Internal("prefetched member pages poisoned".into()))?
        .push(PrefetchedMembers { key, page, total });
    Ok(Some(Some(group)))
}

/// How a contact came to be in a group.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum MembershipSource {
    /// Added by a user (an agent or admin) in Cohort.
    Assigned,
    /// Brought in by a data import.
    Import,
    /// Added by another system through the API (an integration token).
    Api,
    /// The person subscribed through a web form.
    WebForm,
    /// The person subscribed in the preference centre.
    SelfService,
    /// Added by a follow-up sequence step or other automation.
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

/// The order of `Group.members`.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum MemberOrderBy {
    /// By the contact's sort name (a person's last name, a company's name), then id.
    Name,
    /// Earliest member first.
    JoinedAt,
}

/// Whether a membership began or ended.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum MembershipAction {
    /// The contact became a member.
    Join,
    /// The contact stopped being a member (removed, unsubscribed, or the contact or group was
    /// deleted).
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
    pub(crate) fn admit(&self) -> Result<(), ApiError> {
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

/// A segment of contacts. Reading it needs READ on its home address book; it may hold contacts
/// of any book, and shows each viewer exactly the members they could see anyway.
#[Object]
impl Group {
    /// The group's global id (opaque; for `node(id:)` and inputs that take a group).
    pub async fn id(&self) -> ID {
        ids::encode(GroupId::TAG, self.0.id.0)
    }
    /// The ids source systems (ERP, webshop) give this group, one per system, by system.
    async fn external_ids(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<crate::graphql::external::ExternalId>> {
        crate::graphql::external::external_ids_field(ctx, cohort_store::ExternalTarget::Group(self.0.id)).await
    }
    /// The group's name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// What the group is for; `null` if none.
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
    /// The name shown to the public (web forms, the preference centre); `null` for a private group.
    async fn public_name(&self) -> Option<&str> {
        self.0.public_name.as_deref()
    }
    /// The description shown to the public; `null` if none.
    async fn public_description(&self) -> Option<&str> {
        self.0.public_description.as_deref()
    }
    /// A group with a public name is public: members may unsubscribe themselves.
    async fn is_public(&self) -> bool {
        self.0.public_name.is_some()
    }
    /// The viewer's access to the group's home book (READ: see; WRITE: change members; MANAGE:
    /// configure).
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
        Ok(GroupConnection::from_page(p, CountSource::GroupDescendants(self.0.id)))
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
        #[graphql(
            desc = "Only members with this consent standing for the group they are in (e.g. CONFIRMED for a mailing)."
        )]
        consent: Option<crate::graphql::consent::ConsentStatus>,
    ) -> async_graphql::Result<GroupMemberConnection> {
        let include_subgroups = include_subgroups.unwrap_or(false);
        let order = match order_by.unwrap_or(MemberOrderBy::Name) {
            MemberOrderBy::Name => MemberOrder::Name,
            MemberOrderBy::JoinedAt => MemberOrder::JoinedAt,
        };
        // With `totalCount` selected, the page statement carries the count too (one round trip).
        let wants_total = ctx.look_ahead().field("totalCount").exists();
        let req = page_req(first, after)?;
        let key = MembersKey {
            group: self.0.id,
            include_subgroups,
            order,
            consent: consent.map(Into::into),
            first: req.first,
            after: req.after.clone(),
            with_total: wants_total,
            membership: wants_provenance(&ctx.look_ahead().field("edges")),
        };
        let edges = ctx.look_ahead().field("edges");
        let parts = contact_parts(&edges.field("node"));
        let (p, total) = match take_prefetched(ctx, &key)? {
            // `group(id)` read this page with the group, in its own statement.
            Some(found) => (found.page, found.total),
            None => data(ctx)?
                .group_members_counted(
                    self.0.id,
                    include_subgroups,
                    order,
                    key.consent,
                    &req,
                    cohort_store::ReadAlong { total: wants_total, parts, membership: key.membership },
                )
                .await
                .map_err(ApiError::from)?,
        };
        feed_contact_extras(ctx, p.rows.iter().map(|r| (r.1.contact.id, &r.1.extras))).await?;
        // Prefetch the rest of what the edges ask for, for the whole page at once.
        let rows: Vec<&cohort_store::ContactRecord> = p.rows.iter().map(|r| &r.1.contact).collect();
        prefetch_contacts(ctx, edges.field("node"), &rows).await?;
        let l = loader(ctx)?;
        let wants_membership = key.membership;
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
        let mut conn = GroupMemberConnection::new(p, self.0.id, include_subgroups);
        conn.consent = consent;
        conn.known_total = total.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        Ok(conn)
    }
    /// How many members the viewer can see.
    async fn member_count(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Count members of descendant groups too (default false).")] include_subgroups: Option<bool>,
    ) -> async_graphql::Result<i64> {
        member_count(ctx, self.0.id, include_subgroups.unwrap_or(false)).await
    }
    /// Consent standing of the members the viewer can see (public groups).
    async fn consent_summary(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<crate::graphql::consent::ConsentSummary> {
        crate::graphql::consent::group_consent_summary(ctx, self.0.id).await
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
        Ok(MembershipEventConnection::from_page(
            p,
            CountSource::MembershipHistory { group: Some(self.0.id), contact: None },
        ))
    }
    /// Orders of the members the viewer can see, newest first.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn orders(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        include_subgroups: Option<bool>,
    ) -> async_graphql::Result<crate::graphql::orders::OrderConnection> {
        crate::graphql::orders::group_orders(ctx, self.0.id, include_subgroups.unwrap_or(false), first, after).await
    }
    /// Order count and totals per currency over the members the viewer can see, for orders
    /// placed in `[from, to)`.
    async fn order_summary(
        &self,
        ctx: &Context<'_>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        include_subgroups: Option<bool>,
    ) -> async_graphql::Result<Vec<crate::graphql::orders::OrderSummary>> {
        crate::graphql::orders::group_order_summary(ctx, self.0.id, include_subgroups.unwrap_or(false), from, to).await
    }
    /// The group's own price lists, by priority.
    async fn price_lists(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<crate::graphql::pricing::GroupPriceList>> {
        crate::graphql::pricing::group_price_lists(ctx, self.0.id, false).await
    }
    /// The lists that apply to the group's members: its own, else the nearest ancestor's
    /// (`definedOn` names where they come from).
    async fn effective_price_lists(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<crate::graphql::pricing::GroupPriceList>> {
        crate::graphql::pricing::group_price_lists(ctx, self.0.id, true).await
    }
    /// The default SLA this group sets itself (`null`: it inherits, see `effectiveDefaultSla`).
    async fn default_sla(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<crate::graphql::sla::SlaContract>> {
        let e = crate::graphql::sla::effective_default_sla(ctx, self.0.id).await?;
        match e {
            Some(e) if !e.0.inherited => crate::graphql::sla::contract_opt(ctx, Some(e.0.contract)).await,
            _ => Ok(None),
        }
    }
    /// The default SLA that applies to this group's contacts: its own, else its nearest
    /// ancestor's (`definedOn` says which); `null` when the chain sets none.
    async fn effective_default_sla(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<crate::graphql::sla::EffectiveSla>> {
        crate::graphql::sla::effective_default_sla(ctx, self.0.id).await
    }
    /// What this group itself sets per process area (subgroups that set none inherit it).
    async fn responsibilities(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<crate::graphql::routing::GroupResponsibility>> {
        crate::graphql::routing::group_responsibilities(ctx, self.0.id).await
    }
    /// The responsibility that applies to this group's contacts in a process area: its own,
    /// else its nearest ancestor's (`definedOn` says which); `null` when the chain sets none.
    async fn effective_responsibility(
        &self,
        ctx: &Context<'_>,
        process_area: String,
    ) -> async_graphql::Result<Option<crate::graphql::routing::EffectiveResponsibility>> {
        crate::graphql::routing::effective_responsibility(ctx, self.0.id, &process_area).await
    }
    /// When the group was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the group's settings were last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

connection!(
    GroupConnection,
    GroupEdge,
    Group,
    GroupRecord,
    "A page of groups the viewer can see, by name.",
    "A group on a page, with its cursor.",
    "How many groups the list holds for the viewer (hidden groups never count), on every page together."
);

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

/// A member on a page, with how and when they joined.
#[Object]
impl GroupMemberEdge {
    /// Opaque position of this member in the list: pass it as `after` to get the members that
    /// follow.
    async fn cursor(&self) -> &str {
        &self.cursor
    }
    /// The member.
    async fn node(&self) -> Contact {
        Contact(self.rec.contact.clone())
    }
    /// When the contact joined (with `includeSubgroups`: joined this group, else the earliest
    /// subgroup).
    async fn joined_at(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<DateTime<Utc>>> {
        Ok(self.membership(ctx).await?.map(|m| m.joined_at))
    }
    /// How the contact came to be a member (with `includeSubgroups`: a member of `group`).
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
    /// The consent entry the membership rests on (web forms, confirmations, the preference
    /// centre, consent an agent recorded); `null` for memberships assigned without consent.
    async fn consent(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<crate::graphql::consent::ConsentEntry>> {
        let id = self.membership(ctx).await?.and_then(|m| m.consent_id);
        crate::graphql::consent::consent_entry(ctx, id).await
    }
}

/// A page of a group's members the viewer can see.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct GroupMemberConnection {
    /// The members of this page, in the requested order.
    pub edges: Vec<GroupMemberEdge>,
    /// Whether more members follow, and the cursors of this page's first and last member.
    pub page_info: PageInfo,
    #[graphql(skip)]
    group: GroupId,
    #[graphql(skip)]
    include_subgroups: bool,
    #[graphql(skip)]
    consent: Option<crate::graphql::consent::ConsentStatus>,
    /// The count when the page's statement carried it.
    #[graphql(skip)]
    known_total: Option<i64>,
}

impl GroupMemberConnection {
    fn new(p: Page<MemberRecord>, group: GroupId, include_subgroups: bool) -> Self {
        let page_info = page_info(&p);
        GroupMemberConnection {
            edges: p.rows.into_iter().map(|(cursor, rec)| GroupMemberEdge { cursor, rec, root: group }).collect(),
            page_info,
            group,
            include_subgroups,
            consent: None,
            known_total: None,
        }
    }
}

#[ComplexObject]
impl GroupMemberConnection {
    /// The number of members the viewer can see.
    async fn total_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        if let Some(n) = self.known_total {
            return Ok(n);
        }
        match self.consent {
            None => member_count(ctx, self.group, self.include_subgroups).await,
            Some(c) => Ok(data(ctx)?
                .group_member_count_with_consent(self.group, self.include_subgroups, c.into())
                .await
                .map_err(ApiError::from)? as i64),
        }
    }
}

pub struct GroupMembership(pub MembershipRecord);

/// A contact's membership in one group.
#[Object]
impl GroupMembership {
    /// The group; `null` if the viewer cannot see it.
    async fn group(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Group>> {
        Ok(loader(ctx)?.load_one(self.0.group_id).await?.map(Group))
    }
    /// When the contact joined.
    async fn joined_at(&self) -> DateTime<Utc> {
        self.0.joined_at
    }
    /// How the contact came to be a member.
    async fn source(&self) -> MembershipSource {
        self.0.source.into()
    }
    /// Who added the contact (for memberships a user or script added); `null` otherwise.
    async fn assigned_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        match self.0.assigned_by {
            None => Ok(None),
            Some(u) => Ok(loader(ctx)?.load_one(u).await?.map(User)),
        }
    }
}

pub struct MembershipEvent(pub MembershipEventRecord);

/// One join or leave, as recorded (never rewritten).
#[Object]
impl MembershipEvent {
    /// The entry's global id (opaque).
    async fn id(&self) -> ID {
        ids::encode(MembershipEventId::TAG, self.0.id.0)
    }
    /// Joined or left.
    async fn action(&self) -> MembershipAction {
        if self.0.action == "LEAVE" { MembershipAction::Leave } else { MembershipAction::Join }
    }
    /// The contact; `null` if the viewer cannot see it.
    async fn contact(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Contact>> {
        Ok(loader(ctx)?.load_one(self.0.contact_id).await?.map(Contact))
    }
    /// The group; `null` if the viewer cannot see it.
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
    /// How the membership came about (for a leave: how it had come about).
    async fn source(&self) -> MembershipSource {
        self.0.source.into()
    }
    /// When it happened.
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }
    /// Why, as given with a removal (`removeGroupMembers(reason:)`, an unsubscribe, a deletion);
    /// `null` if none.
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
}

connection!(
    MembershipEventConnection,
    MembershipEventEdge,
    MembershipEvent,
    MembershipEventRecord,
    "A page of membership history, newest first.",
    "One join or leave on a page, with its cursor.",
    "How many joins and leaves the history holds for the viewer (those of contacts and groups they can see), on every page together."
);

impl From<MembershipEventRecord> for MembershipEvent {
    fn from(e: MembershipEventRecord) -> Self {
        MembershipEvent(e)
    }
}

/// Group fields of `Contact` (kept here, next to the group types).
pub async fn contact_memberships(ctx: &Context<'_>, contact: ContactId) -> async_graphql::Result<Vec<GroupMembership>> {
    if let Some(g) = ctx.data_opt::<ExportGuardRef>() {
        g.0.admit()?;
    }
    let l = loader(ctx)?;
    let m = l.load_one(MembershipsOf(contact)).await?.unwrap_or_default();
    if ctx.look_ahead().field("group").exists() {
        l.feed_many(m.iter().map(|(_, g)| (g.id, g.clone()))).await;
    }
    Ok(m.into_iter().map(|(m, _)| GroupMembership(m)).collect())
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
    Ok(MembershipEventConnection::from_page(p, CountSource::MembershipHistory { group: None, contact: Some(contact) }))
}
