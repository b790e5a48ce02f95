//! Messages: received from integrators (mail gateway, web chat, phone system), stored with their
//! routing decision, read under one rule compiled into every statement:
//!
//! - a message of a contact exists only for viewers who can see that contact;
//! - a message without a contact (unknown sender) only for admins, its worker, its recipient and
//!   members of its user group;
//! - a message restricted to a user group only for admins, its assigned worker, its recipient
//!   and that group's members;
//! - a **private** message's body (and, if the tenant hides them, its subject) is `NULL` in the
//!   statement itself for everyone but its recipient — admins included.

use super::*;
use crate::access::handle::DataHandle;
use crate::core::decode;
use crate::core::page::{Page, PageRequest, TimeKey};
use crate::core::sql::Sql;
use crate::entities::{message, message_assignment, processing_area};
use crate::events::{EventType, Subject, SubjectKind};
use cohort_domain::AccessLevel;
use cohort_domain::routing::{MAX_BODY_BYTES, MAX_SUBJECT_CHARS};
use cohort_domain::text::{Email, Key, Lines, check_chars, optional_text};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder};
use std::collections::HashMap;
use uuid::Uuid;

const MAX_EXTERNAL_ID_CHARS: usize = 200;

#[derive(Debug, FromQueryResult)]
struct MessageRow {
    id: Uuid,
    process_area_id: Uuid,
    contact_id: Option<Uuid>,
    sender_email: Option<String>,
    channel: String,
    subject: Option<String>,
    body: Option<String>,
    is_private: bool,
    recipient_id: Option<Uuid>,
    received_at: DateTime<Utc>,
    external_id: Option<String>,
    worker_id: Option<Uuid>,
    user_group_id: Option<Uuid>,
    processing_area_id: Uuid,
    deciding_group_id: Option<Uuid>,
    created_at: DateTime<Utc>,
}

fn message_record(r: MessageRow) -> StoreResult<MessageRecord> {
    Ok(MessageRecord {
        id: MessageId(r.id),
        process_area: ProcessAreaId(r.process_area_id),
        contact: r.contact_id.map(ContactId),
        sender_email: r.sender_email,
        channel: decode::strict("messages.channel", &r.channel, Channel::parse(&r.channel))?,
        subject: r.subject,
        body: r.body,
        private: r.is_private,
        recipient: r.recipient_id.map(UserId),
        received_at: r.received_at,
        external_id: r.external_id,
        worker: r.worker_id.map(UserId),
        user_group: r.user_group_id.map(UserGroupId),
        processing_area: ProcessingAreaId(r.processing_area_id),
        deciding_group: r.deciding_group_id.map(GroupId),
        created_at: r.created_at,
    })
}

/// `SELECT <columns as this viewer may read them> FROM messages m … WHERE m.tenant_id = ? AND
/// <the reading rule>`; callers append their filters.
fn readable(v: &Viewer) -> Sql {
    let mut q = Sql::new(v.dialect);
    select_columns(&mut q, v);
    from_readable(&mut q, v);
    q
}

/// The message columns as this viewer may read them (withheld ones are `NULL`).
fn select_columns(q: &mut Sql, v: &Viewer) {
    let me = v.user_id.0;
    q.push("SELECT m.id, m.process_area_id, m.contact_id, m.sender_email, m.channel, CASE WHEN m.is_private = ")
        .bind(true)
        .push(" AND (m.recipient_id IS NULL OR m.recipient_id <> ")
        .bind(me)
        .push(") AND COALESCE(ts.hide_private_subjects, ")
        .bind(false)
        .push(") = ")
        .bind(true)
        .push(" THEN NULL ELSE m.subject END AS subject, CASE WHEN m.is_private = ")
        .bind(true)
        .push(" AND (m.recipient_id IS NULL OR m.recipient_id <> ")
        .bind(me)
        .push(") THEN NULL ELSE m.body END AS body, m.is_private, m.recipient_id, m.received_at, m.external_id, m.worker_id, m.user_group_id, m.processing_area_id, m.deciding_group_id, m.created_at");
}

