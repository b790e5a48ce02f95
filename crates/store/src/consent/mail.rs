//! The queue of confirmation mails, for when Cohort sends them itself (`COHORT_SMTP_URL`).
//!
//! A submission that asks for confirmation queues one row, in its own unit of work (so a mail
//! exists exactly when its request does). The worker claims due rows (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL, with a lease, so replicas share them and a killed worker's claims come back),
//! sends, and records the outcome: `SENT`, or a retry with backoff, or `FAILED` after the last
//! try or when there is nothing to send (the contact or its address is gone, the link expired).

use super::PublicLinks;
use super::links::{LinkClaims, LinkPurpose};
use crate::SystemHandle;
use crate::core::dialect::Dialect;
use crate::core::sql::Sql;
use crate::core::uow::{UnitOfWork, immediate};
use crate::entities::consent_mail;
use crate::error::StoreResult;
use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait, TransactionTrait};
use uuid::Uuid;

/// Delays before the retries of a mail that could not be handed to the SMTP server.
const BACKOFF_MINUTES: &[i64] = &[1, 5, 30, 120, 360];

pub(crate) async fn queue(w: &UnitOfWork, request: Uuid, now: DateTime<Utc>) -> StoreResult<()> {
    consent_mail::Entity::insert(consent_mail::ActiveModel {
        tenant_id: Set(w.viewer().tenant_id.0),
        id: Set(request),
        status: Set("PENDING".into()),
        attempts: Set(0),
        next_attempt_at: Set(now),
        sent_at: Set(None),
        last_error: Set(None),
        created_at: Set(now),
    })
    .exec_without_returning(w.tx())
    .await?;
    Ok(())
}

/// A confirmation mail to send now.
#[derive(Debug, Clone)]
pub struct DueMail {
    pub tenant: Uuid,
    pub id: Uuid,
    pub attempts: i32,
    /// The contact's first e-mail address.
    pub to: String,
    /// The tenant's public name.
    pub organisation: String,
    /// The consent text's language (`en`, `de`, …): the mail's language.
    pub language: String,
    pub confirm_url: String,
    pub expires_at: DateTime<Utc>,
}

impl SystemHandle {
    /// Claims up to `limit` due confirmation mails for `lease` and returns what to send. Mails
    /// with nothing left to send are marked `FAILED` on the way.
    pub async fn claim_confirmation_mails(
        &self,
        links: &PublicLinks,
        limit: u64,
        lease: chrono::Duration,
    ) -> StoreResult<Vec<DueMail>> {
        let db = &self.store.db;
        let d = Dialect::of(db.get_database_backend());
        let now = Utc::now();
        let txn = db.begin_with_options(immediate()).await?;
        let mut q = Sql::new(d);
        q.push("SELECT m.tenant_id, m.id, m.attempts FROM consent_mails m WHERE m.status = ")
            .bind("PENDING")
            .push(" AND m.next_attempt_at <= ")
            .bind(now)
            .push(" ORDER BY m.next_attempt_at LIMIT ")
            .bind(limit as i64);
        if d == Dialect::Postgres {
            q.push(" FOR UPDATE SKIP LOCKED");
        }
        let rows = txn.query_all_raw(q.build()).await?;
        let mut out = vec![];
        for r in rows {
            let (tenant, id, attempts): (Uuid, Uuid, i32) =
                (r.try_get("", "tenant_id")?, r.try_get("", "id")?, r.try_get("", "attempts")?);
            let mut q = Sql::new(d);
            q.push("SELECT r.contact_id, r.expires_at, r.confirmed_at, (SELECT e.address FROM contact_emails e WHERE e.tenant_id = r.tenant_id AND e.contact_id = r.contact_id ORDER BY e.position LIMIT 1) AS address, (SELECT t.language FROM web_form_versions v JOIN consent_texts t ON t.tenant_id = v.tenant_id AND t.id = v.consent_text_id WHERE v.tenant_id = r.tenant_id AND v.form_id = r.form_id AND v.version = r.form_version) AS language FROM consent_requests r WHERE r.tenant_id = ")
                .bind(tenant)
                .push(" AND r.id = ")
                .bind(id);
            let found = txn.query_one_raw(q.build()).await?;
            let lease_until = now + lease;
            let Some(f) = found else {
                mark(&txn, tenant, id, "FAILED", attempts, now, Some("the request is gone".into())).await?;
                continue;
            };
            let contact: Uuid = f.try_get("", "contact_id")?;
            let expires_at: DateTime<Utc> = f.try_get("", "expires_at")?;
            let confirmed: Option<DateTime<Utc>> = f.try_get("", "confirmed_at")?;
            let address: Option<String> = f.try_get("", "address")?;
            let language: Option<String> = f.try_get("", "language")?;
            let (Some(to), None, true) = (address, confirmed, expires_at > now) else {
                let why = "nothing to send: no address, already confirmed, or expired";
                mark(&txn, tenant, id, "FAILED", attempts, now, Some(why.into())).await?;
                continue;
            };
            mark(&txn, tenant, id, "PENDING", attempts, lease_until, None).await?;
            let claims = LinkClaims { purpose: LinkPurpose::Confirm, expires_at, tenant, contact, reference: id };
            let (_, organisation) = super::public_name_of(&txn, tenant).await?;
            out.push(DueMail {
                tenant,
                id,
                attempts,
                to,
                organisation,
                language: language.unwrap_or_else(|| "en".into()),
                confirm_url: links.confirm_url(&claims),
                expires_at,
            });
        }
        txn.commit().await?;
        Ok(out)
    }

    /// Records how sending `m` went (`Err`: the SMTP server's or the connection's error text,
    /// for the log and the row).
    pub async fn finish_confirmation_mail(&self, m: &DueMail, outcome: Result<(), String>) -> StoreResult<()> {
        let db = &self.store.db;
        let now = Utc::now();
        let tries = m.attempts + 1;
        match outcome {
            Ok(()) => mark(db, m.tenant, m.id, "SENT", tries, now, None).await,
            Err(e) => match BACKOFF_MINUTES.get(m.attempts as usize) {
                Some(min) => {
                    mark(db, m.tenant, m.id, "PENDING", tries, now + chrono::Duration::minutes(*min), Some(e)).await
                }
                None => mark(db, m.tenant, m.id, "FAILED", tries, now, Some(e)).await,
            },
        }
    }
}

async fn mark<C: ConnectionTrait>(
    conn: &C,
    tenant: Uuid,
    id: Uuid,
    status: &str,
    attempts: i32,
    next: DateTime<Utc>,
    error: Option<String>,
) -> StoreResult<()> {
    let sent = status == "SENT";
    consent_mail::Entity::update(consent_mail::ActiveModel {
        tenant_id: Set(tenant),
        id: Set(id),
        status: Set(status.to_owned()),
        attempts: Set(attempts),
        next_attempt_at: Set(next),
        sent_at: if sent { Set(Some(next)) } else { sea_orm::ActiveValue::NotSet },
        last_error: Set(error.map(|e| e.chars().take(1000).collect())),
        created_at: sea_orm::ActiveValue::NotSet,
    })
    .exec(conn)
    .await?;
    Ok(())
}
