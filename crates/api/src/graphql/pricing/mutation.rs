//! Mutations of the pricing area: catalogue, lists, items and assignments.

use crate::error::ApiError;
use crate::graphql::contacts::*;
use crate::graphql::groups::*;
use crate::graphql::pricing::*;
use crate::graphql::{data, ids};
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use cohort_domain::ids::{ContactId, GroupId, PriceListId, ProductId};
use cohort_store::{PriceItemInput, PriceListInput, ProductInput, ProductPatch};
use rust_decimal::Decimal;

/// The input of `createProduct`.
#[derive(InputObject)]
pub struct CreateProductInput {
    /// Stock-keeping unit: the product's code, unique in the tenant (up to 64 characters).
    pub sku: String,
    /// The product's name (1 to 200 characters).
    pub name: String,
    /// The price when no price list applies, per unit, in `currency`.
    pub list_price: Dec,
    /// ISO 4217 code of the list price (`EUR`).
    pub currency: String,
    /// Whether the product can be priced and ordered (default `true`).
    #[graphql(default = true)]
    pub active: bool,
    /// Ids in source systems (ERP, webshop) to give the product, one per system; written in the same
    /// transaction (an id another product holds makes the whole create `CONFLICT`).
    pub external_ids: Option<Vec<crate::graphql::external::ExternalIdInput>>,
}

/// The result of `createProduct`.
#[derive(SimpleObject)]
pub struct CreateProductPayload {
    /// The new product.
    pub product: Product,
}

/// The input of `updateProduct`: absent fields stay as they are. The SKU never changes.
#[derive(InputObject)]
pub struct UpdateProductInput {
    /// The product to change.
    pub id: ID,
    /// A new name.
    pub name: Option<String>,
    /// A new list price.
    pub list_price: Option<Dec>,
    /// A new currency of the list price (ISO 4217).
    pub currency: Option<String>,
    /// Allow (`true`) or stop (`false`) pricing and ordering it.
    pub active: Option<bool>,
}

/// The result of `updateProduct`.
#[derive(SimpleObject)]
pub struct UpdateProductPayload {
    /// The product after the change.
    pub product: Product,
}

/// The input of `createPriceList`.
#[derive(InputObject)]
pub struct CreatePriceListInput {
    /// The list's name (1 to 200 characters).
    pub name: String,
    /// ISO 4217 code: the list prices only lines in this currency.
    pub currency: String,
    /// The list applies from this instant on (inclusive); `null`: always has.
    pub valid_from: Option<DateTime<Utc>>,
    /// The list applies until this instant (exclusive); `null`: open-ended.
    pub valid_to: Option<DateTime<Utc>>,
    /// Percentages are taken off this list's prices (default: the product list price).
    pub base_price_list_id: Option<ID>,
    /// Ids in source systems (ERP, webshop) to give the price list, one per system; written in
    /// the same transaction (an id another price list holds makes the whole create `CONFLICT`).
    pub external_ids: Option<Vec<crate::graphql::external::ExternalIdInput>>,
}

/// The result of `createPriceList`.
#[derive(SimpleObject)]
pub struct CreatePriceListPayload {
    /// The new price list.
    pub price_list: PriceList,
}

/// Replaces a list's settings (all fields).
#[derive(InputObject)]
pub struct UpdatePriceListInput {
    /// The price list to change.
    pub id: ID,
    /// The list's name.
    pub name: String,
    /// ISO 4217 code of the list.
    pub currency: String,
    /// Applies from this instant on (inclusive); `null`: always has.
    pub valid_from: Option<DateTime<Utc>>,
    /// Applies until this instant (exclusive); `null`: open-ended.
    pub valid_to: Option<DateTime<Utc>>,
    /// The list percentages are taken off; `null`: the product's list price.
    pub base_price_list_id: Option<ID>,
}

/// The result of `updatePriceList`.
#[derive(SimpleObject)]
pub struct UpdatePriceListPayload {
    /// The price list after the change.
    pub price_list: PriceList,
}

