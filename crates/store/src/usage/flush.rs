//! Writing the metering buffer, and the statements both settle paths share.

use super::DayKeyFilter;
use super::{DayKey, Ledger, Pending, UsageBook};
use crate::core::dialect::Dialect;
use crate::core::sql::Sql;
use crate::entities::{audit, event};
use crate::error::StoreResult;
use crate::events::{EVENT_SCHEMA_VERSION, EventType, Subject, SubjectKind};
use chrono::Utc;
use sea_orm::ActiveValue::Set;
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, TransactionTrait};
use std::collections::HashMap;
use std::time::Instant;
use uuid::Uuid;

/// Creates the user's day row if it is missing.
pub(crate) async fn ensure_day(c: &impl ConnectionTrait, d: Dialect, key: DayKey) -> StoreResult<()> {
    let mut q = Sql::new(d);
    q.push("INSERT INTO usage_days (tenant_id, user_id, day, distinct_contacts, membership_pairs, requests, updated_at) VALUES (")
        .bind(key.tenant)
        .push(", ")
        .bind(key.user)
        .push(", ")
        .bind(key.day.to_string())
        .push(", 0, 0, 0, ")
        .bind(Utc::now())
        .push(") ON CONFLICT (tenant_id, user_id, day) DO NOTHING");
    c.execute_raw(q.build()).await?;
    Ok(())
}

/// Inserts the (user, day, contact) rows not there yet; returns how many were new. Replicas
/// racing on the same contact both insert, one gains the row: the count stays exact.
pub(crate) async fn insert_seen(c: &impl ConnectionTrait, d: Dialect, key: DayKey, ids: &[Uuid]) -> StoreResult<u64> {
    let mut gained = 0;
    let day = key.day.to_string();
    for chunk in ids.chunks(200) {
        let mut q = Sql::new(d);
        q.push("INSERT INTO usage_seen (tenant_id, user_id, day, contact_id) VALUES ");
        for (i, id) in chunk.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            q.push("(")
                .bind(key.tenant)
                .push(", ")
                .bind(key.user)
                .push(", ")
                .bind(day.clone())
                .push(", ")
                .bind(*id)
                .push(")");
        }
        q.push(" ON CONFLICT (tenant_id, user_id, day, contact_id) DO NOTHING RETURNING contact_id");
        gained += c.query_all_raw(q.build()).await?.len() as u64;
    }
    Ok(gained)
}

/// Adds to the day's totals; returns the day's distinct contacts after the addition.
pub(crate) async fn add_to_day(
    c: &impl ConnectionTrait,
    d: Dialect,
    key: DayKey,
    contacts: u64,
    pairs: u64,
    requests: u64,
) -> StoreResult<u64> {
    let mut q = Sql::new(d);
    q.push("UPDATE usage_days SET distinct_contacts = distinct_contacts + ")
        .bind(contacts as i64)
        .push(", membership_pairs = membership_pairs + ")
        .bind(pairs as i64)
        .push(", requests = requests + ")
        .bind(requests as i64)
        .push(", updated_at = ")
        .bind(Utc::now())
        .push(" WHERE")
        .day_key(key)
        .push(" RETURNING distinct_contacts");
    let row = c.query_one_raw(q.build()).await?;
    Ok(match row {
        Some(r) => r.try_get::<i64>("", "distinct_contacts")? as u64,
        None => 0,
    })
}

