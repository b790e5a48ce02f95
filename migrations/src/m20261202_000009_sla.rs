//! SLA contracts (DESIGN §1): business calendars, contracts with targets, default SLAs per group
//! (inherited) and per tenant, tickets with their routing, SLA snapshot and stored due times,
//! and each ticket's history.
//!
//! A ticket keeps a snapshot of the contract it was given (targets and calendar, as JSON): a
//! contract or calendar edited later never moves existing due times. `next_due_at` is the
//! nearest due time that still matters ('9999-12-31' when none), so the work queue ordered by
//! it is an index scan.

use crate::cols::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000009_sla"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("business_calendars")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(text("name"))
                .col(ColumnDef::new("time_zone").string_len(64).not_null())
                .col(ColumnDef::new("always_open").boolean().not_null())
                .col(ColumnDef::new("week").text().not_null())
                .col(ColumnDef::new("holidays").text().not_null())
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_calendars_tenant")
                        .from("business_calendars", "tenant_id")
                        .to("tenants", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_calendars_name")
                .table("business_calendars")
                .col("tenant_id")
                .col("name")
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("sla_contracts")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(text("name"))
                .col(int("rank"))
                .col(uuid("calendar_id"))
                .col(ColumnDef::new("targets").text().not_null())
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_contracts_calendar")
                        .from("sla_contracts", ("tenant_id", "calendar_id"))
                        .to("business_calendars", ("tenant_id", "id"))
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_contracts_name")
                .table("sla_contracts")
                .col("tenant_id")
                .col("name")
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("group_default_slas")
                .col(uuid("tenant_id"))
                .col(uuid("group_id"))
                .col(uuid("sla_contract_id"))
                .col(uuid_null("updated_by"))
                .col(ts("updated_at"))
                .primary_key(Index::create().col("tenant_id").col("group_id"))
                .foreign_key(&mut fk_cascade(
                    "fk_group_sla_group",
                    "group_default_slas",
                    ("tenant_id", "group_id"),
                    "contact_groups",
                ))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_group_sla_contract")
                        .from("group_default_slas", ("tenant_id", "sla_contract_id"))
                        .to("sla_contracts", ("tenant_id", "id"))
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .to_owned(),
        )
        .await?;

        m.alter_table(
            Table::alter()
                .table("tenant_settings")
                .add_column(ColumnDef::new("default_sla_contract_id").uuid().null())
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("tickets")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(uuid("contact_id"))
                .col(uuid("process_area_id"))
                .col(text("subject"))
                .col(ColumnDef::new("description").text().null())
                .col(ColumnDef::new("channel").string_len(16).not_null())
                .col(ColumnDef::new("status").string_len(32).not_null())
                .col(ColumnDef::new("severity").string_len(16).null())
                .col(ts("opened_at"))
                .col(ts_null("first_responded_at"))
                .col(ts_null("resolved_at"))
                .col(uuid_null("worker_id"))
                .col(uuid_null("user_group_id"))
                .col(uuid("processing_area_id"))
                .col(uuid_null("deciding_group_id"))
                .col(uuid_null("sla_contract_id"))
                .col(ColumnDef::new("sla_source").string_len(16).not_null())
                .col(uuid_null("sla_group_id"))
                .col(ColumnDef::new("sla_snapshot").text().null())
                .col(ColumnDef::new("sla_choice").text().null())
                .col(ts_null("due_first_response_at"))
                .col(ts_null("due_resolution_at"))
                .col(ColumnDef::new("resolution_breached").boolean().not_null())
                .col(ts("next_due_at"))
                .col(ts("last_event_at"))
                .col(uuid("created_by"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                // Erasing a contact erases their tickets.
                .foreign_key(&mut fk_cascade("fk_tickets_contact", "tickets", ("tenant_id", "contact_id"), "contacts"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_tickets_area")
                        .from("tickets", ("tenant_id", "process_area_id"))
                        .to("process_areas", ("tenant_id", "id"))
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .to_owned(),
        )
        .await?;
        for (name, col) in [
            ("ix_tickets_due", None),
            ("ix_tickets_contact", Some("contact_id")),
            ("ix_tickets_worker", Some("worker_id")),
            ("ix_tickets_queue", Some("processing_area_id")),
        ] {
            let mut i = Index::create().name(name).table("tickets").col("tenant_id").to_owned();
            if let Some(c) = col {
                i.col(c);
            }
            m.create_index(i.col("next_due_at").col("id").to_owned()).await?;
        }

        m.create_table(
            Table::create()
                .table("ticket_history")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(uuid("ticket_id"))
                .col(ColumnDef::new("kind").string_len(16).not_null())
                .col(ColumnDef::new("from_value").string_len(64).null())
                .col(ColumnDef::new("to_value").string_len(64).null())
                .col(ColumnDef::new("severity").string_len(16).null())
                .col(text_null("reason"))
                .col(uuid_null("contract_from"))
                .col(uuid_null("contract_to"))
                .col(ts_null("due_first_response_before"))
                .col(ts_null("due_resolution_before"))
                .col(ts_null("due_first_response_after"))
                .col(ts_null("due_resolution_after"))
                .col(uuid_null("actor_id"))
                .col(ts("at"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut fk_cascade(
                    "fk_ticket_history_ticket",
                    "ticket_history",
                    ("tenant_id", "ticket_id"),
                    "tickets",
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_ticket_history_ticket")
                .table("ticket_history")
                .col("tenant_id")
                .col("ticket_id")
                .col("id")
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in ["ticket_history", "tickets", "group_default_slas"] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        m.alter_table(Table::alter().table("tenant_settings").drop_column("default_sla_contract_id").to_owned())
            .await?;
        for t in ["sla_contracts", "business_calendars"] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
