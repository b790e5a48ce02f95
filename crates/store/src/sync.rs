//! Integrators' sync (issue 19): contact and product upserts keyed by external id, and the
//! change feed an integrator polls with a stored cursor.
//!
//! - **Upserts** match each item by its external id for the call's source system: a match is
//!   updated in place (only what differs is written), no match is created — contacts in the
//!   call's address book. An item that would change nothing writes nothing and emits nothing, so
//!   a sync job that runs twice leaves no trace the second time. Each write goes through the same
//!   unit-of-work paths as `createContact` / `updateContact` / `createProduct` /
//!   `updateProduct` (permissions, audit, events), never a second write path.
//! - **Atomic or not**: by default a call is one transaction (any failing item rolls back every
//!   item and the answer says which failed and why); with `atomic: false` each item is its own
//!   transaction and the good ones stay written.
//! - **Races**: on PostgreSQL, concurrent upserts of the same external ids take turns on a
//!   transaction-scoped advisory lock per (tenant, kind, system, id), taken in one statement in a
//!   fixed order (no deadlock between two batches), so the second finds what the first created
//!   and updates it instead of creating a twin. SQLite serialises writers already.
//! - **Changes** read the outbox: every committed event about a contact, group, product or price
//!   list after the cursor, folded to one entry per entity, and filtered to what the viewer may
//!   see *now* (a deleted or no-longer-visible contact of a book the viewer reads is a tombstone:
//!   its id and the external ids it had). Event ids grow with commit order per tenant (the unit
//!   of work takes a tenant lock for its events, see `UnitOfWork::commit`), so a cursor never
//!   skips an event that commits late.

use crate::access::handle::DataHandle;
use crate::contacts::contact::{ContactInput, ContactPatch, ContactRecord, visible_contacts};
use crate::core::page::{decode_cursor, encode_cursor};
use crate::core::sql::Sql;
use crate::core::uow::UnitOfWork;
use crate::core::visibility::book_level;
use crate::entities::{contact, event, product};
use crate::error::{StoreError, StoreResult};
use crate::events::{EventType, Subject, SubjectKind};
use crate::external::{ExternalIdRecord, ExternalTarget, ParsedExternalId};
use crate::pricing::{ProductInput, ProductPatch, ProductRecord};
use chrono::{DateTime, Utc};
use cohort_domain::AccessLevel;
use cohort_domain::contact::{ContactFields, ContactKind, ValidContact};
use cohort_domain::external::{ExternalKey, ExternalKind, ExternalSystem};
use cohort_domain::ids::{AddressBookId, ContactId, ProductId};
use rust_decimal::Decimal;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Most items one upsert call may carry.
pub const MAX_UPSERT_ITEMS: usize = 1_000;

/// What an upsert did with one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsertStatus {
    Created,
    Updated,
    Unchanged,
    Failed,
}

/// Why an item failed: the same code and message the item would have got as a mutation of its
/// own, and the input field when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemError {
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

/// The code of an item that was valid but not written because another item of its atomic call
/// failed.
pub const ROLLED_BACK: &str = "ROLLED_BACK";

impl ItemError {
    fn rolled_back() -> ItemError {
        ItemError {
            code: ROLLED_BACK,
            message: "not written: another item of this atomic call failed, so none was written".into(),
            field: None,
        }
    }

    fn of(e: &StoreError) -> ItemError {
        let (code, message, field) = e.client_view();
        ItemError { code, message, field }
    }
}

/// One item's outcome.
#[derive(Debug, Clone)]
pub struct UpsertOutcome<T> {
    pub index: usize,
    pub external_id: String,
    pub status: UpsertStatus,
    /// The entity as it is after the call (also for `Unchanged`); `None` when the item failed or
    /// was rolled back.
    pub record: Option<T>,
    pub error: Option<ItemError>,
}

/// The answer of an upsert call.
#[derive(Debug, Clone)]
pub struct UpsertReport<T> {
    /// Whether what the results describe was written (an atomic call with a failed item writes
    /// nothing).
    pub committed: bool,
    pub results: Vec<UpsertOutcome<T>>,
}

impl<T> UpsertReport<T> {
    pub fn count(&self, s: UpsertStatus) -> usize {
        self.results.iter().filter(|r| r.status == s).count()
    }
}

/// One contact of `upsertContacts`. `None` leaves a field as it is on an update (and empty on a
/// create); `Some(None)` clears a name; `Some(list)` replaces the e-mails or phones.
#[derive(Debug, Clone)]
pub struct ContactUpsert {
    pub external_id: String,
    pub kind: ContactKind,
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
    pub company_name: Option<Option<String>>,
    pub emails: Option<Vec<(String, Option<String>)>>,
    pub phones: Option<Vec<(String, Option<String>)>>,
}

/// One product of `upsertProducts`: matched by external id, else by SKU (a catalogue synced for
/// the first time adopts the products it already has), else created. `None` leaves a field
/// unchanged on an update; a create needs name, list price and currency.
#[derive(Debug, Clone)]
pub struct ProductUpsert {
    pub external_id: String,
    pub sku: String,
    pub name: Option<String>,
    pub list_price: Option<Decimal>,
    pub currency: Option<String>,
    pub active: Option<bool>,
}

