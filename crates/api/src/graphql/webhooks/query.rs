//! Queries of the webhooks area.

use crate::error::ApiError;
use crate::graphql::data;
use crate::graphql::webhooks::*;
use async_graphql::{Context, Object};

#[derive(Default)]
pub struct WebhookQuery;

#[Object]
impl WebhookQuery {
    /// The tenant's webhook endpoints (admin).
    async fn webhook_endpoints(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<WebhookEndpoint>> {
        Ok(data(ctx)?.webhook_endpoints().await.map_err(ApiError::from)?.into_iter().map(WebhookEndpoint).collect())
    }
}
