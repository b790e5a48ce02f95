//! Contact groups and their hierarchy. Reading a group needs `READ` on its home address book,
//! configuring it `MANAGE` there (admins: everywhere). The hierarchy is a closure table: every
//! (ancestor, descendant) pair with its depth, so "this group and everything below it" is one
//! indexed lookup and a move rewrites the moved subtree's rows in two set-based statements.

use crate::access::handle::DataHandle;
use crate::access::viewer::Viewer;
use crate::audit::Changes;
use crate::core::page::{Page, PageRequest};
use crate::core::sql::Sql;
use crate::core::uow::UnitOfWork;
use crate::core::visibility::{book_level, book_levels, book_visible, like_escape};
use crate::entities::{group, group_closure, membership, membership_event};
use crate::error::{StoreError, StoreResult};
use crate::events::{EventType, Subject, SubjectKind};
use chrono::{DateTime, Utc};
use cohort_domain::AccessLevel;
use cohort_domain::group::{ValidGroup, check_move};
use cohort_domain::ids::{AddressBookId, GroupId};
use sea_orm::sea_query::{Condition, Expr, ExprTrait, LikeExpr, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    pub id: GroupId,
    pub address_book_id: AddressBookId,
    pub parent_id: Option<GroupId>,
    pub name: String,
    pub sort_name: String,
    pub description: Option<String>,
    pub precedence: i32,
    pub public_name: Option<String>,
    pub public_description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The viewer's level on the home book (at least `Read`).
    pub my_access: AccessLevel,
}

/// A group row with the viewer's level on its home book.
#[derive(sea_orm::FromQueryResult)]
struct GroupWithLevel {
    tenant_id: Uuid,
    id: Uuid,
    address_book_id: Uuid,
    parent_id: Option<Uuid>,
    name: String,
    sort_name: String,
    description: Option<String>,
    precedence: i32,
    public_name: Option<String>,
    public_description: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    my_level: Option<i16>,
}

pub(crate) fn record(m: group::Model, my_access: AccessLevel) -> GroupRecord {
    GroupRecord {
        id: GroupId(m.id),
        address_book_id: AddressBookId(m.address_book_id),
        parent_id: m.parent_id.map(GroupId),
        name: m.name,
        sort_name: m.sort_name,
        description: m.description,
        precedence: m.precedence,
        public_name: m.public_name,
        public_description: m.public_description,
        created_at: m.created_at,
        updated_at: m.updated_at,
        my_access,
    }
}

/// A new group.
#[derive(Debug, Clone)]
pub struct GroupInput {
    pub address_book_id: AddressBookId,
    pub parent_id: Option<GroupId>,
    pub name: String,
    pub description: Option<String>,
    pub precedence: i32,
    pub public_name: Option<String>,
    pub public_description: Option<String>,
}

/// A partial update: `None` leaves a field unchanged; `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct GroupPatch {
    pub address_book_id: Option<AddressBookId>,
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub precedence: Option<i32>,
    pub public_name: Option<Option<String>>,
    pub public_description: Option<Option<String>>,
}

/// What to do with a deleted group's subgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubgroupPolicy {
    /// Refuse (`Conflict`) if there are any.
    Refuse,
    /// Move them under another group (or to the root level with `None`).
    ReparentTo(Option<GroupId>),
    /// Delete the whole subtree.
    Delete,
}

#[derive(Debug, Clone, Default)]
pub struct GroupFilter {
    pub parent_id: Option<GroupId>,
    pub roots_only: bool,
    /// Case-insensitive prefix of the group's name.
    pub search: Option<String>,
    pub is_public: Option<bool>,
}

pub(crate) fn visible_groups(v: &Viewer) -> sea_orm::Select<group::Entity> {
    group::Entity::find().filter(group::Column::TenantId.eq(v.tenant_id.0)).filter(book_visible(
        v,
        group::Column::AddressBookId,
        AccessLevel::Read,
    ))
}