/// `FROM messages m … WHERE m.tenant_id = ? AND <the reading rule>`.
fn from_readable(q: &mut Sql, v: &Viewer) {
    q.push(" FROM messages m LEFT JOIN tenant_settings ts ON ts.tenant_id = m.tenant_id WHERE m.tenant_id = ")
        .bind(v.tenant_id.0);
    if v.is_admin() {
        return;
    }
    // Contact messages: the contact's book is visible. Others: the viewer is named on it.
    q.push(" AND ((m.contact_id IS NOT NULL AND ")
        .visible_books(v, "m.address_book_id", AccessLevel::Read)
        .push(") OR (m.contact_id IS NULL AND ");
    named_on(q, v);
    q.push(")) AND (m.user_group_id IS NULL OR ");
    named_on(q, v);
    q.push(")");
}

/// `(the viewer is the message's worker, its recipient, or a member of its user group)`.
fn named_on(q: &mut Sql, v: &Viewer) {
    q.push("(m.worker_id = ")
        .bind(v.user_id.0)
        .push(" OR m.recipient_id = ")
        .bind(v.user_id.0)
        .push(" OR m.user_group_id IN (SELECT ugm.user_group_id FROM user_group_members ugm WHERE ugm.tenant_id = ")
        .bind(v.tenant_id.0)
        .push(" AND ugm.user_id = ")
        .bind(v.user_id.0)
        .push("))");
}

fn filter_sql(q: &mut Sql, v: &Viewer, f: &MessageFilter) -> StoreResult<()> {
    if let Some(c) = f.contact {
        q.push(" AND m.contact_id = ").bind(c.0);
    }
    if let Some(p) = f.processing_area {
        q.push(" AND m.processing_area_id = ").bind(p.0);
    }
    if let Some(k) = &f.process_area {
        let key = super::areas::parse_area_key(k)
            .map_err(|_| StoreError::invalid("processArea", "no process area has this key"))?;
        q.push(" AND m.process_area_id IN (SELECT pa.id FROM process_areas pa WHERE pa.tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND pa.key = ")
            .bind(key)
            .push(")");
    }
    if f.assigned_to_me {
        q.push(" AND m.worker_id = ").bind(v.user_id.0);
    }
    if let Some(u) = f.assignee {
        q.push(" AND m.worker_id = ").bind(u.0);
    }
    if let Some(t) = f.received_after {
        q.push(" AND m.received_at > ").bind(t);
    }
    if let Some(t) = f.received_before {
        q.push(" AND m.received_at < ").bind(t);
    }
    Ok(())
}

/// A decision field as payloads and audit entries spell it.
fn field_name(f: cohort_domain::routing::Field) -> &'static str {
    match f {
        cohort_domain::routing::Field::Worker => "worker",
        cohort_domain::routing::Field::UserGroup => "userGroup",
        cohort_domain::routing::Field::ProcessingArea => "processingArea",
    }
}

/// Subject: one line of at most 998 characters (may be empty).
fn parse_subject(s: &str) -> StoreResult<String> {
    let s = s.trim();
    if s.chars().count() > MAX_SUBJECT_CHARS {
        return Err(StoreError::invalid("subject", format!("must be at most {MAX_SUBJECT_CHARS} characters")));
    }
    check_chars("subject", s, Lines::Single)?;
    Ok(s.to_owned())
}

/// Body: at most 1 MB; line ends normalised to `\n` (mail arrives with CRLF); no other control
/// characters (PostgreSQL text cannot even hold NUL).
fn parse_body(s: &str) -> StoreResult<String> {
    if s.len() > MAX_BODY_BYTES {
        return Err(StoreError::invalid("body", format!("must be at most {MAX_BODY_BYTES} bytes")));
    }
    let s = s.replace("\r\n", "\n").replace('\r', "\n");
    check_chars("body", &s, Lines::Multi)?;
    Ok(s)
}

