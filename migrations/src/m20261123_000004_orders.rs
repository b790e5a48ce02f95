//! Orders: a priced order for a contact, with its lines' prices frozen at placing time (a later
//! change to a price list never changes a placed order). Unit prices in millionths and
//! quantities in thousandths, like the price lists; line and order totals — already rounded to
//! the currency — in its minor units (cents), so sums over many orders stay far inside 64 bits.

use crate::cols::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261123_000004_orders"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("orders")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(uuid("contact_id"))
                .col(ColumnDef::new("currency").string_len(3).not_null())
                .col(big("total_minor"))
                .col(int("line_count"))
                .col(ts("placed_at"))
                .col(uuid_null("placed_by"))
                .col(ts("priced_at"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_orders_contact")
                        .from("orders", ("tenant_id", "contact_id"))
                        .to("contacts", ("tenant_id", "id"))
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_orders_contact")
                .table("orders")
                .col("tenant_id")
                .col("contact_id")
                .col("placed_at")
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("order_lines")
                .col(uuid("tenant_id"))
                .col(uuid("order_id"))
                .col(int("line_no"))
                .col(uuid("product_id"))
                .col(text("sku"))
                .col(text("product_name"))
                .col(big("quantity_millis"))
                .col(big("unit_price_micros"))
                .col(big("line_total_minor"))
                .col(ColumnDef::new("source").string_len(16).not_null())
                .col(uuid_null("price_list_id"))
                .col(text_null("price_list_name"))
                .col(uuid_null("group_id"))
                .primary_key(Index::create().col("tenant_id").col("order_id").col("line_no"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_lines_order")
                        .from("order_lines", ("tenant_id", "order_id"))
                        .to("orders", ("tenant_id", "id"))
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in ["order_lines", "orders"] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
