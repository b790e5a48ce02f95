//! Queries of the data-usage area.

use crate::error::ApiError;
use crate::graphql::data;
use crate::graphql::usage::*;
use async_graphql::{Context, ID, Object};
use chrono::NaiveDate;

#[derive(Default)]
pub struct UsageQuery;

#[Object]
impl UsageQuery {
    /// A user's data usage per day from `from` to `to` (inclusive, at most 366 days; default:
    /// today). Admins for anyone; every user for themselves.
    async fn data_usage(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> async_graphql::Result<Vec<DataUsageDay>> {
        let d = data(ctx)?;
        let user = user_id_of(&user_id)?;
        let today = d.usage_today().await.map_err(ApiError::from)?;
        let to = to.unwrap_or(today);
        let from = from.unwrap_or(to);
        Ok(d.data_usage(user, from, to).await.map_err(ApiError::from)?.into_iter().map(DataUsageDay).collect())
    }

    /// One day's usage of the whole tenant, per user, most distinct contacts first (admins;
    /// audited). `day` defaults to today; `first` to 100 (at most 100).
    async fn data_usage_report(
        &self,
        ctx: &Context<'_>,
        day: Option<NaiveDate>,
        first: Option<i32>,
    ) -> async_graphql::Result<DataUsageReport> {
        let d = data(ctx)?;
        let first = first.unwrap_or(100);
        if !(1..=100).contains(&first) {
            return Err(ApiError::bad_input("first", "must be between 1 and 100").into());
        }
        let day = match day {
            Some(d) => d,
            None => d.usage_today().await.map_err(ApiError::from)?,
        };
        Ok(DataUsageReport(d.data_usage_report(day, first as u64).await.map_err(ApiError::from)?))
    }

    /// The tenant's data-usage policies: the tenant's own and every role and user override
    /// (admins).
    async fn data_usage_policies(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<DataUsagePolicy>> {
        Ok(data(ctx)?.data_usage_policies().await.map_err(ApiError::from)?.into_iter().map(DataUsagePolicy).collect())
    }
}

fn user_id_of(id: &ID) -> Result<cohort_domain::ids::UserId, ApiError> {
    user_id(id)
}
