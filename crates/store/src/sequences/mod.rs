//! Follow-up sequences (Worldsoft "Automated FollowUp"): definitions, enrolments and the steps
//! that ran.
//!
//! - Writing a definition is for admins: its steps run as the system actor, on every contact that
//!   joins the start group, whoever added it.
//! - Reading follows the start group: a sequence exists for a viewer who can read its start
//!   group's home book; an enrolment, for a viewer who sees both its sequence and its contact.
//! - `enrol` ties enrolment to membership inside the join's unit of work; `worker` runs due steps.

pub(crate) mod enrol;
pub(crate) mod worker;

use crate::access::handle::DataHandle;
use crate::access::viewer::Viewer;
use crate::audit::Changes;
use crate::core::decode::{membership_source, strict};
use crate::core::dialect::RowLock;
use crate::core::page::{Page, PageRequest, TimeKey};
use crate::core::sql::Sql;
use crate::core::uow::{LockedTable, UnitOfWork};
use crate::entities::{business_status, group, sequence, sequence_enrolment, sequence_step_run, sequence_version};
use crate::error::{StoreError, StoreResult};
use crate::events::{EventType, Subject, SubjectKind};
use chrono::{DateTime, Utc};
use cohort_domain::AccessLevel;
use cohort_domain::group::MembershipSource;
use cohort_domain::ids::{ContactId, EnrolmentId, GroupId, SequenceId};
use cohort_domain::sequence::{
    ActionKind, EndReason, EnrolmentStatus, Rejoin, Step, StepAction, StepDraft, StepOutcome, sequence_name,
    validate_steps,
};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter,
    QuerySelect,
};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

pub(crate) use crate::sla::tickets::no_due;

