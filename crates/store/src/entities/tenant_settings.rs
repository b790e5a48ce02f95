use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tenant_settings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    pub default_price_list_id: Option<Uuid>,
    pub updated_at: DateTimeUtc,
    pub hide_private_subjects: bool,
    pub default_sla_contract_id: Option<Uuid>,
    pub public_name: Option<String>,
}

impl ActiveModelBehavior for ActiveModel {}
