//! The audit log: who did what, when, in which request, with before/after values for updates.
//!
//! Writes collect entries in the unit of work ([`crate::core::uow::UnitOfWork::audit`]) and
//! commit them with the change. Sensitive *reads* (price-list items, consent logs, the audit log
//! itself, data-usage reports, subject-access exports) call [`DataHandle::audit_read`]: one
//! INSERT in its own short transaction, so they are recorded even though they change nothing.
//! The table is append-only (database triggers, migration `m20261203_000013_audit`) and erasure
//! never rewrites it, so entries carry ids, keys, counts and configuration values only.

use crate::access::handle::DataHandle;
use crate::core::page::{Page, PageRequest, TimeKey, before};
use crate::entities::audit;
use crate::error::{StoreError, StoreResult};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// `actor_kind` of an entry written through a request handle (a verified user, or the system
/// handle acting as one).
pub(crate) const ACTOR_USER: &str = "user";

/// Longest action name a filter may carry (ours are far shorter).
const MAX_ACTION_LEN: usize = 100;

/// The before/after values of an update, built field by field: only fields whose value actually
/// changed are kept, so `{"changed": {}}` means "nothing changed".
#[derive(Debug, Default)]
pub(crate) struct Changes(Map<String, Value>);

impl Changes {
    pub(crate) fn new() -> Changes {
        Changes::default()
    }

    /// Records `field` if `before != after`.
    pub(crate) fn field<T: serde::Serialize + PartialEq>(&mut self, field: &str, before: T, after: T) -> &mut Self {
        if before != after {
            self.0.insert(field.to_owned(), json!({"before": before, "after": after}));
        }
        self
    }

    /// `{"changed": {…}}`, merged with `extra` (an object of further ids or counts).
    pub(crate) fn details(self, extra: Value) -> Value {
        let mut out = match extra {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        out.insert("changed".to_owned(), Value::Object(self.0));
        Value::Object(out)
    }
}

/// A stored JSON column (event types, SLA targets, …) as JSON for [`Changes::field`], so the
/// entry shows the value rather than an escaped string (its text if it somehow is not JSON).
pub(crate) fn json_or_text(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_owned()))
}

/// One audit entry as admins read it.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntryRecord {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub actor_kind: String,
    pub request_id: Option<String>,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<Uuid>,
    pub details: Value,
}

impl TryFrom<audit::Model> for AuditEntryRecord {
    type Error = StoreError;
    fn try_from(m: audit::Model) -> StoreResult<AuditEntryRecord> {
        let details = match m.details.as_deref() {
            None => Value::Object(Map::new()),
            Some(s) => serde_json::from_str(s).map_err(|_| StoreError::corrupt("audit_log.details", s))?,
        };
        Ok(AuditEntryRecord {
            id: m.id,
            at: m.at,
            actor_id: m.actor_id,
            actor_kind: m.actor_kind,
            request_id: m.request_id,
            action: m.action,
            target_type: m.target_type,
            target_id: m.target_id,
            details,
        })
    }
}

/// What `auditLog(filter:)` narrows to; every part optional, all parts must match.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor_id: Option<Uuid>,
    pub action: Option<String>,
    pub target_id: Option<Uuid>,
    pub request_id: Option<String>,
    /// Inclusive lower bound on `at`.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive upper bound on `at`.
    pub to: Option<DateTime<Utc>>,
}

