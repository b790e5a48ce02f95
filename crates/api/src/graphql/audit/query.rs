//! Queries of the audit area.

use crate::error::ApiError;
use crate::graphql::audit::*;
use crate::graphql::{data, ids};
use async_graphql::{Context, ID, InputObject, Object};
use chrono::{DateTime, Utc};
use cohort_domain::ids::UserId;
use cohort_store::{AuditFilter, PageRequest};

/// `auditLog(filter:)`: every part narrows the list.
#[derive(InputObject, Default)]
pub struct AuditLogFilter {
    /// Entries of this user (what the entry shows as `actor`).
    pub actor_id: Option<ID>,
    /// The old name of `actorId`.
    #[graphql(deprecation = "Use `actorId` (the same user id).")]
    pub actor: Option<ID>,
    /// Entries of this action (exact, e.g. `group.update`).
    pub action: Option<String>,
    /// Entries about this subject: its global id, or the plain id shown in `subjectId`.
    pub subject_id: Option<ID>,
    /// Entries of this request (`x-request-id`).
    pub request_id: Option<String>,
    /// Entries at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Entries before this instant.
    pub to: Option<DateTime<Utc>>,
}

impl AuditLogFilter {
    fn into_store(self) -> Result<AuditFilter, ApiError> {
        let target_id = match self.subject_id {
            None => None,
            Some(s) => Some(match ids::decode_any(s.as_str()) {
                Some((_, u)) => u,
                None => uuid::Uuid::try_parse(s.as_str()).map_err(|_| ApiError::NotFound)?,
            }),
        };
        Ok(AuditFilter {
            actor_id: ids::renamed(self.actor_id, "actorId", self.actor, "actor")?
                .map(|a| ids::decode(UserId::TAG, &a))
                .transpose()?,
            action: self.action,
            target_id,
            request_id: self.request_id,
            from: self.from,
            to: self.to,
        })
    }
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// The tenant's audit log, newest first (admin; others get `FORBIDDEN`): configuration
    /// changes, data changes and sensitive reads, with who, when and in which request. Reading
    /// it is itself recorded (`auditLog.read`).
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        filter: Option<AuditLogFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<AuditEntryConnection> {
        let page = PageRequest::new(first, after).map_err(ApiError::from)?;
        let filter = filter.unwrap_or_default().into_store()?;
        let p = data(ctx)?.audit_log(&filter, &page).await.map_err(ApiError::from)?;
        Ok(AuditEntryConnection::from_page(p, filter))
    }
}
