//! Queries of the events area.

use crate::error::ApiError;
use crate::graphql::data;
use crate::graphql::events::*;
use crate::graphql::relay::*;
use async_graphql::{Context, Object};
use cohort_store::{EventFilter, PageRequest};

#[derive(Default)]
pub struct EventQuery;

#[Object]
impl EventQuery {
    /// The tenant's events, oldest first (admin). `types` takes exact types (`group.created`)
    /// and prefixes (`group.*`); an unknown one is `BAD_USER_INPUT`.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn events(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        types: Option<Vec<String>>,
    ) -> async_graphql::Result<EventConnection> {
        let page = PageRequest::new(first, after).map_err(ApiError::from)?;
        let filter = EventFilter { types: types.unwrap_or_default() };
        let p = data(ctx)?.events(&filter, &page).await.map_err(ApiError::from)?;
        Ok(EventConnection::from_page(p, CountSource::Events(filter)))
    }
}
