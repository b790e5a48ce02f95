//! Memberships: bulk add/remove (set-based, transactional, idempotent), member pages and counts,
//! a contact's memberships, and the append-only membership history. Every answer is computed
//! over contacts the viewer can see: a hidden contact id is reported exactly like an unknown one,
//! and is never counted as "already a member".

use crate::access::handle::DataHandle;
use crate::access::viewer::Viewer;
use crate::consent::links::LinkKeys;
use crate::contacts::contact::ContactRecord;
use crate::core::decode;
use crate::core::dialect::{Dialect, RowLock};
use crate::core::page::{Page, PageRequest};
use crate::core::sql::{Sql, contact_columns};
use crate::core::uow::{Claim, LockedTable, UnitOfWork, fingerprint};
use crate::entities::{contact, membership, membership_event};
use crate::error::{StoreError, StoreResult};
use crate::events::{EventType, Subject, SubjectKind};
use crate::groups::hierarchy::subtree_ids;
use chrono::{DateTime, Utc};
use cohort_domain::AccessLevel;
use cohort_domain::consent::ConsentStatus;
use cohort_domain::group::{MAX_BULK_IDS, MembershipSource};
use cohort_domain::ids::{ConsentEntryId, ContactId, GroupId, MembershipEventId, UserId};
use cohort_domain::sequence::Chain;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, FromQueryResult, QueryFilter,
};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Rows per statement for bulk writes (SQLite binds at most 32,766 values per statement).
const CHUNK: usize = 2000;

/// What a member page's statement reads besides the page: the visible member count
/// (`totalCount`) and the contacts' parts a selection asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadAlong {
    pub total: bool,
    pub parts: crate::ContactParts,
    /// The membership rows' provenance (`joinedAt`, `source`, `assignedBy`, consent) on a page of
    /// direct members: a second probe of each member's membership row, so only when asked.
    /// Without it [`MemberRecord::membership`] is `None`.
    pub membership: bool,
}

/// How a member list is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberOrder {
    /// By the contact's sort name, then id.
    Name,
    /// By when the contact joined (earliest first), then id.
    JoinedAt,
}

/// One membership as the viewer may see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipRecord {
    pub group_id: GroupId,
    pub contact_id: ContactId,
    pub joined_at: DateTime<Utc>,
    pub source: MembershipSource,
    pub assigned_by: Option<UserId>,
    /// The consent entry this membership rests on (web forms, confirmations, the preference
    /// centre, an agent recording consent).
    pub consent_id: Option<ConsentEntryId>,
}

impl TryFrom<membership::Model> for MembershipRecord {
    type Error = StoreError;
    fn try_from(m: membership::Model) -> StoreResult<Self> {
        Ok(MembershipRecord {
            group_id: GroupId(m.group_id),
            contact_id: ContactId(m.contact_id),
            joined_at: m.joined_at,
            source: decode::membership_source(&m.source)?,
            assigned_by: m.assigned_by.map(UserId),
            consent_id: m.consent_id.map(ConsentEntryId),
        })
    }
}

/// A member on a page: the contact and, for direct-member pages, its membership. (With
/// `includeSubgroups`, the membership is resolved per edge by [`Store::effective_memberships`].)
#[derive(Debug, Clone)]
pub struct MemberRecord {
    pub contact: ContactRecord,
    pub membership: Option<MembershipRecord>,
    /// The parts of the contact the page was asked to read along (see [`crate::ContactParts`]).
    pub extras: crate::ContactExtras,
    /// The page key: (sort name or joined-at, contact id).
    key: MemberKey,
}

/// Tagged, so a cursor from one ordering cannot be mistaken for the other's.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum MemberKey {
    Name(String, Uuid),
    Joined(#[serde(deserialize_with = "crate::core::page::cursor_time")] DateTime<Utc>, Uuid),
}

/// The answer of `addGroupMembers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddMembersOutcome {
    pub added: u64,
    pub already_members: u64,
    /// Ids that are unknown or that the viewer cannot see — indistinguishable.
    pub not_found: Vec<ContactId>,
    /// Visible contacts that were not added: erased ones, and — for a public group — those with
    /// an e-mail address on the suppression list (they join only through new, recorded consent).
    /// Defaults to none for answers stored (idempotency keys) before the field existed.
    #[serde(default)]
    pub suppressed: Vec<ContactId>,
}

/// The answer of `removeGroupMembers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveMembersOutcome {
    pub removed: u64,
    /// Visible contacts that were not members.
    pub not_members: u64,
    pub not_found: Vec<ContactId>,
}

/// The answer of `setGroupMembersByExternalId`: the diff that made the group's visible
/// membership exactly the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetMembersOutcome {
    pub added: u64,
    pub removed: u64,
    /// Listed contacts that were members already (and stay).
    pub unchanged: u64,
    /// External ids no visible contact holds (unknown or hidden — indistinguishable).
    pub not_found: Vec<String>,
    /// Listed contacts that could not join (erased, or suppressed for a public group).
    pub suppressed: Vec<ContactId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipEventRecord {
    pub id: MembershipEventId,
    pub group_id: GroupId,
    pub contact_id: ContactId,
    /// `JOIN` or `LEAVE`.
    pub action: String,
    pub source: MembershipSource,
    pub actor_id: Option<UserId>,
    pub at: DateTime<Utc>,
    pub reason: Option<String>,
}

impl TryFrom<membership_event::Model> for MembershipEventRecord {
    type Error = StoreError;
    fn try_from(m: membership_event::Model) -> StoreResult<Self> {
        Ok(MembershipEventRecord {
            id: MembershipEventId(m.id),
            group_id: GroupId(m.group_id),
            contact_id: ContactId(m.contact_id),
            action: m.action,
            source: decode::membership_source(&m.source)?,
            actor_id: m.actor_id.map(UserId),
            at: m.at,
            reason: m.reason,
        })
    }
}

fn request_fingerprint(
    op: &str,
    group: GroupId,
    ids: &[ContactId],
    source: Option<MembershipSource>,
    reason: Option<&str>,
) -> String {
    let mut sorted: Vec<String> = ids.iter().map(|i| i.0.to_string()).collect();
    sorted.sort();
    let joined = sorted.join(",");
    fingerprint(&[op, &group.0.to_string(), &joined, source.map(|s| s.as_str()).unwrap_or("-"), reason.unwrap_or("-")])
}

/// (id, address_book_id, sort_name) of the visible contacts among `ids`, in chunks, and which of
/// them are erased (tombstones).
async fn visible_contacts_among(
    txn: &DatabaseTransaction,
    v: &Viewer,
    ids: &[Uuid],
) -> StoreResult<(HashMap<Uuid, (Uuid, String)>, HashSet<Uuid>)> {
    let mut out = HashMap::with_capacity(ids.len());
    let mut erased = HashSet::new();
    for chunk in ids.chunks(v.dialect.id_chunk()) {
        let mut q = Sql::new(v.dialect);
        q.push("SELECT c.id, c.address_book_id, c.sort_name, c.erased_at FROM contacts c WHERE c.tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND c.id")
            .in_ids(chunk)
            .push(" AND ")
            .visible_books(v, "c.address_book_id", AccessLevel::Read);
        // Hold the contacts until commit: a concurrent move or rename then waits, and syncs
        // the memberships written here (SQLite serialises writers already).
        q.push(v.dialect.lock_rows(RowLock::Share));
        for row in txn.query_all_raw(q.build()).await? {
            let id: Uuid = row.try_get("", "id")?;
            out.insert(id, (row.try_get("", "address_book_id")?, row.try_get("", "sort_name")?));
            if row.try_get::<Option<DateTime<Utc>>>("", "erased_at")?.is_some() {
                erased.insert(id);
            }
        }
    }
    Ok((out, erased))
}

