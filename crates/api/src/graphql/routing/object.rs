//! Queues, process areas, responsibilities, routing decisions and messages, as GraphQL objects.

use crate::error::ApiError;
use crate::graphql::access::*;
use crate::graphql::contacts::*;
use crate::graphql::groups::*;
use crate::graphql::loaders::AssignmentsOf;
use crate::graphql::relay::*;
use crate::graphql::{data, ids, loader};
use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use cohort_domain::ids::{GroupId, MessageId, ProcessAreaId, ProcessingAreaId, UserGroupId, UserId};
use cohort_domain::routing::{Channel, Field, Outcome};
use cohort_store::{
    AssignmentRecord, EffectiveResponsibilityRecord, MessageFilter, MessageRecord, Page, ProcessAreaRecord,
    ProcessingAreaRecord, ResponsibilityRecord, RouteRecord,
};

async fn user(ctx: &Context<'_>, u: Option<UserId>) -> async_graphql::Result<Option<User>> {
    match u {
        None => Ok(None),
        Some(u) => Ok(loader(ctx)?.load_one(u).await?.map(User)),
    }
}

async fn user_group(ctx: &Context<'_>, g: Option<UserGroupId>) -> async_graphql::Result<Option<UserGroup>> {
    match g {
        None => Ok(None),
        Some(g) => Ok(loader(ctx)?.load_one(g).await?.map(UserGroup)),
    }
}

async fn queue(ctx: &Context<'_>, q: Option<ProcessingAreaId>) -> async_graphql::Result<Option<ProcessingArea>> {
    match q {
        None => Ok(None),
        Some(q) => Ok(loader(ctx)?.load_one(q).await?.map(ProcessingArea)),
    }
}

async fn queue_required(ctx: &Context<'_>, q: ProcessingAreaId) -> async_graphql::Result<ProcessingArea> {
    queue(ctx, Some(q)).await?.ok_or_else(|| ApiError::Internal(format!("queue {q} missing")).into())
}

async fn group(ctx: &Context<'_>, g: Option<GroupId>) -> async_graphql::Result<Option<Group>> {
    match g {
        None => Ok(None),
        Some(g) => Ok(loader(ctx)?.load_one(g).await?.map(Group)),
    }
}

async fn area(ctx: &Context<'_>, a: ProcessAreaId) -> async_graphql::Result<ProcessArea> {
    loader(ctx)?
        .load_one(a)
        .await?
        .map(ProcessArea)
        .ok_or_else(|| ApiError::Internal(format!("process area {a} missing")).into())
}

pub struct ProcessingArea(pub ProcessingAreaRecord);

