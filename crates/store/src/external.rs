//! External ids (issue 19, "Integrators' sync"): the key a source system (`erp`, `shop`) gives
//! one of our contacts, groups, products or price lists — one per entity and system, unique per
//! tenant, kind and system (table `external_ids`, migration `m20261204_000016_external_ids`).
//!
//! - **Writes** need what updating the entity needs: WRITE on a contact's book, MANAGE on a
//!   group's home book, admin for products and price lists. They run in one unit of work with
//!   the audit entry and the entity's `*.updated` event; setting the value an entity already has
//!   (or removing one it does not have) changes nothing and records nothing.
//! - **Lookups** by (system, id) answer only entities the viewer can see, with the visibility
//!   rule in the same statement as the lookup: a hidden entity is answered exactly like an
//!   unknown id, in the same number of statements.
//! - **Loading** the ids of many entities is one statement per kind (the API's DataLoader).

use crate::access::handle::DataHandle;
use crate::access::viewer::Viewer;
use crate::contacts::contact::{ContactRecord, visible_contacts};
use crate::core::dialect::RowLock;
use crate::core::sql::Sql;
use crate::core::uow::{LockedTable, UnitOfWork};
use crate::entities::{contact, group, price_list, product};
use crate::error::{StoreError, StoreResult};
use crate::events::{EventType, Subject, SubjectKind};
use crate::groups::hierarchy::{GroupRecord, visible_groups};
use crate::pricing::{PriceListRecord, ProductRecord};
use chrono::Utc;
use cohort_domain::AccessLevel;
use cohort_domain::external::{ExternalKey, ExternalKind, ExternalSystem};
use cohort_domain::ids::{ContactId, GroupId, PriceListId, ProductId};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Most external ids one create mutation may carry (one per source system).
pub const MAX_EXTERNAL_IDS_PER_ENTITY: usize = 20;

/// The one answer to "this (system, id) is held by another entity of the kind". It says only
/// that the id is *taken*: never which entity holds it (no id, no name, no hint whether the
/// caller could see it), so the answer is the same for a visible and for a hidden holder. That
/// some entity of the tenant holds it is inherent in uniqueness per tenant and cannot be hidden.
pub(crate) const TAKEN: &str = "this external id is already taken for this system";

/// One external id: the source system and the id it uses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ExternalIdRecord {
    pub system: String,
    pub id: String,
}

/// The entity an external id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExternalTarget {
    Contact(ContactId),
    Group(GroupId),
    Product(ProductId),
    PriceList(PriceListId),
}

impl ExternalTarget {
    pub fn kind(self) -> ExternalKind {
        match self {
            ExternalTarget::Contact(_) => ExternalKind::Contact,
            ExternalTarget::Group(_) => ExternalKind::Group,
            ExternalTarget::Product(_) => ExternalKind::Product,
            ExternalTarget::PriceList(_) => ExternalKind::PriceList,
        }
    }

    pub fn uuid(self) -> Uuid {
        match self {
            ExternalTarget::Contact(i) => i.0,
            ExternalTarget::Group(i) => i.0,
            ExternalTarget::Product(i) => i.0,
            ExternalTarget::PriceList(i) => i.0,
        }
    }

    fn subject(self) -> Subject {
        let kind = match self {
            ExternalTarget::Contact(_) => SubjectKind::Contact,
            ExternalTarget::Group(_) => SubjectKind::Group,
            ExternalTarget::Product(_) => SubjectKind::Product,
            ExternalTarget::PriceList(_) => SubjectKind::PriceList,
        };
        Subject::new(kind, self.uuid())
    }
}

/// What the authorisation of a write learned about the entity, for the event payload (the same
/// facts the entity's own update event carries).
enum Authorised {
    Contact { book: Uuid },
    Group { book: Uuid },
    Product { sku: String, active: bool },
    PriceList,
}

/// A validated (system, id) pair.
pub(crate) struct ParsedExternalId {
    system: ExternalSystem,
    key: ExternalKey,
}

impl ParsedExternalId {
    pub(crate) fn new(system: ExternalSystem, key: ExternalKey) -> ParsedExternalId {
        ParsedExternalId { system, key }
    }
}

