//! Per-group responsibilities per process area, their inherited answer, and routing.

use super::*;
use crate::access::handle::DataHandle;
use crate::core::dialect::RowLock;
use crate::core::sql::Sql;
use crate::core::uow::LockedTable;
use crate::entities::{group_responsibility, process_area};
use crate::events::{EventType, Subject, SubjectKind};
use cohort_domain::AccessLevel;
use cohort_domain::inherit::{self, Found};
use cohort_domain::routing::{self, AreaDefaults, Responsibility};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

fn responsibility_record(m: group_responsibility::Model) -> ResponsibilityRecord {
    ResponsibilityRecord {
        group: GroupId(m.group_id),
        process_area: ProcessAreaId(m.process_area_id),
        worker: m.worker_id.map(UserId),
        user_group: m.user_group_id.map(UserGroupId),
        processing_area: m.processing_area_id.map(ProcessingAreaId),
        updated_at: m.updated_at,
        updated_by: m.updated_by.map(UserId),
    }
}

/// `(SELECT …)` of what the chain above each of `groups`-rows sets for one area: rows of
/// (asked group, setter, depth, responsibility). The caller adds the `cl.descendant_id` filter.
const CHAIN_SELECT: &str = "SELECT cl.descendant_id AS asked, cl.ancestor_id AS defined_on, cl.depth, r.tenant_id, r.group_id, r.process_area_id, r.worker_id, r.user_group_id, r.processing_area_id, r.updated_by, r.updated_at FROM group_closure cl JOIN group_responsibilities r ON r.tenant_id = cl.tenant_id AND r.group_id = cl.ancestor_id";

