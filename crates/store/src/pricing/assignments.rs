//! Which lists apply: per group, per contact, the tenant default.

use super::*;
use crate::access::handle::DataHandle;
use crate::access::viewer::Viewer;
use crate::core::sql::Sql;
use crate::core::visibility::book_visible;
use crate::entities::{contact, contact_price_list, group_price_list, price_list, tenant_settings};
use crate::error::{StoreError, StoreResult};
use crate::events::{EventType, Subject, SubjectKind};
use chrono::Utc;
use cohort_domain::AccessLevel;
use cohort_domain::ids::{ContactId, GroupId, PriceListId};
use cohort_domain::inherit;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter};

impl DataHandle {
    async fn list_exists(&self, txn: &DatabaseTransaction, v: &Viewer, list: PriceListId) -> StoreResult<()> {
        price_list::Entity::find()
            .filter(price_list::Column::TenantId.eq(v.tenant_id.0))
            .filter(price_list::Column::Id.eq(list.0))
            .one(txn)
            .await?
            .map(|_| ())
            .ok_or(StoreError::NotFound)
    }

    /// Assigns (or re-prioritises) a list on a group (admin).
    pub async fn assign_group_price_list(&self, g: GroupId, list: PriceListId, priority: i32) -> StoreResult<()> {
        let v = self.viewer();
        require_admin(v, "assigning price lists")?;
        let w = self.begin().await?;
        self.group_for(w.tx(), v, g, AccessLevel::Read).await?;
        self.list_exists(w.tx(), v, list).await?;
        group_price_list::Entity::insert(group_price_list::ActiveModel {
            tenant_id: Set(v.tenant_id.0),
            group_id: Set(g.0),
            price_list_id: Set(list.0),
            priority: Set(priority),
        })
        .on_conflict(
            OnConflict::columns([
                group_price_list::Column::TenantId,
                group_price_list::Column::GroupId,
                group_price_list::Column::PriceListId,
            ])
            .update_column(group_price_list::Column::Priority)
            .to_owned(),
        )
        .exec_without_returning(w.tx())
        .await?;
        w.audit(
            "group.assignPriceList",
            "Group",
            Some(g.0),
            serde_json::json!({"priceListId": list.0, "priority": priority}),
        );
        w.emit(
            EventType::PriceListAssigned,
            vec![Subject::new(SubjectKind::PriceList, list.0), Subject::new(SubjectKind::Group, g.0)],
            serde_json::json!({"priority": priority}),
        );
        w.commit().await?;
        Ok(())
    }

    pub async fn unassign_group_price_list(&self, g: GroupId, list: PriceListId) -> StoreResult<bool> {
        let v = self.viewer();
        require_admin(v, "assigning price lists")?;
        let w = self.begin().await?;
        self.group_for(w.tx(), v, g, AccessLevel::Read).await?;
        let r = group_price_list::Entity::delete_many()
            .filter(group_price_list::Column::TenantId.eq(v.tenant_id.0))
            .filter(group_price_list::Column::GroupId.eq(g.0))
            .filter(group_price_list::Column::PriceListId.eq(list.0))
            .exec(w.tx())
            .await?;
        // Nothing was assigned, nothing changed: nothing to audit or report.
        if r.rows_affected > 0 {
            w.audit("group.unassignPriceList", "Group", Some(g.0), serde_json::json!({"priceListId": list.0}));
            w.emit(
                EventType::PriceListUnassigned,
                vec![Subject::new(SubjectKind::PriceList, list.0), Subject::new(SubjectKind::Group, g.0)],
                serde_json::json!({}),
            );
        }
        w.commit().await?;
        Ok(r.rows_affected > 0)
    }

    pub async fn assign_contact_price_list(&self, c: ContactId, list: PriceListId, priority: i32) -> StoreResult<()> {
        let v = self.viewer();
        require_admin(v, "assigning price lists")?;
        let w = self.begin().await?;
        self.contact_visible(w.tx(), v, c).await?;
        self.list_exists(w.tx(), v, list).await?;
        contact_price_list::Entity::insert(contact_price_list::ActiveModel {
            tenant_id: Set(v.tenant_id.0),
            contact_id: Set(c.0),
            price_list_id: Set(list.0),
            priority: Set(priority),
        })
        .on_conflict(
            OnConflict::columns([
                contact_price_list::Column::TenantId,
                contact_price_list::Column::ContactId,
                contact_price_list::Column::PriceListId,
            ])
            .update_column(contact_price_list::Column::Priority)
            .to_owned(),
        )
        .exec_without_returning(w.tx())
        .await?;
        w.audit(
            "contact.assignPriceList",
            "Contact",
            Some(c.0),
            serde_json::json!({"priceListId": list.0, "priority": priority}),
        );
        w.emit(
            EventType::PriceListAssigned,
            vec![Subject::new(SubjectKind::PriceList, list.0), Subject::new(SubjectKind::Contact, c.0)],
            serde_json::json!({"priority": priority}),
        );
        w.commit().await?;
        Ok(())
    }

