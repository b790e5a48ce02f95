//! The audit log becomes a record one can rely on:
//! - `request_id` ties an entry to the request (and to its log lines and outbox events);
//! - `actor_kind` says who acted: `user` (a verified token), `system` (CLI, workers, seeding) or
//!   `public` (a signed link or form key) — an actor id alone cannot tell them apart;
//! - `ix_audit_log_page` serves the newest-first keyset pages `(tenant_id, at DESC, id DESC)`;
//!   the foundation's `(tenant_id, at)` index stays for range scans by time;
//! - like `consent_log`, the table is append-only: triggers refuse UPDATE and DELETE on both
//!   databases (and TRUNCATE on PostgreSQL). Erasure does not touch it, which is why entries hold
//!   ids, keys and configuration values only, never personal data.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261203_000013_audit"
    }
}

const PG_UP: &[&str] = &[
    r#"CREATE FUNCTION cohort_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'restrict_violation';
END $$"#,
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log \
     FOR EACH ROW EXECUTE FUNCTION cohort_audit_log_append_only()",
    // TRUNCATE skips row triggers; refuse it too.
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log \
     FOR EACH STATEMENT EXECUTE FUNCTION cohort_audit_log_append_only()",
];

const PG_DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log",
    "DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log",
    "DROP FUNCTION IF EXISTS cohort_audit_log_append_only()",
];

const SQLITE_UP: &[&str] = &[
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log \
     BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log \
     BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
];

const SQLITE_DOWN: &[&str] =
    &["DROP TRIGGER IF EXISTS audit_log_no_delete", "DROP TRIGGER IF EXISTS audit_log_no_update"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        m.alter_table(
            Table::alter().table("audit_log").add_column(ColumnDef::new("request_id").text().null()).to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table("audit_log")
                .add_column(ColumnDef::new("actor_kind").string_len(16).not_null().default("user"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_audit_log_page")
                .table("audit_log")
                .col("tenant_id")
                .col(("at", IndexOrder::Desc))
                .col(("id", IndexOrder::Desc))
                .to_owned(),
        )
        .await?;
        let db = m.get_connection();
        for s in if m.get_database_backend() == DbBackend::Postgres { PG_UP } else { SQLITE_UP } {
            db.execute_unprepared(s).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        for s in if m.get_database_backend() == DbBackend::Postgres { PG_DOWN } else { SQLITE_DOWN } {
            db.execute_unprepared(s).await?;
        }
        m.drop_index(Index::drop().name("ix_audit_log_page").table("audit_log").to_owned()).await?;
        m.alter_table(Table::alter().table("audit_log").drop_column("actor_kind").to_owned()).await?;
        m.alter_table(Table::alter().table("audit_log").drop_column("request_id").to_owned()).await?;
        Ok(())
    }
}
