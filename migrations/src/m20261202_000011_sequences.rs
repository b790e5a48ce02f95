//! Follow-up sequences (Worldsoft "Automated FollowUp"): a start group, versioned steps, one
//! enrolment per (sequence, contact) and one row per executed step.
//!
//! - `sequences` holds the options; its steps live in `sequence_versions` (editing a sequence adds
//!   a version; an enrolment finishes on the version it started with).
//! - `sequence_enrolments` carry the contact's address book (kept in step when the contact moves,
//!   like memberships) so reads filter the rows themselves, and `next_due_at` (the far-future
//!   sentinel when nothing is due) so the worker's claim is an index scan.
//! - `sequence_step_runs` is keyed by (enrolment, generation, position): a step runs at most once
//!   per enrolment run, whatever the workers do.

use crate::cols::*;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000011_sequences"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let backend = m.get_database_backend();
        m.create_table(
            Table::create()
                .table("sequences")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(text("name"))
                .col(sort_key("sort_name", backend))
                .col(uuid("start_group_id"))
                .col(ColumnDef::new("include_subgroups").boolean().not_null())
                .col(ColumnDef::new("stop_on_leave").boolean().not_null())
                .col(ColumnDef::new("require_consent").boolean().not_null())
                .col(ColumnDef::new("rejoin").string_len(16).not_null())
                .col(ColumnDef::new("paused").boolean().not_null())
                .col(int("version"))
                .col(uuid_null("created_by"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_sequences_start_group")
                        .from("sequences", ("tenant_id", "start_group_id"))
                        .to("contact_groups", ("tenant_id", "id"))
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_sequences_name")
                .table("sequences")
                .col("tenant_id")
                .col("sort_name")
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_sequences_start_group")
                .table("sequences")
                .col("tenant_id")
                .col("start_group_id")
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("sequence_versions")
                .col(uuid("tenant_id"))
                .col(uuid("sequence_id"))
                .col(int("version"))
                .col(ColumnDef::new("steps").text().not_null())
                .col(uuid_null("created_by"))
                .col(ts("created_at"))
                .primary_key(Index::create().col("tenant_id").col("sequence_id").col("version"))
                .foreign_key(&mut fk_cascade(
                    "fk_sequence_versions_sequence",
                    "sequence_versions",
                    ("tenant_id", "sequence_id"),
                    "sequences",
                ))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("sequence_enrolments")
                .col(uuid("tenant_id"))
                .col(uuid("id"))
                .col(uuid("sequence_id"))
                .col(uuid("contact_id"))
                .col(uuid("address_book_id"))
                // The group whose join enrolled (or restarted) it: with `include_subgroups` a
                // subgroup, which must be visible too for the enrolment to be.
                .col(uuid("group_id"))
                .col(int("version"))
                .col(int("generation"))
                .col(ColumnDef::new("status").string_len(16).not_null())
                .col(int("next_step"))
                .col(ts("next_due_at"))
                .col(ColumnDef::new("chain").text().not_null())
                .col(ColumnDef::new("source").string_len(16).not_null())
                .col(ts("enrolled_at"))
                .col(ts_null("ended_at"))
                .col(ColumnDef::new("end_reason").string_len(24).null())
                .col(ts("updated_at"))
                .primary_key(Index::create().col("tenant_id").col("id"))
                .foreign_key(&mut fk_cascade(
                    "fk_enrolments_sequence",
                    "sequence_enrolments",
                    ("tenant_id", "sequence_id"),
                    "sequences",
                ))
                .foreign_key(&mut fk_cascade(
                    "fk_enrolments_contact",
                    "sequence_enrolments",
                    ("tenant_id", "contact_id"),
                    "contacts",
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_enrolments_contact")
                .table("sequence_enrolments")
                .col("tenant_id")
                .col("sequence_id")
                .col("contact_id")
                .unique()
                .to_owned(),
        )
        .await?;
        // The worker's scan: active enrolments by due time, across tenants.
        m.create_index(
            Index::create()
                .name("ix_enrolments_due")
                .table("sequence_enrolments")
                .col("status")
                .col("next_due_at")
                .to_owned(),
        )
        .await?;
        // A sequence's page of enrolments, newest first (filtered by book on the way); its count
        // by book; a contact's enrolments.
        m.create_index(
            Index::create()
                .name("ix_enrolments_sequence_time")
                .table("sequence_enrolments")
                .col("tenant_id")
                .col("sequence_id")
                .col("enrolled_at")
                .col("id")
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_enrolments_sequence_book")
                .table("sequence_enrolments")
                .col("tenant_id")
                .col("sequence_id")
                .col("address_book_id")
                .col("id")
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_enrolments_contact")
                .table("sequence_enrolments")
                .col("tenant_id")
                .col("contact_id")
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("sequence_step_runs")
                .col(uuid("tenant_id"))
                .col(uuid("enrolment_id"))
                .col(int("generation"))
                .col(int("position"))
                .col(int("version"))
                .col(ColumnDef::new("action").string_len(24).not_null())
                // The group an ADD/REMOVE step acted on: its outcome is shown only to viewers
                // who can see that group.
                .col(uuid_null("group_id"))
                .col(ts("due_at"))
                .col(ts("at"))
                .col(ColumnDef::new("outcome").string_len(16).not_null())
                .col(text_null("detail"))
                .primary_key(Index::create().col("tenant_id").col("enrolment_id").col("generation").col("position"))
                .foreign_key(&mut fk_cascade(
                    "fk_step_runs_enrolment",
                    "sequence_step_runs",
                    ("tenant_id", "enrolment_id"),
                    "sequence_enrolments",
                ))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in ["sequence_step_runs", "sequence_enrolments", "sequence_versions", "sequences"] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
