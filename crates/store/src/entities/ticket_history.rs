use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ticket_history")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub ticket_id: Uuid,
    pub kind: String,
    pub from_value: Option<String>,
    pub to_value: Option<String>,
    pub severity: Option<String>,
    pub reason: Option<String>,
    pub contract_from: Option<Uuid>,
    pub contract_to: Option<Uuid>,
    pub due_first_response_before: Option<DateTimeUtc>,
    pub due_resolution_before: Option<DateTimeUtc>,
    pub due_first_response_after: Option<DateTimeUtc>,
    pub due_resolution_after: Option<DateTimeUtc>,
    pub actor_id: Option<Uuid>,
    pub at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
