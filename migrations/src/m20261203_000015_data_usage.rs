//! Data-usage monitoring (DESIGN §1 "Protecting the data"): who received which contacts on which
//! day, the per-tenant policy with its thresholds and export budget, and the daily totals.
//!
//! - `data_usage_policies`: one row per scope — the tenant (`scope = 'tenant'`, `scope_key = ''`),
//!   a role (`'role'`, the role name) or a user (`'user'`, the user id). A NULL limit inherits the
//!   broader scope; 0 switches the limit off.
//! - `usage_days`: one row per (tenant, user, day in the tenant's time zone) with the distinct
//!   contacts seen, the (contact, group) membership pairs resolved and the requests made, and the
//!   day's warning, block and lift. `distinct_contacts` only ever grows by the rows that
//!   `usage_seen` actually gained (`INSERT … ON CONFLICT DO NOTHING RETURNING`), so replicas
//!   sharing one database count one user exactly.
//! - `usage_seen`: the distinct (tenant, user, day, contact) rows themselves. No foreign key to
//!   contacts: the record of what was seen outlives a deleted contact (and holds only ids).
//! - `usage_operations`: requests and contacts received per root field, per user and day.

use crate::cols::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261203_000015_data_usage"
    }
}

fn day(name: &'static str) -> ColumnDef {
    // ISO dates as text (`2026-12-03`): sortable, comparable and identical on both databases.
    ColumnDef::new(name).string_len(10).not_null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("data_usage_policies")
                .col(uuid("tenant_id"))
                .col(ColumnDef::new("scope").string_len(8).not_null())
                .col(ColumnDef::new("scope_key").string_len(200).not_null())
                .col(big_null("warn_contacts"))
                .col(big_null("block_contacts"))
                .col(big_null("membership_pair_budget"))
                .col(ColumnDef::new("time_zone").string_len(64).null())
                .col(ts("updated_at"))
                .col(uuid_null("updated_by"))
                .primary_key(Index::create().col("tenant_id").col("scope").col("scope_key"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_data_usage_policies_tenant")
                        .from("data_usage_policies", "tenant_id")
                        .to("tenants", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("usage_days")
                .col(uuid("tenant_id"))
                .col(uuid("user_id"))
                .col(day("day"))
                .col(big("distinct_contacts").default(0))
                .col(big("membership_pairs").default(0))
                .col(big("requests").default(0))
                .col(ts_null("warned_at"))
                .col(ts_null("blocked_at"))
                .col(ts_null("lifted_at"))
                .col(uuid_null("lifted_by"))
                .col(ts("updated_at"))
                .primary_key(Index::create().col("tenant_id").col("user_id").col("day"))
                .to_owned(),
        )
        .await?;
        // The admins' daily report: one day's rows by distinct contacts, largest first.
        m.create_index(
            Index::create()
                .name("ix_usage_days_report")
                .table("usage_days")
                .col("tenant_id")
                .col("day")
                .col("distinct_contacts")
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("usage_seen")
                .col(uuid("tenant_id"))
                .col(uuid("user_id"))
                .col(day("day"))
                .col(uuid("contact_id"))
                .primary_key(Index::create().col("tenant_id").col("user_id").col("day").col("contact_id"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("usage_operations")
                .col(uuid("tenant_id"))
                .col(uuid("user_id"))
                .col(day("day"))
                .col(ColumnDef::new("operation").string_len(64).not_null())
                .col(big("requests").default(0))
                .col(big("contacts").default(0))
                .primary_key(Index::create().col("tenant_id").col("user_id").col("day").col("operation"))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in ["usage_operations", "usage_seen", "usage_days", "data_usage_policies"] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
