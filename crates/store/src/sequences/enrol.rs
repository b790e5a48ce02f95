//! Enrolment follows membership, inside the unit of work that changed it: a join enrols into the
//! sequences it starts (whatever the path — bulk add, a sequence step, later a web form), a leave
//! stops the enrolments that end when a contact leaves. Both are set-based: one statement finds
//! the sequences concerned (none in the common case), then a few statements per sequence.

use super::{load_steps, no_due};
use crate::core::dialect::RowLock;
use crate::core::sql::Sql;
use crate::core::uow::UnitOfWork;
use crate::entities::sequence_enrolment;
use crate::error::{StoreError, StoreResult};
use crate::events::{EventType, Subject, SubjectKind};
use chrono::Utc;
use cohort_domain::group::MembershipSource;
use cohort_domain::ids::{GroupId, SequenceId};
use cohort_domain::sequence::{Chain, EndReason, EnrolmentStatus, Rejoin, due_at};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

const CHUNK: usize = 1000;

/// A sequence a membership change concerns.
struct Concerned {
    id: Uuid,
    version: i32,
    rejoin: String,
    require_consent: bool,
    public: bool,
    start_group: Uuid,
    include_subgroups: bool,
}

/// The sequences whose start group is `group`, or an ancestor of it for those that include
/// subgroups (the closure table holds every group as its own ancestor at depth 0). `starting`:
/// only unpaused ones (a join); otherwise only those that stop on leave (a leave).
async fn concerned(w: &UnitOfWork, groups: &[Uuid], starting: bool) -> StoreResult<Vec<Concerned>> {
    let v = w.viewer();
    let mut q = Sql::new(v.dialect);
    q.push("SELECT DISTINCT s.id, s.version, s.rejoin, s.require_consent, s.start_group_id, s.include_subgroups, CASE WHEN g.public_name IS NULL THEN 0 ELSE 1 END AS public FROM sequences s JOIN contact_groups g ON g.tenant_id = s.tenant_id AND g.id = s.start_group_id JOIN group_closure cl ON cl.tenant_id = s.tenant_id AND cl.ancestor_id = s.start_group_id WHERE s.tenant_id = ")
        .bind(v.tenant_id.0)
        .push(" AND cl.descendant_id IN ")
        .bind_list(groups.iter().copied())
        .push(" AND (s.include_subgroups = ")
        .bind(true)
        .push(" OR cl.depth = 0)");
    if starting {
        q.push(" AND s.paused = ").bind(false);
    } else {
        q.push(" AND s.stop_on_leave = ").bind(true);
    }
    // A stable order, so concurrent writers take the enrolment locks of several sequences alike.
    q.push(" ORDER BY s.id");
    let mut out = vec![];
    for r in w.tx().query_all_raw(q.build()).await? {
        let public: i32 = r.try_get("", "public")?;
        out.push(Concerned {
            id: r.try_get("", "id")?,
            version: r.try_get("", "version")?,
            rejoin: r.try_get("", "rejoin")?,
            require_consent: r.try_get("", "require_consent")?,
            public: public != 0,
            start_group: r.try_get("", "start_group_id")?,
            include_subgroups: r.try_get("", "include_subgroups")?,
        });
    }
    Ok(out)
}

