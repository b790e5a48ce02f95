//! The transactional outbox: one row per domain event, written by the store's unit of work in the
//! same transaction as the change it reports, so an event exists exactly when its change
//! committed. Delivery (webhooks) reads from here; admins page through it by id (UUIDv7, so id
//! order is creation order within one writer).

use crate::cols::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000006_events"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("events")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(ColumnDef::new("event_type").string_len(64).not_null())
                .col(ts("occurred_at"))
                .col(uuid_null("actor_id"))
                .col(text_null("request_id"))
                .col(ColumnDef::new("subjects").text().not_null())
                .col(int("schema_version"))
                .col(ColumnDef::new("payload").text().not_null())
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_events_tenant")
                        .from("events", "tenant_id")
                        .to("tenants", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_events_type")
                .table("events")
                .col("tenant_id")
                .col("event_type")
                .col("id")
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("events").to_owned()).await
    }
}
