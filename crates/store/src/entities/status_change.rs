use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "contact_status_history")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub contact_id: Uuid,
    pub from_status_id: Option<Uuid>,
    pub to_status_id: Option<Uuid>,
    pub changed_by: Option<Uuid>,
    pub changed_at: DateTimeUtc,
    pub note: Option<String>,
}

impl ActiveModelBehavior for ActiveModel {}
