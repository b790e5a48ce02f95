use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tickets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub contact_id: Uuid,
    pub process_area_id: Uuid,
    pub subject: String,
    pub description: Option<String>,
    pub channel: String,
    pub status: String,
    pub severity: Option<String>,
    pub opened_at: DateTimeUtc,
    pub first_responded_at: Option<DateTimeUtc>,
    pub resolved_at: Option<DateTimeUtc>,
    pub worker_id: Option<Uuid>,
    pub user_group_id: Option<Uuid>,
    pub processing_area_id: Uuid,
    pub deciding_group_id: Option<Uuid>,
    pub sla_contract_id: Option<Uuid>,
    pub sla_source: String,
    pub sla_group_id: Option<Uuid>,
    pub sla_snapshot: Option<String>,
    pub sla_choice: Option<String>,
    pub due_first_response_at: Option<DateTimeUtc>,
    pub due_resolution_at: Option<DateTimeUtc>,
    pub resolution_breached: bool,
    pub next_due_at: DateTimeUtc,
    pub last_event_at: DateTimeUtc,
    pub created_by: Uuid,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub first_response_breach_emitted: bool,
    pub resolution_breach_emitted: bool,
    /// The contact's address book (kept in step when the contact moves).
    pub address_book_id: Option<Uuid>,
}

impl ActiveModelBehavior for ActiveModel {}
