//! Integrators' sync (issue 19): upserts keyed by external id (`upsertContacts`,
//! `upsertProducts`), the membership of a group set to a list (`setGroupMembersByExternalId`),
//! and the change feed (`changes`). The store does the work (`cohort_store::sync`); this module
//! only translates.

use crate::error::ApiError;
use crate::graphql::contacts::{Contact, ContactKind, EmailInput, PhoneInput};
use crate::graphql::external::ExternalId;
use crate::graphql::pricing::{Dec, Product};
use crate::graphql::{data, ids, patch};
use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use chrono::{DateTime, Utc};
use cohort_domain::ids::{AddressBookId, ContactId, GroupId, PriceListId, ProductId};
use cohort_store::{
    ChangeKind, ChangeRecord, ContactUpsert, ItemError, ProductUpsert, UpsertOutcome, UpsertReport,
    UpsertStatus as StoreStatus,
};

/// What an upsert did with one item.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum UpsertStatus {
    /// No object had the external id: one was created with it.
    Created,
    /// The object with the external id was changed.
    Updated,
    /// The object with the external id already looked like the item: nothing was written and no
    /// event was emitted.
    Unchanged,
    /// The item was not written; `error` says why.
    Failed,
}

impl From<StoreStatus> for UpsertStatus {
    fn from(s: StoreStatus) -> Self {
        match s {
            StoreStatus::Created => UpsertStatus::Created,
            StoreStatus::Updated => UpsertStatus::Updated,
            StoreStatus::Unchanged => UpsertStatus::Unchanged,
            StoreStatus::Failed => UpsertStatus::Failed,
        }
    }
}

/// Why an item of an upsert failed.
#[derive(SimpleObject, Clone, Debug)]
pub struct UpsertError {
    /// The code the item would have got as a mutation of its own (`BAD_USER_INPUT`,
    /// `CONFLICT`, `FORBIDDEN`, `NOT_FOUND`), or `ROLLED_BACK`: the item was fine, but another
    /// item of the atomic call failed, so nothing was written.
    pub code: String,
    /// What went wrong, for a person.
    pub message: String,
    /// The input field at fault, when there is one.
    pub field: Option<String>,
}

impl From<ItemError> for UpsertError {
    fn from(e: ItemError) -> Self {
        UpsertError { code: e.code.to_owned(), message: e.message, field: e.field }
    }
}

/// One contact of `upsertContacts`. On an update, an omitted field stays as it is and `null`
/// clears a name; `emails` / `phones`, when given, replace the whole list. On a create, omitted
/// fields are empty.
#[derive(InputObject)]
pub struct UpsertContactInput {
    /// The contact's id in the call's source system (1 to 200 characters).
    pub external_id: String,
    /// Person or company (a contact's kind cannot change).
    pub kind: ContactKind,
    /// A person's first name (`null` clears it).
    pub first_name: MaybeUndefined<String>,
    /// A person's last name (`null` clears it).
    pub last_name: MaybeUndefined<String>,
    /// A company's name.
    pub company_name: MaybeUndefined<String>,
    /// All e-mail addresses, in order, replacing the list.
    pub emails: Option<Vec<EmailInput>>,
    /// All phone numbers, in order, replacing the list.
    pub phones: Option<Vec<PhoneInput>>,
}

/// The input of `upsertContacts`.
#[derive(InputObject)]
pub struct UpsertContactsInput {
    /// Where contacts that do not exist yet are created (needs WRITE there). An unknown or
    /// hidden book is `NOT_FOUND` for the whole call.
    pub address_book_id: ID,
    /// The source system the external ids belong to (`erp`).
    pub system: String,
    /// One to 1,000 contacts, each external id at most once.
    pub contacts: Vec<UpsertContactInput>,
    /// `true` (default): one transaction — if any item fails, none is written. `false`: each item
    /// is its own transaction, and the good ones are written.
    #[graphql(default = true)]
    pub atomic: bool,
}

/// One item's outcome of `upsertContacts`, in input order.
#[derive(SimpleObject)]
pub struct UpsertContactResult {
    /// The item's position in the input (from 0).
    pub index: i32,
    /// The item's external id, as given.
    pub external_id: String,
    /// What the call did with the item.
    pub status: UpsertStatus,
    /// The contact after the call (also when `UNCHANGED`); `null` when the item failed.
    pub contact: Option<Contact>,
    /// Why the item failed (`null` unless `FAILED`).
    pub error: Option<UpsertError>,
}

