//! Mutations of the SLA area.

use crate::error::ApiError;
use crate::graphql::routing::MessageChannel;
use crate::graphql::sla::*;
use crate::graphql::{data, ids};
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use cohort_domain::calendar::Holiday;
use cohort_domain::ids::{BusinessCalendarId, ContactId, GroupId, SlaContractId, TicketId};
use cohort_domain::sla::{ContractTargets, Targets};
use cohort_store::{CalendarInput, ContractInput, TicketInput};

/// A working interval of one weekday, local time; intervals of a day must not overlap.
#[derive(InputObject)]
pub struct WorkingIntervalInput {
    /// The day.
    pub weekday: Weekday,
    /// `"HH:MM"`, local time.
    pub start: String,
    /// `"HH:MM"`; `"24:00"` for the end of the day.
    pub end: String,
}

/// A day off in a business calendar.
#[derive(InputObject)]
pub struct HolidayInput {
    /// The day (`2026-12-24`), local date.
    pub date: NaiveDate,
    /// The same month and day every year (default `false`: only that date).
    #[graphql(default)]
    pub recurring: bool,
    /// Only working time before 12:00 counts that day (default `false`: none counts).
    #[graphql(default)]
    pub half_day: bool,
}

/// A business calendar's definition (the input of `createBusinessCalendar`).
#[derive(InputObject)]
pub struct BusinessCalendarInput {
    /// The calendar's name (1 to 200 characters, unique in the tenant).
    pub name: String,
    /// IANA name, e.g. `Europe/Prague`.
    pub time_zone: String,
    /// 24×7 (then no intervals or holidays).
    #[graphql(default)]
    pub always_open: bool,
    /// Working intervals per weekday (not with `alwaysOpen`).
    #[graphql(default)]
    pub intervals: Vec<WorkingIntervalInput>,
    /// Days off (not with `alwaysOpen`).
    #[graphql(default)]
    pub holidays: Vec<HolidayInput>,
}

impl BusinessCalendarInput {
    fn into_store(self) -> CalendarInput {
        CalendarInput {
            name: self.name,
            time_zone: self.time_zone,
            always_open: self.always_open,
            intervals: self.intervals.into_iter().map(|i| (weekday_index(i.weekday), i.start, i.end)).collect(),
            holidays: self
                .holidays
                .into_iter()
                .map(|h| Holiday { date: h.date, recurring: h.recurring, half_day: h.half_day })
                .collect(),
        }
    }
}

/// The input of `updateBusinessCalendar`.
#[derive(InputObject)]
pub struct UpdateBusinessCalendarInput {
    /// The calendar to change.
    pub id: ID,
    /// The whole new definition (tickets keep the calendar they were given).
    pub calendar: BusinessCalendarInput,
}

/// The result of `createBusinessCalendar` and `updateBusinessCalendar`.
#[derive(SimpleObject)]
pub struct BusinessCalendarPayload {
    /// The calendar as it now stands.
    pub business_calendar: BusinessCalendar,
}

/// Targets in business minutes; leave one out (or `null`) for no target on that clock.
#[derive(InputObject, Clone, Copy)]
pub struct SlaTargetsInput {
    /// Business minutes from the opening until the first response is due.
    pub first_response_minutes: Option<i64>,
    /// Business minutes of running resolution clock until resolution is due.
    pub resolution_minutes: Option<i64>,
}

impl From<SlaTargetsInput> for Targets {
    fn from(t: SlaTargetsInput) -> Self {
        Targets { first_response: t.first_response_minutes, resolution: t.resolution_minutes }
    }
}

/// The targets for one severity.
#[derive(InputObject)]
pub struct SeverityTargetsInput {
    /// The severity.
    pub severity: TicketSeverity,
    /// Its targets (they replace `defaultTargets` once a ticket is evaluated to this severity).
    pub targets: SlaTargetsInput,
}

/// An SLA contract's definition (the input of `createSlaContract`).
#[derive(InputObject)]
pub struct SlaContractInput {
    /// The contract's name (1 to 200 characters, unique in the tenant).
    pub name: String,
    /// Higher = better service; the highest-ranked default among a contact's groups wins.
    pub rank: i32,
    /// The business calendar the contract's clocks count in.
    pub calendar_id: ID,
    /// Targets before severity is evaluated, and for severities without their own.
    pub default_targets: SlaTargetsInput,
    /// Targets for particular severities.
    #[graphql(default)]
    pub severity_targets: Vec<SeverityTargetsInput>,
}

