//! Queues (processing areas) and process areas: admin configuration that every member of the
//! tenant may read (they name where work goes, not contact data).

use super::*;
use crate::access::handle::DataHandle;
use crate::audit::Changes;
use crate::core::uow::UnitOfWork;
use crate::entities::{process_area, processing_area, tenant_settings, user, user_group, user_group_member};
use crate::events::{EventType, Subject, SubjectKind};
use cohort_domain::text::{Key, Name, optional_text};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder,
};
use uuid::Uuid;

/// Process-area keys: `helpdesk`, `sales`, `billing-dach`, …
pub const MAX_AREA_KEY_CHARS: usize = 64;
/// The process area a message or ticket goes to when none is named.
pub const DEFAULT_PROCESS_AREA: &str = "helpdesk";

pub(crate) fn queue_record(m: processing_area::Model) -> ProcessingAreaRecord {
    ProcessingAreaRecord {
        id: ProcessingAreaId(m.id),
        name: m.name,
        description: m.description,
        user_group: m.user_group_id.map(UserGroupId),
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}

pub(crate) fn area_record(m: process_area::Model) -> ProcessAreaRecord {
    ProcessAreaRecord {
        id: ProcessAreaId(m.id),
        key: m.key,
        name: m.name,
        default_processing_area: ProcessingAreaId(m.default_processing_area_id),
        default_worker: m.default_worker_id.map(UserId),
        default_user_group: m.default_user_group_id.map(UserGroupId),
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}

/// A process-area key: lower-case letters, digits, `-` and `_`, 1 to 64 characters.
pub(crate) fn parse_area_key(raw: &str) -> StoreResult<String> {
    let k = Key::parse("key", raw, MAX_AREA_KEY_CHARS)?.into_string();
    if !k.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_') {
        return Err(StoreError::invalid("key", "use lower-case letters, digits, '-' and '_'"));
    }
    Ok(k)
}

/// Patch of a queue.
#[derive(Debug, Clone, Default)]
pub struct ProcessingAreaPatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub user_group: Option<Option<UserGroupId>>,
}

/// A new process area.
#[derive(Debug, Clone)]
pub struct ProcessAreaInput {
    pub key: String,
    pub name: String,
    pub default_processing_area: ProcessingAreaId,
    pub default_worker: Option<UserId>,
    pub default_user_group: Option<UserGroupId>,
}

/// Patch of a process area (the key never changes: integrations name it).
#[derive(Debug, Clone, Default)]
pub struct ProcessAreaPatch {
    pub name: Option<String>,
    pub default_processing_area: Option<ProcessingAreaId>,
    pub default_worker: Option<Option<UserId>>,
    pub default_user_group: Option<Option<UserGroupId>>,
}