/// The result of `upsertContacts`.
#[derive(SimpleObject)]
pub struct UpsertContactsPayload {
    /// Whether the results were written: `false` when an atomic call had a failing item.
    pub committed: bool,
    /// Items `CREATED`.
    pub created: i32,
    /// Items `UPDATED`.
    pub updated: i32,
    /// Items `UNCHANGED`.
    pub unchanged: i32,
    /// Items `FAILED` (in an atomic call with a failure: all of them).
    pub failed: i32,
    /// One result per item, in input order.
    pub results: Vec<UpsertContactResult>,
}

/// One product of `upsertProducts`. Matched by external id, else by SKU (the first sync of an
/// existing catalogue adopts its products), else created — which needs `name`, `listPrice` and
/// `currency`. On an update, an omitted field stays as it is; `active: false` takes a product
/// out of pricing and ordering.
#[derive(InputObject)]
pub struct UpsertProductInput {
    /// The product's id in the call's source system.
    pub external_id: String,
    /// The product's SKU (it cannot change for a product matched by external id).
    pub sku: String,
    /// The product's name (1 to 200 characters).
    pub name: Option<String>,
    /// The price when no price list applies, per unit, in `currency`.
    pub list_price: Option<Dec>,
    /// ISO 4217 code of the list price (`EUR`).
    pub currency: Option<String>,
    /// Whether the product can be priced and ordered (a new product: `true` when omitted).
    pub active: Option<bool>,
}

/// The input of `upsertProducts`.
#[derive(InputObject)]
pub struct UpsertProductsInput {
    /// The source system the external ids belong to (`erp`).
    pub system: String,
    /// One to 1,000 products, each external id and SKU at most once.
    pub products: Vec<UpsertProductInput>,
    /// `true` (default): one transaction — if any item fails, none is written. `false`: each item
    /// is its own transaction.
    #[graphql(default = true)]
    pub atomic: bool,
}

/// One item's outcome of `upsertProducts`.
#[derive(SimpleObject)]
pub struct UpsertProductResult {
    /// The item's position in the input (from 0).
    pub index: i32,
    /// The item's external id, as given.
    pub external_id: String,
    /// What the call did with the item.
    pub status: UpsertStatus,
    /// The product after the call; `null` when the item failed.
    pub product: Option<Product>,
    /// Why the item failed (`null` unless `FAILED`).
    pub error: Option<UpsertError>,
}

/// The result of `upsertProducts`.
#[derive(SimpleObject)]
pub struct UpsertProductsPayload {
    /// Whether the results were written: `false` when an atomic call had a failing item.
    pub committed: bool,
    /// Items `CREATED`.
    pub created: i32,
    /// Items `UPDATED`.
    pub updated: i32,
    /// Items `UNCHANGED`.
    pub unchanged: i32,
    /// Items `FAILED`.
    pub failed: i32,
    /// One result per item, in input order.
    pub results: Vec<UpsertProductResult>,
}

/// The input of `setGroupMembersByExternalId`.
#[derive(InputObject)]
pub struct SetGroupMembersByExternalIdInput {
    /// The group (needs WRITE on its home book).
    pub group_id: ID,
    /// The source system of the ids.
    pub system: String,
    /// The complete membership, as external ids of contacts (up to 10,000).
    pub external_ids: Vec<String>,
    /// Retrying with the same key returns the first answer and changes nothing (keys live a
    /// day, per user).
    pub idempotency_key: Option<String>,
}

