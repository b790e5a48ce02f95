use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sequence_step_runs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub enrolment_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub generation: i32,
    #[sea_orm(primary_key, auto_increment = false)]
    pub position: i32,
    pub version: i32,
    pub action: String,
    pub group_id: Option<Uuid>,
    pub due_at: DateTimeUtc,
    pub at: DateTimeUtc,
    pub outcome: String,
    pub detail: Option<String>,
}

impl ActiveModelBehavior for ActiveModel {}
