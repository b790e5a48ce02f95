//! Orders: placed with their prices frozen, readable by whoever can see the ordering contact.
//! Group views (`Group.orders`, `Group.orderSummary`) cover the orders of the group's members the
//! viewer can see — an order of a hidden contact never shows, not even in a total.

use crate::access::handle::DataHandle;
use crate::access::viewer::Viewer;
use crate::core::decode;
use crate::core::page::{Page, PageRequest};
use crate::core::sql::Sql;
use crate::core::uow::{Claim, fingerprint};
use crate::entities::{order, order_line};
use crate::error::{StoreError, StoreResult};
use crate::events::{EventType, Subject, SubjectKind};
use crate::pricing::{PriceLine, ProductRecord, ProductRef};
use chrono::{DateTime, SubsecRound, Utc};
use cohort_domain::AccessLevel;
use cohort_domain::ids::{ContactId, GroupId, OrderId, PriceListId, ProductId, UserId};
use cohort_domain::money::{self, Currency};
use cohort_domain::pricing::Step;
use rust_decimal::Decimal;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait, FromQueryResult};
use std::collections::HashMap;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    pub id: OrderId,
    pub contact_id: ContactId,
    pub currency: Currency,
    pub total: Decimal,
    pub line_count: i32,
    pub placed_at: DateTime<Utc>,
    pub placed_by: Option<UserId>,
    /// The date the prices were determined for.
    pub priced_at: DateTime<Utc>,
}

