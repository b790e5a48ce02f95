//! Pricing: the product catalogue, price lists with their items, list assignments (to groups,
//! to contacts, and the tenant default). Money is stored as fixed-point integers — prices in
//! millionths (`*_micros`), quantities in thousandths (`*_millis`) — exact on both databases
//! (SQLite has no decimal type) and summable in SQL.

use crate::cols::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261123_000003_pricing"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let backend = m.get_database_backend();
        m.create_table(
            Table::create()
                .table("products")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(text("sku"))
                .col(text("name"))
                .col(sort_key("sort_name", backend))
                .col(big("list_price_micros"))
                .col(ColumnDef::new("currency").string_len(3).not_null())
                .col(ColumnDef::new("active").boolean().not_null())
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("ux_products_sku").table("products").col("tenant_id").col("sku").unique().to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_products_sort")
                .table("products")
                .col("tenant_id")
                .col("sort_name")
                .col("id")
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("price_lists")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(text("name"))
                .col(sort_key("sort_name", backend))
                .col(ColumnDef::new("currency").string_len(3).not_null())
                .col(ts_null("valid_from"))
                .col(ts_null("valid_to"))
                .col(uuid_null("base_price_list_id"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_price_lists_sort")
                .table("price_lists")
                .col("tenant_id")
                .col("sort_name")
                .col("id")
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("price_items")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(uuid("price_list_id"))
                .col(uuid("product_id"))
                .col(big("min_quantity_millis"))
                .col(big_null("fixed_price_micros"))
                .col(big_null("discount_percent_micros"))
                .col(ts_null("valid_from"))
                .col(ts_null("valid_to"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut fk_cascade(
                    "fk_items_list",
                    "price_items",
                    ("tenant_id", "price_list_id"),
                    "price_lists",
                ))
                .foreign_key(&mut fk_cascade(
                    "fk_items_product",
                    "price_items",
                    ("tenant_id", "product_id"),
                    "products",
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_items_list_product")
                .table("price_items")
                .col("tenant_id")
                .col("price_list_id")
                .col("product_id")
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("ix_items_product").table("price_items").col("tenant_id").col("product_id").to_owned(),
        )
        .await?;

        for (table, owner, owner_table) in
            [("group_price_lists", "group_id", "contact_groups"), ("contact_price_lists", "contact_id", "contacts")]
        {
            m.create_table(
                Table::create()
                    .table(table)
                    .col(uuid("tenant_id"))
                    .col(uuid(owner))
                    .col(uuid("price_list_id"))
                    .col(int("priority"))
                    .primary_key(Index::create().col("tenant_id").col(owner).col("price_list_id"))
                    .foreign_key(&mut fk_cascade(
                        &format!("fk_{table}_owner"),
                        table,
                        ("tenant_id", owner),
                        owner_table,
                    ))
                    .foreign_key(&mut fk_cascade(
                        &format!("fk_{table}_list"),
                        table,
                        ("tenant_id", "price_list_id"),
                        "price_lists",
                    ))
                    .to_owned(),
            )
            .await?;
        }

        m.create_table(
            Table::create()
                .table("tenant_settings")
                .col(uuid("tenant_id").primary_key())
                .col(uuid_null("default_price_list_id"))
                .col(ts("updated_at"))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in
            ["tenant_settings", "contact_price_lists", "group_price_lists", "price_items", "price_lists", "products"]
        {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
