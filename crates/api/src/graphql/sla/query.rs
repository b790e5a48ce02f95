//! Queries of the SLA area.

use crate::error::ApiError;
use crate::graphql::relay::page_req;
use crate::graphql::sla::*;
use crate::graphql::{data, ids, loader, viewer};
use async_graphql::{Context, ID, InputObject, Object};
use chrono::{DateTime, Utc};
use cohort_domain::ids::{ContactId, GroupId, ProcessingAreaId, TicketId, UserId};
use cohort_store::TicketFilter;

/// `tickets(filter:)`: every part narrows the list.
#[derive(InputObject, Default)]
pub struct TicketFilterInput {
    /// Any of these statuses.
    #[graphql(default)]
    pub status: Vec<TicketStatusValue>,
    /// Only tickets in this queue.
    pub processing_area_id: Option<ID>,
    /// Only tickets assigned to this user (what a ticket shows as `worker`).
    pub worker_id: Option<ID>,
    /// The old name of `workerId`.
    #[graphql(deprecation = "Use `workerId` (the same user id).")]
    pub assignee: Option<ID>,
    /// Only tickets assigned to the viewer.
    #[graphql(default)]
    pub assigned_to_me: bool,
    /// Only tickets of this contact.
    pub contact_id: Option<ID>,
    /// Tickets of the group's (visible) members.
    pub group_id: Option<ID>,
    /// With `groupId`: members of its subgroups count too.
    #[graphql(default)]
    pub include_subgroups: bool,
    /// Only breached (`true`) or only not breached (`false`) tickets.
    pub breached: Option<bool>,
    /// Only tickets whose nearest due time is before this instant.
    pub due_before: Option<DateTime<Utc>>,
}

impl TicketFilterInput {
    fn into_store(self) -> Result<TicketFilter, ApiError> {
        Ok(TicketFilter {
            status: self.status.into_iter().map(Into::into).collect(),
            processing_area: self
                .processing_area_id
                .map(|q| ids::decode(ProcessingAreaId::TAG, &q).map(ProcessingAreaId))
                .transpose()?,
            assignee: ids::renamed(self.worker_id, "workerId", self.assignee, "assignee")?
                .map(|u| ids::decode(UserId::TAG, &u).map(UserId))
                .transpose()?,
            assigned_to_me: self.assigned_to_me,
            contact: self.contact_id.map(|c| ids::decode(ContactId::TAG, &c).map(ContactId)).transpose()?,
            group: self
                .group_id
                .map(|g| ids::decode(GroupId::TAG, &g).map(|g| (GroupId(g), self.include_subgroups)))
                .transpose()?,
            breached: self.breached,
            due_before: self.due_before,
        })
    }
}

#[derive(Default)]
pub struct SlaQuery;

#[Object]
impl SlaQuery {
    /// Every business calendar of the tenant, by name.
    async fn business_calendars(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<BusinessCalendar>> {
        Ok(data(ctx)?.business_calendars().await.map_err(ApiError::from)?.into_iter().map(BusinessCalendar).collect())
    }

    /// Every SLA contract of the tenant, best service (highest rank) first.
    async fn sla_contracts(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<SlaContract>> {
        Ok(data(ctx)?.sla_contracts().await.map_err(ApiError::from)?.into_iter().map(SlaContract).collect())
    }

    /// The tenant's fallback SLA (for contacts none of whose groups has one).
    async fn tenant_default_sla(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<SlaContract>> {
        let c = data(ctx)?.tenant_default_sla().await.map_err(ApiError::from)?;
        contract_opt(ctx, c).await
    }

    /// One ticket; `NOT_FOUND` if the viewer may not read it.
    async fn ticket(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Ticket> {
        viewer(ctx)?;
        let id = TicketId(ids::decode(TicketId::TAG, &id)?);
        loader(ctx)?.load_one(id).await?.map(Ticket).ok_or_else(|| ApiError::NotFound.into())
    }

    /// The work queue: readable tickets, nearest due time first (nothing due: last).
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn tickets(
        &self,
        ctx: &Context<'_>,
        filter: Option<TicketFilterInput>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<TicketConnection> {
        let filter = filter.unwrap_or_default().into_store()?;
        let p = data(ctx)?.tickets(&filter, &page_req(first, after)?).await.map_err(ApiError::from)?;
        Ok(TicketConnection::from_page(p, filter))
    }
}
