use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "consent_log")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub contact_id: Uuid,
    pub group_id: Uuid,
    pub action: String,
    pub at: DateTimeUtc,
    pub channel: String,
    pub form_id: Option<Uuid>,
    pub form_version: Option<i32>,
    pub text_id: Option<Uuid>,
    pub text_sha256: Option<String>,
    pub request_id: Option<Uuid>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub agent_id: Option<Uuid>,
    pub note: Option<String>,
}

impl ActiveModelBehavior for ActiveModel {}
