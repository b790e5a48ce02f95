//! The worker's side of webhooks: fan-out, claims, attempts, retries, disabling.
//!
//! Every step is one short transaction. Rows are claimed with `FOR UPDATE SKIP LOCKED` on
//! PostgreSQL, so several replicas share the work without waiting on each other and without
//! taking the same row; SQLite has one writer (and one worker per database). A claimed delivery
//! carries a lease: a worker killed mid-delivery leaves it to be claimed again when the lease
//! runs out — at least once, never lost.

use super::*;
use crate::core::dialect::Dialect;
use crate::core::sql::Sql;
use crate::core::uow::immediate;
use crate::entities::{event, webhook_attempt, webhook_delivery, webhook_endpoint};
use crate::error::StoreResult;
use crate::events::{EVENT_SCHEMA_VERSION, EventRecord, EventType, Subject, SubjectKind, type_matches};
use crate::system::SystemHandle;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, TransactionTrait,
};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// How deliveries are retried and when an endpoint is given up on.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// The delay before each retry (the first attempt is immediate); after the last, the
    /// delivery is marked failed.
    pub schedule: Vec<chrono::Duration>,
    /// An endpoint whose every attempt has failed for this long is disabled.
    pub disable_after: chrono::Duration,
    /// How long a claimed delivery is reserved for the worker that claimed it.
    pub lease: chrono::Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        let m = chrono::Duration::minutes;
        RetryPolicy {
            schedule: vec![chrono::Duration::seconds(5), m(5), m(30), m(120), m(300), m(600), m(600)],
            disable_after: chrono::Duration::days(5),
            lease: chrono::Duration::seconds(60),
        }
    }
}

/// A delivery the worker claimed.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub url: String,
    /// The current secret first; during a rotation also the previous one.
    pub secrets: Vec<String>,
    /// The number of this attempt (1 for the first).
    pub attempt: i32,
    pub event: EventRecord,
}

/// What one attempt came to.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub status_code: Option<u16>,
    pub duration_ms: i64,
    /// `None` for a 2xx answer; otherwise why it failed.
    pub error_class: Option<&'static str>,
    pub response_excerpt: Option<String>,
}

impl AttemptOutcome {
    pub fn succeeded(&self) -> bool {
        self.error_class.is_none() && self.status_code.is_some_and(|s| (200..300).contains(&s))
    }
}

fn skip_locked(d: Dialect) -> &'static str {
    match d {
        Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        Dialect::Sqlite => "",
    }
}

/// A delay with ±10 % jitter, so retries of many deliveries do not arrive in lockstep.
fn jittered(d: chrono::Duration) -> chrono::Duration {
    let r = Uuid::new_v4().as_u128() % 2001; // 0..=2000
    d + d * (r as i32 - 1000) / 10_000
}

impl SystemHandle {
    fn dialect(&self) -> Dialect {
        Dialect::of(self.store.db.get_database_backend())
    }

