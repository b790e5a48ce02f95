//! Business calendars, SLA contracts and tickets, as GraphQL objects.

use crate::error::ApiError;
use crate::graphql::access::*;
use crate::graphql::contacts::*;
use crate::graphql::groups::*;
use crate::graphql::relay::*;
use crate::graphql::routing::{MessageChannel, ProcessArea, ProcessingArea};
use crate::graphql::{data, ids, loader};
use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use cohort_domain::calendar::WorkInterval;
use cohort_domain::ids::{
    BusinessCalendarId, GroupId, ProcessAreaId, ProcessingAreaId, SlaContractId, TicketId, UserGroupId, UserId,
};
use cohort_domain::sla::{Severity, SlaChoice, SlaSource, Targets, TicketStatus};
use cohort_store::{
    CalendarRecord, ContractRecord, EffectiveSlaRecord, Page, TicketEventRecord, TicketFilter, TicketRecord,
};

pub(crate) async fn group_opt(ctx: &Context<'_>, g: Option<GroupId>) -> async_graphql::Result<Option<Group>> {
    match g {
        None => Ok(None),
        Some(g) => Ok(loader(ctx)?.load_one(g).await?.map(Group)),
    }
}

async fn user_opt(ctx: &Context<'_>, u: Option<UserId>) -> async_graphql::Result<Option<User>> {
    match u {
        None => Ok(None),
        Some(u) => Ok(loader(ctx)?.load_one(u).await?.map(User)),
    }
}

pub(crate) async fn contract_opt(
    ctx: &Context<'_>,
    c: Option<SlaContractId>,
) -> async_graphql::Result<Option<SlaContract>> {
    match c {
        None => Ok(None),
        Some(c) => Ok(loader(ctx)?.load_one(c).await?.map(SlaContract)),
    }
}

/// A day of the week.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum Weekday {
    /// Monday.
    Monday,
    /// Tuesday.
    Tuesday,
    /// Wednesday.
    Wednesday,
    /// Thursday.
    Thursday,
    /// Friday.
    Friday,
    /// Saturday.
    Saturday,
    /// Sunday.
    Sunday,
}

pub const WEEKDAYS: [Weekday; 7] = [
    Weekday::Monday,
    Weekday::Tuesday,
    Weekday::Wednesday,
    Weekday::Thursday,
    Weekday::Friday,
    Weekday::Saturday,
    Weekday::Sunday,
];

pub(crate) fn weekday_index(w: Weekday) -> u8 {
    WEEKDAYS.iter().position(|x| *x == w).unwrap_or(0) as u8
}

fn hhmm(m: u16) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

/// A working interval of one weekday, local time (`"08:00"`–`"17:00"`; ends may be `"24:00"`).
#[derive(SimpleObject)]
pub struct WorkingInterval {
    /// The day.
    pub weekday: Weekday,
    /// Start, local time (`"08:00"`).
    pub start: String,
    /// End, local time, after `start` (`"17:00"`; `"24:00"` for midnight).
    pub end: String,
}

/// A day off.
#[derive(SimpleObject)]
pub struct CalendarHoliday {
    /// The day, local date.
    pub date: NaiveDate,
    /// The same month and day every year.
    pub recurring: bool,
    /// Only working time before 12:00 counts that day.
    pub half_day: bool,
}

pub struct BusinessCalendar(pub CalendarRecord);