async fn existing_members(
    txn: &DatabaseTransaction,
    v: &Viewer,
    group: GroupId,
    ids: &[Uuid],
) -> StoreResult<HashMap<Uuid, membership::Model>> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(v.dialect.id_chunk()) {
        let mut q = Sql::new(v.dialect);
        q.push("SELECT m.tenant_id, m.group_id, m.contact_id, m.address_book_id, m.sort_name, m.joined_at, m.source, m.assigned_by, m.consent_id FROM group_memberships m WHERE m.tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND m.group_id = ")
            .bind(group.0)
            .push(" AND m.contact_id")
            .in_ids(chunk);
        for row in txn.query_all_raw(q.build()).await? {
            let m = membership::Model::from_query_result(&row, "")?;
            out.insert(m.contact_id, m);
        }
    }
    Ok(out)
}

async fn append_history(
    w: &UnitOfWork,
    group: Uuid,
    contacts: &[(Uuid, Uuid)],
    action: &str,
    source: &str,
    reason: Option<&str>,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let v = w.viewer();
    for chunk in contacts.chunks(CHUNK) {
        membership_event::Entity::insert_many(chunk.iter().map(|(c, book)| membership_event::ActiveModel {
            tenant_id: Set(v.tenant_id.0),
            id: Set(Uuid::now_v7()),
            group_id: Set(group),
            contact_id: Set(*c),
            address_book_id: Set(Some(*book)),
            action: Set(action.to_owned()),
            source: Set(source.to_owned()),
            actor_id: Set(Some(v.user_id.0)),
            at: Set(at),
            reason: Set(reason.map(str::to_owned)),
        }))
        .exec_without_returning(w.tx())
        .await?;
    }
    Ok(())
}

/// A contact joining a group: (contact, its address book, its sort key).
pub(crate) type Joining = (Uuid, Uuid, String);
/// A membership ending: (contact, its address book, the membership's source).
pub(crate) type Leaving = (Uuid, Uuid, String);

/// Inserts the memberships of `joining` (none of them a member yet) with their JOIN history, the
/// event, and the enrolments the join starts — the one write path of every join that does not
/// rest on a consent entry (bulk add with any source, a sequence step), so automation reacts to
/// membership however it came about. `chain`: the sequences whose steps led here (empty for a
/// person's or an integration's change).
///
/// **Suppression.** Joining a *public* group is subscribing: a contact any of whose e-mail
/// addresses is on the suppression list (an erased person's address, GDPR Art. 17) does not join
/// here — it may subscribe again only with new consent ([`join_with_consent`]: a confirmed web
/// form, the preference centre, an agent recording consent). Those contacts are returned, and
/// nothing is written for them. One set-based check per call (see
/// [`suppressed_contacts`](crate::contacts::erasure::suppressed_contacts)); groups without a
/// public name are not checked.
pub(crate) async fn join_in(
    w: &UnitOfWork,
    group: GroupId,
    joining: &[Joining],
    source: MembershipSource,
    chain: &Chain,
    keys: &LinkKeys,
) -> StoreResult<HashSet<Uuid>> {
    if joining.is_empty() {
        return Ok(HashSet::new());
    }
    let v = w.viewer();
    let mut q = Sql::new(v.dialect);
    q.push("SELECT public_name FROM contact_groups WHERE tenant_id = ")
        .bind(v.tenant_id.0)
        .push(" AND id = ")
        .bind(group.0);
    // Held to commit: a concurrent `updateGroup` that makes the group public waits for this join
    // (or this join reads the committed public name after it), so no suppressed address slips in
    // between the check and the insert.
    q.push(v.dialect.lock_rows(RowLock::Share));
    let public = match w.tx().query_one_raw(q.build()).await? {
        Some(r) => r.try_get::<Option<String>>("", "public_name")?.is_some(),
        None => return Err(StoreError::NotFound),
    };
    let suppressed = if public {
        let ids: Vec<Uuid> = joining.iter().map(|j| j.0).collect();
        crate::contacts::erasure::suppressed_contacts(w.tx(), v.dialect, v.tenant_id.0, keys, &ids).await?
    } else {
        HashSet::new()
    };
    if suppressed.is_empty() {
        join_with_consent(w, group, joining, source, chain, None).await?;
    } else {
        let rest: Vec<Joining> = joining.iter().filter(|j| !suppressed.contains(&j.0)).cloned().collect();
        join_with_consent(w, group, &rest, source, chain, None).await?;
    }
    Ok(suppressed)
}

/// [`join_in`] for memberships that rest on a consent entry (`consent`): they link to it, and
/// self-service ones (web form, preference centre) have no assigning user. Sequences that require
/// consent enrol only such joins.
pub(crate) async fn join_with_consent(
    w: &UnitOfWork,
    group: GroupId,
    joining: &[Joining],
    source: MembershipSource,
    chain: &Chain,
    consent: Option<Uuid>,
) -> StoreResult<()> {
    if joining.is_empty() {
        return Ok(());
    }
    let v = w.viewer();
    let now = Utc::now();
    let joined: Vec<(Uuid, Uuid)> = joining.iter().map(|(c, b, _)| (*c, *b)).collect();
    if w.dialect() == Dialect::Postgres {
        // Set-based: the rows travel as one JSON document, and the memberships and their JOIN
        // history are written by one statement whatever their number.
        let assigned_by = match source {
            MembershipSource::WebForm | MembershipSource::SelfService => None,
            _ => Some(v.user_id.0),
        };
        let rows: Vec<serde_json::Value> = joining
            .iter()
            .map(|(c, b, sort)| serde_json::json!({"c": c, "b": b, "s": sort, "h": Uuid::now_v7()}))
            .collect();
        let mut q = Sql::new(v.dialect);
        q.push("WITH r AS (SELECT * FROM json_to_recordset(CAST(")
            .bind(serde_json::Value::Array(rows).to_string())
            .push(" AS json)) AS r(c uuid, b uuid, s text, h uuid)), ins AS (INSERT INTO group_memberships (tenant_id, group_id, contact_id, address_book_id, sort_name, joined_at, source, assigned_by, consent_id) SELECT ")
            .bind(v.tenant_id.0)
            .push(", ")
            .bind(group.0)
            .push(", r.c, r.b, r.s, ")
            .bind(now)
            .push(", ")
            .bind(source.as_str())
            .push(", ")
            .bind(assigned_by)
            .push(", ")
            .bind(consent)
            .push(" FROM r) INSERT INTO membership_history (tenant_id, id, group_id, contact_id, address_book_id, action, source, actor_id, at, reason) SELECT ")
            .bind(v.tenant_id.0)
            .push(", r.h, ")
            .bind(group.0)
            .push(", r.c, r.b, 'JOIN', ")
            .bind(source.as_str())
            .push(", ")
            .bind(v.user_id.0)
            .push(", ")
            .bind(now)
            .push(", NULL FROM r");
        w.tx().execute_raw(q.build()).await?;
        w.emit(
            EventType::GroupMembersAdded,
            vec![Subject::new(SubjectKind::Group, group.0)],
            serde_json::json!({"count": joining.len(), "source": source.as_str()}),
        );
        return crate::sequences::enrol::on_join(w, group, &joined, source, chain, consent.is_some()).await;
    }
    for chunk in joining.chunks(CHUNK) {
        membership::Entity::insert_many(chunk.iter().map(|(c, book, sort)| membership::ActiveModel {
            tenant_id: Set(v.tenant_id.0),
            group_id: Set(group.0),
            contact_id: Set(*c),
            address_book_id: Set(*book),
            sort_name: Set(sort.clone()),
            joined_at: Set(now),
            source: Set(source.as_str().to_owned()),
            assigned_by: Set(match source {
                MembershipSource::WebForm | MembershipSource::SelfService => None,
                _ => Some(v.user_id.0),
            }),
            consent_id: Set(consent),
        }))
        .exec_without_returning(w.tx())
        .await?;
    }
    append_history(w, group.0, &joined, "JOIN", source.as_str(), None, now).await?;
    // Ids and counts only: a webhook must not become a membership export.
    w.emit(
        EventType::GroupMembersAdded,
        vec![Subject::new(SubjectKind::Group, group.0)],
        serde_json::json!({"count": joining.len(), "source": source.as_str()}),
    );
    crate::sequences::enrol::on_join(w, group, &joined, source, chain, consent.is_some()).await
}