/// The ids of `root`'s subtree (itself included).
pub(crate) async fn subtree_ids<C: ConnectionTrait>(
    conn: &C,
    v: &Viewer,
    root: GroupId,
) -> StoreResult<HashSet<GroupId>> {
    let ids: Vec<Uuid> = group_closure::Entity::find()
        .filter(group_closure::Column::TenantId.eq(v.tenant_id.0))
        .filter(group_closure::Column::AncestorId.eq(root.0))
        .select_only()
        .column(group_closure::Column::DescendantId)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(ids.into_iter().map(GroupId).collect())
}

impl DataHandle {
    /// One page of the groups `q` selects, by (name, id), with the viewer's level on each.
    async fn page_by_name(
        &self,
        mut q: sea_orm::Select<group::Entity>,
        page: &PageRequest,
    ) -> StoreResult<Page<GroupRecord>> {
        if let Some((name, id)) = page.after_key::<(String, Uuid)>()? {
            q = q.filter(crate::core::page::after(group::Column::SortName, group::Column::Id, (name, id)));
        }
        let rows = q
            .order_by_asc(group::Column::SortName)
            .order_by_asc(group::Column::Id)
            .limit(page.limit())
            .all(&self.db)
            .await?;
        let recs = self.with_group_levels(rows).await?;
        Ok(Page::from_rows(recs, page, |g| (g.sort_name.clone(), g.id.0)))
    }

    async fn with_group_levels(&self, rows: Vec<group::Model>) -> StoreResult<Vec<GroupRecord>> {
        let v = self.viewer();
        let books: Vec<Uuid> = rows.iter().map(|r| r.address_book_id).collect();
        let levels = book_levels(&self.db, v, &books).await?;
        Ok(rows.into_iter().filter_map(|r| levels.get(&r.address_book_id).copied().map(|l| record(r, l))).collect())
    }

    /// A visible group inside a transaction, with the viewer's level on its home book.
    pub(crate) async fn group_for(
        &self,
        txn: &DatabaseTransaction,
        v: &Viewer,
        id: GroupId,
        needed: AccessLevel,
    ) -> StoreResult<group::Model> {
        let g = visible_groups(v).filter(group::Column::Id.eq(id.0)).one(txn).await?.ok_or(StoreError::NotFound)?;
        let level = book_level(txn, v, AddressBookId(g.address_book_id)).await?;
        if !AccessLevel::allows(level, needed) {
            return Err(StoreError::forbidden(match needed {
                AccessLevel::Manage => "configuring this group needs MANAGE on its home address book",
                AccessLevel::Write => "changing this group's members needs WRITE on its home address book",
                AccessLevel::Read => "reading this group needs READ on its home address book",
            }));
        }
        Ok(g)
    }

    async fn require_manage_book(&self, txn: &DatabaseTransaction, v: &Viewer, book: AddressBookId) -> StoreResult<()> {
        match book_level(txn, v, book).await? {
            None => Err(StoreError::NotFound),
            Some(l) if l < AccessLevel::Manage => {
                Err(StoreError::forbidden("configuring groups needs MANAGE on their home address book"))
            }
            Some(_) => Ok(()),
        }
    }

    pub async fn create_group(&self, input: GroupInput) -> StoreResult<GroupRecord> {
        self.create_group_with_external_ids(input, &[]).await
    }

