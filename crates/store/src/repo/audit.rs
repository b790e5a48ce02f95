//! The audit log: configuration changes (who, what, when). Written in the same transaction as the
//! change it records, so an audited change and its record stand or fall together.

use crate::entities::audit;
use crate::error::StoreResult;
use crate::viewer::Viewer;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};
use uuid::Uuid;

pub(crate) async fn record<C: ConnectionTrait>(
    conn: &C,
    v: &Viewer,
    action: &str,
    target_type: &str,
    target_id: Option<Uuid>,
    details: serde_json::Value,
) -> StoreResult<()> {
    audit::Entity::insert(audit::ActiveModel {
        tenant_id: Set(v.tenant_id.0),
        id: Set(Uuid::now_v7()),
        actor_id: Set(Some(v.user_id.0)),
        action: Set(action.to_owned()),
        target_type: Set(target_type.to_owned()),
        target_id: Set(target_id),
        at: Set(chrono::Utc::now()),
        details: Set(Some(details.to_string())),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}