/// An outbox event and an audit entry about a user's data usage, written by the system (no
/// actor): nobody did this, the user's reads made it happen. Ids and figures only.
pub(crate) async fn system_notice(
    c: &impl ConnectionTrait,
    key: DayKey,
    event_type: EventType,
    action: &'static str,
    payload: serde_json::Value,
) -> StoreResult<()> {
    let now = Utc::now();
    let id = crate::core::uow::ordered_event_ids(c, key.tenant, 1).await?.pop().unwrap_or_else(Uuid::now_v7);
    event::Entity::insert(event::ActiveModel {
        tenant_id: Set(key.tenant),
        id: Set(id),
        event_type: Set(event_type.as_str().to_owned()),
        occurred_at: Set(now),
        actor_id: Set(None),
        request_id: Set(None),
        subjects: Set(
            serde_json::to_string(&[Subject::new(SubjectKind::User, key.user)]).unwrap_or_else(|_| "[]".into())
        ),
        schema_version: Set(EVENT_SCHEMA_VERSION),
        payload: Set(payload.to_string()),
        dispatched_at: Set(None),
    })
    .exec_without_returning(c)
    .await?;
    audit::Entity::insert(audit::ActiveModel {
        tenant_id: Set(key.tenant),
        id: Set(Uuid::now_v7()),
        actor_id: Set(None),
        action: Set(action.to_owned()),
        target_type: Set("User".to_owned()),
        target_id: Set(Some(key.user)),
        at: Set(now),
        details: Set(Some(payload.to_string())),
        request_id: Set(None),
        actor_kind: Set("system".to_owned()),
    })
    .exec_without_returning(c)
    .await?;
    Ok(())
}

/// Raises the day's warning unless it was raised already (the conditional UPDATE decides, so two
/// replicas crossing the threshold together raise it once).
pub(crate) async fn raise_warning(
    c: &impl ConnectionTrait,
    d: Dialect,
    key: DayKey,
    distinct: u64,
    threshold: u64,
) -> StoreResult<()> {
    let mut q = Sql::new(d);
    q.push("UPDATE usage_days SET warned_at = ")
        .bind(Utc::now())
        .push(" WHERE")
        .day_key(key)
        .push(" AND warned_at IS NULL");
    if c.execute_raw(q.build()).await?.rows_affected() == 1 {
        let payload = serde_json::json!({
            "userId": key.user, "day": key.day.to_string(), "distinctContacts": distinct, "threshold": threshold,
        });
        system_notice(c, key, EventType::DataUsageThresholdExceeded, "dataUsage.thresholdExceeded", payload).await?;
    }
    Ok(())
}

/// Records that the day's block refused an answer (event and audit entry once per day).
pub(crate) async fn mark_blocked(db: &DatabaseConnection, d: Dialect, key: DayKey, limit: u64) -> StoreResult<()> {
    let txn = db.begin_with_options(crate::core::uow::immediate()).await?;
    let mut q = Sql::new(d);
    q.push("UPDATE usage_days SET blocked_at = ")
        .bind(Utc::now())
        .push(" WHERE")
        .day_key(key)
        .push(" AND blocked_at IS NULL");
    if txn.execute_raw(q.build()).await?.rows_affected() == 1 {
        let payload = serde_json::json!({"userId": key.user, "day": key.day.to_string(), "limit": limit});
        system_notice(&txn, key, EventType::DataUsageBlocked, "dataUsage.blocked", payload).await?;
    }
    txn.commit().await?;
    Ok(())
}

async fn add_operations(
    c: &impl ConnectionTrait,
    d: Dialect,
    key: DayKey,
    ops: &HashMap<String, (u64, u64)>,
) -> StoreResult<()> {
    if ops.is_empty() {
        return Ok(());
    }
    let mut q = Sql::new(d);
    q.push("INSERT INTO usage_operations (tenant_id, user_id, day, operation, requests, contacts) VALUES ");
    for (i, (op, (requests, contacts))) in ops.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.push("(")
            .bind(key.tenant)
            .push(", ")
            .bind(key.user)
            .push(", ")
            .bind(key.day.to_string())
            .push(", ")
            .bind(op.clone())
            .push(", ")
            .bind(*requests as i64)
            .push(", ")
            .bind(*contacts as i64)
            .push(")");
    }
    q.push(
        " ON CONFLICT (tenant_id, user_id, day, operation) DO UPDATE SET requests = usage_operations.requests + excluded.requests, contacts = usage_operations.contacts + excluded.contacts",
    );
    c.execute_raw(q.build()).await?;
    Ok(())
}

