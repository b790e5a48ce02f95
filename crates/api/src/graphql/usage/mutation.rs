//! Mutations of the data-usage area: the policy and lifting a block (admins).

use crate::error::ApiError;
use crate::graphql::data;
use crate::graphql::usage::*;
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use cohort_domain::usage::PolicyFields;
use cohort_store::{PolicyInput, PolicyScope};

/// One scope's data-usage policy. A limit left out (or `null`) inherits the broader scope; `0`
/// switches it off.
#[derive(InputObject)]
pub struct SetDataUsagePolicyInput {
    /// Which users it applies to.
    pub scope: DataUsagePolicyScope,
    /// The role (`admin`, `agent`, `integration`), for `scope: ROLE`.
    pub role: Option<String>,
    /// The user, for `scope: USER`.
    pub user_id: Option<ID>,
    /// Warning threshold: distinct contacts a day.
    pub warn_contacts: Option<i64>,
    /// Blocking threshold: distinct contacts a day.
    pub block_contacts: Option<i64>,
    /// Daily budget of (contact, group) membership pairs (default 5,000).
    pub membership_pair_budget: Option<i64>,
    /// IANA time zone of usage days (tenant scope only; default UTC).
    pub time_zone: Option<String>,
    /// Remove this scope's policy instead (it then inherits again).
    pub clear: Option<bool>,
}

/// The result of `setDataUsagePolicy`.
#[derive(SimpleObject)]
pub struct SetDataUsagePolicyPayload {
    /// The policy as set (`null` after `clear`).
    pub policy: Option<DataUsagePolicy>,
}

/// Lifts a user's data-usage block for the rest of today.
#[derive(InputObject)]
pub struct LiftDataUsageBlockInput {
    /// The user.
    pub user_id: ID,
}

/// The result of `liftDataUsageBlock`.
#[derive(SimpleObject)]
pub struct LiftDataUsageBlockPayload {
    /// The user's figures for today, with `liftedAt` set.
    pub usage: DataUsageDay,
}

fn limit(field: &'static str, v: Option<i64>) -> Result<Option<u64>, ApiError> {
    match v {
        None => Ok(None),
        Some(n) if n < 0 => Err(ApiError::bad_input(field, "must not be negative (0 switches it off)")),
        Some(n) => Ok(Some(n as u64)),
    }
}

#[derive(Default)]
pub struct UsageMutation;

#[Object]
impl UsageMutation {
    /// Sets the tenant's data-usage policy, or a role's or user's override (admins; audited with
    /// the values before and after).
    async fn set_data_usage_policy(
        &self,
        ctx: &Context<'_>,
        input: SetDataUsagePolicyInput,
    ) -> async_graphql::Result<SetDataUsagePolicyPayload> {
        let scope = match input.scope {
            DataUsagePolicyScope::Tenant => {
                if input.role.is_some() || input.user_id.is_some() {
                    return Err(ApiError::bad_input("scope", "a tenant policy names no role and no user").into());
                }
                PolicyScope::Tenant
            }
            DataUsagePolicyScope::Role => match (input.role, &input.user_id) {
                (Some(r), None) => PolicyScope::Role(r),
                _ => return Err(ApiError::bad_input("role", "a role policy names exactly one role").into()),
            },
            DataUsagePolicyScope::User => match (&input.role, &input.user_id) {
                (None, Some(u)) => PolicyScope::User(user_id(u)?),
                _ => return Err(ApiError::bad_input("userId", "a user policy names exactly one user").into()),
            },
        };
        let fields = PolicyFields {
            warn_contacts: limit("warnContacts", input.warn_contacts)?,
            block_contacts: limit("blockContacts", input.block_contacts)?,
            membership_pair_budget: limit("membershipPairBudget", input.membership_pair_budget)?,
        };
        let rec = data(ctx)?
            .set_data_usage_policy(
                PolicyInput { scope, fields, time_zone: input.time_zone },
                input.clear.unwrap_or(false),
            )
            .await
            .map_err(ApiError::from)?;
        Ok(SetDataUsagePolicyPayload { policy: rec.map(DataUsagePolicy) })
    }

    /// Lifts a user's block for the rest of today: the blocking threshold and the export budget
    /// stop applying to them until the day ends (admins; audited; `data_usage.block_lifted`).
    async fn lift_data_usage_block(
        &self,
        ctx: &Context<'_>,
        input: LiftDataUsageBlockInput,
    ) -> async_graphql::Result<LiftDataUsageBlockPayload> {
        let rec = data(ctx)?.lift_data_usage_block(user_id(&input.user_id)?).await.map_err(ApiError::from)?;
        Ok(LiftDataUsageBlockPayload { usage: DataUsageDay(rec) })
    }
}