impl SlaContractInput {
    fn into_store(self) -> Result<ContractInput, ApiError> {
        Ok(ContractInput {
            name: self.name,
            rank: self.rank,
            calendar: BusinessCalendarId(ids::decode(BusinessCalendarId::TAG, &self.calendar_id)?),
            targets: ContractTargets {
                default: self.default_targets.into(),
                per_severity: self
                    .severity_targets
                    .into_iter()
                    .map(|s| (s.severity.into(), s.targets.into()))
                    .collect(),
            },
        })
    }
}

/// The input of `updateSlaContract`.
#[derive(InputObject)]
pub struct UpdateSlaContractInput {
    /// The contract to change.
    pub id: ID,
    /// The whole new definition (tickets keep the targets they were given).
    pub contract: SlaContractInput,
}

/// The result of `createSlaContract` and `updateSlaContract`.
#[derive(SimpleObject)]
pub struct SlaContractPayload {
    /// The contract as it now stands.
    pub sla_contract: SlaContract,
}

/// The input of `setGroupDefaultSla`.
#[derive(InputObject)]
pub struct SetGroupDefaultSlaInput {
    /// The group whose contacts' tickets get the contract (subgroups inherit it unless they set
    /// their own).
    pub group_id: ID,
    /// `null` clears the group's own default (it inherits again).
    pub sla_contract_id: Option<ID>,
}

/// The result of `setGroupDefaultSla`.
#[derive(SimpleObject)]
pub struct SetGroupDefaultSlaPayload {
    /// The group after the change (see `effectiveDefaultSla`).
    pub group: Option<crate::graphql::groups::Group>,
}

/// The input of `setTenantDefaultSla`.
#[derive(InputObject)]
pub struct SetTenantDefaultSlaInput {
    /// The contract for tickets of contacts whose groups set none; `null` clears it.
    pub sla_contract_id: Option<ID>,
}

/// The result of `setTenantDefaultSla`.
#[derive(SimpleObject)]
pub struct SetTenantDefaultSlaPayload {
    /// The tenant's default contract now; `null` if none.
    pub sla_contract: Option<SlaContract>,
}

/// The input of `createTicket`.
#[derive(InputObject)]
pub struct CreateTicketInput {
    /// The contact the ticket is for (needs WRITE on the contact's book).
    pub contact_id: ID,
    /// One-line summary.
    pub subject: String,
    /// The problem in full (optional).
    pub description: Option<String>,
    /// How the ticket came in.
    pub channel: MessageChannel,
    /// Process-area key; default `helpdesk`.
    pub process_area: Option<String>,
    /// Importing from another helpdesk (admins and integrations): when it was opened.
    pub opened_at: Option<DateTime<Utc>>,
    /// A retry with the same key (same caller, same input, within 24 h) returns the first
    /// ticket and stores nothing; the same key with other input is `CONFLICT`.
    pub idempotency_key: Option<String>,
}

/// The result of `createTicket`.
#[derive(SimpleObject)]
pub struct CreateTicketPayload {
    /// The new ticket's global id (also when the caller may not read the ticket).
    pub ticket_id: ID,
    /// The ticket, if the caller may read it (its queue may be restricted to a user group).
    pub ticket: Option<Ticket>,
    /// How its default SLA was chosen.
    pub sla_explanation: SlaExplanation,
    /// `true` when this answers an idempotent retry.
    pub replayed: bool,
}

/// The input of `evaluateTicketSeverity`.
#[derive(InputObject)]
pub struct EvaluateTicketSeverityInput {
    /// The ticket to evaluate.
    pub ticket_id: ID,
    /// The severity; the contract's targets for it apply from now on.
    pub severity: TicketSeverity,
    /// Why (kept in the ticket's history).
    pub reason: Option<String>,
    /// Importing (admins and integrations): when it happened.
    pub at: Option<DateTime<Utc>>,
}

