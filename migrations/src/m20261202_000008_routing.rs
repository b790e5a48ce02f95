//! Responsibility and routing (DESIGN §1): processing areas (queues), process areas with their
//! module defaults, per-group responsibilities per process area, inbound messages with their
//! routing decision, and each message's assignment history. Plus the tenant's choice whether a
//! private message's subject is withheld like its body.

use crate::cols::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000008_routing"
    }
}

/// A tenant-scoped foreign key that does not cascade (the row it names must be moved away first).
fn fk_restrict(
    name: &str,
    from: &'static str,
    cols: (&'static str, &'static str),
    to: &'static str,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from, cols)
        .to(to, ("tenant_id", "id"))
        .on_delete(ForeignKeyAction::Restrict)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("processing_areas")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(text("name"))
                .col(text_null("description"))
                .col(uuid_null("user_group_id"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut fk_restrict(
                    "fk_queues_user_group",
                    "processing_areas",
                    ("tenant_id", "user_group_id"),
                    "user_groups",
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_queues_name")
                .table("processing_areas")
                .col("tenant_id")
                .col("name")
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("process_areas")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(ColumnDef::new("key").string_len(64).not_null())
                .col(text("name"))
                .col(uuid("default_processing_area_id"))
                .col(uuid_null("default_worker_id"))
                .col(uuid_null("default_user_group_id"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut fk_restrict(
                    "fk_areas_queue",
                    "process_areas",
                    ("tenant_id", "default_processing_area_id"),
                    "processing_areas",
                ))
                .foreign_key(&mut fk_restrict(
                    "fk_areas_worker",
                    "process_areas",
                    ("tenant_id", "default_worker_id"),
                    "users",
                ))
                .foreign_key(&mut fk_restrict(
                    "fk_areas_user_group",
                    "process_areas",
                    ("tenant_id", "default_user_group_id"),
                    "user_groups",
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_process_areas_key")
                .table("process_areas")
                .col("tenant_id")
                .col("key")
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("group_responsibilities")
                .col(uuid("tenant_id"))
                .col(uuid("group_id"))
                .col(uuid("process_area_id"))
                .col(uuid_null("worker_id"))
                .col(uuid_null("user_group_id"))
                .col(uuid_null("processing_area_id"))
                .col(uuid_null("updated_by"))
                .col(ts("updated_at"))
                .primary_key(Index::create().col("tenant_id").col("group_id").col("process_area_id"))
                .foreign_key(&mut fk_cascade(
                    "fk_resp_group",
                    "group_responsibilities",
                    ("tenant_id", "group_id"),
                    "contact_groups",
                ))
                .foreign_key(&mut fk_cascade(
                    "fk_resp_area",
                    "group_responsibilities",
                    ("tenant_id", "process_area_id"),
                    "process_areas",
                ))
                .foreign_key(&mut fk_restrict(
                    "fk_resp_worker",
                    "group_responsibilities",
                    ("tenant_id", "worker_id"),
                    "users",
                ))
                .foreign_key(&mut fk_restrict(
                    "fk_resp_user_group",
                    "group_responsibilities",
                    ("tenant_id", "user_group_id"),
                    "user_groups",
                ))
                .foreign_key(&mut fk_restrict(
                    "fk_resp_queue",
                    "group_responsibilities",
                    ("tenant_id", "processing_area_id"),
                    "processing_areas",
                ))
                .to_owned(),
        )
        .await?;
        // Routing reads "what does this chain set for area P": by area, then group.
        m.create_index(
            Index::create()
                .name("ix_resp_area_group")
                .table("group_responsibilities")
                .col("tenant_id")
                .col("process_area_id")
                .col("group_id")
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("messages")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(uuid("process_area_id"))
                .col(uuid_null("contact_id"))
                .col(text_null("sender_email"))
                .col(ColumnDef::new("channel").string_len(16).not_null())
                .col(text("subject"))
                .col(ColumnDef::new("body").text().not_null())
                .col(ColumnDef::new("is_private").boolean().not_null())
                .col(uuid_null("recipient_id"))
                .col(ts("received_at"))
                .col(text_null("external_id"))
                .col(uuid("created_by"))
                .col(uuid_null("worker_id"))
                .col(uuid_null("user_group_id"))
                .col(uuid("processing_area_id"))
                .col(uuid_null("deciding_group_id"))
                .col(ts("created_at"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut fk_restrict(
                    "fk_messages_area",
                    "messages",
                    ("tenant_id", "process_area_id"),
                    "process_areas",
                ))
                // Erasing a contact erases the communication with them.
                .foreign_key(&mut fk_cascade(
                    "fk_messages_contact",
                    "messages",
                    ("tenant_id", "contact_id"),
                    "contacts",
                ))
                .foreign_key(&mut fk_restrict(
                    "fk_messages_queue",
                    "messages",
                    ("tenant_id", "processing_area_id"),
                    "processing_areas",
                ))
                .to_owned(),
        )
        .await?;
        // Idempotency of `receiveMessage`: one message per (poster, external id). Scoped to the
        // poster so that "already received" can never tell one caller about another's messages.
        m.create_index(
            Index::create()
                .name("ux_messages_external")
                .table("messages")
                .col("tenant_id")
                .col("created_by")
                .col("external_id")
                .unique()
                .to_owned(),
        )
        .await?;
        for (name, col) in [
            ("ix_messages_received", None),
            ("ix_messages_contact", Some("contact_id")),
            ("ix_messages_worker", Some("worker_id")),
            ("ix_messages_queue", Some("processing_area_id")),
        ] {
            let mut i = Index::create().name(name).table("messages").col("tenant_id").to_owned();
            if let Some(c) = col {
                i.col(c);
            }
            m.create_index(i.col("received_at").col("id").to_owned()).await?;
        }

        m.create_table(
            Table::create()
                .table("message_assignments")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(uuid("message_id"))
                .col(ColumnDef::new("kind").string_len(16).not_null())
                .col(uuid_null("worker_id"))
                .col(uuid_null("user_group_id"))
                .col(uuid("processing_area_id"))
                .col(text_null("note"))
                .col(uuid_null("actor_id"))
                .col(ts("at"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut fk_cascade(
                    "fk_assign_message",
                    "message_assignments",
                    ("tenant_id", "message_id"),
                    "messages",
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_assign_message")
                .table("message_assignments")
                .col("tenant_id")
                .col("message_id")
                .col("id")
                .to_owned(),
        )
        .await?;

        m.alter_table(
            Table::alter()
                .table("tenant_settings")
                .add_column(ColumnDef::new("hide_private_subjects").boolean().not_null().default(false))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table("tenant_settings").drop_column("hide_private_subjects").to_owned()).await?;
        for t in ["message_assignments", "messages", "group_responsibilities", "process_areas", "processing_areas"] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
