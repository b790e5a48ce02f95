//! Tickets: problems reported by (or for) a contact, routed like messages, given a default SLA
//! from all the contact's groups, with due times that follow pauses, severity evaluations and
//! contract switches exactly (recomputed from the original opening and the whole status
//! history, never carried over by hand).
//!
//! Reading: a ticket exists for a viewer exactly when its contact does; if it is restricted to a
//! user group, only for admins, its worker and that group's members (as messages).

use super::*;
use crate::access::handle::DataHandle;
use crate::audit::Changes;
use crate::core::decode;
use crate::core::page::{Page, PageRequest, TimeKey};
use crate::core::sql::Sql;
use crate::core::uow::UnitOfWork;
use crate::entities::{ticket, ticket_history};
use crate::events::{EventType, Subject, SubjectKind};
use chrono::TimeZone;
use cohort_domain::AccessLevel;
use cohort_domain::sla::{self, ClockReading, SlaSource};
use cohort_domain::text::{Lines, check_chars, optional_text};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder};
use std::collections::HashMap;
use uuid::Uuid;

/// `next_due_at` of tickets with nothing due: the end of the range every database holds, so the
/// work queue's order (nearest due first) needs no NULLS LAST, which the engines spell apart.
pub(crate) fn no_due() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(9999, 12, 31, 0, 0, 0).single().unwrap_or(DateTime::<Utc>::MAX_UTC)
}

const SUBJECT_CHARS: usize = 500;

fn parse_subject(s: &str) -> StoreResult<String> {
    let s = s.trim();
    if s.is_empty() || s.chars().count() > SUBJECT_CHARS {
        return Err(StoreError::invalid("subject", format!("1 to {SUBJECT_CHARS} characters")));
    }
    check_chars("subject", s, Lines::Single)?;
    Ok(s.to_owned())
}

fn status_of(m: &ticket::Model) -> StoreResult<TicketStatus> {
    decode::strict("tickets.status", &m.status, TicketStatus::parse(&m.status))
}

fn severity_of(s: &Option<String>) -> StoreResult<Option<Severity>> {
    s.as_deref().map(|x| decode::strict("tickets.severity", x, Severity::parse(x))).transpose()
}

fn snapshot_of(m: &ticket::Model) -> StoreResult<Option<SlaSnapshot>> {
    m.sla_snapshot
        .as_deref()
        .map(|s| serde_json::from_str(s).map_err(|_| StoreError::corrupt("tickets.sla_snapshot", s)))
        .transpose()
}

fn choice_of(m: &ticket::Model) -> StoreResult<Option<SlaChoice>> {
    m.sla_choice
        .as_deref()
        .map(|s| {
            serde_json::from_str::<StoredChoice>(s)
                .map_err(|_| StoreError::corrupt("tickets.sla_choice", s))
                .map(|c| c.choice())
        })
        .transpose()
}