/// Enrols the contacts that just joined `group` (`(contact, address book)`) into every sequence
/// the join starts, in the caller's unit of work. `chain`: the sequences whose steps led to the
/// join — none of them is entered again (the loop guard). `consented`: the memberships rest on
/// confirmed consent (sequences that require it on a public start group enrol only those).
pub(crate) async fn on_join(
    w: &UnitOfWork,
    group: GroupId,
    joined: &[(Uuid, Uuid)],
    source: MembershipSource,
    chain: &Chain,
    consented: bool,
) -> StoreResult<()> {
    if joined.is_empty() {
        return Ok(());
    }
    let v = w.viewer();
    for s in concerned(w, &[group.0], true).await? {
        let seq = SequenceId(s.id);
        if !chain.may_enrol(seq) || (s.require_consent && s.public && !consented) {
            continue;
        }
        let steps = load_steps(w.tx(), v.tenant_id.0, s.id, s.version).await?;
        let now = Utc::now();
        let due = due_at(&steps, 0, now).unwrap_or_else(no_due);
        let chain_text = serde_json::to_string(&chain.then(seq)).map_err(|_| StoreError::corrupt("chain", "-"))?;
        let mut enrolled = 0u64;
        // In contact order, so two joins of overlapping contacts (two subgroups at once) take the
        // enrolment rows' locks in the same order and cannot deadlock.
        let mut joined = joined.to_vec();
        joined.sort();
        for chunk in joined.chunks(CHUNK) {
            // Locked (PostgreSQL): a concurrent leave that is stopping one of them finishes first,
            // and this join then sees it ended (and applies the rejoin rule), as if serial.
            let mut q = Sql::new(v.dialect);
            q.push("SELECT * FROM sequence_enrolments WHERE tenant_id = ")
                .bind(v.tenant_id.0)
                .push(" AND sequence_id = ")
                .bind(s.id)
                .push(" AND contact_id IN ")
                .bind_list(chunk.iter().map(|c| c.0))
                .push(" ORDER BY id")
                .push(v.dialect.lock_rows(RowLock::Update));
            let mut existing: HashMap<Uuid, sequence_enrolment::Model> = HashMap::new();
            for r in w.tx().query_all_raw(q.build()).await? {
                let e = sequence_enrolment::Model::from_query_result(&r, "")?;
                existing.insert(e.contact_id, e);
            }
            let fresh: Vec<sequence_enrolment::ActiveModel> = chunk
                .iter()
                .filter(|(c, _)| !existing.contains_key(c))
                .map(|(c, book)| sequence_enrolment::ActiveModel {
                    tenant_id: Set(v.tenant_id.0),
                    id: Set(Uuid::now_v7()),
                    sequence_id: Set(s.id),
                    contact_id: Set(*c),
                    address_book_id: Set(*book),
                    group_id: Set(group.0),
                    version: Set(s.version),
                    generation: Set(1),
                    status: Set(EnrolmentStatus::Active.as_str().into()),
                    next_step: Set(0),
                    next_due_at: Set(due),
                    chain: Set(chain_text.clone()),
                    source: Set(source.as_str().into()),
                    enrolled_at: Set(now),
                    ended_at: Set(None),
                    end_reason: Set(None),
                    updated_at: Set(now),
                })
                .collect();
            if !fresh.is_empty() {
                // Two concurrent joins of one contact (two subgroups at once) enrol it once: the
                // second insert waits for the first and then does nothing.
                enrolled += sequence_enrolment::Entity::insert_many(fresh)
                    .on_conflict(
                        OnConflict::columns([
                            sequence_enrolment::Column::TenantId,
                            sequence_enrolment::Column::SequenceId,
                            sequence_enrolment::Column::ContactId,
                        ])
                        .do_nothing()
                        .to_owned(),
                    )
                    .exec_without_returning(w.tx())
                    .await?;
            }
            let mut ended: Vec<Uuid> = existing
                .values()
                .filter(|e| e.status != EnrolmentStatus::Active.as_str())
                .map(|e| e.contact_id)
                .collect();
            if Rejoin::parse(&s.rejoin) != Some(Rejoin::Restart) || ended.is_empty() {
                continue;
            }
            if s.include_subgroups {
                // Joining a second group of the subtree is no re-join: only contacts that were in
                // no other group of it restart.
                let stayed = in_subtree_elsewhere(w, s.start_group, group.0, &ended).await?;
                ended.retain(|c| !stayed.contains(c));
            }
            let ids: Vec<Uuid> = ended.iter().map(|c| existing[c].id).collect();
            if ids.is_empty() {
                continue;
            }
            let r = sequence_enrolment::Entity::update_many()
                .col_expr(sequence_enrolment::Column::Status, Expr::value(EnrolmentStatus::Active.as_str()))
                .col_expr(
                    sequence_enrolment::Column::Generation,
                    Expr::col(sequence_enrolment::Column::Generation).add(1),
                )
                .col_expr(sequence_enrolment::Column::Version, Expr::value(s.version))
                .col_expr(sequence_enrolment::Column::GroupId, Expr::value(group.0))
                .col_expr(sequence_enrolment::Column::NextStep, Expr::value(0))
                .col_expr(sequence_enrolment::Column::NextDueAt, Expr::value(due))
                .col_expr(sequence_enrolment::Column::Chain, Expr::value(chain_text.clone()))
                .col_expr(sequence_enrolment::Column::Source, Expr::value(source.as_str()))
                .col_expr(sequence_enrolment::Column::EnrolledAt, Expr::value(now))
                .col_expr(sequence_enrolment::Column::EndedAt, Expr::value(Option::<chrono::DateTime<Utc>>::None))
                .col_expr(sequence_enrolment::Column::EndReason, Expr::value(Option::<String>::None))
                .col_expr(sequence_enrolment::Column::UpdatedAt, Expr::value(now))
                .filter(sequence_enrolment::Column::TenantId.eq(v.tenant_id.0))
                .filter(sequence_enrolment::Column::Id.is_in(ids))
                .filter(sequence_enrolment::Column::Status.ne(EnrolmentStatus::Active.as_str()))
                .exec(w.tx())
                .await?;
            enrolled += r.rows_affected;
        }
        if enrolled > 0 {
            w.emit(
                EventType::SequenceEnrolled,
                vec![Subject::new(SubjectKind::Sequence, s.id), Subject::new(SubjectKind::Group, group.0)],
                serde_json::json!({"count": enrolled, "source": source.as_str()}),
            );
        }
    }
    Ok(())
}

