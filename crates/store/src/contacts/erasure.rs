//! Erasure of one person's data (GDPR Art. 17).
//!
//! The contact row stays as a tombstone (orders, membership history and the consent log keep
//! pointing at it) with `erased_at` set and neutral placeholder names; everything that identifies
//! the person is removed or overwritten in one unit of work: names, search text, e-mails, phones,
//! message senders/subjects/bodies, ticket texts, and copies of those values in stored text
//! (outbox payloads, idempotency answers, notes). Memberships and sequence enrolments end (the
//! membership history keeps the fact; the counters follow through the membership triggers).
//! The consent log is append-only and stores contact ids, not addresses, so it stays as proof.
//! Each e-mail's keyed hash goes on the suppression list (see [`LinkKeys::email_hashes`]).
//! The audit log is not rewritten (append-only); its erasure entry carries only the caller's
//! reason, which callers must keep free of the person's data (documented in the README).

use crate::access::handle::DataHandle;
use crate::consent::links::LinkKeys;
use crate::contacts::contact::ContactRecord;
use crate::core::dialect::RowLock;
use crate::core::sql::Sql;
use crate::core::uow::{LockedTable, UnitOfWork};
use crate::entities::{contact_email, contact_phone};
use crate::error::{StoreError, StoreResult};
use crate::events::{EventType, Subject, SubjectKind};
use chrono::{DateTime, SubsecRound, Utc};
use cohort_domain::AccessLevel;
use cohort_domain::ids::ContactId;
use cohort_domain::sequence::{EndReason, EnrolmentStatus};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// What an erased contact shows instead of its names.
pub const ERASED_NAME: &str = "Erased contact";
/// What replaces a copy of the person's data inside stored text.
const REDACTED: &str = "[erased]";
/// Longest accepted erasure reason (characters).
pub const MAX_ERASE_REASON_CHARS: usize = 500;
/// Values shorter than this are not searched for in stored text (they would match everywhere).
const MIN_NEEDLE: usize = 3;

/// Text columns that may hold copies of a contact's data, scrubbed by search and replace.
/// Table and column names are static (never built from input).
const COPIES: &[(&str, &str)] = &[
    ("events", "payload"),
    ("idempotency_keys", "response"),
    ("webhook_attempts", "response_excerpt"),
    ("webhook_deliveries", "last_error"),
    ("contact_status_history", "note"),
    ("message_assignments", "note"),
    ("membership_history", "reason"),
    ("sequence_step_runs", "detail"),
    ("ticket_history", "reason"),
    ("tickets", "sla_snapshot"),
    ("consent_mails", "last_error"),
];

/// The answer of [`DataHandle::erase_contact`].
#[derive(Debug, Clone)]
pub struct ErasedContact {
    pub contact: ContactRecord,
    pub erased_at: DateTime<Utc>,
}

/// Reads `contacts.erased_at` (not part of the contact entity: only erasure writes it).
pub(crate) async fn erased_at(
    txn: &impl ConnectionTrait,
    dialect: crate::core::dialect::Dialect,
    tenant: Uuid,
    id: Uuid,
) -> StoreResult<Option<DateTime<Utc>>> {
    let mut q = Sql::new(dialect);
    q.push("SELECT erased_at FROM contacts WHERE tenant_id = ").bind(tenant).push(" AND id = ").bind(id);
    match txn.query_one_raw(q.build()).await? {
        Some(r) => Ok(r.try_get::<Option<DateTime<Utc>>>("", "erased_at")?),
        None => Err(StoreError::NotFound),
    }
}

/// Case-insensitive (ASCII) replacement of every needle in `text`.
fn redact(text: &str, needles: &[String]) -> String {
    let mut out = text.to_owned();
    for n in needles {
        let low_n = n.to_ascii_lowercase();
        let mut res = String::with_capacity(out.len());
        let low = out.to_ascii_lowercase();
        let mut i = 0;
        while let Some(p) = low[i..].find(&low_n) {
            res.push_str(&out[i..i + p]);
            res.push_str(REDACTED);
            i += p + low_n.len();
        }
        res.push_str(&out[i..]);
        out = res;
    }
    out
}

