//! Contact groups: the groups themselves, their hierarchy as a closure table, memberships with
//! provenance, the append-only membership history, and idempotency keys for bulk mutations.

use crate::cols::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261123_000002_groups"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let backend = m.get_database_backend();
        m.create_table(
            Table::create()
                .table("contact_groups")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(uuid("address_book_id"))
                .col(uuid_null("parent_id"))
                .col(text("name"))
                .col(sort_key("sort_name", backend))
                .col(ColumnDef::new("description").text().null())
                .col(int("precedence"))
                .col(text_null("public_name"))
                .col(ColumnDef::new("public_description").text().null())
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_groups_book")
                        .from("contact_groups", ("tenant_id", "address_book_id"))
                        .to("address_books", ("tenant_id", "id"))
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_groups_sort")
                .table("contact_groups")
                .col("tenant_id")
                .col("sort_name")
                .col("id")
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_groups_parent")
                .table("contact_groups")
                .col("tenant_id")
                .col("parent_id")
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_groups_book")
                .table("contact_groups")
                .col("tenant_id")
                .col("address_book_id")
                .to_owned(),
        )
        .await?;

        // Closure table: one row per (ancestor, descendant) pair, including (g, g) at depth 0.
        m.create_table(
            Table::create()
                .table("group_closure")
                .col(uuid("tenant_id"))
                .col(uuid("ancestor_id"))
                .col(uuid("descendant_id"))
                .col(int("depth"))
                .primary_key(Index::create().col("tenant_id").col("ancestor_id").col("descendant_id"))
                .foreign_key(&mut fk_cascade(
                    "fk_closure_ancestor",
                    "group_closure",
                    ("tenant_id", "ancestor_id"),
                    "contact_groups",
                ))
                .foreign_key(&mut fk_cascade(
                    "fk_closure_descendant",
                    "group_closure",
                    ("tenant_id", "descendant_id"),
                    "contact_groups",
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_closure_descendant")
                .table("group_closure")
                .col("tenant_id")
                .col("descendant_id")
                .col("depth")
                .to_owned(),
        )
        .await?;

        // Memberships carry the contact's book and sort key (kept in step by the store when a
        // contact moves or is renamed): the visibility filter and the page order then come from
        // one index, without touching `contacts` until the page's rows are known.
        m.create_table(
            Table::create()
                .table("group_memberships")
                .col(uuid("tenant_id"))
                .col(uuid("group_id"))
                .col(uuid("contact_id"))
                .col(uuid("address_book_id"))
                .col(sort_key("sort_name", backend))
                .col(ts("joined_at"))
                .col(ColumnDef::new("source").string_len(16).not_null())
                .col(uuid_null("assigned_by"))
                .col(uuid_null("consent_id"))
                .primary_key(Index::create().col("tenant_id").col("group_id").col("contact_id"))
                .foreign_key(&mut fk_cascade(
                    "fk_memberships_group",
                    "group_memberships",
                    ("tenant_id", "group_id"),
                    "contact_groups",
                ))
                .foreign_key(&mut fk_cascade(
                    "fk_memberships_contact",
                    "group_memberships",
                    ("tenant_id", "contact_id"),
                    "contacts",
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_memberships_page")
                .table("group_memberships")
                .col("tenant_id")
                .col("group_id")
                .col("sort_name")
                .col("contact_id")
                .col("address_book_id")
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
        m.create_index(
            Index::create()
                .name("ix_memberships_joined")
                .table("group_memberships")
                .col("tenant_id")
                .col("group_id")
                .col("joined_at")
                .col("contact_id")
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_memberships_contact")
                .table("group_memberships")
                .col("tenant_id")
                .col("contact_id")
                .to_owned(),
        )
        .await?;

        // Append-only: never updated, never deleted with its group or contact.
        m.create_table(
            Table::create()
                .table("membership_history")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(uuid("group_id"))
                .col(uuid("contact_id"))
                .col(ColumnDef::new("action").string_len(8).not_null())
                .col(ColumnDef::new("source").string_len(16).not_null())
                .col(uuid_null("actor_id"))
                .col(ts("at"))
                .col(text_null("reason"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_history_group")
                .table("membership_history")
                .col("tenant_id")
                .col("group_id")
                .col("id")
                .to_owned(),
        )
        .await?;
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

        m.create_table(
            Table::create()
                .table("idempotency_keys")
                .col(uuid("tenant_id"))
                .col(uuid("user_id"))
                .col(text("key"))
                .col(text("operation"))
                .col(text("request_hash"))
                .col(ColumnDef::new("response").text().not_null())
                .col(ts("created_at"))
                .primary_key(Index::create().col("tenant_id").col("user_id").col("key"))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in ["idempotency_keys", "membership_history", "group_memberships", "group_closure", "contact_groups"] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
