//! SLA contracts (DESIGN §1): business calendars, contracts and their targets, default SLAs per
//! group (inherited) and per tenant, and tickets whose due times follow them.
//!
//! - `calendars`: business calendars (IANA zone, weekly intervals, holidays, or 24×7).
//! - `contracts`: contracts, group defaults, the tenant fallback.
//! - `tickets`: tickets — routed like messages, given a default SLA from **all** the contact's
//!   groups, with a clock that survives severity changes and contract switches.

pub(crate) mod calendars;
pub(crate) mod contracts;
pub(crate) mod tickets;

use crate::access::viewer::Viewer;
use crate::error::{StoreError, StoreResult};
use chrono::{DateTime, NaiveDate, Utc};
use cohort_domain::calendar::{Calendar, Holiday, WorkInterval, parse_time_zone};
use cohort_domain::ids::{
    BusinessCalendarId, ContactId, GroupId, ProcessAreaId, ProcessingAreaId, SlaContractId, TicketId, UserGroupId,
    UserId,
};
use cohort_domain::routing::Channel;
use cohort_domain::sla::{ContractTargets, Severity, SlaChoice, Targets, TicketStatus};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

fn require_admin(v: &Viewer, what: &str) -> StoreResult<()> {
    if v.is_admin() { Ok(()) } else { Err(StoreError::forbidden(format!("{what} is for admins"))) }
}

/// A business calendar as stored and shown.
#[derive(Debug, Clone, PartialEq)]
pub struct CalendarRecord {
    pub id: BusinessCalendarId,
    pub name: String,
    pub time_zone: String,
    pub always_open: bool,
    /// Monday first: each day's intervals in minutes after local midnight.
    pub week: [Vec<WorkInterval>; 7],
    pub holidays: Vec<Holiday>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What `createBusinessCalendar` / `updateBusinessCalendar` are given.
#[derive(Debug, Clone)]
pub struct CalendarInput {
    pub name: String,
    pub time_zone: String,
    pub always_open: bool,
    /// (weekday 0 = Monday … 6 = Sunday, "HH:MM", "HH:MM"); ends may be "24:00".
    pub intervals: Vec<(u8, String, String)>,
    pub holidays: Vec<Holiday>,
}

/// An SLA contract as stored and shown.
#[derive(Debug, Clone, PartialEq)]
pub struct ContractRecord {
    pub id: SlaContractId,
    pub name: String,
    pub rank: i32,
    pub calendar: BusinessCalendarId,
    pub targets: ContractTargets,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct ContractInput {
    pub name: String,
    pub rank: i32,
    pub calendar: BusinessCalendarId,
    pub targets: ContractTargets,
}

/// A group's effective default SLA: its own, else its nearest ancestor's.
#[derive(Debug, Clone, PartialEq)]
pub struct EffectiveSlaRecord {
    pub contract: SlaContractId,
    pub defined_on: GroupId,
    pub inherited: bool,
}

/// What `createTicket` is given.
#[derive(Debug, Clone)]
pub struct TicketInput {
    pub contact: ContactId,
    pub subject: String,
    pub description: Option<String>,
    pub channel: Channel,
    /// Default `helpdesk`.
    pub process_area: Option<String>,
    /// Imported tickets: when they were opened (admins and integrations; never in the future).
    pub opened_at: Option<DateTime<Utc>>,
    /// A retry with the same key (same user, same input, within 24 h) returns the first ticket.
    pub idempotency_key: Option<String>,
}

/// A ticket as the viewer may read it.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketRecord {
    pub id: TicketId,
    pub contact: ContactId,
    pub process_area: ProcessAreaId,
    pub subject: String,
    pub description: Option<String>,
    pub channel: Channel,
    pub status: TicketStatus,
    pub severity: Option<Severity>,
    pub opened_at: DateTime<Utc>,
    pub first_responded_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub worker: Option<UserId>,
    pub user_group: Option<UserGroupId>,
    pub processing_area: ProcessingAreaId,
    pub deciding_group: Option<GroupId>,
    pub sla: Option<TicketSla>,
    /// The nearest due time that still matters (`9999-12-31` when nothing is due): the work
    /// queue's order.
    pub next_due_at: DateTime<Utc>,
    /// How the default SLA was chosen when the ticket was opened.
    pub sla_choice: Option<SlaChoice>,
    /// The contract was switched by hand since.
    pub manual_sla: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The SLA a ticket was given (a snapshot: later edits of the contract do not move it).
#[derive(Debug, Clone, PartialEq)]
pub struct TicketSla {
    pub contract: SlaContractId,
    pub contract_name: String,
    pub source_group: Option<GroupId>,
    pub from_tenant_default: bool,
    pub calendar: Calendar,
    pub targets: ContractTargets,
    pub due_first_response_at: Option<DateTime<Utc>>,
    pub due_resolution_at: Option<DateTime<Utc>>,
    /// Breached before the clock last stopped (pauses and resolutions keep the verdict).
    pub resolution_breached: bool,
}

/// One entry of a ticket's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketEventRecord {
    /// `CREATED`, `STATUS`, `SEVERITY`, `SWITCH`, `RESPONSE`.
    pub kind: &'static str,
    pub from: Option<String>,
    pub to: Option<String>,
    pub severity: Option<Severity>,
    pub reason: Option<String>,
    pub contract_from: Option<SlaContractId>,
    pub contract_to: Option<SlaContractId>,
    pub due_first_response_before: Option<DateTime<Utc>>,
    pub due_resolution_before: Option<DateTime<Utc>>,
    pub due_first_response_after: Option<DateTime<Utc>>,
    pub due_resolution_after: Option<DateTime<Utc>>,
    pub actor: Option<UserId>,
    pub at: DateTime<Utc>,
}

/// `tickets(filter:)`.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub status: Vec<TicketStatus>,
    pub processing_area: Option<ProcessingAreaId>,
    pub assignee: Option<UserId>,
    pub assigned_to_me: bool,
    pub contact: Option<ContactId>,
    pub group: Option<(GroupId, bool)>,
    pub breached: Option<bool>,
    pub due_before: Option<DateTime<Utc>>,
}

