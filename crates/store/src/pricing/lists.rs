//! Price lists and their items (admin).

use super::*;
use crate::access::handle::DataHandle;
use crate::access::viewer::Viewer;
use crate::audit::Changes;
use crate::core::page::{Page, PageRequest};
use crate::entities::{price_item, price_list, product};
use crate::error::{StoreError, StoreResult};
use crate::events::{EventType, Subject, SubjectKind};
use chrono::Utc;
use cohort_domain::ids::PriceListId;
use cohort_domain::money::{self, Currency};
use cohort_domain::pricing::{self};
use cohort_domain::text::Name;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

impl DataHandle {
    async fn check_base(
        &self,
        txn: &DatabaseTransaction,
        v: &Viewer,
        list: Option<PriceListId>,
        base: PriceListId,
        currency: Currency,
    ) -> StoreResult<()> {
        let all: Vec<(Uuid, Option<Uuid>, String)> = price_list::Entity::find()
            .filter(price_list::Column::TenantId.eq(v.tenant_id.0))
            .select_only()
            .column(price_list::Column::Id)
            .column(price_list::Column::BasePriceListId)
            .column(price_list::Column::Currency)
            .into_tuple()
            .all(txn)
            .await?;
        let Some(b) = all.iter().find(|r| r.0 == base.0) else { return Err(StoreError::NotFound) };
        if b.2 != currency.code() {
            return Err(StoreError::invalid("basePriceListId", "the base list must be in the same currency"));
        }
        if let Some(list) = list {
            let bases: HashMap<PriceListId, PriceListId> =
                all.iter().filter_map(|r| r.1.map(|b| (PriceListId(r.0), PriceListId(b)))).collect();
            if pricing::base_creates_cycle(list, base, &bases) {
                return Err(StoreError::invalid("basePriceListId", "that base would create a cycle of base lists"));
            }
        }
        Ok(())
    }

    pub async fn create_price_list(&self, input: PriceListInput) -> StoreResult<PriceListRecord> {
        self.create_price_list_with_external_ids(input, &[]).await
    }

    /// [`DataHandle::create_price_list`] with the list's external ids, in the same transaction.
    pub async fn create_price_list_with_external_ids(
        &self,
        input: PriceListInput,
        external_ids: &[crate::external::ExternalIdRecord],
    ) -> StoreResult<PriceListRecord> {
        let v = self.viewer();
        require_admin(v, "configuring price lists")?;
        let name = Name::parse("name", &input.name)?;
        let currency = Currency::parse(&input.currency)?;
        window_ok(input.valid_from, input.valid_to)?;
        let ext = crate::external::parse_all(external_ids)?;
        let w = self.begin().await?;
        if let Some(b) = input.base_price_list_id {
            self.check_base(w.tx(), v, None, b, currency).await?;
        }
        let now = Utc::now();
        let m = price_list::Model {
            tenant_id: v.tenant_id.0,
            id: Uuid::now_v7(),
            sort_name: name.as_str().to_lowercase(),
            name: name.into_string(),
            currency: currency.code().to_owned(),
            valid_from: input.valid_from,
            valid_to: input.valid_to,
            base_price_list_id: input.base_price_list_id.map(|b| b.0),
            created_at: now,
            updated_at: now,
        };
        price_list::Entity::insert(price_list::ActiveModel::from(m.clone())).exec_without_returning(w.tx()).await?;
        crate::external::write_new(&w, crate::external::ExternalTarget::PriceList(PriceListId(m.id)), &ext).await?;
        w.audit("priceList.create", "PriceList", Some(m.id), serde_json::json!({"name": m.name}));
        w.emit(EventType::PriceListCreated, vec![Subject::new(SubjectKind::PriceList, m.id)], serde_json::json!({}));
        w.commit().await?;
        list_record(m)
    }

