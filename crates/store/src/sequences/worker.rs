//! Running due steps: the background worker finds active enrolments whose next step is due and
//! runs each in its own unit of work as the tenant's automation actor.
//!
//! Exactly once per (enrolment, run, step): the enrolment row is claimed with `FOR UPDATE SKIP
//! LOCKED` on PostgreSQL (replicas never wait for each other, and never both run it); the step
//! run row, the action's writes and the advance to the next step commit together — a worker
//! killed mid-step leaves nothing, and the step runs again on the next pass. The step-run key
//! (enrolment, generation, position) backs this up in the schema.

use super::{load_steps, no_due};
use crate::access::handle::DataHandle;
use crate::core::dialect::{Dialect, RowLock};
use crate::core::sql::Sql;
use crate::core::uow::{LockedTable, UnitOfWork};
use crate::entities::{membership, sequence, sequence_enrolment, sequence_step_run, tenant};
use crate::error::{StoreError, StoreResult};
use crate::events::{EventType, Subject, SubjectKind};
use crate::groups::membership::{join_in, leave_in};
use crate::system::SystemHandle;
use chrono::{DateTime, Utc};
use cohort_domain::group::MembershipSource;
use cohort_domain::ids::{ContactId, GroupId, TenantId};
use cohort_domain::sequence::{Chain, EndReason, EnrolmentStatus, Step, StepAction, StepOutcome, due_at};
use cohort_domain::{AccessLevel, Role, Roles};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter};
use std::collections::HashMap;
use uuid::Uuid;

/// The subject of the actor that sequence steps run as (one user per tenant, created on first
/// use): history entries and events name it, so an automated change is never mistaken for a
/// person's.
pub const AUTOMATION_SUBJECT: &str = "cohort:automation";

impl SystemHandle {
    /// The tenant's automation actor: a data handle with the admin role (steps act on every
    /// member, whoever added it), under the same unit of work, history and events as a request.
    async fn automation(&self, tenant: TenantId) -> StoreResult<DataHandle> {
        let t = tenant::Entity::find_by_id(tenant.0).one(&self.store.db).await?.ok_or(StoreError::NotFound)?;
        self.act_as(&t.key, AUTOMATION_SUBJECT, Roles::new([Role::Admin])).await
    }

    /// Runs up to `limit` due steps (oldest due first). Returns how many ran; a step that fails
    /// (its transaction is rolled back) is logged and tried again on a later pass.
    pub async fn run_due_steps(&self, limit: u64) -> StoreResult<usize> {
        let dialect = Dialect::of(self.store.db.get_database_backend());
        let now = Utc::now();
        let mut q = Sql::new(dialect);
        q.push("SELECT e.tenant_id, e.id FROM sequence_enrolments e JOIN sequences s ON s.tenant_id = e.tenant_id AND s.id = e.sequence_id WHERE e.status = ")
            .bind(EnrolmentStatus::Active.as_str())
            .push(" AND e.next_due_at <= ")
            .bind(now)
            .push(" AND s.paused = ")
            .bind(false)
            .push(" ORDER BY e.next_due_at LIMIT ")
            .bind(limit as i64);
        let due = self.store.db.query_all_raw(q.build()).await?;
        let mut handles: HashMap<Uuid, DataHandle> = HashMap::new();
        let mut ran = 0;
        for r in due {
            let (t, id): (Uuid, Uuid) = (r.try_get("", "tenant_id")?, r.try_get("", "id")?);
            let h = match handles.get(&t) {
                Some(h) => h,
                None => match self.automation(TenantId(t)).await {
                    Ok(h) => handles.entry(t).or_insert(h),
                    Err(e) => {
                        // One tenant's trouble must not hold up the others' steps.
                        tracing::error!(error = %e, tenant = %t, "no automation actor for a tenant; its steps wait");
                        continue;
                    }
                },
            };
            match h.run_step(id, now).await {
                Ok(true) => ran += 1,
                Ok(false) => {}
                Err(e) => {
                    // Rolled back. Retried a minute later, so a step that keeps failing cannot
                    // hold the head of the queue.
                    tracing::error!(error = %e, enrolment = %id, "a sequence step failed; it is retried in a minute");
                    if let Err(e) = h.defer_step(id, now + chrono::Duration::minutes(1)).await {
                        tracing::error!(error = %e, enrolment = %id, "deferring a failed sequence step failed");
                    }
                }
            }
        }
        Ok(ran)
    }
}

