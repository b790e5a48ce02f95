//! Sequences, their steps, enrolments and step runs, as GraphQL objects.

use crate::error::ApiError;
use crate::graphql::contacts::*;
use crate::graphql::groups::*;
use crate::graphql::relay::*;
use crate::graphql::{data, ids, loader};
use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use cohort_domain::ids::{ContactId, EnrolmentId, GroupId, SequenceId};
use cohort_domain::sequence::{ActionKind, EndReason, EnrolmentStatus, Rejoin, Step, StepAction, StepOutcome};
use cohort_store::{EnrolmentRecord, Page, SequenceRecord, StepRunRecord};

/// What a step does when it falls due.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum SequenceAction {
    /// Emits `sequence.step_due` (with the template key) for the mailer.
    Emit,
    /// Adds the contact to a group (membership source `AUTOMATION`).
    AddToGroup,
    /// Removes the contact from a group.
    RemoveFromGroup,
    /// Sets (or clears) the contact's business status.
    SetBusinessStatus,
}

impl From<SequenceAction> for ActionKind {
    fn from(a: SequenceAction) -> Self {
        match a {
            SequenceAction::Emit => ActionKind::Emit,
            SequenceAction::AddToGroup => ActionKind::AddToGroup,
            SequenceAction::RemoveFromGroup => ActionKind::RemoveFromGroup,
            SequenceAction::SetBusinessStatus => ActionKind::SetBusinessStatus,
        }
    }
}

/// What joining the start group again does once an enrolment has ended.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum SequenceRejoin {
    /// The sequence starts over (its current version).
    Restart,
    /// Nothing: a contact receives the sequence once.
    Ignore,
}

impl From<SequenceRejoin> for Rejoin {
    fn from(r: SequenceRejoin) -> Self {
        match r {
            SequenceRejoin::Restart => Rejoin::Restart,
            SequenceRejoin::Ignore => Rejoin::Ignore,
        }
    }
}

impl From<Rejoin> for SequenceRejoin {
    fn from(r: Rejoin) -> Self {
        match r {
            Rejoin::Restart => SequenceRejoin::Restart,
            Rejoin::Ignore => SequenceRejoin::Ignore,
        }
    }
}

/// Where an enrolment stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum EnrolmentStatusValue {
    /// Steps are still to run.
    Active,
    /// Every step ran.
    Completed,
    /// Ended before every step ran (`endReason` says why).
    Stopped,
}

impl From<EnrolmentStatus> for EnrolmentStatusValue {
    fn from(s: EnrolmentStatus) -> Self {
        match s {
            EnrolmentStatus::Active => Self::Active,
            EnrolmentStatus::Completed => Self::Completed,
            EnrolmentStatus::Stopped => Self::Stopped,
        }
    }
}

impl From<EnrolmentStatusValue> for EnrolmentStatus {
    fn from(s: EnrolmentStatusValue) -> Self {
        match s {
            EnrolmentStatusValue::Active => Self::Active,
            EnrolmentStatusValue::Completed => Self::Completed,
            EnrolmentStatusValue::Stopped => Self::Stopped,
        }
    }
}

/// Why an enrolment ended.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum EnrolmentEndReason {
    /// Every step ran.
    Completed,
    /// The contact left the start group (and its subgroups, where they count).
    LeftGroup,
}

impl From<EndReason> for EnrolmentEndReason {
    fn from(r: EndReason) -> Self {
        match r {
            EndReason::Completed => Self::Completed,
            EndReason::LeftGroup => Self::LeftGroup,
        }
    }
}

/// What a step that ran did.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum SequenceStepOutcome {
    /// The action took effect.
    Done,
    /// Nothing to do (already a member, not a member, status already set).
    Unchanged,
    /// The action could not run (its group or status no longer exists); the sequence went on.
    Failed,
}

impl From<StepOutcome> for SequenceStepOutcome {
    fn from(o: StepOutcome) -> Self {
        match o {
            StepOutcome::Done => Self::Done,
            StepOutcome::Unchanged => Self::Unchanged,
            StepOutcome::Failed => Self::Failed,
        }
    }
}

pub struct Sequence(pub SequenceRecord);