/// Validates the external ids of a create: each pair, at most one per system, at most
/// [`MAX_EXTERNAL_IDS_PER_ENTITY`].
pub(crate) fn parse_all(ids: &[ExternalIdRecord]) -> StoreResult<Vec<ParsedExternalId>> {
    if ids.len() > MAX_EXTERNAL_IDS_PER_ENTITY {
        return Err(StoreError::invalid(
            "externalIds",
            format!("at most {MAX_EXTERNAL_IDS_PER_ENTITY} external ids (one per source system)"),
        ));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(ids.len());
    for e in ids {
        let p = ParsedExternalId {
            system: ExternalSystem::parse("system", &e.system)?,
            key: ExternalKey::parse("id", &e.id)?,
        };
        if !seen.insert(p.system.as_str().to_owned()) {
            return Err(StoreError::invalid("externalIds", "one external id per source system"));
        }
        out.push(p);
    }
    Ok(out)
}

fn audit_target(kind: ExternalKind) -> (&'static str, &'static str, &'static str) {
    match kind {
        ExternalKind::Contact => ("contact.setExternalId", "contact.removeExternalId", "Contact"),
        ExternalKind::Group => ("group.setExternalId", "group.removeExternalId", "Group"),
        ExternalKind::Product => ("product.setExternalId", "product.removeExternalId", "Product"),
        ExternalKind::PriceList => ("priceList.setExternalId", "priceList.removeExternalId", "PriceList"),
    }
}

/// `UPDATE <table> SET updated_at = ` for the entity an external id names: changing an entity's
/// external ids is an update of the entity (integrators sync by `updatedAt`).
fn touch_sql(kind: ExternalKind) -> &'static str {
    match kind {
        ExternalKind::Contact => "UPDATE contacts SET updated_at = ",
        ExternalKind::Group => "UPDATE contact_groups SET updated_at = ",
        ExternalKind::Product => "UPDATE products SET updated_at = ",
        ExternalKind::PriceList => "UPDATE price_lists SET updated_at = ",
    }
}

/// The entity's current id for `system`, if it has one.
async fn current(w: &UnitOfWork, target: ExternalTarget, system: &str) -> StoreResult<Option<String>> {
    let v = w.viewer();
    let mut q = Sql::new(w.dialect());
    q.push("SELECT external_id FROM external_ids WHERE tenant_id = ")
        .bind(v.tenant_id.0)
        .push(" AND kind = ")
        .bind(target.kind().as_str())
        .push(" AND entity_id = ")
        .bind(target.uuid())
        .push(" AND system = ")
        .bind(system.to_owned());
    Ok(match w.tx().query_one_raw(q.build()).await? {
        Some(r) => Some(r.try_get::<String>("", "external_id")?),
        None => None,
    })
}

/// Writes `target`'s id for a system (insert, or replace its old value), refusing an id another
/// entity of the kind holds. The caller has authorised the write and checked it is a change.
async fn write(w: &UnitOfWork, target: ExternalTarget, p: &ParsedExternalId, replace: bool) -> StoreResult<()> {
    write_checked(w, target, p, replace, true).await
}

/// [`write`], with `check: false` for a caller that has just seen the id free while holding its
/// advisory lock (an upsert): the insert then goes straight in (a unique violation would still
/// answer "taken").
async fn write_checked(
    w: &UnitOfWork,
    target: ExternalTarget,
    p: &ParsedExternalId,
    replace: bool,
    check: bool,
) -> StoreResult<()> {
    let v = w.viewer();
    let (t, kind) = (v.tenant_id.0, target.kind().as_str());
    // Who holds it now: anyone else is a conflict. Two writers racing past this check on
    // PostgreSQL meet at the primary key instead: the second insert waits for the first to
    // commit and then fails with a unique violation, mapped to the same answer.
    let mut q = Sql::new(w.dialect());
    q.push("SELECT entity_id FROM external_ids WHERE tenant_id = ")
        .bind(t)
        .push(" AND kind = ")
        .bind(kind)
        .push(" AND system = ")
        .bind(p.system.as_str().to_owned())
        .push(" AND external_id = ")
        .bind(p.key.as_str().to_owned());
    if check && let Some(r) = w.tx().query_one_raw(q.build()).await? {
        let holder: Uuid = r.try_get("", "entity_id")?;
        if holder != target.uuid() {
            return Err(StoreError::Conflict(TAKEN.into()));
        }
    }
    let now = Utc::now();
    let mut q = Sql::new(w.dialect());
    if replace {
        q.push("UPDATE external_ids SET external_id = ")
            .bind(p.key.as_str().to_owned())
            .push(", updated_at = ")
            .bind(now)
            .push(" WHERE tenant_id = ")
            .bind(t)
            .push(" AND kind = ")
            .bind(kind)
            .push(" AND entity_id = ")
            .bind(target.uuid())
            .push(" AND system = ")
            .bind(p.system.as_str().to_owned());
    } else {
        q.push("INSERT INTO external_ids (tenant_id, kind, system, external_id, entity_id, created_at, updated_at) VALUES (")
            .bind(t)
            .push(", ")
            .bind(kind)
            .push(", ")
            .bind(p.system.as_str().to_owned())
            .push(", ")
            .bind(p.key.as_str().to_owned())
            .push(", ")
            .bind(target.uuid())
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(now)
            .push(")");
    }
    // A unique violation here is the race above (or, for the entity index, a concurrent writer of
    // the same entity and system): either way "taken", never a database error.
    w.tx().execute_raw(q.build()).await.map_err(|e| StoreError::unique_as_conflict(e, TAKEN))?;
    Ok(())
}