/// Deletes the memberships of `leaving` with their LEAVE history (with the membership's own
/// source, or `source` when given — `AUTOMATION` for a sequence step), the event, and stops the
/// enrolments that end when a contact leaves.
pub(crate) async fn leave_in(
    w: &UnitOfWork,
    group: GroupId,
    leaving: &[Leaving],
    source: Option<MembershipSource>,
    reason: Option<&str>,
) -> StoreResult<()> {
    if leaving.is_empty() {
        return Ok(());
    }
    let v = w.viewer();
    if w.dialect() == Dialect::Postgres {
        // Set-based, as for joins: the memberships and their LEAVE history (with the source of
        // the membership that ended, or `source`) in one statement.
        let now = Utc::now();
        let rows: Vec<serde_json::Value> = leaving
            .iter()
            .map(|(c, b, src)| serde_json::json!({"c": c, "b": b, "src": src, "h": Uuid::now_v7()}))
            .collect();
        let mut q = Sql::new(v.dialect);
        q.push("WITH r AS (SELECT * FROM json_to_recordset(CAST(")
            .bind(serde_json::Value::Array(rows).to_string())
            .push(" AS json)) AS r(c uuid, b uuid, src text, h uuid)), del AS (DELETE FROM group_memberships m USING r WHERE m.tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND m.group_id = ")
            .bind(group.0)
            .push(" AND m.contact_id = r.c RETURNING m.contact_id) INSERT INTO membership_history (tenant_id, id, group_id, contact_id, address_book_id, action, source, actor_id, at, reason) SELECT ")
            .bind(v.tenant_id.0)
            .push(", r.h, ")
            .bind(group.0)
            .push(", r.c, r.b, 'LEAVE', COALESCE(")
            .bind(source.map(|s| s.as_str().to_owned()))
            .push(", r.src), ")
            .bind(v.user_id.0)
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(reason.map(str::to_owned))
            // History only for memberships this statement really ended.
            .push(" FROM r JOIN del ON del.contact_id = r.c");
        w.tx().execute_raw(q.build()).await?;
        w.emit(
            EventType::GroupMembersRemoved,
            vec![Subject::new(SubjectKind::Group, group.0)],
            serde_json::json!({"count": leaving.len()}),
        );
        let ids: Vec<Uuid> = leaving.iter().map(|l| l.0).collect();
        return crate::sequences::enrol::on_leave(w, &[group.0], &ids).await;
    }
    for chunk in leaving.chunks(CHUNK) {
        membership::Entity::delete_many()
            .filter(membership::Column::TenantId.eq(v.tenant_id.0))
            .filter(membership::Column::GroupId.eq(group.0))
            .filter(membership::Column::ContactId.is_in(chunk.iter().map(|l| l.0)))
            .exec(w.tx())
            .await?;
    }
    let now = Utc::now();
    // A leave is recorded with the source of the membership that ended (in a stable order).
    let mut by_source: std::collections::BTreeMap<&str, Vec<(Uuid, Uuid)>> = Default::default();
    for (c, book, src) in leaving {
        let src = source.map(|s| s.as_str()).unwrap_or(src.as_str());
        by_source.entry(src).or_default().push((*c, *book));
    }
    for (src, cs) in by_source {
        append_history(w, group.0, &cs, "LEAVE", src, reason, now).await?;
    }
    w.emit(
        EventType::GroupMembersRemoved,
        vec![Subject::new(SubjectKind::Group, group.0)],
        serde_json::json!({"count": leaving.len()}),
    );
    let ids: Vec<Uuid> = leaving.iter().map(|l| l.0).collect();
    crate::sequences::enrol::on_leave(w, &[group.0], &ids).await
}

fn dedup(ids: &[ContactId]) -> Vec<Uuid> {
    let mut seen = HashSet::with_capacity(ids.len());
    ids.iter().map(|i| i.0).filter(|u| seen.insert(*u)).collect()
}

fn check_bulk(ids: &[ContactId]) -> StoreResult<()> {
    if ids.len() > MAX_BULK_IDS {
        return Err(StoreError::invalid("contactIds", format!("at most {MAX_BULK_IDS} ids per call")));
    }
    Ok(())
}

/// Where a bulk membership change starts, inside its unit of work: the distinct ids asked for,
/// the visible ones among them (with book and sort key), and their current memberships.
struct BulkStart {
    w: UnitOfWork,
    wanted: Vec<Uuid>,
    visible: HashMap<Uuid, (Uuid, String)>,
    /// The erased (tombstone) contacts among the visible ones.
    erased: HashSet<Uuid>,
    visible_ids: Vec<Uuid>,
    existing: HashMap<Uuid, membership::Model>,
}

enum Begun<T> {
    /// The idempotency key was used before for this request: its first answer.
    Replayed(T),
    Fresh(Box<BulkStart>),
}

impl DataHandle {
    /// The shared start of `addGroupMembers` / `removeGroupMembers`: bounds, WRITE on the
    /// group's home book, the group's membership lock, idempotent replay, and the visible part of
    /// the request.
    async fn begin_bulk<T: serde::de::DeserializeOwned>(
        &self,
        group: GroupId,
        ids: &[ContactId],
        op: &'static str,
        hash: &str,
        idempotency_key: Option<&str>,
    ) -> StoreResult<Begun<T>> {
        let v = self.viewer();
        let mut w = self.begin().await?;
        // A retry returns the first answer whatever happened since (the group may be gone): it
        // tells this user only what they were told before. So the key comes first.
        if let Some(k) = idempotency_key
            && let Claim::Replay(prev) = w.claim_key(k, op, hash).await?
        {
            return Ok(Begun::Replayed(prev));
        }
        // Concurrent changes of one group's members queue here until commit (PostgreSQL; SQLite
        // has one writer): each then reads the memberships the previous one left, so "added",
        // "already a member" and the JOIN/LEAVE history are exactly what happened. Visibility is
        // checked before the lock (a hidden group answers NOT_FOUND at once, like an unknown one,
        // never waiting on someone else's lock) and again after it, against the row as it is now
        // (deleted or moved to another book meanwhile).
        self.group_for(w.tx(), v, group, AccessLevel::Write).await?;
        if !w.dialect().lock_rows(RowLock::NoKeyUpdate).is_empty() {
            w.lock_row(LockedTable::Groups, group.0, RowLock::NoKeyUpdate).await?;
            self.group_for(w.tx(), v, group, AccessLevel::Write).await?;
        }
        let wanted = dedup(ids);
        let (visible, erased) = visible_contacts_among(w.tx(), v, &wanted).await?;
        let visible_ids: Vec<Uuid> = wanted.iter().copied().filter(|i| visible.contains_key(i)).collect();
        let existing = existing_members(w.tx(), v, group, &visible_ids).await?;
        Ok(Begun::Fresh(Box::new(BulkStart { w, wanted, visible, erased, visible_ids, existing })))
    }
}