impl UsageBook {
    /// Writes everything buffered so far; returns how many (user, day) entries were written. An
    /// entry whose transaction fails goes back into the buffer (nothing of it was committed) and
    /// is tried again at the next flush.
    pub(crate) async fn flush(&self, db: &DatabaseConnection, d: Dialect) -> StoreResult<usize> {
        let _one_at_a_time = self.flushing.lock().await;
        let batch: Vec<(DayKey, Pending)> = {
            let mut p = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            p.drain().collect()
        };
        let mut written = 0;
        let mut first_error = None;
        for (key, p) in batch {
            match self.write_one(db, d, key, &p).await {
                Ok(()) => written += 1,
                Err(e) => {
                    let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                    let e2 = pending.entry(key).or_default();
                    e2.seen.extend(p.seen);
                    e2.pairs += p.pairs;
                    e2.requests += p.requests;
                    for (op, (r, c)) in p.operations {
                        let o = e2.operations.entry(op).or_default();
                        o.0 += r;
                        o.1 += c;
                    }
                    e2.warn = e2.warn.or(p.warn);
                    first_error.get_or_insert(e);
                }
            }
        }
        // Ledgers of past days are no longer consulted.
        let today_floor = Utc::now().date_naive().pred_opt().unwrap_or_default();
        if let Ok(mut l) = self.ledgers.lock() {
            l.retain(|k, _| k.day >= today_floor);
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(written),
        }
    }

    async fn write_one(&self, db: &DatabaseConnection, d: Dialect, key: DayKey, p: &Pending) -> StoreResult<()> {
        let txn = db.begin_with_options(crate::core::uow::immediate()).await?;
        ensure_day(&txn, d, key).await?;
        let ids: Vec<Uuid> = p.seen.iter().copied().collect();
        let gained = insert_seen(&txn, d, key, &ids).await?;
        let mut q = Sql::new(d);
        q.push("UPDATE usage_days SET distinct_contacts = distinct_contacts + ")
            .bind(gained as i64)
            .push(", membership_pairs = membership_pairs + ")
            .bind(p.pairs as i64)
            .push(", requests = requests + ")
            .bind(p.requests as i64)
            .push(", updated_at = ")
            .bind(Utc::now())
            .push(" WHERE")
            .day_key(key)
            .push(" RETURNING distinct_contacts, membership_pairs, warned_at, lifted_at");
        let row = txn.query_one_raw(q.build()).await?;
        let (distinct, pairs, warned, lifted) = match &row {
            Some(r) => (
                r.try_get::<i64>("", "distinct_contacts")? as u64,
                r.try_get::<i64>("", "membership_pairs")? as u64,
                r.try_get::<Option<chrono::DateTime<Utc>>>("", "warned_at")?.is_some(),
                r.try_get::<Option<chrono::DateTime<Utc>>>("", "lifted_at")?.is_some(),
            ),
            None => (0, 0, false, false),
        };
        add_operations(&txn, d, key, &p.operations).await?;
        if let Some(w) = p.warn
            && !warned
            && distinct >= w
        {
            raise_warning(&txn, d, key, distinct, w).await?;
        }
        txn.commit().await?;
        // The ledger learns the database's figure (other replicas' pairs included) and forgets
        // the pairs just written from its local share.
        let ledger = self.ledgers.lock().ok().and_then(|l| l.get(&key).cloned());
        if let Some(ledger) = ledger {
            let mut g = ledger.lock().await;
            if let Some(l) = g.as_mut() {
                l.local_pairs = l.local_pairs.saturating_sub(p.pairs);
                l.db_pairs = pairs;
                l.lifted = lifted;
                l.refreshed = Instant::now();
            } else {
                *g = Some(Ledger { db_pairs: pairs, local_pairs: 0, lifted, refreshed: Instant::now() });
            }
        }
        Ok(())
    }
}
