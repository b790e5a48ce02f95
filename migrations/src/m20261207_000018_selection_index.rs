//! Issue 16, W3 and W6.
//!
//! A selection (`contacts(filter: {groups: …})`) is driven by the visible members of its smallest
//! group: one range of `(group, book)` per visible book. With the contact id in that index the
//! driver reads only the index (no membership row is fetched to learn its contact), and the page
//! can be chosen among the driver's ids before any contact row is read.
//!
//! `membership_history` had two indexes by contact, `(contact, id)` and `(contact, book, id)`. A
//! contact's history is short, every query of it also filters by book, and `(contact, book, id)`
//! serves all of them (history page, count, export, erasure, a contact's move): the other one only
//! cost an index insert per history row, 10,000 of them when a bulk change touches 10,000 members.
//!
//! SQLite plans by the statistics `ANALYZE` left in `sqlite_stat1`. A new index without them next
//! to analysed ones looks cheaper than it is: on dataset M the members page (W1) went from 490
//! requests a second to 21, planned on the new index and sorted. Where the database has
//! statistics, the table is analysed again (seconds, once).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000018_selection_index"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .name("ix_memberships_book_contact")
                .table("group_memberships")
                .col("tenant_id")
                .col("group_id")
                .col("address_book_id")
                .col("contact_id")
                .to_owned(),
        )
        .await?;
        // Every use of the old index is a prefix of the new one.
        m.drop_index(Index::drop().name("ix_memberships_book").table("group_memberships").to_owned()).await?;
        m.drop_index(Index::drop().name("ix_history_contact").table("membership_history").to_owned()).await?;
        reanalyse_on_sqlite(m, "group_memberships").await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .name("ix_history_contact")
                .table("membership_history")
                .col("tenant_id")
                .col("contact_id")
                .col("id")
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_memberships_book")
                .table("group_memberships")
                .col("tenant_id")
                .col("group_id")
                .col("address_book_id")
                .to_owned(),
        )
        .await?;
        m.drop_index(Index::drop().name("ix_memberships_book_contact").table("group_memberships").to_owned()).await?;
        reanalyse_on_sqlite(m, "group_memberships").await
    }
}

/// `ANALYZE table` on SQLite where `ANALYZE` has run before (nothing to keep complete otherwise).
async fn reanalyse_on_sqlite(m: &SchemaManager<'_>, table: &'static str) -> Result<(), DbErr> {
    if m.get_database_backend() != sea_orm::DatabaseBackend::Sqlite {
        return Ok(());
    }
    let db = m.get_connection();
    let analysed = db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Sqlite,
            "SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'",
        ))
        .await?
        .is_some();
    if analysed {
        db.execute_unprepared(&format!("ANALYZE {table}")).await?;
    }
    Ok(())
}