impl DataHandle {
    /// Adds contacts to a group (needs WRITE on its home book and sight of each contact). Ids the
    /// viewer cannot see are reported in `not_found`, like unknown ids. Visible contacts that are
    /// erased, or whose address is on the suppression list when the group is public (see
    /// [`join_in`]), are not added and are reported in `suppressed`. With an idempotency key, a
    /// replay returns the first answer and changes nothing.
    pub async fn add_group_members(
        &self,
        group: GroupId,
        ids: &[ContactId],
        source: Option<MembershipSource>,
        idempotency_key: Option<&str>,
    ) -> StoreResult<AddMembersOutcome> {
        let v = self.viewer();
        check_bulk(ids)?;
        let source = MembershipSource::for_api_call(source, v.roles())?;
        let hash = request_fingerprint("addGroupMembers", group, ids, Some(source), None);
        let BulkStart { mut w, wanted, visible, erased, visible_ids, existing } =
            match self.begin_bulk(group, ids, "addGroupMembers", &hash, idempotency_key).await? {
                Begun::Replayed(prev) => return Ok(prev),
                Begun::Fresh(start) => *start,
            };
        // An erased contact is a tombstone: it leaves every group and never joins one again
        // (erasure holds the contact's lock, so a concurrent addition sees it erased).
        let new: Vec<Uuid> =
            visible_ids.iter().copied().filter(|i| !existing.contains_key(i) && !erased.contains(i)).collect();
        let joining: Vec<Joining> = new.iter().map(|c| (*c, visible[c].0, visible[c].1.clone())).collect();
        let suppressed = join_in(&w, group, &joining, source, &Chain::default(), &self.link_keys.get()).await?;
        let outcome = AddMembersOutcome {
            added: (new.len() - suppressed.len()) as u64,
            already_members: existing.len() as u64,
            not_found: wanted.iter().filter(|i| !visible.contains_key(i)).map(|i| ContactId(*i)).collect(),
            suppressed: visible_ids
                .iter()
                .filter(|i| erased.contains(i) || suppressed.contains(i))
                .map(|i| ContactId(*i))
                .collect(),
        };
        // Counts only: the contacts are named by the membership history, not the audit log. A
        // call that changed nothing leaves nothing (like its events).
        if outcome.added > 0 {
            w.audit(
                "group.addMembers",
                "Group",
                Some(group.0),
                serde_json::json!({"added": outcome.added, "alreadyMembers": outcome.already_members,
                    "notFound": outcome.not_found.len(), "suppressed": outcome.suppressed.len(),
                    "source": source.as_str()}),
            );
        }
        w.answer(&outcome)?;
        w.commit().await?;
        Ok(outcome)
    }