/// The 64-bit advisory-lock key of one external id.
fn external_lock_key(tenant: Uuid, kind: ExternalKind, system: &str, key: &str) -> i64 {
    let fp = crate::core::uow::fingerprint(&["external-id", &tenant.to_string(), kind.as_str(), system, key]);
    u64::from_str_radix(&fp, 16).unwrap_or_default() as i64
}

/// Validates the call-level parts: the system, the count, each external id, duplicates. Returns
/// the parsed keys (None for an item that failed, with its error in `failed`).
/// A call's parsed keys: the system, each item's key (`None` when it failed), and the failures
/// by item index.
type ParsedKeys = (ExternalSystem, Vec<Option<ExternalKey>>, HashMap<usize, ItemError>);

fn parse_keys(system: &str, ids: &[&str]) -> StoreResult<ParsedKeys> {
    let system = ExternalSystem::parse("system", system)?;
    if ids.len() > MAX_UPSERT_ITEMS {
        return Err(StoreError::invalid("items", format!("at most {MAX_UPSERT_ITEMS} items per call")));
    }
    let mut seen = HashSet::new();
    let mut keys = Vec::with_capacity(ids.len());
    let mut failed = HashMap::new();
    for (i, raw) in ids.iter().enumerate() {
        match ExternalKey::parse("externalId", raw) {
            Ok(k) if seen.insert(k.as_str().to_owned()) => keys.push(Some(k)),
            Ok(_) => {
                failed.insert(
                    i,
                    ItemError {
                        code: "BAD_USER_INPUT",
                        message: "this external id appears more than once in the call".into(),
                        field: Some("externalId".into()),
                    },
                );
                keys.push(None);
            }
            Err(e) => {
                failed.insert(i, ItemError::of(&StoreError::from(e)));
                keys.push(None);
            }
        }
    }
    Ok((system, keys, failed))
}

/// The entities holding some of `keys` for (kind, system), inside `w`.
async fn holders(
    w: &UnitOfWork,
    kind: ExternalKind,
    system: &ExternalSystem,
    keys: &[&str],
) -> StoreResult<HashMap<String, Uuid>> {
    let v = w.viewer();
    let mut out = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(1000) {
        let mut q = Sql::new(w.dialect());
        q.push("SELECT external_id, entity_id FROM external_ids WHERE tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND kind = ")
            .bind(kind.as_str())
            .push(" AND system = ")
            .bind(system.as_str().to_owned())
            .push(" AND external_id IN ")
            .bind_list(chunk.iter().map(|k| (*k).to_owned()));
        for r in w.tx().query_all_raw(q.build()).await? {
            out.insert(r.try_get("", "external_id")?, r.try_get("", "entity_id")?);
        }
    }
    Ok(out)
}

/// Takes the advisory locks of `keys` in a fixed order, in one statement (PostgreSQL).
async fn lock_external_ids(
    w: &UnitOfWork,
    kind: ExternalKind,
    system: &ExternalSystem,
    keys: &[&str],
) -> StoreResult<()> {
    if w.dialect().advisory_xact_lock().is_none() || keys.is_empty() {
        return Ok(());
    }
    let t = w.viewer().tenant_id.0;
    let mut lock_keys: Vec<i64> = keys.iter().map(|k| external_lock_key(t, kind, system.as_str(), k)).collect();
    lock_keys.sort_unstable();
    lock_keys.dedup();
    let list = lock_keys.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    // The sorted subquery fixes the order the locks are taken in; the keys are integers we made.
    let sql = format!(
        "SELECT count(pg_advisory_xact_lock(k)) AS n FROM (SELECT unnest(ARRAY[{list}]::bigint[]) AS k ORDER BY 1) s"
    );
    w.tx().execute_unprepared(&sql).await?;
    Ok(())
}

/// How an item's wanted state compares with the contact it matched.
fn contact_unchanged(
    cur: &ContactRecord,
    channels: &crate::contacts::contact::ContactChannels,
    valid: &ValidContact,
) -> bool {
    cur.first_name == valid.first_name
        && cur.last_name == valid.last_name
        && cur.company_name == valid.company_name
        && channels.emails.len() == valid.emails.len()
        && channels.emails.iter().zip(&valid.emails).all(|(a, (e, l))| a.address == e.as_str() && &a.label == l)
        && channels.phones.len() == valid.phones.len()
        && channels.phones.iter().zip(&valid.phones).all(|(a, (p, l))| a.number == p.as_str() && &a.label == l)
}

/// What one transaction of an upsert did: each item's status and record, or the index of the
/// item that stopped it and why.
type Batch<T> = Result<Vec<(UpsertStatus, T)>, (usize, StoreError)>;

/// One item's outcome before it is numbered: what was done, or why not.
type ItemOutcome<T> = Result<(UpsertStatus, T), ItemError>;

