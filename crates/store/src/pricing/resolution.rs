//! Resolution: pricing lines for a contact, with explanations.

use super::*;
use crate::access::handle::DataHandle;
use crate::core::decode;
use crate::core::sql::Sql;
use crate::core::visibility::{known_level, level_in_statement};
use crate::entities::{price_item, product};
use crate::error::{StoreError, StoreResult};
use chrono::{DateTime, Utc};
use cohort_domain::AccessLevel;
use cohort_domain::ids::{ContactId, GroupId, PriceListId};
use cohort_domain::inherit;
use cohort_domain::money::{self, Currency};
use cohort_domain::pricing::{self, Assignments, Base, ContactAssignment, GroupAssignment, PriceList};
use cohort_domain::text::{Key, MAX_SKU_CHARS};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
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
        // The contact (through the rule), its own lists, its groups' candidate lists and the
        // tenant default: one statement. The level is read along only when an order needs it.
        let ctx = self.pricing_context(contact_id, needed > AccessLevel::Read).await?;
        if needed > AccessLevel::Read && !AccessLevel::allows(Some(ctx.level), needed) {
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
        let PricingContext { assignments, visible_groups, .. } = ctx;
        // The candidate lists, their base chains and their items for these products: one statement.
        let product_ids: Vec<Uuid> = resolved_products.iter().map(|p| p.id).collect();
        let mut candidates: Vec<Uuid> = pricing::order(&assignments).iter().map(|c| c.list.0).collect();
        candidates.sort();
        candidates.dedup();
        let (lists, names) = self.lists_with_items(&candidates, &product_ids).await?;
        let names = std::sync::Arc::new(names);
        let visible_groups = std::sync::Arc::new(visible_groups);
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

    /// What resolution needs to know about the contact, in one statement of tagged rows (`k`):
    /// 0 the contact itself, present only if the viewer may see it (with the viewer's level on
    /// its book when `with_level`) — the contact's own rows below are read only then too, so a
    /// hidden contact costs what a missing one does; 1 its own lists; 2 for each direct group, every list
    /// assigned along its ancestry (the nearest definition wins, `cohort_domain::inherit`) with
    /// whether the viewer may see the group and the defining ancestor (all groups count for the
    /// price; only visible ones are named); 3 the tenant default. Every branch fills the uuid
    /// columns with real ids and the numbers with integers, so both dialects agree on the
    /// column types without casts.
    async fn pricing_context(&self, contact_id: ContactId, with_level: bool) -> StoreResult<PricingContext> {
        let v = self.viewer();
        let t = v.tenant_id.0;
        let level_in_sql = with_level && level_in_statement(v);
        let mut q = Sql::new(v.dialect);
        q.push("SELECT 0 AS k, c.address_book_id AS a, c.id AS b, c.id AS l, 0 AS d, 0 AS p, 0 AS pr, ");
        if level_in_sql {
            q.viewer_level(v, "c.address_book_id");
        } else {
            q.push("0");
        }
        q.push(" AS lvl, 0 AS gv, 0 AS av FROM contacts c WHERE c.tenant_id = ")
            .bind(t)
            .push(" AND c.id = ")
            .bind(contact_id.0)
            .push(" AND ")
            .visible_books(v, "c.address_book_id", AccessLevel::Read)
            .push(" UNION ALL SELECT 1, cp.contact_id, cp.contact_id, cp.price_list_id, 0, cp.priority, 0, 0, 0, 0 FROM contact_price_lists cp WHERE cp.tenant_id = ")
            .bind(t)
            .push(" AND cp.contact_id = ")
            .bind(contact_id.0)
            .push(" AND EXISTS (SELECT 1 FROM contacts vc WHERE vc.tenant_id = cp.tenant_id AND vc.id = cp.contact_id AND ")
            .visible_books(v, "vc.address_book_id", AccessLevel::Read)
            .push(")")
            .push(" UNION ALL SELECT 2, m.group_id, cl.ancestor_id, a.price_list_id, cl.depth, a.priority, g.precedence, 0, CASE WHEN ")
            .visible_books(v, "g.address_book_id", AccessLevel::Read)
            .push(" THEN 1 ELSE 0 END, CASE WHEN ")
            .visible_books(v, "ag.address_book_id", AccessLevel::Read)
            .push(" THEN 1 ELSE 0 END FROM group_memberships m JOIN contact_groups g ON g.tenant_id = m.tenant_id AND g.id = m.group_id JOIN group_closure cl ON cl.tenant_id = m.tenant_id AND cl.descendant_id = m.group_id JOIN group_price_lists a ON a.tenant_id = cl.tenant_id AND a.group_id = cl.ancestor_id JOIN contact_groups ag ON ag.tenant_id = cl.tenant_id AND ag.id = cl.ancestor_id WHERE m.tenant_id = ")
            .bind(t)
            .push(" AND m.contact_id = ")
            .bind(contact_id.0)
            // The membership carries its contact's book: a hidden contact's groups are not read.
            .push(" AND ")
            .visible_books(v, "m.address_book_id", AccessLevel::Read)
            .push(" UNION ALL SELECT 3, s.tenant_id, s.tenant_id, s.default_price_list_id, 0, 0, 0, 0, 0, 0 FROM tenant_settings s WHERE s.tenant_id = ")
            .bind(t)
            .push(" AND s.default_price_list_id IS NOT NULL");
        let rows = self.db.query_all_raw(q.build()).await?;
        let mut book = None;
        let mut stated_level = None;
        let mut contact = Vec::new();
        let mut found = Vec::new();
        let mut precedence: HashMap<Uuid, i32> = HashMap::new();
        let mut visible_groups = HashSet::new();
        let mut default = None;
        for r in rows {
            let k: i32 = r.try_get("", "k")?;
            let a: Uuid = r.try_get("", "a")?;
            let l: Uuid = r.try_get("", "l")?;
            match k {
                0 => {
                    book = Some(a);
                    stated_level = r.try_get::<Option<i32>>("", "lvl")?;
                }
                1 => contact.push(ContactAssignment { list: PriceListId(l), priority: r.try_get("", "p")? }),
                2 => {
                    let defined_on: Uuid = r.try_get("", "b")?;
                    precedence.insert(a, r.try_get("", "pr")?);
                    if r.try_get::<i32>("", "gv")? == 1 {
                        visible_groups.insert(GroupId(a));
                    }
                    if r.try_get::<i32>("", "av")? == 1 {
                        visible_groups.insert(GroupId(defined_on));
                    }
                    found.push((
                        a,
                        inherit::Found {
                            defined_on: GroupId(defined_on),
                            depth: r.try_get("", "d")?,
                            value: (PriceListId(l), r.try_get::<i32>("", "p")?),
                        },
                    ));
                }
                _ => default = Some(PriceListId(l)),
            }
        }
        // No contact row: it does not exist or the viewer may not see it — the same answer.
        let book = book.ok_or(StoreError::NotFound)?;
        let level = if !with_level {
            AccessLevel::Read
        } else if level_in_sql {
            let n = stated_level.ok_or_else(|| StoreError::corrupt("address_book_grants.level", "none"))?;
            let n = i16::try_from(n).map_err(|_| StoreError::corrupt("address_book_grants.level", n))?;
            AccessLevel::from_i16(n).ok_or_else(|| StoreError::corrupt("address_book_grants.level", n))?
        } else {
            // Admin, or the grants are inline: known without the database (the contact is
            // visible, so the viewer holds at least READ).
            known_level(v, book).unwrap_or(AccessLevel::Read)
        };
        // Each direct group's effective lists: its own, else its nearest ancestor's (one rule,
        // `cohort_domain::inherit`).
        let mut groups: Vec<GroupAssignment> = inherit::effective_per(found)
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
        groups.sort_by_key(|a| (a.group.0, a.priority, a.list.0));
        contact.sort_by_key(|c| (c.priority, c.list.0));
        Ok(PricingContext { level, assignments: Assignments { contact, groups, default }, visible_groups })
    }

    /// The price lists `ids`, the lists their bases lead to (a recursive walk; cycles are refused
    /// when lists are saved, and 32 steps bound it anyway, as resolution did before) and their items for `products`, in one
    /// statement: a list row comes with each of its matching items, or once with none. SQLite
    /// binds at most 32,766 values, so very many lists go in chunks there.
    async fn lists_with_items(
        &self,
        ids: &[Uuid],
        products: &[Uuid],
    ) -> StoreResult<(HashMap<PriceListId, PriceList>, HashMap<PriceListId, String>)> {
        let v = self.viewer();
        let mut lists: HashMap<PriceListId, PriceList> = HashMap::new();
        let mut names: HashMap<PriceListId, String> = HashMap::new();
        for chunk in ids.chunks(v.dialect.id_chunk()) {
            let mut q = Sql::new(v.dialect);
            q.push("WITH RECURSIVE chain(id, n) AS (SELECT pl.id, 0 FROM price_lists pl WHERE pl.tenant_id = ")
                .bind(v.tenant_id.0)
                .push(" AND pl.id")
                .in_ids(chunk)
                .push(" UNION SELECT pl.base_price_list_id, chain.n + 1 FROM chain JOIN price_lists pl ON pl.tenant_id = ")
                .bind(v.tenant_id.0)
                .push(" AND pl.id = chain.id WHERE pl.base_price_list_id IS NOT NULL AND chain.n < 32) SELECT l.id, l.name, l.currency, l.valid_from, l.valid_to, l.base_price_list_id, i.id AS item_id, i.product_id, i.min_quantity_millis, i.fixed_price_micros, i.discount_percent_micros, i.valid_from AS item_valid_from, i.valid_to AS item_valid_to FROM price_lists l LEFT JOIN price_items i ON i.tenant_id = l.tenant_id AND i.price_list_id = l.id AND i.product_id")
                .in_ids(products)
                .push(" WHERE l.tenant_id = ")
                .bind(v.tenant_id.0)
                .push(" AND l.id IN (SELECT chain.id FROM chain)");
            let mut here: HashMap<PriceListId, PriceList> = HashMap::new();
            for r in self.db.query_all_raw(q.build()).await? {
                let id = PriceListId(r.try_get("", "id")?);
                let list = match here.entry(id) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        names.insert(id, r.try_get("", "name")?);
                        let base: Option<Uuid> = r.try_get("", "base_price_list_id")?;
                        e.insert(PriceList {
                            id,
                            currency: decode::currency(&r.try_get::<String>("", "currency")?)?,
                            valid_from: r.try_get("", "valid_from")?,
                            valid_to: r.try_get("", "valid_to")?,
                            base: base.map(|b| Base::List(PriceListId(b))).unwrap_or(Base::ListPrice),
                            items: Vec::new(),
                        })
                    }
                };
                let Some(item_id) = r.try_get::<Option<Uuid>>("", "item_id")? else { continue };
                list.items.push(domain_item(price_item::Model {
                    tenant_id: v.tenant_id.0,
                    id: item_id,
                    price_list_id: id.0,
                    product_id: r.try_get("", "product_id")?,
                    min_quantity_millis: r.try_get("", "min_quantity_millis")?,
                    fixed_price_micros: r.try_get("", "fixed_price_micros")?,
                    discount_percent_micros: r.try_get("", "discount_percent_micros")?,
                    valid_from: r.try_get("", "item_valid_from")?,
                    valid_to: r.try_get("", "item_valid_to")?,
                }));
            }
            // A base reached from two chunks keeps the items of its first reading.
            for (id, l) in here {
                lists.entry(id).or_insert(l);
            }
        }
        Ok((lists, names))
    }
}

/// The contact's side of a resolution ([`DataHandle::pricing_context`]).
struct PricingContext {
    /// The viewer's level on the contact's book (READ unless asked for).
    level: AccessLevel,
    assignments: Assignments,
    /// The candidate groups (members and defining ancestors) the viewer may see.
    visible_groups: HashSet<GroupId>,
}
