//! The per-tenant business-status classification list.

use crate::access::handle::DataHandle;
use crate::entities::business_status;
use crate::error::StoreResult;
use cohort_domain::ids::BusinessStatusId;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessStatusRecord {
    pub id: BusinessStatusId,
    pub key: String,
    pub label: String,
    pub category: String,
    pub position: i32,
}

impl From<business_status::Model> for BusinessStatusRecord {
    fn from(m: business_status::Model) -> Self {
        BusinessStatusRecord {
            id: BusinessStatusId(m.id),
            key: m.key,
            label: m.label,
            category: m.category,
            position: m.position,
        }
    }
}

impl DataHandle {
    /// The tenant's classification list, in display order. Not secret: every worker needs it.
    pub async fn business_statuses(&self) -> StoreResult<Vec<BusinessStatusRecord>> {
        let v = self.viewer();
        Ok(business_status::Entity::find()
            .filter(business_status::Column::TenantId.eq(v.tenant_id.0))
            .order_by_asc(business_status::Column::Position)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }
}
