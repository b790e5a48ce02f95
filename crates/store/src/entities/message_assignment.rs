use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "message_assignments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub message_id: Uuid,
    pub kind: String,
    pub worker_id: Option<Uuid>,
    pub user_group_id: Option<Uuid>,
    pub processing_area_id: Uuid,
    pub note: Option<String>,
    pub actor_id: Option<Uuid>,
    pub at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
