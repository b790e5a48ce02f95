use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "membership_history")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub group_id: Uuid,
    pub contact_id: Uuid,
    pub action: String,
    pub source: String,
    pub actor_id: Option<Uuid>,
    pub at: DateTimeUtc,
    pub reason: Option<String>,
}

impl ActiveModelBehavior for ActiveModel {}
