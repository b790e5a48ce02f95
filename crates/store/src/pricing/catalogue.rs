//! The catalogue: products (admin writes, everyone reads).

use super::*;
use crate::access::handle::DataHandle;
use crate::audit::Changes;
use crate::core::page::{Page, PageRequest};
use crate::core::visibility::like_escape;
use crate::entities::product;
use crate::error::{StoreError, StoreResult};
use crate::events::{EventType, Subject, SubjectKind};
use chrono::Utc;
use cohort_domain::ids::ProductId;
use cohort_domain::money::{self, Currency};
use cohort_domain::text::{Key, MAX_SKU_CHARS, Name};
use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

impl DataHandle {
    pub async fn create_product(&self, input: ProductInput) -> StoreResult<ProductRecord> {
        self.create_product_with_external_ids(input, &[]).await
    }

    /// [`DataHandle::create_product`] with the product's external ids, in the same transaction.
    pub async fn create_product_with_external_ids(
        &self,
        input: ProductInput,
        external_ids: &[crate::external::ExternalIdRecord],
    ) -> StoreResult<ProductRecord> {
        require_admin(self.viewer(), "managing the catalogue")?;
        let ext = crate::external::parse_all(external_ids)?;
        let w = self.begin().await?;
        let rec = self.create_product_in(&w, input, &ext).await?;
        w.commit().await?;
        Ok(rec)
    }

    /// The write of [`DataHandle::create_product`] inside a caller's unit of work (a catalogue
    /// upsert creates many in one).
    pub(crate) async fn create_product_in(
        &self,
        w: &crate::core::uow::UnitOfWork,
        input: ProductInput,
        ext: &[crate::external::ParsedExternalId],
    ) -> StoreResult<ProductRecord> {
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
        product::Entity::insert(product::ActiveModel::from(m.clone()))
            .exec_without_returning(w.tx())
            .await
            .map_err(|e| StoreError::unique_as_conflict(e, "a product with this SKU already exists"))?;
        crate::external::write_new(w, crate::external::ExternalTarget::Product(ProductId(m.id)), ext).await?;
        w.audit("product.create", "Product", Some(m.id), serde_json::json!({"sku": m.sku}));
        w.emit(
            EventType::ProductCreated,
            vec![Subject::new(SubjectKind::Product, m.id)],
            serde_json::json!({"sku": m.sku}),
        );
        product_record(m)
    }

    pub async fn update_product(&self, id: ProductId, p: ProductPatch) -> StoreResult<ProductRecord> {
        require_admin(self.viewer(), "managing the catalogue")?;
        let w = self.begin().await?;
        let rec = self.update_product_in(&w, id, p).await?;
        w.commit().await?;
        Ok(rec)
    }

    /// The write of [`DataHandle::update_product`] inside a caller's unit of work.
    pub(crate) async fn update_product_in(
        &self,
        w: &crate::core::uow::UnitOfWork,
        id: ProductId,
        p: ProductPatch,
    ) -> StoreResult<ProductRecord> {
        let v = self.viewer();
        require_admin(v, "managing the catalogue")?;
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
        let old = cur.clone();
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
        let mut changes = Changes::new();
        changes
            .field("name", &old.name, &m.name)
            .field("listPriceMicros", old.list_price_micros, m.list_price_micros)
            .field("currency", &old.currency, &m.currency)
            .field("active", old.active, m.active);
        w.audit("product.update", "Product", Some(m.id), changes.details(serde_json::json!({"sku": m.sku})));
        w.emit(
            EventType::ProductUpdated,
            vec![Subject::new(SubjectKind::Product, m.id)],
            serde_json::json!({"sku": m.sku, "active": m.active}),
        );
        product_record(m)
    }

    /// The catalogue, by name. Every member of the tenant may read it.
    pub async fn products(&self, search: Option<&str>, page: &PageRequest) -> StoreResult<Page<ProductRecord>> {
        let mut q = self.searched_products(search)?;
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

    /// How many products `search` matches (all of them without one).
    pub async fn product_count(&self, search: Option<&str>) -> StoreResult<u64> {
        Ok(self.searched_products(search)?.count(&self.db).await?)
    }

    /// The products `search` matches, for `products` and `product_count`.
    fn searched_products(&self, search: Option<&str>) -> StoreResult<sea_orm::Select<product::Entity>> {
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
        Ok(q)
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
}
