use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "order_lines")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub order_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub line_no: i32,
    pub product_id: Uuid,
    pub sku: String,
    pub product_name: String,
    pub quantity_millis: i64,
    pub unit_price_micros: i64,
    pub line_total_minor: i64,
    pub source: String,
    pub price_list_id: Option<Uuid>,
    pub price_list_name: Option<String>,
    pub group_id: Option<Uuid>,
}

impl ActiveModelBehavior for ActiveModel {}