impl AuditFilter {
    fn condition(&self, tenant: Uuid) -> StoreResult<Condition> {
        let mut c = Condition::all().add(audit::Column::TenantId.eq(tenant));
        if let Some(a) = self.actor_id {
            c = c.add(audit::Column::ActorId.eq(a));
        }
        if let Some(a) = &self.action {
            if a.is_empty() || a.len() > MAX_ACTION_LEN {
                return Err(StoreError::invalid("action", format!("must be 1 to {MAX_ACTION_LEN} characters")));
            }
            c = c.add(audit::Column::Action.eq(a.as_str()));
        }
        if let Some(t) = self.target_id {
            c = c.add(audit::Column::TargetId.eq(t));
        }
        if let Some(r) = &self.request_id {
            if r.is_empty() || r.len() > 200 {
                return Err(StoreError::invalid("requestId", "must be 1 to 200 characters"));
            }
            c = c.add(audit::Column::RequestId.eq(r.as_str()));
        }
        if let Some(f) = self.from {
            c = c.add(audit::Column::At.gte(f));
        }
        if let Some(t) = self.to {
            c = c.add(audit::Column::At.lt(t));
        }
        if let (Some(f), Some(t)) = (self.from, self.to)
            && f > t
        {
            return Err(StoreError::invalid("from", "must not be after `to`"));
        }
        Ok(c)
    }
}

impl DataHandle {
    /// Records a sensitive read (one INSERT, its own short transaction; nothing else is read or
    /// locked). Call it once per answer, not per row, and never from hot paths such as member
    /// pages. `details` follow the unit of work's rule: ids, keys and counts, no personal data.
    pub async fn audit_read(
        &self,
        action: &str,
        target_type: &str,
        target_id: Option<Uuid>,
        details: Value,
    ) -> StoreResult<()> {
        let v = self.viewer();
        // A single-statement INSERT is its own transaction on both databases; no explicit
        // BEGIN/COMMIT round trips needed.
        audit::Entity::insert(audit::ActiveModel {
            tenant_id: Set(v.tenant_id.0),
            id: Set(Uuid::now_v7()),
            actor_id: Set(Some(v.user_id.0)),
            action: Set(action.to_owned()),
            target_type: Set(target_type.to_owned()),
            target_id: Set(target_id),
            at: Set(Utc::now()),
            details: Set(Some(details.to_string())),
            request_id: Set(self.request_id.as_deref().map(str::to_owned)),
            actor_kind: Set(ACTOR_USER.to_owned()),
        })
        .exec_without_returning(&self.db)
        .await?;
        Ok(())
    }

    /// The tenant's audit log, newest first (admins only — deny by default: entries name every
    /// book's contacts by id and every configuration value). Reading it is itself audited.
    pub async fn audit_log(&self, f: &AuditFilter, page: &PageRequest) -> StoreResult<Page<AuditEntryRecord>> {
        let v = self.viewer();
        if !v.is_admin() {
            return Err(StoreError::forbidden("reading the audit log needs the admin role"));
        }
        let cond = f.condition(v.tenant_id.0)?;
        let after = page.after_key::<TimeKey>()?;
        // Recorded before reading, so a read that fails half-way is still on record.
        self.audit_read("auditLog.read", "AuditLog", None, filter_details(f, after.is_some())).await?;
        let mut q = audit::Entity::find().filter(cond);
        if let Some(TimeKey(at, id)) = after {
            q = q.filter(before(audit::Column::At, audit::Column::Id, (at, id)));
        }
        let rows = q
            .order_by_desc(audit::Column::At)
            .order_by_desc(audit::Column::Id)
            .limit(page.limit())
            .all(&self.db)
            .await?;
        let recs = rows.into_iter().map(AuditEntryRecord::try_from).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_rows(recs, page, |e| TimeKey(e.at, e.id)))
    }

    /// How many entries match `f` (admins only), for `totalCount`.
    pub async fn audit_log_count(&self, f: &AuditFilter) -> StoreResult<u64> {
        let v = self.viewer();
        if !v.is_admin() {
            return Err(StoreError::forbidden("reading the audit log needs the admin role"));
        }
        Ok(audit::Entity::find().filter(f.condition(v.tenant_id.0)?).count(&self.db).await?)
    }
}

fn filter_details(f: &AuditFilter, paging: bool) -> Value {
    json!({
        "actorId": f.actor_id,
        "action": f.action,
        "subjectId": f.target_id,
        "requestId": f.request_id,
        "from": f.from,
        "to": f.to,
        "nextPage": paging,
    })
}
