//! Products, price lists and price resolutions, as GraphQL objects.

use crate::error::ApiError;
use crate::graphql::groups::*;
use crate::graphql::relay::*;
use crate::graphql::{data, ids, loader};
use async_graphql::{
    Context, Enum, ID, InputValueError, InputValueResult, Object, Scalar, ScalarType, SimpleObject, Value,
};
use chrono::{DateTime, Utc};
use cohort_domain::ids::{GroupId, PriceItemId, PriceListId, ProductId};
use cohort_domain::pricing::{Outcome, SkipReason, Step};
use cohort_store::{ListAssignmentRecord, PriceItemRecord, PriceListRecord, PricedLine, ProductRecord};
use rust_decimal::Decimal;

/// An exact decimal number, as a string (`"33.335"`): money never travels as a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dec(pub Decimal);

/// An exact decimal number in plain notation, as a string (`"33.335"`, `"-2"`); inputs also take
/// JSON integers, never floats. Money amounts carry their currency's minor units (`"720.00"`).
#[Scalar(name = "Decimal")]
impl ScalarType for Dec {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            // One grammar (plain notation) for strings and JSON integers; floats never qualify.
            Value::String(s) => cohort_domain::money::parse_decimal_text(s).map(Dec).map_err(InputValueError::custom),
            Value::Number(n) if n.is_i64() || n.is_u64() => {
                cohort_domain::money::parse_decimal_text(&n.to_string()).map(Dec).map_err(InputValueError::custom)
            }
            _ => Err(InputValueError::custom("a Decimal is a string such as \"12.50\" (floats are not accepted)")),
        }
    }
    fn to_value(&self) -> Value {
        // Printed as held: prices and quantities are normalised where they are read, money
        // totals carry their currency's minor units ("720.00").
        Value::String(self.0.to_string())
    }
}

// ---------------------------------------------------------------------------------------------

pub struct Product(pub ProductRecord);