fn order_record(m: order::Model) -> StoreResult<OrderRecord> {
    let currency = decode::currency(&m.currency)?;
    Ok(OrderRecord {
        id: OrderId(m.id),
        contact_id: ContactId(m.contact_id),
        total: money::from_minor(m.total_minor, currency),
        currency,
        line_count: m.line_count,
        placed_at: m.placed_at,
        placed_by: m.placed_by.map(UserId),
        priced_at: m.priced_at,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLineRecord {
    pub line_no: i32,
    pub product_id: ProductId,
    pub sku: String,
    pub product_name: String,
    pub quantity: Decimal,
    pub unit_price: Decimal,
    pub line_total: Decimal,
    pub source: Step,
    pub price_list_id: Option<PriceListId>,
    pub price_list_name: Option<String>,
    pub group_id: Option<GroupId>,
}

/// Orders of one currency: how many, and their total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderSummaryRecord {
    pub currency: Currency,
    pub order_count: i64,
    pub total: Decimal,
}

fn step_str(s: Step) -> &'static str {
    match s {
        Step::ContactList => "CONTACT_LIST",
        Step::GroupList => "GROUP_LIST",
        Step::DefaultList => "DEFAULT_LIST",
        Step::ListPrice => "LIST_PRICE",
    }
}

fn step_parse(s: &str) -> StoreResult<Step> {
    decode::strict(
        "order_lines.source",
        s,
        match s {
            "CONTACT_LIST" => Some(Step::ContactList),
            "GROUP_LIST" => Some(Step::GroupList),
            "DEFAULT_LIST" => Some(Step::DefaultList),
            "LIST_PRICE" => Some(Step::ListPrice),
            _ => None,
        },
    )
}

/// Which orders a group view covers: those of the group's (or its visible subtree's) members,
/// placed by contacts the viewer can see.
fn group_orders_where(q: &mut Sql, v: &Viewer, g: GroupId, include_subgroups: bool) {
    q.push(" FROM orders o JOIN contacts c ON c.tenant_id = o.tenant_id AND c.id = o.contact_id WHERE o.tenant_id = ")
        .bind(v.tenant_id.0)
        .push(" AND ")
        .visible_books(v, "c.address_book_id", AccessLevel::Read)
        .push(" AND o.contact_id IN (SELECT m.contact_id FROM group_memberships m WHERE m.tenant_id = ")
        .bind(v.tenant_id.0)
        .push(" AND m.group_id IN ");
    if include_subgroups {
        q.visible_subtree(v, g.0);
    } else {
        q.push("(").bind(g.0).push(") AND m.group_id IN ").visible_groups(v);
    }
    q.push(")");
}

/// `FROM … WHERE …` of a contact's orders, visible only with the contact.
fn contact_orders_where(q: &mut Sql, v: &Viewer, contact: ContactId) {
    q.push(" FROM orders o JOIN contacts c ON c.tenant_id = o.tenant_id AND c.id = o.contact_id WHERE o.tenant_id = ")
        .bind(v.tenant_id.0)
        .push(" AND o.contact_id = ")
        .bind(contact.0)
        .push(" AND ")
        .visible_books(v, "c.address_book_id", AccessLevel::Read);
}

const ORDER_COLUMNS: &str = "SELECT o.tenant_id, o.id, o.contact_id, o.currency, o.total_minor, o.line_count, o.placed_at, o.placed_by, o.priced_at";

/// What identifies a `placeOrder` request for its idempotency key: the same key with another
/// fingerprint is `Conflict`. Quantities are normalised (`2.50` is `2.5`).
fn order_fingerprint(contact: ContactId, lines: &[PriceLine], currency: &str, at: Option<DateTime<Utc>>) -> String {
    let mut parts: Vec<String> =
        vec![contact.0.to_string(), currency.to_owned(), at.map(|t| t.to_rfc3339()).unwrap_or_default()];
    for l in lines {
        parts.push(match &l.product {
            ProductRef::Id(p) => format!("id:{}", p.0),
            ProductRef::Sku(s) => format!("sku:{s}"),
        });
        parts.push(l.quantity.normalize().to_string());
    }
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    fingerprint(&refs)
}

impl DataHandle {
    /// Prices the lines now and stores the order with its prices frozen (WRITE on the contact).
    pub async fn place_order(
        &self,
        contact: ContactId,
        lines: &[PriceLine],
        currency: &str,
        at: Option<DateTime<Utc>>,
    ) -> StoreResult<OrderRecord> {
        self.place_order_once(contact, lines, currency, at, None).await.map(|(o, _)| o)
    }

    /// [`DataHandle::place_order`] with an optional idempotency key: a retry with the same key
    /// (same user, same request, within 24 h) answers the order the first request placed and
    /// places nothing (`true` = replayed); the same key with another request is `Conflict`.
    /// Concurrent requests with one key place one order: the others wait for its commit and
    /// answer it.
    pub async fn place_order_once(
        &self,
        contact: ContactId,
        lines: &[PriceLine],
        currency: &str,
        at: Option<DateTime<Utc>>,
        idempotency_key: Option<&str>,
    ) -> StoreResult<(OrderRecord, bool)> {
        let v = self.viewer();
        let keyed = idempotency_key.map(|k| (k, order_fingerprint(contact, lines, currency, at)));
        if let Some((k, print)) = &keyed {
            // A retry answers what the first request was told, whatever happened since (prices
            // changed, the product was retired): so the key is looked at before pricing. Pricing
            // reads outside the writing transaction, so this claim is given up again (rolled
            // back) and made for real below, where a concurrent twin may have committed meanwhile.
            let mut w = self.begin().await?;
            if let Claim::Replay(first) = w.claim_key::<Uuid>(k, "placeOrder", print).await? {
                drop(w);
                return Ok((self.replayed_order(OrderId(first)).await?, true));
            }
            drop(w);
        }
        // Back-dating an order (pricing it for another date) could revive an expired promotion:
        // only admins may.
        if at.is_some() && !v.is_admin() {
            return Err(StoreError::forbidden("only admins may price an order for another date"));
        }
        // Microseconds, as PostgreSQL keeps them: the answer is the order as it reads back later
        // (an idempotent retry's answer, `order(id:)`), to the digit.
        let now = Utc::now().trunc_subsecs(6);
        let priced_at = at.map_or(now, |t| t.trunc_subsecs(6));
        let priced = self.price_lines(contact, lines, currency, priced_at, AccessLevel::Write).await?;
        let cur = priced.first().map(|p| p.resolution.currency).ok_or(StoreError::NotFound)?;
        let too_large = || StoreError::invalid("lines", "line and order totals must stay below 10^12");
        if priced.iter().any(|p| p.resolution.line_total >= money::max_amount()) {
            return Err(too_large());
        }
        let total: Decimal = priced.iter().map(|p| p.resolution.line_total).sum();
        if total >= money::max_amount() {
            return Err(too_large());
        }
        let id = Uuid::now_v7();
        let m = order::Model {
            tenant_id: v.tenant_id.0,
            id,
            contact_id: contact.0,
            currency: cur.code().to_owned(),
            total_minor: money::to_minor(total, cur).ok_or_else(too_large)?,
            line_count: priced.len() as i32,
            placed_at: now,
            placed_by: Some(v.user_id.0),
            priced_at,
        };
        let mut w = self.begin().await?;
        if let Some((k, print)) = &keyed
            && let Claim::Replay(first) = w.claim_key::<Uuid>(k, "placeOrder", print).await?
        {
            // A concurrent request with the same key placed it while this one was pricing.
            drop(w);
            return Ok((self.replayed_order(OrderId(first)).await?, true));
        }
        // The grant is checked again inside the writing transaction (with the contact locked): a
        // revocation or a move between pricing and writing refuses the order.
        self.contact_for(w.tx(), v, contact, AccessLevel::Write).await?;
        order::Entity::insert(order::ActiveModel::from(m.clone())).exec_without_returning(w.tx()).await?;
        let rows: Vec<order_line::ActiveModel> = priced
            .iter()
            .enumerate()
            .map(|(i, p)| -> StoreResult<order_line::ActiveModel> {
                let r = &p.resolution;
                let prod: &ProductRecord = &p.product;
                Ok(order_line::ActiveModel {
                    tenant_id: Set(v.tenant_id.0),
                    order_id: Set(id),
                    line_no: Set(i as i32 + 1),
                    product_id: Set(prod.id.0),
                    sku: Set(prod.sku.clone()),
                    product_name: Set(prod.name.clone()),
                    quantity_millis: Set(crate::pricing::millis("quantity", p.quantity)?),
                    unit_price_micros: Set(crate::pricing::micros("unitPrice", r.unit_price)?),
                    line_total_minor: Set(money::to_minor(r.line_total, cur).ok_or_else(too_large)?),
                    source: Set(step_str(r.step).to_owned()),
                    price_list_id: Set(r.list.map(|l| l.0)),
                    price_list_name: Set(r.list.and_then(|l| p.list_names.get(&l).cloned())),
                    group_id: Set(r.group.map(|g| g.0)),
                })
            })
            .collect::<StoreResult<_>>()?;
        for chunk in rows.chunks(1000) {
            order_line::Entity::insert_many(chunk.to_vec()).exec_without_returning(w.tx()).await?;
        }
        w.emit(
            EventType::OrderPlaced,
            vec![Subject::new(SubjectKind::Order, id), Subject::new(SubjectKind::Contact, contact.0)],
            serde_json::json!({"currency": m.currency, "totalMinor": m.total_minor, "lineCount": m.line_count}),
        );
        w.audit(
            "order.place",
            "Order",
            Some(id),
            serde_json::json!({"contactId": contact.0, "currency": m.currency, "totalMinor": m.total_minor,
                "lineCount": m.line_count}),
        );
        w.answer(&id)?;
        w.commit().await?;
        Ok((order_record(m)?, false))
    }

    /// The answer of an idempotent retry: the order the first request placed, if the viewer can
    /// still see its contact (`NotFound` otherwise, like any order they cannot see).
    async fn replayed_order(&self, id: OrderId) -> StoreResult<OrderRecord> {
        self.orders_by_ids(&[id]).await?.into_iter().next().ok_or(StoreError::NotFound)
    }

    /// Orders by id, of contacts the viewer can see.
    pub async fn orders_by_ids(&self, ids: &[OrderId]) -> StoreResult<Vec<OrderRecord>> {
        let v = self.viewer();
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let mut q = Sql::new(v.dialect);
        q.push(ORDER_COLUMNS)
            .push(" FROM orders o JOIN contacts c ON c.tenant_id = o.tenant_id AND c.id = o.contact_id WHERE o.tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND o.id IN ")
            .bind_list(ids.iter().map(|i| i.0))
            .push(" AND ")
            .visible_books(v, "c.address_book_id", AccessLevel::Read);
        let rows = self.db.query_all_raw(q.build()).await?;
        rows.iter().map(|r| order_record(order::Model::from_query_result(r, "")?)).collect()
    }

    /// The lines of visible orders, for many orders at once (one check, one statement).
    pub async fn order_lines(&self, ids: &[OrderId]) -> StoreResult<HashMap<OrderId, Vec<OrderLineRecord>>> {
        let v = self.viewer();
        let visible: HashMap<Uuid, Currency> =
            self.orders_by_ids(ids).await?.into_iter().map(|o| (o.id.0, o.currency)).collect();
        let mut out: HashMap<OrderId, Vec<OrderLineRecord>> = HashMap::new();
        if visible.is_empty() {
            return Ok(out);
        }
        use sea_orm::{ColumnTrait, QueryFilter, QueryOrder};
        for l in order_line::Entity::find()
            .filter(order_line::Column::TenantId.eq(v.tenant_id.0))
            .filter(order_line::Column::OrderId.is_in(visible.keys().copied()))
            .order_by_asc(order_line::Column::OrderId)
            .order_by_asc(order_line::Column::LineNo)
            .all(&self.db)
            .await?
        {
            let currency = visible[&l.order_id];
            out.entry(OrderId(l.order_id)).or_default().push(OrderLineRecord {
                line_no: l.line_no,
                product_id: ProductId(l.product_id),
                sku: l.sku,
                product_name: l.product_name,
                quantity: money::from_millis(l.quantity_millis),
                unit_price: money::from_micros(l.unit_price_micros),
                line_total: money::from_minor(l.line_total_minor, currency),
                source: step_parse(&l.source)?,
                price_list_id: l.price_list_id.map(PriceListId),
                price_list_name: l.price_list_name,
                group_id: l.group_id.map(GroupId),
            });
        }
        Ok(out)
    }

    async fn order_page(&self, mut q: Sql, page: &PageRequest) -> StoreResult<Page<OrderRecord>> {
        if let Some(crate::core::page::TimeKey(at, id)) = page.after_key()? {
            q.push(" AND (o.placed_at < ")
                .bind(at)
                .push(" OR (o.placed_at = ")
                .bind(at)
                .push(" AND o.id < ")
                .bind(id)
                .push("))");
        }
        q.push(" ORDER BY o.placed_at DESC, o.id DESC LIMIT ").bind(page.limit() as i64);
        let rows = self.db.query_all_raw(q.build()).await?;
        let recs = rows
            .iter()
            .map(|r| order_record(order::Model::from_query_result(r, "")?))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_rows(recs, page, |o| (o.placed_at, o.id.0)))
    }

    /// A visible contact's orders, newest first.
    pub async fn contact_orders(&self, contact: ContactId, page: &PageRequest) -> StoreResult<Page<OrderRecord>> {
        let v = self.viewer();
        let mut q = Sql::new(v.dialect);
        q.push(ORDER_COLUMNS);
        contact_orders_where(&mut q, v, contact);
        self.order_page(q, page).await
    }

    /// How many orders a visible contact has (0 for a hidden one).
    pub async fn contact_order_count(&self, contact: ContactId) -> StoreResult<u64> {
        let v = self.viewer();
        let mut q = Sql::new(v.dialect);
        q.push("SELECT COUNT(*) AS n");
        contact_orders_where(&mut q, v, contact);
        crate::core::sql::count(&self.db, q).await
    }

    /// How many orders the group's visible members have.
    pub async fn group_order_count(&self, g: GroupId, include_subgroups: bool) -> StoreResult<u64> {
        let v = self.viewer();
        let mut q = Sql::new(v.dialect);
        q.push("SELECT COUNT(*) AS n");
        group_orders_where(&mut q, v, g, include_subgroups);
        crate::core::sql::count(&self.db, q).await
    }

    /// Orders of the group's visible members, newest first.
    pub async fn group_orders(
        &self,
        g: GroupId,
        include_subgroups: bool,
        page: &PageRequest,
    ) -> StoreResult<Page<OrderRecord>> {
        let v = self.viewer();
        let mut q = Sql::new(v.dialect);
        q.push(ORDER_COLUMNS);
        group_orders_where(&mut q, v, g, include_subgroups);
        self.order_page(q, page).await
    }

    /// Order counts and totals per currency over the group's visible members, placed in
    /// `[from, to)`.
    pub async fn group_order_summary(
        &self,
        g: GroupId,
        include_subgroups: bool,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<OrderSummaryRecord>> {
        let v = self.viewer();
        let mut q = Sql::new(v.dialect);
        q.push("SELECT o.currency AS currency, COUNT(*) AS n, CAST(SUM(o.total_minor) AS BIGINT) AS total");
        group_orders_where(&mut q, v, g, include_subgroups);
        if let Some(f) = from {
            q.push(" AND o.placed_at >= ").bind(f);
        }
        if let Some(t) = to {
            q.push(" AND o.placed_at < ").bind(t);
        }
        q.push(" GROUP BY o.currency ORDER BY o.currency");
        let mut out = vec![];
        for r in self.db.query_all_raw(q.build()).await? {
            let code: String = r.try_get("", "currency")?;
            let currency = decode::currency(&code)?;
            out.push(OrderSummaryRecord {
                currency,
                order_count: r.try_get("", "n")?,
                total: money::from_minor(r.try_get("", "total")?, currency),
            });
        }
        Ok(out)
    }
}
