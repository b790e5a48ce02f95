//! Set-based bulk loading for the system handle: the benchmark generator (and future imports)
//! load millions of rows as multi-row `INSERT`s inside one transaction per call, instead of one
//! API call per row.
//!
//! The loader still derives every column the way the request path does — display, sort and search
//! names through the domain's contact and group validation, fixed-point money through the domain's
//! conversions, a membership's book and sort key from the contact row itself (read in the same
//! transaction) — so loaded data is indistinguishable from data created through the API. Only the
//! ids are the caller's: deterministic ids let a benchmark name "contact 79191".

use crate::Store;
use crate::access::books::Principal;
use crate::access::principals::ensure_tenant;
use crate::entities::{
    address_book, contact, contact_email, grant, group, group_closure, group_price_list, membership, price_item,
    price_list, product, user, user_group, user_group_member,
};
use crate::error::{StoreError, StoreResult};
use chrono::{DateTime, Utc};
use cohort_domain::AccessLevel;
use cohort_domain::contact::{ContactFields, ContactKind, ValidContact};
use cohort_domain::group::{MembershipSource, ValidGroup};
use cohort_domain::ids::{
    AddressBookId, ContactId, GroupId, PriceItemId, PriceListId, ProductId, TenantId, UserGroupId, UserId,
};
use cohort_domain::money::{self, Currency};
use rust_decimal::Decimal;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Statement, TransactionTrait,
};
use std::collections::HashMap;
use uuid::Uuid;

/// Bound parameters per statement, under SQLite's 32,766 and PostgreSQL's 65,535.
const MAX_PARAMS: usize = 30_000;

fn rows_per_insert(columns: usize) -> usize {
    MAX_PARAMS / columns
}

pub struct BulkUser {
    pub id: UserId,
    pub subject: String,
    pub name: Option<String>,
}

pub struct BulkContact {
    pub id: ContactId,
    pub address_book_id: AddressBookId,
    pub kind: ContactKind,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company_name: Option<String>,
    pub email: Option<String>,
}

pub struct BulkGroup {
    pub id: GroupId,
    pub address_book_id: AddressBookId,
    pub parent_id: Option<GroupId>,
    pub name: String,
    pub public_name: Option<String>,
}

pub struct BulkMembership {
    pub group_id: GroupId,
    pub contact_id: ContactId,
    pub joined_at: DateTime<Utc>,
    pub source: MembershipSource,
    pub assigned_by: Option<UserId>,
}

pub struct BulkProduct {
    pub id: ProductId,
    pub sku: String,
    pub name: String,
    pub list_price: Decimal,
    pub currency: Currency,
}

pub struct BulkPriceItem {
    pub id: PriceItemId,
    pub price_list_id: PriceListId,
    pub product_id: ProductId,
    pub min_quantity: Decimal,
    pub fixed_price: Decimal,
}

