//! Webhook endpoints and their delivery log (admin only: endpoints receive every tenant event).

use super::*;
use crate::access::handle::DataHandle;
use crate::audit::{Changes, json_or_text};
use crate::core::page::{Page, PageRequest, TimeKey};
use crate::entities::{event, webhook_attempt, webhook_delivery, webhook_endpoint};
use crate::error::{StoreError, StoreResult};
use crate::events::{EventType, Subject, SubjectKind, expand_types};
use base64::Engine;
use cohort_domain::text::{Lines, check_chars, optional_text};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use std::collections::HashMap;
use uuid::Uuid;

const MAX_URL_CHARS: usize = 2000;
/// How long the previous secret keeps signing after a rotation, unless the caller says.
pub const DEFAULT_ROTATION_GRACE_HOURS: i64 = 24;

fn require_admin(v: &crate::Viewer) -> StoreResult<()> {
    if v.is_admin() { Ok(()) } else { Err(StoreError::forbidden("webhooks are for admins")) }
}

/// A new signing secret: `whsec_` + base64 of 32 bytes from the operating system's CSPRNG (two
/// version-4 UUIDs: 244 random bits).
fn new_secret() -> String {
    let mut b = [0u8; 32];
    b[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    b[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(b))
}

fn check_url(url: &str) -> StoreResult<String> {
    let u = url.trim();
    if u.is_empty() || u.chars().count() > MAX_URL_CHARS {
        return Err(StoreError::invalid("url", format!("1 to {MAX_URL_CHARS} characters")));
    }
    check_chars("url", u, Lines::Single)?;
    if !(u.starts_with("https://") || u.starts_with("http://")) || u.contains(char::is_whitespace) {
        return Err(StoreError::invalid("url", "must be an absolute http(s) URL"));
    }
    Ok(u.to_owned())
}

fn check_types(types: &[String]) -> StoreResult<Vec<String>> {
    expand_types(types)?;
    let mut t: Vec<String> = types.iter().map(|s| s.trim().to_owned()).collect();
    t.sort();
    t.dedup();
    Ok(t)
}

pub(crate) fn endpoint_record(m: webhook_endpoint::Model) -> StoreResult<WebhookEndpointRecord> {
    Ok(WebhookEndpointRecord {
        id: WebhookEndpointId(m.id),
        event_types: serde_json::from_str(&m.event_types)
            .map_err(|_| StoreError::corrupt("webhook_endpoints.event_types", &m.event_types))?,
        url: m.url,
        description: m.description,
        enabled: m.enabled,
        previous_secret_until: m.previous_secret_until.filter(|_| m.previous_secret.is_some()),
        failing_since: m.failing_since,
        disabled_at: m.disabled_at,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

impl DataHandle {
    async fn endpoint_model<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        id: WebhookEndpointId,
    ) -> StoreResult<webhook_endpoint::Model> {
        webhook_endpoint::Entity::find()
            .filter(webhook_endpoint::Column::TenantId.eq(self.viewer().tenant_id.0))
            .filter(webhook_endpoint::Column::Id.eq(id.0))
            .one(conn)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Creates an endpoint (admin). The URL must already satisfy the outbound policy (the API
    /// checks scheme and host against configuration); the secret is returned this once.
    pub async fn create_webhook_endpoint(&self, input: &EndpointInput) -> StoreResult<EndpointWithSecret> {
        let v = self.viewer();
        require_admin(v)?;
        let url = check_url(&input.url)?;
        let description = optional_text("description", input.description.as_deref())?;
        let types = check_types(&input.event_types)?;
        let now = Utc::now();
        let secret = new_secret();
        let m = webhook_endpoint::Model {
            tenant_id: v.tenant_id.0,
            id: Uuid::now_v7(),
            url,
            description,
            event_types: serde_json::to_string(&types).unwrap_or_else(|_| "[]".into()),
            enabled: input.enabled,
            secret: secret.clone(),
            previous_secret: None,
            previous_secret_until: None,
            failing_since: None,
            disabled_at: None,
            created_at: now,
            updated_at: now,
        };
        let w = self.begin().await?;
        webhook_endpoint::Entity::insert(webhook_endpoint::ActiveModel::from(m.clone()))
            .exec_without_returning(w.tx())
            .await?;
        w.audit(
            "webhookEndpoint.create",
            "WebhookEndpoint",
            Some(m.id),
            serde_json::json!({"url": m.url, "eventTypes": types}),
        );
        w.emit(
            EventType::WebhookEndpointCreated,
            vec![Subject::new(SubjectKind::WebhookEndpoint, m.id)],
            serde_json::json!({}),
        );
        w.commit().await?;
        Ok(EndpointWithSecret { endpoint: endpoint_record(m)?, secret })
    }

    /// Changes an endpoint (admin). Re-enabling clears the failure streak.
    pub async fn update_webhook_endpoint(
        &self,
        id: WebhookEndpointId,
        p: &EndpointPatch,
    ) -> StoreResult<WebhookEndpointRecord> {
        let v = self.viewer();
        require_admin(v)?;
        let url = p.url.as_deref().map(check_url).transpose()?;
        let description = p.description.as_ref().map(|d| optional_text("description", d.as_deref())).transpose()?;
        let types = p.event_types.as_deref().map(check_types).transpose()?;
        let w = self.begin().await?;
        let mut m = self.endpoint_model(w.tx(), id).await?;
        let old = m.clone();
        // The names of the changed fields, for the event (which carries names only).
        let mut changed = vec![];
        if let Some(u) = url.filter(|u| *u != m.url) {
            m.url = u;
            changed.push("url");
        }
        if let Some(d) = description.filter(|d| *d != m.description) {
            m.description = d;
            changed.push("description");
        }
        if let Some(t) = types {
            let t = serde_json::to_string(&t).unwrap_or_else(|_| "[]".into());
            if t != m.event_types {
                m.event_types = t;
                changed.push("eventTypes");
            }
        }
        if let Some(e) = p.enabled.filter(|e| *e != m.enabled) {
            m.enabled = e;
            if e {
                m.failing_since = None;
                m.disabled_at = None;
            }
            changed.push("enabled");
        }
        if !changed.is_empty() {
            m.updated_at = Utc::now();
            webhook_endpoint::Entity::update(webhook_endpoint::ActiveModel::from(m.clone()).reset_all())
                .exec(w.tx())
                .await?;
            // The fields are listed one by one, never by diffing the whole row: the row holds the
            // signing secrets (`secret`, `previous_secret`), which must never reach the append-only
            // log. This update cannot change them anyway (`rotateWebhookSecret` does, and records
            // only that it rotated). The URL is configuration and may be recorded: the API refuses
            // URLs with credentials in them. Re-enabling also clears `failingSince`/`disabledAt`:
            // delivery state, not configuration, so not listed.
            let mut changes = Changes::new();
            changes
                .field("url", &old.url, &m.url)
                .field("description", &old.description, &m.description)
                .field("eventTypes", json_or_text(&old.event_types), json_or_text(&m.event_types))
                .field("enabled", old.enabled, m.enabled);
            w.audit("webhookEndpoint.update", "WebhookEndpoint", Some(m.id), changes.details(serde_json::json!({})));
            w.emit(
                EventType::WebhookEndpointUpdated,
                vec![Subject::new(SubjectKind::WebhookEndpoint, m.id)],
                serde_json::json!({"changed": changed}),
            );
        }
        w.commit().await?;
        endpoint_record(m)
    }

    /// A new secret (shown once); the previous one keeps signing for `grace` so receivers can
    /// switch without dropping a message (Standard Webhooks allows several signatures).
    pub async fn rotate_webhook_secret(
        &self,
        id: WebhookEndpointId,
        grace: chrono::Duration,
    ) -> StoreResult<EndpointWithSecret> {
        let v = self.viewer();
        require_admin(v)?;
        if grace < chrono::Duration::zero() || grace > chrono::Duration::days(30) {
            return Err(StoreError::invalid("graceHours", "0 to 720 hours"));
        }
        let w = self.begin().await?;
        let mut m = self.endpoint_model(w.tx(), id).await?;
        let secret = new_secret();
        let now = Utc::now();
        m.previous_secret = Some(std::mem::replace(&mut m.secret, secret.clone()));
        m.previous_secret_until = Some(now + grace);
        m.updated_at = now;
        webhook_endpoint::Entity::update(webhook_endpoint::ActiveModel::from(m.clone()).reset_all())
            .exec(w.tx())
            .await?;
        w.audit(
            "webhookEndpoint.rotateSecret",
            "WebhookEndpoint",
            Some(m.id),
            serde_json::json!({"graceSeconds": grace.num_seconds()}),
        );
        w.emit(
            EventType::WebhookSecretRotated,
            vec![Subject::new(SubjectKind::WebhookEndpoint, m.id)],
            serde_json::json!({}),
        );
        w.commit().await?;
        Ok(EndpointWithSecret { endpoint: endpoint_record(m)?, secret })
    }

    /// Deletes an endpoint and its delivery log (admin).
    pub async fn delete_webhook_endpoint(&self, id: WebhookEndpointId) -> StoreResult<()> {
        let v = self.viewer();
        require_admin(v)?;
        let w = self.begin().await?;
        let m = self.endpoint_model(w.tx(), id).await?;
        webhook_endpoint::Entity::delete_many()
            .filter(webhook_endpoint::Column::TenantId.eq(v.tenant_id.0))
            .filter(webhook_endpoint::Column::Id.eq(m.id))
            .exec(w.tx())
            .await?;
        w.audit("webhookEndpoint.delete", "WebhookEndpoint", Some(m.id), serde_json::json!({"url": m.url}));
        w.emit(
            EventType::WebhookEndpointDeleted,
            vec![Subject::new(SubjectKind::WebhookEndpoint, m.id)],
            serde_json::json!({}),
        );
        w.commit().await?;
        Ok(())
    }

    pub async fn webhook_endpoints(&self) -> StoreResult<Vec<WebhookEndpointRecord>> {
        let v = self.viewer();
        require_admin(v)?;
        webhook_endpoint::Entity::find()
            .filter(webhook_endpoint::Column::TenantId.eq(v.tenant_id.0))
            .order_by_asc(webhook_endpoint::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(endpoint_record)
            .collect()
    }

    /// An endpoint's deliveries, newest first, with their attempts (admin).
    pub async fn webhook_deliveries(
        &self,
        id: WebhookEndpointId,
        page: &PageRequest,
    ) -> StoreResult<Page<DeliveryRecord>> {
        let v = self.viewer();
        require_admin(v)?;
        self.endpoint_model(&self.db, id).await?;
        let mut q = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::TenantId.eq(v.tenant_id.0))
            .filter(webhook_delivery::Column::EndpointId.eq(id.0));
        if let Some(TimeKey(at, did)) = page.after_key()? {
            q = q.filter(crate::core::page::before(
                webhook_delivery::Column::CreatedAt,
                webhook_delivery::Column::Id,
                (at, did),
            ));
        }
        let rows = q
            .order_by_desc(webhook_delivery::Column::CreatedAt)
            .order_by_desc(webhook_delivery::Column::Id)
            .limit(page.limit())
            .all(&self.db)
            .await?;
        let recs = self.delivery_records(rows).await?;
        Ok(Page::from_rows(recs, page, |d| (d.created_at, d.id.0)))
    }

    /// How many deliveries an endpoint has (admin).
    pub async fn webhook_delivery_count(&self, id: WebhookEndpointId) -> StoreResult<u64> {
        let v = self.viewer();
        require_admin(v)?;
        self.endpoint_model(&self.db, id).await?;
        Ok(webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::TenantId.eq(v.tenant_id.0))
            .filter(webhook_delivery::Column::EndpointId.eq(id.0))
            .count(&self.db)
            .await?)
    }

    async fn delivery_records(&self, rows: Vec<webhook_delivery::Model>) -> StoreResult<Vec<DeliveryRecord>> {
        let v = self.viewer();
        if rows.is_empty() {
            return Ok(vec![]);
        }
        let ids: Vec<Uuid> = rows.iter().map(|d| d.id).collect();
        let mut attempts: HashMap<Uuid, Vec<AttemptRecord>> = HashMap::new();
        for a in webhook_attempt::Entity::find()
            .filter(webhook_attempt::Column::TenantId.eq(v.tenant_id.0))
            .filter(webhook_attempt::Column::DeliveryId.is_in(ids))
            .order_by_asc(webhook_attempt::Column::DeliveryId)
            .order_by_asc(webhook_attempt::Column::Attempt)
            .all(&self.db)
            .await?
        {
            attempts.entry(a.delivery_id).or_default().push(AttemptRecord {
                attempt: a.attempt,
                at: a.at,
                status_code: a.status_code,
                duration_ms: a.duration_ms,
                error_class: a.error_class,
                response_excerpt: a.response_excerpt,
                next_attempt_at: a.next_attempt_at,
            });
        }
        let event_ids: Vec<Uuid> = rows.iter().map(|d| d.event_id).collect();
        let types: HashMap<Uuid, String> = event::Entity::find()
            .filter(event::Column::TenantId.eq(v.tenant_id.0))
            .filter(event::Column::Id.is_in(event_ids))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|e| (e.id, e.event_type))
            .collect();
        rows.into_iter()
            .map(|d| {
                let status = DeliveryStatus::parse(&d.status)
                    .ok_or_else(|| StoreError::corrupt("webhook_deliveries.status", &d.status))?;
                Ok(DeliveryRecord {
                    id: WebhookDeliveryId(d.id),
                    endpoint: WebhookEndpointId(d.endpoint_id),
                    event: EventId(d.event_id),
                    event_type: types.get(&d.event_id).cloned().unwrap_or_default(),
                    status,
                    attempts: attempts.remove(&d.id).unwrap_or_default(),
                    next_attempt_at: matches!(status, DeliveryStatus::Pending | DeliveryStatus::Delivering)
                        .then_some(d.next_attempt_at),
                    delivered_at: d.delivered_at,
                    created_at: d.created_at,
                })
            })
            .collect()
    }

    /// Queues a delivery again, now (admin): the next attempt follows the schedule as before.
    pub async fn redeliver_webhook(&self, id: WebhookDeliveryId) -> StoreResult<DeliveryRecord> {
        let v = self.viewer();
        require_admin(v)?;
        let w = self.begin().await?;
        let mut d = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::TenantId.eq(v.tenant_id.0))
            .filter(webhook_delivery::Column::Id.eq(id.0))
            .one(w.tx())
            .await?
            .ok_or(StoreError::NotFound)?;
        if d.status == DeliveryStatus::Delivering.as_str() && d.lease_until.is_some_and(|l| l > Utc::now()) {
            return Err(StoreError::Conflict("this delivery is being attempted right now".into()));
        }
        d.status = DeliveryStatus::Pending.as_str().into();
        d.next_attempt_at = Utc::now();
        d.lease_until = None;
        d.updated_at = Utc::now();
        webhook_delivery::Entity::update(webhook_delivery::ActiveModel::from(d.clone()).reset_all())
            .exec(w.tx())
            .await?;
        w.audit("webhookDelivery.redeliver", "WebhookDelivery", Some(d.id), serde_json::json!({}));
        w.commit().await?;
        self.delivery_records(vec![d]).await?.pop().ok_or(StoreError::NotFound)
    }
}
