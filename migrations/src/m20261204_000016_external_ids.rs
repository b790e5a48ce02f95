//! External ids (issue 19, "Integrators' sync"): the key a source system (`erp`, `shop`) gives one
//! of our contacts, groups, products or price lists.
//!
//! - `external_ids`: one row per (entity, system). The primary key `(tenant_id, kind, system,
//!   external_id)` makes an id unique per tenant, kind and system and serves the lookup by
//!   external id; the unique index `(tenant_id, kind, entity_id, system)` allows one id per entity
//!   and system and serves the other direction (an entity's ids, a page of entities' ids at once).
//! - `entity_id` has no foreign key: it points into one of four tables, chosen by `kind`. The
//!   store deletes the rows when it deletes (or erases) the entity; the tenant foreign key
//!   cascades.

use crate::cols::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261204_000016_external_ids"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("external_ids")
                .col(uuid("tenant_id"))
                .col(ColumnDef::new("kind").string_len(16).not_null().check(Expr::col("kind").is_in([
                    "contact",
                    "group",
                    "product",
                    "price_list",
                ])))
                .col(ColumnDef::new("system").string_len(64).not_null())
                .col(ColumnDef::new("external_id").string_len(200).not_null())
                .col(uuid("entity_id"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .primary_key(Index::create().col("tenant_id").col("kind").col("system").col("external_id"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_external_ids_tenant")
                        .from("external_ids", "tenant_id")
                        .to("tenants", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_external_ids_entity")
                .table("external_ids")
                .col("tenant_id")
                .col("kind")
                .col("entity_id")
                .col("system")
                .unique()
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("external_ids").to_owned()).await?;
        Ok(())
    }
}
