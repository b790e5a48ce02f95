use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "price_items")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub price_list_id: Uuid,
    pub product_id: Uuid,
    pub min_quantity_millis: i64,
    pub fixed_price_micros: Option<i64>,
    pub discount_percent_micros: Option<i64>,
    pub valid_from: Option<DateTimeUtc>,
    pub valid_to: Option<DateTimeUtc>,
}

impl ActiveModelBehavior for ActiveModel {}