    /// Replaces a list's settings (name, currency, window, base) — admin; cycles refused.
    pub async fn update_price_list(&self, id: PriceListId, input: PriceListInput) -> StoreResult<PriceListRecord> {
        let v = self.viewer();
        require_admin(v, "configuring price lists")?;
        let name = Name::parse("name", &input.name)?;
        let currency = Currency::parse(&input.currency)?;
        window_ok(input.valid_from, input.valid_to)?;
        let w = self.begin().await?;
        let cur = price_list::Entity::find()
            .filter(price_list::Column::TenantId.eq(v.tenant_id.0))
            .filter(price_list::Column::Id.eq(id.0))
            .one(w.tx())
            .await?
            .ok_or(StoreError::NotFound)?;
        if let Some(b) = input.base_price_list_id {
            self.check_base(w.tx(), v, Some(id), b, currency).await?;
        }
        if cur.currency != currency.code() {
            let dependants = price_list::Entity::find()
                .filter(price_list::Column::TenantId.eq(v.tenant_id.0))
                .filter(price_list::Column::BasePriceListId.eq(id.0))
                .count(w.tx())
                .await?;
            if dependants > 0 {
                return Err(StoreError::Conflict(
                    "other price lists are based on this one: change their base before its currency".into(),
                ));
            }
        }
        let old = cur.clone();
        let m = price_list::Model {
            sort_name: name.as_str().to_lowercase(),
            name: name.into_string(),
            currency: currency.code().to_owned(),
            valid_from: input.valid_from,
            valid_to: input.valid_to,
            base_price_list_id: input.base_price_list_id.map(|b| b.0),
            updated_at: Utc::now(),
            ..cur
        };
        price_list::Entity::update(price_list::ActiveModel {
            tenant_id: sea_orm::ActiveValue::Unchanged(m.tenant_id),
            id: sea_orm::ActiveValue::Unchanged(m.id),
            name: Set(m.name.clone()),
            sort_name: Set(m.sort_name.clone()),
            currency: Set(m.currency.clone()),
            valid_from: Set(m.valid_from),
            valid_to: Set(m.valid_to),
            base_price_list_id: Set(m.base_price_list_id),
            updated_at: Set(m.updated_at),
            ..Default::default()
        })
        .exec(w.tx())
        .await?;
        let mut changes = Changes::new();
        changes
            .field("name", &old.name, &m.name)
            .field("currency", &old.currency, &m.currency)
            .field("validFrom", old.valid_from, m.valid_from)
            .field("validTo", old.valid_to, m.valid_to)
            .field("basePriceListId", old.base_price_list_id, m.base_price_list_id);
        w.audit("priceList.update", "PriceList", Some(m.id), changes.details(serde_json::json!({})));
        w.emit(EventType::PriceListUpdated, vec![Subject::new(SubjectKind::PriceList, m.id)], serde_json::json!({}));
        w.commit().await?;
        list_record(m)
    }

    /// Replaces a list's items atomically (admin). Every item is validated first; one bad item
    /// and nothing changes.
    pub async fn set_price_list_items(
        &self,
        id: PriceListId,
        items: &[PriceItemInput],
    ) -> StoreResult<Vec<PriceItemRecord>> {
        let v = self.viewer();
        require_admin(v, "configuring price lists")?;
        if items.len() > 10_000 {
            return Err(StoreError::invalid("items", "at most 10000 items per list"));
        }
        let mut rows = Vec::with_capacity(items.len());
        for it in items {
            let min = money::parse_quantity(it.min_quantity)
                .map_err(|_| StoreError::invalid("minQuantity", "must be positive, at most 3 decimal places"))?;
            window_ok(it.valid_from, it.valid_to)?;
            let (fixed, pct) = match (it.fixed_price, it.discount_percent) {
                (Some(p), None) => (Some(micros("fixedPrice", money::parse_price("fixedPrice", p)?)?), None),
                (None, Some(d)) => {
                    (None, Some(micros("discountPercent", money::parse_percent("discountPercent", d)?)?))
                }
                _ => {
                    return Err(StoreError::invalid(
                        "fixedPrice",
                        "give exactly one of fixedPrice and discountPercent",
                    ));
                }
            };
            rows.push(price_item::Model {
                tenant_id: v.tenant_id.0,
                id: Uuid::now_v7(),
                price_list_id: id.0,
                product_id: it.product_id.0,
                min_quantity_millis: millis("minQuantity", min)?,
                fixed_price_micros: fixed,
                discount_percent_micros: pct,
                valid_from: it.valid_from,
                valid_to: it.valid_to,
            });
        }
        let w = self.begin().await?;
        price_list::Entity::find()
            .filter(price_list::Column::TenantId.eq(v.tenant_id.0))
            .filter(price_list::Column::Id.eq(id.0))
            .one(w.tx())
            .await?
            .ok_or(StoreError::NotFound)?;
        let wanted: HashSet<Uuid> = rows.iter().map(|r| r.product_id).collect();
        let known = product::Entity::find()
            .filter(product::Column::TenantId.eq(v.tenant_id.0))
            .filter(product::Column::Id.is_in(wanted.iter().copied()))
            .count(w.tx())
            .await?;
        if known != wanted.len() as u64 {
            return Err(StoreError::invalid("productId", "every item must name a product of the catalogue"));
        }
        price_item::Entity::delete_many()
            .filter(price_item::Column::TenantId.eq(v.tenant_id.0))
            .filter(price_item::Column::PriceListId.eq(id.0))
            .exec(w.tx())
            .await?;
        for chunk in rows.chunks(2000) {
            price_item::Entity::insert_many(chunk.iter().cloned().map(price_item::ActiveModel::from))
                .exec_without_returning(w.tx())
                .await?;
        }
        w.audit("priceList.setItems", "PriceList", Some(id.0), serde_json::json!({"items": rows.len()}));
        w.emit(
            EventType::PriceListItemsSet,
            vec![Subject::new(SubjectKind::PriceList, id.0)],
            serde_json::json!({"items": rows.len()}),
        );
        w.commit().await?;
        Ok(rows.into_iter().map(item_record).collect())
    }

