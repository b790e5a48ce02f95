use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "consent_requests")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub contact_id: Uuid,
    pub form_id: Uuid,
    pub form_version: i32,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub confirmed_at: Option<DateTimeUtc>,
}

impl ActiveModelBehavior for ActiveModel {}
