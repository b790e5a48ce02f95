//! Subject access (GDPR Art. 15): everything Cohort holds about **one** person, as one JSON
//! document — the lawful counterpart of "no bulk export": one person per call, for tenant admins,
//! audited (`contact.dataExport`, counts only) and metered like any other read of a contact.
//!
//! The document is read in one snapshot (a read-only REPEATABLE READ transaction on PostgreSQL;
//! SQLite's read transaction is a snapshot already), so its parts agree with each other. Ids are
//! the API's global ids (the caller passes the encoder: the store does not own the id format).
//! Staff appear by id only: the document is about the person, not about the workers who served
//! them. A private message's body stays with its recipient, and so does its subject where the
//! tenant hides private subjects (DESIGN §1 "Responsibility and routing"): the export says the
//! message exists and what is withheld. Unmatched messages from an address another contact also
//! has are left out (they may be the other person's).

use crate::access::handle::DataHandle;
use crate::contacts::contact::visible_contacts;
use crate::contacts::erasure::erased_at;
use crate::core::dialect::Dialect;
use crate::entities::{
    address_book, business_status, consent_entry, consent_request, consent_state, contact, contact_email,
    contact_phone, contact_price_list, group, membership, membership_event, message, order, order_line, price_list,
    process_area, sequence, sequence_enrolment, status_change, tenant_settings, ticket, ticket_history,
};
use crate::error::{StoreError, StoreResult};
use chrono::{DateTime, SubsecRound, Utc};
use cohort_domain::ids::{ContactId, UserId};
use cohort_domain::money::{self, Currency};
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    AccessMode, ColumnTrait, Condition, DatabaseTransaction, EntityTrait, IsolationLevel, QueryFilter, QueryOrder,
    TransactionTrait,
};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use uuid::Uuid;

/// The document's format name (`format` at its top); a change of shape gets a new version.
pub const EXPORT_FORMAT: &str = "cohort.contact-data-export/v1";

