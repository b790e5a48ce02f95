//! Pricing in GraphQL: the catalogue, price lists (admins only: their contents are sensitive),
//! list assignments, `resolvePrice` with its explanation, and `quoteOrder`.

use super::groups::Group;
use super::types::*;
use super::{data, ids, loader, viewer};
use crate::error::ApiError;
use async_graphql::{
    Context, Enum, ID, InputObject, InputValueError, InputValueResult, Object, Scalar, ScalarType, SimpleObject, Value,
};
use chrono::{DateTime, Utc};
use cohort_domain::AccessLevel as Level;
use cohort_domain::ids::{ContactId, GroupId, PriceItemId, PriceListId, ProductId};
use cohort_domain::money;
use cohort_domain::pricing::{Outcome, SkipReason, Step};
use cohort_store::{
    ListAssignmentRecord, PageRequest, PriceItemInput, PriceItemRecord, PriceLine, PriceListInput, PriceListRecord,
    PricedLine, ProductInput, ProductPatch, ProductRecord, ProductRef,
};
use rust_decimal::Decimal;

/// An exact decimal number, as a string (`"33.335"`): money never travels as a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dec(pub Decimal);

#[Scalar(name = "Decimal")]
impl ScalarType for Dec {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            // One grammar (plain notation) for strings and JSON integers; floats never qualify.
            Value::String(s) => money::parse_decimal_text(s).map(Dec).map_err(InputValueError::custom),
            Value::Number(n) if n.is_i64() || n.is_u64() => {
                money::parse_decimal_text(&n.to_string()).map(Dec).map_err(InputValueError::custom)
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

fn page_req(first: Option<i32>, after: Option<String>) -> Result<PageRequest, ApiError> {
    PageRequest::new(first, after).map_err(ApiError::from)
}

// ---------------------------------------------------------------------------------------------

pub struct Product(pub ProductRecord);

#[Object]
impl Product {
    pub async fn id(&self) -> ID {
        ids::encode(ProductId::TAG, self.0.id.0)
    }
    async fn sku(&self) -> &str {
        &self.0.sku
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn list_price(&self) -> Dec {
        Dec(self.0.list_price)
    }
    /// ISO 4217 code.
    async fn currency(&self) -> &str {
        self.0.currency.code()
    }
    async fn active(&self) -> bool {
        self.0.active
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

#[derive(SimpleObject)]
pub struct ProductEdge {
    pub cursor: String,
    pub node: Product,
}

#[derive(SimpleObject)]
pub struct ProductConnection {
    pub edges: Vec<ProductEdge>,
    pub page_info: PageInfo,
}

pub struct PriceList(pub PriceListRecord);

/// A price list (admins only).
#[Object]
impl PriceList {
    pub async fn id(&self) -> ID {
        ids::encode(PriceListId::TAG, self.0.id.0)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
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
    async fn items(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<PriceListItem>> {
        let items = data(ctx)?.price_list_items(self.0.id).await.map_err(ApiError::from)?;
        Ok(items.into_iter().map(PriceListItem).collect())
    }
}

pub struct PriceListItem(pub PriceItemRecord);

#[Object]
impl PriceListItem {
    async fn id(&self) -> ID {
        ids::encode(PriceItemId::TAG, self.0.id.0)
    }
    async fn product(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Product>> {
        Ok(loader(ctx)?.load_one(self.0.product_id).await?.map(Product))
    }
    async fn min_quantity(&self) -> Dec {
        Dec(self.0.min_quantity)
    }
    async fn fixed_price(&self) -> Option<Dec> {
        self.0.fixed_price.map(Dec)
    }
    async fn discount_percent(&self) -> Option<Dec> {
        self.0.discount_percent.map(Dec)
    }
    async fn valid_from(&self) -> Option<DateTime<Utc>> {
        self.0.valid_from
    }
    async fn valid_to(&self) -> Option<DateTime<Utc>> {
        self.0.valid_to
    }
}

#[derive(SimpleObject)]
pub struct PriceListEdge {
    pub cursor: String,
    pub node: PriceList,
}

#[derive(SimpleObject)]
pub struct PriceListConnection {
    pub edges: Vec<PriceListEdge>,
    pub page_info: PageInfo,
}

/// A list's name and id: what a non-admin may know of a list (in explanations).
#[derive(SimpleObject, Clone)]
pub struct PriceListRef {
    pub id: ID,
    pub name: String,
}

/// A list assigned to a group.
pub struct GroupPriceList(pub ListAssignmentRecord);

#[Object]
impl GroupPriceList {
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

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum PriceSource {
    ContactList,
    GroupList,
    DefaultList,
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

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum CandidateOutcome {
    Applied,
    Skipped,
    /// After the list that applied.
    NotReached,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum SkipCause {
    UnknownList,
    Currency,
    NotValidAtDate,
    NoItem,
    QuantityTooSmall,
    NoBasePrice,
    Duplicate,
}

/// One candidate list, in resolution order, and what happened to it.
#[derive(SimpleObject)]
pub struct PriceCandidate {
    pub step: PriceSource,
    pub price_list: PriceListRef,
    pub priority: i32,
    /// The contact's group that brought the list in — `null` when the viewer cannot see it.
    pub group: Option<Group>,
    /// Where the assignment is defined (the group or the ancestor it inherits from), if visible.
    pub defined_on: Option<Group>,
    pub outcome: CandidateOutcome,
    pub skip_reason: Option<SkipCause>,
}

/// A price, and how it came about.
#[derive(SimpleObject)]
pub struct PriceResolution {
    pub product: Product,
    pub quantity: Dec,
    pub unit_price: Dec,
    /// unit price × quantity, rounded half away from zero to the currency's minor units.
    pub line_total: Dec,
    pub currency: String,
    pub source: PriceSource,
    pub price_list: Option<PriceListRef>,
    /// The group whose list applied — only if the viewer may see it.
    pub group: Option<Group>,
    pub explanation: Vec<PriceCandidate>,
}

/// Loads, in one batch, every group any of the lines may name (visible ones only).
async fn prefetch_groups(ctx: &Context<'_>, lines: &[PricedLine]) -> async_graphql::Result<()> {
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

/// Builds the answer for one line; the explanation only when the query asks for it.
async fn to_resolution(
    ctx: &Context<'_>,
    line: PricedLine,
    with_explanation: bool,
) -> async_graphql::Result<PriceResolution> {
    let l = loader(ctx)?;
    let named = |id: PriceListId| PriceListRef {
        id: ids::encode(PriceListId::TAG, id.0),
        name: line.list_names.get(&id).cloned().unwrap_or_default(),
    };
    let visible = |g: Option<GroupId>| g.filter(|g| line.visible_groups.contains(g));
    let mut explanation = Vec::with_capacity(line.resolution.considered.len());
    let considered: &[cohort_domain::pricing::Considered] =
        if with_explanation { &line.resolution.considered } else { &[] };
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
    let group = match visible(r.group) {
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

#[derive(InputObject)]
pub struct ResolvePriceInput {
    pub contact_id: ID,
    /// The product by id, or by `sku` (one of the two).
    pub product_id: Option<ID>,
    pub sku: Option<String>,
    pub quantity: Dec,
    /// ISO 4217 code.
    pub currency: String,
    /// The pricing date; default now.
    pub at: Option<DateTime<Utc>>,
}

#[derive(InputObject)]
pub struct QuoteLineInput {
    pub product_id: Option<ID>,
    pub sku: Option<String>,
    pub quantity: Dec,
}

#[derive(InputObject)]
pub struct QuoteOrderInput {
    pub contact_id: ID,
    pub currency: String,
    pub at: Option<DateTime<Utc>>,
    /// 1 to 500 lines.
    pub lines: Vec<QuoteLineInput>,
}

/// A priced order that is not placed.
#[derive(SimpleObject)]
pub struct OrderQuote {
    pub currency: String,
    pub lines: Vec<PriceResolution>,
    /// The sum of the line totals.
    pub total: Dec,
}

fn product_ref(id: &Option<ID>, sku: &Option<String>) -> Result<ProductRef, ApiError> {
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
        let page_info = page_info(&p);
        Ok(ProductConnection {
            edges: p.rows.into_iter().map(|(cursor, r)| ProductEdge { cursor, node: Product(r) }).collect(),
            page_info,
        })
    }

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
        let page_info = page_info(&p);
        Ok(PriceListConnection {
            edges: p.rows.into_iter().map(|(cursor, r)| PriceListEdge { cursor, node: PriceList(r) }).collect(),
            page_info,
        })
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
        prefetch_groups(ctx, &priced).await?;
        let line = priced.pop().ok_or(ApiError::NotFound)?;
        to_resolution(ctx, line, ctx.look_ahead().field("explanation").exists()).await
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
        prefetch_groups(ctx, &priced).await?;
        let with_explanation = ctx.look_ahead().field("lines").field("explanation").exists();
        let mut out = Vec::with_capacity(priced.len());
        for p in priced {
            out.push(to_resolution(ctx, p, with_explanation).await?);
        }
        Ok(OrderQuote { currency, lines: out, total: Dec(total) })
    }
}

// ---------------------------------------------------------------------------------------------
// Mutations

#[derive(InputObject)]
pub struct CreateProductInput {
    pub sku: String,
    pub name: String,
    pub list_price: Dec,
    pub currency: String,
    #[graphql(default = true)]
    pub active: bool,
}

#[derive(SimpleObject)]
pub struct CreateProductPayload {
    pub product: Product,
}

#[derive(InputObject)]
pub struct UpdateProductInput {
    pub id: ID,
    pub name: Option<String>,
    pub list_price: Option<Dec>,
    pub currency: Option<String>,
    pub active: Option<bool>,
}

#[derive(SimpleObject)]
pub struct UpdateProductPayload {
    pub product: Product,
}

#[derive(InputObject)]
pub struct CreatePriceListInput {
    pub name: String,
    pub currency: String,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_to: Option<DateTime<Utc>>,
    /// Percentages are taken off this list's prices (default: the product list price).
    pub base_price_list_id: Option<ID>,
}

#[derive(SimpleObject)]
pub struct CreatePriceListPayload {
    pub price_list: PriceList,
}

/// Replaces a list's settings (all fields).
#[derive(InputObject)]
pub struct UpdatePriceListInput {
    pub id: ID,
    pub name: String,
    pub currency: String,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_to: Option<DateTime<Utc>>,
    pub base_price_list_id: Option<ID>,
}

#[derive(SimpleObject)]
pub struct UpdatePriceListPayload {
    pub price_list: PriceList,
}

/// Exactly one of `fixedPrice` and `discountPercent`.
#[derive(InputObject)]
pub struct PriceListItemInput {
    pub product_id: ID,
    #[graphql(default_with = "Dec(Decimal::ONE)")]
    pub min_quantity: Dec,
    pub fixed_price: Option<Dec>,
    pub discount_percent: Option<Dec>,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_to: Option<DateTime<Utc>>,
}

#[derive(InputObject)]
pub struct SetPriceListItemsInput {
    pub price_list_id: ID,
    pub items: Vec<PriceListItemInput>,
}

#[derive(SimpleObject)]
pub struct SetPriceListItemsPayload {
    pub price_list: PriceList,
    pub item_count: i32,
}

#[derive(InputObject)]
pub struct AssignGroupPriceListInput {
    pub group_id: ID,
    pub price_list_id: ID,
    /// Smaller is applied first.
    pub priority: i32,
}

#[derive(InputObject)]
pub struct UnassignGroupPriceListInput {
    pub group_id: ID,
    pub price_list_id: ID,
}

#[derive(SimpleObject)]
pub struct GroupPriceListPayload {
    pub group: Group,
}

#[derive(InputObject)]
pub struct AssignContactPriceListInput {
    pub contact_id: ID,
    pub price_list_id: ID,
    pub priority: i32,
}

#[derive(InputObject)]
pub struct UnassignContactPriceListInput {
    pub contact_id: ID,
    pub price_list_id: ID,
}

#[derive(SimpleObject)]
pub struct ContactPriceListPayload {
    pub contact: Contact,
}

#[derive(InputObject)]
pub struct SetDefaultPriceListInput {
    /// `null` clears the default.
    pub price_list_id: Option<ID>,
}

#[derive(SimpleObject)]
pub struct SetDefaultPriceListPayload {
    pub price_list: Option<PriceListRef>,
}

fn list_id(id: &ID) -> Result<PriceListId, ApiError> {
    Ok(PriceListId(ids::decode(PriceListId::TAG, id)?))
}

fn list_input(
    name: String,
    currency: String,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    base: Option<ID>,
) -> Result<PriceListInput, ApiError> {
    Ok(PriceListInput {
        name,
        currency,
        valid_from: from,
        valid_to: to,
        base_price_list_id: base.as_ref().map(list_id).transpose()?,
    })
}

async fn reload_group(ctx: &Context<'_>, g: GroupId) -> async_graphql::Result<Group> {
    let r = data(ctx)?.groups_by_ids(&[g]).await.map_err(ApiError::from)?;
    r.into_iter().next().map(Group).ok_or_else(|| ApiError::NotFound.into())
}

async fn reload_contact(ctx: &Context<'_>, c: ContactId) -> async_graphql::Result<Contact> {
    let r = data(ctx)?.contacts_by_ids(&[c]).await.map_err(ApiError::from)?;
    r.into_iter().next().map(Contact).ok_or_else(|| ApiError::NotFound.into())
}

#[derive(Default)]
pub struct PricingMutation;

#[Object]
impl PricingMutation {
    /// Adds a product to the catalogue (admin). SKUs are unique per tenant.
    async fn create_product(
        &self,
        ctx: &Context<'_>,
        input: CreateProductInput,
    ) -> async_graphql::Result<CreateProductPayload> {
        let p = data(ctx)?
            .create_product(ProductInput {
                sku: input.sku,
                name: input.name,
                list_price: input.list_price.0,
                currency: input.currency,
                active: input.active,
            })
            .await
            .map_err(ApiError::from)?;
        Ok(CreateProductPayload { product: Product(p) })
    }

    async fn update_product(
        &self,
        ctx: &Context<'_>,
        input: UpdateProductInput,
    ) -> async_graphql::Result<UpdateProductPayload> {
        let id = ProductId(ids::decode(ProductId::TAG, &input.id)?);
        let patch = ProductPatch {
            name: input.name,
            list_price: input.list_price.map(|d| d.0),
            currency: input.currency,
            active: input.active,
        };
        let p = data(ctx)?.update_product(id, patch).await.map_err(ApiError::from)?;
        Ok(UpdateProductPayload { product: Product(p) })
    }

    /// Creates a price list (admin). A base list must be in the same currency; cycles are refused.
    async fn create_price_list(
        &self,
        ctx: &Context<'_>,
        input: CreatePriceListInput,
    ) -> async_graphql::Result<CreatePriceListPayload> {
        let i = list_input(input.name, input.currency, input.valid_from, input.valid_to, input.base_price_list_id)?;
        let l = data(ctx)?.create_price_list(i).await.map_err(ApiError::from)?;
        Ok(CreatePriceListPayload { price_list: PriceList(l) })
    }

    async fn update_price_list(
        &self,
        ctx: &Context<'_>,
        input: UpdatePriceListInput,
    ) -> async_graphql::Result<UpdatePriceListPayload> {
        let id = list_id(&input.id)?;
        let i = list_input(input.name, input.currency, input.valid_from, input.valid_to, input.base_price_list_id)?;
        let l = data(ctx)?.update_price_list(id, i).await.map_err(ApiError::from)?;
        Ok(UpdatePriceListPayload { price_list: PriceList(l) })
    }

    /// Replaces the list's items atomically (admin).
    async fn set_price_list_items(
        &self,
        ctx: &Context<'_>,
        input: SetPriceListItemsInput,
    ) -> async_graphql::Result<SetPriceListItemsPayload> {
        let id = list_id(&input.price_list_id)?;
        let items = input
            .items
            .iter()
            .map(|i| {
                Ok(PriceItemInput {
                    product_id: ProductId(ids::decode(ProductId::TAG, &i.product_id)?),
                    min_quantity: i.min_quantity.0,
                    fixed_price: i.fixed_price.map(|d| d.0),
                    discount_percent: i.discount_percent.map(|d| d.0),
                    valid_from: i.valid_from,
                    valid_to: i.valid_to,
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        let s = data(ctx)?;
        let written = s.set_price_list_items(id, &items).await.map_err(ApiError::from)?;
        let l = s.price_lists_by_ids(&[id]).await.map_err(ApiError::from)?.pop().ok_or(ApiError::NotFound)?;
        Ok(SetPriceListItemsPayload { price_list: PriceList(l), item_count: written.len() as i32 })
    }

    /// Assigns a list to a group with a priority (admin); re-assigning changes the priority.
    async fn assign_group_price_list(
        &self,
        ctx: &Context<'_>,
        input: AssignGroupPriceListInput,
    ) -> async_graphql::Result<GroupPriceListPayload> {
        let g = GroupId(ids::decode(GroupId::TAG, &input.group_id)?);
        data(ctx)?
            .assign_group_price_list(g, list_id(&input.price_list_id)?, input.priority)
            .await
            .map_err(ApiError::from)?;
        Ok(GroupPriceListPayload { group: reload_group(ctx, g).await? })
    }

    async fn unassign_group_price_list(
        &self,
        ctx: &Context<'_>,
        input: UnassignGroupPriceListInput,
    ) -> async_graphql::Result<GroupPriceListPayload> {
        let g = GroupId(ids::decode(GroupId::TAG, &input.group_id)?);
        data(ctx)?.unassign_group_price_list(g, list_id(&input.price_list_id)?).await.map_err(ApiError::from)?;
        Ok(GroupPriceListPayload { group: reload_group(ctx, g).await? })
    }

    /// Gives a contact an individual list (admin).
    async fn assign_contact_price_list(
        &self,
        ctx: &Context<'_>,
        input: AssignContactPriceListInput,
    ) -> async_graphql::Result<ContactPriceListPayload> {
        let c = ContactId(ids::decode(ContactId::TAG, &input.contact_id)?);
        data(ctx)?
            .assign_contact_price_list(c, list_id(&input.price_list_id)?, input.priority)
            .await
            .map_err(ApiError::from)?;
        Ok(ContactPriceListPayload { contact: reload_contact(ctx, c).await? })
    }

    async fn unassign_contact_price_list(
        &self,
        ctx: &Context<'_>,
        input: UnassignContactPriceListInput,
    ) -> async_graphql::Result<ContactPriceListPayload> {
        let c = ContactId(ids::decode(ContactId::TAG, &input.contact_id)?);
        data(ctx)?.unassign_contact_price_list(c, list_id(&input.price_list_id)?).await.map_err(ApiError::from)?;
        Ok(ContactPriceListPayload { contact: reload_contact(ctx, c).await? })
    }

    /// The tenant's fallback list (admin).
    async fn set_default_price_list(
        &self,
        ctx: &Context<'_>,
        input: SetDefaultPriceListInput,
    ) -> async_graphql::Result<SetDefaultPriceListPayload> {
        let id = input.price_list_id.as_ref().map(list_id).transpose()?;
        let s = data(ctx)?;
        s.set_default_price_list(id).await.map_err(ApiError::from)?;
        let list = match id {
            Some(i) => s
                .price_lists_by_ids(&[i])
                .await
                .map_err(ApiError::from)?
                .pop()
                .map(|l| PriceListRef { id: ids::encode(PriceListId::TAG, l.id.0), name: l.name }),
            None => None,
        };
        Ok(SetDefaultPriceListPayload { price_list: list })
    }
}

// ---------------------------------------------------------------------------------------------
// Orders

pub struct Order(pub cohort_store::OrderRecord);

/// A placed order: its prices were frozen when it was placed.
#[Object]
impl Order {
    pub async fn id(&self) -> ID {
        ids::encode(cohort_domain::ids::OrderId::TAG, self.0.id.0)
    }
    async fn contact(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Contact>> {
        Ok(loader(ctx)?.load_one(self.0.contact_id).await?.map(Contact))
    }
    async fn currency(&self) -> &str {
        self.0.currency.code()
    }
    async fn total(&self) -> Dec {
        Dec(self.0.total)
    }
    async fn line_count(&self) -> i32 {
        self.0.line_count
    }
    async fn placed_at(&self) -> DateTime<Utc> {
        self.0.placed_at
    }
    /// The date the prices were determined for.
    async fn priced_at(&self) -> DateTime<Utc> {
        self.0.priced_at
    }
    async fn placed_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        match self.0.placed_by {
            None => Ok(None),
            Some(u) => Ok(loader(ctx)?.load_one(u).await?.map(User)),
        }
    }
    async fn lines(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<OrderLine>> {
        let l = loader(ctx)?.load_one(self.0.id).await?.unwrap_or_default();
        let currency = self.0.currency;
        Ok(l.into_iter().map(|line| OrderLine(line, currency)).collect())
    }
}

pub struct OrderLine(pub cohort_store::OrderLineRecord, pub cohort_domain::money::Currency);

#[Object]
impl OrderLine {
    async fn line_no(&self) -> i32 {
        self.0.line_no
    }
    async fn sku(&self) -> &str {
        &self.0.sku
    }
    async fn product_name(&self) -> &str {
        &self.0.product_name
    }
    async fn product(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Product>> {
        Ok(loader(ctx)?.load_one(self.0.product_id).await?.map(Product))
    }
    async fn quantity(&self) -> Dec {
        Dec(self.0.quantity)
    }
    async fn unit_price(&self) -> Dec {
        Dec(self.0.unit_price)
    }
    async fn line_total(&self) -> Dec {
        Dec(self.1.round(self.0.line_total))
    }
    async fn source(&self) -> PriceSource {
        self.0.source.into()
    }
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

#[derive(SimpleObject)]
pub struct OrderEdge {
    pub cursor: String,
    pub node: Order,
}

#[derive(SimpleObject)]
pub struct OrderConnection {
    pub edges: Vec<OrderEdge>,
    pub page_info: PageInfo,
}

impl OrderConnection {
    pub fn from_page(p: cohort_store::Page<cohort_store::OrderRecord>) -> Self {
        let page_info = page_info(&p);
        OrderConnection {
            edges: p.rows.into_iter().map(|(cursor, o)| OrderEdge { cursor, node: Order(o) }).collect(),
            page_info,
        }
    }
}

/// Orders in one currency.
#[derive(SimpleObject)]
pub struct OrderSummary {
    pub currency: String,
    pub order_count: i64,
    pub total: Dec,
}

#[derive(InputObject)]
pub struct PlaceOrderInput {
    pub contact_id: ID,
    pub currency: String,
    /// The pricing date; default now.
    pub at: Option<DateTime<Utc>>,
    /// 1 to 500 lines.
    pub lines: Vec<QuoteLineInput>,
}

#[derive(SimpleObject)]
pub struct PlaceOrderPayload {
    pub order: Order,
}

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
        let o = data(ctx)?.place_order(contact, &lines, &input.currency, input.at).await.map_err(ApiError::from)?;
        Ok(PlaceOrderPayload { order: Order(o) })
    }
}

pub async fn contact_orders(
    ctx: &Context<'_>,
    c: ContactId,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<OrderConnection> {
    let p = data(ctx)?.contact_orders(c, &page_req(first, after)?).await.map_err(ApiError::from)?;
    Ok(OrderConnection::from_page(p))
}

pub async fn group_orders(
    ctx: &Context<'_>,
    g: GroupId,
    include_subgroups: bool,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<OrderConnection> {
    let p = data(ctx)?.group_orders(g, include_subgroups, &page_req(first, after)?).await.map_err(ApiError::from)?;
    Ok(OrderConnection::from_page(p))
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