/// Working time for SLA clocks: an IANA time zone with weekly intervals and holidays, or 24×7.
#[Object]
impl BusinessCalendar {
    /// The calendar's global id (opaque; for `node(id:)` and inputs that take a calendar).
    pub async fn id(&self) -> ID {
        ids::encode(BusinessCalendarId::TAG, self.0.id.0)
    }
    /// The calendar's name, unique in the tenant.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// IANA name, e.g. `Europe/Prague`.
    async fn time_zone(&self) -> &str {
        &self.0.time_zone
    }
    /// 24×7: every minute counts.
    async fn always_open(&self) -> bool {
        self.0.always_open
    }
    /// Working intervals, by weekday and start (empty for a 24×7 calendar).
    async fn intervals(&self) -> Vec<WorkingInterval> {
        self.0
            .week
            .iter()
            .enumerate()
            .flat_map(|(d, day)| {
                day.iter().map(move |i: &WorkInterval| WorkingInterval {
                    weekday: WEEKDAYS[d],
                    start: hhmm(i.start),
                    end: hhmm(i.end),
                })
            })
            .collect()
    }
    /// Days off, by date.
    async fn holidays(&self) -> Vec<CalendarHoliday> {
        self.0
            .holidays
            .iter()
            .map(|h| CalendarHoliday { date: h.date, recurring: h.recurring, half_day: h.half_day })
            .collect()
    }
    /// When the calendar was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the calendar was last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// Targets in business minutes (`null`: no target for that clock).
#[derive(SimpleObject, Clone, Copy)]
pub struct SlaTargets {
    /// Business minutes from the opening until the first response is due; `null`: no target.
    pub first_response_minutes: Option<i64>,
    /// Business minutes of running resolution clock until resolution is due; `null`: no target.
    pub resolution_minutes: Option<i64>,
}

impl From<Targets> for SlaTargets {
    fn from(t: Targets) -> Self {
        SlaTargets { first_response_minutes: t.first_response, resolution_minutes: t.resolution }
    }
}

/// How severe a ticket is, as evaluated by an agent; contracts may set targets per severity.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum TicketSeverity {
    /// The most severe (typically: the customer's business is stopped).
    Critical,
    /// Severe (typically: badly impaired, with no workaround).
    High,
    /// The usual severity.
    Normal,
    /// The least severe (typically: a question or a cosmetic problem).
    Low,
}

impl From<TicketSeverity> for Severity {
    fn from(s: TicketSeverity) -> Self {
        match s {
            TicketSeverity::Critical => Severity::Critical,
            TicketSeverity::High => Severity::High,
            TicketSeverity::Normal => Severity::Normal,
            TicketSeverity::Low => Severity::Low,
        }
    }
}

impl From<Severity> for TicketSeverity {
    fn from(s: Severity) -> Self {
        match s {
            Severity::Critical => TicketSeverity::Critical,
            Severity::High => TicketSeverity::High,
            Severity::Normal => TicketSeverity::Normal,
            Severity::Low => TicketSeverity::Low,
        }
    }
}

/// The targets a contract sets for one severity.
#[derive(SimpleObject)]
pub struct SeverityTargets {
    /// The severity.
    pub severity: TicketSeverity,
    /// Its targets.
    pub targets: SlaTargets,
}

pub struct SlaContract(pub ContractRecord);

