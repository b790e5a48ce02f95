//! Audit entries, as GraphQL objects.

use crate::error::ApiError;
use crate::graphql::access::*;
use crate::graphql::relay::*;
use crate::graphql::{data, ids, loader};
use async_graphql::{ComplexObject, Context, ID, Json, SimpleObject};
use chrono::{DateTime, Utc};
use cohort_domain::ids::UserId;
use cohort_store::{AuditEntryRecord, AuditFilter, Page};

/// The id tag of audit entries (they are not nodes; the tag keeps their ids opaque like all
/// others).
const AUDIT_ENTRY_TAG: &str = "AuditEntry";

/// Subject types whose ids are global ids of a GraphQL type; any other subject (the tenant, the
/// audit log itself) is shown as its plain id.
const GLOBAL_SUBJECTS: &[&str] = &[
    "User",
    "UserGroup",
    "AddressBook",
    "Contact",
    "Group",
    "Product",
    "PriceList",
    "Order",
    "ProcessArea",
    "ProcessingArea",
    "Message",
    "BusinessCalendar",
    "SlaContract",
    "Ticket",
    "WebhookEndpoint",
    "WebhookDelivery",
    "Sequence",
    "ConsentText",
    "WebForm",
];

/// One entry of the audit log: who did what to which subject, when, in which request. Entries
/// are append-only (the database refuses to change or delete them) and hold ids, keys, counts
/// and configuration values only — never personal data.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct AuditEntry {
    /// Opaque id of the entry (ordered by time).
    pub id: ID,
    /// When it happened (the commit of the change, or the moment of the read).
    pub at: DateTime<Utc>,
    /// The request it happened in (the `x-request-id` it was served under).
    pub request_id: Option<String>,
    /// What was done, as `subject.verb`: `group.update`, `contact.create`,
    /// `priceList.readItems`, `auditLog.read`, …
    pub action: String,
    /// The kind of subject: `Group`, `Contact`, `Tenant`, `AuditLog`, …
    pub subject_type: String,
    /// The subject's global id where its type has one (usable with `node`), else its plain id;
    /// `null` when the action has no single subject.
    pub subject_id: Option<ID>,
    /// Facts of the action: ids, counts and, for updates, the changed fields as
    /// `{"changed": {"name": {"before": "A", "after": "B"}}}`.
    pub details: Json<serde_json::Value>,
    #[graphql(skip)]
    pub actor_id: Option<uuid::Uuid>,
}

#[ComplexObject]
impl AuditEntry {
    /// Who did it; `null` if the user no longer exists.
    async fn actor(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let Some(a) = self.actor_id else { return Ok(None) };
        Ok(loader(ctx)?.load_one(UserId(a)).await?.map(User))
    }
}

impl From<AuditEntryRecord> for AuditEntry {
    fn from(e: AuditEntryRecord) -> Self {
        let subject_id = e.target_id.map(|t| {
            if GLOBAL_SUBJECTS.contains(&e.target_type.as_str()) {
                ids::encode(&e.target_type, t)
            } else {
                ID(t.to_string())
            }
        });
        AuditEntry {
            id: ids::encode(AUDIT_ENTRY_TAG, e.id),
            at: e.at,
            request_id: e.request_id,
            action: e.action,
            subject_type: e.target_type,
            subject_id,
            details: Json(e.details),
            actor_id: e.actor_id,
        }
    }
}

/// An entry in a page of the audit log.
#[derive(SimpleObject)]
pub struct AuditEntryEdge {
    /// Opaque cursor of this entry, for `after`.
    pub cursor: String,
    /// The entry.
    pub node: AuditEntry,
}

/// A page of the audit log, newest first.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct AuditEntryConnection {
    /// The entries of this page.
    pub edges: Vec<AuditEntryEdge>,
    /// Where this page is in the whole list.
    pub page_info: PageInfo,
    #[graphql(skip)]
    pub filter: AuditFilter,
}

#[ComplexObject]
impl AuditEntryConnection {
    /// How many entries match the filter.
    async fn total_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        let n = data(ctx)?.audit_log_count(&self.filter).await.map_err(ApiError::from)?;
        Ok(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

impl AuditEntryConnection {
    pub fn from_page(p: Page<AuditEntryRecord>, filter: AuditFilter) -> Self {
        let page_info = page_info(&p);
        AuditEntryConnection {
            edges: p.rows.into_iter().map(|(cursor, e)| AuditEntryEdge { cursor, node: e.into() }).collect(),
            page_info,
            filter,
        }
    }
}