impl DataHandle {
    /// Erases a contact's personal data (tenant admin or `MANAGE` on its book; hidden or unknown
    /// contacts are `NotFound`). Idempotent: erasing an erased contact changes nothing and
    /// answers the same.
    pub async fn erase_contact(&self, id: ContactId, reason: &str, keys: &LinkKeys) -> StoreResult<ErasedContact> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(StoreError::invalid("reason", "a reason is required"));
        }
        if reason.chars().count() > MAX_ERASE_REASON_CHARS {
            return Err(StoreError::invalid("reason", format!("at most {MAX_ERASE_REASON_CHARS} characters")));
        }
        let v = self.viewer();
        let (t, d) = (v.tenant_id.0, v.dialect);
        let w = self.begin().await?;
        let cur = self.contact_for(w.tx(), v, id, AccessLevel::Manage).await?;
        // Serialises with concurrent membership changes (they hold the contact FOR SHARE) and with
        // a second erasure of the same contact: the later one sees `erased_at` and stops.
        w.lock_row(LockedTable::Contacts, id.0, RowLock::Update).await?;
        if let Some(at) = erased_at(w.tx(), d, t, id.0).await? {
            w.commit().await?;
            return Ok(ErasedContact { contact: cur.try_into()?, erased_at: at });
        }
        // Microseconds, as PostgreSQL stores them: a repeated erasure answers the same instant.
        let now = Utc::now().trunc_subsecs(6);
        let emails: Vec<String> = contact_email::Entity::find()
            .filter(contact_email::Column::TenantId.eq(t))
            .filter(contact_email::Column::ContactId.eq(id.0))
            .all(w.tx())
            .await?
            .into_iter()
            .map(|e| e.address)
            .collect();
        let phones: Vec<String> = contact_phone::Entity::find()
            .filter(contact_phone::Column::TenantId.eq(t))
            .filter(contact_phone::Column::ContactId.eq(id.0))
            .all(w.tx())
            .await?
            .into_iter()
            .map(|p| p.number)
            .collect();
        // External ids identify the person in a source system (some key customers by e-mail):
        // they are deleted, and copies of them scrubbed like names.
        let external = crate::external::values_of(&w, cohort_domain::external::ExternalKind::Contact, id.0).await?;
        let mut needles: Vec<String> = [&cur.first_name, &cur.last_name, &cur.company_name]
            .into_iter()
            .flatten()
            .cloned()
            .chain([cur.display_name.clone()])
            .chain(emails.iter().cloned())
            .chain(phones.iter().cloned())
            .chain(external)
            .map(|s| s.trim().to_owned())
            .filter(|s| s.chars().count() >= MIN_NEEDLE && s != ERASED_NAME)
            .collect();
        // Longest first, so an address is replaced whole before a name inside it is.
        needles.sort_by_key(|s| std::cmp::Reverse(s.len()));
        needles.dedup();

        DataHandle::end_contact_memberships(&w, id.0, "contact erased").await?;
        let mut q = Sql::new(d);
        q.push("UPDATE sequence_enrolments SET status = ")
            .bind(EnrolmentStatus::Stopped.as_str())
            .push(", end_reason = ")
            .bind(EndReason::LeftGroup.as_str())
            .push(", ended_at = ")
            .bind(now)
            .push(", updated_at = ")
            .bind(now)
            .push(", next_due_at = ")
            .bind(crate::sla::tickets::no_due())
            .push(" WHERE tenant_id = ")
            .bind(t)
            .push(" AND contact_id = ")
            .bind(id.0)
            .push(" AND status = ")
            .bind(EnrolmentStatus::Active.as_str());
        w.tx().execute_raw(q.build()).await?;

        crate::external::delete_of(&w, cohort_domain::external::ExternalKind::Contact, &[id.0]).await?;
        contact_email::Entity::delete_many()
            .filter(contact_email::Column::TenantId.eq(t))
            .filter(contact_email::Column::ContactId.eq(id.0))
            .exec(w.tx())
            .await?;
        contact_phone::Entity::delete_many()
            .filter(contact_phone::Column::TenantId.eq(t))
            .filter(contact_phone::Column::ContactId.eq(id.0))
            .exec(w.tx())
            .await?;
        let mut q = Sql::new(d);
        q.push("UPDATE contacts SET first_name = NULL, last_name = NULL, company_name = NULL, display_name = ")
            .bind(ERASED_NAME)
            .push(", sort_name = ")
            .bind(ERASED_NAME.to_lowercase())
            .push(", search_text = ")
            .bind("")
            .push(", erased_at = ")
            .bind(now)
            .push(", updated_at = ")
            .bind(now)
            .push(" WHERE tenant_id = ")
            .bind(t)
            .push(" AND id = ")
            .bind(id.0);
        w.tx().execute_raw(q.build()).await?;
        // Membership rows are gone; history rows carry no name. Orders keep amounts and lines
        // (product data only) and their contact id.
        let mut q = Sql::new(d);
        q.push("UPDATE messages SET sender_email = NULL, subject = ")
            .bind(REDACTED)
            .push(", body = ")
            .bind("")
            .push(" WHERE tenant_id = ")
            .bind(t)
            .push(" AND contact_id = ")
            .bind(id.0);
        w.tx().execute_raw(q.build()).await?;
        let mut q = Sql::new(d);
        q.push("UPDATE tickets SET subject = ")
            .bind(REDACTED)
            .push(", description = NULL WHERE tenant_id = ")
            .bind(t)
            .push(" AND contact_id = ")
            .bind(id.0);
        w.tx().execute_raw(q.build()).await?;
        // Messages from one of the addresses that were never matched to this contact.
        for e in &emails {
            let mut q = Sql::new(d);
            q.push("UPDATE messages SET sender_email = NULL, subject = ")
                .bind(REDACTED)
                .push(", body = ")
                .bind("")
                .push(" WHERE tenant_id = ")
                .bind(t)
                .push(" AND LOWER(sender_email) = ")
                .bind(e.trim().to_lowercase());
            w.tx().execute_raw(q.build()).await?;
        }
        scrub_copies(&w, t, &needles).await?;

        for e in &emails {
            for (i, h) in keys.email_hashes(t, e).into_iter().enumerate() {
                // Only the newest key's hash is stored; the others are checked on reading.
                if i > 0 {
                    break;
                }
                let mut q = Sql::new(d);
                q.push("INSERT INTO suppression_list (tenant_id, email_hash, created_at, source) VALUES (")
                    .bind(t)
                    .push(", ")
                    .bind(h)
                    .push(", ")
                    .bind(now)
                    .push(", ")
                    .bind("ERASURE")
                    .push(") ON CONFLICT (tenant_id, email_hash) DO NOTHING");
                w.tx().execute_raw(q.build()).await?;
            }
        }
        w.emit(
            EventType::ContactErased,
            vec![Subject::new(SubjectKind::Contact, id.0)],
            serde_json::json!({"addressBookId": cur.address_book_id}),
        );
        w.audit("contact.erase", "Contact", Some(id.0), serde_json::json!({"reason": reason}));
        let after = self.contact_for(w.tx(), v, id, AccessLevel::Read).await?;
        w.commit().await?;
        Ok(ErasedContact { contact: after.try_into()?, erased_at: now })
    }

    /// Whether an address is on the tenant's suppression list (under any configured key).
    pub(crate) async fn is_suppressed(
        txn: &impl ConnectionTrait,
        dialect: crate::core::dialect::Dialect,
        tenant: Uuid,
        keys: &LinkKeys,
        address: &str,
    ) -> StoreResult<bool> {
        let mut q = Sql::new(dialect);
        q.push("SELECT 1 AS one FROM suppression_list WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND email_hash IN ")
            .bind_list(keys.email_hashes(tenant, address));
        Ok(txn.query_one_raw(q.build()).await?.is_some())
    }
}

