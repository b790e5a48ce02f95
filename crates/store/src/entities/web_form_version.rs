use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "web_form_versions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub form_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub version: i32,
    pub intake_book_id: Uuid,
    pub consent_text_id: Uuid,
    pub double_opt_in: bool,
    pub keep_evidence: bool,
    pub fields: String,
    pub origins: String,
    pub title: Option<String>,
    pub submit_label: Option<String>,
    pub success_url: Option<String>,
    pub confirmation_url: Option<String>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