/// Turns (type tag, uuid) into the API's global id.
pub type IdEncoder<'a> = &'a (dyn Fn(&'static str, Uuid) -> String + Send + Sync);

/// A subject-access export: the document and when it was made.
#[derive(Debug, Clone)]
pub struct ContactDataExport {
    pub generated_at: DateTime<Utc>,
    pub document: Value,
}

/// Loads the rows of entity module `$m` that belong to one contact of one tenant, in `$order`.
macro_rules! rows_of {
    ($txn:expr, $m:ident, $t:expr, $c:expr, $order:expr) => {
        $m::Entity::find()
            .filter($m::Column::TenantId.eq($t))
            .filter($m::Column::ContactId.eq($c))
            .order_by_asc($order)
            .all($txn)
            .await?
    };
}

impl DataHandle {
    /// Everything held about contact `id` (tenant admins; others `Forbidden`, unknown ids
    /// `NotFound`). Erased contacts export what remains: the tombstone, orders, the consent log
    /// and the history.
    pub async fn contact_data_export(&self, id: ContactId, gid: IdEncoder<'_>) -> StoreResult<ContactDataExport> {
        let v = self.viewer();
        if !v.is_admin() {
            return Err(StoreError::forbidden("a subject-access export is for tenant admins"));
        }
        let t = v.tenant_id.0;
        let txn = match v.dialect {
            Dialect::Postgres => {
                self.db.begin_with_config(Some(IsolationLevel::RepeatableRead), Some(AccessMode::ReadOnly)).await?
            }
            Dialect::Sqlite => self.db.begin().await?,
        };
        let c =
            visible_contacts(v).filter(contact::Column::Id.eq(id.0)).one(&txn).await?.ok_or(StoreError::NotFound)?;
        let erased = erased_at(&txn, v.dialect, t, id.0).await?;
        let doc = collect(&txn, t, v.user_id.0, &c, erased, gid).await?;
        txn.commit().await?;
        let generated_at = Utc::now().trunc_subsecs(6);
        let counts = json!({
            "memberships": doc.memberships, "consentEntries": doc.consents, "orders": doc.orders,
            "tickets": doc.tickets, "messages": doc.messages,
        });
        let mut document = doc.value;
        // Written as the API writes instants (chrono's RFC 3339, `+00:00`).
        document["generatedAt"] = json!(generated_at);
        // Counted like any read of the contact (and its memberships, as pairs: the export is
        // one person's, never a matrix).
        self.saw([id]);
        self.saw_pairs(doc.memberships);
        self.audit_read("contact.dataExport", "Contact", Some(id.0), counts).await?;
        Ok(ContactDataExport { generated_at, document })
    }
}

struct Collected {
    value: Value,
    memberships: usize,
    consents: usize,
    orders: usize,
    tickets: usize,
    messages: usize,
}

async fn collect(
    txn: &DatabaseTransaction,
    t: Uuid,
    me: Uuid,
    c: &contact::Model,
    erased: Option<DateTime<Utc>>,
    gid: IdEncoder<'_>,
) -> StoreResult<Collected> {
    let user = |u: Option<Uuid>| u.map(|u| json!({"id": gid(UserId::TAG, u)}));
    // A private message's body is its recipient's alone, and so is its subject where the tenant
    // hides private subjects — the rule of every other read of messages.
    let hide_private_subjects = tenant_settings::Entity::find()
        .filter(tenant_settings::Column::TenantId.eq(t))
        .one(txn)
        .await?
        .is_some_and(|s| s.hide_private_subjects);
    let withheld = |m: &message::Model| m.is_private && m.recipient_id != Some(me);
    let emails = rows_of!(txn, contact_email, t, c.id, contact_email::Column::Position);
    let phones = rows_of!(txn, contact_phone, t, c.id, contact_phone::Column::Position);
    let statuses = rows_of!(txn, status_change, t, c.id, status_change::Column::ChangedAt);
    let members = rows_of!(txn, membership, t, c.id, membership::Column::JoinedAt);
    let history = rows_of!(txn, membership_event, t, c.id, membership_event::Column::At);
    let consents = rows_of!(txn, consent_entry, t, c.id, consent_entry::Column::At);
    let consent_states = rows_of!(txn, consent_state, t, c.id, consent_state::Column::UpdatedAt);
    let requests = rows_of!(txn, consent_request, t, c.id, consent_request::Column::CreatedAt);
    let own_lists = rows_of!(txn, contact_price_list, t, c.id, contact_price_list::Column::Priority);
    let orders = rows_of!(txn, order, t, c.id, order::Column::PlacedAt);
    let tickets = rows_of!(txn, ticket, t, c.id, ticket::Column::OpenedAt);
    let enrolments = rows_of!(txn, sequence_enrolment, t, c.id, sequence_enrolment::Column::EnrolledAt);
    // The person's messages: those matched to the contact, and those from one of its addresses
    // that were never matched to a contact — unless another contact of the tenant has that
    // address too (a shared `info@` mailbox): then the unmatched message may be the other
    // person's, and is not handed out as this one's.
    let mut addresses: Vec<String> = emails.iter().map(|e| e.address.trim().to_lowercase()).collect();
    if !addresses.is_empty() {
        let shared: BTreeSet<String> = contact_email::Entity::find()
            .filter(contact_email::Column::TenantId.eq(t))
            .filter(contact_email::Column::ContactId.ne(c.id))
            .filter(Expr::expr(Func::lower(Expr::col(contact_email::Column::Address))).is_in(addresses.clone()))
            .all(txn)
            .await?
            .into_iter()
            .map(|e| e.address.trim().to_lowercase())
            .collect();
        addresses.retain(|a| !shared.contains(a));
    }
    let mut theirs = Condition::any().add(message::Column::ContactId.eq(c.id));
    if !addresses.is_empty() {
        theirs = theirs.add(
            Condition::all()
                .add(message::Column::ContactId.is_null())
                .add(Expr::expr(Func::lower(Expr::col(message::Column::SenderEmail))).is_in(addresses)),
        );
    }
    let messages = message::Entity::find()
        .filter(message::Column::TenantId.eq(t))
        .filter(theirs)
        .order_by_asc(message::Column::ReceivedAt)
        .all(txn)
        .await?;
    let order_ids: Vec<Uuid> = orders.iter().map(|o| o.id).collect();
    let lines = order_line::Entity::find()
        .filter(order_line::Column::TenantId.eq(t))
        .filter(order_line::Column::OrderId.is_in(order_ids))
        .order_by_asc(order_line::Column::LineNo)
        .all(txn)
        .await?;
    let ticket_ids: Vec<Uuid> = tickets.iter().map(|k| k.id).collect();
    let ticket_events = ticket_history::Entity::find()
        .filter(ticket_history::Column::TenantId.eq(t))
        .filter(ticket_history::Column::TicketId.is_in(ticket_ids))
        .order_by_asc(ticket_history::Column::At)
        .all(txn)
        .await?;

    // Names of what the rows refer to, one statement per kind.
    let group_ids: BTreeSet<Uuid> = members
        .iter()
        .map(|m| m.group_id)
        .chain(history.iter().map(|h| h.group_id))
        .chain(consents.iter().map(|e| e.group_id))
        .chain(consent_states.iter().map(|s| s.group_id))
        .chain(enrolments.iter().map(|e| e.group_id))
        .collect();
    let groups: HashMap<Uuid, group::Model> = group::Entity::find()
        .filter(group::Column::TenantId.eq(t))
        .filter(group::Column::Id.is_in(group_ids))
        .all(txn)
        .await?
        .into_iter()
        .map(|g| (g.id, g))
        .collect();
    let status_ids: BTreeSet<Uuid> = statuses
        .iter()
        .flat_map(|s| [s.from_status_id, s.to_status_id])
        .chain([c.business_status_id])
        .flatten()
        .collect();
    let status_names: HashMap<Uuid, business_status::Model> = business_status::Entity::find()
        .filter(business_status::Column::TenantId.eq(t))
        .filter(business_status::Column::Id.is_in(status_ids))
        .all(txn)
        .await?
        .into_iter()
        .map(|s| (s.id, s))
        .collect();
    let list_ids: BTreeSet<Uuid> = own_lists.iter().map(|l| l.price_list_id).collect();
    let lists: HashMap<Uuid, String> = price_list::Entity::find()
        .filter(price_list::Column::TenantId.eq(t))
        .filter(price_list::Column::Id.is_in(list_ids))
        .all(txn)
        .await?
        .into_iter()
        .map(|l| (l.id, l.name))
        .collect();
    let area_ids: BTreeSet<Uuid> =
        tickets.iter().map(|k| k.process_area_id).chain(messages.iter().map(|m| m.process_area_id)).collect();
    let areas: HashMap<Uuid, process_area::Model> = process_area::Entity::find()
        .filter(process_area::Column::TenantId.eq(t))
        .filter(process_area::Column::Id.is_in(area_ids))
        .all(txn)
        .await?
        .into_iter()
        .map(|a| (a.id, a))
        .collect();
    let seq_ids: BTreeSet<Uuid> = enrolments.iter().map(|e| e.sequence_id).collect();
    let sequences: HashMap<Uuid, String> = sequence::Entity::find()
        .filter(sequence::Column::TenantId.eq(t))
        .filter(sequence::Column::Id.is_in(seq_ids))
        .all(txn)
        .await?
        .into_iter()
        .map(|s| (s.id, s.name))
        .collect();
    let book = address_book::Entity::find_by_id((t, c.address_book_id)).one(txn).await?;
    let company = match c.company_id {
        Some(co) => contact::Entity::find_by_id((t, co)).one(txn).await?,
        None => None,
    };

    let group_ref = |g: Uuid| match groups.get(&g) {
        Some(m) => json!({"id": gid("Group", g), "name": m.name, "publicName": m.public_name}),
        None => json!({"id": gid("Group", g)}),
    };
    let status_ref = |s: Option<Uuid>| {
        s.map(|s| match status_names.get(&s) {
            Some(m) => json!({"key": m.key, "label": m.label}),
            None => json!({"id": gid("BusinessStatus", s)}),
        })
    };
    let area_ref = |a: Uuid| match areas.get(&a) {
        Some(m) => json!({"id": gid("ProcessArea", a), "key": m.key, "name": m.name}),
        None => json!({"id": gid("ProcessArea", a)}),
    };

    let mut lines_by_order: HashMap<Uuid, Vec<Value>> = HashMap::new();
    let currencies: HashMap<Uuid, Option<Currency>> =
        orders.iter().map(|o| (o.id, Currency::parse(&o.currency).ok())).collect();
    for l in &lines {
        let total = match currencies.get(&l.order_id).copied().flatten() {
            Some(cur) => money::from_minor(l.line_total_minor, cur).to_string(),
            None => l.line_total_minor.to_string(),
        };
        lines_by_order.entry(l.order_id).or_default().push(json!({
            "sku": l.sku,
            "productName": l.product_name,
            "quantity": money::from_millis(l.quantity_millis).to_string(),
            "unitPrice": money::from_micros(l.unit_price_micros).to_string(),
            "lineTotal": total,
            "priceSource": l.source,
            "priceList": l.price_list_name,
        }));
    }
    let mut events_by_ticket: HashMap<Uuid, Vec<Value>> = HashMap::new();
    for h in &ticket_events {
        events_by_ticket.entry(h.ticket_id).or_default().push(json!({
            "kind": h.kind, "from": h.from_value, "to": h.to_value, "severity": h.severity,
            "reason": h.reason, "at": h.at, "by": user(h.actor_id),
        }));
    }

    let value = json!({
        "format": EXPORT_FORMAT,
        "contact": {
            "id": gid(ContactId::TAG, c.id),
            "kind": c.kind,
            "firstName": c.first_name,
            "lastName": c.last_name,
            "companyName": c.company_name,
            "displayName": c.display_name,
            "addressBook": book.map(|b| json!({"id": gid("AddressBook", b.id), "name": b.name})),
            "company": company.map(|co| json!({"id": gid(ContactId::TAG, co.id), "displayName": co.display_name})),
            "businessStatus": status_ref(c.business_status_id),
            "emails": emails.iter().map(|e| json!({"address": e.address, "label": e.label})).collect::<Vec<_>>(),
            "phones": phones.iter().map(|p| json!({"number": p.number, "label": p.label})).collect::<Vec<_>>(),
            "createdAt": c.created_at,
            "updatedAt": c.updated_at,
            "erasedAt": erased,
        },
        "businessStatusHistory": statuses.iter().map(|s| json!({
            "from": status_ref(s.from_status_id), "to": status_ref(s.to_status_id),
            "at": s.changed_at, "by": user(s.changed_by), "note": s.note,
        })).collect::<Vec<_>>(),
        "memberships": members.iter().map(|m| json!({
            "group": group_ref(m.group_id), "joinedAt": m.joined_at, "source": m.source,
            "assignedBy": user(m.assigned_by),
            "consentEntryId": m.consent_id.map(|e| gid("ConsentEntry", e)),
        })).collect::<Vec<_>>(),
        "membershipHistory": history.iter().map(|h| json!({
            "group": group_ref(h.group_id), "action": h.action, "source": h.source, "at": h.at,
            "by": user(h.actor_id), "reason": h.reason,
        })).collect::<Vec<_>>(),
        "consent": {
            "log": consents.iter().map(|e| json!({
                "id": gid("ConsentEntry", e.id), "group": group_ref(e.group_id), "action": e.action,
                "at": e.at, "channel": e.channel,
                "webForm": e.form_id.map(|f| json!({"id": gid("WebForm", f), "version": e.form_version})),
                "consentText": e.text_id.map(|x| json!({"id": gid("ConsentText", x), "sha256": e.text_sha256})),
                "evidence": {"ip": e.ip, "userAgent": e.user_agent},
                "recordedBy": user(e.agent_id), "note": e.note,
            })).collect::<Vec<_>>(),
            "current": consent_states.iter().map(|s| json!({
                "group": group_ref(s.group_id), "status": s.status, "since": s.updated_at,
            })).collect::<Vec<_>>(),
            "confirmationRequests": requests.iter().map(|r| json!({
                "webForm": {"id": gid("WebForm", r.form_id), "version": r.form_version},
                "requestedAt": r.created_at, "expiresAt": r.expires_at, "confirmedAt": r.confirmed_at,
            })).collect::<Vec<_>>(),
        },
        "individualPriceLists": own_lists.iter().map(|l| json!({
            "priceList": {"id": gid("PriceList", l.price_list_id), "name": lists.get(&l.price_list_id)},
            "priority": l.priority,
        })).collect::<Vec<_>>(),
        "orders": orders.iter().map(|o| json!({
            "id": gid("Order", o.id),
            "placedAt": o.placed_at,
            "currency": o.currency,
            "total": match currencies.get(&o.id).copied().flatten() {
                Some(cur) => money::from_minor(o.total_minor, cur).to_string(),
                None => o.total_minor.to_string(),
            },
            "lines": lines_by_order.remove(&o.id).unwrap_or_default(),
        })).collect::<Vec<_>>(),
        "tickets": tickets.iter().map(|k| json!({
            "id": gid("Ticket", k.id), "subject": k.subject, "description": k.description,
            "channel": k.channel, "status": k.status, "severity": k.severity,
            "processArea": area_ref(k.process_area_id), "openedAt": k.opened_at,
            "firstRespondedAt": k.first_responded_at, "resolvedAt": k.resolved_at,
            "dueFirstResponseAt": k.due_first_response_at, "dueResolutionAt": k.due_resolution_at,
            "history": events_by_ticket.remove(&k.id).unwrap_or_default(),
        })).collect::<Vec<_>>(),
        "messages": messages.iter().map(|m| json!({
            "id": gid("Message", m.id), "channel": m.channel, "receivedAt": m.received_at,
            "processArea": area_ref(m.process_area_id), "senderEmail": m.sender_email,
            "subject": (!(withheld(m) && hide_private_subjects)).then_some(&m.subject),
            "body": (!withheld(m)).then_some(&m.body),
            "private": m.is_private,
            "bodyWithheld": withheld(m),
            "subjectWithheld": withheld(m) && hide_private_subjects,
        })).collect::<Vec<_>>(),
        "sequenceEnrolments": enrolments.iter().map(|e| json!({
            "sequence": {"id": gid("Sequence", e.sequence_id), "name": sequences.get(&e.sequence_id)},
            "group": group_ref(e.group_id), "status": e.status, "enrolledAt": e.enrolled_at,
            "endedAt": e.ended_at, "endReason": e.end_reason,
        })).collect::<Vec<_>>(),
    });
    Ok(Collected {
        value,
        memberships: members.len(),
        consents: consents.len(),
        orders: orders.len(),
        tickets: tickets.len(),
        messages: messages.len(),
    })
}
