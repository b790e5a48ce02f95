//! The tenant's data-usage policy: stored per scope, cached per process for a few seconds.

use crate::access::handle::DataHandle;
use crate::access::viewer::Viewer;
use crate::core::dialect::{Dialect, RowLock};
use crate::core::sql::Sql;
use crate::core::uow::LockedTable;
use crate::error::{StoreError, StoreResult};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use cohort_domain::ids::{TenantId, UserId};
use cohort_domain::usage::{EffectiveLimits, PolicyFields, effective_limits, parse_time_zone};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long a process trusts its copy of a tenant's policy by default. A change made through this
/// process applies at once; one made through another replica within this time.
const POLICY_TTL: Duration = Duration::from_secs(5);

/// Which users a policy row is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyScope {
    Tenant,
    Role(String),
    User(UserId),
}

impl PolicyScope {
    fn parts(&self) -> (&'static str, String) {
        match self {
            PolicyScope::Tenant => ("tenant", String::new()),
            PolicyScope::Role(r) => ("role", r.clone()),
            PolicyScope::User(u) => ("user", u.0.to_string()),
        }
    }
}

/// A stored policy row.
#[derive(Debug, Clone)]
pub struct DataUsagePolicyRecord {
    pub scope: PolicyScope,
    pub fields: PolicyFields,
    /// Only on the tenant scope.
    pub time_zone: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: Option<UserId>,
}

/// What an admin sets. `time_zone` only on the tenant scope.
#[derive(Debug, Clone)]
pub struct PolicyInput {
    pub scope: PolicyScope,
    pub fields: PolicyFields,
    pub time_zone: Option<String>,
}

/// One tenant's policy, resolved.
#[derive(Debug)]
pub(crate) struct TenantPolicy {
    pub time_zone: Tz,
    tenant: Option<PolicyFields>,
    roles: Vec<(String, PolicyFields)>,
    users: HashMap<Uuid, PolicyFields>,
    loaded: Instant,
}

impl TenantPolicy {
    pub(crate) fn limits_for(&self, v: &Viewer) -> EffectiveLimits {
        effective_limits(self.tenant.as_ref(), &v.roles, &self.roles, self.users.get(&v.user_id.0))
    }
}

pub(crate) struct PolicyCache {
    tenants: RwLock<HashMap<Uuid, Arc<TenantPolicy>>>,
    pub(crate) ttl: RwLock<Duration>,
}

impl Default for PolicyCache {
    fn default() -> Self {
        PolicyCache { tenants: RwLock::default(), ttl: RwLock::new(POLICY_TTL) }
    }
}

fn opt_u64(v: Option<i64>) -> Option<u64> {
    v.map(|n| n.max(0) as u64)
}

async fn rows(db: &impl ConnectionTrait, d: Dialect, tenant: TenantId) -> StoreResult<Vec<DataUsagePolicyRecord>> {
    let mut q = Sql::new(d);
    q.push("SELECT scope, scope_key, warn_contacts, block_contacts, membership_pair_budget, time_zone, updated_at, updated_by FROM data_usage_policies WHERE tenant_id = ")
        .bind(tenant.0)
        .push(" ORDER BY scope, scope_key");
    let mut out = vec![];
    for r in db.query_all_raw(q.build()).await? {
        let scope: String = r.try_get("", "scope")?;
        let key: String = r.try_get("", "scope_key")?;
        let scope = match scope.as_str() {
            "tenant" => PolicyScope::Tenant,
            "role" => PolicyScope::Role(key),
            "user" => PolicyScope::User(UserId(
                Uuid::parse_str(&key).map_err(|_| StoreError::corrupt("data_usage_policies.scope_key", &key))?,
            )),
            other => return Err(StoreError::corrupt("data_usage_policies.scope", other)),
        };
        out.push(DataUsagePolicyRecord {
            scope,
            fields: PolicyFields {
                warn_contacts: opt_u64(r.try_get("", "warn_contacts")?),
                block_contacts: opt_u64(r.try_get("", "block_contacts")?),
                membership_pair_budget: opt_u64(r.try_get("", "membership_pair_budget")?),
            },
            time_zone: r.try_get("", "time_zone")?,
            updated_at: r.try_get("", "updated_at")?,
            updated_by: r.try_get::<Option<Uuid>>("", "updated_by")?.map(UserId),
        });
    }
    Ok(out)
}

impl PolicyCache {
    pub(crate) async fn get(&self, db: &DatabaseConnection, tenant: TenantId) -> StoreResult<Arc<TenantPolicy>> {
        let ttl = self.ttl.read().map(|t| *t).unwrap_or(POLICY_TTL);
        if let Ok(t) = self.tenants.read()
            && let Some(p) = t.get(&tenant.0)
            && p.loaded.elapsed() < ttl
        {
            return Ok(p.clone());
        }
        let d = Dialect::of(db.get_database_backend());
        let mut p = TenantPolicy {
            time_zone: chrono_tz::UTC,
            tenant: None,
            roles: vec![],
            users: HashMap::new(),
            loaded: Instant::now(),
        };
        for r in rows(db, d, tenant).await? {
            match r.scope {
                PolicyScope::Tenant => {
                    if let Some(tz) = r.time_zone.as_deref() {
                        // A stored zone this build does not know (older tz data) falls back to
                        // UTC with a log line rather than failing every read of the tenant.
                        p.time_zone = parse_time_zone(tz).unwrap_or_else(|_| {
                            tracing::warn!(time_zone = tz, "unknown time zone in the data-usage policy; using UTC");
                            chrono_tz::UTC
                        });
                    }
                    p.tenant = Some(r.fields);
                }
                PolicyScope::Role(name) => p.roles.push((name, r.fields)),
                PolicyScope::User(u) => {
                    p.users.insert(u.0, r.fields);
                }
            }
        }
        let p = Arc::new(p);
        if let Ok(mut t) = self.tenants.write() {
            t.insert(tenant.0, p.clone());
        }
        Ok(p)
    }