/// A ticket just created, with the explanation of its SLA.
#[derive(Debug, Clone)]
pub struct CreatedTicket {
    pub id: TicketId,
    /// The ticket, if the caller may read it.
    pub ticket: Option<TicketRecord>,
    /// How its default SLA was chosen (groups are ids: the API names only visible ones).
    pub sla_choice: SlaChoice,
    /// An idempotent retry: the first call's ticket, nothing new stored.
    pub replayed: bool,
}

/// The JSON a calendar is stored as (also inside a ticket's SLA snapshot).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredCalendar {
    pub time_zone: String,
    pub always_open: bool,
    pub week: Vec<Vec<(u16, u16)>>,
    pub holidays: Vec<StoredHoliday>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredHoliday {
    pub date: NaiveDate,
    pub recurring: bool,
    pub half_day: bool,
}

impl StoredCalendar {
    pub(crate) fn of(c: &Calendar) -> StoredCalendar {
        StoredCalendar {
            time_zone: c.time_zone().name().to_owned(),
            always_open: c.is_always_open(),
            week: c.week().iter().map(|d| d.iter().map(|i| (i.start, i.end)).collect()).collect(),
            holidays: c
                .holidays()
                .iter()
                .map(|h| StoredHoliday { date: h.date, recurring: h.recurring, half_day: h.half_day })
                .collect(),
        }
    }

    pub(crate) fn calendar(&self) -> StoreResult<Calendar> {
        let tz =
            parse_time_zone(&self.time_zone).map_err(|_| StoreError::corrupt("calendar.timeZone", &self.time_zone))?;
        if self.always_open {
            return Ok(Calendar::always_open(tz));
        }
        let mut week: [Vec<WorkInterval>; 7] = Default::default();
        for (i, d) in self.week.iter().enumerate().take(7) {
            week[i] = d.iter().map(|(s, e)| WorkInterval { start: *s, end: *e }).collect();
        }
        let holidays = self
            .holidays
            .iter()
            .map(|h| Holiday { date: h.date, recurring: h.recurring, half_day: h.half_day })
            .collect();
        Calendar::new(tz, week, holidays).map_err(|_| StoreError::corrupt("calendar.week", &self.week))
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredTargets {
    pub first_response: Option<i64>,
    pub resolution: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredContractTargets {
    pub default: StoredTargets,
    pub per_severity: Vec<(String, StoredTargets)>,
}

impl StoredContractTargets {
    pub(crate) fn of(t: &ContractTargets) -> Self {
        let st = |t: Targets| StoredTargets { first_response: t.first_response, resolution: t.resolution };
        StoredContractTargets {
            default: st(t.default),
            per_severity: t.per_severity.iter().map(|(s, t)| (s.as_str().to_owned(), st(*t))).collect(),
        }
    }
    pub(crate) fn targets(&self) -> StoreResult<ContractTargets> {
        let t = |s: StoredTargets| Targets { first_response: s.first_response, resolution: s.resolution };
        Ok(ContractTargets {
            default: t(self.default),
            per_severity: self
                .per_severity
                .iter()
                .map(|(s, x)| Ok((Severity::parse(s).ok_or_else(|| StoreError::corrupt("sla.severity", s))?, t(*x))))
                .collect::<StoreResult<_>>()?,
        })
    }
}

/// What a ticket keeps of its contract.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SlaSnapshot {
    pub contract_name: String,
    pub calendar: StoredCalendar,
    pub targets: StoredContractTargets,
}