fn ticket_record(m: ticket::Model) -> StoreResult<TicketRecord> {
    let sla_choice = choice_of(&m)?;
    let sla = match (snapshot_of(&m)?, m.sla_contract_id) {
        (Some(s), Some(c)) => Some(TicketSla {
            contract: SlaContractId(c),
            contract_name: s.contract_name.clone(),
            source_group: m.sla_group_id.map(GroupId),
            from_tenant_default: m.sla_source == "TENANT",
            calendar: s.calendar.calendar()?,
            targets: s.targets.targets()?,
            due_first_response_at: m.due_first_response_at,
            due_resolution_at: m.due_resolution_at,
            resolution_breached: m.resolution_breached,
        }),
        _ => None,
    };
    Ok(TicketRecord {
        id: TicketId(m.id),
        contact: ContactId(m.contact_id),
        process_area: ProcessAreaId(m.process_area_id),
        status: status_of(&m)?,
        severity: severity_of(&m.severity)?,
        subject: m.subject,
        description: m.description,
        channel: decode::strict("tickets.channel", &m.channel, Channel::parse(&m.channel))?,
        opened_at: m.opened_at,
        first_responded_at: m.first_responded_at,
        resolved_at: m.resolved_at,
        worker: m.worker_id.map(UserId),
        user_group: m.user_group_id.map(UserGroupId),
        processing_area: ProcessingAreaId(m.processing_area_id),
        deciding_group: m.deciding_group_id.map(GroupId),
        sla,
        next_due_at: m.next_due_at,
        sla_choice,
        manual_sla: m.sla_source == "MANUAL",
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

fn event_record(h: ticket_history::Model) -> StoreResult<TicketEventRecord> {
    let kind = decode::strict(
        "ticket_history.kind",
        &h.kind,
        ["CREATED", "STATUS", "SEVERITY", "SWITCH", "RESPONSE"].into_iter().find(|k| *k == h.kind),
    )?;
    Ok(TicketEventRecord {
        kind,
        severity: severity_of(&h.severity)?,
        from: h.from_value,
        to: h.to_value,
        reason: h.reason,
        contract_from: h.contract_from.map(SlaContractId),
        contract_to: h.contract_to.map(SlaContractId),
        due_first_response_before: h.due_first_response_before,
        due_resolution_before: h.due_resolution_before,
        due_first_response_after: h.due_first_response_after,
        due_resolution_after: h.due_resolution_after,
        actor: h.actor_id.map(UserId),
        at: h.at,
    })
}

/// How the default SLA was chosen, as kept on the ticket (ids only; the API names the groups
/// the reader may see).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredChoice {
    contract: Option<Uuid>,
    source: String,
    from_group: Option<Uuid>,
    defined_on: Option<Uuid>,
    candidates: Vec<StoredCandidate>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredCandidate {
    group: Uuid,
    precedence: i32,
    defined_on: Uuid,
    depth: i32,
    contract: Uuid,
    rank: i32,
    chosen: bool,
}

impl StoredChoice {
    fn of(c: &SlaChoice) -> StoredChoice {
        StoredChoice {
            contract: c.contract.map(|x| x.0),
            source: match c.source {
                SlaSource::Group => "GROUP",
                SlaSource::TenantDefault => "TENANT",
                SlaSource::None => "NONE",
            }
            .into(),
            from_group: c.from_group.map(|g| g.0),
            defined_on: c.defined_on.map(|g| g.0),
            candidates: c
                .candidates
                .iter()
                .map(|k| StoredCandidate {
                    group: k.group.0,
                    precedence: k.precedence,
                    defined_on: k.defined_on.0,
                    depth: k.depth,
                    contract: k.contract.0,
                    rank: k.rank,
                    chosen: k.chosen,
                })
                .collect(),
        }
    }
    fn choice(self) -> SlaChoice {
        SlaChoice {
            contract: self.contract.map(SlaContractId),
            source: match self.source.as_str() {
                "GROUP" => SlaSource::Group,
                "TENANT" => SlaSource::TenantDefault,
                _ => SlaSource::None,
            },
            from_group: self.from_group.map(GroupId),
            defined_on: self.defined_on.map(GroupId),
            candidates: self
                .candidates
                .into_iter()
                .map(|k| sla::SlaCandidate {
                    group: GroupId(k.group),
                    precedence: k.precedence,
                    defined_on: GroupId(k.defined_on),
                    depth: k.depth,
                    contract: SlaContractId(k.contract),
                    rank: k.rank,
                    chosen: k.chosen,
                })
                .collect(),
        }
    }
}

/// The status history a clock reads: the opening, then every status change.
fn statuses(opened_at: DateTime<Utc>, history: &[TicketEventRecord]) -> Vec<(TicketStatus, DateTime<Utc>)> {
    let mut out = vec![(TicketStatus::New, opened_at)];
    for h in history.iter().filter(|h| h.kind == "STATUS") {
        if let Some(s) = h.to.as_deref().and_then(TicketStatus::parse) {
            out.push((s, h.at));
        }
    }
    out
}

/// Where a ticket's resolution clock stands at `now` (`None` without an SLA).
pub fn ticket_clock(t: &TicketRecord, history: &[TicketEventRecord], now: DateTime<Utc>) -> Option<ClockReading> {
    let s = t.sla.as_ref()?;
    let pauses = sla::exclusions(&statuses(t.opened_at, history));
    Some(sla::read_clock(&s.calendar, s.targets.at(t.severity), t.opened_at, &pauses, now))
}

/// Recomputes the stored due times of `m` from its snapshot, severity and status history.
fn recompute(m: &mut ticket::Model, history: &[TicketEventRecord], at: DateTime<Utc>) -> StoreResult<()> {
    let status = status_of(m)?;
    let Some(snap) = snapshot_of(m)? else {
        m.due_first_response_at = None;
        m.due_resolution_at = None;
        m.resolution_breached = false;
        m.next_due_at = no_due();
        return Ok(());
    };
    let cal = snap.calendar.calendar()?;
    let targets = snap.targets.targets()?.at(severity_of(&m.severity)?);
    let pauses = sla::exclusions(&statuses(m.opened_at, history));
    let due = sla::due_times(&cal, targets, m.opened_at, &pauses);
    m.due_first_response_at = due.first_response;
    m.due_resolution_at = due.resolution;
    // While the clock stands still, whether it was breached when it stopped is kept; while it
    // runs, the due time says it.
    m.resolution_breached =
        !status.clock_runs() && sla::read_clock(&cal, targets, m.opened_at, &pauses, at).resolution_breached;
    m.next_due_at = if status.is_done() {
        no_due()
    } else {
        [due.first_response.filter(|_| m.first_responded_at.is_none()), due.resolution]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or_else(no_due)
    };
    Ok(())
}

const TICKET_SELECT: &str = "SELECT t.tenant_id, t.id, t.contact_id, t.process_area_id, t.subject, t.description, t.channel, t.status, t.severity, t.opened_at, t.first_responded_at, t.resolved_at, t.worker_id, t.user_group_id, t.processing_area_id, t.deciding_group_id, t.sla_contract_id, t.sla_source, t.sla_group_id, t.sla_snapshot, t.sla_choice, t.due_first_response_at, t.due_resolution_at, t.resolution_breached, t.next_due_at, t.last_event_at, t.created_by, t.created_at, t.updated_at, t.first_response_breach_emitted, t.resolution_breach_emitted, t.address_book_id";

/// `FROM tickets t JOIN contacts c … WHERE t.tenant_id = ? AND <the reading rule>`.
fn from_readable(q: &mut Sql, v: &Viewer) {
    q.push(" FROM tickets t WHERE t.tenant_id = ").bind(v.tenant_id.0);
    if v.is_admin() {
        return;
    }
    q.push(" AND ")
        .visible_books(v, "t.address_book_id", AccessLevel::Read)
        .push(" AND (t.user_group_id IS NULL OR t.worker_id = ")
        .bind(v.user_id.0)
        .push(" OR t.user_group_id IN (SELECT ugm.user_group_id FROM user_group_members ugm WHERE ugm.tenant_id = ")
        .bind(v.tenant_id.0)
        .push(" AND ugm.user_id = ")
        .bind(v.user_id.0)
        .push("))");
}

fn filter_sql(q: &mut Sql, v: &Viewer, f: &TicketFilter, now: DateTime<Utc>) {
    if !f.status.is_empty() {
        q.push(" AND t.status IN ").bind_list(f.status.iter().map(|s| s.as_str()));
    }
    if let Some(p) = f.processing_area {
        q.push(" AND t.processing_area_id = ").bind(p.0);
    }
    if let Some(u) = f.assignee {
        q.push(" AND t.worker_id = ").bind(u.0);
    }
    if f.assigned_to_me {
        q.push(" AND t.worker_id = ").bind(v.user_id.0);
    }
    if let Some(c) = f.contact {
        q.push(" AND t.contact_id = ").bind(c.0);
    }
    if let Some((g, sub)) = f.group {
        q.push(" AND t.contact_id IN (SELECT m.contact_id FROM group_memberships m WHERE m.tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND m.group_id IN ");
        if sub {
            q.visible_subtree(v, g.0);
        } else {
            q.push("(").bind(g.0).push(") AND m.group_id IN ").visible_groups(v);
        }
        q.push(")");
    }
    if let Some(b) = f.breached {
        q.push(if b { " AND (" } else { " AND NOT (" })
            .push("t.resolution_breached = ")
            .bind(true)
            .push(" OR COALESCE(t.due_resolution_at < ")
            .bind(now)
            .push(", ")
            .bind(false)
            .push(") OR (t.first_responded_at IS NULL AND COALESCE(t.due_first_response_at < ")
            .bind(now)
            .push(", ")
            .bind(false)
            .push(")) OR COALESCE(t.first_responded_at > t.due_first_response_at, ")
            .bind(false)
            .push("))");
    }
    if let Some(d) = f.due_before {
        q.push(" AND t.next_due_at < ").bind(d);
    }
}

/// The instant of an operation: now, or for imports (admins and integrations) a given past
/// instant not before the ticket's previous event.
fn event_time(v: &Viewer, at: Option<DateTime<Utc>>, not_before: Option<DateTime<Utc>>) -> StoreResult<DateTime<Utc>> {
    let now = Utc::now();
    let Some(at) = at else {
        return Ok(now.max(not_before.unwrap_or(now)));
    };
    if !(v.is_admin() || v.roles.is_integration()) {
        return Err(StoreError::forbidden(
            "giving the time of an event (importing history) is for admins and integrations",
        ));
    }
    if at > now {
        return Err(StoreError::invalid("at", "must not be in the future"));
    }
    if not_before.is_some_and(|p| at < p) {
        return Err(StoreError::invalid("at", "must not be before the ticket's previous event"));
    }
    if !(1..=9999).contains(&chrono::Datelike::year(&at)) {
        return Err(StoreError::invalid("at", "is out of range"));
    }
    Ok(at)
}

/// A history entry being written (the due times before and after come with it).
struct Entry {
    kind: &'static str,
    from: Option<String>,
    to: Option<String>,
    reason: Option<String>,
    contract_from: Option<Uuid>,
    contract_to: Option<Uuid>,
}

impl Entry {
    fn new(
        kind: &'static str,
        from: Option<String>,
        to: Option<String>,
        reason: Option<String>,
        contracts: (Option<Uuid>, Option<Uuid>),
    ) -> Self {
        Entry { kind, from, to, reason, contract_from: contracts.0, contract_to: contracts.1 }
    }
}

impl UnitOfWork {
    async fn append(
        &self,
        c: Entry,
        m: &ticket::Model,
        before: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
        at: DateTime<Utc>,
    ) -> StoreResult<TicketEventRecord> {
        let h = ticket_history::Model {
            tenant_id: self.viewer().tenant_id.0,
            id: Uuid::now_v7(),
            ticket_id: m.id,
            kind: c.kind.to_owned(),
            from_value: c.from,
            to_value: c.to,
            severity: m.severity.clone(),
            reason: c.reason,
            contract_from: c.contract_from,
            contract_to: c.contract_to,
            due_first_response_before: before.0,
            due_resolution_before: before.1,
            due_first_response_after: m.due_first_response_at,
            due_resolution_after: m.due_resolution_at,
            actor_id: Some(self.viewer().user_id.0),
            at,
        };
        ticket_history::Entity::insert(ticket_history::ActiveModel::from(h.clone()))
            .exec_without_returning(self.tx())
            .await?;
        event_record(h)
    }
}

impl DataHandle {
    /// Opens a ticket for a contact (WRITE on the contact's book): routed for its process area
    /// like a message, given the default SLA of the contact's groups (or the tenant's).
    pub async fn create_ticket(&self, input: &TicketInput) -> StoreResult<CreatedTicket> {
        let v = self.viewer();
        let subject = parse_subject(&input.subject)?;
        let description = optional_text("description", input.description.as_deref())?;
        let opened_at = event_time(v, input.opened_at, None)?;
        let key = input.process_area.as_deref().unwrap_or(crate::routing::areas::DEFAULT_PROCESS_AREA);
        let mut w = self.begin().await?;
        if let Some(k) = input.idempotency_key.as_deref() {
            let print = crate::core::uow::fingerprint(&[
                &input.contact.0.to_string(),
                &subject,
                description.as_deref().unwrap_or(""),
                input.channel.as_str(),
                key,
                &input.opened_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            ]);
            if let crate::core::uow::Claim::Replay(first) = w.claim_key::<Uuid>(k, "createTicket", &print).await? {
                drop(w);
                return self.replay_ticket(TicketId(first)).await;
            }
        }
        let area = self.area_by_key(w.tx(), key).await?;
        let contact = self.contact_for(w.tx(), v, input.contact, AccessLevel::Write).await?;
        let decision = crate::routing::responsibilities::route_contact(w.tx(), v, Some(input.contact), &area).await?;
        let queue = w.queue(decision.processing_area).await?;
        let user_group = decision.user_group.map(|g| g.0).or(queue.user_group_id);
        let choice = super::contracts::choose_for_contact(w.tx(), v, input.contact).await?;
        let snapshot = match choice.contract {
            Some(c) => Some(w.snapshot(c).await?.1),
            None => None,
        };
        let now = Utc::now();
        let mut m = ticket::Model {
            tenant_id: v.tenant_id.0,
            id: Uuid::now_v7(),
            contact_id: input.contact.0,
            process_area_id: area.id,
            subject,
            description,
            channel: input.channel.as_str().to_owned(),
            status: TicketStatus::New.as_str().to_owned(),
            severity: None,
            opened_at,
            first_responded_at: None,
            resolved_at: None,
            worker_id: decision.worker.map(|u| u.0),
            user_group_id: user_group,
            processing_area_id: decision.processing_area.0,
            deciding_group_id: decision.from_group.map(|g| g.0),
            sla_contract_id: choice.contract.map(|c| c.0),
            sla_source: match choice.source {
                SlaSource::Group => "GROUP",
                SlaSource::TenantDefault => "TENANT",
                SlaSource::None => "NONE",
            }
            .to_owned(),
            sla_group_id: choice.from_group.map(|g| g.0),
            sla_snapshot: snapshot.as_ref().map(|s| serde_json::to_string(s).unwrap_or_default()),
            sla_choice: Some(serde_json::to_string(&StoredChoice::of(&choice)).unwrap_or_default()),
            due_first_response_at: None,
            due_resolution_at: None,
            resolution_breached: false,
            next_due_at: no_due(),
            last_event_at: opened_at,
            created_by: v.user_id.0,
            created_at: now,
            updated_at: now,
            first_response_breach_emitted: false,
            resolution_breach_emitted: false,
            address_book_id: Some(contact.address_book_id),
        };
        recompute(&mut m, &[], opened_at)?;
        ticket::Entity::insert(ticket::ActiveModel::from(m.clone())).exec_without_returning(w.tx()).await?;
        w.append(
            Entry::new("CREATED", None, Some("NEW".into()), None, (None, m.sla_contract_id)),
            &m,
            (None, None),
            opened_at,
        )
        .await?;
        let subjects = vec![Subject::new(SubjectKind::Ticket, m.id), Subject::new(SubjectKind::Contact, m.contact_id)];
        w.emit(EventType::TicketCreated, subjects, serde_json::json!({"channel": m.channel, "processAreaId": area.id}));
        if let Some(c) = m.sla_contract_id {
            w.emit(
                EventType::TicketSlaAssigned,
                vec![Subject::new(SubjectKind::Ticket, m.id), Subject::new(SubjectKind::SlaContract, c)],
                serde_json::json!({"source": m.sla_source}),
            );
        }
        w.audit(
            "ticket.create",
            "Ticket",
            Some(m.id),
            serde_json::json!({"contactId": m.contact_id, "processAreaId": area.id, "slaContractId": m.sla_contract_id}),
        );
        w.answer(&m.id)?;
        w.commit().await?;
        let ticket = self.tickets_by_ids(&[TicketId(m.id)]).await?.pop();
        Ok(CreatedTicket { id: TicketId(m.id), ticket, sla_choice: choice, replayed: false })
    }

    /// The answer of an idempotent retry: the ticket this user created with the key.
    async fn replay_ticket(&self, id: TicketId) -> StoreResult<CreatedTicket> {
        let v = self.viewer();
        // Read as its creator (the reading rule may hide it from them since; the choice they
        // were told about stays theirs).
        let m = ticket::Entity::find()
            .filter(ticket::Column::TenantId.eq(v.tenant_id.0))
            .filter(ticket::Column::Id.eq(id.0))
            .filter(ticket::Column::CreatedBy.eq(v.user_id.0))
            .one(&self.db)
            .await?
            .ok_or(StoreError::NotFound)?;
        let choice = choice_of(&m)?.unwrap_or(SlaChoice {
            contract: None,
            source: SlaSource::None,
            from_group: None,
            defined_on: None,
            candidates: vec![],
        });
        let ticket = self.tickets_by_ids(&[id]).await?.pop();
        Ok(CreatedTicket { id, ticket, sla_choice: choice, replayed: true })
    }

    /// A readable ticket, locked, with its history, for a change that needs WRITE on the
    /// contact's book (or admin).
    async fn ticket_for_change(
        &self,
        w: &UnitOfWork,
        id: TicketId,
    ) -> StoreResult<(ticket::Model, Vec<TicketEventRecord>)> {
        let v = self.viewer();
        let mut q = Sql::new(v.dialect);
        q.push(TICKET_SELECT);
        from_readable(&mut q, v);
        q.push(" AND t.id = ").bind(id.0).push(w.dialect().lock_rows(crate::core::dialect::RowLock::NoKeyUpdate));
        let row = w.tx().query_one_raw(q.build()).await?.ok_or(StoreError::NotFound)?;
        let m = ticket::Model::from_query_result(&row, "")?;
        self.contact_for(w.tx(), v, ContactId(m.contact_id), AccessLevel::Write).await?;
        let history = ticket_history::Entity::find()
            .filter(ticket_history::Column::TenantId.eq(v.tenant_id.0))
            .filter(ticket_history::Column::TicketId.eq(id.0))
            .order_by_asc(ticket_history::Column::At)
            .order_by_asc(ticket_history::Column::Id)
            .all(w.tx())
            .await?
            .into_iter()
            .map(event_record)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((m, history))
    }

    async fn save(&self, w: &UnitOfWork, m: &ticket::Model) -> StoreResult<()> {
        ticket::Entity::update(ticket::ActiveModel::from(m.clone()).reset_all()).exec(w.tx()).await?;
        Ok(())
    }

    /// The common end of every ticket change: due times recomputed from the opening and the
    /// whole history (so nothing elapsed or paused is ever lost or counted twice), the ticket
    /// saved, the history entry with the due times before and after, the event, the commit.
    #[allow(clippy::too_many_arguments)]
    async fn commit_change(
        &self,
        w: UnitOfWork,
        mut m: ticket::Model,
        history: &[TicketEventRecord],
        at: DateTime<Utc>,
        before: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
        entry: Entry,
        event: (EventType, Vec<Subject>, serde_json::Value),
    ) -> StoreResult<TicketRecord> {
        recompute(&mut m, history, at)?;
        m.last_event_at = at;
        m.updated_at = Utc::now();
        self.save(&w, &m).await?;
        // The reason is free text (it may name the person): the log keeps the kind and values.
        let action = match entry.kind {
            "STATUS" => "ticket.setStatus",
            "SEVERITY" => "ticket.evaluateSeverity",
            "SWITCH" => "ticket.switchSla",
            "RESPONSE" => "ticket.respond",
            _ => "ticket.change",
        };
        let mut changes = Changes::new();
        match entry.kind {
            "SWITCH" => changes.field("slaContractId", entry.contract_from, entry.contract_to),
            "RESPONSE" => changes.field("firstRespondedAt", None, m.first_responded_at),
            field => changes.field(if field == "STATUS" { "status" } else { "severity" }, &entry.from, &entry.to),
        };
        w.audit(action, "Ticket", Some(m.id), changes.details(serde_json::json!({"at": at})));
        w.append(entry, &m, before, at).await?;
        w.emit(event.0, event.1, event.2);
        w.commit().await?;
        self.tickets_by_ids(&[TicketId(m.id)]).await?.pop().ok_or(StoreError::NotFound)
    }

    /// A readable, changeable ticket with its history and the instant of the change; refused
    /// for closed tickets when `open_only`.
    async fn begin_change(
        &self,
        id: TicketId,
        at: Option<DateTime<Utc>>,
        open_only: bool,
    ) -> StoreResult<(UnitOfWork, ticket::Model, Vec<TicketEventRecord>, DateTime<Utc>)> {
        let w = self.begin().await?;
        let (m, history) = self.ticket_for_change(&w, id).await?;
        let at = event_time(self.viewer(), at, Some(m.last_event_at))?;
        if open_only && status_of(&m)? == TicketStatus::Closed {
            return Err(StoreError::Conflict("the ticket is closed; reopen it first".into()));
        }
        Ok((w, m, history, at))
    }

    /// Moves a ticket to another status (reopening allowed; never back to `NEW`).
    pub async fn set_ticket_status(
        &self,
        id: TicketId,
        status: TicketStatus,
        reason: Option<&str>,
        at: Option<DateTime<Utc>>,
    ) -> StoreResult<TicketRecord> {
        let reason = optional_text("reason", reason)?;
        let (w, mut m, mut history, at) = self.begin_change(id, at, false).await?;
        let from = status_of(&m)?;
        if !from.can_move_to(status) {
            return Err(StoreError::invalid(
                "status",
                format!("a {} ticket cannot move to {}", from.as_str(), status.as_str()),
            ));
        }
        let before = (m.due_first_response_at, m.due_resolution_at);
        m.status = status.as_str().to_owned();
        if status.is_done() && !from.is_done() {
            m.resolved_at = Some(at);
        } else if !status.is_done() {
            m.resolved_at = None;
        }
        history.push(TicketEventRecord {
            kind: "STATUS",
            from: Some(from.as_str().into()),
            to: Some(status.as_str().into()),
            severity: None,
            reason: None,
            contract_from: None,
            contract_to: None,
            due_first_response_before: None,
            due_resolution_before: None,
            due_first_response_after: None,
            due_resolution_after: None,
            actor: None,
            at,
        });
        let subjects = vec![Subject::new(SubjectKind::Ticket, m.id)];
        let payload = serde_json::json!({"from": from.as_str(), "to": status.as_str()});
        let entry =
            Entry::new("STATUS", Some(from.as_str().into()), Some(status.as_str().into()), reason, (None, None));
        self.commit_change(w, m, &history, at, before, entry, (EventType::TicketStatusChanged, subjects, payload)).await
    }

    /// Evaluates the severity: that severity's targets apply from the original opening.
    pub async fn evaluate_ticket_severity(
        &self,
        id: TicketId,
        severity: Severity,
        reason: Option<&str>,
        at: Option<DateTime<Utc>>,
    ) -> StoreResult<TicketRecord> {
        let reason = optional_text("reason", reason)?;
        let (w, mut m, history, at) = self.begin_change(id, at, true).await?;
        let from = m.severity.clone();
        let before = (m.due_first_response_at, m.due_resolution_at);
        m.severity = Some(severity.as_str().to_owned());
        let subjects = vec![Subject::new(SubjectKind::Ticket, m.id)];
        let payload = serde_json::json!({"severity": severity.as_str()});
        let entry = Entry::new(
            "SEVERITY",
            from,
            Some(severity.as_str().into()),
            reason,
            (m.sla_contract_id, m.sla_contract_id),
        );
        self.commit_change(w, m, &history, at, before, entry, (EventType::TicketSlaChanged, subjects, payload)).await
    }

    /// Gives the ticket another contract (or the same one again: re-applies its current targets
    /// and calendar). Elapsed and paused time are kept: due times are measured from the original
    /// opening, minus pauses, in the new contract's calendar.
    pub async fn switch_ticket_sla(
        &self,
        id: TicketId,
        contract: SlaContractId,
        reason: Option<&str>,
        at: Option<DateTime<Utc>>,
    ) -> StoreResult<TicketRecord> {
        let reason = optional_text("reason", reason)?;
        let (w, mut m, history, at) = self.begin_change(id, at, true).await?;
        let (c, snap) = w.snapshot(contract).await?;
        let from = m.sla_contract_id;
        let before = (m.due_first_response_at, m.due_resolution_at);
        m.sla_contract_id = Some(c.id);
        m.sla_snapshot = Some(serde_json::to_string(&snap).unwrap_or_default());
        m.sla_source = "MANUAL".into();
        m.sla_group_id = None;
        let subjects = vec![Subject::new(SubjectKind::Ticket, m.id), Subject::new(SubjectKind::SlaContract, c.id)];
        let entry = Entry::new("SWITCH", None, None, reason, (from, Some(c.id)));
        let event = (EventType::TicketSlaChanged, subjects, serde_json::json!({"switched": true}));
        self.commit_change(w, m, &history, at, before, entry, event).await
    }

    /// Records the first response (later calls change nothing).
    pub async fn respond_to_ticket(&self, id: TicketId, at: Option<DateTime<Utc>>) -> StoreResult<TicketRecord> {
        let (w, mut m, history, at) = self.begin_change(id, at, false).await?;
        if m.first_responded_at.is_some() {
            drop(w);
            return self.tickets_by_ids(&[id]).await?.pop().ok_or(StoreError::NotFound);
        }
        let before = (m.due_first_response_at, m.due_resolution_at);
        m.first_responded_at = Some(at);
        let subjects = vec![Subject::new(SubjectKind::Ticket, m.id)];
        let entry = Entry::new("RESPONSE", None, None, None, (None, None));
        self.commit_change(
            w,
            m,
            &history,
            at,
            before,
            entry,
            (EventType::TicketResponded, subjects, serde_json::json!({})),
        )
        .await
    }

    pub async fn tickets_by_ids(&self, ids: &[TicketId]) -> StoreResult<Vec<TicketRecord>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let v = self.viewer();
        let mut q = Sql::new(v.dialect);
        q.push(TICKET_SELECT);
        from_readable(&mut q, v);
        q.push(" AND t.id IN ").bind_list(ids.iter().map(|i| i.0));
        let rows = self.db.query_all_raw(q.build()).await?;
        rows.iter().map(|r| ticket_record(ticket::Model::from_query_result(r, "")?)).collect()
    }

    /// Readable tickets, nearest due time first (then id); tickets with nothing due come last.
    pub async fn tickets(&self, f: &TicketFilter, page: &PageRequest) -> StoreResult<Page<TicketRecord>> {
        let v = self.viewer();
        let mut q = Sql::new(v.dialect);
        q.push(TICKET_SELECT);
        from_readable(&mut q, v);
        filter_sql(&mut q, v, f, Utc::now());
        if let Some(TimeKey(at, id)) = page.after_key()? {
            q.push(" AND (t.next_due_at > ")
                .bind(at)
                .push(" OR (t.next_due_at = ")
                .bind(at)
                .push(" AND t.id > ")
                .bind(id)
                .push("))");
        }
        q.push(" ORDER BY t.next_due_at, t.id LIMIT ").bind(page.limit() as i64);
        let rows = self.db.query_all_raw(q.build()).await?;
        let recs = rows
            .iter()
            .map(|r| ticket_record(ticket::Model::from_query_result(r, "")?))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_rows(recs, page, |t| (t.next_due_at, t.id.0)))
    }

    pub async fn ticket_count(&self, f: &TicketFilter) -> StoreResult<i64> {
        let v = self.viewer();
        let mut q = Sql::new(v.dialect);
        q.push("SELECT COUNT(*) AS n");
        from_readable(&mut q, v);
        filter_sql(&mut q, v, f, Utc::now());
        let row = self.db.query_one_raw(q.build()).await?.ok_or(StoreError::NotFound)?;
        Ok(row.try_get("", "n")?)
    }

    /// The history of readable tickets, oldest first.
    pub async fn ticket_history(&self, ids: &[TicketId]) -> StoreResult<HashMap<TicketId, Vec<TicketEventRecord>>> {
        let readable: Vec<Uuid> = self.tickets_by_ids(ids).await?.into_iter().map(|t| t.id.0).collect();
        let mut out: HashMap<TicketId, Vec<TicketEventRecord>> = HashMap::new();
        if readable.is_empty() {
            return Ok(out);
        }
        for h in ticket_history::Entity::find()
            .filter(ticket_history::Column::TenantId.eq(self.viewer().tenant_id.0))
            .filter(ticket_history::Column::TicketId.is_in(readable))
            .order_by_asc(ticket_history::Column::TicketId)
            .order_by_asc(ticket_history::Column::At)
            .order_by_asc(ticket_history::Column::Id)
            .all(&self.db)
            .await?
        {
            out.entry(TicketId(h.ticket_id)).or_default().push(event_record(h)?);
        }
        Ok(out)
    }
}

impl crate::system::SystemHandle {
    /// Emits `ticket.sla_breached` once per ticket and target whose due time has passed (the
    /// worker's time-driven facts). Claims tickets with `FOR UPDATE SKIP LOCKED` on PostgreSQL so
    /// replicas never emit one twice. Returns how many events.
    pub async fn emit_sla_breaches(&self, limit: u64) -> StoreResult<usize> {
        use crate::core::dialect::Dialect;
        use crate::entities::event;
        use sea_orm::TransactionTrait;
        let now = Utc::now();
        let dialect = Dialect::of(self.store.db.get_database_backend());
        let txn = self.store.db.begin_with_options(crate::core::uow::immediate()).await?;
        let mut q = Sql::new(dialect);
        q.push("SELECT t.tenant_id, t.id, t.due_first_response_at, t.due_resolution_at, t.first_responded_at, t.resolution_breached, t.first_response_breach_emitted, t.resolution_breach_emitted, t.status FROM tickets t WHERE (t.first_response_breach_emitted = ")
            .bind(false)
            .push(" AND t.first_responded_at IS NULL AND t.due_first_response_at < ")
            .bind(now)
            .push(") OR (t.resolution_breach_emitted = ")
            .bind(false)
            .push(" AND (t.resolution_breached = ")
            .bind(true)
            .push(" OR t.due_resolution_at < ")
            .bind(now)
            .push(")) LIMIT ")
            .bind(limit as i64);
        if dialect == Dialect::Postgres {
            q.push(" FOR UPDATE SKIP LOCKED");
        }
        let rows = txn.query_all_raw(q.build()).await?;
        let mut n = 0;
        for r in rows {
            let tenant: Uuid = r.try_get("", "tenant_id")?;
            let id: Uuid = r.try_get("", "id")?;
            let mut targets: Vec<(&str, Option<DateTime<Utc>>)> = vec![];
            let fr_due: Option<DateTime<Utc>> = r.try_get("", "due_first_response_at")?;
            if !r.try_get::<bool>("", "first_response_breach_emitted")?
                && r.try_get::<Option<DateTime<Utc>>>("", "first_responded_at")?.is_none()
                && fr_due.is_some_and(|d| d < now)
            {
                targets.push(("firstResponse", fr_due));
            }
            let res_due: Option<DateTime<Utc>> = r.try_get("", "due_resolution_at")?;
            if !r.try_get::<bool>("", "resolution_breach_emitted")?
                && (r.try_get::<bool>("", "resolution_breached")? || res_due.is_some_and(|d| d < now))
            {
                targets.push(("resolution", res_due));
            }
            for (target, due) in &targets {
                let event_id =
                    crate::core::uow::ordered_event_ids(&txn, tenant, 1).await?.pop().unwrap_or_else(Uuid::now_v7);
                event::Entity::insert(event::ActiveModel {
                    tenant_id: sea_orm::ActiveValue::Set(tenant),
                    id: sea_orm::ActiveValue::Set(event_id),
                    event_type: sea_orm::ActiveValue::Set(EventType::TicketSlaBreached.as_str().into()),
                    occurred_at: sea_orm::ActiveValue::Set(now),
                    actor_id: sea_orm::ActiveValue::Set(None),
                    request_id: sea_orm::ActiveValue::Set(None),
                    subjects: sea_orm::ActiveValue::Set(
                        serde_json::to_string(&[Subject::new(SubjectKind::Ticket, id)]).unwrap_or_else(|_| "[]".into()),
                    ),
                    schema_version: sea_orm::ActiveValue::Set(crate::events::EVENT_SCHEMA_VERSION),
                    payload: sea_orm::ActiveValue::Set(serde_json::json!({"target": target, "dueAt": due}).to_string()),
                    dispatched_at: sea_orm::ActiveValue::Set(None),
                })
                .exec_without_returning(&txn)
                .await?;
                n += 1;
            }
            let mut u = Sql::new(dialect);
            u.push("UPDATE tickets SET first_response_breach_emitted = first_response_breach_emitted OR ")
                .bind(targets.iter().any(|t| t.0 == "firstResponse"))
                .push(", resolution_breach_emitted = resolution_breach_emitted OR ")
                .bind(targets.iter().any(|t| t.0 == "resolution"))
                .push(" WHERE tenant_id = ")
                .bind(tenant)
                .push(" AND id = ")
                .bind(id);
            txn.execute_raw(u.build()).await?;
        }
        txn.commit().await?;
        Ok(n)
    }
}