    /// Removes contacts from a group; same rules as [`DataHandle::add_group_members`].
    pub async fn remove_group_members(
        &self,
        group: GroupId,
        ids: &[ContactId],
        reason: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> StoreResult<RemoveMembersOutcome> {
        check_bulk(ids)?;
        let reason = cohort_domain::text::optional_text("reason", reason)?;
        let hash = request_fingerprint("removeGroupMembers", group, ids, None, reason.as_deref());
        let BulkStart { mut w, wanted, visible, visible_ids, existing, .. } =
            match self.begin_bulk(group, ids, "removeGroupMembers", &hash, idempotency_key).await? {
                Begun::Replayed(prev) => return Ok(prev),
                Begun::Fresh(start) => *start,
            };
        let leaving: Vec<Uuid> = visible_ids.iter().copied().filter(|i| existing.contains_key(i)).collect();
        let ending: Vec<Leaving> =
            leaving.iter().map(|c| (*c, existing[c].address_book_id, existing[c].source.clone())).collect();
        leave_in(&w, group, &ending, None, reason.as_deref()).await?;
        let outcome = RemoveMembersOutcome {
            removed: leaving.len() as u64,
            not_members: (visible_ids.len() - leaving.len()) as u64,
            not_found: wanted.iter().filter(|i| !visible.contains_key(i)).map(|i| ContactId(*i)).collect(),
        };
        if outcome.removed > 0 {
            w.audit(
                "group.removeMembers",
                "Group",
                Some(group.0),
                serde_json::json!({"removed": outcome.removed, "notMembers": outcome.not_members,
                    "notFound": outcome.not_found.len()}),
            );
        }
        w.answer(&outcome)?;
        w.commit().await?;
        Ok(outcome)
    }

    /// Makes the group's membership, as far as the viewer can see it, exactly the contacts
    /// holding `external_ids` for `system` — the membership sync of an ERP or webshop. Listed
    /// contacts that are not members join, visible members not listed leave (both recorded with
    /// the `IMPORT` source in the history), members the viewer cannot see are untouched and
    /// uncounted, and external ids no visible contact holds are reported in `not_found`. Needs
    /// WRITE on the group's home book, like `addGroupMembers`; with an idempotency key a replay
    /// returns the first answer. A list that matches the membership changes nothing and emits
    /// nothing.
    pub async fn set_group_members_by_external_id(
        &self,
        group: GroupId,
        system: &str,
        external_ids: &[String],
        idempotency_key: Option<&str>,
    ) -> StoreResult<SetMembersOutcome> {
        let v = self.viewer();
        if external_ids.len() > MAX_BULK_IDS {
            return Err(StoreError::invalid("externalIds", format!("at most {MAX_BULK_IDS} ids per call")));
        }
        let system = cohort_domain::external::ExternalSystem::parse("system", system)?;
        let mut keys: Vec<String> = Vec::with_capacity(external_ids.len());
        let mut seen = HashSet::with_capacity(external_ids.len());
        for raw in external_ids {
            let k = cohort_domain::external::ExternalKey::parse("externalIds", raw)?.as_str().to_owned();
            if seen.insert(k.clone()) {
                keys.push(k);
            }
        }
        let mut sorted = keys.clone();
        sorted.sort();
        let hash = fingerprint(&[
            "setGroupMembersByExternalId",
            &group.0.to_string(),
            system.as_str(),
            &sorted.join("\u{1f}"),
        ]);
        let mut w = self.begin().await?;
        if let Some(k) = idempotency_key
            && let Claim::Replay(prev) = w.claim_key(k, "setGroupMembersByExternalId", &hash).await?
        {
            return Ok(prev);
        }
        self.group_for(w.tx(), v, group, AccessLevel::Write).await?;
        if !w.dialect().lock_rows(RowLock::NoKeyUpdate).is_empty() {
            w.lock_row(LockedTable::Groups, group.0, RowLock::NoKeyUpdate).await?;
            self.group_for(w.tx(), v, group, AccessLevel::Write).await?;
        }
        // The listed ids' holders, then which of them the viewer sees (with book and sort key).
        let mut holder_of: HashMap<String, Uuid> = HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(CHUNK) {
            let mut q = Sql::new(w.dialect());
            q.push("SELECT external_id, entity_id FROM external_ids WHERE tenant_id = ")
                .bind(v.tenant_id.0)
                .push(" AND kind = ")
                .bind(cohort_domain::external::ExternalKind::Contact.as_str())
                .push(" AND system = ")
                .bind(system.as_str().to_owned())
                .push(" AND external_id IN ")
                .bind_list(chunk.iter().cloned());
            for r in w.tx().query_all_raw(q.build()).await? {
                holder_of.insert(r.try_get("", "external_id")?, r.try_get("", "entity_id")?);
            }
        }
        let held: Vec<Uuid> = dedup(&holder_of.values().map(|u| ContactId(*u)).collect::<Vec<_>>());
        let (visible, erased) = visible_contacts_among(w.tx(), v, &held).await?;
        let not_found: Vec<String> =
            keys.iter().filter(|k| !holder_of.get(*k).is_some_and(|c| visible.contains_key(c))).cloned().collect();
        let wanted: HashSet<Uuid> = held.iter().copied().filter(|c| visible.contains_key(c)).collect();
        // The current members the viewer can see (the membership row carries the book).
        let mut current: HashMap<Uuid, (Uuid, String)> = HashMap::new();
        let mut q = Sql::new(w.dialect());
        q.push("SELECT m.contact_id, m.address_book_id, m.source FROM group_memberships m WHERE m.tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND m.group_id = ")
            .bind(group.0)
            .push(" AND ")
            .visible_books(v, "m.address_book_id", AccessLevel::Read);
        for r in w.tx().query_all_raw(q.build()).await? {
            current.insert(r.try_get("", "contact_id")?, (r.try_get("", "address_book_id")?, r.try_get("", "source")?));
        }
        let mut joining: Vec<Joining> = wanted
            .iter()
            .filter(|c| !current.contains_key(c) && !erased.contains(c))
            .map(|c| (*c, visible[c].0, visible[c].1.clone()))
            .collect();
        joining.sort();
        let mut leaving: Vec<Leaving> =
            current.iter().filter(|(c, _)| !wanted.contains(c)).map(|(c, (b, s))| (*c, *b, s.clone())).collect();
        leaving.sort();
        let source = MembershipSource::Import;
        let suppressed = join_in(&w, group, &joining, source, &Chain::default(), &self.link_keys.get()).await?;
        leave_in(&w, group, &leaving, Some(source), Some("not in the imported list")).await?;
        let mut suppressed_ids: Vec<ContactId> =
            wanted.iter().filter(|c| erased.contains(c) || suppressed.contains(c)).map(|c| ContactId(*c)).collect();
        suppressed_ids.sort();
        let outcome = SetMembersOutcome {
            added: (joining.len() - suppressed.len()) as u64,
            removed: leaving.len() as u64,
            unchanged: wanted.iter().filter(|c| current.contains_key(c)).count() as u64,
            not_found,
            suppressed: suppressed_ids,
        };
        if outcome.added > 0 || outcome.removed > 0 {
            w.audit(
                "group.setMembers",
                "Group",
                Some(group.0),
                serde_json::json!({"added": outcome.added, "removed": outcome.removed,
                    "unchanged": outcome.unchanged, "notFound": outcome.not_found.len(),
                    "suppressed": outcome.suppressed.len(), "system": system.as_str(), "source": source.as_str()}),
            );
        }
        w.answer(&outcome)?;
        w.commit().await?;
        Ok(outcome)
    }

    /// One page of a visible group's visible members: a single statement (the page is chosen on
    /// the membership index — book and sort key are on the membership row — and only the page's
    /// contacts are joined).
    pub async fn group_members(
        &self,
        group: GroupId,
        include_subgroups: bool,
        order: MemberOrder,
        consent: Option<ConsentStatus>,
        page: &PageRequest,
    ) -> StoreResult<Page<MemberRecord>> {
        let along = ReadAlong { membership: true, ..Default::default() };
        Ok(self.group_members_counted(group, include_subgroups, order, consent, page, along).await?.0)
    }

    /// [`DataHandle::group_members`], and with `with_total` the group's visible member count
    /// (as [`DataHandle::group_member_count`]) computed by the same statement — a page and its
    /// `totalCount` in one round trip. The count comes back when the statement can carry it:
    /// the direct members without a consent filter, on a page with at least one row; `None`
    /// otherwise (the caller counts separately).
    pub async fn group_members_counted(
        &self,
        group: GroupId,
        include_subgroups: bool,
        order: MemberOrder,
        consent: Option<ConsentStatus>,
        page: &PageRequest,
        along: ReadAlong,
    ) -> StoreResult<(Page<MemberRecord>, Option<u64>)> {
        let with_total = along.total && !include_subgroups && consent.is_none();
        let v = self.viewer();
        let after = member_cursor(page, order)?;
        let mut q = Sql::new(v.dialect);
        push_member_page(&mut q, v, group, include_subgroups, order, consent, page, &after, with_total, along);
        let rows = self.db.query_all_raw(q.build()).await?;
        let total = match rows.first() {
            Some(r) if with_total => Some(r.try_get::<i64>("", "total_count")?.max(0) as u64),
            _ => None,
        };
        let page = self.member_rows(&rows, group, include_subgroups, order, page, along)?;
        Ok((page, total))
    }

    /// The group (as [`DataHandle::groups_by_ids`] reads it) and a page of its members, with
    /// `with_total` their count: **one statement** for `group(id) { members { … } }`. `None` when
    /// the viewer cannot see the group. The count comes back on the same terms as
    /// [`DataHandle::group_members_counted`]'s, except that an empty page carries it too.
    pub async fn group_with_members(
        &self,
        group: GroupId,
        include_subgroups: bool,
        order: MemberOrder,
        consent: Option<ConsentStatus>,
        page: &PageRequest,
        along: ReadAlong,
    ) -> StoreResult<Option<(crate::GroupRecord, Page<MemberRecord>, Option<u64>)>> {
        let with_total = along.total && !include_subgroups && consent.is_none();
        let v = self.viewer();
        let after = member_cursor(page, order)?;
        let mut q = Sql::new(v.dialect);
        // The group row, LEFT JOINed to its (uncorrelated) page: no row at all means no visible
        // group; one row with NULL contact columns means a visible group with an empty page. The
        // row is read in a derived table of its own (`LIMIT 1` keeps it one): otherwise the
        // viewer's level, a correlated subquery, is evaluated once per page row.
        q.push("SELECT gg.*, x.* FROM (SELECT g.tenant_id AS g_tenant_id, g.id AS g_id, g.address_book_id AS g_address_book_id, g.parent_id AS g_parent_id, g.name AS g_name, g.sort_name AS g_sort_name, g.description AS g_description, g.precedence AS g_precedence, g.public_name AS g_public_name, g.public_description AS g_public_description, g.created_at AS g_created_at, g.updated_at AS g_updated_at, ");
        if crate::core::visibility::level_in_statement(v) {
            q.viewer_level(v, "g.address_book_id");
        } else {
            q.push("NULL");
        }
        q.push(" AS g_my_level");
        if with_total {
            q.push(", ");
            push_member_total(&mut q, v, group);
            q.push(" AS g_total");
        }
        q.push(" FROM contact_groups g WHERE g.tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND g.id = ")
            .bind(group.0)
            .push(" AND ")
            .visible_books(v, "g.address_book_id", AccessLevel::Read)
            .push(" LIMIT 1) gg LEFT JOIN (");
        push_member_page(&mut q, v, group, include_subgroups, order, consent, page, &after, false, along);
        q.push(") x ON 1 = 1 ORDER BY x.page_key, x.id");
        let rows = self.db.query_all_raw(q.build()).await?;
        let Some(first) = rows.first() else { return Ok(None) };
        let Some(group_record) = group_of_row(v, first)? else { return Ok(None) };
        let total = if with_total { Some(first.try_get::<i64>("", "g_total")?.max(0) as u64) } else { None };
        let mut members = Vec::with_capacity(rows.len());
        for row in &rows {
            if row.try_get::<Option<Uuid>>("", "id")?.is_some() {
                members.push(row);
            }
        }
        let page = self.member_rows(members, group, include_subgroups, order, page, along)?;
        Ok(Some((group_record, page, total)))
    }

    /// Decodes a member page's rows (see [`push_member_page`]) and meters what it shows.
    fn member_rows<'r>(
        &self,
        rows: impl IntoIterator<Item = &'r sea_orm::QueryResult>,
        group: GroupId,
        include_subgroups: bool,
        order: MemberOrder,
        page: &PageRequest,
        along: ReadAlong,
    ) -> StoreResult<Page<MemberRecord>> {
        let rows = rows.into_iter();
        let mut out = Vec::with_capacity(rows.size_hint().0);
        for row in rows {
            let c = contact::Model::from_query_result(row, "")?;
            let key = match order {
                MemberOrder::Name => MemberKey::Name(row.try_get("", "page_key")?, c.id),
                MemberOrder::JoinedAt => MemberKey::Joined(row.try_get("", "page_key")?, c.id),
            };
            let membership = if include_subgroups || !along.membership {
                None
            } else {
                let source: String = row.try_get("", "m_source")?;
                Some(MembershipRecord {
                    group_id: group,
                    contact_id: ContactId(c.id),
                    joined_at: row.try_get("", "m_joined_at")?,
                    source: decode::membership_source(&source)?,
                    assigned_by: row.try_get::<Option<Uuid>>("", "m_assigned_by")?.map(UserId),
                    consent_id: row.try_get::<Option<Uuid>>("", "m_consent_id")?.map(ConsentEntryId),
                })
            };
            let extras = along.parts.read(row)?;
            out.push(MemberRecord { contact: c.try_into()?, membership, extras, key });
        }
        let page = Page::from_rows(out, page, |m| m.key.clone());
        // Metering: each member shown is a contact received and a (contact, group) pair.
        self.saw(page.rows.iter().map(|(_, m)| m.contact.id));
        self.saw_pairs(page.rows.len());
        Ok(page)
    }

