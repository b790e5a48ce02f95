//! Erasure (GDPR Art. 17): `contacts.erased_at` marks a contact whose personal data was removed
//! (the row stays as a tombstone so orders, membership history and the consent log keep pointing
//! at something), and `suppression_list` keeps a keyed hash (HMAC-SHA256, never the address) of
//! every e-mail address of an erased contact, so the address cannot be silently re-subscribed.

use crate::cols;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261203_000014_erasure"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table("contacts").add_column(cols::ts_null("erased_at")).to_owned()).await?;
        m.create_table(
            Table::create()
                .table("suppression_list")
                .col(cols::uuid("tenant_id"))
                // Lower-case hex of HMAC-SHA256(key, tenant id ‖ normalised address).
                .col(ColumnDef::new("email_hash").string_len(64).not_null())
                .col(cols::ts("created_at"))
                // Why the address is suppressed ("ERASURE"); never personal data.
                .col(ColumnDef::new("source").string_len(32).not_null())
                .primary_key(Index::create().col("tenant_id").col("email_hash"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_suppression_list_tenant")
                        .from("suppression_list", "tenant_id")
                        .to("tenants", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("suppression_list").to_owned()).await?;
        m.alter_table(Table::alter().table("contacts").drop_column("erased_at").to_owned()).await
    }
}