/// The transaction rules of both upserts. `failed` holds the items refused before any database
/// work; `run` does the items it is given in one transaction (begin to commit).
/// - Atomic: any refused item means nothing is written (the others answer `ROLLED_BACK`);
///   otherwise one `run` over all, and an item failing in it rolls back the call the same way.
/// - Not atomic: one `run` per item; a failing item is reported and the next one goes on.
///
/// A database or corrupt-data error is never an item's answer: the call fails (`INTERNAL`, the
/// cause logged).
async fn drive<T, F, Fut>(
    external_ids: Vec<String>,
    mut failed: HashMap<usize, ItemError>,
    atomic: bool,
    run: F,
) -> StoreResult<UpsertReport<T>>
where
    F: Fn(Vec<usize>) -> Fut,
    Fut: std::future::Future<Output = Batch<T>>,
{
    let n = external_ids.len();
    let internal = |e: &StoreError| matches!(e, StoreError::Database(_) | StoreError::Corrupt { .. });
    let (committed, outcomes): (bool, Vec<ItemOutcome<T>>) = if atomic {
        if !failed.is_empty() {
            (false, (0..n).map(|i| Err(failed.remove(&i).unwrap_or_else(ItemError::rolled_back))).collect())
        } else if n == 0 {
            (true, vec![])
        } else {
            match run((0..n).collect()).await {
                Ok(done) => (true, done.into_iter().map(Ok).collect()),
                Err((_, e)) if internal(&e) => return Err(e),
                // Nothing of the call is written (its transaction was dropped, i.e. rolled
                // back): the item that failed says why, the others that they were not written.
                Err((at, e)) => {
                    let err = ItemError::of(&e);
                    (false, (0..n).map(|i| Err(if i == at { err.clone() } else { ItemError::rolled_back() })).collect())
                }
            }
        }
    } else {
        let mut outcomes = Vec::with_capacity(n);
        for i in 0..n {
            if let Some(e) = failed.remove(&i) {
                outcomes.push(Err(e));
                continue;
            }
            match run(vec![i]).await {
                Ok(mut done) => outcomes.push(Ok(done.remove(0))),
                Err((_, e)) if internal(&e) => return Err(e),
                Err((_, e)) => outcomes.push(Err(ItemError::of(&e))),
            }
        }
        (true, outcomes)
    };
    let results = outcomes
        .into_iter()
        .zip(external_ids)
        .enumerate()
        .map(|(index, (o, external_id))| match o {
            Ok((status, rec)) => UpsertOutcome { index, external_id, status, record: Some(rec), error: None },
            Err(e) => UpsertOutcome { index, external_id, status: UpsertStatus::Failed, record: None, error: Some(e) },
        })
        .collect();
    Ok(UpsertReport { committed, results })
}

impl DataHandle {
    /// `upsertContacts`: creates or updates up to [`MAX_UPSERT_ITEMS`] contacts keyed by their
    /// external id for `system`. New contacts go to `book`, where the viewer needs WRITE — an
    /// unknown or unreadable book is `NotFound` for the whole call, before any external id is
    /// looked at, so the answer never says whether an id exists elsewhere. Matched contacts are
    /// updated where they are (WRITE on their book). An id held by a contact the viewer cannot
    /// see fails its item with the same "taken" answer `setExternalId` gives.
    pub async fn upsert_contacts(
        &self,
        book: AddressBookId,
        system: &str,
        items: Vec<ContactUpsert>,
        atomic: bool,
    ) -> StoreResult<UpsertReport<ContactRecord>> {
        let ids: Vec<&str> = items.iter().map(|i| i.external_id.as_str()).collect();
        let (system, keys, mut failed) = parse_keys(system, &ids)?;
        // What can be checked without the database is checked for every item first, so an
        // atomic call reports all its bad items at once.
        for (i, it) in items.iter().enumerate() {
            if failed.contains_key(&i) {
                continue;
            }
            let fields = ContactFields {
                first_name: it.first_name.clone().flatten(),
                last_name: it.last_name.clone().flatten(),
                company_name: it.company_name.clone().flatten(),
                emails: it.emails.clone().unwrap_or_default(),
                phones: it.phones.clone().unwrap_or_default(),
            };
            // A partial item may be valid only together with the stored fields it leaves as they
            // are; the full check happens once those are known.
            let complete = it.first_name.is_some()
                && it.last_name.is_some()
                && it.company_name.is_some()
                && it.emails.is_some()
                && it.phones.is_some();
            if let Err(e) = ValidContact::validate(it.kind, &fields) {
                let e = StoreError::from(e);
                if complete || !matches!(e, StoreError::Invalid(_)) || channel_error(&e) {
                    failed.insert(i, ItemError::of(&e));
                }
            }
        }
        self.check_upsert_book(book).await?;
        let external_ids: Vec<String> = items.iter().map(|i| i.external_id.clone()).collect();
        let (system, items, keys) = (&system, &items, &keys);
        drive(external_ids, failed, atomic, |which: Vec<usize>| async move {
            let first = which.first().copied().unwrap_or_default();
            let w = self.begin().await.map_err(|e| (first, e))?;
            let done = self.upsert_contacts_in(&w, book, system, items, keys, &which).await?;
            w.commit().await.map_err(|e| (first, e))?;
            Ok(done)
        })
        .await
    }

    /// The call's address book: visible (else `NotFound`) and writable (else `Forbidden`).
    async fn check_upsert_book(&self, book: AddressBookId) -> StoreResult<()> {
        let v = self.viewer();
        match book_level(&self.db, v, book).await? {
            None => Err(StoreError::NotFound),
            Some(l) if l < AccessLevel::Write => {
                Err(StoreError::forbidden("this needs WRITE access on the address book"))
            }
            Some(_) => Ok(()),
        }
    }

