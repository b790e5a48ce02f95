//! The catalogue, price lists and their assignments, and price resolution. Configuring prices
//! is for admins, and list contents (margins, discounts) are readable by admins only. Resolving
//! a price for a contact needs sight of the contact; the answer names a group only if the viewer
//! can see it, while every group of the contact counts (prices must not depend on who asks).

use crate::access::handle::DataHandle;
use crate::access::viewer::Viewer;
use crate::core::decode;
use crate::core::page::{Page, PageRequest};
use crate::core::sql::Sql;
use crate::core::visibility::{book_level, book_visible, like_escape};
use crate::entities::{
    contact, contact_price_list, group_price_list, price_item, price_list, product, tenant_settings,
};
use crate::error::{StoreError, StoreResult};
use crate::events::{EventType, Subject, SubjectKind};
use chrono::{DateTime, Utc};
use cohort_domain::AccessLevel;
use cohort_domain::ids::{ContactId, GroupId, PriceItemId, PriceListId, ProductId};
use cohort_domain::inherit;
use cohort_domain::money::{self, Currency};
use cohort_domain::pricing::{
    self, Assignments, Base, ContactAssignment, GroupAssignment, ItemPrice, PriceItem, PriceList,
};
use cohort_domain::text::{Key, MAX_SKU_CHARS, Name};
use rust_decimal::Decimal;
use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

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

