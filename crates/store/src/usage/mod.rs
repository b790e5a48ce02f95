//! Data-usage metering (DESIGN §1 "Protecting the data"; issue 15).
//!
//! **What is counted.** Every contact the store hands to a viewer's answer — contact lists and
//! selections, details, group member pages, `node`, the contact behind an order, ticket, message
//! or consent entry (all of them load contacts through [`DataHandle`] methods that call
//! [`DataHandle::saw`]) — and every (contact, group) membership pair resolved
//! ([`DataHandle::saw_pairs`]). The store only ever returns visible rows, so hidden contacts can
//! never count.
//!
//! **How.** A request's [`Meter`] collects ids in memory. When the answer is ready, the API calls
//! [`DataHandle::settle_usage`]:
//! - a user without a blocking threshold (the common case) only adds the request to the
//!   process-wide [`UsageBook`] buffer, which [`UsageBook::flush`] writes every second (and on
//!   shutdown) — off the request path. The flush inserts `usage_seen` rows with
//!   `ON CONFLICT DO NOTHING RETURNING` and adds exactly the rows gained to `usage_days`, so two
//!   replicas on one database count one user exactly;
//! - a user under a blocking threshold is settled synchronously in one transaction that locks the
//!   user's day row: only then can "would this answer reveal contacts beyond the limit?" be
//!   answered exactly across replicas. A refused answer records nothing;
//! - the membership-pair budget is checked against a per-process ledger of the day's pairs
//!   (loaded from the database once per user and day, refreshed by every flush), so it costs no
//!   statement per request; another replica's pairs reach it within one flush interval.
//!
//! The warning is raised by whoever first sees the day's count reach it (the flush or the
//! synchronous path), once per user and day (`warned_at` set with a conditional UPDATE), as an
//! outbox event and an audit entry.

mod flush;
pub(crate) mod policy;
mod queries;

pub use policy::{DataUsagePolicyRecord, PolicyInput, PolicyScope};
pub use queries::{OperationUsageRecord, UsageDayRecord, UsageReportRecord};

use crate::access::handle::DataHandle;
use crate::core::dialect::{Dialect, RowLock};
use crate::core::sql::Sql;
use crate::error::StoreResult;
use chrono::{NaiveDate, Utc};
use cohort_domain::ids::ContactId;
use cohort_domain::usage::{DayState, EffectiveLimits, UsageVerdict, judge, usage_day};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// ` tenant_id = … AND user_id = … AND day = …`: the key of a user's day in every usage table.
pub(crate) trait DayKeyFilter {
    fn day_key(&mut self, key: DayKey) -> &mut Self;
}

impl DayKeyFilter for Sql {
    fn day_key(&mut self, key: DayKey) -> &mut Self {
        self.push(" tenant_id = ")
            .bind(key.tenant)
            .push(" AND user_id = ")
            .bind(key.user)
            .push(" AND day = ")
            .bind(key.day.to_string())
    }
}

/// What one request received, collected while it runs.
#[derive(Debug, Default)]
pub(crate) struct Meter {
    seen: Mutex<HashSet<Uuid>>,
    pairs: AtomicU64,
}

/// Why an answer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageRefusal {
    /// It would reveal contacts beyond the user's blocking threshold for the day.
    ContactLimit { limit: u64 },
    /// It would take the day's membership pairs beyond the export budget.
    PairBudget { budget: u64 },
}

/// One (tenant, user, day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct DayKey {
    pub tenant: Uuid,
    pub user: Uuid,
    pub day: NaiveDate,
}

/// What the buffer holds for one user and day until the next flush.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    pub seen: HashSet<Uuid>,
    pub pairs: u64,
    pub requests: u64,
    /// Requests and contacts per root field.
    pub operations: HashMap<String, (u64, u64)>,
    /// The warning threshold in force when the reads happened.
    pub warn: Option<u64>,
}

/// The day's membership pairs as this process knows them.
#[derive(Debug)]
pub(crate) struct Ledger {
    /// The database's figure at the last load or flush.
    pub db_pairs: u64,
    /// Pairs this process has admitted since (in the buffer, not yet flushed).
    pub local_pairs: u64,
    pub lifted: bool,
    pub refreshed: Instant,
}

/// The process-wide half of metering: the write buffer, the pair ledgers and the policy cache.
/// One per [`crate::Store`]; every handle of the store shares it.
pub struct UsageBook {
    enabled: AtomicBool,
    pub(crate) pending: Mutex<HashMap<DayKey, Pending>>,
    pub(crate) ledgers: Mutex<HashMap<DayKey, Arc<tokio::sync::Mutex<Option<Ledger>>>>>,
    pub(crate) policies: policy::PolicyCache,
    /// Serialises flushes of this process (the timer, an admin's read and shutdown).
    pub(crate) flushing: tokio::sync::Mutex<()>,
}