    /// The items `which` of an upsert inside `w`; the first failure stops it with the item's index.
    async fn upsert_contacts_in(
        &self,
        w: &UnitOfWork,
        book: AddressBookId,
        system: &ExternalSystem,
        items: &[ContactUpsert],
        keys: &[Option<ExternalKey>],
        which: &[usize],
    ) -> Batch<ContactRecord> {
        let first = which.first().copied().unwrap_or_default();
        let v = self.viewer();
        let wanted: Vec<&str> = which.iter().filter_map(|i| keys[*i].as_ref().map(|k| k.as_str())).collect();
        lock_external_ids(w, ExternalKind::Contact, system, &wanted).await.map_err(|e| (first, e))?;
        let held = holders(w, ExternalKind::Contact, system, &wanted).await.map_err(|e| (first, e))?;
        let held_ids: Vec<Uuid> = held.values().copied().collect();
        let mut current: HashMap<Uuid, ContactRecord> = HashMap::new();
        for chunk in held_ids.chunks(1000) {
            let rows = visible_contacts(v)
                .filter(contact::Column::Id.is_in(chunk.iter().copied()))
                .all(w.tx())
                .await
                .map_err(|e| (first, e.into()))?;
            for m in rows {
                let id = m.id;
                current.insert(id, ContactRecord::try_from(m).map_err(|e| (first, e))?);
            }
        }
        // An upsert is a write: a matched contact needs WRITE on its book, also when the item
        // turns out unchanged (a READ-only viewer gets FORBIDDEN, as from `updateContact`).
        let books: Vec<Uuid> = current.values().map(|c| c.address_book_id.0).collect();
        let levels = crate::core::visibility::book_levels(w.tx(), v, &books).await.map_err(|e| (first, e))?;
        let visible_ids: Vec<ContactId> = current.keys().map(|i| ContactId(*i)).collect();
        let mut channels =
            crate::contacts::contact::channels_on(w.tx(), v, &visible_ids).await.map_err(|e| (first, e))?;
        let mut out = Vec::with_capacity(which.len());
        for &i in which {
            let it = &items[i];
            let Some(key) = keys[i].as_ref() else {
                return Err((i, StoreError::invalid("externalId", "invalid external id")));
            };
            let res = match held.get(key.as_str()) {
                Some(holder) => match current.get(holder) {
                    // Taken by a contact this viewer cannot see: the answer `setExternalId` gives.
                    None => Err(StoreError::Conflict(crate::external::TAKEN.into())),
                    Some(cur) if levels.get(&cur.address_book_id.0).is_none_or(|l| *l < AccessLevel::Write) => {
                        Err(StoreError::forbidden("this needs WRITE access on the contact's address book"))
                    }
                    Some(cur) => {
                        let ch = channels.remove(&cur.id).unwrap_or_default();
                        self.upsert_existing_contact(w, cur, &ch, it).await
                    }
                },
                None => self.upsert_new_contact(w, book, system, key, it).await,
            };
            out.push(res.map_err(|e| (i, e))?);
        }
        Ok(out)
    }

    async fn upsert_existing_contact(
        &self,
        w: &UnitOfWork,
        cur: &ContactRecord,
        ch: &crate::contacts::contact::ContactChannels,
        it: &ContactUpsert,
    ) -> StoreResult<(UpsertStatus, ContactRecord)> {
        if cur.kind != it.kind {
            return Err(StoreError::invalid("kind", "a contact's kind cannot change"));
        }
        let fields = ContactFields {
            first_name: it.first_name.clone().unwrap_or(cur.first_name.clone()),
            last_name: it.last_name.clone().unwrap_or(cur.last_name.clone()),
            company_name: it.company_name.clone().unwrap_or(cur.company_name.clone()),
            emails: it
                .emails
                .clone()
                .unwrap_or_else(|| ch.emails.iter().map(|e| (e.address.clone(), e.label.clone())).collect()),
            phones: it
                .phones
                .clone()
                .unwrap_or_else(|| ch.phones.iter().map(|p| (p.number.clone(), p.label.clone())).collect()),
        };
        let valid = ValidContact::validate(it.kind, &fields)?;
        if contact_unchanged(cur, ch, &valid) {
            // Nothing to write, nothing to record (the caller checked WRITE already).
            return Ok((UpsertStatus::Unchanged, cur.clone()));
        }
        let patch = ContactPatch {
            first_name: Some(valid.first_name.clone()),
            last_name: Some(valid.last_name.clone()),
            company_name: Some(valid.company_name.clone()),
            emails: Some(fields.emails.clone()),
            phones: Some(fields.phones.clone()),
            ..Default::default()
        };
        let m = self.update_contact_in(w, cur.id, patch).await?;
        Ok((UpsertStatus::Updated, m.try_into()?))
    }

