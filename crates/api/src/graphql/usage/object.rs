//! Data-usage figures and policies as GraphQL objects.

use crate::error::ApiError;
use crate::graphql::access::User;
use crate::graphql::{ids, loader};
use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use cohort_domain::ids::UserId;
use cohort_domain::usage::EffectiveLimits;
use cohort_store::{DataUsagePolicyRecord, OperationUsageRecord, PolicyScope, UsageDayRecord, UsageReportRecord};

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub struct DataUsageDay(pub UsageDayRecord);

/// One user's data usage on one day (in the tenant's time zone).
#[Object]
impl DataUsageDay {
    /// The user the figures are about.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(loader(ctx)?.load_one(self.0.user_id).await?.map(User))
    }
    /// The day, in the tenant's usage time zone.
    async fn day(&self) -> NaiveDate {
        self.0.day
    }
    /// Distinct contacts the user received in answers that day (each contact counts once a day,
    /// however often and in whatever operation it was seen; only contacts the user may see).
    async fn distinct_contacts(&self) -> i64 {
        count(self.0.distinct_contacts)
    }
    /// (contact, group) membership pairs the user received that day (member pages and contacts'
    /// memberships), counted against the daily export budget.
    async fn membership_pairs(&self) -> i64 {
        count(self.0.membership_pairs)
    }
    /// Requests (GraphQL operations) the user made that day.
    async fn requests(&self) -> i64 {
        count(self.0.requests)
    }
    /// When the warning threshold was reached (once a day).
    async fn warned_at(&self) -> Option<DateTime<Utc>> {
        self.0.warned_at
    }
    /// When an answer was first refused by the blocking threshold that day.
    async fn blocked_at(&self) -> Option<DateTime<Utc>> {
        self.0.blocked_at
    }
    /// When an admin lifted the day's block (limits stop applying until the day ends).
    async fn lifted_at(&self) -> Option<DateTime<Utc>> {
        self.0.lifted_at
    }
    /// The admin who lifted the block.
    async fn lifted_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        match self.0.lifted_by {
            Some(u) => Ok(loader(ctx)?.load_one(u).await?.map(User)),
            None => Ok(None),
        }
    }
}

/// Reads per root field of the schema, for one user and day.
#[derive(SimpleObject)]
pub struct OperationUsage {
    /// The root field (`contacts`, `group`, `node`, …).
    pub operation: String,
    /// Requests that asked for it.
    pub requests: i64,
    /// Contacts those requests received (not distinct: a contact seen twice counts twice).
    pub contacts: i64,
}

impl From<OperationUsageRecord> for OperationUsage {
    fn from(r: OperationUsageRecord) -> Self {
        OperationUsage { operation: r.operation, requests: count(r.requests), contacts: count(r.contacts) }
    }
}

/// The limits that apply to a user (`null` = no limit).
#[derive(SimpleObject)]
pub struct DataUsageLimits {
    /// Distinct contacts a day after which admins are alerted (`data_usage.threshold_exceeded`).
    pub warn_contacts: Option<i64>,
    /// Distinct contacts a day beyond which answers revealing further contacts are refused with
    /// `DATA_USAGE_LIMIT` (contacts already seen that day stay readable).
    pub block_contacts: Option<i64>,
    /// (contact, group) membership pairs a day beyond which answers are refused with
    /// `EXPORT_LIMIT`.
    pub membership_pair_budget: Option<i64>,
}

impl From<EffectiveLimits> for DataUsageLimits {
    fn from(l: EffectiveLimits) -> Self {
        DataUsageLimits {
            warn_contacts: l.warn_contacts.map(count),
            block_contacts: l.block_contacts.map(count),
            membership_pair_budget: l.membership_pair_budget.map(count),
        }
    }
}

pub struct MyDataUsage {
    pub today: UsageDayRecord,
    pub operations: Vec<OperationUsageRecord>,
    pub limits: EffectiveLimits,
    pub time_zone: String,
}

/// What the viewer can see about their own data usage: monitoring is not secret (DESIGN §1,
/// "salespeople must know that data usage is monitored").
#[Object]
impl MyDataUsage {
    /// Whether reads are being counted (always, unless the operator switched metering off).
    async fn monitored(&self) -> bool {
        true
    }
    /// The time zone usage days follow.
    async fn time_zone(&self) -> &str {
        &self.time_zone
    }
    /// Today's figures.
    async fn today(&self) -> DataUsageDay {
        DataUsageDay(self.today.clone())
    }
    /// Today's reads per root field.
    async fn operations(&self) -> Vec<OperationUsage> {
        self.operations.iter().cloned().map(Into::into).collect()
    }
    /// The limits that apply to the viewer.
    async fn limits(&self) -> DataUsageLimits {
        self.limits.into()
    }
}

pub struct DataUsageReport(pub UsageReportRecord);

/// One day's data usage of the tenant, per user.
#[Object]
impl DataUsageReport {
    /// The day reported.
    async fn day(&self) -> NaiveDate {
        self.0.day
    }
    /// Users with reads that day, most distinct contacts first.
    async fn users(&self) -> Vec<DataUsageDay> {
        self.0.users.iter().cloned().map(DataUsageDay).collect()
    }
    /// How many users read anything that day (also those beyond `first`).
    async fn user_count(&self) -> i64 {
        count(self.0.user_count)
    }
}

/// Which users a policy applies to.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum DataUsagePolicyScope {
    /// Every user of the tenant (unless overridden).
    Tenant,
    /// The holders of one role (the most generous of a user's roles applies).
    Role,
    /// One user (beats every role).
    User,
}

pub struct DataUsagePolicy(pub DataUsagePolicyRecord);

/// One scope's data-usage policy. A `null` limit inherits the broader scope; `0` switches it off.
#[Object]
impl DataUsagePolicy {
    /// The scope.
    async fn scope(&self) -> DataUsagePolicyScope {
        match self.0.scope {
            PolicyScope::Tenant => DataUsagePolicyScope::Tenant,
            PolicyScope::Role(_) => DataUsagePolicyScope::Role,
            PolicyScope::User(_) => DataUsagePolicyScope::User,
        }
    }
    /// The role, for a role policy.
    async fn role(&self) -> Option<&str> {
        match &self.0.scope {
            PolicyScope::Role(r) => Some(r),
            _ => None,
        }
    }
    /// The user, for a user policy.
    async fn user_id(&self) -> Option<ID> {
        match &self.0.scope {
            PolicyScope::User(u) => Some(ids::encode(UserId::TAG, u.0)),
            _ => None,
        }
    }
    /// Warning threshold (distinct contacts a day).
    async fn warn_contacts(&self) -> Option<i64> {
        self.0.fields.warn_contacts.map(count)
    }
    /// Blocking threshold (distinct contacts a day).
    async fn block_contacts(&self) -> Option<i64> {
        self.0.fields.block_contacts.map(count)
    }
    /// Daily budget of (contact, group) membership pairs.
    async fn membership_pair_budget(&self) -> Option<i64> {
        self.0.fields.membership_pair_budget.map(count)
    }
    /// The time zone of usage days (tenant policy only; default UTC).
    async fn time_zone(&self) -> Option<&str> {
        self.0.time_zone.as_deref()
    }
    /// When it was last set.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Who set it.
    async fn updated_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        match self.0.updated_by {
            Some(u) => Ok(loader(ctx)?.load_one(u).await?.map(User)),
            None => Ok(None),
        }
    }
}

pub(crate) fn user_id(id: &ID) -> Result<UserId, ApiError> {
    Ok(UserId(ids::decode(UserId::TAG, id)?))
}
