//! Orders and their lines, as GraphQL objects.

use crate::error::ApiError;
use crate::graphql::access::*;
use crate::graphql::contacts::*;
use crate::graphql::groups::*;
use crate::graphql::pricing::*;
use crate::graphql::relay::*;
use crate::graphql::{data, ids, loader};
use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use cohort_domain::ids::{ContactId, GroupId, PriceListId};

pub struct Order(pub cohort_store::OrderRecord);

/// A placed order: its prices were frozen when it was placed.
#[Object]
impl Order {
    /// The order's global id (opaque; for `node(id:)` and `order(id:)`).
    pub async fn id(&self) -> ID {
        ids::encode(cohort_domain::ids::OrderId::TAG, self.0.id.0)
    }
    /// Who the order is for; `null` if the viewer cannot see the contact.
    async fn contact(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Contact>> {
        Ok(loader(ctx)?.load_one(self.0.contact_id).await?.map(Contact))
    }
    /// ISO 4217 code of every amount of the order.
    async fn currency(&self) -> &str {
        self.0.currency.code()
    }
    /// The sum of the line totals.
    async fn total(&self) -> Dec {
        Dec(self.0.total)
    }
    /// How many lines the order has.
    async fn line_count(&self) -> i32 {
        self.0.line_count
    }
    /// When the order was placed.
    async fn placed_at(&self) -> DateTime<Utc> {
        self.0.placed_at
    }
    /// The date the prices were determined for.
    async fn priced_at(&self) -> DateTime<Utc> {
        self.0.priced_at
    }
    /// Who placed it; `null` if unknown.
    async fn placed_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        match self.0.placed_by {
            None => Ok(None),
            Some(u) => Ok(loader(ctx)?.load_one(u).await?.map(User)),
        }
    }
    /// The lines, by line number, with the prices as placed.
    async fn lines(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<OrderLine>> {
        let l = loader(ctx)?.load_one(self.0.id).await?.unwrap_or_default();
        let currency = self.0.currency;
        Ok(l.into_iter().map(|line| OrderLine(line, currency)).collect())
    }
}

pub struct OrderLine(pub cohort_store::OrderLineRecord, pub cohort_domain::money::Currency);

/// One line of a placed order, with its price as it was when the order was placed.
#[Object]
impl OrderLine {
    /// The line's number in the order (1, 2, …).
    async fn line_no(&self) -> i32 {
        self.0.line_no
    }
    /// The product's SKU when the order was placed.
    async fn sku(&self) -> &str {
        &self.0.sku
    }
    /// The product's name when the order was placed.
    async fn product_name(&self) -> &str {
        &self.0.product_name
    }
    /// The product as it is now (its name and price may have changed since).
    async fn product(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Product>> {
        Ok(loader(ctx)?.load_one(self.0.product_id).await?.map(Product))
    }
    /// How many units.
    async fn quantity(&self) -> Dec {
        Dec(self.0.quantity)
    }
    /// The price per unit.
    async fn unit_price(&self) -> Dec {
        Dec(self.0.unit_price)
    }
    /// unit price × quantity, rounded half away from zero to the currency's minor units.
    async fn line_total(&self) -> Dec {
        Dec(self.1.round(self.0.line_total))
    }
    /// Where the price came from.
    async fn source(&self) -> PriceSource {
        self.0.source.into()
    }
    /// The list that priced the line (its id and name then); `null` for the list price.
    async fn price_list(&self) -> Option<PriceListRef> {
        self.0.price_list_id.map(|id| PriceListRef {
            id: ids::encode(PriceListId::TAG, id.0),
            name: self.0.price_list_name.clone().unwrap_or_default(),
        })
    }
    /// The group whose list priced the line — if the viewer can see it.
    async fn group(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Group>> {
        match self.0.group_id {
            None => Ok(None),
            Some(g) => Ok(loader(ctx)?.load_one(g).await?.map(Group)),
        }
    }
}

connection!(
    OrderConnection,
    OrderEdge,
    Order,
    cohort_store::OrderRecord,
    "A page of orders, newest first.",
    "An order on a page, with its cursor.",
    "How many orders the list holds for the viewer (orders of contacts they cannot see never count), on every page together."
);

impl From<cohort_store::OrderRecord> for Order {
    fn from(o: cohort_store::OrderRecord) -> Self {
        Order(o)
    }
}

/// Orders in one currency.
#[derive(SimpleObject)]
pub struct OrderSummary {
    /// ISO 4217 code.
    pub currency: String,
    /// How many orders in this currency.
    pub order_count: i64,
    /// The sum of their totals.
    pub total: Dec,
}

pub async fn contact_orders(
    ctx: &Context<'_>,
    c: ContactId,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<OrderConnection> {
    let p = data(ctx)?.contact_orders(c, &page_req(first, after)?).await.map_err(ApiError::from)?;
    Ok(OrderConnection::from_page(p, CountSource::ContactOrders(c)))
}

pub async fn group_orders(
    ctx: &Context<'_>,
    g: GroupId,
    include_subgroups: bool,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<OrderConnection> {
    let p = data(ctx)?.group_orders(g, include_subgroups, &page_req(first, after)?).await.map_err(ApiError::from)?;
    Ok(OrderConnection::from_page(p, CountSource::GroupOrders { group: g, include_subgroups }))
}

pub async fn group_order_summary(
    ctx: &Context<'_>,
    g: GroupId,
    include_subgroups: bool,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> async_graphql::Result<Vec<OrderSummary>> {
    let s = data(ctx)?.group_order_summary(g, include_subgroups, from, to).await.map_err(ApiError::from)?;
    Ok(s.into_iter()
        .map(|r| OrderSummary {
            currency: r.currency.code().to_owned(),
            order_count: r.order_count,
            total: Dec(r.total),
        })
        .collect())
}
