use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sequence_enrolments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub sequence_id: Uuid,
    pub contact_id: Uuid,
    pub address_book_id: Uuid,
    pub group_id: Uuid,
    pub version: i32,
    pub generation: i32,
    pub status: String,
    pub next_step: i32,
    pub next_due_at: DateTimeUtc,
    pub chain: String,
    pub source: String,
    pub enrolled_at: DateTimeUtc,
    pub ended_at: Option<DateTimeUtc>,
    pub end_reason: Option<String>,
    pub updated_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