    /// How many visible contacts are members (of the group, or of it or any visible descendant).
    pub async fn group_member_count(&self, group: GroupId, include_subgroups: bool) -> StoreResult<u64> {
        Ok(self.group_member_counts(&[group], include_subgroups).await?.get(&group).copied().unwrap_or(0))
    }

    /// Member counts of many visible groups in one statement (the loader batches a page's groups).
    /// Hidden groups, hidden subgroups and hidden contacts count nothing.
    pub async fn group_member_counts(
        &self,
        groups: &[GroupId],
        include_subgroups: bool,
    ) -> StoreResult<HashMap<GroupId, u64>> {
        let v = self.viewer();
        let mut out = HashMap::new();
        if groups.is_empty() {
            return Ok(out);
        }
        let mut q = Sql::new(v.dialect);
        if include_subgroups {
            q.push("SELECT cl.ancestor_id AS g, COUNT(DISTINCT m.contact_id) AS n FROM group_closure cl JOIN contact_groups dg ON dg.tenant_id = cl.tenant_id AND dg.id = cl.descendant_id JOIN group_memberships m ON m.tenant_id = cl.tenant_id AND m.group_id = cl.descendant_id WHERE cl.tenant_id = ")
                .bind(v.tenant_id.0)
                .push(" AND cl.ancestor_id IN ")
                .bind_list(groups.iter().map(|g| g.0))
                .push(" AND cl.ancestor_id IN ")
                .visible_groups(v)
                .push(" AND ")
                .visible_books(v, "dg.address_book_id", AccessLevel::Read)
                .push(" AND ")
                .visible_books(v, "m.address_book_id", AccessLevel::Read)
                .push(" GROUP BY cl.ancestor_id");
        } else {
            // The database keeps a member count per (group, book) (migration 5): the visible
            // count is a sum over the viewer's books, not a scan of the group's memberships.
            q.push("SELECT gc.group_id AS g, CAST(SUM(gc.member_count) AS BIGINT) AS n FROM group_member_counts gc WHERE gc.tenant_id = ")
                .bind(v.tenant_id.0)
                .push(" AND gc.group_id IN ")
                .bind_list(groups.iter().map(|g| g.0))
                .push(" AND gc.group_id IN ")
                .visible_groups(v)
                .push(" AND ")
                .visible_books(v, "gc.address_book_id", AccessLevel::Read)
                .push(" GROUP BY gc.group_id");
        }
        for row in self.db.query_all_raw(q.build()).await? {
            let g: Uuid = row.try_get("", "g")?;
            let n: i64 = row.try_get("", "n")?;
            out.insert(GroupId(g), n as u64);
        }
        Ok(out)
    }

    /// The visible groups among `groups`, each with its member count over the viewer's books
    /// (0 when none of its members is visible), in one statement. A contact selection uses it
    /// both to refuse hidden groups and to drive itself from the smallest group.
    pub(crate) async fn selection_group_sizes(&self, groups: &[GroupId]) -> StoreResult<HashMap<GroupId, u64>> {
        let v = self.viewer();
        let mut out = HashMap::new();
        if groups.is_empty() {
            return Ok(out);
        }
        let mut q = Sql::new(v.dialect);
        q.push("SELECT sg.id AS g, CAST(COALESCE((SELECT SUM(gc.member_count) FROM group_member_counts gc WHERE gc.tenant_id = sg.tenant_id AND gc.group_id = sg.id AND ")
            .visible_books(v, "gc.address_book_id", AccessLevel::Read)
            .push("), 0) AS BIGINT) AS n FROM contact_groups sg WHERE sg.tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND sg.id IN ")
            .bind_list(groups.iter().map(|g| g.0))
            .push(" AND ")
            .visible_books(v, "sg.address_book_id", AccessLevel::Read);
        for row in self.db.query_all_raw(q.build()).await? {
            let g: Uuid = row.try_get("", "g")?;
            let n: i64 = row.try_get("", "n")?;
            out.insert(GroupId(g), n.max(0) as u64);
        }
        Ok(out)
    }

    /// For members shown with `includeSubgroups`: per contact, the membership in `root` itself if
    /// there is one, else the earliest among its subgroups (visible groups only). One statement.
    pub async fn effective_memberships(
        &self,
        root: GroupId,
        contacts: &[ContactId],
    ) -> StoreResult<HashMap<ContactId, MembershipRecord>> {
        let v = self.viewer();
        let mut out: HashMap<ContactId, MembershipRecord> = HashMap::new();
        if contacts.is_empty() {
            return Ok(out);
        }
        let subtree = subtree_ids(&self.db, v, root).await?;
        let visible_groups: HashSet<Uuid> = self
            .groups_by_ids(&subtree.iter().copied().collect::<Vec<_>>())
            .await?
            .into_iter()
            .map(|g| g.id.0)
            .collect();
        let rows = membership::Entity::find()
            .filter(membership::Column::TenantId.eq(v.tenant_id.0))
            .filter(membership::Column::GroupId.is_in(visible_groups.iter().copied()))
            .filter(membership::Column::ContactId.is_in(contacts.iter().map(|c| c.0)))
            .filter(crate::core::visibility::book_visible(v, membership::Column::AddressBookId, AccessLevel::Read))
            .all(&self.db)
            .await?;
        for m in rows {
            let rec = MembershipRecord::try_from(m)?;
            let better = match out.get(&rec.contact_id) {
                None => true,
                Some(cur) if cur.group_id == root => false,
                Some(_) if rec.group_id == root => true,
                Some(cur) => (rec.joined_at, rec.group_id.0) < (cur.joined_at, cur.group_id.0),
            };
            if better {
                out.insert(rec.contact_id, rec);
            }
        }
        Ok(out)
    }