/// Writes the external ids of an entity created in `w` (validated by [`parse_all`]). The
/// creation's own event covers them; each gets an audit entry.
pub(crate) async fn write_new(w: &UnitOfWork, target: ExternalTarget, ids: &[ParsedExternalId]) -> StoreResult<()> {
    write_new_with(w, target, ids, true).await
}

/// [`write_new`] for ids the caller has just seen free in this transaction while holding their
/// advisory locks (an upsert; on SQLite the one writer makes that look authoritative anyway).
pub(crate) async fn write_new_free(
    w: &UnitOfWork,
    target: ExternalTarget,
    ids: &[ParsedExternalId],
) -> StoreResult<()> {
    write_new_with(w, target, ids, false).await
}

async fn write_new_with(
    w: &UnitOfWork,
    target: ExternalTarget,
    ids: &[ParsedExternalId],
    check: bool,
) -> StoreResult<()> {
    let (set_action, _, target_type) = audit_target(target.kind());
    for p in ids {
        write_checked(w, target, p, false, check).await?;
        w.audit(
            set_action,
            target_type,
            Some(target.uuid()),
            audit_details(target.kind(), p.system.as_str(), None, Some(p.key.as_str())),
        );
    }
    Ok(())
}

/// The audit details of a change: the system, and before/after values — except for contacts,
/// whose ids (a webshop may key customers by e-mail address) can be personal data, which the
/// append-only log must not hold; their entries name the field only, like `contact.update`.
fn audit_details(kind: ExternalKind, system: &str, before: Option<&str>, after: Option<&str>) -> serde_json::Value {
    if kind == ExternalKind::Contact {
        return serde_json::json!({"system": system, "fields": ["externalIds"], "changed": {}});
    }
    serde_json::json!({"system": system, "changed": {"externalId": {"before": before, "after": after}}})
}

/// Deletes the external ids of entities of one kind (their entity is being deleted or erased),
/// returning what each had: a deletion event carries them, so an integrator's change feed can
/// name the tombstone by the id its own system knows.
pub(crate) async fn delete_of(
    w: &UnitOfWork,
    kind: ExternalKind,
    entities: &[Uuid],
) -> StoreResult<HashMap<Uuid, Vec<ExternalIdRecord>>> {
    let mut had: HashMap<Uuid, Vec<ExternalIdRecord>> = HashMap::new();
    if entities.is_empty() {
        return Ok(had);
    }
    for chunk in entities.chunks(1000) {
        let mut q = Sql::new(w.dialect());
        q.push("SELECT entity_id, system, external_id FROM external_ids WHERE tenant_id = ")
            .bind(w.viewer().tenant_id.0)
            .push(" AND kind = ")
            .bind(kind.as_str())
            .push(" AND entity_id IN ")
            .bind_list(chunk.iter().copied())
            .push(" ORDER BY entity_id, system");
        for r in w.tx().query_all_raw(q.build()).await? {
            had.entry(r.try_get("", "entity_id")?)
                .or_default()
                .push(ExternalIdRecord { system: r.try_get("", "system")?, id: r.try_get("", "external_id")? });
        }
    }
    for chunk in entities.chunks(1000) {
        let mut q = Sql::new(w.dialect());
        q.push("DELETE FROM external_ids WHERE tenant_id = ")
            .bind(w.viewer().tenant_id.0)
            .push(" AND kind = ")
            .bind(kind.as_str())
            .push(" AND entity_id IN ")
            .bind_list(chunk.iter().copied());
        w.tx().execute_raw(q.build()).await?;
    }
    Ok(had)
}