impl DataHandle {
    /// Stores an inbound message with its routing decision.
    ///
    /// The sender is the given contact (which the caller must see), or the contact whose e-mail
    /// is `sender_email` among the books the caller can see (the earliest created if several),
    /// or nobody: messages from unknown senders may be posted by admins and integrations only,
    /// and are routed by the process area's defaults. With an `external_id`, delivering the same
    /// message twice (by the same caller) stores it once and returns the first.
    pub async fn receive_message(&self, input: &MessageInput) -> StoreResult<ReceivedMessage> {
        let v = self.viewer();
        let subject = parse_subject(&input.subject)?;
        let body = parse_body(&input.body)?;
        let sender_email = input
            .sender_email
            .as_deref()
            .map(|e| Email::parse(e).map_err(|_| StoreError::invalid("senderEmail", "is not a valid e-mail address")))
            .transpose()?;
        let external_id = input
            .external_id
            .as_deref()
            .map(|e| Key::parse("externalId", e, MAX_EXTERNAL_ID_CHARS).map(Key::into_string))
            .transpose()?;
        if input.private && input.recipient.is_none() {
            return Err(StoreError::invalid("recipientId", "a private message needs its recipient"));
        }
        let received_at = input.received_at.unwrap_or_else(Utc::now);
        if !(1..=9999).contains(&chrono::Datelike::year(&received_at)) {
            return Err(StoreError::invalid("receivedAt", "is out of range"));
        }
        let key = input.process_area.as_deref().unwrap_or(super::areas::DEFAULT_PROCESS_AREA);
        let w = self.begin().await?;
        let area = self.area_by_key(w.tx(), key).await?;
        if let Some(r) = input.recipient {
            w.require_user(r).await?;
        }
        // A replay answers before anything else is looked at: the first delivery decided.
        if let Some(x) = &external_id
            && let Some(id) = self.posted(w.tx(), x).await?
        {
            drop(w);
            return self.replay(id).await;
        }
        let found = match (input.contact, &sender_email) {
            (Some(c), _) => {
                let m = self.contact_visible(w.tx(), v, c).await?;
                Some((ContactId(m.id), m.address_book_id))
            }
            (None, Some(e)) => self.contact_by_email(w.tx(), v, e).await?,
            (None, None) => None,
        };
        let (contact, contact_book) = (found.map(|f| f.0), found.map(|f| f.1));
        if contact.is_none() && !(v.is_admin() || v.roles.is_integration()) {
            return Err(StoreError::forbidden(
                "messages from unknown senders are posted by admins and integrations; name a contact you can see",
            ));
        }
        if let Some(c) = contact {
            // The contact stays (and stays in its book) until the message is committed.
            w.lock_row(crate::core::uow::LockedTable::Contacts, c.0, crate::core::dialect::RowLock::Share).await?;
        }
        let decision = super::responsibilities::route_contact(w.tx(), v, contact, &area).await?;
        // A queue restricted to a user group restricts its messages to it, unless routing names
        // a user group itself.
        let queue: processing_area::Model = w.queue(decision.processing_area).await?;
        let user_group = decision.user_group.map(|g| g.0).or(queue.user_group_id);
        let now = Utc::now();
        let id = Uuid::now_v7();
        let m = message::ActiveModel {
            tenant_id: Set(v.tenant_id.0),
            id: Set(id),
            process_area_id: Set(area.id),
            contact_id: Set(contact.map(|c| c.0)),
            address_book_id: Set(contact_book),
            sender_email: Set(sender_email.map(|e| e.as_str().to_owned())),
            channel: Set(input.channel.as_str().to_owned()),
            subject: Set(subject),
            body: Set(body),
            is_private: Set(input.private),
            recipient_id: Set(input.recipient.map(|r| r.0)),
            received_at: Set(received_at),
            external_id: Set(external_id.clone()),
            created_by: Set(v.user_id.0),
            worker_id: Set(decision.worker.map(|u| u.0)),
            user_group_id: Set(user_group),
            processing_area_id: Set(decision.processing_area.0),
            deciding_group_id: Set(decision.from_group.map(|g| g.0)),
            created_at: Set(now),
        };
        // Two deliveries of one external id racing: the second waits on the first's index entry
        // and then inserts nothing (PostgreSQL); SQLite's writer lock queues them anyway.
        let inserted = message::Entity::insert(m)
            .on_conflict(
                OnConflict::columns([
                    message::Column::TenantId,
                    message::Column::CreatedBy,
                    message::Column::ExternalId,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(w.tx())
            .await?;
        if inserted == 0 {
            drop(w);
            let x = external_id.as_deref().ok_or(StoreError::NotFound)?;
            let id = self.posted(&self.db, x).await?.ok_or(StoreError::NotFound)?;
            return self.replay(id).await;
        }
        message_assignment::Entity::insert(message_assignment::ActiveModel {
            tenant_id: Set(v.tenant_id.0),
            id: Set(Uuid::now_v7()),
            message_id: Set(id),
            kind: Set("ROUTED".to_owned()),
            worker_id: Set(decision.worker.map(|u| u.0)),
            user_group_id: Set(user_group),
            processing_area_id: Set(decision.processing_area.0),
            note: Set(None),
            actor_id: Set(Some(v.user_id.0)),
            at: Set(now),
        })
        .exec_without_returning(w.tx())
        .await?;
        let mut subjects =
            vec![Subject::new(SubjectKind::Message, id), Subject::new(SubjectKind::ProcessArea, area.id)];
        if let Some(c) = contact {
            subjects.push(Subject::new(SubjectKind::Contact, c.0));
        }
        w.emit(
            EventType::MessageReceived,
            subjects,
            serde_json::json!({"channel": input.channel.as_str(), "private": input.private}),
        );
        w.emit(
            EventType::MessageRouted,
            vec![Subject::new(SubjectKind::Message, id)],
            serde_json::json!({
                "workerId": decision.worker.map(|u| u.0),
                "userGroupId": user_group,
                "processingAreaId": decision.processing_area.0,
                "decidingGroupId": decision.from_group.map(|g| g.0),
                "fallbacks": decision.fallbacks.iter().map(|f| field_name(*f)).collect::<Vec<_>>(),
            }),
        );
        // Ids and routing only: sender, subject and body are personal data.
        w.audit(
            "message.receive",
            "Message",
            Some(id),
            serde_json::json!({"contactId": contact.map(|c| c.0), "channel": input.channel.as_str(),
                "workerId": decision.worker.map(|u| u.0), "processingAreaId": decision.processing_area.0}),
        );
        w.commit().await?;
        let message = self.messages_by_ids(&[MessageId(id)]).await?.pop();
        Ok(ReceivedMessage { id: MessageId(id), duplicate: false, message })
    }

    /// The message this viewer posted with `external_id`, if any.
    async fn posted<C: ConnectionTrait>(&self, conn: &C, external_id: &str) -> StoreResult<Option<Uuid>> {
        let v = self.viewer();
        Ok(message::Entity::find()
            .filter(message::Column::TenantId.eq(v.tenant_id.0))
            .filter(message::Column::CreatedBy.eq(v.user_id.0))
            .filter(message::Column::ExternalId.eq(external_id))
            .one(conn)
            .await?
            .map(|m| m.id))
    }

    async fn replay(&self, id: Uuid) -> StoreResult<ReceivedMessage> {
        let message = self.messages_by_ids(&[MessageId(id)]).await?.pop();
        Ok(ReceivedMessage { id: MessageId(id), duplicate: true, message })
    }

    /// The earliest created contact with this e-mail among the books the viewer can see, with
    /// its book.
    async fn contact_by_email<C: ConnectionTrait>(
        &self,
        conn: &C,
        v: &Viewer,
        e: &Email,
    ) -> StoreResult<Option<(ContactId, Uuid)>> {
        let mut q = Sql::new(v.dialect);
        q.push("SELECT c.id, c.address_book_id FROM contact_emails ce JOIN contacts c ON c.tenant_id = ce.tenant_id AND c.id = ce.contact_id WHERE ce.tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND ce.address = ")
            .bind(e.as_str())
            .push(" AND ")
            .visible_books(v, "c.address_book_id", AccessLevel::Read)
            .push(" ORDER BY c.id LIMIT 1");
        let Some(r) = conn.query_one_raw(q.build()).await? else { return Ok(None) };
        Ok(Some((ContactId(r.try_get("", "id")?), r.try_get("", "address_book_id")?)))
    }

    /// Messages by id, as the viewer may read them (absent: not readable, or no such message).
    pub async fn messages_by_ids(&self, ids: &[MessageId]) -> StoreResult<Vec<MessageRecord>> {
        self.messages_on(&self.db, ids).await
    }

    async fn messages_on<C: ConnectionTrait>(&self, conn: &C, ids: &[MessageId]) -> StoreResult<Vec<MessageRecord>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let v = self.viewer();
        let mut q = readable(v);
        q.push(" AND m.id IN ").bind_list(ids.iter().map(|i| i.0));
        let rows = conn.query_all_raw(q.build()).await?;
        rows.iter().map(|r| message_record(MessageRow::from_query_result(r, "")?)).collect()
    }

    /// Readable messages, newest first (by received-at, then id).
    pub async fn messages(&self, f: &MessageFilter, page: &PageRequest) -> StoreResult<Page<MessageRecord>> {
        let v = self.viewer();
        let mut q = readable(v);
        filter_sql(&mut q, v, f)?;
        if let Some(TimeKey(at, id)) = page.after_key()? {
            q.push(" AND (m.received_at < ")
                .bind(at)
                .push(" OR (m.received_at = ")
                .bind(at)
                .push(" AND m.id < ")
                .bind(id)
                .push("))");
        }
        q.push(" ORDER BY m.received_at DESC, m.id DESC LIMIT ").bind(page.limit() as i64);
        let rows = self.db.query_all_raw(q.build()).await?;
        let recs = rows
            .iter()
            .map(|r| message_record(MessageRow::from_query_result(r, "")?))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_rows(recs, page, |m| (m.received_at, m.id.0)))
    }

    /// How many messages the filter matches among those the viewer may read.
    pub async fn message_count(&self, f: &MessageFilter) -> StoreResult<i64> {
        let v = self.viewer();
        // The same rule and filters as the page, counted.
        let mut q = Sql::new(v.dialect);
        q.push("SELECT COUNT(*) AS n");
        from_readable(&mut q, v);
        filter_sql(&mut q, v, f)?;
        let row = self.db.query_one_raw(q.build()).await?.ok_or(StoreError::NotFound)?;
        Ok(row.try_get("", "n")?)
    }

    /// The assignment history of readable messages, oldest first.
    pub async fn message_assignments(
        &self,
        ids: &[MessageId],
    ) -> StoreResult<HashMap<MessageId, Vec<AssignmentRecord>>> {
        let v = self.viewer();
        let readable: Vec<Uuid> = self.messages_by_ids(ids).await?.into_iter().map(|m| m.id.0).collect();
        let mut out: HashMap<MessageId, Vec<AssignmentRecord>> = HashMap::new();
        if readable.is_empty() {
            return Ok(out);
        }
        for a in message_assignment::Entity::find()
            .filter(message_assignment::Column::TenantId.eq(v.tenant_id.0))
            .filter(message_assignment::Column::MessageId.is_in(readable))
            .order_by_asc(message_assignment::Column::MessageId)
            .order_by_asc(message_assignment::Column::Id)
            .all(&self.db)
            .await?
        {
            out.entry(MessageId(a.message_id)).or_default().push(AssignmentRecord {
                routed: decode::strict(
                    "message_assignments.kind",
                    &a.kind,
                    match a.kind.as_str() {
                        "ROUTED" => Some(true),
                        "REASSIGNED" => Some(false),
                        _ => None,
                    },
                )?,
                worker: a.worker_id.map(UserId),
                user_group: a.user_group_id.map(UserGroupId),
                processing_area: ProcessingAreaId(a.processing_area_id),
                note: a.note,
                actor: a.actor_id.map(UserId),
                at: a.at,
            });
        }
        Ok(out)
    }

    /// Moves a readable message to another worker, user group or queue (admin, or WRITE on the
    /// contact's book) and appends to its history.
    pub async fn reassign_message(&self, id: MessageId, r: &Reassignment) -> StoreResult<Option<MessageRecord>> {
        let v = self.viewer();
        let note = optional_text("note", r.note.as_deref())?;
        if r.worker.is_none() && r.user_group.is_none() && r.processing_area.is_none() {
            return Err(StoreError::invalid(
                "workerId",
                "name a worker, a user group or a queue to move the message to",
            ));
        }
        let w = self.begin().await?;
        // Readable first (else it does not exist for the caller), then locked and read again.
        if self.messages_on(w.tx(), &[id]).await?.is_empty() {
            return Err(StoreError::NotFound);
        }
        let mut q = Sql::new(v.dialect);
        q.push("SELECT m.contact_id, m.worker_id, m.user_group_id, m.processing_area_id FROM messages m WHERE m.tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND m.id = ")
            .bind(id.0)
            .push(w.dialect().lock_rows(crate::core::dialect::RowLock::NoKeyUpdate));
        let cur = w.tx().query_one_raw(q.build()).await?.ok_or(StoreError::NotFound)?;
        let contact: Option<Uuid> = cur.try_get("", "contact_id")?;
        if !v.is_admin() {
            let Some(c) = contact else {
                return Err(StoreError::forbidden("reassigning a message without a contact is for admins"));
            };
            let level = crate::core::visibility::book_level(
                w.tx(),
                v,
                cohort_domain::ids::AddressBookId(self.contact_visible(w.tx(), v, ContactId(c)).await?.address_book_id),
            )
            .await?;
            if !AccessLevel::allows(level, AccessLevel::Write) {
                return Err(StoreError::forbidden("reassigning needs WRITE on the contact's address book"));
            }
        }
        let mut worker: Option<Uuid> = cur.try_get("", "worker_id")?;
        let mut user_group: Option<Uuid> = cur.try_get("", "user_group_id")?;
        let mut queue_id: Uuid = cur.try_get("", "processing_area_id")?;
        let mut changed = vec![];
        if let Some(u) = r.worker.filter(|u| u.map(|u| u.0) != worker) {
            if let Some(u) = u {
                w.require_user(u).await?;
            }
            worker = u.map(|u| u.0);
            changed.push("worker");
        }
        if let Some(g) = r.user_group.filter(|g| g.map(|g| g.0) != user_group) {
            if let Some(g) = g {
                w.require_user_group(g).await?;
            }
            user_group = g.map(|g| g.0);
            changed.push("userGroup");
        }
        if let Some(qid) = r.processing_area.filter(|q| q.0 != queue_id) {
            let queue = w.queue(qid).await?;
            queue_id = queue.id;
            changed.push("processingArea");
        }
        let queue = w.queue(ProcessingAreaId(queue_id)).await?;
        if changed.contains(&"worker") || changed.contains(&"processingArea") {
            w.check_worker_fits_queue(worker.map(UserId), Some(&queue), "workerId").await?;
        }
        if !changed.is_empty() {
            let mut q = Sql::new(v.dialect);
            q.push("UPDATE messages SET worker_id = ")
                .bind(worker)
                .push(", user_group_id = ")
                .bind(user_group)
                .push(", processing_area_id = ")
                .bind(queue_id)
                .push(" WHERE tenant_id = ")
                .bind(v.tenant_id.0)
                .push(" AND id = ")
                .bind(id.0);
            w.tx().execute_raw(q.build()).await?;
            message_assignment::Entity::insert(message_assignment::ActiveModel {
                tenant_id: Set(v.tenant_id.0),
                id: Set(Uuid::now_v7()),
                message_id: Set(id.0),
                kind: Set("REASSIGNED".to_owned()),
                worker_id: Set(worker),
                user_group_id: Set(user_group),
                processing_area_id: Set(queue_id),
                note: Set(note),
                actor_id: Set(Some(v.user_id.0)),
                at: Set(Utc::now()),
            })
            .exec_without_returning(w.tx())
            .await?;
            w.emit(
                EventType::MessageReassigned,
                vec![Subject::new(SubjectKind::Message, id.0)],
                serde_json::json!({"changed": changed, "workerId": worker, "userGroupId": user_group, "processingAreaId": queue_id}),
            );
        }
        w.audit(
            "message.reassign",
            "Message",
            Some(id.0),
            serde_json::json!({"workerId": worker, "userGroupId": user_group, "processingAreaId": queue_id}),
        );
        w.commit().await?;
        // Moving a message away from oneself can leave it unreadable: then there is none to show.
        Ok(self.messages_by_ids(&[id]).await?.pop())
    }
}
