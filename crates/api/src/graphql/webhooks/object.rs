//! Webhook endpoints, deliveries and attempts, as GraphQL objects.

use crate::error::ApiError;
use crate::graphql::relay::*;
use crate::graphql::{data, ids};
use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use cohort_domain::ids::{EventId, WebhookDeliveryId, WebhookEndpointId};
use cohort_store::{AttemptRecord, DeliveryRecord, DeliveryStatus, WebhookEndpointRecord};

/// Where Cohort posts events (Standard Webhooks). The secret is never shown again after it was
/// created or rotated.
pub struct WebhookEndpoint(pub WebhookEndpointRecord);

#[Object]
impl WebhookEndpoint {
    pub async fn id(&self) -> ID {
        ids::encode(WebhookEndpointId::TAG, self.0.id.0)
    }
    async fn url(&self) -> &str {
        &self.0.url
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// Exact types (`group.created`) and prefixes (`group.*`); empty: every event.
    async fn event_types(&self) -> &[String] {
        &self.0.event_types
    }
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    /// During a secret rotation: until when messages carry the previous secret's signature too.
    async fn previous_secret_valid_until(&self) -> Option<DateTime<Utc>> {
        self.0.previous_secret_until
    }
    /// Since when every attempt has failed; `null` while healthy.
    async fn failing_since(&self) -> Option<DateTime<Utc>> {
        self.0.failing_since
    }
    /// When Cohort disabled it for failing continuously (re-enable with `updateWebhookEndpoint`).
    async fn disabled_at(&self) -> Option<DateTime<Utc>> {
        self.0.disabled_at
    }
    /// Deliveries, newest first, each with every attempt.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<WebhookDeliveryConnection> {
        let p = data(ctx)?.webhook_deliveries(self.0.id, &page_req(first, after)?).await.map_err(ApiError::from)?;
        let page_info = page_info(&p);
        Ok(WebhookDeliveryConnection {
            edges: p
                .rows
                .into_iter()
                .map(|(cursor, d)| WebhookDeliveryEdge { cursor, node: WebhookDelivery(d) })
                .collect(),
            page_info,
        })
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum WebhookDeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// A worker is attempting it.
    Delivering,
    Succeeded,
    /// Every attempt of the schedule failed.
    Failed,
}

/// One event's delivery to one endpoint.
pub struct WebhookDelivery(pub DeliveryRecord);

#[Object]
impl WebhookDelivery {
    pub async fn id(&self) -> ID {
        ids::encode(WebhookDeliveryId::TAG, self.0.id.0)
    }
    /// The event (the `webhook-id` header carries the same id).
    async fn event_id(&self) -> ID {
        ids::encode(EventId::TAG, self.0.event.0)
    }
    async fn event_type(&self) -> &str {
        &self.0.event_type
    }
    async fn status(&self) -> WebhookDeliveryStatus {
        match self.0.status {
            DeliveryStatus::Pending => WebhookDeliveryStatus::Pending,
            DeliveryStatus::Delivering => WebhookDeliveryStatus::Delivering,
            DeliveryStatus::Succeeded => WebhookDeliveryStatus::Succeeded,
            DeliveryStatus::Failed => WebhookDeliveryStatus::Failed,
        }
    }
    async fn attempts(&self) -> Vec<WebhookAttempt> {
        self.0.attempts.iter().cloned().map(WebhookAttempt).collect()
    }
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        self.0.next_attempt_at
    }
    async fn delivered_at(&self) -> Option<DateTime<Utc>> {
        self.0.delivered_at
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// One attempt of a delivery.
pub struct WebhookAttempt(pub AttemptRecord);

#[Object]
impl WebhookAttempt {
    async fn attempt(&self) -> i32 {
        self.0.attempt
    }
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }
    /// The receiver's HTTP status, if it answered.
    async fn status_code(&self) -> Option<i32> {
        self.0.status_code
    }
    async fn duration_ms(&self) -> i64 {
        self.0.duration_ms
    }
    /// `null` on success; else `HTTP_STATUS`, `TIMEOUT`, `CONNECT`, `DNS`, `REFUSED_ADDRESS`,
    /// `INSECURE_SCHEME`, `REDIRECT`, …
    async fn error_class(&self) -> Option<&str> {
        self.0.error_class.as_deref()
    }
    /// The first KiB of the receiver's answer (admins only).
    async fn response_excerpt(&self) -> Option<&str> {
        self.0.response_excerpt.as_deref()
    }
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        self.0.next_attempt_at
    }
}

#[derive(SimpleObject)]
pub struct WebhookDeliveryEdge {
    pub cursor: String,
    pub node: WebhookDelivery,
}

#[derive(SimpleObject)]
pub struct WebhookDeliveryConnection {
    pub edges: Vec<WebhookDeliveryEdge>,
    pub page_info: PageInfo,
}
