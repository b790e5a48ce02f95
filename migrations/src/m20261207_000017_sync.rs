//! Integrators' sync (issue 19): `contacts(filter: {updatedSince})` reads a tenant's contacts
//! changed since an instant, which without an index is a scan of the tenant's contacts.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000017_sync"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .name("idx_contacts_updated_at")
                .table("contacts")
                .col("tenant_id")
                .col("updated_at")
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("idx_contacts_updated_at").table("contacts").to_owned()).await
    }
}
