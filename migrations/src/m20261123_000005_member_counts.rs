//! Member counts per (group, address book), kept by the database itself.
//!
//! `memberCount` / `totalCount` of a group counts only the members the viewer may see, i.e. the
//! membership rows whose (denormalised) book the viewer can read. Counting those rows costs time
//! proportional to the group's size (10,000 index entries for the benchmark's group 1 on every
//! members page). With one counter row per (group, book) the same answer is a sum over at most
//! as many rows as the viewer has books.
//!
//! The counters are maintained by triggers, not by the store, so that every path that changes
//! memberships — bulk adds and removes, a contact moving to another book, cascading deletes of
//! contacts and groups — keeps them exact without having to remember to. PostgreSQL uses
//! statement-level triggers over transition tables (one grouped upsert per statement, however many
//! rows it touched); SQLite, which has only row-level triggers, updates one counter per row (cheap
//! in-process). A counter that reaches zero is deleted, so a deleted group leaves nothing behind.
//! Counters are upserted in key order, so two transactions touching the same group's counters
//! take their row locks in the same order and cannot deadlock on them.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261123_000005_member_counts"
    }
}

const PG_UP: &[&str] = &[
    r#"CREATE FUNCTION cohort_member_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO group_member_counts (tenant_id, group_id, address_book_id, member_count)
      SELECT tenant_id, group_id, address_book_id, COUNT(*) FROM new_rows GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
      ON CONFLICT (tenant_id, group_id, address_book_id)
      DO UPDATE SET member_count = group_member_counts.member_count + EXCLUDED.member_count;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO group_member_counts (tenant_id, group_id, address_book_id, member_count)
      SELECT tenant_id, group_id, address_book_id, -COUNT(*) FROM old_rows GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
      ON CONFLICT (tenant_id, group_id, address_book_id)
      DO UPDATE SET member_count = group_member_counts.member_count + EXCLUDED.member_count;
    DELETE FROM group_member_counts c USING (SELECT DISTINCT tenant_id, group_id FROM old_rows) d
      WHERE c.tenant_id = d.tenant_id AND c.group_id = d.group_id AND c.member_count <= 0;
  ELSE
    INSERT INTO group_member_counts (tenant_id, group_id, address_book_id, member_count)
      SELECT tenant_id, group_id, address_book_id, SUM(delta) FROM (
        SELECT tenant_id, group_id, address_book_id, -1 AS delta FROM old_rows
        UNION ALL
        SELECT tenant_id, group_id, address_book_id, 1 AS delta FROM new_rows
      ) x GROUP BY 1, 2, 3 HAVING SUM(delta) <> 0 ORDER BY 1, 2, 3
      ON CONFLICT (tenant_id, group_id, address_book_id)
      DO UPDATE SET member_count = group_member_counts.member_count + EXCLUDED.member_count;
    DELETE FROM group_member_counts c USING (SELECT DISTINCT tenant_id, group_id FROM old_rows) d
      WHERE c.tenant_id = d.tenant_id AND c.group_id = d.group_id AND c.member_count <= 0;
  END IF;
  RETURN NULL;
END $$"#,
    "CREATE TRIGGER group_member_counts_ins AFTER INSERT ON group_memberships \
     REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cohort_member_counts_apply()",
    "CREATE TRIGGER group_member_counts_del AFTER DELETE ON group_memberships \
     REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cohort_member_counts_apply()",
    "CREATE TRIGGER group_member_counts_upd AFTER UPDATE ON group_memberships \
     REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cohort_member_counts_apply()",
];

const PG_DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS group_member_counts_upd ON group_memberships",
    "DROP TRIGGER IF EXISTS group_member_counts_del ON group_memberships",
    "DROP TRIGGER IF EXISTS group_member_counts_ins ON group_memberships",
    "DROP FUNCTION IF EXISTS cohort_member_counts_apply()",
];

const SQLITE_UP: &[&str] = &[
    "CREATE TRIGGER group_member_counts_ins AFTER INSERT ON group_memberships BEGIN \
       INSERT INTO group_member_counts (tenant_id, group_id, address_book_id, member_count) \
         VALUES (NEW.tenant_id, NEW.group_id, NEW.address_book_id, 1) \
         ON CONFLICT (tenant_id, group_id, address_book_id) DO UPDATE SET member_count = member_count + 1; \
     END",
    "CREATE TRIGGER group_member_counts_del AFTER DELETE ON group_memberships BEGIN \
       UPDATE group_member_counts SET member_count = member_count - 1 \
         WHERE tenant_id = OLD.tenant_id AND group_id = OLD.group_id AND address_book_id = OLD.address_book_id; \
       DELETE FROM group_member_counts \
         WHERE tenant_id = OLD.tenant_id AND group_id = OLD.group_id AND address_book_id = OLD.address_book_id \
           AND member_count <= 0; \
     END",
    "CREATE TRIGGER group_member_counts_upd AFTER UPDATE OF address_book_id ON group_memberships \
       WHEN OLD.address_book_id IS NOT NEW.address_book_id BEGIN \
       UPDATE group_member_counts SET member_count = member_count - 1 \
         WHERE tenant_id = OLD.tenant_id AND group_id = OLD.group_id AND address_book_id = OLD.address_book_id; \
       DELETE FROM group_member_counts \
         WHERE tenant_id = OLD.tenant_id AND group_id = OLD.group_id AND address_book_id = OLD.address_book_id \
           AND member_count <= 0; \
       INSERT INTO group_member_counts (tenant_id, group_id, address_book_id, member_count) \
         VALUES (NEW.tenant_id, NEW.group_id, NEW.address_book_id, 1) \
         ON CONFLICT (tenant_id, group_id, address_book_id) DO UPDATE SET member_count = member_count + 1; \
     END",
];

const SQLITE_DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS group_member_counts_upd",
    "DROP TRIGGER IF EXISTS group_member_counts_del",
    "DROP TRIGGER IF EXISTS group_member_counts_ins",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("group_member_counts")
                .col(ColumnDef::new("tenant_id").uuid().not_null())
                .col(ColumnDef::new("group_id").uuid().not_null())
                .col(ColumnDef::new("address_book_id").uuid().not_null())
                .col(ColumnDef::new("member_count").big_integer().not_null())
                .primary_key(Index::create().col("tenant_id").col("group_id").col("address_book_id"))
                .to_owned(),
        )
        .await?;
        let db = m.get_connection();
        // Existing memberships, counted once.
        db.execute_unprepared(
            "INSERT INTO group_member_counts (tenant_id, group_id, address_book_id, member_count) \
             SELECT tenant_id, group_id, address_book_id, COUNT(*) FROM group_memberships GROUP BY tenant_id, group_id, address_book_id",
        )
        .await?;
        let statements = match m.get_database_backend() {
            DbBackend::Postgres => PG_UP,
            _ => SQLITE_UP,
        };
        for s in statements {
            db.execute_unprepared(s).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let statements = match m.get_database_backend() {
            DbBackend::Postgres => PG_DOWN,
            _ => SQLITE_DOWN,
        };
        let db = m.get_connection();
        for s in statements {
            db.execute_unprepared(s).await?;
        }
        m.drop_table(Table::drop().table("group_member_counts").to_owned()).await?;
        Ok(())
    }
}
