//! Public groups and consent: consent texts, web forms (versioned), double opt-in requests, the
//! append-only consent log and the current consent state per (group, contact).
//!
//! - `consent_texts` are immutable: editing a wording adds the next version of its
//!   (purpose, language), each with the SHA-256 of its canonical bytes.
//! - `web_forms` carry the stable public key; their definition lives in `web_form_versions` (and
//!   the groups offered in `web_form_groups`), so a submission names the version it used.
//! - `consent_log` is append-only: triggers refuse UPDATE and DELETE on both databases. It has no
//!   foreign keys on purpose — it is the proof, and outlives the contact and the group.
//! - `consent_mails` queues confirmation mails when Cohort sends them itself (SMTP).
//! - `consent_states` is the log folded to its latest entry per (group, contact), so filtering
//!   members by consent is a join, not a scan of the history.

use crate::cols::*;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000012_consent"
    }
}

const PG_UP: &[&str] = &[
    r#"CREATE FUNCTION cohort_consent_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'consent_log is append-only' USING ERRCODE = 'restrict_violation';
END $$"#,
    "CREATE TRIGGER consent_log_append_only BEFORE UPDATE OR DELETE ON consent_log \
     FOR EACH ROW EXECUTE FUNCTION cohort_consent_log_append_only()",
    // TRUNCATE skips row triggers; refuse it too.
    "CREATE TRIGGER consent_log_no_truncate BEFORE TRUNCATE ON consent_log \
     FOR EACH STATEMENT EXECUTE FUNCTION cohort_consent_log_append_only()",
];

const PG_DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS consent_log_no_truncate ON consent_log",
    "DROP TRIGGER IF EXISTS consent_log_append_only ON consent_log",
    "DROP FUNCTION IF EXISTS cohort_consent_log_append_only()",
];

const SQLITE_UP: &[&str] = &[
    "CREATE TRIGGER consent_log_no_update BEFORE UPDATE ON consent_log \
     BEGIN SELECT RAISE(ABORT, 'consent_log is append-only'); END",
    "CREATE TRIGGER consent_log_no_delete BEFORE DELETE ON consent_log \
     BEGIN SELECT RAISE(ABORT, 'consent_log is append-only'); END",
];