impl DataHandle {
    /// Runs the due step of enrolment `id`, if it is still due and nobody else holds it.
    ///
    /// Locks are taken in the order every request path takes them — the step's group, then the
    /// contact, then the enrolment — so a step never deadlocks with a bulk change, a contact
    /// update or a deletion: the enrolment is read first without a lock (to learn what the step
    /// touches), and claimed last with `SKIP LOCKED`, checked again against what was read.
    async fn run_step(&self, id: Uuid, now: DateTime<Utc>) -> StoreResult<bool> {
        let v = self.viewer();
        let w = self.begin().await?;
        let due = |lock: bool| {
            let mut q = Sql::new(v.dialect);
            q.push("SELECT * FROM sequence_enrolments WHERE tenant_id = ")
                .bind(v.tenant_id.0)
                .push(" AND id = ")
                .bind(id)
                .push(" AND status = ")
                .bind(EnrolmentStatus::Active.as_str())
                .push(" AND next_due_at <= ")
                .bind(now);
            if lock && v.dialect == Dialect::Postgres {
                q.push(" FOR UPDATE SKIP LOCKED");
            }
            q.build()
        };
        let Some(row) = w.tx().query_one_raw(due(false)).await? else {
            return Ok(false);
        };
        let seen = sequence_enrolment::Model::from_query_result(&row, "")?;
        let Some(seq) = sequence::Entity::find_by_id((v.tenant_id.0, seen.sequence_id)).one(w.tx()).await? else {
            return Ok(false);
        };
        if seq.paused {
            return Ok(false);
        }
        let steps = load_steps(w.tx(), v.tenant_id.0, seen.sequence_id, seen.version).await?;
        let pos = usize::try_from(seen.next_step).unwrap_or(usize::MAX);
        let mut group_gone = false;
        if let Some(step) = steps.get(pos) {
            if let Some(g) = step.action.group() {
                match w.lock_row(LockedTable::Groups, g.0, RowLock::NoKeyUpdate).await {
                    Err(StoreError::NotFound) => group_gone = true,
                    other => other?,
                }
            }
            if !matches!(step.action, StepAction::Emit { .. }) {
                match w.lock_row(LockedTable::Contacts, seen.contact_id, RowLock::Update).await {
                    // Deleted meanwhile: its enrolment went with it.
                    Err(StoreError::NotFound) => return Ok(false),
                    other => other?,
                }
            }
        }
        let Some(row) = w.tx().query_one_raw(due(true)).await? else {
            return Ok(false);
        };
        let e = sequence_enrolment::Model::from_query_result(&row, "")?;
        if (e.generation, e.next_step, e.version) != (seen.generation, seen.next_step, seen.version) {
            // Another worker ran this step between the two reads; the next pass sees the rest.
            return Ok(false);
        }
        let chain: Chain =
            serde_json::from_str(&e.chain).map_err(|_| StoreError::corrupt("sequence_enrolments.chain", &e.chain))?;
        if let Some(step) = steps.get(pos) {
            let inserted = sequence_step_run::Entity::insert(sequence_step_run::ActiveModel {
                tenant_id: Set(v.tenant_id.0),
                enrolment_id: Set(e.id),
                generation: Set(e.generation),
                position: Set(e.next_step),
                version: Set(e.version),
                action: Set(step.action.kind().into()),
                group_id: Set(step.action.group().map(|g| g.0)),
                due_at: Set(e.next_due_at),
                at: Set(Utc::now()),
                outcome: Set(StepOutcome::Done.as_str().into()),
                detail: Set(None),
            })
            .on_conflict(
                OnConflict::columns([
                    sequence_step_run::Column::TenantId,
                    sequence_step_run::Column::EnrolmentId,
                    sequence_step_run::Column::Generation,
                    sequence_step_run::Column::Position,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(w.tx())
            .await?;
            // Already ran (it cannot, while the row lock holds; this is the schema's guarantee).
            if inserted == 1 {
                let (outcome, detail) = if group_gone {
                    (StepOutcome::Failed, Some("the group no longer exists".to_owned()))
                } else {
                    self.perform(&w, &e, pos, step, &chain).await?
                };
                if outcome != StepOutcome::Done || detail.is_some() {
                    sequence_step_run::Entity::update_many()
                        .col_expr(sequence_step_run::Column::Outcome, Expr::value(outcome.as_str()))
                        .col_expr(sequence_step_run::Column::Detail, Expr::value(detail))
                        .filter(sequence_step_run::Column::TenantId.eq(v.tenant_id.0))
                        .filter(sequence_step_run::Column::EnrolmentId.eq(e.id))
                        .filter(sequence_step_run::Column::Generation.eq(e.generation))
                        .filter(sequence_step_run::Column::Position.eq(e.next_step))
                        .exec(w.tx())
                        .await?;
                }
            }
        }
        // The next step is due its delay after this one was due (so a worker that was down
        // keeps the schedule); after the last, the enrolment is complete. A step that stopped its
        // own enrolment (it removed the contact from the start group) is not advanced.
        let next = pos.saturating_add(1);
        let done = Utc::now();
        let mut u = sequence_enrolment::Entity::update_many()
            .col_expr(sequence_enrolment::Column::UpdatedAt, Expr::value(done))
            .filter(sequence_enrolment::Column::TenantId.eq(v.tenant_id.0))
            .filter(sequence_enrolment::Column::Id.eq(e.id))
            .filter(sequence_enrolment::Column::Generation.eq(e.generation))
            .filter(sequence_enrolment::Column::Status.eq(EnrolmentStatus::Active.as_str()));
        let completed = match due_at(&steps, next, e.next_due_at) {
            Some(due) => {
                u = u
                    .col_expr(sequence_enrolment::Column::NextStep, Expr::value(next as i32))
                    .col_expr(sequence_enrolment::Column::NextDueAt, Expr::value(due));
                false
            }
            None => {
                u = u
                    .col_expr(sequence_enrolment::Column::Status, Expr::value(EnrolmentStatus::Completed.as_str()))
                    .col_expr(sequence_enrolment::Column::NextStep, Expr::value(steps.len() as i32))
                    .col_expr(sequence_enrolment::Column::NextDueAt, Expr::value(no_due()))
                    .col_expr(sequence_enrolment::Column::EndedAt, Expr::value(Some(done)))
                    .col_expr(sequence_enrolment::Column::EndReason, Expr::value(Some(EndReason::Completed.as_str())));
                true
            }
        };
        let advanced = u.exec(w.tx()).await?.rows_affected;
        if completed && advanced > 0 {
            w.emit(
                EventType::SequenceEnrolmentCompleted,
                vec![
                    Subject::new(SubjectKind::Sequence, e.sequence_id),
                    Subject::new(SubjectKind::SequenceEnrolment, e.id),
                    Subject::new(SubjectKind::Contact, e.contact_id),
                ],
                serde_json::json!({"generation": e.generation}),
            );
        }
        w.commit().await?;
        Ok(true)
    }

    /// Moves an active enrolment's next step to `at` (after a failure).
    async fn defer_step(&self, id: Uuid, at: DateTime<Utc>) -> StoreResult<()> {
        let v = self.viewer();
        sequence_enrolment::Entity::update_many()
            .col_expr(sequence_enrolment::Column::NextDueAt, Expr::value(at))
            .filter(sequence_enrolment::Column::TenantId.eq(v.tenant_id.0))
            .filter(sequence_enrolment::Column::Id.eq(id))
            .filter(sequence_enrolment::Column::Status.eq(EnrolmentStatus::Active.as_str()))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// The action of one step, in the step's unit of work.
    async fn perform(
        &self,
        w: &UnitOfWork,
        e: &sequence_enrolment::Model,
        pos: usize,
        step: &Step,
        chain: &Chain,
    ) -> StoreResult<(StepOutcome, Option<String>)> {
        let v = self.viewer();
        let contact = e.contact_id;
        let failed = |why: &str| Ok((StepOutcome::Failed, Some(why.to_owned())));
        match &step.action {
            StepAction::Emit { template_key } => {
                w.emit(
                    EventType::SequenceStepDue,
                    vec![
                        Subject::new(SubjectKind::Sequence, e.sequence_id),
                        Subject::new(SubjectKind::SequenceEnrolment, e.id),
                        Subject::new(SubjectKind::Contact, contact),
                    ],
                    serde_json::json!({"templateKey": template_key, "position": pos, "version": e.version,
                                       "generation": e.generation, "dueAt": e.next_due_at}),
                );
                Ok((StepOutcome::Done, None))
            }
            StepAction::AddToGroup { group } | StepAction::RemoveFromGroup { group } => {
                // The group's membership lock is held already (see `run_step`).
                if self.group_for(w.tx(), v, *group, AccessLevel::Write).await.is_err() {
                    return failed("the group no longer exists");
                }
                let current = membership::Entity::find()
                    .filter(membership::Column::TenantId.eq(v.tenant_id.0))
                    .filter(membership::Column::GroupId.eq(group.0))
                    .filter(membership::Column::ContactId.eq(contact))
                    .one(w.tx())
                    .await?;
                // Neutral on purpose: readers of the group's history may not see the sequence.
                let reason = format!("follow-up sequence step {}", pos + 1);
                if matches!(step.action, StepAction::AddToGroup { .. }) {
                    if current.is_some() {
                        return Ok((StepOutcome::Unchanged, Some("already a member".into())));
                    }
                    let c = self.contact_for(w.tx(), v, ContactId(contact), AccessLevel::Read).await?;
                    if crate::contacts::erasure::erased_at(w.tx(), v.dialect, v.tenant_id.0, contact).await?.is_some() {
                        return failed("the contact was erased");
                    }
                    // The chain carries this sequence: the join may start other sequences, never
                    // this one again. Automation is no consent: a suppressed address stays out of
                    // a public group.
                    let suppressed = join_in(
                        w,
                        *group,
                        &[(contact, c.address_book_id, c.sort_name)],
                        MembershipSource::Automation,
                        chain,
                        &self.link_keys.get(),
                    )
                    .await?;
                    if !suppressed.is_empty() {
                        return failed(
                            "the contact's address is on the suppression list: it joins a public group only with new consent",
                        );
                    }
                    Ok((StepOutcome::Done, None))
                } else {
                    let Some(m) = current else {
                        return Ok((StepOutcome::Unchanged, Some("not a member".into())));
                    };
                    leave_in(
                        w,
                        GroupId(group.0),
                        &[(contact, m.address_book_id, m.source)],
                        Some(MembershipSource::Automation),
                        Some(&reason),
                    )
                    .await?;
                    Ok((StepOutcome::Done, None))
                }
            }
            StepAction::SetBusinessStatus { key } => {
                match self
                    .set_status_in(w, ContactId(contact), key.as_deref(), Some("follow-up sequence step".to_owned()))
                    .await
                {
                    Ok((_, true)) => Ok((StepOutcome::Done, None)),
                    Ok((_, false)) => Ok((StepOutcome::Unchanged, Some("the status was already set".into()))),
                    Err(StoreError::Invalid(_)) => failed("the business status no longer exists"),
                    Err(e) => Err(e),
                }
            }
        }
    }
}