    pub(crate) fn forget(&self, tenant: TenantId) {
        if let Ok(mut t) = self.tenants.write() {
            t.remove(&tenant.0);
        }
    }
}

fn require_admin(v: &Viewer) -> StoreResult<()> {
    if v.is_admin() { Ok(()) } else { Err(StoreError::forbidden("only tenant admins manage data-usage policies")) }
}

fn to_i64(v: Option<u64>) -> Option<i64> {
    v.map(|n| n as i64)
}

fn fields_json(f: &PolicyFields, tz: &Option<String>) -> serde_json::Value {
    serde_json::json!({
        "warnContacts": f.warn_contacts, "blockContacts": f.block_contacts,
        "membershipPairBudget": f.membership_pair_budget, "timeZone": tz,
    })
}

impl DataHandle {
    /// Every policy row of the tenant (admins).
    pub async fn data_usage_policies(&self) -> StoreResult<Vec<DataUsagePolicyRecord>> {
        require_admin(self.viewer())?;
        rows(&self.db, self.viewer.dialect, self.viewer.tenant_id).await
    }

    /// The tenant's time zone for usage days.
    pub async fn data_usage_time_zone(&self) -> StoreResult<Tz> {
        Ok(self.usage.policies.get(&self.db, self.viewer.tenant_id).await?.time_zone)
    }

    /// The limits in force for this viewer.
    pub async fn my_data_usage_limits(&self) -> StoreResult<EffectiveLimits> {
        let p = self.usage.policies.get(&self.db, self.viewer.tenant_id).await?;
        Ok(p.limits_for(self.viewer()))
    }

    /// Sets (or, with `clear`, removes) one scope's policy. Audited with before and after.
    pub async fn set_data_usage_policy(
        &self,
        input: PolicyInput,
        clear: bool,
    ) -> StoreResult<Option<DataUsagePolicyRecord>> {
        let v = self.viewer();
        require_admin(v)?;
        input.fields.validate()?;
        if let Some(tz) = &input.time_zone {
            if input.scope != PolicyScope::Tenant {
                return Err(StoreError::invalid("timeZone", "is set on the tenant policy only"));
            }
            parse_time_zone(tz)?;
        }
        if let PolicyScope::Role(r) = &input.scope
            && cohort_domain::Role::parse(r).is_none()
        {
            return Err(StoreError::invalid("role", "must be one of admin, agent, integration"));
        }
        // A user policy's user must exist in this tenant (other tenants' ids are unknown too).
        if let PolicyScope::User(u) = &input.scope
            && self.users_by_ids(&[*u]).await?.is_empty()
        {
            return Err(StoreError::NotFound);
        }
        let (scope, key) = input.scope.parts();
        let w = self.begin().await?;
        let d = w.dialect();
        // Policy writers of one tenant take turns on the tenant row: two admins setting the same
        // scope at once on PostgreSQL could otherwise both pass the DELETE below and collide on
        // the INSERT (answering INTERNAL), and each audit entry's `before` must be the value the
        // other writer left. Last writer wins; SQLite's single writer serialises already.
        w.lock_row(LockedTable::Tenants, v.tenant_id.0, RowLock::NoKeyUpdate).await?;
        let before = rows(w.tx(), d, v.tenant_id).await?.into_iter().find(|r| r.scope == input.scope);
        let mut del = Sql::new(d);
        del.push("DELETE FROM data_usage_policies WHERE tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND scope = ")
            .bind(scope)
            .push(" AND scope_key = ")
            .bind(key.clone());
        w.tx().execute_raw(del.build()).await?;
        let now = Utc::now();
        if !clear {
            let mut q = Sql::new(d);
            q.push("INSERT INTO data_usage_policies (tenant_id, scope, scope_key, warn_contacts, block_contacts, membership_pair_budget, time_zone, updated_at, updated_by) VALUES (")
                .bind(v.tenant_id.0)
                .push(", ")
                .bind(scope)
                .push(", ")
                .bind(key.clone())
                .push(", ")
                .bind(to_i64(input.fields.warn_contacts))
                .push(", ")
                .bind(to_i64(input.fields.block_contacts))
                .push(", ")
                .bind(to_i64(input.fields.membership_pair_budget))
                .push(", ")
                .bind(input.time_zone.clone())
                .push(", ")
                .bind(now)
                .push(", ")
                .bind(v.user_id.0)
                .push(")");
            w.tx().execute_raw(q.build()).await?;
        }
        let after = (!clear).then(|| DataUsagePolicyRecord {
            scope: input.scope.clone(),
            fields: input.fields.clone(),
            time_zone: input.time_zone.clone(),
            updated_at: now,
            updated_by: Some(v.user_id),
        });
        // The subject: the user a user policy is about, else the tenant.
        let (target_type, target) = match &input.scope {
            PolicyScope::User(u) => ("User", u.0),
            _ => ("Tenant", v.tenant_id.0),
        };
        w.audit(
            if clear { "dataUsagePolicy.clear" } else { "dataUsagePolicy.set" },
            target_type,
            Some(target),
            serde_json::json!({
                "scope": scope, "scopeKey": key,
                "before": before.as_ref().map(|b| fields_json(&b.fields, &b.time_zone)),
                "after": after.as_ref().map(|a| fields_json(&a.fields, &a.time_zone)),
            }),
        );
        w.commit().await?;
        self.usage.policies.forget(v.tenant_id);
        Ok(after)
    }
}