    /// The memberships of visible contacts in visible groups, by group name (for the loader), each
    /// with its group as [`DataHandle::groups_by_ids`] reads it: one statement for a contact's
    /// memberships and their groups.
    pub async fn contact_memberships(
        &self,
        contacts: &[ContactId],
    ) -> StoreResult<HashMap<ContactId, Vec<(MembershipRecord, crate::GroupRecord)>>> {
        let v = self.viewer();
        let mut out: HashMap<ContactId, Vec<(MembershipRecord, crate::GroupRecord)>> = HashMap::new();
        if contacts.is_empty() {
            return Ok(out);
        }
        let mut q = Sql::new(v.dialect);
        q.push("SELECT ");
        push_membership_columns(&mut q, v);
        q.push(" FROM group_memberships m JOIN contact_groups g ON g.tenant_id = m.tenant_id AND g.id = m.group_id WHERE m.tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND m.contact_id IN ")
            .bind_list(contacts.iter().map(|c| c.0))
            .push(" AND ")
            .visible_books(v, "m.address_book_id", AccessLevel::Read)
            .push(" AND ")
            .visible_books(v, "g.address_book_id", AccessLevel::Read)
            .push(" ORDER BY g.sort_name, g.id");
        for row in self.db.query_all_raw(q.build()).await? {
            let Some((rec, group)) = membership_of_row(v, &row)? else { continue };
            out.entry(rec.contact_id).or_default().push((rec, group));
        }
        self.saw_pairs(out.values().map(Vec::len).sum());
        Ok(out)
    }

    /// `SELECT <columns> FROM` the membership history as `membership_history` lists it: entries of
    /// contacts the viewer can see now, in groups they can see, of existing contacts; by group,
    /// contact or both. The one query behind the list and its count.
    fn membership_history_query(
        &self,
        columns: &'static str,
        group: Option<GroupId>,
        contact: Option<ContactId>,
    ) -> Sql {
        let v = self.viewer();
        let mut q = Sql::new(v.dialect);
        // Driven by (group or contact, book, id): only the history of visible contacts is read.
        // The join keeps the history of deleted contacts out (it is shown with its contact only).
        q.push("SELECT ").push(columns).push(" FROM membership_history h JOIN contacts c ON c.tenant_id = h.tenant_id AND c.id = h.contact_id JOIN contact_groups g ON g.tenant_id = h.tenant_id AND g.id = h.group_id WHERE h.tenant_id = ")
            .bind(v.tenant_id.0);
        if let Some(g) = group {
            q.push(" AND h.group_id = ").bind(g.0);
        }
        if let Some(c) = contact {
            q.push(" AND h.contact_id = ").bind(c.0);
        }
        q.push(" AND ").visible_books(v, "h.address_book_id", AccessLevel::Read);
        q.push(" AND ").visible_books(v, "g.address_book_id", AccessLevel::Read);
        q
    }

    /// How many entries `membership_history` lists for the same arguments.
    pub async fn membership_history_count(
        &self,
        group: Option<GroupId>,
        contact: Option<ContactId>,
    ) -> StoreResult<u64> {
        crate::core::sql::count(&self.db, self.membership_history_query("COUNT(*) AS n", group, contact)).await
    }

    /// Membership history, newest first, visible entries only: the contact must be visible now
    /// and the group visible. Filter by group, by contact, or both.
    pub async fn membership_history(
        &self,
        group: Option<GroupId>,
        contact: Option<ContactId>,
        page: &PageRequest,
    ) -> StoreResult<Page<MembershipEventRecord>> {
        let after = page.after_key::<Uuid>()?;
        let mut q = self.membership_history_query(
            "h.tenant_id, h.id, h.group_id, h.contact_id, h.action, h.source, h.actor_id, h.at, h.reason, h.address_book_id",
            group,
            contact,
        );
        if let Some(a) = after {
            q.push(" AND h.id < ").bind(a);
        }
        q.push(" ORDER BY h.id DESC LIMIT ").bind(page.limit() as i64);
        let rows = self.db.query_all_raw(q.build()).await?;
        let recs = rows
            .iter()
            .map(|r| MembershipEventRecord::try_from(membership_event::Model::from_query_result(r, "")?))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_rows(recs, page, |e| e.id.0))
    }

    /// Keeps the denormalised book and sort key on membership rows in step with the contact.
    pub(crate) async fn sync_membership_keys(
        w: &UnitOfWork,
        contact: Uuid,
        book: Uuid,
        sort_name: &str,
    ) -> StoreResult<()> {
        let (v, txn) = (w.viewer(), w.tx());
        membership::Entity::update_many()
            .col_expr(membership::Column::AddressBookId, Expr::value(book))
            .col_expr(membership::Column::SortName, Expr::value(sort_name.to_owned()))
            .filter(membership::Column::TenantId.eq(v.tenant_id.0))
            .filter(membership::Column::ContactId.eq(contact))
            .exec(txn)
            .await?;
        // So do its sequence enrolments.
        crate::entities::sequence_enrolment::Entity::update_many()
            .col_expr(crate::entities::sequence_enrolment::Column::AddressBookId, Expr::value(book))
            .filter(crate::entities::sequence_enrolment::Column::TenantId.eq(v.tenant_id.0))
            .filter(crate::entities::sequence_enrolment::Column::ContactId.eq(contact))
            .exec(txn)
            .await?;
        // The history follows the contact too: its entries are visible exactly when it is.
        membership_event::Entity::update_many()
            .col_expr(membership_event::Column::AddressBookId, Expr::value(book))
            .filter(membership_event::Column::TenantId.eq(v.tenant_id.0))
            .filter(membership_event::Column::ContactId.eq(contact))
            .exec(txn)
            .await?;
        Ok(())
    }

    /// Ends every membership of a contact about to be deleted, with history entries.
    pub(crate) async fn end_contact_memberships(
        w: &UnitOfWork,
        contact: Uuid,
        reason: &'static str,
    ) -> StoreResult<()> {
        let (v, txn) = (w.viewer(), w.tx());
        let rows = membership::Entity::find()
            .filter(membership::Column::TenantId.eq(v.tenant_id.0))
            .filter(membership::Column::ContactId.eq(contact))
            .all(txn)
            .await?;
        let now = Utc::now();
        for chunk in rows.chunks(CHUNK) {
            membership_event::Entity::insert_many(chunk.iter().map(|m| membership_event::ActiveModel {
                tenant_id: Set(v.tenant_id.0),
                id: Set(Uuid::now_v7()),
                group_id: Set(m.group_id),
                contact_id: Set(contact),
                action: Set("LEAVE".into()),
                source: Set(m.source.clone()),
                actor_id: Set(Some(v.user_id.0)),
                at: Set(now),
                reason: Set(Some(reason.into())),
                address_book_id: Set(Some(m.address_book_id)),
            }))
            .exec_without_returning(txn)
            .await?;
        }
        membership::Entity::delete_many()
            .filter(membership::Column::TenantId.eq(v.tenant_id.0))
            .filter(membership::Column::ContactId.eq(contact))
            .exec(txn)
            .await?;
        Ok(())
    }
}

/// A group read into a row's `g_*` columns (with `g_my_level` where the level comes from the
/// statement), as [`DataHandle::groups_by_ids`] would answer it; `None` when the viewer holds no
/// level on its book (only a grant revoked between two reads of one statement could do that:
/// the group is then not visible).
/// The columns [`membership_of_row`] decodes, for memberships aliased `m` joined to their
/// groups aliased `g` (with the viewer's level on each group when it must come from the
/// statement). Shared by the memberships loader and the contact read that takes them along.
pub(crate) fn push_membership_columns(q: &mut Sql, v: &Viewer) {
    q.push("m.group_id, m.contact_id, m.joined_at, m.source, m.assigned_by, m.consent_id, g.tenant_id AS g_tenant_id, g.id AS g_id, g.address_book_id AS g_address_book_id, g.parent_id AS g_parent_id, g.name AS g_name, g.sort_name AS g_sort_name, g.description AS g_description, g.precedence AS g_precedence, g.public_name AS g_public_name, g.public_description AS g_public_description, g.created_at AS g_created_at, g.updated_at AS g_updated_at, ");
    if crate::core::visibility::level_in_statement(v) {
        q.viewer_level(v, "g.address_book_id");
    } else {
        q.push("NULL");
    }
    q.push(" AS g_my_level");
}