    async fn upsert_new_contact(
        &self,
        w: &UnitOfWork,
        book: AddressBookId,
        system: &ExternalSystem,
        key: &ExternalKey,
        it: &ContactUpsert,
    ) -> StoreResult<(UpsertStatus, ContactRecord)> {
        let input = ContactInput {
            address_book_id: book,
            kind: it.kind,
            fields: ContactFields {
                first_name: it.first_name.clone().flatten(),
                last_name: it.last_name.clone().flatten(),
                company_name: it.company_name.clone().flatten(),
                emails: it.emails.clone().unwrap_or_default(),
                phones: it.phones.clone().unwrap_or_default(),
            },
            company_id: None,
            business_status: None,
        };
        let m = self.create_contact_in(w, input).await?;
        let ext = ParsedExternalId::new(system.clone(), key.clone());
        // The batch looked the id up under its lock a moment ago: no second lookup per contact.
        crate::external::write_new_free(w, ExternalTarget::Contact(ContactId(m.id)), std::slice::from_ref(&ext))
            .await?;
        Ok((UpsertStatus::Created, m.try_into()?))
    }
}

/// Whether a validation error concerns e-mails or phones (checked per entry, so valid or not
/// whatever the stored fields are).
fn channel_error(e: &StoreError) -> bool {
    matches!(e, StoreError::Invalid(d) if d.field().starts_with("emails") || d.field().starts_with("phones"))
}

impl DataHandle {
    /// `upsertProducts` (admin): catalogue sync keyed by external id, then by SKU; see
    /// [`ProductUpsert`]. Same transaction rules as [`DataHandle::upsert_contacts`].
    pub async fn upsert_products(
        &self,
        system: &str,
        items: Vec<ProductUpsert>,
        atomic: bool,
    ) -> StoreResult<UpsertReport<ProductRecord>> {
        let v = self.viewer();
        if !v.is_admin() {
            return Err(StoreError::forbidden("managing the catalogue is for admins"));
        }
        let ids: Vec<&str> = items.iter().map(|i| i.external_id.as_str()).collect();
        let (system, keys, mut failed) = parse_keys(system, &ids)?;
        let mut seen_skus = HashSet::new();
        for (i, it) in items.iter().enumerate() {
            if !failed.contains_key(&i) && !seen_skus.insert(it.sku.trim().to_owned()) {
                failed.insert(
                    i,
                    ItemError {
                        code: "BAD_USER_INPUT",
                        message: "this SKU appears more than once in the call".into(),
                        field: Some("sku".into()),
                    },
                );
            }
        }
        let external_ids: Vec<String> = items.iter().map(|i| i.external_id.clone()).collect();
        let (system, items, keys) = (&system, &items, &keys);
        drive(external_ids, failed, atomic, |which: Vec<usize>| async move {
            let first = which.first().copied().unwrap_or_default();
            let w = self.begin().await.map_err(|e| (first, e))?;
            let wanted: Vec<&str> = which.iter().filter_map(|i| keys[*i].as_ref().map(|k| k.as_str())).collect();
            lock_external_ids(&w, ExternalKind::Product, system, &wanted).await.map_err(|e| (first, e))?;
            let held = holders(&w, ExternalKind::Product, system, &wanted).await.map_err(|e| (first, e))?;
            let mut out = Vec::with_capacity(which.len());
            for &i in &which {
                let Some(key) = keys[i].as_ref() else {
                    return Err((i, StoreError::invalid("externalId", "invalid external id")));
                };
                let r = self.upsert_one_product(&w, system, key, held.get(key.as_str()).copied(), &items[i]).await;
                out.push(r.map_err(|e| (i, e))?);
            }
            w.commit().await.map_err(|e| (first, e))?;
            Ok(out)
        })
        .await
    }

    async fn upsert_one_product(
        &self,
        w: &UnitOfWork,
        system: &ExternalSystem,
        key: &ExternalKey,
        holder: Option<Uuid>,
        it: &ProductUpsert,
    ) -> StoreResult<(UpsertStatus, ProductRecord)> {
        let v = self.viewer();
        let sku = cohort_domain::text::Key::parse("sku", &it.sku, cohort_domain::text::MAX_SKU_CHARS)?;
        let by_sku = match holder {
            Some(_) => None,
            None => product::Entity::find()
                .filter(product::Column::TenantId.eq(v.tenant_id.0))
                .filter(product::Column::Sku.eq(sku.as_str()))
                .one(w.tx())
                .await?
                .map(|m| m.id),
        };
        let ext = ParsedExternalId::new(system.clone(), key.clone());
        match holder.or(by_sku) {
            Some(id) => {
                let cur = product::Entity::find()
                    .filter(product::Column::TenantId.eq(v.tenant_id.0))
                    .filter(product::Column::Id.eq(id))
                    .one(w.tx())
                    .await?
                    .ok_or(StoreError::NotFound)?;
                if holder.is_some() && cur.sku != sku.as_str() {
                    return Err(StoreError::invalid("sku", "a product's SKU cannot change"));
                }
                if by_sku.is_some() {
                    // Adopted by SKU: this product gets the id; if it has another id for this
                    // system, it is another product of the source system.
                    crate::external::write_new(w, ExternalTarget::Product(ProductId(id)), std::slice::from_ref(&ext))
                        .await?;
                }
                let patch = ProductPatch {
                    name: it.name.clone(),
                    list_price: it.list_price,
                    currency: it.currency.clone(),
                    active: it.active,
                };
                let cur_rec = crate::pricing::product_record(cur)?;
                if by_sku.is_none() && self.product_patch_is_noop(&cur_rec, &patch)? {
                    return Ok((UpsertStatus::Unchanged, cur_rec));
                }
                let rec = self.update_product_in(w, ProductId(id), patch).await?;
                Ok((UpsertStatus::Updated, rec))
            }
            None => {
                let (Some(name), Some(list_price), Some(currency)) = (&it.name, it.list_price, &it.currency) else {
                    return Err(StoreError::invalid("name", "a new product needs name, listPrice and currency"));
                };
                let input = ProductInput {
                    sku: it.sku.clone(),
                    name: name.clone(),
                    list_price,
                    currency: currency.clone(),
                    active: it.active.unwrap_or(true),
                };
                let rec = self.create_product_in(w, input, std::slice::from_ref(&ext)).await?;
                Ok((UpsertStatus::Created, rec))
            }
        }
    }

