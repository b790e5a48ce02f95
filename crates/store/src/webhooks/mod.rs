//! Webhooks (DESIGN §3, Standard Webhooks): admins' endpoints with signing secrets, and the
//! delivery queue the worker drains.
//!
//! - `endpoints`: create, update, rotate, delete, list; the delivery log; redelivery (admin).
//! - `queue`: the worker's side — fan undispatched events out into deliveries, claim due
//!   deliveries (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so replicas share the work), record
//!   each attempt with its retry schedule, disable endpoints that keep failing.
//!
//! Payloads stay thin (the outbox's ids and small facts): a webhook is never an export channel.

pub(crate) mod endpoints;
pub(crate) mod queue;

use chrono::{DateTime, Utc};
use cohort_domain::ids::{EventId, WebhookDeliveryId, WebhookEndpointId};

/// A webhook endpoint as admins see it (never its secret, which is shown once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpointRecord {
    pub id: WebhookEndpointId,
    pub url: String,
    pub description: Option<String>,
    /// Exact types and `prefix.*` patterns; empty = every event.
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// During a rotation: until when the previous secret still signs too.
    pub previous_secret_until: Option<DateTime<Utc>>,
    /// Since when every attempt has failed (cleared by a success).
    pub failing_since: Option<DateTime<Utc>>,
    /// When the worker disabled it for failing continuously.
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An endpoint just created or rotated, with its secret (`whsec_…`), shown this once.
#[derive(Debug, Clone)]
pub struct EndpointWithSecret {
    pub endpoint: WebhookEndpointRecord,
    pub secret: String,
}

#[derive(Debug, Clone)]
pub struct EndpointInput {
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<String>,
    pub enabled: bool,
}

#[derive(Debug, Clone, Default)]
pub struct EndpointPatch {
    pub url: Option<String>,
    pub description: Option<Option<String>>,
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    Delivering,
    Succeeded,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "PENDING",
            DeliveryStatus::Delivering => "DELIVERING",
            DeliveryStatus::Succeeded => "SUCCEEDED",
            DeliveryStatus::Failed => "FAILED",
        }
    }
    pub fn parse(s: &str) -> Option<DeliveryStatus> {
        [DeliveryStatus::Pending, DeliveryStatus::Delivering, DeliveryStatus::Succeeded, DeliveryStatus::Failed]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub attempt: i32,
    pub at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub duration_ms: i64,
    /// `TIMEOUT`, `CONNECT`, `HTTP_STATUS`, `REFUSED_ADDRESS`, `REDIRECT`, `TOO_LARGE`, …
    pub error_class: Option<String>,
    /// The start of the response body (admins only; truncated).
    pub response_excerpt: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// One event's delivery to one endpoint, with every attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRecord {
    pub id: WebhookDeliveryId,
    pub endpoint: WebhookEndpointId,
    pub event: EventId,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: Vec<AttemptRecord>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}
