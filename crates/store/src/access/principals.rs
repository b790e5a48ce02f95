//! Tenants, users and user groups. Tenants and users come into existence just in time, on the
//! first authenticated request; an admin can also pre-create a user so routing can name them.

use crate::Store;
use crate::access::handle::DataHandle;
use crate::access::viewer::{GrantSnapshot, Identity, KnownViewer, Viewer};
use crate::core::dialect::RowLock;
use crate::core::page::{Page, PageRequest};
use crate::core::sql::Sql;
use crate::core::uow::{LockedTable, UnitOfWork};
use crate::entities::{business_status, tenant, user, user_group, user_group_member};
use crate::error::{StoreError, StoreResult};
use crate::events::{EventType, Subject, SubjectKind};
use chrono::{DateTime, Utc};
use cohort_domain::ids::{TenantId, UserGroupId, UserId};
use cohort_domain::status::SEEDED_STATUSES;
use cohort_domain::text::{Email, Lines, Name, check_chars, optional_text};
use sea_orm::FromQueryResult;
use sea_orm::TransactionTrait;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use std::collections::HashSet;
use std::sync::Arc;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: UserId,
    pub subject: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: Option<DateTime<Utc>>,
}

impl From<user::Model> for UserRecord {
    fn from(m: user::Model) -> Self {
        UserRecord {
            id: UserId(m.id),
            subject: m.subject,
            name: m.name,
            email: m.email,
            created_at: m.created_at,
            last_seen_at: m.last_seen_at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserGroupRecord {
    pub id: UserGroupId,
    pub name: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<user_group::Model> for UserGroupRecord {
    fn from(m: user_group::Model) -> Self {
        UserGroupRecord { id: UserGroupId(m.id), name: m.name, description: m.description, created_at: m.created_at }
    }
}

#[derive(Debug, sea_orm::FromQueryResult)]
struct UserWithGrant {
    tenant_id: Uuid,
    user_id: Uuid,
    name: Option<String>,
    email: Option<String>,
    last_seen_at: Option<DateTime<Utc>>,
    book: Option<Uuid>,
    level: Option<i16>,
}

fn require_admin(v: &Viewer) -> StoreResult<()> {
    if v.is_admin() { Ok(()) } else { Err(StoreError::forbidden("this operation needs the admin role")) }
}

/// Validates a token subject / tenant key: 1 to 200 printable characters.
fn check_key(field: &'static str, s: &str) -> StoreResult<()> {
    if s.is_empty() || s.len() > 200 || check_chars(field, s, Lines::Single).is_err() {
        return Err(StoreError::invalid(field, "must be 1 to 200 printable characters"));
    }
    Ok(())
}

pub(crate) async fn ensure_tenant<C: ConnectionTrait>(conn: &C, key: &str) -> StoreResult<TenantId> {
    if let Some(t) = tenant::Entity::find().filter(tenant::Column::Key.eq(key)).one(conn).await? {
        return Ok(TenantId(t.id));
    }
    let id = Uuid::now_v7();
    let inserted = tenant::Entity::insert(tenant::ActiveModel {
        id: Set(id),
        key: Set(key.to_owned()),
        name: Set(key.to_owned()),
        created_at: Set(Utc::now()),
    })
    .on_conflict(OnConflict::column(tenant::Column::Key).do_nothing().to_owned())
    .exec_without_returning(conn)
    .await?;
    let t = tenant::Entity::find().filter(tenant::Column::Key.eq(key)).one(conn).await?.ok_or(StoreError::NotFound)?;
    if inserted == 1 {
        seed_statuses(conn, TenantId(t.id)).await?;
    }
    Ok(TenantId(t.id))
}

async fn seed_statuses<C: ConnectionTrait>(conn: &C, t: TenantId) -> StoreResult<()> {
    let rows = SEEDED_STATUSES.iter().enumerate().map(|(i, (key, label, cat))| business_status::ActiveModel {
        tenant_id: Set(t.0),
        id: Set(Uuid::now_v7()),
        key: Set((*key).to_owned()),
        label: Set((*label).to_owned()),
        category: Set((*cat).to_owned()),
        position: Set(i as i32),
    });
    business_status::Entity::insert_many(rows).exec_without_returning(conn).await?;
    Ok(())
}

pub(crate) async fn ensure_user<C: ConnectionTrait>(
    conn: &C,
    t: TenantId,
    subject: &str,
    name: Option<&str>,
    email: Option<&str>,
) -> StoreResult<user::Model> {
    let find = || user::Entity::find().filter(user::Column::TenantId.eq(t.0)).filter(user::Column::Subject.eq(subject));
    if let Some(u) = find().one(conn).await? {
        return Ok(u);
    }
    user::Entity::insert(user::ActiveModel {
        tenant_id: Set(t.0),
        id: Set(Uuid::now_v7()),
        subject: Set(subject.to_owned()),
        name: Set(name.map(str::to_owned)),
        email: Set(email.map(str::to_owned)),
        created_at: Set(Utc::now()),
        last_seen_at: Set(None),
    })
    .on_conflict(OnConflict::columns([user::Column::TenantId, user::Column::Subject]).do_nothing().to_owned())
    .exec_without_returning(conn)
    .await?;
    find().one(conn).await?.ok_or(StoreError::NotFound)
}

impl Store {
    /// Resolves a verified identity to a viewer, creating its tenant (with the seeded status list)
    /// and its user just in time. The common case — both exist — is a single indexed lookup.
    /// Only the [`crate::Gate`] calls this (after verifying the token).
    pub(crate) async fn resolve_viewer(&self, id: &Identity) -> StoreResult<Viewer> {
        check_key("tid", &id.tenant_key)?;
        check_key("sub", &id.subject)?;
        let admin = id.roles.is_admin();
        if let Some(known) = self.viewers.get(id) {
            // Seen within the last minute: no statement of its own. The grants are read inside
            // each statement of the request instead (the same snapshot as the data they filter),
            // so a revoked grant takes effect at once.
            return Ok(Viewer {
                tenant_id: known.tenant_id,
                tenant_key: id.tenant_key.clone(),
                user_id: known.user_id,
                subject: id.subject.clone(),
                roles: id.roles.clone(),
                name: id.name.clone().or(known.name),
                email: id.email.clone().or(known.email),
                grants: Arc::new(if admin {
                    GrantSnapshot::NotNeeded
                } else {
                    GrantSnapshot::InStatement(Default::default())
                }),
                dialect: self.dialect(),
            });
        }
        let mut rows = self.user_with_grants(id, !admin).await?;
        if rows.is_empty() {
            // Just-in-time provisioning is the gate's own write, before any viewer exists (so
            // not a unit of work of one): tenant and user rows only, no tenant data.
            let txn = self.db.begin_with_options(crate::core::uow::immediate()).await?;
            let t = ensure_tenant(&txn, &id.tenant_key).await?;
            ensure_user(&txn, t, &id.subject, id.name.as_deref(), id.email.as_deref()).await?;
            txn.commit().await?;
            // Rare (first request of a user); an admin may have pre-created the user and granted
            // them access already, so read again rather than assume no grants.
            rows = self.user_with_grants(id, !admin).await?;
        }
        let Some(first) = rows.first() else { return Err(StoreError::NotFound) };
        let (tenant_id, user_id, name, email, last_seen) =
            (first.tenant_id, first.user_id, first.name.clone(), first.email.clone(), first.last_seen_at);
        let grants = if admin {
            GrantSnapshot::NotNeeded
        } else {
            let mut grants = Vec::with_capacity(rows.len());
            for r in &rows {
                // The user's own row has no book; every grant row has both.
                if let (Some(book), Some(level)) = (r.book, r.level) {
                    grants.push((book, crate::core::decode::access_level(level)?));
                }
            }
            GrantSnapshot::from_rows(grants, self.max_inline_grants)
        };
        // Keep the profile fresh from the token, but write at most every few minutes per user.
        let stale = last_seen.is_none_or(|t| Utc::now() - t > chrono::Duration::minutes(5));
        let changed = (id.name.is_some() && id.name != name) || (id.email.is_some() && id.email != email);
        if stale || changed {
            let mut am = user::ActiveModel {
                tenant_id: sea_orm::ActiveValue::Unchanged(tenant_id),
                id: sea_orm::ActiveValue::Unchanged(user_id),
                last_seen_at: Set(Some(Utc::now())),
                ..Default::default()
            };
            if id.name.is_some() {
                am.name = Set(id.name.clone());
            }
            if id.email.is_some() {
                am.email = Set(id.email.clone());
            }
            user::Entity::update(am).exec(&self.db).await?;
        }
        self.viewers.put(
            id,
            KnownViewer {
                tenant_id: TenantId(tenant_id),
                user_id: UserId(user_id),
                name: id.name.clone().or(name.clone()),
                email: id.email.clone().or(email.clone()),
            },
        );
        Ok(Viewer {
            tenant_id: TenantId(tenant_id),
            tenant_key: id.tenant_key.clone(),
            user_id: UserId(user_id),
            subject: id.subject.clone(),
            roles: id.roles.clone(),
            name: id.name.clone().or(name),
            email: id.email.clone().or(email),
            grants: Arc::new(grants),
            dialect: self.dialect(),
        })
    }

    /// The user named by the identity (a row with NULL book) and, when `with_grants`, one more row
    /// per grant that applies to them (direct or through a user group), in one statement.
    async fn user_with_grants(&self, id: &Identity, with_grants: bool) -> StoreResult<Vec<UserWithGrant>> {
        // Three index lookups glued by UNION ALL (the user; their direct grants; their user
        // groups' grants) rather than one join with an OR, which PostgreSQL can only answer by
        // scanning the tenant's grants.
        const USER: &str = "SELECT u.tenant_id, u.id AS user_id, u.name, u.email, u.last_seen_at";
        let mut q = Sql::new(self.dialect());
        q.push(USER)
            .push(", NULL AS book, NULL AS level FROM tenants t JOIN users u ON u.tenant_id = t.id WHERE t.key = ")
            .bind(id.tenant_key.as_str())
            .push(" AND u.subject = ")
            .bind(id.subject.as_str());
        if with_grants {
            q.push(" UNION ALL ")
                .push(USER)
                .push(", g.address_book_id, g.level FROM tenants t JOIN users u ON u.tenant_id = t.id JOIN address_book_grants g ON g.tenant_id = u.tenant_id AND g.principal_kind = 'USER' AND g.principal_id = u.id WHERE t.key = ")
                .bind(id.tenant_key.as_str())
                .push(" AND u.subject = ")
                .bind(id.subject.as_str())
                .push(" UNION ALL ")
                .push(USER)
                .push(", g.address_book_id, g.level FROM tenants t JOIN users u ON u.tenant_id = t.id JOIN user_group_members ugm ON ugm.tenant_id = u.tenant_id AND ugm.user_id = u.id JOIN address_book_grants g ON g.tenant_id = u.tenant_id AND g.principal_kind = 'GROUP' AND g.principal_id = ugm.user_group_id WHERE t.key = ")
                .bind(id.tenant_key.as_str())
                .push(" AND u.subject = ")
                .bind(id.subject.as_str());
        }
        let rows = self.db.query_all_raw(q.build()).await?;
        rows.iter().map(|r| UserWithGrant::from_query_result(r, "").map_err(StoreError::Database)).collect()
    }
}

impl DataHandle {
    /// Pre-creates a user (admin), so grants and routing can name them before their first login.
    pub async fn create_user(&self, subject: &str, name: Option<&str>, email: Option<&str>) -> StoreResult<UserRecord> {
        let v = self.viewer();
        require_admin(v)?;
        check_key("subject", subject.trim())?;
        let name = name.map(|n| Name::parse("name", n)).transpose()?;
        let email = email.map(Email::parse).transpose()?;
        let w = self.begin().await?;
        let exists = user::Entity::find()
            .filter(user::Column::TenantId.eq(v.tenant_id.0))
            .filter(user::Column::Subject.eq(subject.trim()))
            .one(w.tx())
            .await?;
        if exists.is_some() {
            return Err(StoreError::Conflict("a user with this subject already exists".into()));
        }
        let u = ensure_user(
            w.tx(),
            v.tenant_id,
            subject.trim(),
            name.as_ref().map(Name::as_str),
            email.as_ref().map(Email::as_str),
        )
        .await?;
        w.audit("user.create", "User", Some(u.id), serde_json::json!({"subject": u.subject}));
        w.emit(EventType::UserCreated, vec![Subject::new(SubjectKind::User, u.id)], serde_json::json!({}));
        w.commit().await?;
        Ok(u.into())
    }

    /// Users of the viewer's tenant by id. Any member of the tenant may see who its workers are
    /// (names appear as `assignedBy`, grant holders, …); ids of other tenants are simply absent.
    pub async fn users_by_ids(&self, ids: &[UserId]) -> StoreResult<Vec<UserRecord>> {
        let v = self.viewer();
        if ids.is_empty() {
            return Ok(vec![]);
        }
        Ok(user::Entity::find()
            .filter(user::Column::TenantId.eq(v.tenant_id.0))
            .filter(user::Column::Id.is_in(ids.iter().map(|i| i.0)))
            .all(&self.db)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// All users of the tenant, by subject (admin).
    pub async fn users(&self, page: &PageRequest) -> StoreResult<Page<UserRecord>> {
        let v = self.viewer();
        require_admin(v)?;
        let mut q = user::Entity::find().filter(user::Column::TenantId.eq(v.tenant_id.0));
        if let Some((subject, id)) = page.after_key::<(String, Uuid)>()? {
            q = q.filter(crate::core::page::after(user::Column::Subject, user::Column::Id, (subject, id)));
        }
        let rows = q
            .order_by_asc(user::Column::Subject)
            .order_by_asc(user::Column::Id)
            .limit(page.limit())
            .all(&self.db)
            .await?;
        Ok(Page::from_rows(rows.into_iter().map(UserRecord::from).collect(), page, |u| (u.subject.clone(), u.id.0)))
    }

    /// How many users the tenant has (admin).
    pub async fn user_count(&self) -> StoreResult<u64> {
        let v = self.viewer();
        require_admin(v)?;
        Ok(user::Entity::find().filter(user::Column::TenantId.eq(v.tenant_id.0)).count(&self.db).await?)
    }

    pub async fn create_user_group(&self, name: &str, description: Option<&str>) -> StoreResult<UserGroupRecord> {
        let v = self.viewer();
        require_admin(v)?;
        let name = Name::parse("name", name)?;
        let description = optional_text("description", description)?;
        let w = self.begin().await?;
        let m = user_group::Model {
            tenant_id: v.tenant_id.0,
            id: Uuid::now_v7(),
            name: name.into_string(),
            description,
            created_at: Utc::now(),
        };
        user_group::Entity::insert(user_group::ActiveModel {
            tenant_id: Set(m.tenant_id),
            id: Set(m.id),
            name: Set(m.name.clone()),
            description: Set(m.description.clone()),
            created_at: Set(m.created_at),
        })
        .exec_without_returning(w.tx())
        .await
        .map_err(|e| StoreError::unique_as_conflict(e, "a user group with this name already exists"))?;
        w.audit("userGroup.create", "UserGroup", Some(m.id), serde_json::json!({"name": m.name}));
        w.emit(EventType::UserGroupCreated, vec![Subject::new(SubjectKind::UserGroup, m.id)], serde_json::json!({}));
        w.commit().await?;
        Ok(m.into())
    }

    /// User groups by id: admins see all; others see the groups they belong to.
    pub async fn user_groups_by_ids(&self, ids: &[UserGroupId]) -> StoreResult<Vec<UserGroupRecord>> {
        let v = self.viewer();
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let mut q = user_group::Entity::find()
            .filter(user_group::Column::TenantId.eq(v.tenant_id.0))
            .filter(user_group::Column::Id.is_in(ids.iter().map(|i| i.0)));
        if !v.is_admin() {
            q = q.filter(user_group::Column::Id.in_subquery(my_groups_query(v)));
        }
        Ok(q.all(&self.db).await?.into_iter().map(Into::into).collect())
    }

    /// The user groups the viewer can see: all of them for admins, their own for others.
    fn visible_user_groups(&self) -> sea_orm::Select<user_group::Entity> {
        let v = self.viewer();
        let q = user_group::Entity::find().filter(user_group::Column::TenantId.eq(v.tenant_id.0));
        if v.is_admin() { q } else { q.filter(user_group::Column::Id.in_subquery(my_groups_query(v))) }
    }

    /// User groups by name: admins see all, others the groups they belong to.
    pub async fn user_groups(&self, page: &PageRequest) -> StoreResult<Page<UserGroupRecord>> {
        let mut q = self.visible_user_groups();
        if let Some((name, id)) = page.after_key::<(String, Uuid)>()? {
            q = q.filter(crate::core::page::after(user_group::Column::Name, user_group::Column::Id, (name, id)));
        }
        let rows = q
            .order_by_asc(user_group::Column::Name)
            .order_by_asc(user_group::Column::Id)
            .limit(page.limit())
            .all(&self.db)
            .await?;
        Ok(Page::from_rows(rows.into_iter().map(UserGroupRecord::from).collect(), page, |g| (g.name.clone(), g.id.0)))
    }

    /// How many user groups `user_groups` lists for the viewer.
    pub async fn user_group_count(&self) -> StoreResult<u64> {
        Ok(self.visible_user_groups().count(&self.db).await?)
    }

    /// The user groups the viewer belongs to, by name.
    pub async fn my_user_groups(&self) -> StoreResult<Vec<UserGroupRecord>> {
        let v = self.viewer();
        Ok(user_group::Entity::find()
            .filter(user_group::Column::TenantId.eq(v.tenant_id.0))
            .filter(user_group::Column::Id.in_subquery(my_groups_query(v)))
            .order_by_asc(user_group::Column::Name)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Members of a user group (admin), by subject.
    pub async fn user_group_members(&self, group: UserGroupId) -> StoreResult<Vec<UserRecord>> {
        let v = self.viewer();
        require_admin(v)?;
        Ok(user::Entity::find()
            .filter(user::Column::TenantId.eq(v.tenant_id.0))
            .filter(
                user::Column::Id.in_subquery(
                    sea_orm::sea_query::Query::select()
                        .column(user_group_member::Column::UserId)
                        .from(user_group_member::Entity)
                        .and_where(user_group_member::Column::TenantId.eq(v.tenant_id.0))
                        .and_where(user_group_member::Column::UserGroupId.eq(group.0))
                        .to_owned(),
                ),
            )
            .order_by_asc(user::Column::Subject)
            .limit(1000)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Adds users to a user group (admin). All ids must name users of the tenant, or nothing is
    /// written. Returns how many memberships were new.
    pub async fn add_user_group_members(&self, group: UserGroupId, users: &[UserId]) -> StoreResult<u64> {
        let v = self.viewer();
        require_admin(v)?;
        if users.len() > 1000 {
            return Err(StoreError::invalid("userIds", "at most 1000 users per call"));
        }
        let w = self.begin().await?;
        self.check_user_group(w.tx(), v, group).await?;
        let mut ids: Vec<Uuid> = users.iter().map(|u| u.0).collect();
        ids.sort();
        ids.dedup();
        let known: Vec<Uuid> = user::Entity::find()
            .filter(user::Column::TenantId.eq(v.tenant_id.0))
            .filter(user::Column::Id.is_in(ids.clone()))
            .select_only()
            .column(user::Column::Id)
            .into_tuple()
            .all(w.tx())
            .await?;
        if known.len() != ids.len() {
            return Err(StoreError::NotFound);
        }
        if ids.is_empty() {
            return Ok(0);
        }
        // The members already there, read under the group's lock, so the audit entry and the
        // event name exactly the users this call added (concurrent calls queue on PostgreSQL).
        w.lock_row(LockedTable::UserGroups, group.0, RowLock::NoKeyUpdate).await?;
        let existing: HashSet<Uuid> = self.user_group_member_ids(&w, group, &ids).await?;
        let new: Vec<Uuid> = ids.iter().copied().filter(|u| !existing.contains(u)).collect();
        let now = Utc::now();
        if !new.is_empty() {
            user_group_member::Entity::insert_many(new.iter().map(|u| user_group_member::ActiveModel {
                tenant_id: Set(v.tenant_id.0),
                user_group_id: Set(group.0),
                user_id: Set(*u),
                created_at: Set(now),
            }))
            .exec_without_returning(w.tx())
            .await?;
            w.audit("userGroup.addMembers", "UserGroup", Some(group.0), serde_json::json!({"userIds": new}));
            w.emit(
                EventType::UserGroupMembersAdded,
                vec![Subject::new(SubjectKind::UserGroup, group.0)],
                serde_json::json!({"userIds": new}),
            );
        }
        let added = new.len() as u64;
        w.commit().await?;
        Ok(added)
    }

    /// Removes users from a user group (admin). Returns how many memberships ended.
    pub async fn remove_user_group_members(&self, group: UserGroupId, users: &[UserId]) -> StoreResult<u64> {
        let v = self.viewer();
        require_admin(v)?;
        if users.len() > 1000 {
            return Err(StoreError::invalid("userIds", "at most 1000 users per call"));
        }
        let w = self.begin().await?;
        self.check_user_group(w.tx(), v, group).await?;
        w.lock_row(LockedTable::UserGroups, group.0, RowLock::NoKeyUpdate).await?;
        let wanted: Vec<Uuid> = users.iter().map(|u| u.0).collect();
        let mut leaving: Vec<Uuid> = self.user_group_member_ids(&w, group, &wanted).await?.into_iter().collect();
        leaving.sort();
        if !leaving.is_empty() {
            user_group_member::Entity::delete_many()
                .filter(user_group_member::Column::TenantId.eq(v.tenant_id.0))
                .filter(user_group_member::Column::UserGroupId.eq(group.0))
                .filter(user_group_member::Column::UserId.is_in(leaving.clone()))
                .exec(w.tx())
                .await?;
            w.audit("userGroup.removeMembers", "UserGroup", Some(group.0), serde_json::json!({"userIds": leaving}));
            w.emit(
                EventType::UserGroupMembersRemoved,
                vec![Subject::new(SubjectKind::UserGroup, group.0)],
                serde_json::json!({"userIds": leaving}),
            );
        }
        w.commit().await?;
        Ok(leaving.len() as u64)
    }

    /// Which of `users` are members of `group` (inside the unit of work).
    async fn user_group_member_ids(
        &self,
        w: &UnitOfWork,
        group: UserGroupId,
        users: &[Uuid],
    ) -> StoreResult<HashSet<Uuid>> {
        Ok(user_group_member::Entity::find()
            .filter(user_group_member::Column::TenantId.eq(w.viewer().tenant_id.0))
            .filter(user_group_member::Column::UserGroupId.eq(group.0))
            .filter(user_group_member::Column::UserId.is_in(users.iter().copied()))
            .select_only()
            .column(user_group_member::Column::UserId)
            .into_tuple::<Uuid>()
            .all(w.tx())
            .await?
            .into_iter()
            .collect())
    }

    async fn check_user_group<C: ConnectionTrait>(&self, conn: &C, v: &Viewer, group: UserGroupId) -> StoreResult<()> {
        user_group::Entity::find()
            .filter(user_group::Column::TenantId.eq(v.tenant_id.0))
            .filter(user_group::Column::Id.eq(group.0))
            .one(conn)
            .await?
            .map(|_| ())
            .ok_or(StoreError::NotFound)
    }
}

pub(crate) fn my_groups_query(v: &Viewer) -> sea_orm::sea_query::SelectStatement {
    sea_orm::sea_query::Query::select()
        .column(user_group_member::Column::UserGroupId)
        .from(user_group_member::Entity)
        .and_where(user_group_member::Column::TenantId.eq(v.tenant_id.0))
        .and_where(user_group_member::Column::UserId.eq(v.user_id.0))
        .to_owned()
}