    /// Whether applying `p` to `cur` would change nothing (values compared after validation, so
    /// `10` and `10.00` are the same price).
    fn product_patch_is_noop(&self, cur: &ProductRecord, p: &ProductPatch) -> StoreResult<bool> {
        if let Some(n) = &p.name
            && cohort_domain::text::Name::parse("name", n)?.as_str() != cur.name
        {
            return Ok(false);
        }
        if let Some(x) = p.list_price
            && cohort_domain::money::parse_price("listPrice", x)? != cur.list_price
        {
            return Ok(false);
        }
        if let Some(c) = &p.currency
            && cohort_domain::money::Currency::parse(c)? != cur.currency
        {
            return Ok(false);
        }
        Ok(p.active.is_none_or(|a| a == cur.active))
    }
}

// ---------------------------------------------------------------------------------------------
// The change feed.

/// The kinds of entity the change feed reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    Contact,
    Group,
    Product,
    PriceList,
}

/// What happened to the entity, as far as the viewer is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOperation {
    /// Created or changed: read it (by id) for its current state.
    Upserted,
    /// Deleted, erased, or moved out of the viewer's sight: a tombstone.
    Deleted,
}

/// One entry of the feed: the entity's latest change after the cursor.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRecord {
    /// The position of the event this entry was last changed by (resuming from it skips it).
    pub cursor: String,
    pub kind: ChangeKind,
    pub operation: ChangeOperation,
    pub id: Uuid,
    /// For an upsert, the entity's external ids now; for a tombstone, the ones it had.
    pub external_ids: Vec<ExternalIdRecord>,
    pub changed_at: DateTime<Utc>,
}

/// A page of the feed.
#[derive(Debug, Clone)]
pub struct ChangePage {
    pub changes: Vec<ChangeRecord>,
    /// Where the next call starts (the last event this page read, whether it produced an entry
    /// or not). Unchanged when there was nothing new.
    pub cursor: String,
    /// Whether more events were waiting when this page was cut.
    pub has_more: bool,
}

/// Most entries one call returns, and its default.
pub const MAX_CHANGES: u32 = 500;
pub const DEFAULT_CHANGES: u32 = 100;
/// Events read per statement while filling a page, and at most this many statements a call.
const EVENT_BATCH: u64 = 1_000;
const MAX_BATCHES: usize = 10;

const CHANGE_CURSOR: &str = "chg";

fn kind_and_op(t: EventType) -> Option<(ChangeKind, bool)> {
    use EventType as E;
    Some(match t {
        E::ContactCreated | E::ContactUpdated | E::ContactStatusChanged => (ChangeKind::Contact, false),
        E::ContactDeleted | E::ContactErased => (ChangeKind::Contact, true),
        E::GroupCreated | E::GroupUpdated | E::GroupMoved => (ChangeKind::Group, false),
        E::GroupDeleted => (ChangeKind::Group, true),
        E::ProductCreated | E::ProductUpdated => (ChangeKind::Product, false),
        E::PriceListCreated | E::PriceListUpdated | E::PriceListItemsSet => (ChangeKind::PriceList, false),
        _ => return None,
    })
}

fn subject_kind(k: ChangeKind) -> SubjectKind {
    match k {
        ChangeKind::Contact => SubjectKind::Contact,
        ChangeKind::Group => SubjectKind::Group,
        ChangeKind::Product => SubjectKind::Product,
        ChangeKind::PriceList => SubjectKind::PriceList,
    }
}

fn external_kind(k: ChangeKind) -> ExternalKind {
    match k {
        ChangeKind::Contact => ExternalKind::Contact,
        ChangeKind::Group => ExternalKind::Group,
        ChangeKind::Product => ExternalKind::Product,
        ChangeKind::PriceList => ExternalKind::PriceList,
    }
}

/// One event as the feed reads it.
struct FeedEvent {
    id: Uuid,
    kind: ChangeKind,
    deleted: bool,
    entity: Uuid,
    at: DateTime<Utc>,
    /// The books a contact or group was in before and after (tombstone visibility).
    books: Vec<Uuid>,
    /// The external ids a tombstone carries (from the deletion event).
    external_ids: Vec<ExternalIdRecord>,
}