    /// [`DataHandle::create_group`] with the group's external ids, in the same transaction.
    pub async fn create_group_with_external_ids(
        &self,
        input: GroupInput,
        external_ids: &[crate::external::ExternalIdRecord],
    ) -> StoreResult<GroupRecord> {
        let ext = crate::external::parse_all(external_ids)?;
        let v = self.viewer();
        let valid = ValidGroup::validate(
            &input.name,
            input.description.as_deref(),
            input.precedence,
            input.public_name.as_deref(),
            input.public_description.as_deref(),
        )?;
        let w = self.begin().await?;
        self.require_manage_book(w.tx(), v, input.address_book_id).await?;
        if let Some(p) = input.parent_id {
            w.lock_hierarchy().await?;
            self.group_for(w.tx(), v, p, AccessLevel::Manage).await?;
        }
        let now = Utc::now();
        let m = group::Model {
            tenant_id: v.tenant_id.0,
            id: Uuid::now_v7(),
            address_book_id: input.address_book_id.0,
            parent_id: input.parent_id.map(|p| p.0),
            name: valid.name,
            sort_name: valid.sort_name,
            description: valid.description,
            precedence: valid.precedence,
            public_name: valid.public_name,
            public_description: valid.public_description,
            created_at: now,
            updated_at: now,
        };
        group::Entity::insert(group::ActiveModel::from(m.clone())).exec_without_returning(w.tx()).await?;
        // Closure rows: (g, g, 0) and (a, g, d + 1) for every ancestor-or-self a of the parent.
        group_closure::Entity::insert(group_closure::ActiveModel {
            tenant_id: Set(v.tenant_id.0),
            ancestor_id: Set(m.id),
            descendant_id: Set(m.id),
            depth: Set(0),
        })
        .exec_without_returning(w.tx())
        .await?;
        if let Some(p) = input.parent_id {
            let mut q = Sql::new(w.dialect());
            q.push("INSERT INTO group_closure (tenant_id, ancestor_id, descendant_id, depth) SELECT tenant_id, ancestor_id, ")
                .bind(m.id)
                .push(", depth + 1 FROM group_closure WHERE tenant_id = ")
                .bind(v.tenant_id.0)
                .push(" AND descendant_id = ")
                .bind(p.0);
            w.tx().execute_raw(q.build()).await?;
        }
        crate::external::write_new(&w, crate::external::ExternalTarget::Group(GroupId(m.id)), &ext).await?;
        w.audit("group.create", "Group", Some(m.id), serde_json::json!({"name": m.name}));
        w.emit(
            EventType::GroupCreated,
            vec![Subject::new(SubjectKind::Group, m.id)],
            serde_json::json!({"parentId": m.parent_id, "addressBookId": m.address_book_id}),
        );
        w.commit().await?;
        let level = AccessLevel::effective(v.is_admin(), [AccessLevel::Manage]).unwrap_or(AccessLevel::Manage);
        Ok(record(m, level))
    }

    pub async fn update_group(&self, id: GroupId, p: GroupPatch) -> StoreResult<GroupRecord> {
        let v = self.viewer();
        let w = self.begin().await?;
        let cur = self.group_for(w.tx(), v, id, AccessLevel::Manage).await?;
        let valid = ValidGroup::validate(
            p.name.as_deref().unwrap_or(&cur.name),
            p.description.clone().unwrap_or(cur.description.clone()).as_deref(),
            p.precedence.unwrap_or(cur.precedence),
            p.public_name.clone().unwrap_or(cur.public_name.clone()).as_deref(),
            p.public_description.clone().unwrap_or(cur.public_description.clone()).as_deref(),
        )?;
        if let Some(book) = p.address_book_id
            && book.0 != cur.address_book_id
        {
            self.require_manage_book(w.tx(), v, book).await?;
        }
        let old = cur.clone();
        let m = group::Model {
            address_book_id: p.address_book_id.map(|b| b.0).unwrap_or(cur.address_book_id),
            name: valid.name,
            sort_name: valid.sort_name,
            description: valid.description,
            precedence: valid.precedence,
            public_name: valid.public_name,
            public_description: valid.public_description,
            updated_at: Utc::now(),
            ..cur
        };
        group::Entity::update(group::ActiveModel {
            tenant_id: sea_orm::ActiveValue::Unchanged(m.tenant_id),
            id: sea_orm::ActiveValue::Unchanged(m.id),
            address_book_id: Set(m.address_book_id),
            name: Set(m.name.clone()),
            sort_name: Set(m.sort_name.clone()),
            description: Set(m.description.clone()),
            precedence: Set(m.precedence),
            public_name: Set(m.public_name.clone()),
            public_description: Set(m.public_description.clone()),
            updated_at: Set(m.updated_at),
            ..Default::default()
        })
        .exec(w.tx())
        .await?;
        let mut changes = Changes::new();
        changes
            .field("addressBookId", old.address_book_id, m.address_book_id)
            .field("name", &old.name, &m.name)
            .field("description", &old.description, &m.description)
            .field("precedence", old.precedence, m.precedence)
            .field("publicName", &old.public_name, &m.public_name)
            .field("publicDescription", &old.public_description, &m.public_description);
        w.audit("group.update", "Group", Some(m.id), changes.details(serde_json::json!({})));
        w.emit(
            EventType::GroupUpdated,
            vec![Subject::new(SubjectKind::Group, m.id)],
            serde_json::json!({"addressBookId": m.address_book_id}),
        );
        w.commit().await?;
        let level = book_level(&self.db, v, AddressBookId(m.address_book_id)).await?.unwrap_or(AccessLevel::Read);
        Ok(record(m, level))
    }