/// The result of `setGroupMembersByExternalId`: the diff that was applied.
#[derive(SimpleObject)]
pub struct SetGroupMembersPayload {
    /// Listed contacts that joined.
    pub added: i32,
    /// Members you can see that were not listed, and left.
    pub removed: i32,
    /// Listed contacts that were members already.
    pub unchanged: i32,
    /// External ids no contact you can see holds (unknown and hidden look the same).
    pub not_found: Vec<String>,
    /// Listed contacts that could not join: erased, or on the suppression list of a public group.
    pub suppressed: Vec<ID>,
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn results<T, U>(r: UpsertReport<T>, make: impl Fn(UpsertOutcome<T>) -> U) -> (bool, [i32; 4], Vec<U>) {
    let counts = [
        count(r.count(StoreStatus::Created)),
        count(r.count(StoreStatus::Updated)),
        count(r.count(StoreStatus::Unchanged)),
        count(r.count(StoreStatus::Failed)),
    ];
    (r.committed, counts, r.results.into_iter().map(make).collect())
}

fn channels(v: Option<Vec<EmailInput>>) -> Option<Vec<(String, Option<String>)>> {
    v.map(|l| l.into_iter().map(|e| (e.address, e.label)).collect())
}

fn phones(v: Option<Vec<PhoneInput>>) -> Option<Vec<(String, Option<String>)>> {
    v.map(|l| l.into_iter().map(|p| (p.number, p.label)).collect())
}

#[derive(Default)]
pub struct SyncMutation;

#[Object]
impl SyncMutation {
    /// Creates or updates up to 1,000 contacts by their external id in one source system: the
    /// ERP's customer sync. Each item reports `CREATED`, `UPDATED`, `UNCHANGED` or `FAILED` (with
    /// the code); running the same input again reports every item `UNCHANGED` and emits no event.
    /// An external id held by a contact you cannot see fails its item with `CONFLICT` ("taken"),
    /// the answer `setExternalId` gives, without saying which contact holds it.
    async fn upsert_contacts(
        &self,
        ctx: &Context<'_>,
        input: UpsertContactsInput,
    ) -> async_graphql::Result<UpsertContactsPayload> {
        let book = AddressBookId(ids::decode(AddressBookId::TAG, &input.address_book_id)?);
        let items = input
            .contacts
            .into_iter()
            .map(|c| ContactUpsert {
                external_id: c.external_id,
                kind: c.kind.into(),
                first_name: patch(c.first_name),
                last_name: patch(c.last_name),
                company_name: patch(c.company_name),
                emails: channels(c.emails),
                phones: phones(c.phones),
            })
            .collect();
        let report =
            data(ctx)?.upsert_contacts(book, &input.system, items, input.atomic).await.map_err(ApiError::from)?;
        let (committed, [created, updated, unchanged, failed], results) = results(report, |o| UpsertContactResult {
            index: count(o.index),
            external_id: o.external_id,
            status: o.status.into(),
            contact: o.record.map(Contact),
            error: o.error.map(Into::into),
        });
        Ok(UpsertContactsPayload { committed, created, updated, unchanged, failed, results })
    }

    /// Creates or updates up to 1,000 products by external id (admin): the catalogue sync,
    /// including list prices and deactivation. Same rules as `upsertContacts`.
    async fn upsert_products(
        &self,
        ctx: &Context<'_>,
        input: UpsertProductsInput,
    ) -> async_graphql::Result<UpsertProductsPayload> {
        let items = input
            .products
            .into_iter()
            .map(|p| ProductUpsert {
                external_id: p.external_id,
                sku: p.sku,
                name: p.name,
                list_price: p.list_price.map(|d| d.0),
                currency: p.currency,
                active: p.active,
            })
            .collect();
        let report = data(ctx)?.upsert_products(&input.system, items, input.atomic).await.map_err(ApiError::from)?;
        let (committed, [created, updated, unchanged, failed], results) = results(report, |o| UpsertProductResult {
            index: count(o.index),
            external_id: o.external_id,
            status: o.status.into(),
            product: o.record.map(Product),
            error: o.error.map(Into::into),
        });
        Ok(UpsertProductsPayload { committed, created, updated, unchanged, failed, results })
    }

    /// Makes a group's membership exactly the listed contacts (by external id): listed contacts
    /// join, members you can see that are not listed leave — both with the `IMPORT` source in
    /// the membership history. Members you cannot see are untouched. The same list again
    /// changes nothing and emits nothing.
    async fn set_group_members_by_external_id(
        &self,
        ctx: &Context<'_>,
        input: SetGroupMembersByExternalIdInput,
    ) -> async_graphql::Result<SetGroupMembersPayload> {
        let group = GroupId(ids::decode(GroupId::TAG, &input.group_id)?);
        let o = data(ctx)?
            .set_group_members_by_external_id(
                group,
                &input.system,
                &input.external_ids,
                input.idempotency_key.as_deref(),
            )
            .await
            .map_err(ApiError::from)?;
        Ok(SetGroupMembersPayload {
            added: count(o.added as usize),
            removed: count(o.removed as usize),
            unchanged: count(o.unchanged as usize),
            not_found: o.not_found,
            suppressed: o.suppressed.into_iter().map(|c| ids::encode(ContactId::TAG, c.0)).collect(),
        })
    }
}

/// The kinds of object the change feed reports.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ChangeType {
    /// A `Contact`.
    Contact,
    /// A `Group`.
    Group,
    /// A `Product`.
    Product,
    /// A `PriceList` (admins only).
    PriceList,
}