impl DataHandle {
    /// The feed's start: the position after the newest event now (an integrator's first call
    /// without a cursor stores it and reads existing data by the regular queries).
    async fn newest_event(&self) -> StoreResult<Option<Uuid>> {
        let v = self.viewer();
        Ok(event::Entity::find()
            .filter(event::Column::TenantId.eq(v.tenant_id.0))
            .select_only()
            .column(event::Column::Id)
            .order_by_desc(event::Column::Id)
            .limit(1)
            .into_tuple::<Uuid>()
            .one(&self.db)
            .await?)
    }

    /// `changes(since, types, first)`: what changed after `since` among the entities the viewer
    /// may see, one entry per entity (its latest change), oldest first. Without `since` the page
    /// is empty and its cursor is "now".
    pub async fn changes(
        &self,
        since: Option<&str>,
        kinds: &[ChangeKind],
        first: Option<u32>,
    ) -> StoreResult<ChangePage> {
        let first = first.unwrap_or(DEFAULT_CHANGES);
        if first == 0 || first > MAX_CHANGES {
            return Err(StoreError::invalid("first", format!("must be between 1 and {MAX_CHANGES}")));
        }
        let kinds: HashSet<ChangeKind> = if kinds.is_empty() {
            [ChangeKind::Contact, ChangeKind::Group, ChangeKind::Product, ChangeKind::PriceList].into()
        } else {
            kinds.iter().copied().collect()
        };
        let Some(since) = since else {
            let pos = self.newest_event().await?.unwrap_or(Uuid::nil());
            return Ok(ChangePage { changes: vec![], cursor: encode_cursor(&(CHANGE_CURSOR, pos)), has_more: false });
        };
        let (tag, mut pos): (String, Uuid) =
            decode_cursor(since).map_err(|_| StoreError::invalid("since", "not a cursor of the change feed"))?;
        if tag != CHANGE_CURSOR {
            return Err(StoreError::invalid("since", "not a cursor of the change feed"));
        }
        let types: Vec<&'static str> = EventType::ALL
            .iter()
            .filter(|t| kind_and_op(**t).is_some_and(|(k, _)| kinds.contains(&k)))
            .map(|t| t.as_str())
            .collect();
        let mut changes: Vec<ChangeRecord> = Vec::new();
        let mut at: HashMap<(ChangeKind, Uuid), usize> = HashMap::new();
        let mut has_more = false;
        'batches: for batch in 0..MAX_BATCHES {
            let rows = event::Entity::find()
                .filter(event::Column::TenantId.eq(self.viewer().tenant_id.0))
                .filter(event::Column::Id.gt(pos))
                .filter(event::Column::EventType.is_in(types.clone()))
                .order_by_asc(event::Column::Id)
                .limit(EVENT_BATCH)
                .all(&self.db)
                .await?;
            let full = rows.len() as u64 == EVENT_BATCH;
            let events: Vec<FeedEvent> = rows.into_iter().filter_map(feed_event).collect();
            let seen = self.feed_visibility(&events).await?;
            let mut books: Vec<Uuid> = events.iter().flat_map(|e| e.books.iter().copied()).collect();
            books.sort_unstable();
            books.dedup();
            let readable = crate::core::visibility::book_levels(&self.db, self.viewer(), &books).await?;
            for e in events {
                let entry = seen.get(&(e.kind, e.entity));
                let visible_now = entry.is_some();
                // A tombstone, or an upsert of an entity gone or hidden since: the entry is a
                // tombstone if the viewer could see where it was, else nothing.
                let op = if !e.deleted && visible_now {
                    Some(ChangeOperation::Upserted)
                } else if !visible_now
                    && ((e.deleted && self.saw_books(e.kind, &e.books, &readable))
                        || (!e.deleted && self.moved_out_of_sight(&e, &readable)))
                {
                    Some(ChangeOperation::Deleted)
                } else {
                    None
                };
                let Some(op) = op else {
                    pos = e.id;
                    continue;
                };
                let key = (e.kind, e.entity);
                if !at.contains_key(&key) && changes.len() as u32 == first {
                    has_more = true;
                    break 'batches;
                }
                let external_ids = match op {
                    ChangeOperation::Upserted => entry.cloned().unwrap_or_default(),
                    ChangeOperation::Deleted => e.external_ids.clone(),
                };
                let rec = ChangeRecord {
                    cursor: encode_cursor(&(CHANGE_CURSOR, e.id)),
                    kind: e.kind,
                    operation: op,
                    id: e.entity,
                    external_ids,
                    changed_at: e.at,
                };
                match at.get(&key) {
                    Some(&i) => changes[i] = rec,
                    None => {
                        at.insert(key, changes.len());
                        changes.push(rec);
                    }
                }
                pos = e.id;
            }
            if !full {
                break;
            }
            if batch + 1 == MAX_BATCHES {
                has_more = true;
            }
        }
        let contacts: Vec<Uuid> = changes
            .iter()
            .filter(|c| c.kind == ChangeKind::Contact && c.operation == ChangeOperation::Upserted)
            .map(|c| c.id)
            .collect();
        self.saw(contacts.into_iter().map(ContactId));
        Ok(ChangePage { changes, cursor: encode_cursor(&(CHANGE_CURSOR, pos)), has_more })
    }

    /// For the entities of `events` that exist and are visible now: their external ids (an
    /// entity without any has an empty list). Hidden and deleted ones are absent.
    async fn feed_visibility(
        &self,
        events: &[FeedEvent],
    ) -> StoreResult<HashMap<(ChangeKind, Uuid), Vec<ExternalIdRecord>>> {
        let v = self.viewer();
        let mut out = HashMap::new();
        for kind in [ChangeKind::Contact, ChangeKind::Group, ChangeKind::Product, ChangeKind::PriceList] {
            let mut ids: Vec<Uuid> = events.iter().filter(|e| e.kind == kind).map(|e| e.entity).collect();
            ids.sort_unstable();
            ids.dedup();
            if ids.is_empty() || (kind == ChangeKind::PriceList && !v.is_admin()) {
                continue;
            }
            for chunk in ids.chunks(1000) {
                let mut q = Sql::new(v.dialect);
                let (table, visible_by_book) = match kind {
                    ChangeKind::Contact => ("contacts", true),
                    ChangeKind::Group => ("contact_groups", true),
                    ChangeKind::Product => ("products", false),
                    ChangeKind::PriceList => ("price_lists", false),
                };
                q.push("SELECT e.id FROM ").push(table).push(" e WHERE e.tenant_id = ").bind(v.tenant_id.0);
                q.push(" AND e.id IN ").bind_list(chunk.iter().copied());
                if visible_by_book {
                    q.push(" AND ").visible_books(v, "e.address_book_id", AccessLevel::Read);
                }
                if kind == ChangeKind::Contact {
                    // An erased contact stays as a row but is a tombstone for the feed.
                    q.push(" AND e.erased_at IS NULL");
                }
                let found: Vec<Uuid> = self
                    .db
                    .query_all_raw(q.build())
                    .await?
                    .iter()
                    .map(|r| r.try_get::<Uuid>("", "id"))
                    .collect::<Result<_, _>>()?;
                let mut ext = self.external_ids_of(external_kind(kind), &found).await?;
                for id in found {
                    out.insert((kind, id), ext.remove(&id).unwrap_or_default());
                }
            }
        }
        Ok(out)
    }

    /// Whether the viewer reads (now) a book an entity was in — the condition for seeing its
    /// tombstone. Products are everyone's; price lists admins'.
    fn saw_books(&self, kind: ChangeKind, books: &[Uuid], readable: &HashMap<Uuid, AccessLevel>) -> bool {
        match kind {
            ChangeKind::Product => true,
            ChangeKind::PriceList => self.viewer().is_admin(),
            ChangeKind::Contact | ChangeKind::Group => books.iter().any(|b| readable.contains_key(b)),
        }
    }

    /// An update of a contact or group that is hidden now: a tombstone for a viewer who read
    /// the book it was in before the change (it moved out of their sight), and nothing for anyone
    /// else — it never was theirs to know about.
    fn moved_out_of_sight(&self, e: &FeedEvent, readable: &HashMap<Uuid, AccessLevel>) -> bool {
        matches!(e.kind, ChangeKind::Contact | ChangeKind::Group)
            && e.books.len() >= 2
            && self.saw_books(e.kind, &e.books[1..], readable)
    }
}