    /// Moves a group (with its whole subtree and all memberships) under `new_parent`, or to the
    /// root level. Needs MANAGE on the group and on the new parent; refuses cycles.
    pub async fn move_group(&self, id: GroupId, new_parent: Option<GroupId>) -> StoreResult<GroupRecord> {
        let v = self.viewer();
        let w = self.begin().await?;
        // Before reading anything of the tree: a concurrent move must see this one's result.
        w.lock_hierarchy().await?;
        let cur = self.group_for(w.tx(), v, id, AccessLevel::Manage).await?;
        if let Some(p) = new_parent {
            self.group_for(w.tx(), v, p, AccessLevel::Manage).await?;
        }
        let subtree = subtree_ids(w.tx(), v, id).await?;
        check_move(id, new_parent, &subtree)?;
        if cur.parent_id != new_parent.map(|p| p.0) {
            reattach(&w, id, new_parent).await?;
            w.audit("group.move", "Group", Some(id.0), serde_json::json!({"parentId": new_parent.map(|p| p.0)}));
            w.emit(
                EventType::GroupMoved,
                vec![Subject::new(SubjectKind::Group, id.0)],
                serde_json::json!({"fromParentId": cur.parent_id, "toParentId": new_parent.map(|p| p.0)}),
            );
        }
        w.commit().await?;
        let m = group::Model { parent_id: new_parent.map(|p| p.0), ..cur };
        let level = book_level(&self.db, v, AddressBookId(m.address_book_id)).await?.unwrap_or(AccessLevel::Read);
        Ok(record(m, level))
    }