impl UnitOfWork {
    /// The user exists in this tenant (`NotFound` otherwise: another tenant's id is no id here).
    pub(crate) async fn require_user(&self, u: UserId) -> StoreResult<()> {
        let n = user::Entity::find()
            .filter(user::Column::TenantId.eq(self.viewer().tenant_id.0))
            .filter(user::Column::Id.eq(u.0))
            .count(self.tx())
            .await?;
        if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    pub(crate) async fn require_user_group(&self, g: UserGroupId) -> StoreResult<()> {
        let n = user_group::Entity::find()
            .filter(user_group::Column::TenantId.eq(self.viewer().tenant_id.0))
            .filter(user_group::Column::Id.eq(g.0))
            .count(self.tx())
            .await?;
        if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    pub(crate) async fn queue(&self, q: ProcessingAreaId) -> StoreResult<processing_area::Model> {
        processing_area::Entity::find()
            .filter(processing_area::Column::TenantId.eq(self.viewer().tenant_id.0))
            .filter(processing_area::Column::Id.eq(q.0))
            .one(self.tx())
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Checks a (worker, queue) pair a configuration names together: a queue restricted to a
    /// user group can only be given a worker who is a member of that group (otherwise the worker
    /// could not read the messages assigned to them). `field` names the offending input.
    pub(crate) async fn check_worker_fits_queue(
        &self,
        worker: Option<UserId>,
        queue: Option<&processing_area::Model>,
        field: &'static str,
    ) -> StoreResult<()> {
        let (Some(w), Some(restricted_to)) = (worker, queue.and_then(|q| q.user_group_id)) else {
            return Ok(());
        };
        let n = user_group_member::Entity::find()
            .filter(user_group_member::Column::TenantId.eq(self.viewer().tenant_id.0))
            .filter(user_group_member::Column::UserGroupId.eq(restricted_to))
            .filter(user_group_member::Column::UserId.eq(w.0))
            .count(self.tx())
            .await?;
        if n == 0 {
            return Err(StoreError::invalid(
                field,
                "the worker is not a member of the user group the queue is restricted to",
            ));
        }
        Ok(())
    }
}

impl DataHandle {
    /// Creates a queue (admin).
    pub async fn create_processing_area(
        &self,
        name: &str,
        description: Option<&str>,
        user_group: Option<UserGroupId>,
    ) -> StoreResult<ProcessingAreaRecord> {
        let v = self.viewer();
        require_admin(v, "configuring queues")?;
        let name = Name::parse("name", name)?.into_string();
        let description = optional_text("description", description)?;
        let w = self.begin().await?;
        if let Some(g) = user_group {
            w.require_user_group(g).await?;
        }
        let now = Utc::now();
        let m = processing_area::Model {
            tenant_id: v.tenant_id.0,
            id: Uuid::now_v7(),
            name,
            description,
            user_group_id: user_group.map(|g| g.0),
            created_at: now,
            updated_at: now,
        };
        processing_area::Entity::insert(processing_area::ActiveModel::from(m.clone()))
            .exec_without_returning(w.tx())
            .await
            .map_err(|e| StoreError::unique_as_conflict(e, "a queue with this name already exists"))?;
        w.audit("processingArea.create", "ProcessingArea", Some(m.id), serde_json::json!({"name": m.name}));
        w.emit(
            EventType::ProcessingAreaCreated,
            vec![Subject::new(SubjectKind::ProcessingArea, m.id)],
            serde_json::json!({}),
        );
        w.commit().await?;
        Ok(queue_record(m))
    }

    pub async fn update_processing_area(
        &self,
        id: ProcessingAreaId,
        patch: &ProcessingAreaPatch,
    ) -> StoreResult<ProcessingAreaRecord> {
        let v = self.viewer();
        require_admin(v, "configuring queues")?;
        let name = patch.name.as_deref().map(|n| Name::parse("name", n).map(Name::into_string)).transpose()?;
        let description = patch.description.as_ref().map(|d| optional_text("description", d.as_deref())).transpose()?;
        let w = self.begin().await?;
        let mut m = w.queue(id).await?;
        let old = m.clone();
        // The names of the changed fields, for the event (which carries names only).
        let mut changed = vec![];
        if let Some(n) = name.filter(|n| *n != m.name) {
            m.name = n;
            changed.push("name");
        }
        if let Some(d) = description.filter(|d| *d != m.description) {
            m.description = d;
            changed.push("description");
        }
        if let Some(g) = patch.user_group.filter(|g| g.map(|g| g.0) != m.user_group_id) {
            if let Some(g) = g {
                w.require_user_group(g).await?;
            }
            m.user_group_id = g.map(|g| g.0);
            changed.push("userGroup");
        }
        if !changed.is_empty() {
            m.updated_at = Utc::now();
            processing_area::Entity::update(processing_area::ActiveModel::from(m.clone()).reset_all())
                .exec(w.tx())
                .await
                .map_err(|e| StoreError::unique_as_conflict(e, "a queue with this name already exists"))?;
            // Queue configuration only (names, ids): no personal data. Keyed like the event's names.
            let mut changes = Changes::new();
            changes.field("name", &old.name, &m.name);
            changes.field("description", &old.description, &m.description);
            changes.field("userGroup", old.user_group_id, m.user_group_id);
            w.audit("processingArea.update", "ProcessingArea", Some(m.id), changes.details(serde_json::json!({})));
            w.emit(
                EventType::ProcessingAreaUpdated,
                vec![Subject::new(SubjectKind::ProcessingArea, m.id)],
                serde_json::json!({"changed": changed}),
            );
        }
        w.commit().await?;
        Ok(queue_record(m))
    }

    /// Every queue of the tenant, by name.
    pub async fn processing_areas(&self) -> StoreResult<Vec<ProcessingAreaRecord>> {
        let v = self.viewer();
        Ok(processing_area::Entity::find()
            .filter(processing_area::Column::TenantId.eq(v.tenant_id.0))
            .order_by_asc(processing_area::Column::Name)
            .order_by_asc(processing_area::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(queue_record)
            .collect())
    }

    pub async fn processing_areas_by_ids(&self, ids: &[ProcessingAreaId]) -> StoreResult<Vec<ProcessingAreaRecord>> {
        let v = self.viewer();
        if ids.is_empty() {
            return Ok(vec![]);
        }
        Ok(processing_area::Entity::find()
            .filter(processing_area::Column::TenantId.eq(v.tenant_id.0))
            .filter(processing_area::Column::Id.is_in(ids.iter().map(|i| i.0)))
            .all(&self.db)
            .await?
            .into_iter()
            .map(queue_record)
            .collect())
    }

    /// Creates a process area (admin). Its default worker must be able to work its default
    /// queue (see [`UnitOfWork::check_worker_fits_queue`]).
    pub async fn create_process_area(&self, input: &ProcessAreaInput) -> StoreResult<ProcessAreaRecord> {
        let v = self.viewer();
        require_admin(v, "configuring process areas")?;
        let key = parse_area_key(&input.key)?;
        let name = Name::parse("name", &input.name)?.into_string();
        let w = self.begin().await?;
        let queue = w.queue(input.default_processing_area).await?;
        if let Some(u) = input.default_worker {
            w.require_user(u).await?;
        }
        if let Some(g) = input.default_user_group {
            w.require_user_group(g).await?;
        }
        w.check_worker_fits_queue(input.default_worker, Some(&queue), "defaultWorkerId").await?;
        let now = Utc::now();
        let m = process_area::Model {
            tenant_id: v.tenant_id.0,
            id: Uuid::now_v7(),
            key,
            name,
            default_processing_area_id: queue.id,
            default_worker_id: input.default_worker.map(|u| u.0),
            default_user_group_id: input.default_user_group.map(|g| g.0),
            created_at: now,
            updated_at: now,
        };
        process_area::Entity::insert(process_area::ActiveModel::from(m.clone()))
            .exec_without_returning(w.tx())
            .await
            .map_err(|e| StoreError::unique_as_conflict(e, "a process area with this key already exists"))?;
        w.audit("processArea.create", "ProcessArea", Some(m.id), serde_json::json!({"key": m.key}));
        w.emit(
            EventType::ProcessAreaCreated,
            vec![Subject::new(SubjectKind::ProcessArea, m.id)],
            serde_json::json!({"key": m.key}),
        );
        w.commit().await?;
        Ok(area_record(m))
    }

    pub async fn update_process_area(
        &self,
        id: ProcessAreaId,
        patch: &ProcessAreaPatch,
    ) -> StoreResult<ProcessAreaRecord> {
        let v = self.viewer();
        require_admin(v, "configuring process areas")?;
        let name = patch.name.as_deref().map(|n| Name::parse("name", n).map(Name::into_string)).transpose()?;
        let w = self.begin().await?;
        let mut m = process_area::Entity::find()
            .filter(process_area::Column::TenantId.eq(v.tenant_id.0))
            .filter(process_area::Column::Id.eq(id.0))
            .one(w.tx())
            .await?
            .ok_or(StoreError::NotFound)?;
        let old = m.clone();
        // The names of the changed fields, for the event (which carries names only).
        let mut changed = vec![];
        if let Some(n) = name.filter(|n| *n != m.name) {
            m.name = n;
            changed.push("name");
        }
        if let Some(q) = patch.default_processing_area.filter(|q| q.0 != m.default_processing_area_id) {
            m.default_processing_area_id = w.queue(q).await?.id;
            changed.push("defaultProcessingArea");
        }
        if let Some(u) = patch.default_worker.filter(|u| u.map(|u| u.0) != m.default_worker_id) {
            if let Some(u) = u {
                w.require_user(u).await?;
            }
            m.default_worker_id = u.map(|u| u.0);
            changed.push("defaultWorker");
        }
        if let Some(g) = patch.default_user_group.filter(|g| g.map(|g| g.0) != m.default_user_group_id) {
            if let Some(g) = g {
                w.require_user_group(g).await?;
            }
            m.default_user_group_id = g.map(|g| g.0);
            changed.push("defaultUserGroup");
        }
        let queue = w.queue(ProcessingAreaId(m.default_processing_area_id)).await?;
        w.check_worker_fits_queue(m.default_worker_id.map(UserId), Some(&queue), "defaultWorkerId").await?;
        if !changed.is_empty() {
            m.updated_at = Utc::now();
            process_area::Entity::update(process_area::ActiveModel::from(m.clone()).reset_all()).exec(w.tx()).await?;
            // Configuration only: names and ids (a default worker is named by user id, never by
            // anything personal). Keyed like the event's names.
            let mut changes = Changes::new();
            changes
                .field("name", &old.name, &m.name)
                .field("defaultProcessingArea", old.default_processing_area_id, m.default_processing_area_id)
                .field("defaultWorker", old.default_worker_id, m.default_worker_id)
                .field("defaultUserGroup", old.default_user_group_id, m.default_user_group_id);
            w.audit("processArea.update", "ProcessArea", Some(m.id), changes.details(serde_json::json!({})));
            w.emit(
                EventType::ProcessAreaUpdated,
                vec![Subject::new(SubjectKind::ProcessArea, m.id)],
                serde_json::json!({"changed": changed}),
            );
        }
        w.commit().await?;
        Ok(area_record(m))
    }

    /// Every process area of the tenant, by key.
    pub async fn process_areas(&self) -> StoreResult<Vec<ProcessAreaRecord>> {
        let v = self.viewer();
        Ok(process_area::Entity::find()
            .filter(process_area::Column::TenantId.eq(v.tenant_id.0))
            .order_by_asc(process_area::Column::Key)
            .all(&self.db)
            .await?
            .into_iter()
            .map(area_record)
            .collect())
    }

    pub async fn process_areas_by_ids(&self, ids: &[ProcessAreaId]) -> StoreResult<Vec<ProcessAreaRecord>> {
        let v = self.viewer();
        if ids.is_empty() {
            return Ok(vec![]);
        }
        Ok(process_area::Entity::find()
            .filter(process_area::Column::TenantId.eq(v.tenant_id.0))
            .filter(process_area::Column::Id.is_in(ids.iter().map(|i| i.0)))
            .all(&self.db)
            .await?
            .into_iter()
            .map(area_record)
            .collect())
    }

    /// Whether private messages hide their subject from everyone but the recipient (as they
    /// always hide their body).
    pub async fn hide_private_subjects(&self) -> StoreResult<bool> {
        let v = self.viewer();
        Ok(tenant_settings::Entity::find()
            .filter(tenant_settings::Column::TenantId.eq(v.tenant_id.0))
            .one(&self.db)
            .await?
            .is_some_and(|s| s.hide_private_subjects))
    }

    /// Sets [`DataHandle::hide_private_subjects`] (admin).
    pub async fn set_hide_private_subjects(&self, hide: bool) -> StoreResult<()> {
        let v = self.viewer();
        require_admin(v, "configuring messages")?;
        let w = self.begin().await?;
        let before = tenant_settings::Entity::find()
            .filter(tenant_settings::Column::TenantId.eq(v.tenant_id.0))
            .one(w.tx())
            .await?
            .is_some_and(|s| s.hide_private_subjects);
        tenant_settings::Entity::insert(tenant_settings::ActiveModel {
            tenant_id: Set(v.tenant_id.0),
            default_price_list_id: Set(None),
            updated_at: Set(Utc::now()),
            hide_private_subjects: Set(hide),
            ..Default::default()
        })
        .on_conflict(
            OnConflict::column(tenant_settings::Column::TenantId)
                .update_columns([tenant_settings::Column::HidePrivateSubjects, tenant_settings::Column::UpdatedAt])
                .to_owned(),
        )
        .exec_without_returning(w.tx())
        .await?;
        if before != hide {
            w.audit("tenant.setHidePrivateSubjects", "Tenant", Some(v.tenant_id.0), serde_json::json!({"hide": hide}));
        }
        w.commit().await?;
        Ok(())
    }

    /// The process area with `key` (`BAD_USER_INPUT` on `processArea` when there is none).
    pub(crate) async fn area_by_key<C: ConnectionTrait>(
        &self,
        conn: &C,
        key: &str,
    ) -> StoreResult<process_area::Model> {
        let v = self.viewer();
        let unknown = || StoreError::invalid("processArea", "no process area has this key");
        let key = parse_area_key(key).map_err(|_| unknown())?;
        process_area::Entity::find()
            .filter(process_area::Column::TenantId.eq(v.tenant_id.0))
            .filter(process_area::Column::Key.eq(key))
            .one(conn)
            .await?
            .ok_or_else(unknown)
    }
}
