use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "address_book_grants")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub address_book_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub principal_kind: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub principal_id: Uuid,
    pub level: i16,
    pub granted_at: DateTimeUtc,
    pub granted_by: Option<Uuid>,
}

impl ActiveModelBehavior for ActiveModel {}