const SQLITE_DOWN: &[&str] =
    &["DROP TRIGGER IF EXISTS consent_log_no_delete", "DROP TRIGGER IF EXISTS consent_log_no_update"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let backend = m.get_database_backend();
        m.create_table(
            Table::create()
                .table("consent_texts")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(ColumnDef::new("purpose").string_len(64).not_null())
                .col(ColumnDef::new("language").string_len(35).not_null())
                .col(int("version"))
                .col(ColumnDef::new("body").text().not_null())
                .col(ColumnDef::new("sha256").string_len(64).not_null())
                .col(uuid_null("created_by"))
                .col(ts("created_at"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_consent_texts_tenant")
                        .from("consent_texts", "tenant_id")
                        .to("tenants", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_consent_texts_version")
                .table("consent_texts")
                .col("tenant_id")
                .col("purpose")
                .col("language")
                .col("version")
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("web_forms")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(ColumnDef::new("public_key").string_len(64).not_null())
                .col(text("name"))
                .col(sort_key("sort_name", backend))
                .col(int("version"))
                .col(ColumnDef::new("enabled").boolean().not_null())
                .col(uuid_null("created_by"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_web_forms_tenant")
                        .from("web_forms", "tenant_id")
                        .to("tenants", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        // The public key is the only thing a website knows: unique across tenants.
        m.create_index(
            Index::create().name("ux_web_forms_key").table("web_forms").col("public_key").unique().to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_web_forms_name")
                .table("web_forms")
                .col("tenant_id")
                .col("sort_name")
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("web_form_versions")
                .col(uuid("tenant_id"))
                .col(uuid("form_id"))
                .col(int("version"))
                .col(uuid("intake_book_id"))
                .col(uuid("consent_text_id"))
                .col(ColumnDef::new("double_opt_in").boolean().not_null())
                .col(ColumnDef::new("keep_evidence").boolean().not_null())
                .col(ColumnDef::new("fields").text().not_null())
                .col(ColumnDef::new("origins").text().not_null())
                .col(text_null("title"))
                .col(text_null("submit_label"))
                .col(ColumnDef::new("success_url").text().null())
                .col(ColumnDef::new("confirmation_url").text().null())
                .col(uuid_null("created_by"))
                .col(ts("created_at"))
                .primary_key(Index::create().col("tenant_id").col("form_id").col("version"))
                .foreign_key(&mut fk_cascade(
                    "fk_web_form_versions_form",
                    "web_form_versions",
                    ("tenant_id", "form_id"),
                    "web_forms",
                ))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_web_form_versions_book")
                        .from("web_form_versions", ("tenant_id", "intake_book_id"))
                        .to("address_books", ("tenant_id", "id"))
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_web_form_versions_text")
                        .from("web_form_versions", ("tenant_id", "consent_text_id"))
                        .to("consent_texts", ("tenant_id", "id"))
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("web_form_groups")
                .col(uuid("tenant_id"))
                .col(uuid("form_id"))
                .col(int("version"))
                .col(uuid("group_id"))
                .col(int("position"))
                .primary_key(Index::create().col("tenant_id").col("form_id").col("version").col("group_id"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_web_form_groups_version")
                        .from("web_form_groups", ("tenant_id", "form_id", "version"))
                        .to("web_form_versions", ("tenant_id", "form_id", "version"))
                        .on_delete(ForeignKeyAction::Cascade),
                )
                // No foreign key to the group: a version keeps what it offered even after a group
                // is deleted (reads join the groups that still exist).
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_web_form_groups_group")
                .table("web_form_groups")
                .col("tenant_id")
                .col("group_id")
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("consent_requests")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(uuid("contact_id"))
                .col(uuid("form_id"))
                .col(int("form_version"))
                .col(ts("created_at"))
                .col(ts("expires_at"))
                .col(ts_null("confirmed_at"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut fk_cascade(
                    "fk_consent_requests_contact",
                    "consent_requests",
                    ("tenant_id", "contact_id"),
                    "contacts",
                ))
                .to_owned(),
        )
        .await?;

        // Confirmation mails to send (when Cohort delivers them itself, `COHORT_SMTP_URL`): one per
        // request, written with it, claimed by the worker like a webhook delivery.
        m.create_table(
            Table::create()
                .table("consent_mails")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(ColumnDef::new("status").string_len(16).not_null())
                .col(int("attempts"))
                .col(ts("next_attempt_at"))
                .col(ts_null("sent_at"))
                .col(ColumnDef::new("last_error").string_len(1024).null())
                .col(ts("created_at"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut fk_cascade(
                    "fk_consent_mails_request",
                    "consent_mails",
                    ("tenant_id", "id"),
                    "consent_requests",
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_consent_mails_due")
                .table("consent_mails")
                .col("status")
                .col("next_attempt_at")
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("consent_log")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(uuid("contact_id"))
                .col(uuid("group_id"))
                .col(ColumnDef::new("action").string_len(16).not_null())
                .col(ts("at"))
                .col(ColumnDef::new("channel").string_len(32).not_null())
                .col(uuid_null("form_id"))
                .col(ColumnDef::new("form_version").integer().null())
                .col(uuid_null("text_id"))
                .col(ColumnDef::new("text_sha256").string_len(64).null())
                .col(uuid_null("request_id"))
                .col(ColumnDef::new("ip").string_len(64).null())
                .col(ColumnDef::new("user_agent").string_len(512).null())
                .col(uuid_null("agent_id"))
                .col(ColumnDef::new("note").text().null())
                .primary_key(Index::create().col("tenant_id").col("id"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_consent_log_contact")
                .table("consent_log")
                .col("tenant_id")
                .col("contact_id")
                .col("id")
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("consent_states")
                .col(uuid("tenant_id"))
                .col(uuid("group_id"))
                .col(uuid("contact_id"))
                .col(ColumnDef::new("status").string_len(16).not_null())
                .col(uuid("entry_id"))
                .col(uuid_null("request_id"))
                .col(ts("updated_at"))
                .primary_key(Index::create().col("tenant_id").col("group_id").col("contact_id"))
                .foreign_key(&mut fk_cascade(
                    "fk_consent_states_group",
                    "consent_states",
                    ("tenant_id", "group_id"),
                    "contact_groups",
                ))
                .foreign_key(&mut fk_cascade(
                    "fk_consent_states_contact",
                    "consent_states",
                    ("tenant_id", "contact_id"),
                    "contacts",
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_consent_states_contact")
                .table("consent_states")
                .col("tenant_id")
                .col("contact_id")
                .to_owned(),
        )
        .await?;

        m.alter_table(
            Table::alter()
                .table("tenant_settings")
                .add_column(ColumnDef::new("public_name").string().null())
                .to_owned(),
        )
        .await?;

        let db = m.get_connection();
        for s in if backend == DbBackend::Postgres { PG_UP } else { SQLITE_UP } {
            db.execute_unprepared(s).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        for s in if m.get_database_backend() == DbBackend::Postgres { PG_DOWN } else { SQLITE_DOWN } {
            db.execute_unprepared(s).await?;
        }
        m.alter_table(Table::alter().table("tenant_settings").drop_column("public_name").to_owned()).await?;
        for t in [
            "consent_states",
            "consent_log",
            "consent_mails",
            "consent_requests",
            "web_form_groups",
            "web_form_versions",
            "web_forms",
            "consent_texts",
        ] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