fn uuid_at(payload: &serde_json::Value, key: &str) -> Option<Uuid> {
    payload.get(key).and_then(|v| v.as_str()).and_then(|s| Uuid::parse_str(s).ok())
}

/// An outbox row as a feed event (`None` for a type the feed does not report).
fn feed_event(m: event::Model) -> Option<FeedEvent> {
    let t = EventType::parse(&m.event_type)?;
    let (kind, deleted) = kind_and_op(t)?;
    let subjects: Vec<Subject> = serde_json::from_str(&m.subjects).ok()?;
    let entity = subjects.iter().find(|s| s.kind == subject_kind(kind))?.id;
    let payload: serde_json::Value = serde_json::from_str(&m.payload).unwrap_or_default();
    // books[0]: where it is after the event; books[1..]: where it was before.
    let mut books = Vec::new();
    if let Some(b) = uuid_at(&payload, "addressBookId") {
        books.push(b);
    }
    if let Some(b) = uuid_at(&payload, "previousAddressBookId")
        && !books.contains(&b)
    {
        books.push(b);
    }
    let external_ids = payload
        .get("externalIds")
        .and_then(|x| serde_json::from_value::<Vec<ExternalIdRecord>>(x.clone()).ok())
        .unwrap_or_default();
    Some(FeedEvent { id: m.id, kind, deleted, entity, at: m.occurred_at, books, external_ids })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reported_event_type_names_its_kind() {
        let reported: Vec<_> = EventType::ALL.iter().filter(|t| kind_and_op(**t).is_some()).collect();
        assert!(reported.len() >= 12);
        assert_eq!(kind_and_op(EventType::ContactDeleted), Some((ChangeKind::Contact, true)));
        assert_eq!(kind_and_op(EventType::GroupMembersAdded), None, "membership is not an entity change");
    }

    #[test]
    fn lock_keys_differ_by_every_part() {
        let t = Uuid::nil();
        let a = external_lock_key(t, ExternalKind::Contact, "erp", "1");
        assert_ne!(a, external_lock_key(t, ExternalKind::Product, "erp", "1"));
        assert_ne!(a, external_lock_key(t, ExternalKind::Contact, "shop", "1"));
        assert_ne!(a, external_lock_key(t, ExternalKind::Contact, "erp", "2"));
    }
}
