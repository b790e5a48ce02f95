use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "membership_history")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub group_id: Uuid,
    pub contact_id: Uuid,
    pub action: String,
    pub source: String,
    pub actor_id: Option<Uuid>,
    pub at: DateTimeUtc,
    pub reason: Option<String>,
    /// The contact's address book (kept in step when the contact moves); NULL only for history
    /// of contacts deleted before this column existed.
    pub address_book_id: Option<Uuid>,
}

impl ActiveModelBehavior for ActiveModel {}
