//! Resolution: pricing lines for a contact, with explanations.

use super::*;
use crate::access::handle::DataHandle;
use crate::core::decode;
use crate::core::sql::Sql;
use crate::core::visibility::book_level;
use crate::entities::{contact_price_list, price_item, price_list, product, tenant_settings};
use crate::error::{StoreError, StoreResult};
use chrono::{DateTime, Utc};
use cohort_domain::AccessLevel;
use cohort_domain::ids::{ContactId, GroupId, PriceListId};
use cohort_domain::inherit;
use cohort_domain::money::{self, Currency};
use cohort_domain::pricing::{self, Assignments, Base, ContactAssignment, GroupAssignment, PriceList};
use cohort_domain::text::{Key, MAX_SKU_CHARS};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

impl DataHandle {
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
        // Visible means READ: only a higher need (an order) asks for the level.
        if needed > AccessLevel::Read
            && !AccessLevel::allows(
                book_level(&self.db, v, cohort_domain::ids::AddressBookId(c.address_book_id)).await?,
                needed,
            )
        {
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
