use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub process_area_id: Uuid,
    pub contact_id: Option<Uuid>,
    pub sender_email: Option<String>,
    pub channel: String,
    pub subject: String,
    pub body: String,
    pub is_private: bool,
    pub recipient_id: Option<Uuid>,
    pub received_at: DateTimeUtc,
    pub external_id: Option<String>,
    pub created_by: Uuid,
    pub worker_id: Option<Uuid>,
    pub user_group_id: Option<Uuid>,
    pub processing_area_id: Uuid,
    pub deciding_group_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
    /// The contact's address book (kept in step when the contact moves).
    pub address_book_id: Option<Uuid>,
}

impl ActiveModelBehavior for ActiveModel {}