    /// Deletes a group. Its memberships end (each with a history entry); its subgroups are
    /// handled as `policy` says. Returns the ids of every deleted group.
    pub async fn delete_group(&self, id: GroupId, policy: SubgroupPolicy) -> StoreResult<Vec<GroupId>> {
        let v = self.viewer();
        let w = self.begin().await?;
        w.lock_hierarchy().await?;
        let cur = self.group_for(w.tx(), v, id, AccessLevel::Manage).await?;
        // The whole subtree with each group's parent and home book, and which of those books the
        // viewer can read: a viewer's delete acts on the part of the tree they can see.
        let subtree = subtree_ids(w.tx(), v, id).await?;
        let rows = group::Entity::find()
            .filter(group::Column::TenantId.eq(v.tenant_id.0))
            .filter(group::Column::Id.is_in(subtree.iter().map(|g| g.0)))
            .all(w.tx())
            .await?;
        let books: Vec<Uuid> = rows.iter().map(|r| r.address_book_id).collect();
        let levels = book_levels(w.tx(), v, &books).await?;
        let hidden = |r: &group::Model| !levels.contains_key(&r.address_book_id);
        let parent_of: HashMap<Uuid, Option<Uuid>> = rows.iter().map(|r| (r.id, r.parent_id)).collect();
        let hidden_ids: HashSet<Uuid> = rows.iter().filter(|r| hidden(r)).map(|r| r.id).collect();
        // Subgroups the viewer cannot see are never deleted, moved elsewhere or mentioned by
        // them: each top-most hidden subgroup (with everything below it) moves up to the deleted
        // group's own parent, the nearest ancestor that survives. So the answer is the same
        // whether such subgroups exist or not (DESIGN §1: hidden ≡ nonexistent).
        let hidden_tops: Vec<Uuid> = rows
            .iter()
            .filter(|r| hidden(r) && r.parent_id.is_some_and(|p| !hidden_ids.contains(&p)))
            .map(|r| r.id)
            .collect();
        let under_hidden = |mut g: Uuid| loop {
            if hidden_ids.contains(&g) {
                return true;
            }
            match parent_of.get(&g).copied().flatten() {
                Some(p) if p != id.0 => g = p,
                _ => return false,
            }
        };
        let visible_children: Vec<Uuid> =
            rows.iter().filter(|r| r.parent_id == Some(id.0) && !hidden(r)).map(|r| r.id).collect();
        let mut doomed = vec![id];
        if !visible_children.is_empty() {
            match policy {
                SubgroupPolicy::Refuse => {
                    return Err(StoreError::Conflict(
                        "the group has subgroups: say what to do with them (reparentChildrenToId or deleteSubgroups)"
                            .into(),
                    ));
                }
                SubgroupPolicy::ReparentTo(target) => {
                    if let Some(t) = target {
                        self.group_for(w.tx(), v, t, AccessLevel::Manage).await?;
                        if subtree.contains(&t) {
                            return Err(StoreError::invalid(
                                "reparentChildrenToId",
                                "must not be inside the deleted group's subtree",
                            ));
                        }
                    }
                    for c in &visible_children {
                        // Moving a subgroup is configuring it: MANAGE on its home book, too.
                        self.group_for(w.tx(), v, GroupId(*c), AccessLevel::Manage).await.map_err(|e| match e {
                            StoreError::NotFound => StoreError::forbidden("reparenting needs MANAGE on every subgroup"),
                            other => other,
                        })?;
                        reattach(&w, GroupId(*c), target).await?;
                    }
                }
                SubgroupPolicy::Delete => {
                    let visible: Vec<&group::Model> = rows.iter().filter(|r| !under_hidden(r.id)).collect();
                    if visible.iter().any(|r| levels.get(&r.address_book_id).is_none_or(|l| *l < AccessLevel::Manage)) {
                        return Err(StoreError::forbidden(
                            "deleting the subgroups needs MANAGE on every subgroup's home book",
                        ));
                    }
                    doomed = visible.into_iter().map(|r| GroupId(r.id)).collect();
                }
            }
        }
        for h in &hidden_tops {
            let p = parent_of.get(h).copied().flatten();
            // Only those hanging from a group that is deleted now (or from a visible child that
            // was just reparented, which keeps them — nothing to do then).
            if p.is_some_and(|p| doomed.iter().any(|d| d.0 == p)) {
                reattach(&w, GroupId(*h), cur.parent_id.map(GroupId)).await?;
                w.emit(
                    EventType::GroupMoved,
                    vec![Subject::new(SubjectKind::Group, *h)],
                    serde_json::json!({"fromParentId": p, "toParentId": cur.parent_id, "reason": "parent deleted"}),
                );
            }
        }
        let doomed_ids: Vec<Uuid> = doomed.iter().map(|g| g.0).collect();
        // Members being added to a doomed group right now finish first (or wait and then find no
        // group): every membership that ends here gets its LEAVE entry. A sequence being created
        // on one of them holds it too, so the check below sees it.
        w.lock_groups(&doomed_ids, crate::core::dialect::RowLock::Update).await?;
        crate::sequences::enrol::refuse_if_start_group(&w, &doomed_ids).await?;
        // End every membership with a history entry (in bounded chunks: a group may have millions
        // of members), then remove closure rows, memberships and the groups.
        let now = Utc::now();
        let mut after: Option<(Uuid, Uuid)> = None;
        loop {
            let mut q = membership::Entity::find()
                .filter(membership::Column::TenantId.eq(v.tenant_id.0))
                .filter(membership::Column::GroupId.is_in(doomed_ids.clone()));
            if let Some((g, c)) = after {
                q = q.filter(crate::core::page::after(
                    membership::Column::GroupId,
                    membership::Column::ContactId,
                    (g, c),
                ));
            }
            let chunk = q
                .order_by_asc(membership::Column::GroupId)
                .order_by_asc(membership::Column::ContactId)
                .limit(2000)
                .all(w.tx())
                .await?;
            let Some(last) = chunk.last() else { break };
            after = Some((last.group_id, last.contact_id));
            membership_event::Entity::insert_many(chunk.iter().map(|m| membership_event::ActiveModel {
                tenant_id: Set(v.tenant_id.0),
                id: Set(Uuid::now_v7()),
                group_id: Set(m.group_id),
                contact_id: Set(m.contact_id),
                action: Set("LEAVE".into()),
                source: Set(m.source.clone()),
                actor_id: Set(Some(v.user_id.0)),
                at: Set(now),
                reason: Set(Some("group deleted".into())),
                address_book_id: Set(Some(m.address_book_id)),
            }))
            .exec_without_returning(w.tx())
            .await?;
        }
        membership::Entity::delete_many()
            .filter(membership::Column::TenantId.eq(v.tenant_id.0))
            .filter(membership::Column::GroupId.is_in(doomed_ids.clone()))
            .exec(w.tx())
            .await?;
        // Enrolments that end when their contact leaves the start group's subtree (while the
        // closure still knows where the deleted groups hung).
        crate::sequences::enrol::on_groups_deleted(&w, &doomed_ids).await?;
        group_closure::Entity::delete_many()
            .filter(group_closure::Column::TenantId.eq(v.tenant_id.0))
            .filter(
                Condition::any()
                    .add(group_closure::Column::AncestorId.is_in(doomed_ids.clone()))
                    .add(group_closure::Column::DescendantId.is_in(doomed_ids.clone())),
            )
            .exec(w.tx())
            .await?;
        // External ids point at the rows without a foreign key (one column, four tables).
        let mut had = crate::external::delete_of(&w, cohort_domain::external::ExternalKind::Group, &doomed_ids).await?;
        // Each deleted group's home book, for its event (who may see the tombstone).
        let books: std::collections::HashMap<Uuid, Uuid> = group::Entity::find()
            .filter(group::Column::TenantId.eq(v.tenant_id.0))
            .filter(group::Column::Id.is_in(doomed_ids.clone()))
            .select_only()
            .column(group::Column::Id)
            .column(group::Column::AddressBookId)
            .into_tuple::<(Uuid, Uuid)>()
            .all(w.tx())
            .await?
            .into_iter()
            .collect();
        group::Entity::delete_many()
            .filter(group::Column::TenantId.eq(v.tenant_id.0))
            .filter(group::Column::Id.is_in(doomed_ids.clone()))
            .exec(w.tx())
            .await?;
        w.audit("group.delete", "Group", Some(id.0), serde_json::json!({"deleted": doomed_ids}));
        for g in &doomed_ids {
            w.emit(
                EventType::GroupDeleted,
                vec![Subject::new(SubjectKind::Group, *g)],
                serde_json::json!({"addressBookId": books.get(g), "externalIds": had.remove(g).unwrap_or_default()}),
            );
        }
        w.commit().await?;
        Ok(doomed)
    }