impl Default for UsageBook {
    fn default() -> Self {
        UsageBook {
            enabled: AtomicBool::new(true),
            pending: Mutex::default(),
            ledgers: Mutex::default(),
            policies: policy::PolicyCache::default(),
            flushing: tokio::sync::Mutex::new(()),
        }
    }
}

/// How stale a pair ledger may be before a refusal is re-checked against the database (a lift
/// or another replica's figures reach this process at the latest then).
const LEDGER_RECHECK: Duration = Duration::from_secs(1);

impl UsageBook {
    /// Switches metering off (`COHORT_DATA_USAGE=off`, for the benchmark's with/without
    /// comparison only: with it off, thresholds and the export budget are not enforced either).
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
    }

    /// How long this process trusts its copy of a tenant's policy.
    pub fn set_policy_ttl(&self, ttl: Duration) {
        if let Ok(mut t) = self.policies.ttl.write() {
            *t = ttl;
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    fn ledger(&self, key: DayKey) -> Arc<tokio::sync::Mutex<Option<Ledger>>> {
        let mut l = self.ledgers.lock().unwrap_or_else(|p| p.into_inner());
        l.entry(key).or_default().clone()
    }

    fn buffer(
        &self,
        key: DayKey,
        seen: impl IntoIterator<Item = Uuid>,
        pairs: u64,
        ops: &[String],
        contacts: u64,
        warn: Option<u64>,
    ) {
        let mut p = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let e = p.entry(key).or_default();
        e.seen.extend(seen);
        e.pairs += pairs;
        e.requests += 1;
        e.warn = warn;
        for op in ops {
            let o = e.operations.entry(op.clone()).or_default();
            o.0 += 1;
            o.1 += contacts;
        }
    }
}

/// Root-field names are bounded by the schema; anything longer is cut so a row always fits.
fn operation_names(root_fields: &[String]) -> Vec<String> {
    let mut v: Vec<String> = root_fields.iter().map(|f| f.chars().take(64).collect()).collect();
    v.sort();
    v.dedup();
    if v.is_empty() {
        v.push("(none)".into());
    }
    v
}

impl DataHandle {
    /// Counts contacts this answer receives.
    pub(crate) fn saw(&self, ids: impl IntoIterator<Item = ContactId>) {
        if let Ok(mut s) = self.meter.seen.lock() {
            s.extend(ids.into_iter().map(|c| c.0));
        }
    }

    /// Counts (contact, group) membership pairs this answer resolves.
    pub(crate) fn saw_pairs(&self, n: usize) {
        self.meter.pairs.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// The same viewer with a fresh meter: one per operation of a request (a batch meters each
    /// operation on its own).
    pub fn metered(&self) -> DataHandle {
        let mut h = self.clone();
        h.meter = Arc::default();
        h
    }

    /// Settles what this operation received (see the module docs). `refusable` = the answer can
    /// still be withheld (queries); a mutation has committed already, so its reads are counted
    /// but never refused. `Ok(Err(_))` = withhold the answer with that refusal.
    pub async fn settle_usage(&self, root_fields: &[String], refusable: bool) -> StoreResult<Result<(), UsageRefusal>> {
        if !self.usage.is_enabled() {
            return Ok(Ok(()));
        }
        let seen: Vec<Uuid> = self.meter.seen.lock().map(|mut s| s.drain().collect()).unwrap_or_default();
        let pairs = self.meter.pairs.swap(0, Ordering::Relaxed);
        let v = self.viewer();
        let policy = self.usage.policies.get(&self.db, v.tenant_id).await?;
        let limits = policy.limits_for(v);
        let key = DayKey { tenant: v.tenant_id.0, user: v.user_id.0, day: usage_day(Utc::now(), policy.time_zone) };
        let ops = operation_names(root_fields);

        // The export budget first (in memory): a refused answer must not count its contacts.
        let mut reserved = None;
        if let Some(budget) = limits.membership_pair_budget
            && pairs > 0
        {
            let ledger = self.usage.ledger(key);
            let mut guard = ledger.lock().await;
            if guard.is_none() {
                *guard = Some(load_ledger(&self.db, self.viewer.dialect, key).await?);
            }
            let mut l = guard.take().unwrap_or_else(|| Ledger {
                db_pairs: 0,
                local_pairs: 0,
                lifted: false,
                refreshed: Instant::now(),
            });
            let over = |l: &Ledger| !l.lifted && l.db_pairs + l.local_pairs + pairs > budget;
            if refusable && over(&l) && l.refreshed.elapsed() >= LEDGER_RECHECK {
                // Perhaps lifted, or a day that other replicas' figures changed: ask once more.
                let fresh = load_ledger(&self.db, self.viewer.dialect, key).await?;
                l.db_pairs = fresh.db_pairs;
                l.lifted = fresh.lifted;
                l.refreshed = fresh.refreshed;
            }
            if refusable && over(&l) {
                *guard = Some(l);
                return Ok(Err(UsageRefusal::PairBudget { budget }));
            }
            l.local_pairs += pairs;
            *guard = Some(l);
            reserved = Some(ledger.clone());
        }

        let contacts = seen.len() as u64;
        if let Some(limit) = limits.block_contacts
            && !seen.is_empty()
        {
            match self.settle_exactly(key, &seen, &limits, limit, refusable).await? {
                Ok(()) => self.usage.buffer(key, std::iter::empty(), pairs, &ops, contacts, None),
                Err(refusal) => {
                    if let Some(l) = reserved {
                        let mut g = l.lock().await;
                        if let Some(l) = g.as_mut() {
                            l.local_pairs = l.local_pairs.saturating_sub(pairs);
                        }
                    }
                    return Ok(Err(refusal));
                }
            }
        } else {
            self.usage.buffer(key, seen, pairs, &ops, contacts, limits.warn_contacts);
        }
        Ok(Ok(()))
    }

    /// The synchronous path for users under a blocking threshold: one transaction that locks the
    /// user's day, finds which contacts are new today, and either records them or refuses.
    async fn settle_exactly(
        &self,
        key: DayKey,
        seen: &[Uuid],
        limits: &EffectiveLimits,
        limit: u64,
        refusable: bool,
    ) -> StoreResult<Result<(), UsageRefusal>> {
        let d = self.viewer.dialect;
        let txn = self.db.begin_with_options(crate::core::uow::immediate()).await?;
        flush::ensure_day(&txn, d, key).await?;
        let mut q = Sql::new(d);
        q.push("SELECT distinct_contacts, lifted_at, warned_at FROM usage_days WHERE")
            .day_key(key)
            .push(d.lock_rows(RowLock::Update));
        let row = txn.query_one_raw(q.build()).await?;
        let (distinct, lifted, warned) = match &row {
            Some(r) => (
                r.try_get::<i64>("", "distinct_contacts")? as u64,
                r.try_get::<Option<chrono::DateTime<Utc>>>("", "lifted_at")?.is_some(),
                r.try_get::<Option<chrono::DateTime<Utc>>>("", "warned_at")?.is_some(),
            ),
            None => (0, false, false),
        };
        let mut known: HashSet<Uuid> = HashSet::new();
        for chunk in seen.chunks(500) {
            let mut q = Sql::new(d);
            q.push("SELECT contact_id FROM usage_seen WHERE")
                .day_key(key)
                .push(" AND contact_id IN ")
                .bind_list(chunk.iter().copied());
            for r in txn.query_all_raw(q.build()).await? {
                known.insert(r.try_get::<Uuid>("", "contact_id")?);
            }
        }
        let new: Vec<Uuid> = seen.iter().copied().filter(|c| !known.contains(c)).collect();
        let day = DayState { distinct_contacts: distinct, membership_pairs: 0, lifted };
        if refusable && let UsageVerdict::ContactLimit { limit } = judge(limits, &day, new.len() as u64, 0) {
            txn.rollback().await?;
            flush::mark_blocked(&self.db, d, key, limit).await?;
            return Ok(Err(UsageRefusal::ContactLimit { limit }));
        }
        let _ = limit;
        let gained = flush::insert_seen(&txn, d, key, &new).await?;
        let total = flush::add_to_day(&txn, d, key, gained, 0, 0).await?;
        if !warned && cohort_domain::usage::crosses_warning(limits, total) {
            flush::raise_warning(&txn, d, key, total, limits.warn_contacts.unwrap_or(0)).await?;
        }
        txn.commit().await?;
        Ok(Ok(()))
    }
}

async fn load_ledger(db: &DatabaseConnection, d: Dialect, key: DayKey) -> StoreResult<Ledger> {
    let mut q = Sql::new(d);
    q.push("SELECT membership_pairs, lifted_at FROM usage_days WHERE").day_key(key);
    let row = db.query_one_raw(q.build()).await?;
    let (db_pairs, lifted) = match row {
        Some(r) => (
            r.try_get::<i64>("", "membership_pairs")? as u64,
            r.try_get::<Option<chrono::DateTime<Utc>>>("", "lifted_at")?.is_some(),
        ),
        None => (0, false),
    };
    Ok(Ledger { db_pairs, local_pairs: 0, lifted, refreshed: Instant::now() })
}
