//! Queries of the sequences area.

use crate::error::ApiError;
use crate::graphql::data;
use crate::graphql::sequences::*;
use async_graphql::{Context, Object};

#[derive(Default)]
pub struct SequenceQuery;

#[Object]
impl SequenceQuery {
    /// The follow-up sequences whose start group the viewer can see, by name.
    async fn sequences(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Sequence>> {
        Ok(data(ctx)?.sequences().await.map_err(ApiError::from)?.into_iter().map(Sequence).collect())
    }
}