/// The input of `switchTicketSla`.
#[derive(InputObject)]
pub struct SwitchTicketSlaInput {
    /// The ticket whose contract changes.
    pub ticket_id: ID,
    /// Another contract, or the same one to re-apply its current targets and calendar.
    pub sla_contract_id: ID,
    /// Why (kept in the ticket's history).
    pub reason: Option<String>,
    /// Importing (admins and integrations): when it happened; default now.
    pub at: Option<DateTime<Utc>>,
}

/// The input of `setTicketStatus`.
#[derive(InputObject)]
pub struct SetTicketStatusInput {
    /// The ticket to change.
    pub ticket_id: ID,
    /// The new status (anything but `NEW`, and not the current one).
    pub status: TicketStatusValue,
    /// Why (kept in the ticket's history).
    pub reason: Option<String>,
    /// Importing (admins and integrations): when it happened; default now.
    pub at: Option<DateTime<Utc>>,
}

/// The input of `respondToTicket`.
#[derive(InputObject)]
pub struct RespondToTicketInput {
    /// The ticket that got its first response.
    pub ticket_id: ID,
    /// When the response was given (importing: admins and integrations); default now.
    pub at: Option<DateTime<Utc>>,
}

/// The result of a change to a ticket.
#[derive(SimpleObject)]
pub struct TicketPayload {
    /// The ticket after the change.
    pub ticket: Ticket,
}

fn ticket_id(id: &ID) -> Result<TicketId, ApiError> {
    Ok(TicketId(ids::decode(TicketId::TAG, id)?))
}
fn contract_id(id: &ID) -> Result<SlaContractId, ApiError> {
    Ok(SlaContractId(ids::decode(SlaContractId::TAG, id)?))
}

#[derive(Default)]
pub struct SlaMutation;

#[Object]
impl SlaMutation {
    /// Creates a business calendar (admin).
    async fn create_business_calendar(
        &self,
        ctx: &Context<'_>,
        input: BusinessCalendarInput,
    ) -> async_graphql::Result<BusinessCalendarPayload> {
        let c = data(ctx)?.create_business_calendar(&input.into_store()).await.map_err(ApiError::from)?;
        Ok(BusinessCalendarPayload { business_calendar: BusinessCalendar(c) })
    }

    /// Replaces a business calendar's definition (admin).
    async fn update_business_calendar(
        &self,
        ctx: &Context<'_>,
        input: UpdateBusinessCalendarInput,
    ) -> async_graphql::Result<BusinessCalendarPayload> {
        let id = BusinessCalendarId(ids::decode(BusinessCalendarId::TAG, &input.id)?);
        let c = data(ctx)?.update_business_calendar(id, &input.calendar.into_store()).await.map_err(ApiError::from)?;
        Ok(BusinessCalendarPayload { business_calendar: BusinessCalendar(c) })
    }

    /// Creates an SLA contract (admin).
    async fn create_sla_contract(
        &self,
        ctx: &Context<'_>,
        input: SlaContractInput,
    ) -> async_graphql::Result<SlaContractPayload> {
        let c = data(ctx)?.create_sla_contract(&input.into_store()?).await.map_err(ApiError::from)?;
        Ok(SlaContractPayload { sla_contract: SlaContract(c) })
    }

    /// Replaces an SLA contract's definition (admin). Existing tickets keep their targets.
    async fn update_sla_contract(
        &self,
        ctx: &Context<'_>,
        input: UpdateSlaContractInput,
    ) -> async_graphql::Result<SlaContractPayload> {
        let id = contract_id(&input.id)?;
        let c = data(ctx)?.update_sla_contract(id, &input.contract.into_store()?).await.map_err(ApiError::from)?;
        Ok(SlaContractPayload { sla_contract: SlaContract(c) })
    }

    /// Sets or clears a group's default SLA (MANAGE on the group's home book); subgroups
    /// without one inherit it.
    async fn set_group_default_sla(
        &self,
        ctx: &Context<'_>,
        input: SetGroupDefaultSlaInput,
    ) -> async_graphql::Result<SetGroupDefaultSlaPayload> {
        let g = GroupId(ids::decode(GroupId::TAG, &input.group_id)?);
        let c = input.sla_contract_id.as_ref().map(contract_id).transpose()?;
        data(ctx)?.set_group_default_sla(g, c).await.map_err(ApiError::from)?;
        let group = data(ctx)?.groups_by_ids(&[g]).await.map_err(ApiError::from)?.pop();
        Ok(SetGroupDefaultSlaPayload { group: group.map(crate::graphql::groups::Group) })
    }

