//! Webhooks (DESIGN §3, Standard Webhooks): endpoints with their signing secrets, one delivery
//! per (endpoint, event) with its retry state, and every attempt. Events get `dispatched_at`: the
//! worker fans undispatched events out into deliveries (claiming them with `FOR UPDATE SKIP
//! LOCKED` on PostgreSQL), so an event committed out of id order is never skipped.

use crate::cols::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000010_webhooks"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("events")
                .add_column(ColumnDef::new("dispatched_at").timestamp_with_time_zone().null())
                .to_owned(),
        )
        .await?;
        // Events from before webhooks existed have nobody to go to.
        m.get_connection().execute_unprepared("UPDATE events SET dispatched_at = occurred_at").await?;
        m.create_index(
            Index::create()
                .name("ix_events_dispatch")
                .table("events")
                .col("dispatched_at")
                .col("occurred_at")
                .to_owned(),
        )
        .await?;

        // The contact's address book on its messages and tickets (kept in step when a contact
        // moves, like membership rows): the reading rule then filters the rows themselves, and a
        // queue's count is an index scan instead of a join with every contact.
        for t in ["messages", "tickets"] {
            m.alter_table(
                Table::alter().table(t).add_column(ColumnDef::new("address_book_id").uuid().null()).to_owned(),
            )
            .await?;
        }
        m.get_connection()
            .execute_unprepared(
                "UPDATE messages SET address_book_id = (SELECT c.address_book_id FROM contacts c WHERE c.tenant_id = messages.tenant_id AND c.id = messages.contact_id)",
            )
            .await?;
        m.get_connection()
            .execute_unprepared(
                "UPDATE tickets SET address_book_id = (SELECT c.address_book_id FROM contacts c WHERE c.tenant_id = tickets.tenant_id AND c.id = tickets.contact_id)",
            )
            .await?;
        m.create_index(
            Index::create()
                .name("ix_messages_queue_book")
                .table("messages")
                .col("tenant_id")
                .col("processing_area_id")
                .col("address_book_id")
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_tickets_book_due")
                .table("tickets")
                .col("tenant_id")
                .col("address_book_id")
                .col("next_due_at")
                .to_owned(),
        )
        .await?;

        // Time-driven facts the worker emits once per ticket and target (`ticket.sla_breached`).
        for col in ["first_response_breach_emitted", "resolution_breach_emitted"] {
            m.alter_table(
                Table::alter()
                    .table("tickets")
                    .add_column(ColumnDef::new(col).boolean().not_null().default(false))
                    .to_owned(),
            )
            .await?;
        }
        m.create_index(
            Index::create()
                .name("ix_tickets_breach_scan")
                .table("tickets")
                .col("resolution_breach_emitted")
                .col("next_due_at")
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("webhook_endpoints")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(text("url"))
                .col(text_null("description"))
                .col(ColumnDef::new("event_types").text().not_null())
                .col(ColumnDef::new("enabled").boolean().not_null())
                .col(text("secret"))
                .col(text_null("previous_secret"))
                .col(ts_null("previous_secret_until"))
                .col(ts_null("failing_since"))
                .col(ts_null("disabled_at"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_webhooks_tenant")
                        .from("webhook_endpoints", "tenant_id")
                        .to("tenants", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("webhook_deliveries")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(uuid("endpoint_id"))
                .col(uuid("event_id"))
                .col(ColumnDef::new("status").string_len(16).not_null())
                .col(int("attempts"))
                .col(ts("next_attempt_at"))
                .col(ts_null("lease_until"))
                .col(ColumnDef::new("last_status_code").integer().null())
                .col(text_null("last_error"))
                .col(ts_null("delivered_at"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut fk_cascade(
                    "fk_deliveries_endpoint",
                    "webhook_deliveries",
                    ("tenant_id", "endpoint_id"),
                    "webhook_endpoints",
                ))
                .to_owned(),
        )
        .await?;
        // Fan-out is idempotent: one delivery per (endpoint, event).
        m.create_index(
            Index::create()
                .name("ux_deliveries_event")
                .table("webhook_deliveries")
                .col("tenant_id")
                .col("endpoint_id")
                .col("event_id")
                .unique()
                .to_owned(),
        )
        .await?;
        // The worker's claim: due deliveries in time order.
        m.create_index(
            Index::create()
                .name("ix_deliveries_due")
                .table("webhook_deliveries")
                .col("status")
                .col("next_attempt_at")
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("webhook_attempts")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(uuid("delivery_id"))
                .col(int("attempt"))
                .col(ts("at"))
                .col(ColumnDef::new("status_code").integer().null())
                .col(big("duration_ms"))
                .col(ColumnDef::new("error_class").string_len(32).null())
                .col(text_null("response_excerpt"))
                .col(ts_null("next_attempt_at"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut fk_cascade(
                    "fk_attempts_delivery",
                    "webhook_attempts",
                    ("tenant_id", "delivery_id"),
                    "webhook_deliveries",
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_attempts_delivery")
                .table("webhook_attempts")
                .col("tenant_id")
                .col("delivery_id")
                .col("attempt")
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in ["webhook_attempts", "webhook_deliveries", "webhook_endpoints"] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        m.drop_index(Index::drop().name("ix_tickets_breach_scan").table("tickets").to_owned()).await?;
        m.drop_index(Index::drop().name("ix_tickets_book_due").table("tickets").to_owned()).await?;
        m.drop_index(Index::drop().name("ix_messages_queue_book").table("messages").to_owned()).await?;
        for t in ["messages", "tickets"] {
            m.alter_table(Table::alter().table(t).drop_column("address_book_id").to_owned()).await?;
        }
        for col in ["first_response_breach_emitted", "resolution_breach_emitted"] {
            m.alter_table(Table::alter().table("tickets").drop_column(col).to_owned()).await?;
        }
        m.drop_index(Index::drop().name("ix_events_dispatch").table("events").to_owned()).await?;
        m.alter_table(Table::alter().table("events").drop_column("dispatched_at").to_owned()).await
    }
}