impl DataHandle {
    async fn area_by_id<C: ConnectionTrait>(&self, conn: &C, id: ProcessAreaId) -> StoreResult<process_area::Model> {
        process_area::Entity::find()
            .filter(process_area::Column::TenantId.eq(self.viewer().tenant_id.0))
            .filter(process_area::Column::Id.eq(id.0))
            .one(conn)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Sets what a group answers for one process area (MANAGE on the group's home book). At
    /// least one of worker, user group and queue must be given; a worker named with a queue
    /// restricted to a user group must be a member of it.
    pub async fn set_group_responsibility(
        &self,
        g: GroupId,
        area: ProcessAreaId,
        r: Responsibility,
    ) -> StoreResult<ResponsibilityRecord> {
        let v = self.viewer();
        if r.is_empty() {
            return Err(StoreError::invalid(
                "workerId",
                "name a worker, a user group or a queue (clearGroupResponsibility removes one)",
            ));
        }
        let w = self.begin().await?;
        self.group_for(w.tx(), v, g, AccessLevel::Manage).await?;
        // Held to commit: a concurrent delete of the group waits (and then cascades this row).
        w.lock_row(LockedTable::Groups, g.0, RowLock::Share).await?;
        self.area_by_id(w.tx(), area).await?;
        if let Some(u) = r.worker {
            w.require_user(u).await?;
        }
        if let Some(ug) = r.user_group {
            w.require_user_group(ug).await?;
        }
        let queue = match r.processing_area {
            Some(q) => Some(w.queue(q).await?),
            None => None,
        };
        w.check_worker_fits_queue(r.worker, queue.as_ref(), "workerId").await?;
        let m = group_responsibility::Model {
            tenant_id: v.tenant_id.0,
            group_id: g.0,
            process_area_id: area.0,
            worker_id: r.worker.map(|u| u.0),
            user_group_id: r.user_group.map(|u| u.0),
            processing_area_id: r.processing_area.map(|q| q.0),
            updated_by: Some(v.user_id.0),
            updated_at: Utc::now(),
        };
        group_responsibility::Entity::insert(group_responsibility::ActiveModel {
            tenant_id: Set(m.tenant_id),
            group_id: Set(m.group_id),
            process_area_id: Set(m.process_area_id),
            worker_id: Set(m.worker_id),
            user_group_id: Set(m.user_group_id),
            processing_area_id: Set(m.processing_area_id),
            updated_by: Set(m.updated_by),
            updated_at: Set(m.updated_at),
        })
        .on_conflict(
            OnConflict::columns([
                group_responsibility::Column::TenantId,
                group_responsibility::Column::GroupId,
                group_responsibility::Column::ProcessAreaId,
            ])
            .update_columns([
                group_responsibility::Column::WorkerId,
                group_responsibility::Column::UserGroupId,
                group_responsibility::Column::ProcessingAreaId,
                group_responsibility::Column::UpdatedBy,
                group_responsibility::Column::UpdatedAt,
            ])
            .to_owned(),
        )
        .exec_without_returning(w.tx())
        .await?;
        let details = serde_json::json!({
            "processAreaId": area.0,
            "workerId": m.worker_id,
            "userGroupId": m.user_group_id,
            "processingAreaId": m.processing_area_id,
        });
        w.audit("group.setResponsibility", "Group", Some(g.0), details);
        w.emit(
            EventType::ResponsibilityChanged,
            vec![Subject::new(SubjectKind::Group, g.0), Subject::new(SubjectKind::ProcessArea, area.0)],
            serde_json::json!({"cleared": false}),
        );
        w.commit().await?;
        Ok(responsibility_record(m))
    }

    /// Removes what a group sets for one area (it inherits again). `false` when it set nothing.
    pub async fn clear_group_responsibility(&self, g: GroupId, area: ProcessAreaId) -> StoreResult<bool> {
        let v = self.viewer();
        let w = self.begin().await?;
        self.group_for(w.tx(), v, g, AccessLevel::Manage).await?;
        self.area_by_id(w.tx(), area).await?;
        let r = group_responsibility::Entity::delete_many()
            .filter(group_responsibility::Column::TenantId.eq(v.tenant_id.0))
            .filter(group_responsibility::Column::GroupId.eq(g.0))
            .filter(group_responsibility::Column::ProcessAreaId.eq(area.0))
            .exec(w.tx())
            .await?;
        if r.rows_affected > 0 {
            w.audit("group.clearResponsibility", "Group", Some(g.0), serde_json::json!({"processAreaId": area.0}));
            w.emit(
                EventType::ResponsibilityChanged,
                vec![Subject::new(SubjectKind::Group, g.0), Subject::new(SubjectKind::ProcessArea, area.0)],
                serde_json::json!({"cleared": true}),
            );
        }
        w.commit().await?;
        Ok(r.rows_affected > 0)
    }

    /// What visible groups set themselves, for every area (by area key order of creation).
    pub async fn group_responsibilities(&self, groups: &[GroupId]) -> StoreResult<Vec<ResponsibilityRecord>> {
        let visible: Vec<Uuid> = self.groups_by_ids(groups).await?.into_iter().map(|g| g.id.0).collect();
        if visible.is_empty() {
            return Ok(vec![]);
        }
        Ok(group_responsibility::Entity::find()
            .filter(group_responsibility::Column::TenantId.eq(self.viewer().tenant_id.0))
            .filter(group_responsibility::Column::GroupId.is_in(visible))
            .order_by_asc(group_responsibility::Column::GroupId)
            .order_by_asc(group_responsibility::Column::ProcessAreaId)
            .all(&self.db)
            .await?
            .into_iter()
            .map(responsibility_record)
            .collect())
    }

    /// A visible group's effective responsibility for the area with `key`: its own, else its
    /// nearest ancestor's; `None` when the chain sets none.
    pub async fn effective_responsibility(
        &self,
        g: GroupId,
        key: &str,
    ) -> StoreResult<Option<EffectiveResponsibilityRecord>> {
        let v = self.viewer();
        if self.groups_by_ids(&[g]).await?.is_empty() {
            return Err(StoreError::NotFound);
        }
        let area = self.area_by_key(&self.db, key).await?;
        let mut q = Sql::new(v.dialect);
        q.push(CHAIN_SELECT)
            .push(" WHERE cl.tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND cl.descendant_id = ")
            .bind(g.0)
            .push(" AND r.process_area_id = ")
            .bind(area.id);
        let found = chain_rows(&self.db, q).await?;
        Ok(inherit::effective(found.into_iter().map(|(_, f)| f)).and_then(|e| {
            let from = e.from;
            let inherited = !e.is_own();
            e.values.into_iter().next().map(|r| EffectiveResponsibilityRecord {
                responsibility: r,
                defined_on: from,
                inherited,
            })
        }))
    }

    /// Routes a message of a visible contact for the process area with `key`. The decision uses
    /// **all** the contact's groups (it never depends on who asks); which of them the caller may
    /// be told about is in [`RouteRecord::visible_groups`].
    pub async fn route(&self, contact: ContactId, key: &str) -> StoreResult<RouteRecord> {
        let v = self.viewer();
        self.contact_visible(&self.db, v, contact).await?;
        let area = self.area_by_key(&self.db, key).await?;
        let decision = route_contact(&self.db, v, Some(contact), &area).await?;
        let mut named: Vec<GroupId> = decision.candidates.iter().flat_map(|c| [c.group, c.defined_on]).collect();
        named.sort();
        named.dedup();
        let visible_groups = self.groups_by_ids(&named).await?.into_iter().map(|g| g.id).collect();
        Ok(RouteRecord { process_area: super::areas::area_record(area), decision, visible_groups })
    }
}

async fn chain_rows<C: ConnectionTrait>(conn: &C, q: Sql) -> StoreResult<Vec<(GroupId, Found<ResponsibilityRecord>)>> {
    use sea_orm::FromQueryResult;
    let rows = conn.query_all_raw(q.build()).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push((
            GroupId(r.try_get("", "asked")?),
            Found {
                defined_on: GroupId(r.try_get("", "defined_on")?),
                depth: r.try_get("", "depth")?,
                value: responsibility_record(group_responsibility::Model::from_query_result(&r, "")?),
            },
        ));
    }
    Ok(out)
}

/// The routing decision for `contact` (or for an unknown sender) in `area`: one statement for
/// the contact's groups with what their chains set, whatever the number of groups.
pub(crate) async fn route_contact<C: ConnectionTrait>(
    conn: &C,
    v: &Viewer,
    contact: Option<ContactId>,
    area: &process_area::Model,
) -> StoreResult<routing::Decision> {
    let defaults = AreaDefaults {
        processing_area: ProcessingAreaId(area.default_processing_area_id),
        worker: area.default_worker_id.map(UserId),
        user_group: area.default_user_group_id.map(UserGroupId),
    };
    let Some(contact) = contact else {
        return Ok(routing::route([], [], &defaults));
    };
    // Every direct group of the contact (LEFT JOIN: a group whose chain sets nothing still
    // appears, with NULL responsibility columns), and what its chain sets for the area.
    let mut q = Sql::new(v.dialect);
    q.push("SELECT m.group_id, g.precedence, cl.ancestor_id, cl.depth, r.worker_id, r.user_group_id, r.processing_area_id FROM group_memberships m JOIN contact_groups g ON g.tenant_id = m.tenant_id AND g.id = m.group_id LEFT JOIN group_closure cl ON cl.tenant_id = m.tenant_id AND cl.descendant_id = m.group_id AND EXISTS (SELECT 1 FROM group_responsibilities x WHERE x.tenant_id = cl.tenant_id AND x.group_id = cl.ancestor_id AND x.process_area_id = ")
        .bind(area.id)
        .push(") LEFT JOIN group_responsibilities r ON r.tenant_id = cl.tenant_id AND r.group_id = cl.ancestor_id AND r.process_area_id = ")
        .bind(area.id)
        .push(" WHERE m.tenant_id = ")
        .bind(v.tenant_id.0)
        .push(" AND m.contact_id = ")
        .bind(contact.0);
    let rows = conn.query_all_raw(q.build()).await?;
    let mut members = Vec::with_capacity(rows.len());
    let mut found = Vec::with_capacity(rows.len());
    for r in rows {
        let g = GroupId(r.try_get("", "group_id")?);
        members.push((g, r.try_get::<i32>("", "precedence")?));
        let Some(on) = r.try_get::<Option<Uuid>>("", "ancestor_id")? else {
            continue;
        };
        let resp = Responsibility {
            worker: r.try_get::<Option<Uuid>>("", "worker_id")?.map(UserId),
            user_group: r.try_get::<Option<Uuid>>("", "user_group_id")?.map(UserGroupId),
            processing_area: r.try_get::<Option<Uuid>>("", "processing_area_id")?.map(ProcessingAreaId),
        };
        found.push((g, Found { defined_on: GroupId(on), depth: r.try_get("", "depth")?, value: resp }));
    }
    members.sort();
    members.dedup();
    Ok(routing::route(members, found, &defaults))
}
