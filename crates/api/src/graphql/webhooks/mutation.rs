//! Mutations of the webhooks area (admin).

use crate::config::WebhookSettings;
use crate::error::ApiError;
use crate::graphql::webhooks::*;
use crate::graphql::{data, ids, patch};
use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use cohort_domain::ids::{WebhookDeliveryId, WebhookEndpointId};
use cohort_store::{EndpointInput, EndpointPatch};

/// The input of `createWebhookEndpoint`.
#[derive(InputObject)]
pub struct CreateWebhookEndpointInput {
    /// `https` (hosts in `COHORT_WEBHOOK_ALLOW_HOSTS` may use `http`); never a private,
    /// loopback or link-local address.
    pub url: String,
    /// What the endpoint is for (optional).
    pub description: Option<String>,
    /// Exact types and `prefix.*`; empty or absent: every event.
    #[graphql(default)]
    pub event_types: Vec<String>,
    /// Deliver events to it right away (default `true`).
    #[graphql(default = true)]
    pub enabled: bool,
}

/// The input of `updateWebhookEndpoint`: absent fields stay as they are.
#[derive(InputObject)]
pub struct UpdateWebhookEndpointInput {
    /// The endpoint to change.
    pub id: ID,
    /// A new URL (the same rules as on creation).
    pub url: Option<String>,
    /// What the endpoint is for (`null` clears it).
    pub description: MaybeUndefined<String>,
    /// The event types to deliver, replacing the list (empty: every event).
    pub event_types: Option<Vec<String>>,
    /// Re-enabling clears the failure streak.
    pub enabled: Option<bool>,
}

/// The input of `rotateWebhookSecret`.
#[derive(InputObject)]
pub struct RotateWebhookSecretInput {
    /// The endpoint whose signing secret is replaced.
    pub id: ID,
    /// How long the previous secret keeps signing too (default 24 h, at most 720).
    pub grace_hours: Option<i32>,
}

/// The input of `deleteWebhookEndpoint`.
#[derive(InputObject)]
pub struct DeleteWebhookEndpointInput {
    /// The endpoint to delete; nothing is delivered to it any more.
    pub id: ID,
}

/// The input of `redeliverWebhook`.
#[derive(InputObject)]
pub struct RedeliverWebhookInput {
    /// The delivery to send again.
    pub delivery_id: ID,
}

/// The result of `createWebhookEndpoint` and `rotateWebhookSecret`: the endpoint and its new
/// secret.
#[derive(SimpleObject)]
pub struct WebhookEndpointWithSecretPayload {
    /// The endpoint.
    pub webhook_endpoint: WebhookEndpoint,
    /// `whsec_…`: shown this once. Verify signatures with it (Standard Webhooks).
    pub secret: String,
}

/// The result of `updateWebhookEndpoint`.
#[derive(SimpleObject)]
pub struct WebhookEndpointPayload {
    /// The endpoint as it now stands.
    pub webhook_endpoint: WebhookEndpoint,
}

/// The result of `deleteWebhookEndpoint`.
#[derive(SimpleObject)]
pub struct DeleteWebhookEndpointPayload {
    /// The id of the deleted endpoint.
    pub deleted_id: ID,
}

/// The result of `redeliverWebhook`.
#[derive(SimpleObject)]
pub struct RedeliverWebhookPayload {
    /// The delivery, queued again.
    pub delivery: WebhookDelivery,
}

fn endpoint_id(id: &ID) -> Result<WebhookEndpointId, ApiError> {
    Ok(WebhookEndpointId(ids::decode(WebhookEndpointId::TAG, id)?))
}

fn check_url(ctx: &Context<'_>, url: &str) -> Result<(), ApiError> {
    let default = WebhookSettings::default();
    let settings = ctx.data_opt::<std::sync::Arc<WebhookSettings>>().map(|s| s.as_ref()).unwrap_or(&default);
    crate::webhooks::check_endpoint_url(settings, url)
        .map_err(|why| ApiError::bad_input("url", format!("the URL {why}")))
}

#[derive(Default)]
pub struct WebhookMutation;

#[Object]
impl WebhookMutation {
    /// Creates an endpoint (admin); the answer carries its secret, shown this once.
    async fn create_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: CreateWebhookEndpointInput,
    ) -> async_graphql::Result<WebhookEndpointWithSecretPayload> {
        let d = data(ctx)?;
        if !d.viewer().is_admin() {
            return Err(ApiError::Forbidden("webhooks are for admins".into()).into());
        }
        check_url(ctx, &input.url)?;
        let r = d
            .create_webhook_endpoint(&EndpointInput {
                url: input.url,
                description: input.description,
                event_types: input.event_types,
                enabled: input.enabled,
            })
            .await
            .map_err(ApiError::from)?;
        Ok(WebhookEndpointWithSecretPayload { webhook_endpoint: WebhookEndpoint(r.endpoint), secret: r.secret })
    }

    /// Changes an endpoint (admin).
    async fn update_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: UpdateWebhookEndpointInput,
    ) -> async_graphql::Result<WebhookEndpointPayload> {
        let d = data(ctx)?;
        if !d.viewer().is_admin() {
            return Err(ApiError::Forbidden("webhooks are for admins".into()).into());
        }
        if let Some(u) = &input.url {
            check_url(ctx, u)?;
        }
        let p = EndpointPatch {
            url: input.url,
            description: patch(input.description),
            event_types: input.event_types,
            enabled: input.enabled,
        };
        let r = d.update_webhook_endpoint(endpoint_id(&input.id)?, &p).await.map_err(ApiError::from)?;
        Ok(WebhookEndpointPayload { webhook_endpoint: WebhookEndpoint(r) })
    }

    /// A new secret (shown once); the previous one keeps signing for the grace period.
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        input: RotateWebhookSecretInput,
    ) -> async_graphql::Result<WebhookEndpointWithSecretPayload> {
        let hours = input.grace_hours.map(i64::from).unwrap_or(cohort_store::DEFAULT_ROTATION_GRACE_HOURS);
        let r = data(ctx)?
            .rotate_webhook_secret(endpoint_id(&input.id)?, chrono::Duration::hours(hours))
            .await
            .map_err(ApiError::from)?;
        Ok(WebhookEndpointWithSecretPayload { webhook_endpoint: WebhookEndpoint(r.endpoint), secret: r.secret })
    }

    /// Deletes an endpoint and its delivery log (admin).
    async fn delete_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: DeleteWebhookEndpointInput,
    ) -> async_graphql::Result<DeleteWebhookEndpointPayload> {
        data(ctx)?.delete_webhook_endpoint(endpoint_id(&input.id)?).await.map_err(ApiError::from)?;
        Ok(DeleteWebhookEndpointPayload { deleted_id: input.id })
    }

    /// Queues a delivery again, now (admin).
    async fn redeliver_webhook(
        &self,
        ctx: &Context<'_>,
        input: RedeliverWebhookInput,
    ) -> async_graphql::Result<RedeliverWebhookPayload> {
        let id = WebhookDeliveryId(ids::decode(WebhookDeliveryId::TAG, &input.delivery_id)?);
        let r = data(ctx)?.redeliver_webhook(id).await.map_err(ApiError::from)?;
        Ok(RedeliverWebhookPayload { delivery: WebhookDelivery(r) })
    }
}