    /// Sets or clears the tenant's fallback SLA (admin).
    async fn set_tenant_default_sla(
        &self,
        ctx: &Context<'_>,
        input: SetTenantDefaultSlaInput,
    ) -> async_graphql::Result<SetTenantDefaultSlaPayload> {
        let c = input.sla_contract_id.as_ref().map(contract_id).transpose()?;
        data(ctx)?.set_tenant_default_sla(c).await.map_err(ApiError::from)?;
        Ok(SetTenantDefaultSlaPayload { sla_contract: contract_opt(ctx, c).await? })
    }

    /// Opens a ticket for a contact (WRITE on the contact's book): routed like a message, with
    /// the default SLA of the contact's groups.
    async fn create_ticket(
        &self,
        ctx: &Context<'_>,
        input: CreateTicketInput,
    ) -> async_graphql::Result<CreateTicketPayload> {
        let i = TicketInput {
            contact: ContactId(ids::decode(ContactId::TAG, &input.contact_id)?),
            subject: input.subject,
            description: input.description,
            channel: input.channel.into(),
            process_area: input.process_area,
            opened_at: input.opened_at,
            idempotency_key: input.idempotency_key,
        };
        let r = data(ctx)?.create_ticket(&i).await.map_err(ApiError::from)?;
        Ok(CreateTicketPayload {
            ticket_id: ids::encode(TicketId::TAG, r.id.0),
            ticket: r.ticket.map(Ticket),
            sla_explanation: SlaExplanation(r.sla_choice),
            replayed: r.replayed,
        })
    }

    /// Evaluates the ticket's severity: that severity's targets apply, measured from the
    /// opening (WRITE on the contact's book).
    async fn evaluate_ticket_severity(
        &self,
        ctx: &Context<'_>,
        input: EvaluateTicketSeverityInput,
    ) -> async_graphql::Result<TicketPayload> {
        let t = data(ctx)?
            .evaluate_ticket_severity(
                ticket_id(&input.ticket_id)?,
                input.severity.into(),
                input.reason.as_deref(),
                input.at,
            )
            .await
            .map_err(ApiError::from)?;
        Ok(TicketPayload { ticket: Ticket(t) })
    }

    /// Gives the ticket another contract (or re-applies its own). Elapsed and paused time are kept.
    async fn switch_ticket_sla(
        &self,
        ctx: &Context<'_>,
        input: SwitchTicketSlaInput,
    ) -> async_graphql::Result<TicketPayload> {
        let t = data(ctx)?
            .switch_ticket_sla(
                ticket_id(&input.ticket_id)?,
                contract_id(&input.sla_contract_id)?,
                input.reason.as_deref(),
                input.at,
            )
            .await
            .map_err(ApiError::from)?;
        Ok(TicketPayload { ticket: Ticket(t) })
    }

    /// Moves the ticket to another status (reopening allowed). `WAITING_ON_CUSTOMER`, `RESOLVED`
    /// and `CLOSED` stop the resolution clock.
    async fn set_ticket_status(
        &self,
        ctx: &Context<'_>,
        input: SetTicketStatusInput,
    ) -> async_graphql::Result<TicketPayload> {
        let t = data(ctx)?
            .set_ticket_status(ticket_id(&input.ticket_id)?, input.status.into(), input.reason.as_deref(), input.at)
            .await
            .map_err(ApiError::from)?;
        Ok(TicketPayload { ticket: Ticket(t) })
    }

    /// Records the first response (later calls change nothing).
    async fn respond_to_ticket(
        &self,
        ctx: &Context<'_>,
        input: RespondToTicketInput,
    ) -> async_graphql::Result<TicketPayload> {
        let t = data(ctx)?.respond_to_ticket(ticket_id(&input.ticket_id)?, input.at).await.map_err(ApiError::from)?;
        Ok(TicketPayload { ticket: Ticket(t) })
    }
}
