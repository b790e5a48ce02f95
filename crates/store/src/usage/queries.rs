//! Reading the figures: the viewer's own, a user's days (admins), the daily report (admins), and
//! an admin lifting a day's block.

use super::DayKeyFilter;
use super::{DayKey, Ledger};
use crate::access::handle::DataHandle;
use crate::core::sql::Sql;
use crate::error::{StoreError, StoreResult};
use crate::events::{EventType, Subject, SubjectKind};
use chrono::{DateTime, NaiveDate, Utc};
use cohort_domain::ids::UserId;
use cohort_domain::usage::usage_day;
use sea_orm::{ConnectionTrait, QueryResult};
use std::time::Instant;

/// One user's figures for one day.
#[derive(Debug, Clone)]
pub struct UsageDayRecord {
    pub user_id: UserId,
    pub day: NaiveDate,
    pub distinct_contacts: u64,
    pub membership_pairs: u64,
    pub requests: u64,
    pub warned_at: Option<DateTime<Utc>>,
    pub blocked_at: Option<DateTime<Utc>>,
    pub lifted_at: Option<DateTime<Utc>>,
    pub lifted_by: Option<UserId>,
}

/// Requests and contacts received per root field.
#[derive(Debug, Clone)]
pub struct OperationUsageRecord {
    pub operation: String,
    pub requests: u64,
    pub contacts: u64,
}

/// One day of the tenant, per user, largest distinct-contact count first.
#[derive(Debug, Clone)]
pub struct UsageReportRecord {
    pub day: NaiveDate,
    pub users: Vec<UsageDayRecord>,
    /// Users with any reads that day (also those beyond `first`).
    pub user_count: u64,
}

/// The longest range `dataUsage` answers in one call.
pub const MAX_USAGE_DAYS: i64 = 366;

const DAY_COLUMNS: &str =
    "user_id, day, distinct_contacts, membership_pairs, requests, warned_at, blocked_at, lifted_at, lifted_by";

fn day_record(r: &QueryResult) -> StoreResult<UsageDayRecord> {
    let day: String = r.try_get("", "day")?;
    Ok(UsageDayRecord {
        user_id: UserId(r.try_get("", "user_id")?),
        day: day.parse().map_err(|_| StoreError::corrupt("usage_days.day", &day))?,
        distinct_contacts: r.try_get::<i64>("", "distinct_contacts")?.max(0) as u64,
        membership_pairs: r.try_get::<i64>("", "membership_pairs")?.max(0) as u64,
        requests: r.try_get::<i64>("", "requests")?.max(0) as u64,
        warned_at: r.try_get("", "warned_at")?,
        blocked_at: r.try_get("", "blocked_at")?,
        lifted_at: r.try_get("", "lifted_at")?,
        lifted_by: r.try_get::<Option<uuid::Uuid>>("", "lifted_by")?.map(UserId),
    })
}

fn empty_day(user: UserId, day: NaiveDate) -> UsageDayRecord {
    UsageDayRecord {
        user_id: user,
        day,
        distinct_contacts: 0,
        membership_pairs: 0,
        requests: 0,
        warned_at: None,
        blocked_at: None,
        lifted_at: None,
        lifted_by: None,
    }
}

impl DataHandle {
    /// Writes this process's buffer first, so figures read right after a request include it.
    async fn flushed(&self) -> StoreResult<()> {
        self.usage.flush(&self.db, self.viewer.dialect).await.map(|_| ())
    }

    /// Today in the tenant's time zone.
    pub async fn usage_today(&self) -> StoreResult<NaiveDate> {
        Ok(usage_day(Utc::now(), self.data_usage_time_zone().await?))
    }

    /// `user`'s figures from `from` to `to` (inclusive), oldest first; days without reads are
    /// absent. The viewer's own figures, or anyone's for an admin.
    pub async fn data_usage(&self, user: UserId, from: NaiveDate, to: NaiveDate) -> StoreResult<Vec<UsageDayRecord>> {
        let v = self.viewer();
        if user != v.user_id && !v.is_admin() {
            return Err(StoreError::forbidden("only tenant admins read other users' data usage"));
        }
        if to < from {
            return Err(StoreError::invalid("to", "must not be before from"));
        }
        if (to - from).num_days() >= MAX_USAGE_DAYS {
            return Err(StoreError::invalid("to", format!("a range covers at most {MAX_USAGE_DAYS} days")));
        }
        self.flushed().await?;
        let mut q = Sql::new(v.dialect);
        q.push("SELECT ")
            .push(DAY_COLUMNS)
            .push(" FROM usage_days WHERE tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND user_id = ")
            .bind(user.0)
            .push(" AND day >= ")
            .bind(from.to_string())
            .push(" AND day <= ")
            .bind(to.to_string())
            .push(" ORDER BY day");
        self.db.query_all_raw(q.build()).await?.iter().map(day_record).collect()
    }