    /// Price lists by name (admin: their contents are commercially sensitive).
    pub async fn price_lists(&self, page: &PageRequest) -> StoreResult<Page<PriceListRecord>> {
        let v = self.viewer();
        require_admin(v, "reading price lists")?;
        let mut q = price_list::Entity::find().filter(price_list::Column::TenantId.eq(v.tenant_id.0));
        if let Some(key) = page.after_key::<(String, Uuid)>()? {
            q = q.filter(crate::core::page::after(price_list::Column::SortName, price_list::Column::Id, key));
        }
        let rows = q
            .order_by_asc(price_list::Column::SortName)
            .order_by_asc(price_list::Column::Id)
            .limit(page.limit())
            .all(&self.db)
            .await?;
        Ok(Page::from_rows(rows.into_iter().map(list_record).collect::<StoreResult<Vec<_>>>()?, page, |l| {
            (l.sort_name.clone(), l.id.0)
        }))
    }

    /// How many price lists the tenant has (admin).
    pub async fn price_list_count(&self) -> StoreResult<u64> {
        let v = self.viewer();
        require_admin(v, "reading price lists")?;
        Ok(price_list::Entity::find().filter(price_list::Column::TenantId.eq(v.tenant_id.0)).count(&self.db).await?)
    }

    /// Lists by id. Admins get them; others get nothing (names reach them only inside price
    /// explanations).
    pub async fn price_lists_by_ids(&self, ids: &[PriceListId]) -> StoreResult<Vec<PriceListRecord>> {
        let v = self.viewer();
        if ids.is_empty() || !v.is_admin() {
            return Ok(vec![]);
        }
        price_list::Entity::find()
            .filter(price_list::Column::TenantId.eq(v.tenant_id.0))
            .filter(price_list::Column::Id.is_in(ids.iter().map(|i| i.0)))
            .all(&self.db)
            .await?
            .into_iter()
            .map(list_record)
            .collect()
    }

    pub async fn price_list_items(&self, id: PriceListId) -> StoreResult<Vec<PriceItemRecord>> {
        let v = self.viewer();
        require_admin(v, "reading price lists")?;
        let items: Vec<PriceItemRecord> = price_item::Entity::find()
            .filter(price_item::Column::TenantId.eq(v.tenant_id.0))
            .filter(price_item::Column::PriceListId.eq(id.0))
            .order_by_asc(price_item::Column::ProductId)
            .order_by_asc(price_item::Column::MinQuantityMillis)
            .all(&self.db)
            .await?
            .into_iter()
            .map(item_record)
            .collect();
        // Negotiated prices are business secrets: who read which list is on record.
        self.audit_read("priceList.readItems", "PriceList", Some(id.0), serde_json::json!({"items": items.len()}))
            .await?;
        Ok(items)
    }
}