/// Exactly one of `fixedPrice` and `discountPercent`.
#[derive(InputObject)]
pub struct PriceListItemInput {
    /// The product the item prices.
    pub product_id: ID,
    /// The item applies from this quantity on (default 1); the applicable item with the largest
    /// minimum wins.
    #[graphql(default_with = "Dec(Decimal::ONE)")]
    pub min_quantity: Dec,
    /// A fixed unit price, in the list's currency.
    pub fixed_price: Option<Dec>,
    /// A discount off the base price (the base list's, or the product's list price), in percent.
    pub discount_percent: Option<Dec>,
    /// The item applies from this instant on (inclusive); `null`: while the list does.
    pub valid_from: Option<DateTime<Utc>>,
    /// The item applies until this instant (exclusive); `null`: while the list does.
    pub valid_to: Option<DateTime<Utc>>,
}

/// The input of `setPriceListItems`.
#[derive(InputObject)]
pub struct SetPriceListItemsInput {
    /// The price list whose items are replaced.
    pub price_list_id: ID,
    /// Every item of the list, replacing all previous ones.
    pub items: Vec<PriceListItemInput>,
}

/// The result of `setPriceListItems`.
#[derive(SimpleObject)]
pub struct SetPriceListItemsPayload {
    /// The price list after the change.
    pub price_list: PriceList,
    /// How many items the list now has.
    pub item_count: i32,
}

/// The input of `assignGroupPriceList`.
#[derive(InputObject)]
pub struct AssignGroupPriceListInput {
    /// The group whose members (and subgroups' members) the list prices for.
    pub group_id: ID,
    /// The price list to assign.
    pub price_list_id: ID,
    /// Smaller is applied first.
    pub priority: i32,
}

/// The input of `unassignGroupPriceList`.
#[derive(InputObject)]
pub struct UnassignGroupPriceListInput {
    /// The group the list is assigned to.
    pub group_id: ID,
    /// The price list to unassign.
    pub price_list_id: ID,
}

/// The result of `assignGroupPriceList` and `unassignGroupPriceList`.
#[derive(SimpleObject)]
pub struct GroupPriceListPayload {
    /// The group after the change (see `priceLists` and `effectivePriceLists`).
    pub group: Group,
}

/// The input of `assignContactPriceList`.
#[derive(InputObject)]
pub struct AssignContactPriceListInput {
    /// The contact the list prices for.
    pub contact_id: ID,
    /// The price list to assign.
    pub price_list_id: ID,
    /// Smaller is applied first among the contact's own lists.
    pub priority: i32,
}

/// The input of `unassignContactPriceList`.
#[derive(InputObject)]
pub struct UnassignContactPriceListInput {
    /// The contact the list is assigned to.
    pub contact_id: ID,
    /// The price list to unassign.
    pub price_list_id: ID,
}

/// The result of `assignContactPriceList` and `unassignContactPriceList`.
#[derive(SimpleObject)]
pub struct ContactPriceListPayload {
    /// The contact after the change.
    pub contact: Contact,
}

/// The input of `setDefaultPriceList`.
#[derive(InputObject)]
pub struct SetDefaultPriceListInput {
    /// `null` clears the default.
    pub price_list_id: Option<ID>,
}

/// The result of `setDefaultPriceList`.
#[derive(SimpleObject)]
pub struct SetDefaultPriceListPayload {
    /// The tenant's default list now; `null` if none.
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
        let external = crate::graphql::external::external_inputs(input.external_ids);
        let p = data(ctx)?
            .create_product_with_external_ids(
                ProductInput {
                    sku: input.sku,
                    name: input.name,
                    list_price: input.list_price.0,
                    currency: input.currency,
                    active: input.active,
                },
                &external,
            )
            .await
            .map_err(ApiError::from)?;
        Ok(CreateProductPayload { product: Product(p) })
    }

    /// Changes a product of the catalogue (admin). Orders already placed keep the prices they were
    /// placed at.
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
        let external = crate::graphql::external::external_inputs(input.external_ids);
        let i = list_input(input.name, input.currency, input.valid_from, input.valid_to, input.base_price_list_id)?;
        let l = data(ctx)?.create_price_list_with_external_ids(i, &external).await.map_err(ApiError::from)?;
        Ok(CreatePriceListPayload { price_list: PriceList(l) })
    }

    /// Replaces a price list's settings (admin); its items stay.
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

    /// Takes a list off a group (admin); members then get their prices from the remaining lists.
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

    /// Takes an individual list off a contact (admin).
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
