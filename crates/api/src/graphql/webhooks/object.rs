//! Webhook endpoints, deliveries and attempts, as GraphQL objects.

use crate::error::ApiError;
use crate::graphql::relay::*;
use crate::graphql::{data, ids};
use async_graphql::{Context, Enum, ID, Object};
use chrono::{DateTime, Utc};
use cohort_domain::ids::{EventId, WebhookDeliveryId, WebhookEndpointId};
use cohort_store::{AttemptRecord, DeliveryRecord, DeliveryStatus, WebhookEndpointRecord};

pub struct WebhookEndpoint(pub WebhookEndpointRecord);

/// Where Cohort posts events (Standard Webhooks). The secret is never shown again after it was
/// created or rotated.
#[Object]
impl WebhookEndpoint {
    /// The endpoint's global id (opaque; for inputs that take a webhook endpoint).
    pub async fn id(&self) -> ID {
        ids::encode(WebhookEndpointId::TAG, self.0.id.0)
    }
    /// Where events are posted.
    async fn url(&self) -> &str {
        &self.0.url
    }
    /// What the endpoint is for; `null` if none.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// Exact types (`group.created`) and prefixes (`group.*`); empty: every event.
    async fn event_types(&self) -> &[String] {
        &self.0.event_types
    }
    /// Whether events are delivered to it.
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
        Ok(WebhookDeliveryConnection::from_page(p, CountSource::WebhookDeliveries(self.0.id)))
    }
    /// When the endpoint was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the endpoint was last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// Where a delivery stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum WebhookDeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// A worker is attempting it.
    Delivering,
    /// The receiver answered with a 2xx status.
    Succeeded,
    /// Every attempt of the schedule failed.
    Failed,
}

pub struct WebhookDelivery(pub DeliveryRecord);

/// One event's delivery to one endpoint.
#[Object]
impl WebhookDelivery {
    /// The delivery's global id (for `redeliverWebhook`).
    pub async fn id(&self) -> ID {
        ids::encode(WebhookDeliveryId::TAG, self.0.id.0)
    }
    /// The event (the `webhook-id` header carries the same id).
    async fn event_id(&self) -> ID {
        ids::encode(EventId::TAG, self.0.event.0)
    }
    /// The event's type (`group.created`).
    async fn event_type(&self) -> &str {
        &self.0.event_type
    }
    /// Where the delivery stands.
    async fn status(&self) -> WebhookDeliveryStatus {
        match self.0.status {
            DeliveryStatus::Pending => WebhookDeliveryStatus::Pending,
            DeliveryStatus::Delivering => WebhookDeliveryStatus::Delivering,
            DeliveryStatus::Succeeded => WebhookDeliveryStatus::Succeeded,
            DeliveryStatus::Failed => WebhookDeliveryStatus::Failed,
        }
    }
    /// Every attempt so far, oldest first.
    async fn attempts(&self) -> Vec<WebhookAttempt> {
        self.0.attempts.iter().cloned().map(WebhookAttempt).collect()
    }
    /// When the next attempt is due; `null` once it succeeded or failed for good.
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        self.0.next_attempt_at
    }
    /// When an attempt succeeded; `null` until then.
    async fn delivered_at(&self) -> Option<DateTime<Utc>> {
        self.0.delivered_at
    }
    /// When the delivery was queued.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

pub struct WebhookAttempt(pub AttemptRecord);

/// One attempt of a delivery.
#[Object]
impl WebhookAttempt {
    /// 1 for the first attempt, 2 for the first retry, …
    async fn attempt(&self) -> i32 {
        self.0.attempt
    }
    /// When the attempt started.
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }
    /// The receiver's HTTP status, if it answered.
    async fn status_code(&self) -> Option<i32> {
        self.0.status_code
    }
    /// How long the attempt took, in milliseconds.
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
    /// When the next attempt was scheduled after this one; `null` if none was.
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        self.0.next_attempt_at
    }
}

connection!(
    WebhookDeliveryConnection,
    WebhookDeliveryEdge,
    WebhookDelivery,
    DeliveryRecord,
    "A page of an endpoint's deliveries, newest first.",
    "A delivery on a page, with its cursor.",
    "How many deliveries the endpoint has, on every page together."
);

impl From<DeliveryRecord> for WebhookDelivery {
    fn from(d: DeliveryRecord) -> Self {
        WebhookDelivery(d)
    }
}