    /// Fans up to `limit` undispatched events out into deliveries for the endpoints whose filter
    /// they match, and marks them dispatched — in one transaction. Returns how many events.
    pub async fn dispatch_events(&self, limit: u64) -> StoreResult<usize> {
        let txn = self.store.db.begin_with_options(immediate()).await?;
        let mut q = Sql::new(self.dialect());
        q.push(
            "SELECT tenant_id, id, event_type FROM events WHERE dispatched_at IS NULL ORDER BY occurred_at, id LIMIT ",
        )
        .bind(limit as i64)
        .push(skip_locked(self.dialect()));
        let rows = txn.query_all_raw(q.build()).await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut events: Vec<(Uuid, Uuid, String)> = Vec::with_capacity(rows.len());
        for r in &rows {
            events.push((r.try_get("", "tenant_id")?, r.try_get("", "id")?, r.try_get("", "event_type")?));
        }
        let tenants: HashSet<Uuid> = events.iter().map(|e| e.0).collect();
        let endpoints = webhook_endpoint::Entity::find()
            .filter(webhook_endpoint::Column::TenantId.is_in(tenants.iter().copied()))
            .filter(webhook_endpoint::Column::Enabled.eq(true))
            .all(&txn)
            .await?;
        let now = Utc::now();
        let mut deliveries = vec![];
        for (tenant, id, t) in &events {
            for e in endpoints.iter().filter(|e| e.tenant_id == *tenant && e.created_at <= now) {
                let patterns: Vec<String> = serde_json::from_str(&e.event_types).unwrap_or_default();
                if patterns.is_empty() || patterns.iter().any(|p| type_matches(p, t)) {
                    deliveries.push(webhook_delivery::ActiveModel {
                        tenant_id: Set(*tenant),
                        id: Set(Uuid::now_v7()),
                        endpoint_id: Set(e.id),
                        event_id: Set(*id),
                        status: Set(DeliveryStatus::Pending.as_str().into()),
                        attempts: Set(0),
                        next_attempt_at: Set(now),
                        lease_until: Set(None),
                        last_status_code: Set(None),
                        last_error: Set(None),
                        delivered_at: Set(None),
                        created_at: Set(now),
                        updated_at: Set(now),
                    });
                }
            }
        }
        for chunk in deliveries.chunks(500) {
            webhook_delivery::Entity::insert_many(chunk.to_vec())
                .on_conflict(
                    OnConflict::columns([
                        webhook_delivery::Column::TenantId,
                        webhook_delivery::Column::EndpointId,
                        webhook_delivery::Column::EventId,
                    ])
                    .do_nothing()
                    .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
        }
        let mut by_tenant: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for (t, id, _) in &events {
            by_tenant.entry(*t).or_default().push(*id);
        }
        for (t, ids) in by_tenant {
            for chunk in ids.chunks(500) {
                event::Entity::update_many()
                    .col_expr(event::Column::DispatchedAt, sea_orm::sea_query::Expr::value(now))
                    .filter(event::Column::TenantId.eq(t))
                    .filter(event::Column::Id.is_in(chunk.iter().copied()))
                    .exec(&txn)
                    .await?;
            }
        }
        txn.commit().await?;
        Ok(events.len())
    }

    /// Claims up to `limit` due deliveries (pending and due, or claimed by a worker whose lease
    /// ran out) for `policy.lease`.
    pub async fn claim_deliveries(&self, limit: u64, policy: &RetryPolicy) -> StoreResult<Vec<DueDelivery>> {
        let now = Utc::now();
        let txn = self.store.db.begin_with_options(immediate()).await?;
        let mut q = Sql::new(self.dialect());
        q.push("SELECT tenant_id, id, endpoint_id, event_id, attempts FROM webhook_deliveries WHERE (status = ")
            .bind(DeliveryStatus::Pending.as_str())
            .push(" AND next_attempt_at <= ")
            .bind(now)
            .push(") OR (status = ")
            .bind(DeliveryStatus::Delivering.as_str())
            .push(" AND lease_until < ")
            .bind(now)
            .push(") ORDER BY next_attempt_at LIMIT ")
            .bind(limit as i64)
            .push(skip_locked(self.dialect()));
        let rows = txn.query_all_raw(q.build()).await?;
        if rows.is_empty() {
            return Ok(vec![]);
        }
        let mut claimed = vec![];
        for r in &rows {
            let (t, id, ep, ev, n): (Uuid, Uuid, Uuid, Uuid, i32) = (
                r.try_get("", "tenant_id")?,
                r.try_get("", "id")?,
                r.try_get("", "endpoint_id")?,
                r.try_get("", "event_id")?,
                r.try_get("", "attempts")?,
            );
            claimed.push((t, id, ep, ev, n));
        }
        let endpoint_ids: Vec<Uuid> = claimed.iter().map(|c| c.2).collect();
        let endpoints: HashMap<Uuid, webhook_endpoint::Model> = webhook_endpoint::Entity::find()
            .filter(webhook_endpoint::Column::Id.is_in(endpoint_ids))
            .all(&txn)
            .await?
            .into_iter()
            .map(|e| (e.id, e))
            .collect();
        let event_ids: Vec<Uuid> = claimed.iter().map(|c| c.3).collect();
        let events: HashMap<Uuid, event::Model> = event::Entity::find()
            .filter(event::Column::Id.is_in(event_ids))
            .all(&txn)
            .await?
            .into_iter()
            .map(|e| (e.id, e))
            .collect();
        let mut out = vec![];
        for (t, id, ep, ev, n) in claimed {
            let (Some(e), Some(evt)) = (endpoints.get(&ep).filter(|e| e.tenant_id == t), events.get(&ev)) else {
                continue;
            };
            let mut d = webhook_delivery::ActiveModel {
                tenant_id: sea_orm::ActiveValue::Unchanged(t),
                id: sea_orm::ActiveValue::Unchanged(id),
                updated_at: Set(now),
                ..Default::default()
            };
            if !e.enabled {
                // Disabled since it was queued: nothing is sent; `redeliverWebhook` after
                // re-enabling sends it.
                d.status = Set(DeliveryStatus::Failed.as_str().into());
                d.last_error = Set(Some("endpoint disabled".into()));
                d.lease_until = Set(None);
                d.update(&txn).await?;
                continue;
            }
            d.status = Set(DeliveryStatus::Delivering.as_str().into());
            d.lease_until = Set(Some(now + policy.lease));
            d.update(&txn).await?;
            let mut secrets = vec![e.secret.clone()];
            if let (Some(p), Some(until)) = (&e.previous_secret, e.previous_secret_until)
                && until > now
            {
                secrets.push(p.clone());
            }
            out.push(DueDelivery {
                tenant_id: t,
                id,
                endpoint_id: ep,
                url: e.url.clone(),
                secrets,
                attempt: n + 1,
                event: EventRecord::try_from(evt.clone())?,
            });
        }
        txn.commit().await?;
        Ok(out)
    }

    /// Records one attempt: success ends the delivery; a failure schedules the next attempt or,
    /// after the last, fails it; an endpoint failing for longer than `disable_after` is disabled
    /// (and `webhook_endpoint.disabled` is emitted in the same transaction).
    pub async fn finish_delivery(&self, d: &DueDelivery, o: &AttemptOutcome, policy: &RetryPolicy) -> StoreResult<()> {
        let now = Utc::now();
        let txn = self.store.db.begin_with_options(immediate()).await?;
        let ok = o.succeeded();
        let next = if ok {
            None
        } else {
            policy.schedule.get((d.attempt - 1).max(0) as usize).map(|delay| now + jittered(*delay))
        };
        webhook_attempt::Entity::insert(webhook_attempt::ActiveModel {
            tenant_id: Set(d.tenant_id),
            id: Set(Uuid::now_v7()),
            delivery_id: Set(d.id),
            attempt: Set(d.attempt),
            at: Set(now),
            status_code: Set(o.status_code.map(i32::from)),
            duration_ms: Set(o.duration_ms),
            error_class: Set(o.error_class.map(str::to_owned)),
            response_excerpt: Set(o.response_excerpt.clone()),
            next_attempt_at: Set(next),
        })
        .exec_without_returning(&txn)
        .await?;
        let status = match (ok, next) {
            (true, _) => DeliveryStatus::Succeeded,
            (false, Some(_)) => DeliveryStatus::Pending,
            (false, None) => DeliveryStatus::Failed,
        };
        webhook_delivery::ActiveModel {
            tenant_id: sea_orm::ActiveValue::Unchanged(d.tenant_id),
            id: sea_orm::ActiveValue::Unchanged(d.id),
            status: Set(status.as_str().into()),
            attempts: Set(d.attempt),
            next_attempt_at: Set(next.unwrap_or(now)),
            lease_until: Set(None),
            last_status_code: Set(o.status_code.map(i32::from)),
            last_error: Set(o.error_class.map(str::to_owned)),
            delivered_at: Set(ok.then_some(now)),
            updated_at: Set(now),
            ..Default::default()
        }
        .update(&txn)
        .await?;
        let Some(e) = webhook_endpoint::Entity::find()
            .filter(webhook_endpoint::Column::TenantId.eq(d.tenant_id))
            .filter(webhook_endpoint::Column::Id.eq(d.endpoint_id))
            .one(&txn)
            .await?
        else {
            txn.commit().await?;
            return Ok(());
        };
        let mut am = webhook_endpoint::ActiveModel {
            tenant_id: sea_orm::ActiveValue::Unchanged(e.tenant_id),
            id: sea_orm::ActiveValue::Unchanged(e.id),
            ..Default::default()
        };
        if ok {
            if e.failing_since.is_some() {
                am.failing_since = Set(None);
                am.update(&txn).await?;
            }
        } else {
            let since = e.failing_since.unwrap_or(now);
            if e.failing_since.is_none() {
                am.failing_since = Set(Some(since));
            }
            let disable = e.enabled && now - since >= policy.disable_after;
            if disable {
                am.enabled = Set(false);
                am.disabled_at = Set(Some(now));
                am.updated_at = Set(now);
            }
            if e.failing_since.is_none() || disable {
                am.update(&txn).await?;
            }
            // The event last: taking the tenant's event lock is the last thing a writer does
            // before it commits (see `ordered_event_ids`), so it never waits for a row then.
            if disable {
                let id =
                    crate::core::uow::ordered_event_ids(&txn, e.tenant_id, 1).await?.pop().unwrap_or_else(Uuid::now_v7);
                event::Entity::insert(event::ActiveModel {
                    tenant_id: Set(e.tenant_id),
                    id: Set(id),
                    event_type: Set(EventType::WebhookEndpointDisabled.as_str().into()),
                    occurred_at: Set(now),
                    actor_id: Set(None),
                    request_id: Set(None),
                    subjects: Set(serde_json::to_string(&[Subject::new(SubjectKind::WebhookEndpoint, e.id)])
                        .unwrap_or_else(|_| "[]".into())),
                    schema_version: Set(EVENT_SCHEMA_VERSION),
                    payload: Set(
                        serde_json::json!({"failingSince": since, "reason": "failing continuously"}).to_string()
                    ),
                    dispatched_at: Set(None),
                })
                .exec_without_returning(&txn)
                .await?;
                tracing::warn!(endpoint = %e.id, tenant = %e.tenant_id, "webhook endpoint disabled after failing continuously");
            }
        }
        txn.commit().await?;
        Ok(())
    }
}