/// The id values one entity holds, inside `w` (erasure scrubs copies of them).
pub(crate) async fn values_of(w: &UnitOfWork, kind: ExternalKind, entity: Uuid) -> StoreResult<Vec<String>> {
    let mut q = Sql::new(w.dialect());
    q.push("SELECT external_id FROM external_ids WHERE tenant_id = ")
        .bind(w.viewer().tenant_id.0)
        .push(" AND kind = ")
        .bind(kind.as_str())
        .push(" AND entity_id = ")
        .bind(entity);
    let rows = w.tx().query_all_raw(q.build()).await?;
    rows.iter().map(|r| Ok(r.try_get::<String>("", "external_id")?)).collect()
}

/// `SELECT x.entity_id, x.system, x.external_id FROM external_ids x ` and, for kinds whose
/// visibility depends on an address book, the join to the entity's row.
fn ids_of_kind(v: &Viewer, kind: ExternalKind, entities: &[Uuid]) -> Sql {
    let mut q = Sql::new(v.dialect);
    q.push("SELECT x.entity_id, x.system, x.external_id FROM external_ids x ");
    match kind {
        ExternalKind::Contact => {
            q.push("JOIN contacts e ON e.tenant_id = x.tenant_id AND e.id = x.entity_id ");
        }
        ExternalKind::Group => {
            q.push("JOIN contact_groups e ON e.tenant_id = x.tenant_id AND e.id = x.entity_id ");
        }
        ExternalKind::Product | ExternalKind::PriceList => {}
    }
    q.push("WHERE x.tenant_id = ")
        .bind(v.tenant_id.0)
        .push(" AND x.kind = ")
        .bind(kind.as_str())
        .push(" AND x.entity_id IN ")
        .bind_list(entities.iter().copied());
    if matches!(kind, ExternalKind::Contact | ExternalKind::Group) {
        q.push(" AND ").visible_books(v, "e.address_book_id", AccessLevel::Read);
    }
    q.push(" ORDER BY x.entity_id, x.system");
    q
}

/// `(SELECT entity_id FROM external_ids WHERE <tenant, kind, system, id>)`, as a sea-query
/// subquery for the lookups.
fn holder_subquery(
    v: &Viewer,
    kind: ExternalKind,
    system: &ExternalSystem,
    key: &ExternalKey,
) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column("entity_id")
        .from("external_ids")
        .and_where(Expr::col("tenant_id").eq(v.tenant_id.0))
        .and_where(Expr::col("kind").eq(kind.as_str()))
        .and_where(Expr::col("system").eq(system.as_str()))
        .and_where(Expr::col("external_id").eq(key.as_str()))
        .to_owned()
}

fn parse_pair(system: &str, id: &str) -> StoreResult<(ExternalSystem, ExternalKey)> {
    Ok((ExternalSystem::parse("system", system)?, ExternalKey::parse("id", id)?))
}

impl DataHandle {
    /// Checks the viewer may change `target` as its update mutation requires, inside `w` (the
    /// entity's row is locked on PostgreSQL, so writers of one entity take turns).
    /// Unknown and hidden entities are `NotFound`.
    async fn authorise(&self, w: &UnitOfWork, target: ExternalTarget) -> StoreResult<Authorised> {
        let v = self.viewer();
        match target {
            ExternalTarget::Contact(id) => {
                let c = self.contact_for(w.tx(), v, id, AccessLevel::Write).await?;
                // An erased contact is a tombstone: an id written onto it would identify the
                // person again (as `updateContact` refuses it).
                if crate::contacts::erasure::erased_at(w.tx(), v.dialect, v.tenant_id.0, id.0).await?.is_some() {
                    return Err(StoreError::Conflict("the contact was erased; it cannot be changed".into()));
                }
                Ok(Authorised::Contact { book: c.address_book_id })
            }
            ExternalTarget::Group(id) => {
                let g = self.group_for(w.tx(), v, id, AccessLevel::Manage).await?;
                w.lock_row(LockedTable::Groups, id.0, RowLock::NoKeyUpdate).await?;
                Ok(Authorised::Group { book: g.address_book_id })
            }
            ExternalTarget::Product(id) => {
                if !v.is_admin() {
                    return Err(StoreError::forbidden("managing the catalogue is for admins"));
                }
                let p = product::Entity::find()
                    .filter(product::Column::TenantId.eq(v.tenant_id.0))
                    .filter(product::Column::Id.eq(id.0))
                    .one(w.tx())
                    .await?
                    .ok_or(StoreError::NotFound)?;
                // Writers of one product take turns (as of a contact or group): two setting the
                // same system at once must not both find it free and collide at the unique index.
                w.lock_row(LockedTable::Products, id.0, RowLock::NoKeyUpdate).await?;
                Ok(Authorised::Product { sku: p.sku, active: p.active })
            }
            ExternalTarget::PriceList(id) => {
                if !v.is_admin() {
                    return Err(StoreError::forbidden("configuring price lists is for admins"));
                }
                price_list::Entity::find()
                    .filter(price_list::Column::TenantId.eq(v.tenant_id.0))
                    .filter(price_list::Column::Id.eq(id.0))
                    .one(w.tx())
                    .await?
                    .ok_or(StoreError::NotFound)?;
                w.lock_row(LockedTable::PriceLists, id.0, RowLock::NoKeyUpdate).await?;
                Ok(Authorised::PriceList)
            }
        }
    }