/// A product of the tenant's catalogue. Every member of the tenant may read the catalogue.
#[Object]
impl Product {
    /// The product's global id (opaque; for `node(id:)` and inputs that take a product).
    pub async fn id(&self) -> ID {
        ids::encode(ProductId::TAG, self.0.id.0)
    }
    /// The ids source systems (ERP, webshop) give this product, one per system, by system.
    async fn external_ids(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<crate::graphql::external::ExternalId>> {
        crate::graphql::external::external_ids_field(ctx, cohort_store::ExternalTarget::Product(self.0.id)).await
    }
    /// Stock-keeping unit: the product's code, unique in the tenant.
    async fn sku(&self) -> &str {
        &self.0.sku
    }
    /// The product's name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The price per unit when no price list applies, in `currency`.
    async fn list_price(&self) -> Dec {
        Dec(self.0.list_price)
    }
    /// ISO 4217 code.
    async fn currency(&self) -> &str {
        self.0.currency.code()
    }
    /// Whether the product can be priced and ordered.
    async fn active(&self) -> bool {
        self.0.active
    }
    /// When the product was added.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the product was last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

connection!(
    ProductConnection,
    ProductEdge,
    Product,
    ProductRecord,
    "A page of the catalogue, by name.",
    "A product on a page, with its cursor.",
    "How many products match `search` (the whole catalogue without it), on every page together."
);

impl From<ProductRecord> for Product {
    fn from(p: ProductRecord) -> Self {
        Product(p)
    }
}

pub struct PriceList(pub PriceListRecord);

/// A price list (admins only).
#[Object]
impl PriceList {
    /// The price list's global id (opaque; for `node(id:)` and inputs that take a price list).
    pub async fn id(&self) -> ID {
        ids::encode(PriceListId::TAG, self.0.id.0)
    }
    /// The ids source systems (ERP, webshop) give this price list, one per system, by system.
    async fn external_ids(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<crate::graphql::external::ExternalId>> {
        crate::graphql::external::external_ids_field(ctx, cohort_store::ExternalTarget::PriceList(self.0.id)).await
    }
    /// The list's name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// ISO 4217 code: the list prices only lines in this currency.
    async fn currency(&self) -> &str {
        self.0.currency.code()
    }
    /// Valid from this instant (inclusive); `null`: always was.
    async fn valid_from(&self) -> Option<DateTime<Utc>> {
        self.0.valid_from
    }
    /// Valid until this instant (exclusive); `null`: open-ended.
    async fn valid_to(&self) -> Option<DateTime<Utc>> {
        self.0.valid_to
    }
    /// The list percentages are taken off; `null`: the product's list price.
    async fn base_price_list(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<PriceList>> {
        let Some(b) = self.0.base_price_list_id else { return Ok(None) };
        let l = data(ctx)?.price_lists_by_ids(&[b]).await.map_err(ApiError::from)?;
        Ok(l.into_iter().next().map(PriceList))
    }
    /// The list's items, by product and minimum quantity. Reading them is recorded in the audit
    /// log.
    async fn items(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<PriceListItem>> {
        let items = data(ctx)?.price_list_items(self.0.id).await.map_err(ApiError::from)?;
        Ok(items.into_iter().map(PriceListItem).collect())
    }
}

pub struct PriceListItem(pub PriceItemRecord);

/// One price of a list: a product, from a minimum quantity, as a fixed price or a discount.
#[Object]
impl PriceListItem {
    /// The item's global id (opaque).
    async fn id(&self) -> ID {
        ids::encode(PriceItemId::TAG, self.0.id.0)
    }
    /// The product the item prices.
    async fn product(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Product>> {
        Ok(loader(ctx)?.load_one(self.0.product_id).await?.map(Product))
    }
    /// The item applies from this quantity on.
    async fn min_quantity(&self) -> Dec {
        Dec(self.0.min_quantity)
    }
    /// The fixed unit price; `null` for a discount item.
    async fn fixed_price(&self) -> Option<Dec> {
        self.0.fixed_price.map(Dec)
    }
    /// The discount off the base price, in percent; `null` for a fixed-price item.
    async fn discount_percent(&self) -> Option<Dec> {
        self.0.discount_percent.map(Dec)
    }
    /// The item applies from this instant on (inclusive); `null`: while the list does.
    async fn valid_from(&self) -> Option<DateTime<Utc>> {
        self.0.valid_from
    }
    /// The item applies until this instant (exclusive); `null`: while the list does.
    async fn valid_to(&self) -> Option<DateTime<Utc>> {
        self.0.valid_to
    }
}

connection!(
    PriceListConnection,
    PriceListEdge,
    PriceList,
    PriceListRecord,
    "A page of price lists, by name (admins only).",
    "A price list on a page, with its cursor.",
    "How many price lists the tenant has, on every page together."
);

impl From<PriceListRecord> for PriceList {
    fn from(l: PriceListRecord) -> Self {
        PriceList(l)
    }
}

/// A list's name and id: what a non-admin may know of a list (in explanations).
#[derive(SimpleObject, Clone)]
pub struct PriceListRef {
    /// The list's global id.
    pub id: ID,
    /// The list's name.
    pub name: String,
}

pub struct GroupPriceList(pub ListAssignmentRecord);

/// A list assigned to a group.
#[Object]
impl GroupPriceList {
    /// The list (its id and name).
    async fn price_list(&self) -> PriceListRef {
        PriceListRef { id: ids::encode(PriceListId::TAG, self.0.price_list.id.0), name: self.0.price_list.name.clone() }
    }
    /// Smaller is applied first.
    async fn priority(&self) -> i32 {
        self.0.priority
    }
    /// The group the assignment is defined on (this group, or the ancestor it is inherited
    /// from); `null` if the viewer cannot see that group.
    async fn defined_on(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Group>> {
        Ok(loader(ctx)?.load_one(self.0.defined_on).await?.map(Group))
    }
}

pub async fn group_price_lists(
    ctx: &Context<'_>,
    g: GroupId,
    effective: bool,
) -> async_graphql::Result<Vec<GroupPriceList>> {
    let l = data(ctx)?.group_price_lists(g, effective).await.map_err(ApiError::from)?;
    Ok(l.into_iter().map(GroupPriceList).collect())
}

// ---------------------------------------------------------------------------------------------
// Resolution

/// Where a price came from, in the order resolution tries them.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum PriceSource {
    /// One of the contact's own (individual) price lists.
    ContactList,
    /// A price list of one of the contact's groups (its own or inherited from an ancestor).
    GroupList,
    /// The tenant's default price list.
    DefaultList,
    /// The product's list price (no list had an item for it).
    ListPrice,
}

impl From<Step> for PriceSource {
    fn from(s: Step) -> Self {
        match s {
            Step::ContactList => PriceSource::ContactList,
            Step::GroupList => PriceSource::GroupList,
            Step::DefaultList => PriceSource::DefaultList,
            Step::ListPrice => PriceSource::ListPrice,
        }
    }
}

/// What happened to a candidate price list during resolution.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum CandidateOutcome {
    /// This list priced the line.
    Applied,
    /// The list could not price the line (`skipReason` says why).
    Skipped,
    /// After the list that applied.
    NotReached,
}

/// Why a candidate price list did not price a line.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum SkipCause {
    /// The list no longer exists.
    UnknownList,
    /// The list is in another currency.
    Currency,
    /// The list is not yet, or no longer, valid at the pricing date.
    NotValidAtDate,
    /// The list has no item for the product that is valid at the pricing date.
    NoItem,
    /// The list's items for the product all need a larger quantity.
    QuantityTooSmall,
    /// A discount item whose base has no price (a base list in another currency, a cycle of base
    /// lists, …).
    NoBasePrice,
    /// The list was already considered earlier in the order (it is assigned twice).
    Duplicate,
}

/// One candidate list, in resolution order, and what happened to it.
#[derive(SimpleObject)]
pub struct PriceCandidate {
    /// Which kind of list it is.
    pub step: PriceSource,
    /// The list (its id and name).
    pub price_list: PriceListRef,
    /// The assignment's priority (smaller is tried first).
    pub priority: i32,
    /// The contact's group that brought the list in — `null` when the viewer cannot see it.
    pub group: Option<Group>,
    /// Where the assignment is defined (the group or the ancestor it inherits from), if visible.
    pub defined_on: Option<Group>,
    /// What happened to it.
    pub outcome: CandidateOutcome,
    /// Why it was skipped; `null` unless `outcome` is `SKIPPED`.
    pub skip_reason: Option<SkipCause>,
}

/// A price, and how it came about.
#[derive(SimpleObject)]
pub struct PriceResolution {
    /// The product priced.
    pub product: Product,
    /// The quantity priced.
    pub quantity: Dec,
    /// The price per unit.
    pub unit_price: Dec,
    /// unit price × quantity, rounded half away from zero to the currency's minor units.
    pub line_total: Dec,
    /// ISO 4217 code of the prices.
    pub currency: String,
    /// Where the price came from.
    pub source: PriceSource,
    /// The list that priced the line; `null` for the list price.
    pub price_list: Option<PriceListRef>,
    /// The group whose list applied — only if the viewer may see it.
    pub group: Option<Group>,
    /// Every candidate list in the order it was tried, and what happened to it (asked for only when
    /// selected).
    pub explanation: Vec<PriceCandidate>,
}

/// Loads, in one batch, every group any of the lines may name (visible ones only).
pub(crate) async fn prefetch_groups(
    ctx: &Context<'_>,
    lines: &[PricedLine],
    wants: Wants,
) -> async_graphql::Result<()> {
    // Groups are named only in `group` and the explanation: unasked, they cost no statement.
    if !wants.group && !wants.explanation {
        return Ok(());
    }
    let mut ids: Vec<GroupId> = lines
        .iter()
        .flat_map(|l| {
            l.resolution
                .considered
                .iter()
                .flat_map(|c| [c.candidate.group, c.candidate.defined_on])
                .flatten()
                .filter(|g| l.visible_groups.contains(g))
        })
        .collect();
    ids.sort();
    ids.dedup();
    loader(ctx)?.load_many(ids).await?;
    Ok(())
}

/// What a selection of `PriceResolution` asks for beyond the figures (each costs lookups).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wants {
    pub(crate) explanation: bool,
    pub(crate) group: bool,
}

impl Wants {
    /// From the look-ahead at a `PriceResolution` selection (fragments included).
    pub(crate) fn of(at: async_graphql::Lookahead<'_>) -> Wants {
        Wants { explanation: at.field("explanation").exists(), group: at.field("group").exists() }
    }
}

/// Builds the answer for one line; the explanation and the group only when the query asks.
pub(crate) async fn to_resolution(
    ctx: &Context<'_>,
    line: PricedLine,
    wants: Wants,
) -> async_graphql::Result<PriceResolution> {
    let l = loader(ctx)?;
    let named = |id: PriceListId| PriceListRef {
        id: ids::encode(PriceListId::TAG, id.0),
        name: line.list_names.get(&id).cloned().unwrap_or_default(),
    };
    let visible = |g: Option<GroupId>| g.filter(|g| line.visible_groups.contains(g));
    let mut explanation = Vec::with_capacity(line.resolution.considered.len());
    let considered: &[cohort_domain::pricing::Considered] =
        if wants.explanation { &line.resolution.considered } else { &[] };
    for c in considered {
        let (outcome, skip_reason) = match &c.outcome {
            Outcome::Applied { .. } => (CandidateOutcome::Applied, None),
            Outcome::NotReached => (CandidateOutcome::NotReached, None),
            Outcome::Skipped(r) => (
                CandidateOutcome::Skipped,
                Some(match r {
                    SkipReason::UnknownList => SkipCause::UnknownList,
                    SkipReason::Currency => SkipCause::Currency,
                    SkipReason::NotValidAtDate => SkipCause::NotValidAtDate,
                    SkipReason::NoItem => SkipCause::NoItem,
                    SkipReason::QuantityTooSmall => SkipCause::QuantityTooSmall,
                    SkipReason::NoBasePrice => SkipCause::NoBasePrice,
                    SkipReason::Duplicate => SkipCause::Duplicate,
                }),
            ),
        };
        let group = match visible(c.candidate.group) {
            Some(g) => l.load_one(g).await?.map(Group),
            None => None,
        };
        let defined_on = match visible(c.candidate.defined_on) {
            Some(g) => l.load_one(g).await?.map(Group),
            None => None,
        };
        explanation.push(PriceCandidate {
            step: c.candidate.step.into(),
            price_list: named(c.candidate.list),
            priority: c.candidate.priority,
            group,
            defined_on,
            outcome,
            skip_reason,
        });
    }
    let r = &line.resolution;
    let group = match visible(r.group).filter(|_| wants.group) {
        Some(g) => l.load_one(g).await?.map(Group),
        None => None,
    };
    Ok(PriceResolution {
        quantity: Dec(line.quantity),
        unit_price: Dec(r.unit_price),
        line_total: Dec(r.line_total),
        currency: r.currency.code().to_owned(),
        source: r.step.into(),
        price_list: r.list.map(named),
        group,
        explanation,
        product: Product(line.product),
    })
}
