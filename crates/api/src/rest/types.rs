//! The REST facade's request and response bodies. Requests mirror the GraphQL input types (camelCase
//! JSON, the same opaque global ids); a request body is read into its type first, so a body of
//! the wrong shape is `BAD_USER_INPUT` naming the field, and serialised again as the operation's
//! variables. Responses are what the fixed documents select: `data.<rootField>` is read into the
//! documented type before it is sent, so the OpenAPI document cannot drift from the answers.
//!
//! Amounts and quantities are decimal strings (`"2.5"`, `"720.00"`), as in GraphQL; times are
//! RFC 3339 strings.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

// ---- shared --------------------------------------------------------------------------------------

/// Where a price came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PriceSource {
    /// One of the contact's own price lists.
    ContactList,
    /// A price list of one of the contact's groups (its own or inherited).
    GroupList,
    /// The tenant's default price list.
    DefaultList,
    /// The product's list price (no list had an item for it).
    ListPrice,
}

/// A person or a company.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ContactKind {
    Person,
    Company,
}

/// A product, as a price names it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductRef {
    /// The product's global id.
    pub id: String,
    pub sku: String,
    pub name: String,
}

/// A price list, by id and name.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PriceListRef {
    /// The list's global id.
    pub id: String,
    pub name: String,
}

/// A group, by id and name.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupRef {
    /// The group's global id.
    pub id: String,
    pub name: String,
}

/// An address book, by id and name.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddressBookRef {
    /// The address book's global id.
    pub id: String,
    pub name: String,
}

/// A contact, by id and display name.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContactRef {
    /// The contact's global id.
    pub id: String,
    /// "First Last" for a person, the company name for a company.
    pub display_name: String,
}

/// An id of an object in a source system (ERP, webshop).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalId {
    /// The source system (`erp`, `shop.de`).
    pub system: String,
    /// The source system's id of the object.
    pub value: String,
}

// ---- prices and quotes ---------------------------------------------------------------------------

/// One product, quantity and currency to price for one contact (`resolvePrice`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResolvePriceRequest {
    /// The contact to price for (their own lists, their groups' lists).
    pub contact_id: String,
    /// The product by id (or give `sku`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    /// The product by SKU (or give `productId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    /// How many units, as a decimal string; decides which quantity tiers apply.
    #[schema(example = "2.5")]
    pub quantity: String,
    /// ISO 4217 code.
    #[schema(example = "EUR")]
    pub currency: String,
    /// The pricing date (RFC 3339); default now. Other dates are for admins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub at: Option<String>,
}

/// A resolved price.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PriceResolution {
    /// The product priced.
    pub product: ProductRef,
    /// The quantity priced.
    #[schema(example = "2.5")]
    pub quantity: String,
    /// The price per unit.
    #[schema(example = "80")]
    pub unit_price: String,
    /// unit price × quantity, rounded half away from zero to the currency's minor units.
    #[schema(example = "200.00")]
    pub line_total: String,
    /// ISO 4217 code of the prices.
    pub currency: String,
    /// Where the price came from.
    pub source: PriceSource,
    /// The list that priced it; `null` for the list price.
    #[schema(required = true)]
    pub price_list: Option<PriceListRef>,
    /// The group whose list applied — only if the caller may see it.
    #[schema(required = true)]
    pub group: Option<GroupRef>,
}

/// One line of a quote or an order to place: a product (by id or SKU) and a quantity.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderLineRequest {
    /// The product by id (or give `sku`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    /// The product by SKU (or give `productId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    /// How many units, as a decimal string.
    #[schema(example = "3")]
    pub quantity: String,
}

/// An order to price (`quotes`) or to place (`orders`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderRequest {
    /// The contact the order is for.
    pub contact_id: String,
    /// ISO 4217 code every line is priced in.
    #[schema(example = "EUR")]
    pub currency: String,
    /// The pricing date (RFC 3339); default now. Other dates are for admins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub at: Option<String>,
    /// 1 to 500 lines.
    pub lines: Vec<OrderLineRequest>,
}

/// An order priced without placing it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderQuote {
    /// ISO 4217 code of every amount.
    pub currency: String,
    /// The sum of the line totals.
    pub total: String,
    /// Each line, priced, in the order given.
    pub lines: Vec<PriceResolution>,
}

// ---- orders --------------------------------------------------------------------------------------

/// A line of a placed order, with its price as it was when the order was placed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    /// The line's number (1, 2, …).
    pub line_no: i32,
    /// The product's SKU when the order was placed.
    pub sku: String,
    /// The product's name when the order was placed.
    pub product_name: String,
    pub quantity: String,
    pub unit_price: String,
    pub line_total: String,
    pub source: PriceSource,
    /// The list that priced the line (its id and name then); `null` for the list price.
    #[schema(required = true)]
    pub price_list: Option<PriceListRef>,
}

/// A placed order: its prices were frozen when it was placed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// The order's global id.
    pub id: String,
    /// Who the order is for; `null` if the caller cannot see the contact.
    #[schema(required = true)]
    pub contact: Option<ContactRef>,
    /// ISO 4217 code of every amount.
    pub currency: String,
    /// The sum of the line totals.
    pub total: String,
    pub line_count: i32,
    /// When the order was placed (RFC 3339).
    #[schema(format = DateTime)]
    pub placed_at: String,
    /// The date the prices were determined for (RFC 3339).
    #[schema(format = DateTime)]
    pub priced_at: String,
    /// The lines, by line number.
    pub lines: Vec<OrderLine>,
}