    /// Records the change: bumps the entity's `updated_at`, writes the audit entry and emits the
    /// entity's update event (with the changed field and the system, never the value: payloads
    /// feed webhooks and stay thin).
    async fn record_change(
        &self,
        w: &UnitOfWork,
        target: ExternalTarget,
        auth: Authorised,
        system: &str,
        action: &'static str,
        details: serde_json::Value,
    ) -> StoreResult<()> {
        let v = self.viewer();
        let mut q = Sql::new(w.dialect());
        q.push(touch_sql(target.kind()))
            .bind(Utc::now())
            .push(" WHERE tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND id = ")
            .bind(target.uuid());
        w.tx().execute_raw(q.build()).await?;
        let (_, _, target_type) = audit_target(target.kind());
        w.audit(action, target_type, Some(target.uuid()), details);
        let changed = serde_json::json!(["externalIds"]);
        let (event, payload) = match auth {
            Authorised::Contact { book } => (
                EventType::ContactUpdated,
                serde_json::json!({"addressBookId": book, "previousAddressBookId": book, "fields": changed, "system": system}),
            ),
            Authorised::Group { book } => (
                EventType::GroupUpdated,
                serde_json::json!({"addressBookId": book, "fields": changed, "system": system}),
            ),
            Authorised::Product { sku, active } => (
                EventType::ProductUpdated,
                serde_json::json!({"sku": sku, "active": active, "fields": changed, "system": system}),
            ),
            Authorised::PriceList => {
                (EventType::PriceListUpdated, serde_json::json!({"fields": changed, "system": system}))
            }
        };
        w.emit(event, vec![target.subject()], payload);
        Ok(())
    }

    /// Sets `target`'s external id for `system` (replacing the one it had for that system).
    /// Setting the id it already has changes and records nothing. An id another entity of the
    /// kind holds is `Conflict` ("taken", see [`TAKEN`]).
    pub async fn set_external_id(&self, target: ExternalTarget, system: &str, id: &str) -> StoreResult<()> {
        let (system, key) = parse_pair(system, id)?;
        let w = self.begin().await?;
        let auth = self.authorise(&w, target).await?;
        let before = current(&w, target, system.as_str()).await?;
        if before.as_deref() == Some(key.as_str()) {
            // A repeat (a sync job running again): nothing to write, nothing to record.
            w.commit().await?;
            return Ok(());
        }
        let p = ParsedExternalId { system, key };
        write(&w, target, &p, before.is_some()).await?;
        let (action, _, _) = audit_target(target.kind());
        let details = audit_details(target.kind(), p.system.as_str(), before.as_deref(), Some(p.key.as_str()));
        self.record_change(&w, target, auth, p.system.as_str(), action, details).await?;
        w.commit().await?;
        Ok(())
    }

