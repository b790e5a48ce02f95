//! Foundation: tenants, users, user groups, address books and grants, contacts with their
//! e-mails and phones, the business-status classification and its history, the audit log.

use crate::cols::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261123_000001_foundation"
    }
}

fn fk(
    name: &str,
    from: &'static str,
    from_cols: (&'static str, &'static str),
    to: &'static str,
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    ForeignKey::create().name(name).from(from, from_cols).to(to, ("tenant_id", "id")).on_delete(on_delete).to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let backend = m.get_database_backend();

        m.create_table(
            Table::create()
                .table("tenants")
                .col(uuid("id").primary_key())
                .col(text("key"))
                .col(text("name"))
                .col(ts("created_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(Index::create().name("ux_tenants_key").table("tenants").col("key").unique().to_owned()).await?;

        m.create_table(
            Table::create()
                .table("users")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(text("subject"))
                .col(text_null("name"))
                .col(text_null("email"))
                .col(ts("created_at"))
                .col(ts_null("last_seen_at"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_users_tenant")
                        .from("users", "tenant_id")
                        .to("tenants", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("ux_users_subject").table("users").col("tenant_id").col("subject").unique().to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("user_groups")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(text("name"))
                .col(text_null("description"))
                .col(ts("created_at"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_user_groups_tenant")
                        .from("user_groups", "tenant_id")
                        .to("tenants", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_user_groups_name")
                .table("user_groups")
                .col("tenant_id")
                .col("name")
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("user_group_members")
                .col(uuid("tenant_id"))
                .col(uuid("user_group_id"))
                .col(uuid("user_id"))
                .col(ts("created_at"))
                .primary_key(Index::create().col("tenant_id").col("user_group_id").col("user_id"))
                .foreign_key(&mut fk(
                    "fk_ugm_group",
                    "user_group_members",
                    ("tenant_id", "user_group_id"),
                    "user_groups",
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "fk_ugm_user",
                    "user_group_members",
                    ("tenant_id", "user_id"),
                    "users",
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("ix_ugm_user").table("user_group_members").col("tenant_id").col("user_id").to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("address_books")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(text("name"))
                .col(text_null("description"))
                .col(ts("created_at"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_address_books_tenant")
                        .from("address_books", "tenant_id")
                        .to("tenants", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_address_books_name")
                .table("address_books")
                .col("tenant_id")
                .col("name")
                .unique()
                .to_owned(),
        )
        .await?;

        // A grant names its principal by kind + id (a user or a user group); exactly one grant per
        // (book, principal), whose level can be raised or lowered in place.
        m.create_table(
            Table::create()
                .table("address_book_grants")
                .col(uuid("tenant_id"))
                .col(uuid("address_book_id"))
                .col(ColumnDef::new("principal_kind").string_len(8).not_null())
                .col(uuid("principal_id"))
                .col(ColumnDef::new("level").small_integer().not_null())
                .col(ts("granted_at"))
                .col(uuid_null("granted_by"))
                .primary_key(
                    Index::create().col("tenant_id").col("address_book_id").col("principal_kind").col("principal_id"),
                )
                .foreign_key(&mut fk(
                    "fk_grants_book",
                    "address_book_grants",
                    ("tenant_id", "address_book_id"),
                    "address_books",
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_grants_principal")
                .table("address_book_grants")
                .col("tenant_id")
                .col("principal_kind")
                .col("principal_id")
                .col("address_book_id")
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("business_statuses")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(text("key"))
                .col(text("label"))
                .col(text("category"))
                .col(int("position"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_business_statuses_tenant")
                        .from("business_statuses", "tenant_id")
                        .to("tenants", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_business_statuses_key")
                .table("business_statuses")
                .col("tenant_id")
                .col("key")
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("contacts")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(uuid("address_book_id"))
                .col(ColumnDef::new("kind").string_len(16).not_null())
                .col(text_null("first_name"))
                .col(text_null("last_name"))
                .col(text_null("company_name"))
                .col(text("display_name"))
                .col(sort_key("sort_name", backend))
                .col(text("search_text"))
                .col(uuid_null("company_id"))
                .col(uuid_null("business_status_id"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .col(uuid_null("created_by"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut fk(
                    "fk_contacts_book",
                    "contacts",
                    ("tenant_id", "address_book_id"),
                    "address_books",
                    ForeignKeyAction::Restrict,
                ))
                .foreign_key(&mut fk(
                    "fk_contacts_company",
                    "contacts",
                    ("tenant_id", "company_id"),
                    "contacts",
                    // Not SET NULL: on a composite key that would null tenant_id too. The store
                    // unlinks employees explicitly before deleting a company.
                    ForeignKeyAction::NoAction,
                ))
                .foreign_key(&mut fk(
                    "fk_contacts_status",
                    "contacts",
                    ("tenant_id", "business_status_id"),
                    "business_statuses",
                    ForeignKeyAction::Restrict,
                ))
                .to_owned(),
        )
        .await?;
        // Visibility (book) + order (sort name, id) from one index: the hot list path.
        m.create_index(
            Index::create()
                .name("ix_contacts_book_sort")
                .table("contacts")
                .col("tenant_id")
                .col("address_book_id")
                .col("sort_name")
                .col("id")
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_contacts_sort")
                .table("contacts")
                .col("tenant_id")
                .col("sort_name")
                .col("id")
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("ix_contacts_company").table("contacts").col("tenant_id").col("company_id").to_owned(),
        )
        .await?;

        for (table, value) in [("contact_emails", "address"), ("contact_phones", "number")] {
            m.create_table(
                Table::create()
                    .table(table)
                    .col(uuid("tenant_id"))
                    .col(uuid("contact_id"))
                    .col(int("position"))
                    .col(text(value))
                    .col(text_null("label"))
                    .primary_key(Index::create().col("tenant_id").col("contact_id").col("position"))
                    .foreign_key(&mut fk(
                        &format!("fk_{table}_contact"),
                        table,
                        ("tenant_id", "contact_id"),
                        "contacts",
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        }
        m.create_index(
            Index::create()
                .name("ix_contact_emails_address")
                .table("contact_emails")
                .col("tenant_id")
                .col("address")
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("contact_status_history")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(uuid("contact_id"))
                .col(uuid_null("from_status_id"))
                .col(uuid_null("to_status_id"))
                .col(uuid_null("changed_by"))
                .col(ts("changed_at"))
                .col(text_null("note"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut fk(
                    "fk_status_history_contact",
                    "contact_status_history",
                    ("tenant_id", "contact_id"),
                    "contacts",
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_status_history_contact")
                .table("contact_status_history")
                .col("tenant_id")
                .col("contact_id")
                .col("changed_at")
                .col("id")
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("audit_log")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(uuid_null("actor_id"))
                .col(text("action"))
                .col(text("target_type"))
                .col(uuid_null("target_id"))
                .col(ts("at"))
                .col(ColumnDef::new("details").text().null())
                .primary_key(Index::create().col("tenant_id").col("id"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("ix_audit_log_at").table("audit_log").col("tenant_id").col("at").to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            "audit_log",
            "contact_status_history",
            "contact_phones",
            "contact_emails",
            "contacts",
            "business_statuses",
            "address_book_grants",
            "address_books",
            "user_group_members",
            "user_groups",
            "users",
            "tenants",
        ] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
