//! Queries of the routing area.

use crate::error::ApiError;
use crate::graphql::relay::page_req;
use crate::graphql::routing::*;
use crate::graphql::{data, ids, loader, viewer};
use async_graphql::{Context, ID, InputObject, Object};
use chrono::{DateTime, Utc};
use cohort_domain::ids::{ContactId, MessageId, ProcessingAreaId, UserId};
use cohort_store::MessageFilter;

/// `messages(filter:)`: every part narrows the list.
#[derive(InputObject, Default)]
pub struct MessageFilterInput {
    /// Only messages from this contact.
    pub contact_id: Option<ID>,
    /// A queue.
    pub processing_area_id: Option<ID>,
    /// A process-area key (`helpdesk`).
    pub process_area: Option<String>,
    /// Only messages assigned to the viewer.
    #[graphql(default)]
    pub assigned_to_me: bool,
    /// Only messages assigned to this user (what a message shows as `worker`).
    pub worker_id: Option<ID>,
    /// The old name of `workerId`.
    #[graphql(deprecation = "Use `workerId` (the same user id).")]
    pub assignee: Option<ID>,
    /// Only messages received at or after this instant.
    pub received_after: Option<DateTime<Utc>>,
    /// Only messages received before this instant.
    pub received_before: Option<DateTime<Utc>>,
}

impl MessageFilterInput {
    fn into_store(self) -> Result<MessageFilter, ApiError> {
        Ok(MessageFilter {
            contact: self.contact_id.map(|c| ids::decode(ContactId::TAG, &c).map(ContactId)).transpose()?,
            processing_area: self
                .processing_area_id
                .map(|q| ids::decode(ProcessingAreaId::TAG, &q).map(ProcessingAreaId))
                .transpose()?,
            process_area: self.process_area,
            assigned_to_me: self.assigned_to_me,
            assignee: ids::renamed(self.worker_id, "workerId", self.assignee, "assignee")?
                .map(|u| ids::decode(UserId::TAG, &u).map(UserId))
                .transpose()?,
            received_after: self.received_after,
            received_before: self.received_before,
        })
    }
}

#[derive(Default)]
pub struct RoutingQuery;

#[Object]
impl RoutingQuery {
    /// Every queue of the tenant, by name.
    async fn processing_areas(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ProcessingArea>> {
        let q = data(ctx)?.processing_areas().await.map_err(ApiError::from)?;
        Ok(q.into_iter().map(ProcessingArea).collect())
    }

    /// Every process area of the tenant, by key.
    async fn process_areas(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ProcessArea>> {
        let a = data(ctx)?.process_areas().await.map_err(ApiError::from)?;
        Ok(a.into_iter().map(ProcessArea).collect())
    }

    /// Who would handle a message of this (visible) contact in the process area, and why. The
    /// decision uses all the contact's groups; the explanation names only groups the viewer can
    /// see.
    async fn route(
        &self,
        ctx: &Context<'_>,
        contact_id: ID,
        #[graphql(default = "helpdesk")] process_area: String,
    ) -> async_graphql::Result<RouteDecision> {
        let c = ContactId(ids::decode(ContactId::TAG, &contact_id)?);
        let r = data(ctx)?.route(c, &process_area).await.map_err(ApiError::from)?;
        Ok(RouteDecision(r))
    }

    /// One message; `NOT_FOUND` if the viewer may not read it.
    async fn message(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Message> {
        viewer(ctx)?;
        let id = MessageId(ids::decode(MessageId::TAG, &id)?);
        loader(ctx)?.load_one(id).await?.map(Message).ok_or_else(|| ApiError::NotFound.into())
    }

    /// Messages the viewer may read, newest first.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn messages(
        &self,
        ctx: &Context<'_>,
        filter: Option<MessageFilterInput>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<MessageConnection> {
        let filter = filter.unwrap_or_default().into_store()?;
        let p = data(ctx)?.messages(&filter, &page_req(first, after)?).await.map_err(ApiError::from)?;
        Ok(MessageConnection::from_page(p, filter))
    }

    /// Whether private messages withhold their subject too (not only their body).
    async fn message_settings(&self, ctx: &Context<'_>) -> async_graphql::Result<MessageSettings> {
        let hide = data(ctx)?.hide_private_subjects().await.map_err(ApiError::from)?;
        Ok(MessageSettings { hide_private_subjects: hide })
    }
}