    /// Removes `target`'s external id for `system`; removing one it does not have changes and
    /// records nothing (after the same permission check as a change).
    pub async fn remove_external_id(&self, target: ExternalTarget, system: &str) -> StoreResult<()> {
        let system = ExternalSystem::parse("system", system)?;
        let w = self.begin().await?;
        let auth = self.authorise(&w, target).await?;
        let Some(before) = current(&w, target, system.as_str()).await? else {
            w.commit().await?;
            return Ok(());
        };
        let mut q = Sql::new(w.dialect());
        q.push("DELETE FROM external_ids WHERE tenant_id = ")
            .bind(self.viewer().tenant_id.0)
            .push(" AND kind = ")
            .bind(target.kind().as_str())
            .push(" AND entity_id = ")
            .bind(target.uuid())
            .push(" AND system = ")
            .bind(system.as_str().to_owned());
        w.tx().execute_raw(q.build()).await?;
        let (_, action, _) = audit_target(target.kind());
        let details = audit_details(target.kind(), system.as_str(), Some(&before), None);
        self.record_change(&w, target, auth, system.as_str(), action, details).await?;
        w.commit().await?;
        Ok(())
    }

    /// The external ids of many entities of one kind, by entity, each list by system — one
    /// statement. Entities the viewer cannot see have none (the rule is joined in the SQL).
    pub async fn external_ids_of(
        &self,
        kind: ExternalKind,
        entities: &[Uuid],
    ) -> StoreResult<HashMap<Uuid, Vec<ExternalIdRecord>>> {
        let v = self.viewer();
        let mut out: HashMap<Uuid, Vec<ExternalIdRecord>> = HashMap::new();
        // Price lists are admins' reading only (as `priceList(id)`).
        if entities.is_empty() || (kind == ExternalKind::PriceList && !v.is_admin()) {
            return Ok(out);
        }
        for chunk in entities.chunks(1000) {
            for r in self.db.query_all_raw(ids_of_kind(v, kind, chunk).build()).await? {
                let entity: Uuid = r.try_get("", "entity_id")?;
                out.entry(entity)
                    .or_default()
                    .push(ExternalIdRecord { system: r.try_get("", "system")?, id: r.try_get("", "external_id")? });
            }
        }
        Ok(out)
    }

    /// The visible contact with this external id; `None` when there is none or the viewer
    /// cannot see it (one statement either way).
    pub async fn contact_by_external_id(&self, system: &str, id: &str) -> StoreResult<Option<ContactRecord>> {
        let (system, key) = parse_pair(system, id)?;
        let v = self.viewer();
        let found = visible_contacts(v)
            .filter(contact::Column::Id.in_subquery(holder_subquery(v, ExternalKind::Contact, &system, &key)))
            .one(&self.db)
            .await?
            .map(ContactRecord::try_from)
            .transpose()?;
        if let Some(c) = &found {
            self.saw([c.id]);
        }
        Ok(found)
    }

    /// The visible group with this external id (`None`: none, or hidden).
    pub async fn group_by_external_id(&self, system: &str, id: &str) -> StoreResult<Option<GroupRecord>> {
        let (system, key) = parse_pair(system, id)?;
        let v = self.viewer();
        let q = visible_groups(v).filter(group::Column::Id.in_subquery(holder_subquery(
            v,
            ExternalKind::Group,
            &system,
            &key,
        )));
        Ok(self.selected_groups(q).await?.into_iter().next())
    }

    /// The product with this external id (the catalogue is readable by every member).
    pub async fn product_by_external_id(&self, system: &str, id: &str) -> StoreResult<Option<ProductRecord>> {
        let (system, key) = parse_pair(system, id)?;
        let v = self.viewer();
        let m = product::Entity::find()
            .filter(product::Column::TenantId.eq(v.tenant_id.0))
            .filter(product::Column::Id.in_subquery(holder_subquery(v, ExternalKind::Product, &system, &key)))
            .one(&self.db)
            .await?;
        m.map(crate::pricing::product_record).transpose()
    }

    /// The price list with this external id (admins; `None` for everyone else, as `priceList`
    /// answers nothing to them).
    pub async fn price_list_by_external_id(&self, system: &str, id: &str) -> StoreResult<Option<PriceListRecord>> {
        let (system, key) = parse_pair(system, id)?;
        let v = self.viewer();
        if !v.is_admin() {
            return Ok(None);
        }
        let m = price_list::Entity::find()
            .filter(price_list::Column::TenantId.eq(v.tenant_id.0))
            .filter(price_list::Column::Id.in_subquery(holder_subquery(v, ExternalKind::PriceList, &system, &key)))
            .one(&self.db)
            .await?;
        m.map(crate::pricing::list_record).transpose()
    }
}