/// Contacts per statement when looking up addresses.
const SUPPRESSION_CHUNK: usize = 2000;
/// Hashes per statement (SQLite binds at most 32,766 values per statement).
const HASH_CHUNK: usize = 8000;

/// The contacts among `contacts` any of whose e-mail addresses is on the tenant's suppression
/// list (under any configured key) — the set-based [`DataHandle::is_suppressed`]: per chunk of
/// contacts one statement reads their addresses and one looks their hashes up, whatever the
/// number of contacts. Callers pass visible contacts only.
pub(crate) async fn suppressed_contacts(
    txn: &impl ConnectionTrait,
    dialect: crate::core::dialect::Dialect,
    tenant: Uuid,
    keys: &LinkKeys,
    contacts: &[Uuid],
) -> StoreResult<HashSet<Uuid>> {
    let mut out = HashSet::new();
    for chunk in contacts.chunks(SUPPRESSION_CHUNK) {
        let mut q = Sql::new(dialect);
        q.push("SELECT contact_id, address FROM contact_emails WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND contact_id IN ")
            .bind_list(chunk.iter().copied());
        let mut by_hash: HashMap<String, Vec<Uuid>> = HashMap::new();
        for r in txn.query_all_raw(q.build()).await? {
            let contact: Uuid = r.try_get("", "contact_id")?;
            let address: String = r.try_get("", "address")?;
            for h in keys.email_hashes(tenant, &address) {
                by_hash.entry(h).or_default().push(contact);
            }
        }
        let hashes: Vec<&String> = by_hash.keys().collect();
        for hs in hashes.chunks(HASH_CHUNK) {
            let mut q = Sql::new(dialect);
            q.push("SELECT email_hash FROM suppression_list WHERE tenant_id = ")
                .bind(tenant)
                .push(" AND email_hash IN ")
                .bind_list(hs.iter().map(|h| (*h).clone()));
            for r in txn.query_all_raw(q.build()).await? {
                let h: String = r.try_get("", "email_hash")?;
                if let Some(cs) = by_hash.get(&h) {
                    out.extend(cs.iter().copied());
                }
            }
        }
    }
    Ok(out)
}

