use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "group_memberships")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub group_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub contact_id: Uuid,
    pub address_book_id: Uuid,
    pub sort_name: String,
    pub joined_at: DateTimeUtc,
    pub source: String,
    pub assigned_by: Option<Uuid>,
    pub consent_id: Option<Uuid>,
}

impl ActiveModelBehavior for ActiveModel {}