/// Stops the active enrolments, in sequences that stop on leave, of `contacts` (all contacts
/// when `None`) that left `groups` and are no longer in the start group — or, for sequences that
/// include subgroups, in any group of its subtree.
async fn stop_left(w: &UnitOfWork, groups: &[Uuid], contacts: Option<&[Uuid]>) -> StoreResult<()> {
    let v = w.viewer();
    for s in concerned(w, groups, false).await? {
        let now = Utc::now();
        let mut stopped = 0u64;
        let chunks: Vec<Option<&[Uuid]>> = match contacts {
            Some(cs) => cs.chunks(CHUNK).map(Some).collect(),
            None => vec![None],
        };
        for chunk in chunks {
            // First lock the candidates (in id order), then decide in a new statement: under READ
            // COMMITTED that statement sees every leave or join that committed while it waited,
            // so two concurrent leaves from two subgroups cannot both think the other membership
            // is still there, and a join racing a leave is seen as the later one.
            let mut q = Sql::new(v.dialect);
            q.push("SELECT id FROM sequence_enrolments WHERE tenant_id = ")
                .bind(v.tenant_id.0)
                .push(" AND sequence_id = ")
                .bind(s.id)
                .push(" AND status = ")
                .bind(EnrolmentStatus::Active.as_str());
            if let Some(cs) = chunk {
                q.push(" AND contact_id IN ").bind_list(cs.iter().copied());
            }
            q.push(" ORDER BY id").push(v.dialect.lock_rows(RowLock::Update));
            let ids: Vec<Uuid> = w
                .tx()
                .query_all_raw(q.build())
                .await?
                .iter()
                .map(|r| r.try_get::<Uuid>("", "id"))
                .collect::<Result<_, _>>()?;
            for ids in ids.chunks(CHUNK) {
                let mut q = Sql::new(v.dialect);
                q.push("UPDATE sequence_enrolments SET status = ")
                    .bind(EnrolmentStatus::Stopped.as_str())
                    .push(", end_reason = ")
                    .bind(EndReason::LeftGroup.as_str())
                    .push(", ended_at = ")
                    .bind(now)
                    .push(", updated_at = ")
                    .bind(now)
                    .push(", next_due_at = ")
                    .bind(no_due())
                    .push(" WHERE tenant_id = ")
                    .bind(v.tenant_id.0)
                    .push(" AND id IN ")
                    .bind_list(ids.iter().copied())
                    .push(" AND status = ")
                    .bind(EnrolmentStatus::Active.as_str())
                    .push(" AND NOT EXISTS (SELECT 1 FROM group_memberships m WHERE m.tenant_id = ")
                    .bind(v.tenant_id.0)
                    .push(" AND m.contact_id = sequence_enrolments.contact_id AND ");
                if s.include_subgroups {
                    q.push("m.group_id IN (SELECT cl.descendant_id FROM group_closure cl WHERE cl.tenant_id = ")
                        .bind(v.tenant_id.0)
                        .push(" AND cl.ancestor_id = ")
                        .bind(s.start_group)
                        .push("))");
                } else {
                    q.push("m.group_id = ").bind(s.start_group).push(")");
                }
                stopped += w.tx().execute_raw(q.build()).await?.rows_affected();
            }
        }
        if stopped > 0 {
            w.emit(
                EventType::SequenceEnrolmentsStopped,
                vec![Subject::new(SubjectKind::Sequence, s.id)],
                serde_json::json!({"count": stopped, "reason": EndReason::LeftGroup.as_str()}),
            );
        }
    }
    Ok(())
}

