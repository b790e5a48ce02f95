//! Queries of the orders area.

use crate::error::ApiError;
use crate::graphql::orders::*;
use crate::graphql::{data, ids};
use async_graphql::{Context, ID, Object};

#[derive(Default)]
pub struct OrderQuery;

#[Object]
impl OrderQuery {
    /// One order; `NOT_FOUND` if the viewer cannot see its contact.
    async fn order(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Order> {
        let id = cohort_domain::ids::OrderId(ids::decode(cohort_domain::ids::OrderId::TAG, &id)?);
        let o = data(ctx)?.orders_by_ids(&[id]).await.map_err(ApiError::from)?;
        o.into_iter().next().map(Order).ok_or_else(|| ApiError::NotFound.into())
    }
}
