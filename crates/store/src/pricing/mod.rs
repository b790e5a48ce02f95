//! The catalogue, price lists and their assignments, and price resolution. Configuring prices
//! is for admins, and list contents (margins, discounts) are readable by admins only. Resolving
//! a price for a contact needs sight of the contact; the answer names a group only if the viewer
//! can see it, while every group of the contact counts (prices must not depend on who asks).

mod assignments;
mod catalogue;
mod lists;
mod resolution;

use crate::access::viewer::Viewer;
use crate::core::decode;
use crate::entities::{price_item, price_list, product};
use crate::error::{StoreError, StoreResult};
use chrono::{DateTime, Utc};
use cohort_domain::ids::{GroupId, PriceItemId, PriceListId, ProductId};
use cohort_domain::money::{self, Currency};
use cohort_domain::pricing::{self, ItemPrice, PriceItem};
use rust_decimal::Decimal;
use std::collections::{HashMap, HashSet};

pub(crate) fn micros(field: &'static str, v: Decimal) -> StoreResult<i64> {
    money::to_micros(v).ok_or_else(|| StoreError::invalid(field, "is too large"))
}

pub(crate) fn millis(field: &'static str, v: Decimal) -> StoreResult<i64> {
    money::to_millis(v).ok_or_else(|| StoreError::invalid(field, "is too large"))
}

fn require_admin(v: &Viewer, what: &str) -> StoreResult<()> {
    if v.is_admin() { Ok(()) } else { Err(StoreError::forbidden(format!("{what} is for admins"))) }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductRecord {
    pub id: ProductId,
    pub sku: String,
    pub name: String,
    pub list_price: Decimal,
    pub currency: Currency,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    sort_name: String,
}

pub(crate) fn product_record(m: product::Model) -> StoreResult<ProductRecord> {
    Ok(ProductRecord {
        id: ProductId(m.id),
        sku: m.sku,
        name: m.name,
        list_price: money::from_micros(m.list_price_micros),
        currency: decode::currency(&m.currency)?,
        active: m.active,
        created_at: m.created_at,
        updated_at: m.updated_at,
        sort_name: m.sort_name,
    })
}

#[derive(Debug, Clone)]
pub struct ProductInput {
    pub sku: String,
    pub name: String,
    pub list_price: Decimal,
    pub currency: String,
    pub active: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ProductPatch {
    pub name: Option<String>,
    pub list_price: Option<Decimal>,
    pub currency: Option<String>,
    pub active: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceListRecord {
    pub id: PriceListId,
    pub name: String,
    pub currency: Currency,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_to: Option<DateTime<Utc>>,
    pub base_price_list_id: Option<PriceListId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    sort_name: String,
}

pub(crate) fn list_record(m: price_list::Model) -> StoreResult<PriceListRecord> {
    Ok(PriceListRecord {
        id: PriceListId(m.id),
        name: m.name,
        currency: decode::currency(&m.currency)?,
        valid_from: m.valid_from,
        valid_to: m.valid_to,
        base_price_list_id: m.base_price_list_id.map(PriceListId),
        created_at: m.created_at,
        updated_at: m.updated_at,
        sort_name: m.sort_name,
    })
}

#[derive(Debug, Clone)]
pub struct PriceListInput {
    pub name: String,
    pub currency: String,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_to: Option<DateTime<Utc>>,
    pub base_price_list_id: Option<PriceListId>,
}

/// One item as given to `setPriceListItems`: exactly one of `fixed_price` and `discount_percent`.
#[derive(Debug, Clone)]
pub struct PriceItemInput {
    pub product_id: ProductId,
    pub min_quantity: Decimal,
    pub fixed_price: Option<Decimal>,
    pub discount_percent: Option<Decimal>,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_to: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceItemRecord {
    pub id: PriceItemId,
    pub product_id: ProductId,
    pub min_quantity: Decimal,
    pub fixed_price: Option<Decimal>,
    pub discount_percent: Option<Decimal>,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_to: Option<DateTime<Utc>>,
}

/// A list assigned to a group, as `Group.priceLists` / `effectivePriceLists` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListAssignmentRecord {
    pub price_list: PriceListRecord,
    pub priority: i32,
    /// Where the assignment is defined (for effective lists: possibly an ancestor).
    pub defined_on: GroupId,
}

/// How a contact or line is asked to be priced.
#[derive(Debug, Clone)]
pub enum ProductRef {
    Id(ProductId),
    Sku(String),
}

#[derive(Debug, Clone)]
pub struct PriceLine {
    pub product: ProductRef,
    pub quantity: Decimal,
}

/// A resolved price, with what the viewer may know about how.
#[derive(Debug, Clone)]
pub struct PricedLine {
    pub product: ProductRecord,
    pub quantity: Decimal,
    pub resolution: pricing::Resolution,
    /// Names of the lists in the explanation.
    /// Shared by every line of one pricing call (a quote of 500 lines does not copy it 500 times).
    pub list_names: std::sync::Arc<HashMap<PriceListId, String>>,
    /// Groups in the explanation the viewer can see (others are not named).
    pub visible_groups: std::sync::Arc<HashSet<GroupId>>,
}

fn window_ok(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> StoreResult<()> {
    if let (Some(f), Some(t)) = (from, to)
        && f >= t
    {
        return Err(StoreError::invalid("validTo", "must be after validFrom"));
    }
    Ok(())
}

fn item_record(m: price_item::Model) -> PriceItemRecord {
    PriceItemRecord {
        id: PriceItemId(m.id),
        product_id: ProductId(m.product_id),
        min_quantity: money::from_millis(m.min_quantity_millis),
        fixed_price: m.fixed_price_micros.map(money::from_micros),
        discount_percent: m.discount_percent_micros.map(money::from_micros),
        valid_from: m.valid_from,
        valid_to: m.valid_to,
    }
}

fn domain_item(m: price_item::Model) -> PriceItem {
    PriceItem {
        id: PriceItemId(m.id),
        product: ProductId(m.product_id),
        min_quantity: money::from_millis(m.min_quantity_millis),
        price: match (m.fixed_price_micros, m.discount_percent_micros) {
            (Some(p), _) => ItemPrice::Fixed(money::from_micros(p)),
            (None, Some(d)) => ItemPrice::PercentOff(money::from_micros(d)),
            (None, None) => ItemPrice::Fixed(Decimal::ZERO),
        },
        valid_from: m.valid_from,
        valid_to: m.valid_to,
    }
}