/// An SLA contract: a calendar and targets; `rank` orders contracts (higher = better service).
#[Object]
impl SlaContract {
    /// The contract's global id (opaque; for `node(id:)` and inputs that take an SLA contract).
    pub async fn id(&self) -> ID {
        ids::encode(SlaContractId::TAG, self.0.id.0)
    }
    /// The contract's name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Higher is better service: among a contact's groups, the highest-ranked default SLA applies.
    async fn rank(&self) -> i32 {
        self.0.rank
    }
    /// The working time the contract's clocks count in.
    async fn calendar(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<BusinessCalendar>> {
        Ok(loader(ctx)?.load_one(self.0.calendar).await?.map(BusinessCalendar))
    }
    /// Before severity is evaluated, and for severities without targets of their own.
    async fn default_targets(&self) -> SlaTargets {
        self.0.targets.default.into()
    }
    /// Targets for particular severities, overriding `defaultTargets` once the severity is
    /// evaluated.
    async fn severity_targets(&self) -> Vec<SeverityTargets> {
        self.0
            .targets
            .per_severity
            .iter()
            .map(|(s, t)| SeverityTargets { severity: (*s).into(), targets: (*t).into() })
            .collect()
    }
    /// When the contract was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the contract was last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

pub struct EffectiveSla(pub EffectiveSlaRecord);

/// A group's effective default SLA: its own, else its nearest ancestor's.
#[Object]
impl EffectiveSla {
    /// The contract; `null` if it no longer exists.
    async fn contract(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<SlaContract>> {
        contract_opt(ctx, Some(self.0.contract)).await
    }
    /// The group that sets it — `null` if the viewer cannot see that ancestor.
    async fn defined_on(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Group>> {
        group_opt(ctx, Some(self.0.defined_on)).await
    }
    /// Whether it comes from an ancestor rather than the group itself.
    async fn inherited(&self) -> bool {
        self.0.inherited
    }
}

/// Where a ticket stands. Any status may follow any other, except that nothing returns to `NEW`.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "TicketStatus")]
pub enum TicketStatusValue {
    /// Just opened, not worked on yet (the resolution clock runs).
    New,
    /// Being worked on (the resolution clock runs).
    Open,
    /// Waiting for the contact (the resolution clock stands still).
    WaitingOnCustomer,
    /// Solved, awaiting confirmation or closing; may be reopened (the clock stands still).
    Resolved,
    /// Done; may still be reopened (the clock stands still).
    Closed,
}

impl From<TicketStatusValue> for TicketStatus {
    fn from(s: TicketStatusValue) -> Self {
        match s {
            TicketStatusValue::New => TicketStatus::New,
            TicketStatusValue::Open => TicketStatus::Open,
            TicketStatusValue::WaitingOnCustomer => TicketStatus::WaitingOnCustomer,
            TicketStatusValue::Resolved => TicketStatus::Resolved,
            TicketStatusValue::Closed => TicketStatus::Closed,
        }
    }
}

impl From<TicketStatus> for TicketStatusValue {
    fn from(s: TicketStatus) -> Self {
        match s {
            TicketStatus::New => TicketStatusValue::New,
            TicketStatus::Open => TicketStatusValue::Open,
            TicketStatus::WaitingOnCustomer => TicketStatusValue::WaitingOnCustomer,
            TicketStatus::Resolved => TicketStatusValue::Resolved,
            TicketStatus::Closed => TicketStatusValue::Closed,
        }
    }
}

fn status_value(s: &Option<String>) -> Option<TicketStatusValue> {
    s.as_deref().and_then(TicketStatus::parse).map(Into::into)
}

/// Where a ticket's SLA came from.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum SlaSourceKind {
    /// The highest-ranked default SLA among the contact's groups.
    Group,
    /// The tenant's fallback.
    TenantDefault,
    /// Switched by hand (`switchTicketSla`).
    Manual,
    /// No SLA applies.
    None,
}

pub struct SlaCandidateView(pub cohort_domain::sla::SlaCandidate);

/// One of the contact's groups with a default SLA, when the ticket was opened.
#[Object(name = "SlaCandidate")]
impl SlaCandidateView {
    /// `null` if the viewer cannot see the group.
    async fn group(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Group>> {
        group_opt(ctx, Some(self.0.group)).await
    }
    /// The group's precedence (breaks ties between equal ranks: smaller first).
    async fn precedence(&self) -> i32 {
        self.0.precedence
    }
    /// The rank of the group's default contract (highest wins).
    async fn rank(&self) -> i32 {
        self.0.rank
    }
    /// Whether the group's default SLA is inherited from an ancestor.
    async fn inherited(&self) -> bool {
        self.0.depth > 0
    }
    /// `null` if the viewer cannot see that group.
    async fn defined_on(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Group>> {
        group_opt(ctx, Some(self.0.defined_on)).await
    }
    /// The default contract; `null` if it no longer exists.
    async fn contract(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<SlaContract>> {
        contract_opt(ctx, Some(self.0.contract)).await
    }
    /// Whether this candidate's contract was chosen.
    async fn chosen(&self) -> bool {
        self.0.chosen
    }
}

pub struct SlaExplanation(pub SlaChoice);

/// How the default SLA was chosen when the ticket was opened. All the contact's groups count;
/// groups are named only where the viewer can see them.
#[Object]
impl SlaExplanation {
    /// Where the default SLA came from.
    async fn source(&self) -> SlaSourceKind {
        match self.0.source {
            SlaSource::Group => SlaSourceKind::Group,
            SlaSource::TenantDefault => SlaSourceKind::TenantDefault,
            SlaSource::None => SlaSourceKind::None,
        }
    }
    /// Highest rank first; ties by precedence, then group id.
    async fn candidates(&self) -> Vec<SlaCandidateView> {
        self.0.candidates.iter().map(|c| SlaCandidateView(*c)).collect()
    }
    /// The choice in one sentence.
    async fn summary(&self) -> String {
        match self.0.source {
            SlaSource::Group => format!(
                "{} group(s) with a default SLA; the highest rank ({}) wins",
                self.0.candidates.len(),
                self.0.candidates.first().map(|c| c.rank).unwrap_or_default()
            ),
            SlaSource::TenantDefault => {
                "no group of the contact has a default SLA: the tenant's fallback applies".into()
            }
            SlaSource::None => "no group of the contact has a default SLA and the tenant has no fallback".into(),
        }
    }
}

/// What a ticket history entry records.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum TicketEventKind {
    /// The ticket was opened (with its first status and SLA).
    Created,
    /// The status changed.
    Status,
    /// The severity was evaluated.
    Severity,
    /// The SLA contract was switched by hand.
    Switch,
    /// The first response was recorded.
    Response,
}

pub struct TicketEvent(pub TicketEventRecord);

/// One entry of a ticket's history, with the due times before and after it.
#[Object]
impl TicketEvent {
    /// What happened.
    async fn kind(&self) -> TicketEventKind {
        match self.0.kind {
            "CREATED" => TicketEventKind::Created,
            "STATUS" => TicketEventKind::Status,
            "SEVERITY" => TicketEventKind::Severity,
            "SWITCH" => TicketEventKind::Switch,
            _ => TicketEventKind::Response,
        }
    }
    /// For status changes: the status before.
    async fn from_status(&self) -> Option<TicketStatusValue> {
        if self.0.kind == "STATUS" { status_value(&self.0.from) } else { None }
    }
    /// For status changes (and the creation): the status after.
    async fn to_status(&self) -> Option<TicketStatusValue> {
        if matches!(self.0.kind, "STATUS" | "CREATED") { status_value(&self.0.to) } else { None }
    }
    /// The severity after the event.
    async fn severity(&self) -> Option<TicketSeverity> {
        self.0.severity.map(Into::into)
    }
    /// For severity evaluations: the severity before (`null`: not evaluated).
    async fn from_severity(&self) -> Option<TicketSeverity> {
        if self.0.kind == "SEVERITY" { self.0.from.as_deref().and_then(Severity::parse).map(Into::into) } else { None }
    }
    /// Why, as given by whoever made the change; `null` if none.
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
    /// For switches: the contract before.
    async fn contract_from(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<SlaContract>> {
        contract_opt(ctx, self.0.contract_from).await
    }
    /// For the opening and switches: the contract after.
    async fn contract_to(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<SlaContract>> {
        contract_opt(ctx, self.0.contract_to).await
    }
    /// When the first response was due before this event; `null` if no target.
    async fn due_first_response_before(&self) -> Option<DateTime<Utc>> {
        self.0.due_first_response_before
    }
    /// When resolution was due before this event; `null` if no target or the clock stood still.
    async fn due_resolution_before(&self) -> Option<DateTime<Utc>> {
        self.0.due_resolution_before
    }
    /// When the first response is due after this event; `null` if no target.
    async fn due_first_response_after(&self) -> Option<DateTime<Utc>> {
        self.0.due_first_response_after
    }
    /// When resolution is due after this event; `null` if no target or the clock stands still.
    async fn due_resolution_after(&self) -> Option<DateTime<Utc>> {
        self.0.due_resolution_after
    }
    /// Who did it; `null` for the system.
    async fn actor(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        user_opt(ctx, self.0.actor).await
    }
    /// When it happened.
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }
}

async fn history(ctx: &Context<'_>, t: TicketId) -> async_graphql::Result<Vec<TicketEventRecord>> {
    Ok(loader(ctx)?.load_one(crate::graphql::loaders::HistoryOf(t)).await?.unwrap_or_default())
}

pub struct TicketSlaView(pub TicketRecord);

impl TicketSlaView {
    fn sla(&self) -> async_graphql::Result<&cohort_store::TicketSla> {
        self.0.sla.as_ref().ok_or_else(|| ApiError::Internal("ticket SLA missing".into()).into())
    }
}

/// The SLA of a ticket: the contract it was given (kept even if the contract changes later),
/// its due times and where its clock stands.
#[Object(name = "TicketSla")]
impl TicketSlaView {
    /// The contract as configured now (its name as applied is `contractName`).
    async fn contract(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<SlaContract>> {
        contract_opt(ctx, Some(self.sla()?.contract)).await
    }
    /// The contract's name when it was applied to the ticket.
    async fn contract_name(&self) -> async_graphql::Result<&str> {
        Ok(&self.sla()?.contract_name)
    }
    /// Where the contract came from.
    async fn source(&self) -> async_graphql::Result<SlaSourceKind> {
        let s = self.sla()?;
        Ok(if self.0.manual_sla {
            SlaSourceKind::Manual
        } else if s.from_tenant_default {
            SlaSourceKind::TenantDefault
        } else {
            SlaSourceKind::Group
        })
    }
    /// The group whose default SLA was chosen — `null` if none or hidden from the viewer.
    async fn source_group(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Group>> {
        group_opt(ctx, self.sla()?.source_group).await
    }
    /// `null` until evaluated (the default targets apply).
    async fn severity(&self) -> Option<TicketSeverity> {
        self.0.severity.map(Into::into)
    }
    /// The targets that apply now.
    async fn targets(&self) -> async_graphql::Result<SlaTargets> {
        Ok(self.sla()?.targets.at(self.0.severity).into())
    }
    /// When the first response is due; `null` without a first-response target.
    async fn due_first_response_at(&self) -> async_graphql::Result<Option<DateTime<Utc>>> {
        Ok(self.sla()?.due_first_response_at)
    }
    /// `null` while the resolution clock stands still (waiting on the customer, resolved).
    async fn due_resolution_at(&self) -> async_graphql::Result<Option<DateTime<Utc>>> {
        Ok(self.sla()?.due_resolution_at)
    }
    /// Whether the first response came (or is still missing) after its due time.
    async fn first_response_breached(&self) -> async_graphql::Result<bool> {
        let due = self.sla()?.due_first_response_at;
        Ok(due.is_some_and(|d| self.0.first_responded_at.unwrap_or_else(Utc::now) > d))
    }
    /// Whether resolution is (or was) late.
    async fn resolution_breached(&self) -> async_graphql::Result<bool> {
        let s = self.sla()?;
        Ok(s.resolution_breached || s.due_resolution_at.is_some_and(|d| d < Utc::now()))
    }
    /// Resolution target minus business minutes counted so far (negative once breached).
    async fn remaining_business_minutes(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<i64>> {
        let h = history(ctx, self.0.id).await?;
        Ok(cohort_store::ticket_clock(&self.0, &h, Utc::now()).and_then(|c| c.remaining))
    }
    /// Business minutes counted on the resolution clock so far.
    async fn elapsed_business_minutes(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        let h = history(ctx, self.0.id).await?;
        Ok(cohort_store::ticket_clock(&self.0, &h, Utc::now()).map(|c| c.elapsed).unwrap_or_default())
    }
    /// Business minutes the resolution clock stood still.
    async fn paused_business_minutes(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        let h = history(ctx, self.0.id).await?;
        Ok(cohort_store::ticket_clock(&self.0, &h, Utc::now()).map(|c| c.paused).unwrap_or_default())
    }
    /// Every SLA-relevant change: creation, severity evaluations, switches, status changes.
    async fn history(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<TicketEvent>> {
        Ok(history(ctx, self.0.id).await?.into_iter().filter(|e| e.kind != "RESPONSE").map(TicketEvent).collect())
    }
    /// How the default SLA was chosen when the ticket was opened; `null` for tickets opened without
    /// the choice recorded.
    async fn explanation(&self) -> Option<SlaExplanation> {
        self.0.sla_choice.clone().map(SlaExplanation)
    }
}

pub struct Ticket(pub TicketRecord);

impl From<TicketRecord> for Ticket {
    fn from(t: TicketRecord) -> Self {
        Ticket(t)
    }
}

/// A problem reported by (or for) a contact.
#[Object]
impl Ticket {
    /// The ticket's global id (opaque; for `node(id:)`, `ticket(id:)` and inputs that take a
    /// ticket).
    pub async fn id(&self) -> ID {
        ids::encode(TicketId::TAG, self.0.id.0)
    }
    /// Who the ticket is for; `null` if the viewer cannot see the contact.
    async fn contact(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Contact>> {
        Ok(loader(ctx)?.load_one(self.0.contact).await?.map(Contact))
    }
    /// One-line summary.
    async fn subject(&self) -> &str {
        &self.0.subject
    }
    /// The problem in full; `null` if none was given.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// How the ticket came in.
    async fn channel(&self) -> MessageChannel {
        self.0.channel.into()
    }
    /// Where the ticket stands.
    async fn status(&self) -> TicketStatusValue {
        self.0.status.into()
    }
    /// The evaluated severity; `null` until evaluated.
    async fn severity(&self) -> Option<TicketSeverity> {
        self.0.severity.map(Into::into)
    }
    /// The process area it was routed in.
    async fn process_area(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<ProcessArea>> {
        Ok(loader(ctx)?.load_one::<ProcessAreaId>(self.0.process_area).await?.map(ProcessArea))
    }
    /// The assigned worker; `null` if none.
    async fn worker(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        user_opt(ctx, self.0.worker).await
    }
    /// `null` also when the viewer may not see that user group; `restricted` tells either way.
    async fn user_group(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<UserGroup>> {
        match self.0.user_group {
            None => Ok(None),
            Some(g) => Ok(loader(ctx)?.load_one::<UserGroupId>(g).await?.map(UserGroup)),
        }
    }
    /// Whether the ticket is restricted to a user group (only admins, its worker and that group's
    /// members may read it).
    async fn restricted(&self) -> bool {
        self.0.user_group.is_some()
    }
    /// The queue it waits in.
    async fn processing_area(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<ProcessingArea>> {
        Ok(loader(ctx)?.load_one::<ProcessingAreaId>(self.0.processing_area).await?.map(ProcessingArea))
    }
    /// The group whose responsibility routed it — `null` if none or hidden from the viewer.
    async fn deciding_group(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Group>> {
        group_opt(ctx, self.0.deciding_group).await
    }
    /// When the ticket was opened (the SLA clocks start here).
    async fn opened_at(&self) -> DateTime<Utc> {
        self.0.opened_at
    }
    /// When the first response was recorded; `null` until then.
    async fn first_responded_at(&self) -> Option<DateTime<Utc>> {
        self.0.first_responded_at
    }
    /// When it was last resolved or closed; `null` while open.
    async fn resolved_at(&self) -> Option<DateTime<Utc>> {
        self.0.resolved_at
    }
    /// `null` when no SLA applies.
    async fn sla(&self) -> Option<TicketSlaView> {
        self.0.sla.as_ref().map(|_| TicketSlaView(self.0.clone()))
    }
    /// Everything that happened to the ticket, oldest first.
    async fn history(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<TicketEvent>> {
        Ok(history(ctx, self.0.id).await?.into_iter().map(TicketEvent).collect())
    }
    /// When Cohort recorded the ticket.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the ticket last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// A ticket on a page, with its cursor.
#[derive(SimpleObject)]
pub struct TicketEdge {
    /// Opaque position of this ticket in the list: pass it as `after` to get the tickets that
    /// follow.
    pub cursor: String,
    /// The ticket.
    pub node: Ticket,
}

/// A page of tickets, nearest due time first.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct TicketConnection {
    /// The tickets of this page, nearest due time first.
    pub edges: Vec<TicketEdge>,
    /// Whether more tickets follow, and the cursors of this page's first and last ticket.
    pub page_info: PageInfo,
    #[graphql(skip)]
    pub filter: TicketFilter,
}

#[async_graphql::ComplexObject]
impl TicketConnection {
    /// How many tickets match, over those the viewer may read.
    async fn total_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        Ok(data(ctx)?.ticket_count(&self.filter).await.map_err(ApiError::from)?)
    }
}

impl TicketConnection {
    pub fn from_page(p: Page<TicketRecord>, filter: TicketFilter) -> Self {
        let page_info = page_info(&p);
        TicketConnection {
            edges: p.rows.into_iter().map(|(cursor, t)| TicketEdge { cursor, node: Ticket(t) }).collect(),
            page_info,
            filter,
        }
    }
}

/// `Contact.tickets`.
pub async fn contact_tickets(
    ctx: &Context<'_>,
    c: cohort_domain::ids::ContactId,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<TicketConnection> {
    let filter = TicketFilter { contact: Some(c), ..Default::default() };
    let p = data(ctx)?.tickets(&filter, &page_req(first, after)?).await.map_err(ApiError::from)?;
    Ok(TicketConnection::from_page(p, filter))
}

/// `Group.effectiveDefaultSla`.
pub async fn effective_default_sla(ctx: &Context<'_>, g: GroupId) -> async_graphql::Result<Option<EffectiveSla>> {
    Ok(data(ctx)?.effective_default_sla(g).await.map_err(ApiError::from)?.map(EffectiveSla))
}
