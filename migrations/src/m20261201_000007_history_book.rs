//! Membership history rows carry the contact's address book, like membership rows do, so a
//! history page can be chosen on an index of visible books: the work a viewer's page costs then
//! grows with what they may see, not with the history of contacts hidden from them (DESIGN §1: no
//! timings that scale with hidden rows). Kept in step when a contact moves (the store updates
//! both, in the move's transaction).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000007_history_book"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("membership_history")
                .add_column(ColumnDef::new("address_book_id").uuid().null())
                .to_owned(),
        )
        .await?;
        // Backfill from the contacts; history of contacts that no longer exist keeps NULL (it is
        // never shown: a history entry is visible only with its contact).
        m.get_connection()
            .execute_unprepared(
                "UPDATE membership_history SET address_book_id = (SELECT c.address_book_id FROM contacts c \
                 WHERE c.tenant_id = membership_history.tenant_id AND c.id = membership_history.contact_id)",
            )
            .await?;
        m.create_index(
            Index::create()
                .name("ix_history_group_book")
                .table("membership_history")
                .col("tenant_id")
                .col("group_id")
                .col("address_book_id")
                .col("id")
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_history_contact_book")
                .table("membership_history")
                .col("tenant_id")
                .col("contact_id")
                .col("address_book_id")
                .col("id")
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("ix_history_contact_book").table("membership_history").to_owned()).await?;
        m.drop_index(Index::drop().name("ix_history_group_book").table("membership_history").to_owned()).await?;
        m.alter_table(Table::alter().table("membership_history").drop_column("address_book_id").to_owned()).await
    }
}