    /// Visible groups among `ids`.
    pub async fn groups_by_ids(&self, ids: &[GroupId]) -> StoreResult<Vec<GroupRecord>> {
        let v = self.viewer();
        if ids.is_empty() {
            return Ok(vec![]);
        }
        self.selected_groups(visible_groups(v).filter(group::Column::Id.is_in(ids.iter().map(|g| g.0)))).await
    }

    /// The groups `q` selects (a narrowing of [`visible_groups`]), with the viewer's level on each.
    pub(crate) async fn selected_groups(&self, q: sea_orm::Select<group::Entity>) -> StoreResult<Vec<GroupRecord>> {
        let v = self.viewer();
        if v.is_admin() {
            let rows = q.all(&self.db).await?;
            return Ok(rows.into_iter().map(|r| record(r, AccessLevel::Manage)).collect());
        }
        if let Some(levels) = v.grants.levels() {
            let rows = q.all(&self.db).await?;
            return Ok(rows
                .into_iter()
                .filter_map(|r| {
                    let level = *levels.get(&r.address_book_id)?;
                    Some(record(r, level))
                })
                .collect());
        }
        // The rows and the viewer's level on each home book in one statement (this lookup backs
        // `group(id)` and every group a page mentions).
        let rows: Vec<GroupWithLevel> = q
            .column_as(
                crate::core::visibility::level_on_book(v, group::Entity, group::Column::AddressBookId),
                "my_level",
            )
            .into_model()
            .all(&self.db)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            // NULL: no grant on the home book (not visible); a number this version does not know
            // is corrupt data, not "no access".
            let Some(level) = r.my_level else { continue };
            let level = crate::core::decode::access_level(level)?;
            out.push(record(
                group::Model {
                    tenant_id: r.tenant_id,
                    id: r.id,
                    address_book_id: r.address_book_id,
                    parent_id: r.parent_id,
                    name: r.name,
                    sort_name: r.sort_name,
                    description: r.description,
                    precedence: r.precedence,
                    public_name: r.public_name,
                    public_description: r.public_description,
                    created_at: r.created_at,
                    updated_at: r.updated_at,
                },
                level,
            ));
        }
        Ok(out)
    }

    /// Visible groups, by (name, id).
    pub async fn groups(&self, f: &GroupFilter, page: &PageRequest) -> StoreResult<Page<GroupRecord>> {
        let q = self.filtered_groups(f)?;
        self.page_by_name(q, page).await
    }

    /// How many visible groups the filter matches.
    pub async fn group_count(&self, f: &GroupFilter) -> StoreResult<u64> {
        Ok(self.filtered_groups(f)?.count(&self.db).await?)
    }

    /// The visible groups `f` selects, for `groups` and `group_count`.
    fn filtered_groups(&self, f: &GroupFilter) -> StoreResult<sea_orm::Select<group::Entity>> {
        let v = self.viewer();
        let mut q = visible_groups(v);
        let visible_ids = || {
            Query::select()
                .column(group::Column::Id)
                .from(group::Entity)
                .and_where(group::Column::TenantId.eq(v.tenant_id.0))
                .cond_where(book_visible(v, group::Column::AddressBookId, AccessLevel::Read))
                .to_owned()
        };
        if let Some(p) = f.parent_id {
            // The children of a parent the viewer cannot see are no one's children for them: the
            // same empty list as for an id that never existed (the visible children still list
            // under `rootsOnly`, where a hidden parent shows as none).
            q = q.filter(group::Column::ParentId.eq(p.0)).filter(group::Column::ParentId.in_subquery(visible_ids()));
        }
        if f.roots_only {
            // Roots as the viewer sees the forest: no parent, or a parent they cannot see (which
            // shows as `parent: null`).
            q = q.filter(
                Condition::any()
                    .add(group::Column::ParentId.is_null())
                    .add(group::Column::ParentId.not_in_subquery(visible_ids())),
            );
        }
        if let Some(p) = f.is_public {
            q = q.filter(if p { group::Column::PublicName.is_not_null() } else { group::Column::PublicName.is_null() });
        }
        if let Some(term) = f.search.as_deref().map(cohort_domain::text::search_prefix).transpose()?.flatten() {
            q = q.filter(
                Expr::col((group::Entity, group::Column::SortName))
                    .like(LikeExpr::new(format!("{}%", like_escape(&term))).escape('\\')),
            );
        }
        Ok(q)
    }

    /// Visible direct subgroups, by name.
    pub async fn group_children(&self, id: GroupId) -> StoreResult<Vec<GroupRecord>> {
        let v = self.viewer();
        let rows = visible_groups(v)
            .filter(group::Column::ParentId.eq(id.0))
            .order_by_asc(group::Column::SortName)
            .order_by_asc(group::Column::Id)
            .limit(1000)
            .all(&self.db)
            .await?;
        self.with_group_levels(rows).await
    }

    /// Visible ancestors, nearest first.
    pub async fn group_ancestors(&self, id: GroupId) -> StoreResult<Vec<GroupRecord>> {
        let v = self.viewer();
        let rows: Vec<(Uuid, i32)> = group_closure::Entity::find()
            .filter(group_closure::Column::TenantId.eq(v.tenant_id.0))
            .filter(group_closure::Column::DescendantId.eq(id.0))
            .filter(group_closure::Column::Depth.gt(0))
            .select_only()
            .column(group_closure::Column::AncestorId)
            .column(group_closure::Column::Depth)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut found = self.groups_by_ids(&rows.iter().map(|r| GroupId(r.0)).collect::<Vec<_>>()).await?;
        found.sort_by_key(|g| rows.iter().find(|r| r.0 == g.id.0).map(|r| r.1).unwrap_or(i32::MAX));
        Ok(found)
    }

    /// Visible descendants (not the group itself), by (name, id).
    pub async fn group_descendants(&self, id: GroupId, page: &PageRequest) -> StoreResult<Page<GroupRecord>> {
        self.page_by_name(self.visible_descendants(id), page).await
    }

    /// How many descendants of the group the viewer can see.
    pub async fn group_descendant_count(&self, id: GroupId) -> StoreResult<u64> {
        Ok(self.visible_descendants(id).count(&self.db).await?)
    }

    fn visible_descendants(&self, id: GroupId) -> sea_orm::Select<group::Entity> {
        let v = self.viewer();
        let sub = Query::select()
            .column(group_closure::Column::DescendantId)
            .from(group_closure::Entity)
            .and_where(group_closure::Column::TenantId.eq(v.tenant_id.0))
            .and_where(group_closure::Column::AncestorId.eq(id.0))
            .and_where(group_closure::Column::Depth.gt(0))
            .to_owned();
        visible_groups(v).filter(group::Column::Id.in_subquery(sub))
    }
}