/// A membership and its group from a row of [`push_membership_columns`]; `None` when the row
/// has no membership or no group (an outer join's empty side: nothing, or a group the viewer
/// may not see) or the group is not visible after all.
pub(crate) fn membership_of_row(
    v: &Viewer,
    row: &sea_orm::QueryResult,
) -> StoreResult<Option<(MembershipRecord, crate::GroupRecord)>> {
    let Some(group_id) = row.try_get::<Option<Uuid>>("", "group_id")? else { return Ok(None) };
    if row.try_get::<Option<Uuid>>("", "g_id")?.is_none() {
        return Ok(None);
    }
    let source: String = row.try_get("", "source")?;
    let rec = MembershipRecord {
        group_id: GroupId(group_id),
        contact_id: ContactId(row.try_get("", "contact_id")?),
        joined_at: row.try_get("", "joined_at")?,
        source: decode::membership_source(&source)?,
        assigned_by: row.try_get::<Option<Uuid>>("", "assigned_by")?.map(UserId),
        consent_id: row.try_get::<Option<Uuid>>("", "consent_id")?.map(ConsentEntryId),
    };
    Ok(group_of_row(v, row)?.map(|g| (rec, g)))
}

fn group_of_row(v: &Viewer, row: &sea_orm::QueryResult) -> StoreResult<Option<crate::GroupRecord>> {
    let model = crate::entities::group::Model::from_query_result(row, "g_")?;
    let level = match crate::core::visibility::known_level(v, model.address_book_id) {
        Some(level) => level,
        None if crate::core::visibility::level_in_statement(v) => match row.try_get::<Option<i16>>("", "g_my_level")? {
            Some(level) => decode::access_level(level)?,
            None => return Ok(None),
        },
        None => return Ok(None),
    };
    Ok(Some(crate::groups::hierarchy::record(model, level)))
}

/// The cursor of a member page, refused when it belongs to a differently ordered list.
fn member_cursor(page: &PageRequest, order: MemberOrder) -> StoreResult<Option<MemberKey>> {
    let after = page.after_key::<MemberKey>()?;
    match (&after, order) {
        (Some(MemberKey::Name(..)), MemberOrder::JoinedAt) | (Some(MemberKey::Joined(..)), MemberOrder::Name) => {
            Err(StoreError::invalid("after", "is a cursor of a differently ordered list"))
        }
        _ => Ok(after),
    }
}

/// `(SELECT the group's visible member count)`: uncorrelated, so evaluated once per statement
/// (an InitPlan on PostgreSQL); the same sum over the viewer's books as `group_member_counts`.
/// The statement around it checks that the group is visible.
fn push_member_total(q: &mut Sql, v: &Viewer, group: GroupId) {
    q.push(
        "(SELECT CAST(COALESCE(SUM(gc.member_count), 0) AS BIGINT) FROM group_member_counts gc WHERE gc.tenant_id = ",
    )
    .bind(v.tenant_id.0)
    .push(" AND gc.group_id = ")
    .bind(group.0)
    .push(" AND ")
    .visible_books(v, "gc.address_book_id", AccessLevel::Read)
    .push(")");
}

/// One page of a visible group's visible members, as one SELECT (contact columns, `page_key`,
/// the membership's `m_*` columns and, with `with_total`, `total_count`).
#[allow(clippy::too_many_arguments)]
fn push_member_page(
    q: &mut Sql,
    v: &Viewer,
    group: GroupId,
    include_subgroups: bool,
    order: MemberOrder,
    consent: Option<ConsentStatus>,
    page: &PageRequest,
    after: &Option<MemberKey>,
    with_total: bool,
    along: ReadAlong,
) {
    let backend = v.dialect;
    let (key_expr, key_col) = match (order, include_subgroups) {
        (MemberOrder::Name, false) => ("m.sort_name", "k_name"),
        (MemberOrder::JoinedAt, false) => ("m.joined_at", "k_joined"),
        (MemberOrder::Name, true) => ("MIN(m.sort_name)", "k_name"),
        (MemberOrder::JoinedAt, true) => ("MIN(m.joined_at)", "k_joined"),
    };
    q.push("SELECT ").push_columns("c", contact_columns()).push(", p.").push(key_col).push(" AS page_key");
    let provenance = !include_subgroups && along.membership;
    if provenance {
        q.push(", pm.joined_at AS m_joined_at, pm.source AS m_source, pm.assigned_by AS m_assigned_by, pm.consent_id AS m_consent_id");
    }
    along.parts.push_columns(q);
    if with_total {
        q.push(", ");
        push_member_total(q, v, group);
        q.push(" AS total_count");
    }
    // The inner page reads only index columns (group, key, contact, book): an index-only scan
    // that skips invisible rows without touching the table. Provenance is joined afterwards,
    // for the page's rows only.
    q.push(" FROM (SELECT m.contact_id, ").push(key_expr).push(" AS ").push(key_col);
    q.push(" FROM group_memberships m WHERE m.tenant_id = ").bind(v.tenant_id.0).push(" AND ");
    if include_subgroups {
        q.push("m.group_id IN ").visible_subtree(v, group.0);
    } else {
        // The group itself must be visible (a hidden group is an empty list, like no group).
        q.push("m.group_id = ").bind(group.0).push(" AND m.group_id IN ").visible_groups(v);
    }
    // On SQLite the unary `+` keeps the book list from choosing the (group, book) index: it
    // would collect every visible member and sort them, where walking the order index and
    // skipping invisible entries stops after one page (22 ms vs 2 ms for group 1 of dataset M).
    let book_col = backend.member_page_book_column();
    q.push(" AND ").visible_books(v, book_col, AccessLevel::Read);
    // The consent standing of the membership's own group (its latest consent entry).
    if let Some(c) = consent {
        crate::consent::push_consent_filter(q, c);
    }
    let cursor = |q: &mut Sql, key: &'static str| match &after {
        Some(MemberKey::Name(n, id)) => {
            q.push(" AND (").push(key).push(" > ").bind(n.clone()).push(" OR (").push(key).push(" = ").bind(n.clone());
            q.push(" AND m.contact_id > ").bind(*id).push("))");
        }
        Some(MemberKey::Joined(t, id)) => {
            q.push(" AND (").push(key).push(" > ").bind(*t).push(" OR (").push(key).push(" = ").bind(*t);
            q.push(" AND m.contact_id > ").bind(*id).push("))");
        }
        None => {}
    };
    if include_subgroups {
        q.push(" GROUP BY m.contact_id");
        if after.is_some() {
            q.push(" HAVING 1 = 1");
            cursor(q, key_expr);
        }
    } else {
        cursor(q, key_expr);
    }
    q.push(" ORDER BY ").push(key_col).push(", m.contact_id LIMIT ").bind(page.limit() as i64);
    q.push(") p JOIN contacts c ON c.tenant_id = ").bind(v.tenant_id.0).push(" AND c.id = p.contact_id AND ");
    // Defence in depth: the contact's own book decides, should a copied key ever be stale.
    q.visible_books(v, "c.address_book_id", AccessLevel::Read);
    if provenance {
        q.push(" JOIN group_memberships pm ON pm.tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND pm.group_id = ")
            .bind(group.0)
            .push(" AND pm.contact_id = p.contact_id");
    }
    along.parts.push_join(q);
    q.push(" ORDER BY p.");
    q.push(key_col).push(", p.contact_id");
}
