//! Queries of the pricing area: catalogue, lists, resolution and quotes.

use crate::error::ApiError;
use crate::graphql::pricing::*;
use crate::graphql::relay::*;
use crate::graphql::{data, ids, viewer};
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use cohort_domain::AccessLevel as Level;
use cohort_domain::ids::{ContactId, PriceListId, ProductId};
use cohort_store::{PriceLine, ProductRef};
use rust_decimal::Decimal;

/// The input of `resolvePrice`: one product, quantity and currency for one contact.
#[derive(InputObject)]
pub struct ResolvePriceInput {
    /// The contact to price for (their own lists, their groups' lists).
    pub contact_id: ID,
    /// The product by id, or by `sku` (one of the two).
    pub product_id: Option<ID>,
    /// The product by SKU (or give `productId`).
    pub sku: Option<String>,
    /// How many units (a decimal, e.g. `"2.5"`); decides which quantity tiers apply.
    pub quantity: Dec,
    /// ISO 4217 code.
    pub currency: String,
    /// The pricing date; default now.
    pub at: Option<DateTime<Utc>>,
}

/// One line of a quote or order.
#[derive(InputObject)]
pub struct QuoteLineInput {
    /// The product by id (or give `sku`).
    pub product_id: Option<ID>,
    /// The product by SKU (or give `productId`).
    pub sku: Option<String>,
    /// How many units (a decimal, e.g. `"2.5"`).
    pub quantity: Dec,
}

/// The input of `quoteOrder`: an order to price without placing it.
#[derive(InputObject)]
pub struct QuoteOrderInput {
    /// The contact the order would be for.
    pub contact_id: ID,
    /// ISO 4217 code every line is priced in.
    pub currency: String,
    /// The pricing date; default now.
    pub at: Option<DateTime<Utc>>,
    /// 1 to 500 lines.
    pub lines: Vec<QuoteLineInput>,
}

/// A priced order that is not placed.
#[derive(SimpleObject)]
pub struct OrderQuote {
    /// ISO 4217 code of every amount in the quote.
    pub currency: String,
    /// Each line, priced, in the order given.
    pub lines: Vec<PriceResolution>,
    /// The sum of the line totals.
    pub total: Dec,
}

pub(crate) fn product_ref(id: &Option<ID>, sku: &Option<String>) -> Result<ProductRef, ApiError> {
    match (id, sku) {
        (Some(i), None) => Ok(ProductRef::Id(ProductId(ids::decode(ProductId::TAG, i)?))),
        (None, Some(s)) => Ok(ProductRef::Sku(s.trim().to_owned())),
        _ => Err(ApiError::bad_input("productId", "give exactly one of productId and sku")),
    }
}

#[derive(Default)]
pub struct PricingQuery;

#[Object]
impl PricingQuery {
    /// The catalogue, by name (`search`: prefix of the name or the SKU).
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn products(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        search: Option<String>,
    ) -> async_graphql::Result<ProductConnection> {
        let p = data(ctx)?.products(search.as_deref(), &page_req(first, after)?).await.map_err(ApiError::from)?;
        Ok(ProductConnection::from_page(p, CountSource::Products { search }))
    }

    /// One product of the catalogue; `NOT_FOUND` if there is none with this id.
    async fn product(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Product> {
        let id = ProductId(ids::decode(ProductId::TAG, &id)?);
        let p = data(ctx)?.products_by_ids(&[id]).await.map_err(ApiError::from)?;
        p.into_iter().next().map(Product).ok_or_else(|| ApiError::NotFound.into())
    }

    /// Price lists (admins only).
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn price_lists(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<PriceListConnection> {
        let p = data(ctx)?.price_lists(&page_req(first, after)?).await.map_err(ApiError::from)?;
        Ok(PriceListConnection::from_page(p, CountSource::PriceLists))
    }

    /// One price list (admins only).
    async fn price_list(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<PriceList> {
        let v = viewer(ctx)?;
        if !v.is_admin() {
            return Err(ApiError::Forbidden("reading price lists is for admins".into()).into());
        }
        let id = PriceListId(ids::decode(PriceListId::TAG, &id)?);
        let l = data(ctx)?.price_lists_by_ids(&[id]).await.map_err(ApiError::from)?;
        l.into_iter().next().map(PriceList).ok_or_else(|| ApiError::NotFound.into())
    }

    /// Prices a quantity of one product for a contact (DESIGN §1 order), with the explanation.
    async fn resolve_price(
        &self,
        ctx: &Context<'_>,
        input: ResolvePriceInput,
    ) -> async_graphql::Result<PriceResolution> {
        let contact = ContactId(ids::decode(ContactId::TAG, &input.contact_id)?);
        let line = PriceLine { product: product_ref(&input.product_id, &input.sku)?, quantity: input.quantity.0 };
        let at = input.at.unwrap_or_else(Utc::now);
        let mut priced =
            data(ctx)?.price_lines(contact, &[line], &input.currency, at, Level::Read).await.map_err(ApiError::from)?;
        let wants = Wants::of(ctx.look_ahead());
        prefetch_groups(ctx, &priced, wants).await?;
        let line = priced.pop().ok_or(ApiError::NotFound)?;
        to_resolution(ctx, line, wants).await
    }

    /// Prices many lines at once (one batch of queries, not one per line). Needs READ on the
    /// contact's book, like `resolvePrice`: a quote writes nothing (`placeOrder` needs WRITE).
    async fn quote_order(&self, ctx: &Context<'_>, input: QuoteOrderInput) -> async_graphql::Result<OrderQuote> {
        let contact = ContactId(ids::decode(ContactId::TAG, &input.contact_id)?);
        let lines = input
            .lines
            .iter()
            .map(|l| Ok(PriceLine { product: product_ref(&l.product_id, &l.sku)?, quantity: l.quantity.0 }))
            .collect::<Result<Vec<_>, ApiError>>()?;
        let at = input.at.unwrap_or_else(Utc::now);
        let priced =
            data(ctx)?.price_lines(contact, &lines, &input.currency, at, Level::Read).await.map_err(ApiError::from)?;
        let total: Decimal = priced.iter().map(|p| p.resolution.line_total).sum();
        let total = priced.first().map(|p| p.resolution.currency.round(total)).unwrap_or(total);
        let currency = priced.first().map(|p| p.resolution.currency.code().to_owned()).unwrap_or_default();
        let wants = Wants::of(ctx.look_ahead().field("lines"));
        prefetch_groups(ctx, &priced, wants).await?;
        let mut out = Vec::with_capacity(priced.len());
        for p in priced {
            out.push(to_resolution(ctx, p, wants).await?);
        }
        Ok(OrderQuote { currency, lines: out, total: Dec(total) })
    }
}