/// A step as the client sends it.
#[derive(Debug, Clone)]
pub struct StepInput {
    pub delay: String,
    pub action: ActionKind,
    pub template_key: Option<String>,
    pub group_id: Option<GroupId>,
    pub status_key: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SequenceInput {
    pub name: String,
    pub start_group_id: GroupId,
    pub include_subgroups: bool,
    pub stop_on_leave: bool,
    pub require_consent: bool,
    pub rejoin: Rejoin,
    pub steps: Vec<StepInput>,
}

/// What `updateSequence` changes (absent: unchanged). New steps make a new version: enrolments
/// under way finish on the version they started with.
#[derive(Debug, Clone, Default)]
pub struct SequencePatch {
    pub name: Option<String>,
    pub start_group_id: Option<GroupId>,
    pub include_subgroups: Option<bool>,
    pub stop_on_leave: Option<bool>,
    pub require_consent: Option<bool>,
    pub rejoin: Option<Rejoin>,
    pub steps: Option<Vec<StepInput>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SequenceRecord {
    pub id: SequenceId,
    pub name: String,
    pub start_group_id: GroupId,
    pub include_subgroups: bool,
    pub stop_on_leave: bool,
    pub require_consent: bool,
    pub rejoin: Rejoin,
    pub paused: bool,
    pub version: i32,
    /// The current version's steps.
    pub steps: Vec<Step>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EnrolmentRecord {
    pub id: EnrolmentId,
    pub sequence_id: SequenceId,
    pub contact_id: ContactId,
    pub version: i32,
    /// 1 for the first run; a restart after re-joining adds one.
    pub generation: i32,
    pub status: EnrolmentStatus,
    /// The position of the next step (while active).
    pub next_step: Option<i32>,
    pub next_due_at: Option<DateTime<Utc>>,
    /// The membership source of the join that enrolled (or restarted) it.
    pub source: MembershipSource,
    /// How many sequences' steps led to this enrolment (0: a person's or integration's join).
    pub automation_depth: i32,
    pub enrolled_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub end_reason: Option<EndReason>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StepRunRecord {
    /// The group an ADD/REMOVE step acted on (the API shows the outcome only to viewers who can
    /// see it).
    pub group_id: Option<GroupId>,
    pub generation: i32,
    pub position: i32,
    pub version: i32,
    pub action: String,
    pub due_at: DateTime<Utc>,
    pub at: DateTime<Utc>,
    pub outcome: StepOutcome,
    pub detail: Option<String>,
}

pub(crate) fn parse_steps(text: &str) -> StoreResult<Vec<Step>> {
    serde_json::from_str(text).map_err(|_| StoreError::corrupt("sequence_versions.steps", text))
}

/// The steps of `sequence` at `version`.
pub(crate) async fn load_steps<C: ConnectionTrait>(
    conn: &C,
    tenant: Uuid,
    sequence: Uuid,
    version: i32,
) -> StoreResult<Vec<Step>> {
    let row = sequence_version::Entity::find_by_id((tenant, sequence, version))
        .one(conn)
        .await?
        .ok_or_else(|| StoreError::corrupt("sequence_versions", (sequence, version)))?;
    parse_steps(&row.steps)
}

fn record(m: sequence::Model, steps: Vec<Step>) -> StoreResult<SequenceRecord> {
    Ok(SequenceRecord {
        id: SequenceId(m.id),
        rejoin: strict("sequences.rejoin", &m.rejoin, Rejoin::parse(&m.rejoin))?,
        name: m.name,
        start_group_id: GroupId(m.start_group_id),
        include_subgroups: m.include_subgroups,
        stop_on_leave: m.stop_on_leave,
        require_consent: m.require_consent,
        paused: m.paused,
        version: m.version,
        steps,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

pub(crate) fn enrolment_record(m: sequence_enrolment::Model) -> StoreResult<EnrolmentRecord> {
    let status = strict("sequence_enrolments.status", &m.status, EnrolmentStatus::parse(&m.status))?;
    let active = status == EnrolmentStatus::Active;
    let chain: cohort_domain::sequence::Chain =
        serde_json::from_str(&m.chain).map_err(|_| StoreError::corrupt("sequence_enrolments.chain", &m.chain))?;
    Ok(EnrolmentRecord {
        id: EnrolmentId(m.id),
        sequence_id: SequenceId(m.sequence_id),
        contact_id: ContactId(m.contact_id),
        version: m.version,
        generation: m.generation,
        status,
        next_step: active.then_some(m.next_step),
        next_due_at: (active && m.next_due_at < no_due()).then_some(m.next_due_at),
        source: membership_source(&m.source)?,
        automation_depth: chain.0.len().saturating_sub(1) as i32,
        enrolled_at: m.enrolled_at,
        ended_at: m.ended_at,
        end_reason: m
            .end_reason
            .as_deref()
            .map(|r| strict("sequence_enrolments.end_reason", r, EndReason::parse(r)))
            .transpose()?,
    })
}

fn require_admin(v: &Viewer) -> StoreResult<()> {
    if v.is_admin() {
        Ok(())
    } else {
        Err(StoreError::forbidden("follow-up sequences are configured by admins (their steps run on every member)"))
    }
}

/// The filter "the viewer can read the sequence's start group" on `sequences s`.
fn push_visible_sequence(q: &mut Sql, v: &Viewer) {
    if !v.is_admin() {
        q.push(" AND s.start_group_id IN ").visible_groups(v);
    }
}

/// The filter on `sequence_enrolments e` (joined with `sequences s`): the viewer sees the
/// contact, the sequence, and the group whose join enrolled it (with `include_subgroups` a
/// subgroup, perhaps homed in a book the viewer cannot read: the enrolment would say the contact
/// is in it).
fn push_visible_enrolment(q: &mut Sql, v: &Viewer) {
    q.push(" AND ").visible_books(v, "e.address_book_id", AccessLevel::Read);
    push_visible_sequence(q, v);
    if !v.is_admin() {
        q.push(" AND e.group_id IN ").visible_groups(v);
    }
}

impl DataHandle {
    /// Validates the steps against this tenant: groups exist, status keys exist.
    async fn checked_steps<C: ConnectionTrait>(&self, conn: &C, inputs: &[StepInput]) -> StoreResult<Vec<Step>> {
        let v = self.viewer();
        let drafts: Vec<StepDraft<'_>> = inputs
            .iter()
            .map(|s| StepDraft {
                delay: &s.delay,
                action: s.action,
                template_key: s.template_key.as_deref(),
                group: s.group_id,
                status_key: s.status_key.as_deref(),
            })
            .collect();
        let steps = validate_steps(&drafts)?;
        let groups: HashSet<Uuid> = steps.iter().filter_map(|s| s.action.group()).map(|g| g.0).collect();
        if !groups.is_empty() {
            let found = group::Entity::find()
                .filter(group::Column::TenantId.eq(v.tenant_id.0))
                .filter(group::Column::Id.is_in(groups.iter().copied()))
                .all(conn)
                .await?;
            if found.len() != groups.len() {
                return Err(StoreError::invalid("steps.groupId", "names a group that does not exist"));
            }
        }
        let keys: HashSet<&str> = steps
            .iter()
            .filter_map(|s| match &s.action {
                StepAction::SetBusinessStatus { key: Some(k) } => Some(k.as_str()),
                _ => None,
            })
            .collect();
        if !keys.is_empty() {
            let found = business_status::Entity::find()
                .filter(business_status::Column::TenantId.eq(v.tenant_id.0))
                .filter(business_status::Column::Key.is_in(keys.iter().map(|k| k.to_string())))
                .all(conn)
                .await?;
            if found.len() != keys.len() {
                return Err(StoreError::invalid(
                    "steps.statusKey",
                    "names a business status this tenant does not have",
                ));
            }
        }
        Ok(steps)
    }

    /// The start group exists, and stays until commit: a share lock (PostgreSQL) that a
    /// concurrent `deleteGroup` waits for, after which it finds this sequence and refuses.
    async fn start_group_exists(&self, w: &UnitOfWork, g: GroupId) -> StoreResult<()> {
        let missing = || StoreError::invalid("startGroupId", "is not a group of this tenant");
        match w.lock_row(LockedTable::Groups, g.0, RowLock::Share).await {
            Err(StoreError::NotFound) => return Err(missing()),
            other => other?,
        }
        group::Entity::find()
            .filter(group::Column::TenantId.eq(self.viewer().tenant_id.0))
            .filter(group::Column::Id.eq(g.0))
            .one(w.tx())
            .await?
            .map(|_| ())
            .ok_or_else(missing)
    }

    /// Creates a sequence (admin). Contacts already in the start group are not enrolled: a
    /// sequence starts with the joins that follow.
    pub async fn create_sequence(&self, input: &SequenceInput) -> StoreResult<SequenceRecord> {
        let v = self.viewer();
        require_admin(v)?;
        let (name, sort_name) = sequence_name(&input.name)?;
        let w = self.begin().await?;
        self.start_group_exists(&w, input.start_group_id).await?;
        let steps = self.checked_steps(w.tx(), &input.steps).await?;
        let now = Utc::now();
        let m = sequence::Model {
            tenant_id: v.tenant_id.0,
            id: Uuid::now_v7(),
            name,
            sort_name,
            start_group_id: input.start_group_id.0,
            include_subgroups: input.include_subgroups,
            stop_on_leave: input.stop_on_leave,
            require_consent: input.require_consent,
            rejoin: input.rejoin.as_str().into(),
            paused: false,
            version: 1,
            created_by: Some(v.user_id.0),
            created_at: now,
            updated_at: now,
        };
        sequence::Entity::insert(sequence::ActiveModel::from(m.clone()))
            .exec_without_returning(w.tx())
            .await
            .map_err(|e| StoreError::unique_as_conflict(e, "a sequence with this name exists"))?;
        insert_version(&w, m.id, 1, &steps, now).await?;
        w.audit(
            "sequence.create",
            "Sequence",
            Some(m.id),
            serde_json::json!({"name": m.name, "startGroupId": m.start_group_id, "steps": steps.len()}),
        );
        w.emit(
            EventType::SequenceCreated,
            vec![Subject::new(SubjectKind::Sequence, m.id), Subject::new(SubjectKind::Group, m.start_group_id)],
            serde_json::json!({"version": 1}),
        );
        w.commit().await?;
        record(m, steps)
    }

    /// Changes a sequence (admin).
    pub async fn update_sequence(&self, id: SequenceId, p: &SequencePatch) -> StoreResult<SequenceRecord> {
        let v = self.viewer();
        require_admin(v)?;
        let w = self.begin().await?;
        let cur = locked_sequence(&w, id).await?;
        let mut a: sequence::ActiveModel = cur.clone().into();
        // The names of the changed fields, for the event (which carries names only).
        let mut changed: Vec<&str> = vec![];
        if let Some(n) = &p.name {
            let (name, sort) = sequence_name(n)?;
            if name != cur.name {
                a.name = Set(name);
                a.sort_name = Set(sort);
                changed.push("name");
            }
        }
        if let Some(g) = p.start_group_id
            && g.0 != cur.start_group_id
        {
            self.start_group_exists(&w, g).await?;
            a.start_group_id = Set(g.0);
            changed.push("startGroupId");
        }
        for (val, cur_val, col, field) in [
            (p.include_subgroups, cur.include_subgroups, &mut a.include_subgroups, "includeSubgroups"),
            (p.stop_on_leave, cur.stop_on_leave, &mut a.stop_on_leave, "stopOnLeave"),
            (p.require_consent, cur.require_consent, &mut a.require_consent, "requireConsent"),
        ] {
            if let Some(b) = val
                && b != cur_val
            {
                *col = Set(b);
                changed.push(field);
            }
        }
        if let Some(r) = p.rejoin
            && r.as_str() != cur.rejoin
        {
            a.rejoin = Set(r.as_str().into());
            changed.push("rejoin");
        }
        let now = Utc::now();
        let mut version = cur.version;
        // The previous version's steps, when this update replaces them.
        let mut old_steps = None;
        let steps = match &p.steps {
            Some(inputs) => {
                let steps = self.checked_steps(w.tx(), inputs).await?;
                let before = load_steps(w.tx(), v.tenant_id.0, cur.id, cur.version).await?;
                if steps != before {
                    version += 1;
                    insert_version(&w, cur.id, version, &steps, now).await?;
                    a.version = Set(version);
                    changed.push("steps");
                    old_steps = Some(before);
                }
                steps
            }
            None => load_steps(w.tx(), v.tenant_id.0, cur.id, cur.version).await?,
        };
        if changed.is_empty() {
            w.commit().await?;
            return record(cur, steps);
        }
        a.updated_at = Set(now);
        let m = a
            .update(w.tx())
            .await
            .map_err(|e| StoreError::unique_as_conflict(e, "a sequence with this name exists"))?;
        let mut changes = Changes::new();
        changes
            .field("name", &cur.name, &m.name)
            .field("startGroupId", cur.start_group_id, m.start_group_id)
            .field("includeSubgroups", cur.include_subgroups, m.include_subgroups)
            .field("stopOnLeave", cur.stop_on_leave, m.stop_on_leave)
            .field("requireConsent", cur.require_consent, m.require_consent)
            .field("rejoin", &cur.rejoin, &m.rejoin);
        if let Some(before) = &old_steps {
            let (b, a) = audited_steps((cur.version, before), (version, &steps));
            changes.field("steps", b, a);
        }
        w.audit("sequence.update", "Sequence", Some(m.id), changes.details(serde_json::json!({"version": version})));
        w.emit(
            EventType::SequenceUpdated,
            vec![Subject::new(SubjectKind::Sequence, m.id)],
            serde_json::json!({"changed": changed, "version": version}),
        );
        w.commit().await?;
        record(m, steps)
    }

    /// Pauses (no new enrolments, no steps run) or resumes a sequence (admin). Steps that fell
    /// due while it was paused run as soon as it is resumed.
    pub async fn pause_sequence(&self, id: SequenceId, paused: bool) -> StoreResult<SequenceRecord> {
        let v = self.viewer();
        require_admin(v)?;
        let w = self.begin().await?;
        let cur = locked_sequence(&w, id).await?;
        let steps = load_steps(w.tx(), v.tenant_id.0, cur.id, cur.version).await?;
        if cur.paused == paused {
            w.commit().await?;
            return record(cur, steps);
        }
        let mut a: sequence::ActiveModel = cur.into();
        a.paused = Set(paused);
        a.updated_at = Set(Utc::now());
        let m = a.update(w.tx()).await?;
        w.audit(
            if paused { "sequence.pause" } else { "sequence.resume" },
            "Sequence",
            Some(m.id),
            serde_json::json!({}),
        );
        w.emit(
            if paused { EventType::SequencePaused } else { EventType::SequenceResumed },
            vec![Subject::new(SubjectKind::Sequence, m.id)],
            serde_json::json!({}),
        );
        w.commit().await?;
        record(m, steps)
    }

    /// The sequences the viewer can see (start group readable), by name.
    pub async fn sequences(&self) -> StoreResult<Vec<SequenceRecord>> {
        self.sequences_where(None).await
    }

    /// Visible sequences among `ids`.
    pub async fn sequences_by_ids(&self, ids: &[SequenceId]) -> StoreResult<Vec<SequenceRecord>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        self.sequences_where(Some(ids)).await
    }

    async fn sequences_where(&self, ids: Option<&[SequenceId]>) -> StoreResult<Vec<SequenceRecord>> {
        let v = self.viewer();
        let mut q = Sql::new(v.dialect);
        q.push("SELECT s.* FROM sequences s WHERE s.tenant_id = ").bind(v.tenant_id.0);
        if let Some(ids) = ids {
            q.push(" AND s.id IN ").bind_list(ids.iter().map(|i| i.0));
        }
        push_visible_sequence(&mut q, v);
        q.push(" ORDER BY s.sort_name, s.id");
        let rows = self.db.query_all_raw(q.build()).await?;
        let models: Vec<sequence::Model> =
            rows.iter().map(|r| sequence::Model::from_query_result(r, "")).collect::<Result<_, _>>()?;
        if models.is_empty() {
            return Ok(vec![]);
        }
        // The current versions' steps, in one statement.
        let versions = sequence_version::Entity::find()
            .filter(sequence_version::Column::TenantId.eq(v.tenant_id.0))
            .filter(sequence_version::Column::SequenceId.is_in(models.iter().map(|m| m.id)))
            .filter(sequence_version::Column::Version.is_in(models.iter().map(|m| m.version).collect::<HashSet<_>>()))
            .all(&self.db)
            .await?;
        let steps: HashMap<(Uuid, i32), &str> =
            versions.iter().map(|s| ((s.sequence_id, s.version), s.steps.as_str())).collect();
        models
            .into_iter()
            .map(|m| {
                let text = steps
                    .get(&(m.id, m.version))
                    .ok_or_else(|| StoreError::corrupt("sequence_versions", (m.id, m.version)))?;
                let s = parse_steps(text)?;
                record(m, s)
            })
            .collect()
    }

    /// A page of a visible sequence's visible enrolments, newest first (`status`: only those).
    pub async fn sequence_enrolments(
        &self,
        id: SequenceId,
        status: Option<EnrolmentStatus>,
        page: &PageRequest,
    ) -> StoreResult<Page<EnrolmentRecord>> {
        let v = self.viewer();
        let after = page.after_key::<TimeKey>()?;
        let mut q = Sql::new(v.dialect);
        q.push("SELECT e.*");
        enrolments_of(&mut q, v, id, status);
        if let Some(TimeKey(at, eid)) = after {
            q.push(" AND (e.enrolled_at < ")
                .bind(at)
                .push(" OR (e.enrolled_at = ")
                .bind(at)
                .push(" AND e.id < ")
                .bind(eid)
                .push("))");
        }
        q.push(" ORDER BY e.enrolled_at DESC, e.id DESC LIMIT ").bind(page.limit() as i64);
        let recs = decode_enrolments(&self.db.query_all_raw(q.build()).await?)?;
        Ok(Page::from_rows(recs, page, |e| TimeKey(e.enrolled_at, e.id.0)))
    }

    /// How many of a visible sequence's enrolments the viewer can see.
    pub async fn sequence_enrolment_count(&self, id: SequenceId, status: Option<EnrolmentStatus>) -> StoreResult<u64> {
        let v = self.viewer();
        let mut c = Sql::new(v.dialect);
        c.push("SELECT COUNT(*) AS n");
        enrolments_of(&mut c, v, id, status);
        let n: i64 = match self.db.query_one_raw(c.build()).await? {
            Some(r) => r.try_get("", "n")?,
            None => 0,
        };
        Ok(n.max(0) as u64)
    }

    /// The enrolments of visible contacts among `contacts`, in sequences the viewer can see,
    /// newest first (one statement, for a per-request loader).
    pub async fn contact_enrolments(
        &self,
        contacts: &[ContactId],
    ) -> StoreResult<HashMap<ContactId, Vec<EnrolmentRecord>>> {
        let mut out: HashMap<ContactId, Vec<EnrolmentRecord>> = HashMap::new();
        for e in self.visible_enrolments("e.contact_id", contacts.iter().map(|c| c.0)).await? {
            out.entry(e.contact_id).or_default().push(e);
        }
        Ok(out)
    }

    /// Visible enrolments among `ids` (for `node`).
    pub async fn enrolments_by_ids(&self, ids: &[EnrolmentId]) -> StoreResult<Vec<EnrolmentRecord>> {
        self.visible_enrolments("e.id", ids.iter().map(|i| i.0)).await
    }

    /// Visible enrolments whose `column` is among `values`, newest first.
    async fn visible_enrolments(
        &self,
        column: &'static str,
        values: impl ExactSizeIterator<Item = Uuid>,
    ) -> StoreResult<Vec<EnrolmentRecord>> {
        let v = self.viewer();
        if values.len() == 0 {
            return Ok(vec![]);
        }
        let mut q = Sql::new(v.dialect);
        q.push("SELECT e.* FROM sequence_enrolments e JOIN sequences s ON s.tenant_id = e.tenant_id AND s.id = e.sequence_id WHERE e.tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND ")
            .push(column)
            .push(" IN ")
            .bind_list(values);
        push_visible_enrolment(&mut q, v);
        q.push(" ORDER BY e.enrolled_at DESC, e.id DESC");
        decode_enrolments(&self.db.query_all_raw(q.build()).await?)
    }

    /// The steps that ran for each visible enrolment among `ids`, in order (every generation),
    /// in one statement.
    pub async fn enrolment_steps(&self, ids: &[EnrolmentId]) -> StoreResult<HashMap<EnrolmentId, Vec<StepRunRecord>>> {
        let v = self.viewer();
        let mut out: HashMap<EnrolmentId, Vec<StepRunRecord>> = HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let mut q = Sql::new(v.dialect);
        q.push("SELECT r.* FROM sequence_step_runs r JOIN sequence_enrolments e ON e.tenant_id = r.tenant_id AND e.id = r.enrolment_id JOIN sequences s ON s.tenant_id = e.tenant_id AND s.id = e.sequence_id WHERE r.tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND r.enrolment_id IN ")
            .bind_list(ids.iter().map(|i| i.0));
        push_visible_enrolment(&mut q, v);
        q.push(" ORDER BY r.enrolment_id, r.generation, r.position");
        for row in self.db.query_all_raw(q.build()).await? {
            let r = sequence_step_run::Model::from_query_result(&row, "")?;
            out.entry(EnrolmentId(r.enrolment_id)).or_default().push(StepRunRecord {
                group_id: r.group_id.map(GroupId),
                generation: r.generation,
                position: r.position,
                version: r.version,
                outcome: strict("sequence_step_runs.outcome", &r.outcome, StepOutcome::parse(&r.outcome))?,
                action: r.action,
                due_at: r.due_at,
                at: r.at,
                detail: r.detail,
            });
        }
        Ok(out)
    }
}

fn decode_enrolments(rows: &[sea_orm::QueryResult]) -> StoreResult<Vec<EnrolmentRecord>> {
    rows.iter()
        .map(|r| {
            sequence_enrolment::Model::from_query_result(r, "").map_err(StoreError::from).and_then(enrolment_record)
        })
        .collect()
}

/// A sequence of the viewer's tenant, locked until commit (PostgreSQL): two concurrent edits
/// must not both make version n+1, nor a pause race an edit.
async fn locked_sequence(w: &UnitOfWork, id: SequenceId) -> StoreResult<sequence::Model> {
    sequence::Entity::find_by_id((w.viewer().tenant_id.0, id.0))
        .lock_exclusive()
        .one(w.tx())
        .await?
        .ok_or(StoreError::NotFound)
}

/// `FROM … WHERE …` of a sequence's visible enrolments.
fn enrolments_of(q: &mut Sql, v: &Viewer, id: SequenceId, status: Option<EnrolmentStatus>) {
    q.push(" FROM sequence_enrolments e JOIN sequences s ON s.tenant_id = e.tenant_id AND s.id = e.sequence_id WHERE e.tenant_id = ")
        .bind(v.tenant_id.0)
        .push(" AND e.sequence_id = ")
        .bind(id.0);
    push_visible_enrolment(q, v);
    if let Some(st) = status {
        q.push(" AND e.status = ").bind(st.as_str());
    }
}

/// Up to this serialised size (both sides together) `sequence.update` records changed steps whole.
const AUDITED_STEPS_MAX_BYTES: usize = 4096;

/// How `sequence.update` records a change of the steps (`changed.steps.before`/`after`).
///
/// Steps are configuration only (delays, action kinds, template keys, group ids, status keys),
/// so a definition of the usual handful of steps is recorded whole: the entry then says exactly
/// what changed, which the API cannot show later (it serves only the current version's steps).
/// A long definition (up to [`cohort_domain::sequence::MAX_STEPS`] steps with 100-character
/// template keys: some 10 KB a side, written again on every edit) is recorded as
/// `{"version": n, "stepCount": k}` on each side instead; `sequence_versions` keeps every
/// version unchanged (rows are only ever added), so the two versions name the exact definitions.
fn audited_steps(before: (i32, &[Step]), after: (i32, &[Step])) -> (serde_json::Value, serde_json::Value) {
    let whole = (serde_json::json!(before.1), serde_json::json!(after.1));
    if whole.0.to_string().len() + whole.1.to_string().len() <= AUDITED_STEPS_MAX_BYTES {
        return whole;
    }
    let by_version =
        |(version, steps): (i32, &[Step])| serde_json::json!({"version": version, "stepCount": steps.len()});
    (by_version(before), by_version(after))
}

async fn insert_version(
    w: &UnitOfWork,
    sequence: Uuid,
    version: i32,
    steps: &[Step],
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let v = w.viewer();
    let text = serde_json::to_string(steps).map_err(|_| StoreError::corrupt("sequence steps", "-"))?;
    sequence_version::Entity::insert(sequence_version::ActiveModel {
        tenant_id: Set(v.tenant_id.0),
        sequence_id: Set(sequence),
        version: Set(version),
        steps: Set(text),
        created_by: Set(Some(v.user_id.0)),
        created_at: Set(now),
    })
    .exec_without_returning(w.tx())
    .await?;
    Ok(())
}