/// Rewrites every stored copy of the needles in the [`COPIES`] columns.
async fn scrub_copies(w: &UnitOfWork, tenant: Uuid, needles: &[String]) -> StoreResult<()> {
    if needles.is_empty() {
        return Ok(());
    }
    let d = w.dialect();
    for &(table, col) in COPIES {
        for n in needles {
            let mut q = Sql::new(d);
            q.push("SELECT DISTINCT ").push(col).push(" AS t FROM ").push(table);
            q.push(" WHERE tenant_id = ").bind(tenant).push(" AND LOWER(").push(col).push(") LIKE ");
            q.bind(format!("%{}%", crate::core::visibility::like_escape(&n.to_lowercase())));
            q.push(" ESCAPE '\\'");
            let rows = w.tx().query_all_raw(q.build()).await?;
            for r in rows {
                let text: Option<String> = r.try_get("", "t")?;
                let Some(text) = text else { continue };
                // Rows are matched by their old text (no key needed; equal texts get equal fixes).
                let mut u = Sql::new(d);
                u.push("UPDATE ").push(table).push(" SET ").push(col).push(" = ").bind(redact(&text, needles));
                u.push(" WHERE tenant_id = ").bind(tenant).push(" AND ").push(col).push(" = ").bind(text);
                w.tx().execute_raw(u.build()).await?;
            }
        }
    }
    Ok(())
}
