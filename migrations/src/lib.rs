//! Cohort's schema migrations.
//!
//! One file per change, each with a working `down`. Migrations are written with sea-query
//! builders against table/column *names*, never against the store's current entities, so that an
//! old migration keeps meaning what it meant when it shipped. Backend-specific SQL appears only
//! where the two engines genuinely differ (collation of sort keys).

pub use sea_orm_migration::prelude::*;

mod m20261123_000001_foundation;
mod m20261123_000002_groups;
mod m20261123_000003_pricing;
mod m20261123_000004_orders;
mod m20261123_000005_member_counts;
mod m20261201_000006_events;
mod m20261201_000007_history_book;
mod m20261202_000008_routing;
mod m20261202_000009_sla;
mod m20261202_000010_webhooks;
mod m20261202_000011_sequences;
mod m20261202_000012_consent;
mod m20261203_000013_audit;
mod m20261203_000014_erasure;
mod m20261203_000015_data_usage;
mod m20261204_000016_external_ids;
mod m20261207_000017_sync;
mod m20261207_000018_selection_index;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_foundation::Migration),
            Box::new(m20261123_000002_groups::Migration),
            Box::new(m20261123_000003_pricing::Migration),
            Box::new(m20261123_000004_orders::Migration),
            Box::new(m20261123_000005_member_counts::Migration),
            Box::new(m20261201_000006_events::Migration),
            Box::new(m20261201_000007_history_book::Migration),
            Box::new(m20261202_000008_routing::Migration),
            Box::new(m20261202_000009_sla::Migration),
            Box::new(m20261202_000010_webhooks::Migration),
            Box::new(m20261202_000011_sequences::Migration),
            Box::new(m20261202_000012_consent::Migration),
            Box::new(m20261203_000013_audit::Migration),
            Box::new(m20261203_000014_erasure::Migration),
            Box::new(m20261203_000015_data_usage::Migration),
            Box::new(m20261204_000016_external_ids::Migration),
            Box::new(m20261207_000017_sync::Migration),
            Box::new(m20261207_000018_selection_index::Migration),
        ]
    }
}

/// The source text of every migration, in order: test templates are named after it, so editing
/// a migration that has not shipped yet can never leave a stale template database behind.
pub fn sources() -> &'static [&'static str] {
    &[
        include_str!("m20261123_000001_foundation.rs"),
        include_str!("m20261123_000002_groups.rs"),
        include_str!("m20261123_000003_pricing.rs"),
        include_str!("m20261123_000004_orders.rs"),
        include_str!("m20261123_000005_member_counts.rs"),
        include_str!("m20261201_000006_events.rs"),
        include_str!("m20261201_000007_history_book.rs"),
        include_str!("m20261202_000008_routing.rs"),
        include_str!("m20261202_000009_sla.rs"),
        include_str!("m20261202_000010_webhooks.rs"),
        include_str!("m20261202_000011_sequences.rs"),
        include_str!("m20261202_000012_consent.rs"),
        include_str!("m20261203_000013_audit.rs"),
        include_str!("m20261203_000014_erasure.rs"),
        include_str!("m20261203_000015_data_usage.rs"),
        include_str!("m20261204_000016_external_ids.rs"),
        include_str!("m20261207_000017_sync.rs"),
        include_str!("m20261207_000018_selection_index.rs"),
    ]
}

/// Column helpers shared by migrations: every table leads with `tenant_id` (DESIGN §2, "Scale").
pub(crate) mod cols {
    use sea_orm_migration::prelude::*;

    pub fn uuid(name: &'static str) -> ColumnDef {
        ColumnDef::new(name).uuid().not_null().to_owned()
    }
    pub fn uuid_null(name: &'static str) -> ColumnDef {
        ColumnDef::new(name).uuid().null().to_owned()
    }
    pub fn text(name: &'static str) -> ColumnDef {
        ColumnDef::new(name).string().not_null().to_owned()
    }
    pub fn text_null(name: &'static str) -> ColumnDef {
        ColumnDef::new(name).string().null().to_owned()
    }
    pub fn ts(name: &'static str) -> ColumnDef {
        ColumnDef::new(name).timestamp_with_time_zone().not_null().to_owned()
    }
    pub fn ts_null(name: &'static str) -> ColumnDef {
        ColumnDef::new(name).timestamp_with_time_zone().null().to_owned()
    }
    pub fn big(name: &'static str) -> ColumnDef {
        ColumnDef::new(name).big_integer().not_null().to_owned()
    }
    pub fn big_null(name: &'static str) -> ColumnDef {
        ColumnDef::new(name).big_integer().null().to_owned()
    }
    /// A tenant-scoped foreign key `(tenant_id, <col>) → <to>(tenant_id, id)`, cascading.
    pub fn fk_cascade(
        name: &str,
        from: &'static str,
        cols: (&'static str, &'static str),
        to: &'static str,
    ) -> ForeignKeyCreateStatement {
        ForeignKey::create()
            .name(name)
            .from(from, cols)
            .to(to, ("tenant_id", "id"))
            .on_delete(ForeignKeyAction::Cascade)
            .to_owned()
    }
    pub fn int(name: &'static str) -> ColumnDef {
        ColumnDef::new(name).integer().not_null().to_owned()
    }
    /// A text column used as a sort key. PostgreSQL must compare it byte-wise ("C" collation) so
    /// that ordering, and therefore keyset cursors, are identical on SQLite (BINARY) and PostgreSQL.
    pub fn sort_key(name: &'static str, backend: sea_orm_migration::sea_orm::DbBackend) -> ColumnDef {
        let mut c = ColumnDef::new(name).string().not_null().to_owned();
        if backend == sea_orm_migration::sea_orm::DbBackend::Postgres {
            c.extra("COLLATE \"C\"");
        }
        c
    }
}
