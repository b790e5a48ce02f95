//! Mutations of the orders area.

use crate::error::ApiError;
use crate::graphql::orders::*;
use crate::graphql::pricing::*;
use crate::graphql::{data, ids};
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use cohort_domain::ids::ContactId;
use cohort_store::PriceLine;

/// The input of `placeOrder`.
#[derive(InputObject)]
pub struct PlaceOrderInput {
    /// The contact the order is for.
    pub contact_id: ID,
    /// ISO 4217 code every line is priced in.
    pub currency: String,
    /// The pricing date; default now.
    pub at: Option<DateTime<Utc>>,
    /// 1 to 500 lines.
    pub lines: Vec<QuoteLineInput>,
    /// A retry with the same key (same caller, same input, within 24 h) answers the order the
    /// first request placed and places nothing (`replayed: true`); the same key with other input
    /// is `CONFLICT`.
    pub idempotency_key: Option<String>,
}

/// The result of `placeOrder`.
#[derive(SimpleObject)]
pub struct PlaceOrderPayload {
    /// The placed order.
    pub order: Order,
    /// `true` when this answers an idempotent retry (the order was placed by the first request).
    pub replayed: bool,
}

#[derive(Default)]
pub struct OrderMutation;

#[Object]
impl OrderMutation {
    /// Prices the lines (as `quoteOrder`) and places the order with those prices frozen. Needs
    /// WRITE on the contact's address book.
    async fn place_order(&self, ctx: &Context<'_>, input: PlaceOrderInput) -> async_graphql::Result<PlaceOrderPayload> {
        let contact = ContactId(ids::decode(ContactId::TAG, &input.contact_id)?);
        let lines = input
            .lines
            .iter()
            .map(|l| Ok(PriceLine { product: product_ref(&l.product_id, &l.sku)?, quantity: l.quantity.0 }))
            .collect::<Result<Vec<_>, ApiError>>()?;
        let (o, replayed) = data(ctx)?
            .place_order_once(contact, &lines, &input.currency, input.at, input.idempotency_key.as_deref())
            .await
            .map_err(ApiError::from)?;
        Ok(PlaceOrderPayload { order: Order(o), replayed })
    }
}