/// Rewrites the closure rows of `g`'s subtree for its new parent (`None`: a root).
async fn reattach(w: &UnitOfWork, g: GroupId, new_parent: Option<GroupId>) -> StoreResult<()> {
    let v = w.viewer();
    let backend = w.dialect();
    // Detach: drop every (outside ancestor, subtree member) pair.
    let mut q = Sql::new(backend);
    q.push("DELETE FROM group_closure WHERE tenant_id = ")
        .bind(v.tenant_id.0)
        .push(" AND descendant_id IN (SELECT descendant_id FROM group_closure WHERE tenant_id = ")
        .bind(v.tenant_id.0)
        .push(" AND ancestor_id = ")
        .bind(g.0)
        .push(") AND ancestor_id NOT IN (SELECT descendant_id FROM group_closure WHERE tenant_id = ")
        .bind(v.tenant_id.0)
        .push(" AND ancestor_id = ")
        .bind(g.0)
        .push(")");
    w.tx().execute_raw(q.build()).await?;
    // Attach: every ancestor-or-self of the new parent × every subtree member.
    if let Some(p) = new_parent {
        let mut q = Sql::new(backend);
        q.push("INSERT INTO group_closure (tenant_id, ancestor_id, descendant_id, depth) SELECT a.tenant_id, a.ancestor_id, s.descendant_id, a.depth + s.depth + 1 FROM group_closure a, group_closure s WHERE a.tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND a.descendant_id = ")
            .bind(p.0)
            .push(" AND s.tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND s.ancestor_id = ")
            .bind(g.0);
        w.tx().execute_raw(q.build()).await?;
    }
    group::Entity::update_many()
        .col_expr(group::Column::ParentId, Expr::value(new_parent.map(|p| p.0)))
        .col_expr(group::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(group::Column::TenantId.eq(v.tenant_id.0))
        .filter(group::Column::Id.eq(g.0))
        .exec(w.tx())
        .await?;
    Ok(())
}