/// Those of `contacts` that are members of a group of `start`'s subtree other than `except`.
async fn in_subtree_elsewhere(
    w: &UnitOfWork,
    start: Uuid,
    except: Uuid,
    contacts: &[Uuid],
) -> StoreResult<HashSet<Uuid>> {
    let v = w.viewer();
    let mut out = HashSet::new();
    for chunk in contacts.chunks(CHUNK) {
        let mut q = Sql::new(v.dialect);
        q.push("SELECT DISTINCT m.contact_id FROM group_memberships m JOIN group_closure cl ON cl.tenant_id = m.tenant_id AND cl.descendant_id = m.group_id WHERE m.tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND cl.ancestor_id = ")
            .bind(start)
            .push(" AND m.group_id <> ")
            .bind(except)
            .push(" AND m.contact_id IN ")
            .bind_list(chunk.iter().copied());
        for r in w.tx().query_all_raw(q.build()).await? {
            out.insert(r.try_get::<Uuid>("", "contact_id")?);
        }
    }
    Ok(out)
}

/// After `contacts` left `groups`.
pub(crate) async fn on_leave(w: &UnitOfWork, groups: &[Uuid], contacts: &[Uuid]) -> StoreResult<()> {
    if contacts.is_empty() {
        return Ok(());
    }
    stop_left(w, groups, Some(contacts)).await
}

/// After `groups` were deleted with all their memberships (called before their closure rows go).
pub(crate) async fn on_groups_deleted(w: &UnitOfWork, groups: &[Uuid]) -> StoreResult<()> {
    stop_left(w, groups, None).await
}

/// A group that starts a sequence cannot be deleted (the sequence would silently stop): change
/// or delete the sequence first.
pub(crate) async fn refuse_if_start_group(w: &UnitOfWork, groups: &[Uuid]) -> StoreResult<()> {
    let v = w.viewer();
    let used = crate::entities::sequence::Entity::find()
        .filter(crate::entities::sequence::Column::TenantId.eq(v.tenant_id.0))
        .filter(crate::entities::sequence::Column::StartGroupId.is_in(groups.iter().copied()))
        .one(w.tx())
        .await?;
    match used {
        Some(s) => Err(StoreError::Conflict(format!(
            "the group starts the follow-up sequence '{}': change its start group first",
            s.name
        ))),
        None => Ok(()),
    }
}