/// A queue ("Helpdesk — VIP"): where routed messages wait.
#[Object]
impl ProcessingArea {
    /// The queue's global id (opaque; for `node(id:)` and inputs that take a processing area).
    pub async fn id(&self) -> ID {
        ids::encode(ProcessingAreaId::TAG, self.0.id.0)
    }
    /// The queue's name, unique in the tenant.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// What the queue is for; `null` if none.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// Only this user group works the queue: its messages are restricted to the group unless
    /// routing names another one.
    async fn user_group(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<UserGroup>> {
        user_group(ctx, self.0.user_group).await
    }
    /// When the queue was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the queue was last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

pub struct ProcessArea(pub ProcessAreaRecord);

/// A process area (`helpdesk`, `sales`, …) and its module defaults.
#[Object]
impl ProcessArea {
    /// The process area's global id (opaque; for `node(id:)` and inputs that take a process area).
    pub async fn id(&self) -> ID {
        ids::encode(ProcessAreaId::TAG, self.0.id.0)
    }
    /// What integrations and `route(processArea:)` name it by.
    async fn key(&self) -> &str {
        &self.0.key
    }
    /// Display name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Where messages go when no group decides the queue.
    async fn default_processing_area(&self, ctx: &Context<'_>) -> async_graphql::Result<ProcessingArea> {
        queue_required(ctx, self.0.default_processing_area).await
    }
    /// The worker messages get when no group names one; `null` for none.
    async fn default_worker(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        user(ctx, self.0.default_worker).await
    }
    /// The user group messages are restricted to when no group names one; `null` for none.
    async fn default_user_group(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<UserGroup>> {
        user_group(ctx, self.0.default_user_group).await
    }
    /// When the process area was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the process area was last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

pub struct GroupResponsibility(pub ResponsibilityRecord);

/// What a group sets for one process area (each part optional).
#[Object]
impl GroupResponsibility {
    /// The process area the responsibility is for.
    async fn process_area(&self, ctx: &Context<'_>) -> async_graphql::Result<ProcessArea> {
        area(ctx, self.0.process_area).await
    }
    /// Who handles the group's contacts' messages; `null`: not set here.
    async fn worker(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        user(ctx, self.0.worker).await
    }
    /// Restricts who may read the communication.
    async fn user_group(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<UserGroup>> {
        user_group(ctx, self.0.user_group).await
    }
    /// The queue the messages go to; `null`: not set here.
    async fn processing_area(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<ProcessingArea>> {
        queue(ctx, self.0.processing_area).await
    }
    /// When the responsibility was last set.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Who last set it; `null` if unknown.
    async fn updated_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        user(ctx, self.0.updated_by).await
    }
}

pub struct EffectiveResponsibility(pub EffectiveResponsibilityRecord);

/// A group's effective responsibility for an area: its own, else its nearest ancestor's.
#[Object]
impl EffectiveResponsibility {
    /// What is set.
    async fn responsibility(&self) -> GroupResponsibility {
        GroupResponsibility(self.0.responsibility.clone())
    }
    /// The group that sets it — `null` if the viewer cannot see that ancestor.
    async fn defined_on(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Group>> {
        group(ctx, Some(self.0.defined_on)).await
    }
    /// Whether it comes from an ancestor rather than the group itself.
    async fn inherited(&self) -> bool {
        self.0.inherited
    }
}

/// A field of a routing decision.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum RouteField {
    /// The worker.
    Worker,
    /// The user group the communication is restricted to.
    UserGroup,
    /// The queue.
    ProcessingArea,
}

impl From<Field> for RouteField {
    fn from(f: Field) -> Self {
        match f {
            Field::Worker => RouteField::Worker,
            Field::UserGroup => RouteField::UserGroup,
            Field::ProcessingArea => RouteField::ProcessingArea,
        }
    }
}

/// What a candidate group's responsibility did in a routing decision.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum RouteOutcome {
    /// The first candidate (smallest precedence, then group id): its responsibility decides.
    Decided,
    /// A later candidate: not used.
    PassedOver,
}

pub struct RouteCandidate {
    c: cohort_domain::routing::Candidate,
    visible: bool,
    defined_on_visible: bool,
}

/// One of the contact's groups with an effective responsibility for the area.
#[Object]
impl RouteCandidate {
    /// The contact's group — `null` if the viewer cannot see it.
    async fn group(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Group>> {
        group(ctx, Some(self.c.group).filter(|_| self.visible)).await
    }
    /// The group's precedence (smaller decides).
    async fn precedence(&self) -> i32 {
        self.c.precedence
    }
    /// Whether its responsibility is inherited from an ancestor.
    async fn inherited(&self) -> bool {
        self.c.depth > 0
    }
    /// The group that sets the responsibility — `null` if the viewer cannot see it.
    async fn defined_on(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Group>> {
        group(ctx, Some(self.c.defined_on).filter(|_| self.defined_on_visible)).await
    }
    /// Whether the candidate decided or was passed over.
    async fn outcome(&self) -> RouteOutcome {
        match self.c.outcome {
            Outcome::Decided => RouteOutcome::Decided,
            Outcome::PassedOver => RouteOutcome::PassedOver,
        }
    }
    /// Why, in words.
    async fn reason(&self) -> String {
        let inherited = if self.c.depth > 0 { " (inherited from an ancestor)" } else { "" };
        match self.c.outcome {
            Outcome::Decided => format!("decides: smallest precedence {}{inherited}", self.c.precedence),
            Outcome::PassedOver => {
                format!("passed over: precedence {} comes after the deciding group{inherited}", self.c.precedence)
            }
        }
    }
}

pub struct RouteExplanation(pub RouteRecord);

/// How a routing decision was reached.
#[Object]
impl RouteExplanation {
    /// Every candidate group, in decision order.
    async fn candidates(&self) -> Vec<RouteCandidate> {
        self.0
            .decision
            .candidates
            .iter()
            .map(|c| RouteCandidate {
                c: *c,
                visible: self.0.visible_groups.contains(&c.group),
                defined_on_visible: self.0.visible_groups.contains(&c.defined_on),
            })
            .collect()
    }
    /// The fields taken from the process area's defaults.
    async fn fallbacks(&self) -> Vec<RouteField> {
        self.0.decision.fallbacks.iter().map(|f| (*f).into()).collect()
    }
    /// The decision in one sentence.
    async fn summary(&self) -> String {
        let d = &self.0.decision;
        let n = d.candidates.len();
        let mut s = match d.from_group {
            None => "no group of the contact has a responsibility for this area: the area's defaults apply".to_owned(),
            Some(_) => format!("{n} candidate group(s); the one with the smallest precedence decides"),
        };
        if d.from_group.is_some() && !d.fallbacks.is_empty() {
            let f: Vec<&str> = d
                .fallbacks
                .iter()
                .map(|f| match f {
                    Field::Worker => "worker",
                    Field::UserGroup => "user group",
                    Field::ProcessingArea => "queue",
                })
                .collect();
            s.push_str(&format!("; {} from the area's defaults", f.join(", ")));
        }
        s
    }
}

pub struct RouteDecision(pub RouteRecord);

/// Who handles a contact's message in one process area, and why.
#[Object]
impl RouteDecision {
    /// The process area decided for.
    async fn process_area(&self) -> ProcessArea {
        ProcessArea(self.0.process_area.clone())
    }
    /// Who handles the message; `null` if no one is named (the queue's members pick it up).
    async fn worker(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        user(ctx, self.0.decision.worker).await
    }
    /// The user group the communication is restricted to — `null` also when the viewer may not
    /// see that user group (non-admins see only their own); `restricted` tells either way.
    async fn user_group(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<UserGroup>> {
        user_group(ctx, self.0.decision.user_group).await
    }
    /// Whether the decision restricts the communication to a user group.
    async fn restricted(&self) -> bool {
        self.0.decision.user_group.is_some()
    }
    /// The queue the message goes to.
    async fn processing_area(&self, ctx: &Context<'_>) -> async_graphql::Result<ProcessingArea> {
        queue_required(ctx, self.0.decision.processing_area).await
    }
    /// The deciding group — `null` when none decided or the viewer cannot see it.
    #[graphql(name = "fromGroup")]
    async fn decided_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Group>> {
        group(ctx, self.0.decision.from_group.filter(|g| self.0.visible_groups.contains(g))).await
    }
    /// How the decision was reached: every candidate group and the defaults used.
    async fn explanation(&self) -> RouteExplanation {
        RouteExplanation(self.0.clone())
    }
}

/// How a message reached Cohort.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum MessageChannel {
    /// E-mail.
    Email,
    /// A form on a website.
    Web,
    /// A phone call, noted by an agent.
    Phone,
    /// The customer portal.
    Portal,
    /// Another system, through the API.
    Api,
}

impl From<MessageChannel> for Channel {
    fn from(c: MessageChannel) -> Self {
        match c {
            MessageChannel::Email => Channel::Email,
            MessageChannel::Web => Channel::Web,
            MessageChannel::Phone => Channel::Phone,
            MessageChannel::Portal => Channel::Portal,
            MessageChannel::Api => Channel::Api,
        }
    }
}

impl From<Channel> for MessageChannel {
    fn from(c: Channel) -> Self {
        match c {
            Channel::Email => MessageChannel::Email,
            Channel::Web => MessageChannel::Web,
            Channel::Phone => MessageChannel::Phone,
            Channel::Portal => MessageChannel::Portal,
            Channel::Api => MessageChannel::Api,
        }
    }
}

pub struct Message(pub MessageRecord);

impl From<MessageRecord> for Message {
    fn from(m: MessageRecord) -> Self {
        Message(m)
    }
}

/// An inbound message with its routing. A private message shows its body only to its recipient
/// (everyone else gets `body: null`, which is not an error).
#[Object]
impl Message {
    /// The message's global id (opaque; for `node(id:)` and `message(id:)`).
    pub async fn id(&self) -> ID {
        ids::encode(MessageId::TAG, self.0.id.0)
    }
    /// The sender; `null` for an unknown sender.
    async fn contact(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Contact>> {
        match self.0.contact {
            None => Ok(None),
            Some(c) => Ok(loader(ctx)?.load_one(c).await?.map(Contact)),
        }
    }
    /// The address it came from, as delivered.
    async fn sender_email(&self) -> Option<&str> {
        self.0.sender_email.as_deref()
    }
    /// How the message reached Cohort.
    async fn channel(&self) -> MessageChannel {
        self.0.channel.into()
    }
    /// `null` for a private message when the tenant withholds private subjects and the viewer
    /// is not its recipient.
    async fn subject(&self) -> Option<&str> {
        self.0.subject.as_deref()
    }
    /// `null` for a private message unless the viewer is its recipient.
    async fn body(&self) -> Option<&str> {
        self.0.body.as_deref()
    }
    /// Whether the message is private: only its recipient sees the body (and, if the tenant
    /// withholds them, the subject).
    async fn private(&self) -> bool {
        self.0.private
    }
    /// The user the message was sent to personally; `null` if it was not.
    async fn recipient(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        user(ctx, self.0.recipient).await
    }
    /// When the message was received (as the sending system reports it, else when Cohort got it).
    async fn received_at(&self) -> DateTime<Utc> {
        self.0.received_at
    }
    /// The sending system's id for the message (a repeated delivery with it is stored once); `null`
    /// if none.
    async fn external_id(&self) -> Option<&str> {
        self.0.external_id.as_deref()
    }
    /// The process area the message belongs to.
    async fn process_area(&self, ctx: &Context<'_>) -> async_graphql::Result<ProcessArea> {
        area(ctx, self.0.process_area).await
    }
    /// The assigned worker.
    async fn worker(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        user(ctx, self.0.worker).await
    }
    /// The user group the message is restricted to — `null` also when the viewer may not see
    /// that user group (non-admins see only their own); `restricted` tells either way.
    async fn user_group(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<UserGroup>> {
        user_group(ctx, self.0.user_group).await
    }
    /// Whether only admins, its worker, its recipient and one user group's members may read it.
    async fn restricted(&self) -> bool {
        self.0.user_group.is_some()
    }
    /// The queue it waits in.
    async fn processing_area(&self, ctx: &Context<'_>) -> async_graphql::Result<ProcessingArea> {
        queue_required(ctx, self.0.processing_area).await
    }
    /// The group whose responsibility routed it — `null` if none did or the viewer cannot see it.
    async fn deciding_group(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Group>> {
        group(ctx, self.0.deciding_group).await
    }
    /// Routing and every reassignment since, oldest first.
    async fn assignments(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<MessageAssignment>> {
        Ok(loader(ctx)?
            .load_one(AssignmentsOf(self.0.id))
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(MessageAssignment)
            .collect())
    }
    /// When Cohort recorded the message.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// How a message got one of its assignments.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum AssignmentKind {
    /// Assigned by routing when the message arrived.
    Routed,
    /// Moved by `reassignMessage`.
    Reassigned,
}

pub struct MessageAssignment(pub AssignmentRecord);

/// One entry of a message's assignment history.
#[Object]
impl MessageAssignment {
    /// Routed on arrival or reassigned.
    async fn kind(&self) -> AssignmentKind {
        if self.0.routed { AssignmentKind::Routed } else { AssignmentKind::Reassigned }
    }
    /// The worker from then on; `null` if none.
    async fn worker(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        user(ctx, self.0.worker).await
    }
    /// The user group the message was restricted to from then on; `null` if none (or not visible to
    /// the viewer).
    async fn user_group(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<UserGroup>> {
        user_group(ctx, self.0.user_group).await
    }
    /// The queue from then on.
    async fn processing_area(&self, ctx: &Context<'_>) -> async_graphql::Result<ProcessingArea> {
        queue_required(ctx, self.0.processing_area).await
    }
    /// Why it was reassigned; `null` if none.
    async fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }
    /// Who reassigned it; `null` for routing.
    async fn actor(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        user(ctx, self.0.actor).await
    }
    /// When.
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }
}

/// A message on a page, with its cursor.
#[derive(SimpleObject)]
pub struct MessageEdge {
    /// Opaque position of this message in the list: pass it as `after` to get the messages that
    /// follow.
    pub cursor: String,
    /// The message.
    pub node: Message,
}

/// A page of messages, newest first.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct MessageConnection {
    /// The messages of this page, newest first.
    pub edges: Vec<MessageEdge>,
    /// Whether more messages follow, and the cursors of this page's first and last message.
    pub page_info: PageInfo,
    #[graphql(skip)]
    pub filter: MessageFilter,
}

#[async_graphql::ComplexObject]
impl MessageConnection {
    /// How many messages match, over those the viewer may read.
    async fn total_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        Ok(data(ctx)?.message_count(&self.filter).await.map_err(ApiError::from)?)
    }
}

impl MessageConnection {
    pub fn from_page(p: Page<MessageRecord>, filter: MessageFilter) -> Self {
        let page_info = page_info(&p);
        MessageConnection {
            edges: p.rows.into_iter().map(|(cursor, m)| MessageEdge { cursor, node: Message(m) }).collect(),
            page_info,
            filter,
        }
    }
}

/// `Contact.messages`.
pub async fn contact_messages(
    ctx: &Context<'_>,
    c: cohort_domain::ids::ContactId,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<MessageConnection> {
    let filter = MessageFilter { contact: Some(c), ..Default::default() };
    let p = data(ctx)?.messages(&filter, &page_req(first, after)?).await.map_err(ApiError::from)?;
    Ok(MessageConnection::from_page(p, filter))
}

/// `Group.responsibilities`.
pub async fn group_responsibilities(ctx: &Context<'_>, g: GroupId) -> async_graphql::Result<Vec<GroupResponsibility>> {
    let r = data(ctx)?.group_responsibilities(&[g]).await.map_err(ApiError::from)?;
    Ok(r.into_iter().map(GroupResponsibility).collect())
}

/// `Group.effectiveResponsibility(processArea:)`.
pub async fn effective_responsibility(
    ctx: &Context<'_>,
    g: GroupId,
    key: &str,
) -> async_graphql::Result<Option<EffectiveResponsibility>> {
    let r = data(ctx)?.effective_responsibility(g, key).await.map_err(ApiError::from)?;
    Ok(r.map(EffectiveResponsibility))
}