/// A follow-up sequence: a contact that joins the start group (by any path: bulk assignment,
/// an integration, a sequence step, a web form) receives its steps, each its delay after the
/// previous one.
#[Object]
impl Sequence {
    /// The sequence's global id (opaque; for `node(id:)` and inputs that take a sequence).
    pub async fn id(&self) -> ID {
        ids::encode(SequenceId::TAG, self.0.id.0)
    }
    /// The sequence's name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Joining it (or, with `includeSubgroups`, one of its subgroups) enrols a contact.
    async fn start_group(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Group>> {
        Ok(loader(ctx)?.load_one(self.0.start_group_id).await?.map(Group))
    }
    /// Whether joining a subgroup of the start group enrols too.
    async fn include_subgroups(&self) -> bool {
        self.0.include_subgroups
    }
    /// Leaving the start group (and, with `includeSubgroups`, every group below it) stops the
    /// enrolment.
    async fn stop_on_leave(&self) -> bool {
        self.0.stop_on_leave
    }
    /// For a public start group: only memberships resting on confirmed consent enrol.
    async fn require_consent(&self) -> bool {
        self.0.require_consent
    }
    /// What joining the start group again does once an enrolment has ended.
    async fn rejoin(&self) -> SequenceRejoin {
        self.0.rejoin.into()
    }
    /// Paused: nobody is enrolled and no step runs; steps that fell due meanwhile run on resume.
    async fn paused(&self) -> bool {
        self.0.paused
    }
    /// Changing the steps makes a new version; enrolments finish on the version they began.
    async fn version(&self) -> i32 {
        self.0.version
    }
    /// The current version's steps, in order.
    async fn steps(&self) -> Vec<SequenceStep> {
        steps_of(&self.0.steps)
    }
    /// Enrolments the viewer can see (their contact, and the group whose join enrolled them),
    /// newest first.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn enrolments(
        &self,
        ctx: &Context<'_>,
        status: Option<EnrolmentStatusValue>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<SequenceEnrolmentConnection> {
        let status = status.map(Into::into);
        let p = data(ctx)?
            .sequence_enrolments(self.0.id, status, &page_req(first, after)?)
            .await
            .map_err(ApiError::from)?;
        Ok(SequenceEnrolmentConnection::from_page(p, self.0.id, status))
    }
    /// When the sequence was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the sequence was last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

pub(crate) fn steps_of(steps: &[Step]) -> Vec<SequenceStep> {
    steps.iter().enumerate().map(|(i, s)| SequenceStep { position: i as i32, step: s.clone() }).collect()
}

pub struct SequenceStep {
    position: i32,
    step: Step,
}

/// One step of a sequence.
#[Object]
impl SequenceStep {
    /// 0 for the first step.
    async fn position(&self) -> i32 {
        self.position
    }
    /// ISO 8601 duration after the previous step was due (the first: after enrolment).
    async fn delay(&self) -> &str {
        self.step.delay.as_str()
    }
    /// What the step does.
    async fn action(&self) -> SequenceAction {
        match self.step.action {
            StepAction::Emit { .. } => SequenceAction::Emit,
            StepAction::AddToGroup { .. } => SequenceAction::AddToGroup,
            StepAction::RemoveFromGroup { .. } => SequenceAction::RemoveFromGroup,
            StepAction::SetBusinessStatus { .. } => SequenceAction::SetBusinessStatus,
        }
    }
    /// `EMIT`: the mailer's template key.
    async fn template_key(&self) -> Option<&str> {
        match &self.step.action {
            StepAction::Emit { template_key } => Some(template_key),
            _ => None,
        }
    }
    /// `ADD_TO_GROUP` / `REMOVE_FROM_GROUP`: the group (`null` if the viewer cannot see it).
    async fn group(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Group>> {
        match self.step.action.group() {
            Some(g) => Ok(loader(ctx)?.load_one(g).await?.map(Group)),
            None => Ok(None),
        }
    }
    /// `SET_BUSINESS_STATUS`: the status key (`null` clears the status).
    async fn business_status_key(&self) -> Option<&str> {
        match &self.step.action {
            StepAction::SetBusinessStatus { key } => key.as_deref(),
            _ => None,
        }
    }
}

pub struct SequenceEnrolment(pub EnrolmentRecord);

impl From<EnrolmentRecord> for SequenceEnrolment {
    fn from(e: EnrolmentRecord) -> Self {
        SequenceEnrolment(e)
    }
}

/// A contact's passage through a sequence.
#[Object]
impl SequenceEnrolment {
    /// The enrolment's global id (opaque; for `node(id:)`).
    pub async fn id(&self) -> ID {
        ids::encode(EnrolmentId::TAG, self.0.id.0)
    }
    /// The sequence; `null` if the viewer cannot see it.
    async fn sequence(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Sequence>> {
        Ok(loader(ctx)?.load_one(self.0.sequence_id).await?.map(Sequence))
    }
    /// The enrolled contact; `null` if the viewer cannot see it.
    async fn contact(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Contact>> {
        Ok(loader(ctx)?.load_one(self.0.contact_id).await?.map(Contact))
    }
    /// Where the enrolment stands.
    async fn status(&self) -> EnrolmentStatusValue {
        self.0.status.into()
    }
    /// The sequence version it runs on.
    async fn version(&self) -> i32 {
        self.0.version
    }
    /// 1 for the first run; each restart (re-joining with `rejoin: RESTART`) adds one.
    async fn generation(&self) -> i32 {
        self.0.generation
    }
    /// The position of the step that runs next (while active).
    async fn next_step_position(&self) -> Option<i32> {
        self.0.next_step
    }
    /// When the next step is due (while active).
    async fn next_due_at(&self) -> Option<DateTime<Utc>> {
        self.0.next_due_at
    }
    /// How the join that enrolled it came about.
    async fn source(&self) -> MembershipSource {
        self.0.source.into()
    }
    /// `true` when another sequence's step made the join that enrolled it.
    async fn automated(&self) -> bool {
        self.0.automation_depth > 0
    }
    /// When the contact was enrolled (this generation).
    async fn enrolled_at(&self) -> DateTime<Utc> {
        self.0.enrolled_at
    }
    /// When the enrolment ended; `null` while active.
    async fn ended_at(&self) -> Option<DateTime<Utc>> {
        self.0.ended_at
    }
    /// Why it ended; `null` while active.
    async fn end_reason(&self) -> Option<EnrolmentEndReason> {
        self.0.end_reason.map(Into::into)
    }
    /// The steps that ran, in order (every generation).
    async fn step_runs(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<SequenceStepRun>> {
        let l = loader(ctx)?;
        let runs = l.load_one(crate::graphql::loaders::StepRunsOf(self.0.id)).await?.unwrap_or_default();
        // What a step did to a group the viewer cannot see (added, already a member, …) would say
        // something about the contact's membership there: such runs show no outcome.
        let groups: Vec<GroupId> = runs.iter().filter_map(|r| r.group_id).collect();
        let visible = l.load_many(groups).await?;
        Ok(runs
            .into_iter()
            .map(|r| {
                let shown = r.group_id.is_none_or(|g| visible.contains_key(&g));
                SequenceStepRun { run: r, shown }
            })
            .collect())
    }
}

pub struct SequenceStepRun {
    run: StepRunRecord,
    /// Whether the viewer can see the group the step acted on (if any).
    shown: bool,
}

/// One step that ran.
#[Object]
impl SequenceStepRun {
    /// The enrolment's generation the run belongs to.
    async fn generation(&self) -> i32 {
        self.run.generation
    }
    /// The position of the step in its version (0 for the first).
    async fn position(&self) -> i32 {
        self.run.position
    }
    /// The sequence version the step belongs to.
    async fn version(&self) -> i32 {
        self.run.version
    }
    /// `EMIT`, `ADD_TO_GROUP`, `REMOVE_FROM_GROUP` or `SET_BUSINESS_STATUS`.
    async fn action(&self) -> &str {
        &self.run.action
    }
    /// When it was due.
    async fn due_at(&self) -> DateTime<Utc> {
        self.run.due_at
    }
    /// When it ran.
    async fn ran_at(&self) -> DateTime<Utc> {
        self.run.at
    }
    /// `null` when the step acted on a group the viewer cannot see.
    async fn outcome(&self) -> Option<SequenceStepOutcome> {
        self.shown.then(|| self.run.outcome.into())
    }
    /// Why it changed nothing or failed (`null` as for `outcome`).
    async fn detail(&self) -> Option<&str> {
        self.run.detail.as_deref().filter(|_| self.shown)
    }
}

/// An enrolment on a page, with its cursor.
#[derive(SimpleObject)]
pub struct SequenceEnrolmentEdge {
    /// Opaque position of this enrolment in the list: pass it as `after` to get the enrolments that
    /// follow.
    pub cursor: String,
    /// The enrolment.
    pub node: SequenceEnrolment,
}

/// A page of enrolments, newest first.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct SequenceEnrolmentConnection {
    /// The enrolments of this page, newest first.
    pub edges: Vec<SequenceEnrolmentEdge>,
    /// Whether more enrolments follow, and the cursors of this page's first and last enrolment.
    pub page_info: PageInfo,
    #[graphql(skip)]
    sequence: SequenceId,
    #[graphql(skip)]
    status: Option<EnrolmentStatus>,
}

#[async_graphql::ComplexObject]
impl SequenceEnrolmentConnection {
    /// How many enrolments match, over those the viewer can see.
    async fn total_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        Ok(data(ctx)?.sequence_enrolment_count(self.sequence, self.status).await.map_err(ApiError::from)? as i64)
    }
}

impl SequenceEnrolmentConnection {
    pub fn from_page(p: Page<EnrolmentRecord>, sequence: SequenceId, status: Option<EnrolmentStatus>) -> Self {
        let page_info = page_info(&p);
        SequenceEnrolmentConnection {
            edges: p
                .rows
                .into_iter()
                .map(|(cursor, e)| SequenceEnrolmentEdge { cursor, node: SequenceEnrolment(e) })
                .collect(),
            page_info,
            sequence,
            status,
        }
    }
}

/// `Contact.sequenceEnrolments`. An enrolment says the contact joined the start group, so it
/// counts against the per-request membership cap like `Contact.memberships`.
pub async fn contact_enrolments(ctx: &Context<'_>, c: ContactId) -> async_graphql::Result<Vec<SequenceEnrolment>> {
    if let Some(g) = ctx.data_opt::<ExportGuardRef>() {
        g.0.admit()?;
    }
    let e = loader(ctx)?.load_one(crate::graphql::loaders::EnrolmentsOf(c)).await?.unwrap_or_default();
    Ok(e.into_iter().map(SequenceEnrolment).collect())
}