fn product_record(m: product::Model) -> StoreResult<ProductRecord> {
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

impl DataHandle {
    // ---- catalogue -----------------------------------------------------------------------

    pub async fn create_product(&self, input: ProductInput) -> StoreResult<ProductRecord> {
        let v = self.viewer();
        require_admin(v, "managing the catalogue")?;
        let sku = Key::parse("sku", &input.sku, MAX_SKU_CHARS)?;
        let name = Name::parse("name", &input.name)?;
        let price = money::parse_price("listPrice", input.list_price)?;
        let currency = Currency::parse(&input.currency)?;
        let now = Utc::now();
        let m = product::Model {
            tenant_id: v.tenant_id.0,
            id: Uuid::now_v7(),
            sku: sku.into_string(),
            sort_name: name.as_str().to_lowercase(),
            name: name.into_string(),
            list_price_micros: micros("listPrice", price)?,
            currency: currency.code().to_owned(),
            active: input.active,
            created_at: now,
            updated_at: now,
        };
        let w = self.begin().await?;
        product::Entity::insert(product::ActiveModel::from(m.clone()))
            .exec_without_returning(w.tx())
            .await
            .map_err(|e| StoreError::unique_as_conflict(e, "a product with this SKU already exists"))?;
        w.audit("product.create", "Product", Some(m.id), serde_json::json!({"sku": m.sku}));
        w.emit(
            EventType::ProductCreated,
            vec![Subject::new(SubjectKind::Product, m.id)],
            serde_json::json!({"sku": m.sku}),
        );
        w.commit().await?;
        product_record(m)
    }

    pub async fn update_product(&self, id: ProductId, p: ProductPatch) -> StoreResult<ProductRecord> {
        let v = self.viewer();
        require_admin(v, "managing the catalogue")?;
        let w = self.begin().await?;
        let cur = product::Entity::find()
            .filter(product::Column::TenantId.eq(v.tenant_id.0))
            .filter(product::Column::Id.eq(id.0))
            .one(w.tx())
            .await?
            .ok_or(StoreError::NotFound)?;
        let name = match &p.name {
            Some(n) => Name::parse("name", n)?.into_string(),
            None => cur.name.clone(),
        };
        let price = match p.list_price {
            Some(x) => micros("listPrice", money::parse_price("listPrice", x)?)?,
            None => cur.list_price_micros,
        };
        let currency = match &p.currency {
            Some(c) => Currency::parse(c)?.code().to_owned(),
            None => cur.currency.clone(),
        };
        let m = product::Model {
            sort_name: name.to_lowercase(),
            name,
            list_price_micros: price,
            currency,
            active: p.active.unwrap_or(cur.active),
            updated_at: Utc::now(),
            ..cur
        };
        // Every column is written explicitly: an ActiveModel made from a Model marks its fields
        // unchanged, and updating it would silently write nothing.
        product::Entity::update(product::ActiveModel {
            tenant_id: sea_orm::ActiveValue::Unchanged(m.tenant_id),
            id: sea_orm::ActiveValue::Unchanged(m.id),
            name: Set(m.name.clone()),
            sort_name: Set(m.sort_name.clone()),
            list_price_micros: Set(m.list_price_micros),
            currency: Set(m.currency.clone()),
            active: Set(m.active),
            updated_at: Set(m.updated_at),
            ..Default::default()
        })
        .exec(w.tx())
        .await?;
        w.audit("product.update", "Product", Some(m.id), serde_json::json!({"sku": m.sku}));
        w.emit(
            EventType::ProductUpdated,
            vec![Subject::new(SubjectKind::Product, m.id)],
            serde_json::json!({"sku": m.sku, "active": m.active}),
        );
        w.commit().await?;
        product_record(m)
    }

    /// The catalogue, by name. Every member of the tenant may read it.
    pub async fn products(&self, search: Option<&str>, page: &PageRequest) -> StoreResult<Page<ProductRecord>> {
        let v = self.viewer();
        let mut q = product::Entity::find().filter(product::Column::TenantId.eq(v.tenant_id.0));
        if let Some(raw) = search
            && let Some(term) = cohort_domain::text::search_prefix(raw)?
        {
            // Names are compared in lower case (the sort name is lower-cased in Rust); SKUs are
            // stored as given and compared with ASCII case folded, identically on every engine.
            let sku_term = raw.trim().to_ascii_lowercase();
            q = q.filter(
                sea_orm::Condition::any()
                    .add(
                        Expr::col((product::Entity, product::Column::SortName))
                            .like(LikeExpr::new(format!("{}%", like_escape(&term))).escape('\\')),
                    )
                    .add(
                        v.dialect
                            .fold_ascii_case(Expr::col((product::Entity, product::Column::Sku)))
                            .like(LikeExpr::new(format!("{}%", like_escape(&sku_term))).escape('\\')),
                    ),
            );
        }
        if let Some(key) = page.after_key::<(String, Uuid)>()? {
            q = q.filter(crate::core::page::after(product::Column::SortName, product::Column::Id, key));
        }
        let rows = q
            .order_by_asc(product::Column::SortName)
            .order_by_asc(product::Column::Id)
            .limit(page.limit())
            .all(&self.db)
            .await?;
        Ok(Page::from_rows(rows.into_iter().map(product_record).collect::<StoreResult<Vec<_>>>()?, page, |p| {
            (p.sort_name.clone(), p.id.0)
        }))
    }

    pub async fn products_by_ids(&self, ids: &[ProductId]) -> StoreResult<Vec<ProductRecord>> {
        let v = self.viewer();
        if ids.is_empty() {
            return Ok(vec![]);
        }
        product::Entity::find()
            .filter(product::Column::TenantId.eq(v.tenant_id.0))
            .filter(product::Column::Id.is_in(ids.iter().map(|i| i.0)))
            .all(&self.db)
            .await?
            .into_iter()
            .map(product_record)
            .collect()
    }

    // ---- price lists ---------------------------------------------------------------------

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
        let v = self.viewer();
        require_admin(v, "configuring price lists")?;
        let name = Name::parse("name", &input.name)?;
        let currency = Currency::parse(&input.currency)?;
        window_ok(input.valid_from, input.valid_to)?;
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
        w.audit("priceList.update", "PriceList", Some(m.id), serde_json::json!({"name": m.name}));
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
        Ok(price_item::Entity::find()
            .filter(price_item::Column::TenantId.eq(v.tenant_id.0))
            .filter(price_item::Column::PriceListId.eq(id.0))
            .order_by_asc(price_item::Column::ProductId)
            .order_by_asc(price_item::Column::MinQuantityMillis)
            .all(&self.db)
            .await?
            .into_iter()
            .map(item_record)
            .collect())
    }

    // ---- assignments ---------------------------------------------------------------------

    async fn list_exists(&self, txn: &DatabaseTransaction, v: &Viewer, list: PriceListId) -> StoreResult<()> {
        price_list::Entity::find()
            .filter(price_list::Column::TenantId.eq(v.tenant_id.0))
            .filter(price_list::Column::Id.eq(list.0))
            .one(txn)
            .await?
            .map(|_| ())
            .ok_or(StoreError::NotFound)
    }

    /// Assigns (or re-prioritises) a list on a group (admin).
    pub async fn assign_group_price_list(&self, g: GroupId, list: PriceListId, priority: i32) -> StoreResult<()> {
        let v = self.viewer();
        require_admin(v, "assigning price lists")?;
        let w = self.begin().await?;
        self.group_for(w.tx(), v, g, AccessLevel::Read).await?;
        self.list_exists(w.tx(), v, list).await?;
        group_price_list::Entity::insert(group_price_list::ActiveModel {
            tenant_id: Set(v.tenant_id.0),
            group_id: Set(g.0),
            price_list_id: Set(list.0),
            priority: Set(priority),
        })
        .on_conflict(
            OnConflict::columns([
                group_price_list::Column::TenantId,
                group_price_list::Column::GroupId,
                group_price_list::Column::PriceListId,
            ])
            .update_column(group_price_list::Column::Priority)
            .to_owned(),
        )
        .exec_without_returning(w.tx())
        .await?;
        w.audit(
            "group.assignPriceList",
            "Group",
            Some(g.0),
            serde_json::json!({"priceListId": list.0, "priority": priority}),
        );
        w.emit(
            EventType::PriceListAssigned,
            vec![Subject::new(SubjectKind::PriceList, list.0), Subject::new(SubjectKind::Group, g.0)],
            serde_json::json!({"priority": priority}),
        );
        w.commit().await?;
        Ok(())
    }

    pub async fn unassign_group_price_list(&self, g: GroupId, list: PriceListId) -> StoreResult<bool> {
        let v = self.viewer();
        require_admin(v, "assigning price lists")?;
        let w = self.begin().await?;
        self.group_for(w.tx(), v, g, AccessLevel::Read).await?;
        let r = group_price_list::Entity::delete_many()
            .filter(group_price_list::Column::TenantId.eq(v.tenant_id.0))
            .filter(group_price_list::Column::GroupId.eq(g.0))
            .filter(group_price_list::Column::PriceListId.eq(list.0))
            .exec(w.tx())
            .await?;
        w.audit("group.unassignPriceList", "Group", Some(g.0), serde_json::json!({"priceListId": list.0}));
        w.emit(
            EventType::PriceListUnassigned,
            vec![Subject::new(SubjectKind::PriceList, list.0), Subject::new(SubjectKind::Group, g.0)],
            serde_json::json!({}),
        );
        w.commit().await?;
        Ok(r.rows_affected > 0)
    }

    pub async fn assign_contact_price_list(&self, c: ContactId, list: PriceListId, priority: i32) -> StoreResult<()> {
        let v = self.viewer();
        require_admin(v, "assigning price lists")?;
        let w = self.begin().await?;
        self.contact_visible(w.tx(), v, c).await?;
        self.list_exists(w.tx(), v, list).await?;
        contact_price_list::Entity::insert(contact_price_list::ActiveModel {
            tenant_id: Set(v.tenant_id.0),
            contact_id: Set(c.0),
            price_list_id: Set(list.0),
            priority: Set(priority),
        })
        .on_conflict(
            OnConflict::columns([
                contact_price_list::Column::TenantId,
                contact_price_list::Column::ContactId,
                contact_price_list::Column::PriceListId,
            ])
            .update_column(contact_price_list::Column::Priority)
            .to_owned(),
        )
        .exec_without_returning(w.tx())
        .await?;
        w.audit(
            "contact.assignPriceList",
            "Contact",
            Some(c.0),
            serde_json::json!({"priceListId": list.0, "priority": priority}),
        );
        w.emit(
            EventType::PriceListAssigned,
            vec![Subject::new(SubjectKind::PriceList, list.0), Subject::new(SubjectKind::Contact, c.0)],
            serde_json::json!({"priority": priority}),
        );
        w.commit().await?;
        Ok(())
    }

    pub async fn unassign_contact_price_list(&self, c: ContactId, list: PriceListId) -> StoreResult<bool> {
        let v = self.viewer();
        require_admin(v, "assigning price lists")?;
        let w = self.begin().await?;
        self.contact_visible(w.tx(), v, c).await?;
        let r = contact_price_list::Entity::delete_many()
            .filter(contact_price_list::Column::TenantId.eq(v.tenant_id.0))
            .filter(contact_price_list::Column::ContactId.eq(c.0))
            .filter(contact_price_list::Column::PriceListId.eq(list.0))
            .exec(w.tx())
            .await?;
        w.audit("contact.unassignPriceList", "Contact", Some(c.0), serde_json::json!({"priceListId": list.0}));
        w.emit(
            EventType::PriceListUnassigned,
            vec![Subject::new(SubjectKind::PriceList, list.0), Subject::new(SubjectKind::Contact, c.0)],
            serde_json::json!({}),
        );
        w.commit().await?;
        Ok(r.rows_affected > 0)
    }

    /// Sets (or clears) the tenant's default price list (admin).
    pub async fn set_default_price_list(&self, list: Option<PriceListId>) -> StoreResult<()> {
        let v = self.viewer();
        require_admin(v, "assigning price lists")?;
        let w = self.begin().await?;
        if let Some(l) = list {
            self.list_exists(w.tx(), v, l).await?;
        }
        tenant_settings::Entity::insert(tenant_settings::ActiveModel {
            tenant_id: Set(v.tenant_id.0),
            default_price_list_id: Set(list.map(|l| l.0)),
            updated_at: Set(Utc::now()),
        })
        .on_conflict(
            OnConflict::column(tenant_settings::Column::TenantId)
                .update_columns([tenant_settings::Column::DefaultPriceListId, tenant_settings::Column::UpdatedAt])
                .to_owned(),
        )
        .exec_without_returning(w.tx())
        .await?;
        w.audit(
            "tenant.setDefaultPriceList",
            "Tenant",
            Some(v.tenant_id.0),
            serde_json::json!({"priceListId": list.map(|l| l.0)}),
        );
        w.emit(
            EventType::DefaultPriceListSet,
            list.map(|l| Subject::new(SubjectKind::PriceList, l.0)).into_iter().collect(),
            serde_json::json!({"priceListId": list.map(|l| l.0)}),
        );
        w.commit().await?;
        Ok(())
    }

    async fn contact_visible<C: ConnectionTrait>(
        &self,
        conn: &C,
        v: &Viewer,
        c: ContactId,
    ) -> StoreResult<contact::Model> {
        contact::Entity::find()
            .filter(contact::Column::TenantId.eq(v.tenant_id.0))
            .filter(contact::Column::Id.eq(c.0))
            .filter(book_visible(v, contact::Column::AddressBookId, AccessLevel::Read))
            .one(conn)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// A visible group's own lists by priority (`effective = false`), or the lists it applies —
    /// its own, else the nearest ancestor's (`effective = true`). Names only for non-admins.
    pub async fn group_price_lists(&self, g: GroupId, effective: bool) -> StoreResult<Vec<ListAssignmentRecord>> {
        let v = self.viewer();
        if self.groups_by_ids(&[g]).await?.is_empty() {
            return Err(StoreError::NotFound);
        }
        let mut q = Sql::new(v.dialect);
        q.push("SELECT cl.depth, a.group_id, a.price_list_id, a.priority, l.tenant_id, l.id, l.name, l.sort_name, l.currency, l.valid_from, l.valid_to, l.base_price_list_id, l.created_at, l.updated_at FROM group_closure cl JOIN group_price_lists a ON a.tenant_id = cl.tenant_id AND a.group_id = cl.ancestor_id JOIN price_lists l ON l.tenant_id = a.tenant_id AND l.id = a.price_list_id WHERE cl.tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND cl.descendant_id = ")
            .bind(g.0);
        if !effective {
            q.push(" AND cl.depth = 0");
        }
        q.push(" ORDER BY cl.depth, a.priority, a.price_list_id");
        let rows = self.db.query_all_raw(q.build()).await?;
        let mut found = Vec::with_capacity(rows.len());
        for r in rows {
            use sea_orm::FromQueryResult;
            found.push(inherit::Found {
                defined_on: GroupId(r.try_get("", "group_id")?),
                depth: r.try_get("", "depth")?,
                value: (list_record(price_list::Model::from_query_result(&r, "")?)?, r.try_get::<i32>("", "priority")?),
            });
        }
        Ok(inherit::effective(found)
            .map(|e| {
                let from = e.from;
                e.values
                    .into_iter()
                    .map(|(price_list, priority)| ListAssignmentRecord { price_list, priority, defined_on: from })
                    .collect()
            })
            .unwrap_or_default())
    }

    // ---- resolution ----------------------------------------------------------------------

    /// Prices `lines` for a contact the viewer can see (`needed`: READ to look prices up or quote,
    /// WRITE when an order is placed). One fixed set of statements whatever the number of lines.
    pub async fn price_lines(
        &self,
        contact_id: ContactId,
        lines: &[PriceLine],
        currency: &str,
        at: DateTime<Utc>,
        needed: AccessLevel,
    ) -> StoreResult<Vec<PricedLine>> {
        let v = self.viewer();
        if lines.is_empty() || lines.len() > 500 {
            return Err(StoreError::invalid("lines", "give 1 to 500 lines"));
        }
        let currency = Currency::parse(currency)?;
        let quantities = lines.iter().map(|l| money::parse_quantity(l.quantity)).collect::<Result<Vec<_>, _>>()?;
        let c = self.contact_visible(&self.db, v, contact_id).await?;
        if !AccessLevel::allows(
            book_level(&self.db, v, cohort_domain::ids::AddressBookId(c.address_book_id)).await?,
            needed,
        ) {
            return Err(StoreError::forbidden("placing an order needs WRITE access on the contact's address book"));
        }
        // Products, by id or SKU, in one statement.
        let ids: Vec<Uuid> =
            lines.iter().filter_map(|l| if let ProductRef::Id(p) = &l.product { Some(p.0) } else { None }).collect();
        // A SKU is looked up only if it could be one (the `Key` rules: no control characters,
        // which PostgreSQL could not even compare).
        let skus: Vec<String> = lines
            .iter()
            .filter_map(|l| if let ProductRef::Sku(s) = &l.product { Some(s) } else { None })
            .map(|s| Key::parse("sku", s, MAX_SKU_CHARS).map(Key::into_string))
            .collect::<Result<_, _>>()?;
        let products: Vec<product::Model> = product::Entity::find()
            .filter(product::Column::TenantId.eq(v.tenant_id.0))
            .filter(sea_orm::Condition::any().add(product::Column::Id.is_in(ids)).add(product::Column::Sku.is_in(skus)))
            .all(&self.db)
            .await?;
        let find = |r: &ProductRef| {
            products.iter().find(|p| match r {
                ProductRef::Id(id) => p.id == id.0,
                ProductRef::Sku(s) => &p.sku == s,
            })
        };
        let mut resolved_products = Vec::with_capacity(lines.len());
        for l in lines {
            let p = find(&l.product).cloned().ok_or(StoreError::NotFound)?;
            if !p.active {
                return Err(StoreError::invalid("productId", format!("product {} is inactive", p.sku)));
            }
            resolved_products.push(p);
        }
        // Candidates: the contact's own lists, every direct group's effective lists (all groups
        // count; only visible ones are named later), the tenant default.
        let contact_lists: Vec<(Uuid, i32)> = contact_price_list::Entity::find()
            .filter(contact_price_list::Column::TenantId.eq(v.tenant_id.0))
            .filter(contact_price_list::Column::ContactId.eq(contact_id.0))
            .select_only()
            .column(contact_price_list::Column::PriceListId)
            .column(contact_price_list::Column::Priority)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut q = Sql::new(v.dialect);
        q.push("SELECT m.group_id, g.precedence, g.address_book_id, cl.ancestor_id, cl.depth, a.price_list_id, a.priority FROM group_memberships m JOIN contact_groups g ON g.tenant_id = m.tenant_id AND g.id = m.group_id JOIN group_closure cl ON cl.tenant_id = m.tenant_id AND cl.descendant_id = m.group_id JOIN group_price_lists a ON a.tenant_id = cl.tenant_id AND a.group_id = cl.ancestor_id WHERE m.tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND m.contact_id = ")
            .bind(contact_id.0);
        let rows = self.db.query_all_raw(q.build()).await?;
        // Each direct group's effective lists: its own, else its nearest ancestor's (one rule,
        // `cohort_domain::inherit`).
        let mut found = Vec::with_capacity(rows.len());
        let mut precedence: HashMap<Uuid, i32> = HashMap::new();
        for r in rows {
            let g: Uuid = r.try_get("", "group_id")?;
            precedence.insert(g, r.try_get("", "precedence")?);
            found.push((
                g,
                inherit::Found {
                    defined_on: GroupId(r.try_get("", "ancestor_id")?),
                    depth: r.try_get("", "depth")?,
                    value: (PriceListId(r.try_get("", "price_list_id")?), r.try_get::<i32>("", "priority")?),
                },
            ));
        }
        let mut group_assignments: Vec<GroupAssignment> = inherit::effective_per(found)
            .into_iter()
            .flat_map(|(g, e)| {
                let prec = precedence.get(&g).copied().unwrap_or_default();
                e.values.into_iter().map(move |(list, priority)| GroupAssignment {
                    group: GroupId(g),
                    precedence: prec,
                    defined_on: e.from,
                    list,
                    priority,
                })
            })
            .collect();
        // A stable order of candidates before the domain merges them (the map has none).
        group_assignments.sort_by_key(|a| (a.group.0, a.priority, a.list.0));
        let default: Option<Uuid> = tenant_settings::Entity::find()
            .filter(tenant_settings::Column::TenantId.eq(v.tenant_id.0))
            .one(&self.db)
            .await?
            .and_then(|s| s.default_price_list_id);
        let assignments = Assignments {
            contact: contact_lists
                .iter()
                .map(|(l, p)| ContactAssignment { list: PriceListId(*l), priority: *p })
                .collect(),
            groups: group_assignments,
            default: default.map(PriceListId),
        };
        // The lists (and their base chains) with the items for these products.
        let product_ids: Vec<Uuid> = resolved_products.iter().map(|p| p.id).collect();
        let mut lists: HashMap<PriceListId, PriceList> = HashMap::new();
        let mut names: HashMap<PriceListId, String> = HashMap::new();
        let mut todo: HashSet<Uuid> = pricing::order(&assignments).iter().map(|c| c.list.0).collect();
        for _ in 0..32 {
            todo.retain(|l| !lists.contains_key(&PriceListId(*l)));
            if todo.is_empty() {
                break;
            }
            let found = price_list::Entity::find()
                .filter(price_list::Column::TenantId.eq(v.tenant_id.0))
                .filter(price_list::Column::Id.is_in(todo.iter().copied()))
                .all(&self.db)
                .await?;
            let items = price_item::Entity::find()
                .filter(price_item::Column::TenantId.eq(v.tenant_id.0))
                .filter(price_item::Column::PriceListId.is_in(todo.iter().copied()))
                .filter(price_item::Column::ProductId.is_in(product_ids.iter().copied()))
                .all(&self.db)
                .await?;
            let mut next = HashSet::new();
            for l in found {
                let cur = decode::currency(&l.currency)?;
                if let Some(b) = l.base_price_list_id {
                    next.insert(b);
                }
                names.insert(PriceListId(l.id), l.name.clone());
                lists.insert(
                    PriceListId(l.id),
                    PriceList {
                        id: PriceListId(l.id),
                        currency: cur,
                        valid_from: l.valid_from,
                        valid_to: l.valid_to,
                        base: l.base_price_list_id.map(|b| Base::List(PriceListId(b))).unwrap_or(Base::ListPrice),
                        items: items
                            .iter()
                            .filter(|i| i.price_list_id == l.id)
                            .map(|i| domain_item(i.clone()))
                            .collect(),
                    },
                );
            }
            todo = next;
        }
        // Which of the candidate groups may be named to this viewer.
        let mut candidate_groups: Vec<GroupId> =
            assignments.groups.iter().flat_map(|g| [g.group, g.defined_on]).collect();
        candidate_groups.sort();
        candidate_groups.dedup();
        let names = std::sync::Arc::new(names);
        let visible_groups: std::sync::Arc<HashSet<GroupId>> =
            std::sync::Arc::new(self.groups_by_ids(&candidate_groups).await?.into_iter().map(|g| g.id).collect());
        let mut out = Vec::with_capacity(lines.len());
        for (p, qty) in resolved_products.into_iter().zip(quantities) {
            let prod = product_record(p)?;
            let dp = pricing::Product { id: prod.id, list_price: prod.list_price, currency: prod.currency };
            let resolution = pricing::resolve(&dp, qty, currency, at, &assignments, &lists).map_err(|_| {
                StoreError::NoPrice(format!(
                    "no price for {} in {}: no list applies and the list price is in {}",
                    prod.sku, currency, prod.currency
                ))
            })?;
            out.push(PricedLine {
                product: prod,
                quantity: qty,
                resolution,
                list_names: names.clone(),
                visible_groups: visible_groups.clone(),
            });
        }
        Ok(out)
    }
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