    /// The viewer's figures for today, with what they read per root field.
    pub async fn my_data_usage(&self) -> StoreResult<(UsageDayRecord, Vec<OperationUsageRecord>)> {
        let v = self.viewer();
        let today = self.usage_today().await?;
        let day = self.data_usage(v.user_id, today, today).await?.pop().unwrap_or_else(|| empty_day(v.user_id, today));
        let mut q = Sql::new(v.dialect);
        q.push("SELECT operation, requests, contacts FROM usage_operations WHERE")
            .day_key(DayKey { tenant: v.tenant_id.0, user: v.user_id.0, day: today })
            .push(" ORDER BY requests DESC, operation");
        let ops = self
            .db
            .query_all_raw(q.build())
            .await?
            .iter()
            .map(|r| {
                Ok(OperationUsageRecord {
                    operation: r.try_get("", "operation")?,
                    requests: r.try_get::<i64>("", "requests")?.max(0) as u64,
                    contacts: r.try_get::<i64>("", "contacts")?.max(0) as u64,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((day, ops))
    }

    /// The day's figures of every user who read anything, largest distinct count first (at most
    /// `first` users). Admins; a sensitive read, so it is audited.
    pub async fn data_usage_report(&self, day: NaiveDate, first: u64) -> StoreResult<UsageReportRecord> {
        let v = self.viewer();
        if !v.is_admin() {
            return Err(StoreError::forbidden("only tenant admins read the data-usage report"));
        }
        self.flushed().await?;
        let mut q = Sql::new(v.dialect);
        q.push("SELECT ")
            .push(DAY_COLUMNS)
            .push(" FROM usage_days WHERE tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND day = ")
            .bind(day.to_string())
            .push(" ORDER BY distinct_contacts DESC, user_id LIMIT ")
            .bind(first as i64);
        let users = self.db.query_all_raw(q.build()).await?.iter().map(day_record).collect::<StoreResult<Vec<_>>>()?;
        let mut c = Sql::new(v.dialect);
        c.push("SELECT COUNT(*) AS n FROM usage_days WHERE tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND day = ")
            .bind(day.to_string());
        let user_count = match self.db.query_one_raw(c.build()).await? {
            Some(r) => r.try_get::<i64>("", "n")?.max(0) as u64,
            None => 0,
        };
        let w = self.begin().await?;
        w.audit("dataUsage.reportRead", "Tenant", Some(v.tenant_id.0), serde_json::json!({"day": day.to_string()}));
        w.commit().await?;
        Ok(UsageReportRecord { day, users, user_count })
    }

    /// Lifts `user`'s block for today (the blocking threshold and the export budget stop
    /// applying until the day ends). Admins; audited; emits `data_usage.block_lifted`.
    pub async fn lift_data_usage_block(&self, user: UserId) -> StoreResult<UsageDayRecord> {
        let v = self.viewer();
        if !v.is_admin() {
            return Err(StoreError::forbidden("only tenant admins lift data-usage blocks"));
        }
        if self.users_by_ids(&[user]).await?.is_empty() {
            return Err(StoreError::NotFound);
        }
        let today = self.usage_today().await?;
        let key = DayKey { tenant: v.tenant_id.0, user: user.0, day: today };
        let w = self.begin().await?;
        let d = w.dialect();
        super::flush::ensure_day(w.tx(), d, key).await?;
        let mut q = Sql::new(d);
        q.push("UPDATE usage_days SET lifted_at = ")
            .bind(Utc::now())
            .push(", lifted_by = ")
            .bind(v.user_id.0)
            .push(" WHERE")
            .day_key(key)
            .push(" RETURNING ")
            .push(DAY_COLUMNS);
        let row = w.tx().query_one_raw(q.build()).await?.ok_or(StoreError::NotFound)?;
        let rec = day_record(&row)?;
        w.audit("dataUsage.liftBlock", "User", Some(user.0), serde_json::json!({"day": today.to_string()}));
        w.emit(
            EventType::DataUsageBlockLifted,
            vec![Subject::new(SubjectKind::User, user.0)],
            serde_json::json!({"userId": user.0, "day": today.to_string()}),
        );
        w.commit().await?;
        let ledger = self.usage.ledgers.lock().ok().and_then(|l| l.get(&key).cloned());
        if let Some(ledger) = ledger {
            let mut g = ledger.lock().await;
            let local = g.as_ref().map(|l| l.local_pairs).unwrap_or(0);
            *g = Some(Ledger {
                db_pairs: rec.membership_pairs,
                local_pairs: local,
                lifted: true,
                refreshed: Instant::now(),
            });
        }
        Ok(rec)
    }
}