    pub async fn unassign_contact_price_list(&self, c: ContactId, list: PriceListId) -> StoreResult<bool> {
        let v = self.viewer();
        require_admin(v, "assigning price lists")?;
        let w = self.begin().await?;
        self.contact_visible(w.tx(), v, c).await?;
        let r = contact_price_list::Entity::delete_many()
            .filter(contact_price_list::Column::TenantId.eq(v.tenant_id.0))
            .filter(contact_price_list::Column::ContactId.eq(c.0))
            .filter(contact_price_list::Column::PriceListId.eq(list.0))
            .exec(w.tx())
            .await?;
        if r.rows_affected > 0 {
            w.audit("contact.unassignPriceList", "Contact", Some(c.0), serde_json::json!({"priceListId": list.0}));
            w.emit(
                EventType::PriceListUnassigned,
                vec![Subject::new(SubjectKind::PriceList, list.0), Subject::new(SubjectKind::Contact, c.0)],
                serde_json::json!({}),
            );
        }
        w.commit().await?;
        Ok(r.rows_affected > 0)
    }

    /// Sets (or clears) the tenant's default price list (admin).
    pub async fn set_default_price_list(&self, list: Option<PriceListId>) -> StoreResult<()> {
        let v = self.viewer();
        require_admin(v, "assigning price lists")?;
        let w = self.begin().await?;
        if let Some(l) = list {
            self.list_exists(w.tx(), v, l).await?;
        }
        tenant_settings::Entity::insert(tenant_settings::ActiveModel {
            tenant_id: Set(v.tenant_id.0),
            default_price_list_id: Set(list.map(|l| l.0)),
            updated_at: Set(Utc::now()),
            ..Default::default()
        })
        .on_conflict(
            OnConflict::column(tenant_settings::Column::TenantId)
                .update_columns([tenant_settings::Column::DefaultPriceListId, tenant_settings::Column::UpdatedAt])
                .to_owned(),
        )
        .exec_without_returning(w.tx())
        .await?;
        w.audit(
            "tenant.setDefaultPriceList",
            "Tenant",
            Some(v.tenant_id.0),
            serde_json::json!({"priceListId": list.map(|l| l.0)}),
        );
        w.emit(
            EventType::DefaultPriceListSet,
            list.map(|l| Subject::new(SubjectKind::PriceList, l.0)).into_iter().collect(),
            serde_json::json!({"priceListId": list.map(|l| l.0)}),
        );
        w.commit().await?;
        Ok(())
    }

    pub(crate) async fn contact_visible<C: ConnectionTrait>(
        &self,
        conn: &C,
        v: &Viewer,
        c: ContactId,
    ) -> StoreResult<contact::Model> {
        contact::Entity::find()
            .filter(contact::Column::TenantId.eq(v.tenant_id.0))
            .filter(contact::Column::Id.eq(c.0))
            .filter(book_visible(v, contact::Column::AddressBookId, AccessLevel::Read))
            .one(conn)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// A visible group's own lists by priority (`effective = false`), or the lists it applies —
    /// its own, else the nearest ancestor's (`effective = true`). Names only for non-admins.
    pub async fn group_price_lists(&self, g: GroupId, effective: bool) -> StoreResult<Vec<ListAssignmentRecord>> {
        let v = self.viewer();
        if self.groups_by_ids(&[g]).await?.is_empty() {
            return Err(StoreError::NotFound);
        }
        let mut q = Sql::new(v.dialect);
        q.push("SELECT cl.depth, a.group_id, a.price_list_id, a.priority, l.tenant_id, l.id, l.name, l.sort_name, l.currency, l.valid_from, l.valid_to, l.base_price_list_id, l.created_at, l.updated_at FROM group_closure cl JOIN group_price_lists a ON a.tenant_id = cl.tenant_id AND a.group_id = cl.ancestor_id JOIN price_lists l ON l.tenant_id = a.tenant_id AND l.id = a.price_list_id WHERE cl.tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND cl.descendant_id = ")
            .bind(g.0);
        if !effective {
            q.push(" AND cl.depth = 0");
        }
        q.push(" ORDER BY cl.depth, a.priority, a.price_list_id");
        let rows = self.db.query_all_raw(q.build()).await?;
        let mut found = Vec::with_capacity(rows.len());
        for r in rows {
            use sea_orm::FromQueryResult;
            found.push(inherit::Found {
                defined_on: GroupId(r.try_get("", "group_id")?),
                depth: r.try_get("", "depth")?,
                value: (list_record(price_list::Model::from_query_result(&r, "")?)?, r.try_get::<i32>("", "priority")?),
            });
        }
        Ok(inherit::effective(found)
            .map(|e| {
                let from = e.from;
                e.values
                    .into_iter()
                    .map(|(price_list, priority)| ListAssignmentRecord { price_list, priority, defined_on: from })
                    .collect()
            })
            .unwrap_or_default())
    }
}