/// Loads rows into one tenant. Each method is one transaction: it lands whole or not at all.
/// Clones share the tenant; on PostgreSQL several calls may run at once (separate transactions).
#[derive(Clone)]
pub struct BulkLoader {
    store: Store,
    tenant: TenantId,
    /// Contacts were loaded since the planner last saw the table: the membership loader looks
    /// contacts up by id, and without statistics PostgreSQL would plan those lookups as scans.
    contacts_unanalyzed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl BulkLoader {
    pub(crate) async fn open(store: Store, tenant_key: &str) -> StoreResult<BulkLoader> {
        let tenant = ensure_tenant(&store.db, tenant_key).await?;
        Ok(BulkLoader { store, tenant, contacts_unanalyzed: Default::default() })
    }

    pub fn tenant_id(&self) -> TenantId {
        self.tenant
    }

    /// Inserts `models` in statements of at most `rows_per_insert(columns)` rows, in one transaction.
    async fn insert<E, A>(&self, columns: usize, models: Vec<A>) -> StoreResult<u64>
    where
        E: EntityTrait,
        A: sea_orm::ActiveModelTrait<Entity = E> + Send,
    {
        let n = models.len() as u64;
        let txn = self.store.db.begin_with_options(crate::core::uow::immediate()).await?;
        let mut it = models.into_iter().peekable();
        while it.peek().is_some() {
            let chunk: Vec<A> = it.by_ref().take(rows_per_insert(columns)).collect();
            E::insert_many(chunk).exec_without_returning(&txn).await?;
        }
        txn.commit().await?;
        Ok(n)
    }

    pub async fn users(&self, rows: &[BulkUser]) -> StoreResult<u64> {
        let t = self.tenant.0;
        let now = Utc::now();
        let models = rows
            .iter()
            .map(|u| user::ActiveModel {
                tenant_id: Set(t),
                id: Set(u.id.0),
                subject: Set(u.subject.clone()),
                name: Set(u.name.clone()),
                email: Set(None),
                created_at: Set(now),
                last_seen_at: Set(None),
            })
            .collect();
        self.insert(7, models).await
    }

    pub async fn user_groups(&self, rows: &[(UserGroupId, String)]) -> StoreResult<u64> {
        let t = self.tenant.0;
        let now = Utc::now();
        let models = rows
            .iter()
            .map(|(id, name)| user_group::ActiveModel {
                tenant_id: Set(t),
                id: Set(id.0),
                name: Set(name.clone()),
                description: Set(None),
                created_at: Set(now),
            })
            .collect();
        self.insert(5, models).await
    }

    pub async fn user_group_members(&self, rows: &[(UserGroupId, UserId)]) -> StoreResult<u64> {
        let t = self.tenant.0;
        let now = Utc::now();
        let models = rows
            .iter()
            .map(|(g, u)| user_group_member::ActiveModel {
                tenant_id: Set(t),
                user_group_id: Set(g.0),
                user_id: Set(u.0),
                created_at: Set(now),
            })
            .collect();
        self.insert(4, models).await
    }

    pub async fn address_books(&self, rows: &[(AddressBookId, String)]) -> StoreResult<u64> {
        let t = self.tenant.0;
        let now = Utc::now();
        let models = rows
            .iter()
            .map(|(id, name)| address_book::ActiveModel {
                tenant_id: Set(t),
                id: Set(id.0),
                name: Set(name.clone()),
                description: Set(None),
                created_at: Set(now),
            })
            .collect();
        self.insert(5, models).await
    }

    pub async fn grants(&self, rows: &[(AddressBookId, Principal, AccessLevel)]) -> StoreResult<u64> {
        let t = self.tenant.0;
        let now = Utc::now();
        let models = rows
            .iter()
            .map(|(book, p, level)| grant::ActiveModel {
                tenant_id: Set(t),
                address_book_id: Set(book.0),
                principal_kind: Set(p.kind().to_owned()),
                principal_id: Set(p.id()),
                level: Set(level.as_i16()),
                granted_at: Set(now),
                granted_by: Set(None),
            })
            .collect();
        self.insert(7, models).await
    }

    /// Contacts (validated like `createContact`) with their one e-mail address, in one transaction.
    pub async fn contacts(&self, rows: &[BulkContact]) -> StoreResult<u64> {
        let t = self.tenant.0;
        let now = Utc::now();
        let mut contacts = Vec::with_capacity(rows.len());
        let mut emails = Vec::with_capacity(rows.len());
        for c in rows {
            let fields = ContactFields {
                first_name: c.first_name.clone(),
                last_name: c.last_name.clone(),
                company_name: c.company_name.clone(),
                emails: c.email.iter().map(|e| (e.clone(), None)).collect(),
                phones: vec![],
            };
            let valid = ValidContact::validate(c.kind, &fields)?;
            for (pos, (e, label)) in valid.emails.iter().enumerate() {
                emails.push(contact_email::ActiveModel {
                    tenant_id: Set(t),
                    contact_id: Set(c.id.0),
                    position: Set(pos as i32),
                    address: Set(e.as_str().to_owned()),
                    label: Set(label.clone()),
                });
            }
            contacts.push(contact::ActiveModel {
                tenant_id: Set(t),
                id: Set(c.id.0),
                address_book_id: Set(c.address_book_id.0),
                kind: Set(valid.kind.as_str().to_owned()),
                search_text: Set(crate::contacts::contact::search_text(&valid.display_name)),
                first_name: Set(valid.first_name),
                last_name: Set(valid.last_name),
                company_name: Set(valid.company_name),
                display_name: Set(valid.display_name),
                sort_name: Set(valid.sort_name),
                company_id: Set(None),
                business_status_id: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
                created_by: Set(None),
            });
        }
        let n = rows.len() as u64;
        self.contacts_unanalyzed.store(true, std::sync::atomic::Ordering::Relaxed);
        let txn = self.store.db.begin_with_options(crate::core::uow::immediate()).await?;
        for chunk in contacts.chunks(rows_per_insert(15)) {
            contact::Entity::insert_many(chunk.to_vec()).exec_without_returning(&txn).await?;
        }
        for chunk in emails.chunks(rows_per_insert(5)) {
            contact_email::Entity::insert_many(chunk.to_vec()).exec_without_returning(&txn).await?;
        }
        txn.commit().await?;
        Ok(n)
    }

    /// Groups and their closure rows. A parent must be earlier in `rows` (the call builds the
    /// hierarchy from the top); a parent outside the call is refused.
    pub async fn groups(&self, rows: &[BulkGroup]) -> StoreResult<u64> {
        let t = self.tenant.0;
        let now = Utc::now();
        let mut ancestors: HashMap<GroupId, Vec<(GroupId, i32)>> = HashMap::with_capacity(rows.len());
        let mut groups = Vec::with_capacity(rows.len());
        let mut closure = vec![];
        for g in rows {
            let valid = ValidGroup::validate(&g.name, None, 0, g.public_name.as_deref(), None)?;
            let mut mine = vec![(g.id, 0)];
            if let Some(p) = g.parent_id {
                let up = ancestors
                    .get(&p)
                    .ok_or_else(|| StoreError::invalid("parentId", "a parent must be loaded before its children"))?;
                mine.extend(up.iter().map(|(a, d)| (*a, d + 1)));
            }
            closure.extend(mine.iter().map(|(a, d)| group_closure::ActiveModel {
                tenant_id: Set(t),
                ancestor_id: Set(a.0),
                descendant_id: Set(g.id.0),
                depth: Set(*d),
            }));
            ancestors.insert(g.id, mine);
            groups.push(group::ActiveModel {
                tenant_id: Set(t),
                id: Set(g.id.0),
                address_book_id: Set(g.address_book_id.0),
                parent_id: Set(g.parent_id.map(|p| p.0)),
                name: Set(valid.name),
                sort_name: Set(valid.sort_name),
                description: Set(valid.description),
                precedence: Set(valid.precedence),
                public_name: Set(valid.public_name),
                public_description: Set(valid.public_description),
                created_at: Set(now),
                updated_at: Set(now),
            });
        }
        let n = rows.len() as u64;
        let txn = self.store.db.begin_with_options(crate::core::uow::immediate()).await?;
        for chunk in groups.chunks(rows_per_insert(12)) {
            group::Entity::insert_many(chunk.to_vec()).exec_without_returning(&txn).await?;
        }
        for chunk in closure.chunks(rows_per_insert(4)) {
            group_closure::Entity::insert_many(chunk.to_vec()).exec_without_returning(&txn).await?;
        }
        txn.commit().await?;
        Ok(n)
    }

    /// Memberships. The book and sort key on each row are read from the contact itself inside
    /// the same transaction (they must match for the visibility filter to be right); an unknown
    /// contact is refused and nothing of the call is written.
    pub async fn memberships(&self, rows: &[BulkMembership]) -> StoreResult<u64> {
        let t = self.tenant.0;
        if self.contacts_unanalyzed.swap(false, std::sync::atomic::Ordering::Relaxed) {
            let db = &self.store.db;
            db.execute_raw(Statement::from_string(db.get_database_backend(), "ANALYZE contacts")).await?;
        }
        let txn = self.store.db.begin_with_options(crate::core::uow::immediate()).await?;
        for chunk in rows.chunks(rows_per_insert(9)) {
            let mut ids: Vec<Uuid> = chunk.iter().map(|m| m.contact_id.0).collect();
            ids.sort_unstable();
            ids.dedup();
            let mut keys: HashMap<Uuid, (Uuid, String)> = HashMap::with_capacity(ids.len());
            for part in ids.chunks(MAX_PARAMS - 1) {
                let found: Vec<(Uuid, Uuid, String)> = contact::Entity::find()
                    .select_only()
                    .column(contact::Column::Id)
                    .column(contact::Column::AddressBookId)
                    .column(contact::Column::SortName)
                    .filter(contact::Column::TenantId.eq(t))
                    .filter(contact::Column::Id.is_in(part.iter().copied()))
                    .into_tuple()
                    .all(&txn)
                    .await?;
                keys.extend(found.into_iter().map(|(id, book, sort)| (id, (book, sort))));
            }
            let mut models = Vec::with_capacity(chunk.len());
            for m in chunk {
                let (book, sort) = keys
                    .get(&m.contact_id.0)
                    .ok_or_else(|| StoreError::invalid("contactId", "every member must be a loaded contact"))?;
                models.push(membership::ActiveModel {
                    tenant_id: Set(t),
                    group_id: Set(m.group_id.0),
                    contact_id: Set(m.contact_id.0),
                    address_book_id: Set(*book),
                    sort_name: Set(sort.clone()),
                    joined_at: Set(m.joined_at),
                    source: Set(m.source.as_str().to_owned()),
                    assigned_by: Set(m.assigned_by.map(|u| u.0)),
                    consent_id: Set(None),
                });
            }
            membership::Entity::insert_many(models).exec_without_returning(&txn).await?;
        }
        txn.commit().await?;
        Ok(rows.len() as u64)
    }

    pub async fn products(&self, rows: &[BulkProduct]) -> StoreResult<u64> {
        let t = self.tenant.0;
        let now = Utc::now();
        let mut models = Vec::with_capacity(rows.len());
        for p in rows {
            let price =
                money::to_micros(p.list_price).ok_or_else(|| StoreError::invalid("listPrice", "is too large"))?;
            models.push(product::ActiveModel {
                tenant_id: Set(t),
                id: Set(p.id.0),
                sku: Set(p.sku.clone()),
                sort_name: Set(p.name.to_lowercase()),
                name: Set(p.name.clone()),
                list_price_micros: Set(price),
                currency: Set(p.currency.code().to_owned()),
                active: Set(true),
                created_at: Set(now),
                updated_at: Set(now),
            });
        }
        self.insert(10, models).await
    }

    pub async fn price_lists(&self, rows: &[(PriceListId, String, Currency)]) -> StoreResult<u64> {
        let t = self.tenant.0;
        let now = Utc::now();
        let models = rows
            .iter()
            .map(|(id, name, cur)| price_list::ActiveModel {
                tenant_id: Set(t),
                id: Set(id.0),
                sort_name: Set(name.to_lowercase()),
                name: Set(name.clone()),
                currency: Set(cur.code().to_owned()),
                valid_from: Set(None),
                valid_to: Set(None),
                base_price_list_id: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
            })
            .collect();
        self.insert(10, models).await
    }

    pub async fn price_items(&self, rows: &[BulkPriceItem]) -> StoreResult<u64> {
        let t = self.tenant.0;
        let mut models = Vec::with_capacity(rows.len());
        for i in rows {
            let qty = money::to_millis(i.min_quantity)
                .filter(|q| *q > 0)
                .ok_or_else(|| StoreError::invalid("minQuantity", "must be positive"))?;
            let price =
                money::to_micros(i.fixed_price).ok_or_else(|| StoreError::invalid("fixedPrice", "is too large"))?;
            models.push(price_item::ActiveModel {
                tenant_id: Set(t),
                id: Set(i.id.0),
                price_list_id: Set(i.price_list_id.0),
                product_id: Set(i.product_id.0),
                min_quantity_millis: Set(qty),
                fixed_price_micros: Set(Some(price)),
                discount_percent_micros: Set(None),
                valid_from: Set(None),
                valid_to: Set(None),
            });
        }
        self.insert(9, models).await
    }

    pub async fn group_price_lists(&self, rows: &[(GroupId, PriceListId, i32)]) -> StoreResult<u64> {
        let t = self.tenant.0;
        let models = rows
            .iter()
            .map(|(g, l, prio)| group_price_list::ActiveModel {
                tenant_id: Set(t),
                group_id: Set(g.0),
                price_list_id: Set(l.0),
                priority: Set(*prio),
            })
            .collect();
        self.insert(4, models).await
    }

    /// Refreshes the planner's statistics after a load (both engines plan from them). On
    /// PostgreSQL it vacuums too, which sets the visibility map that index-only scans rely on
    /// (autovacuum would do the same a little later).
    pub async fn analyze(&self) -> StoreResult<()> {
        let db = &self.store.db;
        let sql = self.store.dialect().analyze();
        db.execute_raw(Statement::from_string(db.get_database_backend(), sql)).await?;
        Ok(())
    }

    /// Whether calls may run concurrently to good effect (PostgreSQL; SQLite has one writer).
    pub fn parallel_writes(&self) -> usize {
        if self.store.backend_name() == "postgres" { 2 } else { 1 }
    }
}