/// `placeOrder`'s payload (read, not sent: the REST answer is the order).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct PlacedOrder {
    pub order: Order,
    pub replayed: bool,
}

// ---- group members -------------------------------------------------------------------------------

/// The complete member list of a group, by the members' ids in one source system.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetGroupMembersRequest {
    /// The source system of the ids (`erp`).
    pub system: String,
    /// The members the group is to have: contacts with these ids in `system`.
    pub external_ids: Vec<String>,
}

/// What setting a group's members changed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetGroupMembersResult {
    /// Contacts that joined.
    pub added: i32,
    /// Members that left.
    pub removed: i32,
    /// Members that stay.
    pub unchanged: i32,
    /// External ids no contact the caller can see holds.
    pub not_found: Vec<String>,
}

// ---- contacts ------------------------------------------------------------------------------------

/// An e-mail address to give a contact.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmailInput {
    pub address: String,
    /// What it is for (`work`, `private`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// A phone number to give a contact.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PhoneInput {
    pub number: String,
    /// What it is for (`mobile`, `office`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// One contact to create or update by its id in a source system. On an update, an omitted name
/// stays as it is and `null` clears it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpsertContactInput {
    /// The contact's id in the request's `system`.
    pub external_id: String,
    pub kind: ContactKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    /// The contact's addresses (all of them: an update replaces the list); absent = unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emails: Option<Vec<EmailInput>>,
    /// The contact's numbers (all of them: an update replaces the list); absent = unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phones: Option<Vec<PhoneInput>>,
}

/// Contacts to create or update by their ids in one source system.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpsertContactsRequest {
    /// The address book new contacts go into (and the updated ones are in).
    pub address_book_id: String,
    /// The source system of the `externalId`s (`erp`).
    pub system: String,
    /// `true` (default): all or nothing — one failed item commits none. `false`: every item
    /// that can be written is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub atomic: Option<bool>,
    pub contacts: Vec<UpsertContactInput>,
}

/// One contact to create or update at `PUT /api/v1/contacts/{system}/{externalId}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PutContactRequest {
    /// The address book a new contact goes into (and an updated one is in).
    pub address_book_id: String,
    pub kind: ContactKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emails: Option<Vec<EmailInput>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phones: Option<Vec<PhoneInput>>,
}

/// An e-mail address of a contact.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Email {
    pub address: String,
    #[schema(required = true)]
    pub label: Option<String>,
}

/// A phone number of a contact.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Phone {
    pub number: String,
    #[schema(required = true)]
    pub label: Option<String>,
}

/// A contact.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    /// The contact's global id.
    pub id: String,
    pub kind: ContactKind,
    /// "First Last" for a person, the company name for a company.
    pub display_name: String,
    #[schema(required = true)]
    pub first_name: Option<String>,
    #[schema(required = true)]
    pub last_name: Option<String>,
    #[schema(required = true)]
    pub company_name: Option<String>,
    pub emails: Vec<Email>,
    pub phones: Vec<Phone>,
    /// The contact's ids in source systems.
    pub external_ids: Vec<ExternalId>,
    pub address_book: AddressBookRef,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

/// What happened to one item of an upsert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UpsertStatus {
    Created,
    Updated,
    Unchanged,
    Failed,
}

/// Why one item of an upsert failed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpsertError {
    /// The error code (as `Problem.code`).
    pub code: String,
    pub message: String,
    /// The item's field the error is about, when there is one.
    #[schema(required = true)]
    pub field: Option<String>,
}

/// One item of an upsert and what happened to it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpsertContactResult {
    /// The item's position in the request (0-based).
    pub index: i32,
    pub external_id: String,
    pub status: UpsertStatus,
    /// The contact as it is now; `null` when the item failed.
    #[schema(required = true)]
    pub contact: Option<Contact>,
    /// Why it failed; `null` otherwise.
    #[schema(required = true)]
    pub error: Option<UpsertError>,
}

/// What an upsert did, item by item.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpsertContactsResult {
    /// Whether anything was written (an atomic batch with a failed item writes nothing).
    pub committed: bool,
    pub created: i32,
    pub updated: i32,
    pub unchanged: i32,
    pub failed: i32,
    /// One result per item, in the request's order.
    pub results: Vec<UpsertContactResult>,
}

/// What `PUT /api/v1/contacts/{system}/{externalId}` did: the contact and whether it was
/// created (201), updated or left unchanged (200).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContactUpsert {
    pub status: UpsertStatus,
    pub contact: Contact,
}

// ---- changes -------------------------------------------------------------------------------------

/// What kind of object changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChangeType {
    Contact,
    Group,
    Product,
    PriceList,
}

/// How it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChangeOperation {
    /// Created or changed.
    Upserted,
    Deleted,
}

/// One change.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// Where this change is in the feed (pass as `since` to read what came after it).
    pub cursor: String,
    #[serde(rename = "type")]
    pub change_type: ChangeType,
    pub operation: ChangeOperation,
    /// The changed object's global id.
    pub id: String,
    /// The object's ids in source systems.
    pub external_ids: Vec<ExternalId>,
    #[schema(format = DateTime)]
    pub changed_at: String,
}

/// A page of changes, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangePage {
    pub changes: Vec<Change>,
    /// Pass as `since` to read on (also when the page is empty).
    pub cursor: String,
    /// Whether more changes follow right away.
    pub has_more: bool,
}
