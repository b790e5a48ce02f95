use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "orders")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub contact_id: Uuid,
    pub currency: String,
    pub total_minor: i64,
    pub line_count: i32,
    pub placed_at: DateTimeUtc,
    pub placed_by: Option<Uuid>,
    pub priced_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
