use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub event_type: String,
    pub occurred_at: DateTimeUtc,
    pub actor_id: Option<Uuid>,
    pub request_id: Option<String>,
    /// JSON array of `{"type": "Contact", "id": "<uuid>"}`.
    pub subjects: String,
    pub schema_version: i32,
    /// A small JSON object: ids and counts, never contact fields.
    pub payload: String,
    /// When the webhook worker fanned it out into deliveries (`None`: not yet).
    pub dispatched_at: Option<DateTimeUtc>,
}

impl ActiveModelBehavior for ActiveModel {}