impl From<ChangeType> for ChangeKind {
    fn from(t: ChangeType) -> Self {
        match t {
            ChangeType::Contact => ChangeKind::Contact,
            ChangeType::Group => ChangeKind::Group,
            ChangeType::Product => ChangeKind::Product,
            ChangeType::PriceList => ChangeKind::PriceList,
        }
    }
}

impl From<ChangeKind> for ChangeType {
    fn from(k: ChangeKind) -> Self {
        match k {
            ChangeKind::Contact => ChangeType::Contact,
            ChangeKind::Group => ChangeType::Group,
            ChangeKind::Product => ChangeType::Product,
            ChangeKind::PriceList => ChangeType::PriceList,
        }
    }
}

/// What happened to an object, as far as you are concerned.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ChangeOperation {
    /// Created or changed: fetch it by `id` (or `node(id:)`) for its current state.
    Upserted,
    /// Deleted, erased, or moved out of your sight: remove your copy.
    Deleted,
}

/// One object's latest change after the cursor.
#[derive(SimpleObject)]
pub struct Change {
    /// The position of this change in the feed.
    pub cursor: String,
    /// The kind of object.
    #[graphql(name = "type")]
    pub kind: ChangeType,
    /// Changed (read it) or gone (drop your copy).
    pub operation: ChangeOperation,
    /// The object's global id (`Contact`, `Group`, `Product`, `PriceList`).
    pub id: ID,
    /// Its external ids: now, or for a deletion the ones it had (none for an erased contact).
    pub external_ids: Vec<ExternalId>,
    /// When its latest change in this entry was committed.
    pub changed_at: DateTime<Utc>,
}

/// A page of the change feed.
#[derive(SimpleObject)]
pub struct ChangePage {
    /// One entry per object, oldest change first.
    pub changes: Vec<Change>,
    /// Store it and pass it as `since` next time.
    pub cursor: String,
    /// More changes are waiting: ask again right away.
    pub has_more: bool,
}

fn change(c: ChangeRecord) -> Change {
    let tag = match c.kind {
        ChangeKind::Contact => ContactId::TAG,
        ChangeKind::Group => GroupId::TAG,
        ChangeKind::Product => ProductId::TAG,
        ChangeKind::PriceList => PriceListId::TAG,
    };
    Change {
        cursor: c.cursor,
        kind: c.kind.into(),
        operation: match c.operation {
            cohort_store::ChangeOperation::Upserted => ChangeOperation::Upserted,
            cohort_store::ChangeOperation::Deleted => ChangeOperation::Deleted,
        },
        id: ids::encode(tag, c.id),
        external_ids: c.external_ids.into_iter().map(Into::into).collect(),
        changed_at: c.changed_at,
    }
}

#[derive(Default)]
pub struct SyncQuery;

#[Object]
impl SyncQuery {
    /// What changed after `since` among the contacts, groups, products and price lists you may
    /// see — one entry per object (its latest change), oldest first. Call without `since` once:
    /// the answer is empty and its `cursor` is "now"; store it, read the current state with the
    /// regular queries, and from then on ask for changes since the stored cursor. Deleted objects
    /// (and contacts moved to a book you cannot read) come as `DELETED` tombstones with their
    /// external ids. The cursor never skips a change that commits late.
    async fn changes(
        &self,
        ctx: &Context<'_>,
        since: Option<String>,
        #[graphql(desc = "Only these kinds of object (all when omitted or empty).")] types: Option<Vec<ChangeType>>,
        #[graphql(desc = "At most this many entries (1 to 500; 100 when omitted).")] first: Option<i32>,
    ) -> async_graphql::Result<ChangePage> {
        let kinds: Vec<ChangeKind> = types.unwrap_or_default().into_iter().map(Into::into).collect();
        let first = first
            .map(|f| u32::try_from(f).map_err(|_| ApiError::bad_input("first", "must be between 1 and 500")))
            .transpose()?;
        let page = data(ctx)?.changes(since.as_deref(), &kinds, first).await.map_err(ApiError::from)?;
        Ok(ChangePage {
            changes: page.changes.into_iter().map(change).collect(),
            cursor: page.cursor,
            has_more: page.has_more,
        })
    }
}
