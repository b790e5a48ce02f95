//! Cohort's persistence: sea-orm on SQLite (embedded default) and PostgreSQL.
//!
//! **One door.** Tenant data is reachable only through a [`DataHandle`]: the request-scoped
//! capability that [`Gate::admit`] makes from a verified token (one tenant, one viewer, the
//! viewer's grant snapshot). Every read is a method of the handle and carries the visibility rule
//! (`core::visibility`, defined once) inside its SQL, so counts, filters, orders and cursors are
//! computed over visible rows only and a revoked grant takes effect on the very next request.
//! Every write runs in a unit of work opened from the handle (`core::uow`), which writes the
//! change, its audit entries and its outbox events ([`EventRecord`]) atomically and owns the
//! request's idempotency key.
//!
//! Entities are crate-private: code outside this crate cannot name a table, so it cannot write a
//! query that skips the filter. The raw [`Store`] (connect, migrate, statement recording) and the
//! loudly named [`SystemHandle`] are for the CLI, demo seeding, benchmarks and background work;
//! the API crate's resolvers only ever receive handles (the compile-fail examples on
//! [`DataHandle`] show what does not compile).
//!
//! Layout: `access` (viewers, tokens, the gate, address books, users), `contacts`, `groups`
//! (hierarchy, memberships), `pricing`, `orders`, `routing` (queues, process areas,
//! responsibilities, messages), `sla` (calendars, contracts, tickets), `sequences` (follow-up
//! sequences: enrolment on join, the step runner), `webhooks`, `events`, and `core` (SQL builder, dialect,
//! visibility rule, pagination, unit of work).

mod access;
mod audit;
mod bulk;
mod consent;
mod contacts;
mod core;
mod entities;
mod error;
mod events;
mod external;
mod groups;
mod orders;
mod pricing;
mod routing;
mod sequences;
mod sla;
mod sync;
mod system;
#[doc(hidden)]
pub mod testing;
mod usage;
mod webhooks;

pub use access::books::{AddressBookRecord, GrantRecord, Principal};
pub use access::handle::{Admission, DataHandle, Gate, Refused};
pub use access::principals::{UserGroupRecord, UserRecord};
pub use access::token::{Claims, KeyConfigError, TokenSettings, check_token_settings, issue_hs256};
pub use access::viewer::{Identity, Viewer};
pub use audit::{AuditEntryRecord, AuditFilter};
pub use bulk::{BulkContact, BulkGroup, BulkLoader, BulkMembership, BulkPriceItem, BulkProduct, BulkUser};
pub use consent::links::{LinkError, LinkKeys};
pub use consent::log::Evidence;
pub use consent::mail::DueMail;
pub use consent::public::{
    ConfirmOutcome, OfferedText, PUBLIC_SUBJECT, PreferenceChange, PreferenceGroupRecord, PreferencesRecord,
    PublicDoor, PublicFormRecord, PublicGroupRecord, PublicRefusal, PublicTextRecord, SubmissionInput,
    SubmissionReceipt,
};
pub use consent::{
    ConsentEntryRecord, ConsentSummaryRecord, ConsentTextInput, ConsentTextRecord, IssuedLink, PublicLinks,
    RecordConsentInput, WebFormInput, WebFormPatch, WebFormRecord,
};
pub use contacts::contact::{
    ContactChannels, ContactExtras, ContactFilter, ContactInput, ContactOrder, ContactParts, ContactPatch,
    ContactRecord, EmailRecord, GroupSelection, PhoneRecord, StatusChangeRecord,
};
pub use contacts::erasure::{ERASED_NAME, ErasedContact, MAX_ERASE_REASON_CHARS};
pub use contacts::export::{ContactDataExport, EXPORT_FORMAT, IdEncoder};
pub use contacts::status::BusinessStatusRecord;
pub use core::page::{MAX_PAGE_SIZE, Page, PageRequest};
pub use error::{StoreError, StoreResult};
pub use events::{
    EVENT_SCHEMA_VERSION, EventCommits, EventFeed, EventFilter, EventRecord, EventType, FeedStart, LATE_COMMIT_WINDOW,
    Subject, SubjectKind,
};
pub use external::{ExternalIdRecord, ExternalTarget, MAX_EXTERNAL_IDS_PER_ENTITY};
pub use groups::hierarchy::{GroupFilter, GroupInput, GroupPatch, GroupRecord, SubgroupPolicy};
pub use groups::membership::{
    AddMembersOutcome, MemberOrder, MemberRecord, MembershipEventRecord, MembershipRecord, ReadAlong,
    RemoveMembersOutcome, SetMembersOutcome,
};
pub use orders::{OrderLineRecord, OrderRecord, OrderSummaryRecord};
pub use pricing::{
    ListAssignmentRecord, PriceItemInput, PriceItemRecord, PriceLine, PriceListInput, PriceListRecord, PricedLine,
    ProductInput, ProductPatch, ProductRecord, ProductRef,
};
pub use routing::areas::{DEFAULT_PROCESS_AREA, ProcessAreaInput, ProcessAreaPatch, ProcessingAreaPatch};
pub use routing::{
    AssignmentRecord, EffectiveResponsibilityRecord, MessageFilter, MessageInput, MessageRecord, ProcessAreaRecord,
    ProcessingAreaRecord, Reassignment, ReceivedMessage, ResponsibilityRecord, RouteRecord,
};
pub use sequences::worker::AUTOMATION_SUBJECT;
pub use sequences::{EnrolmentRecord, SequenceInput, SequencePatch, SequenceRecord, StepInput, StepRunRecord};
pub use sla::tickets::ticket_clock;
pub use sla::{
    CalendarInput, CalendarRecord, ContractInput, ContractRecord, CreatedTicket, EffectiveSlaRecord, TicketEventRecord,
    TicketFilter, TicketInput, TicketRecord, TicketSla,
};
pub use sync::{
    ChangeKind, ChangeOperation, ChangePage, ChangeRecord, ContactUpsert, DEFAULT_CHANGES, ItemError, MAX_CHANGES,
    MAX_UPSERT_ITEMS, ProductUpsert, ROLLED_BACK, UpsertOutcome, UpsertReport, UpsertStatus,
};
pub use system::{DemoTenant, SystemHandle};
pub use usage::{
    DataUsagePolicyRecord, OperationUsageRecord, PolicyInput, PolicyScope, UsageBook, UsageDayRecord, UsageRefusal,
    UsageReportRecord,
};
pub use webhooks::endpoints::DEFAULT_ROTATION_GRACE_HOURS;
pub use webhooks::queue::{AttemptOutcome, DueDelivery, RetryPolicy};
pub use webhooks::{
    AttemptRecord, DeliveryRecord, DeliveryStatus, EndpointInput, EndpointPatch, EndpointWithSecret,
    WebhookEndpointRecord,
};

use cohort_migrations::MigratorTrait;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counters the store keeps about its own SQL, exported by the API as Prometheus metrics.
#[derive(Debug, Default)]
pub struct StoreMetrics {
    pub statements: AtomicU64,
    pub failed_statements: AtomicU64,
    /// Sum of statement execution time, microseconds.
    pub statement_micros: AtomicU64,
    /// When set, every statement (text and values) is kept: the benchmark's raw-SQL mode replays
    /// exactly what one API request ran. Off in normal operation (one relaxed load per statement).
    recording: std::sync::atomic::AtomicBool,
    recorded: std::sync::Mutex<Vec<sea_orm::Statement>>,
}

/// Connection pool and store options; defaults suit one process on a small machine.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub max_connections: u32,
    /// How long a request waits for a free connection before it fails (`INTERNAL`, logged).
    pub acquire_timeout: Duration,
    /// Up to this many address books, a viewer's grants are bound into each statement as a list;
    /// above it, statements derive them with a grants subquery (same rows, slower to plan, and no
    /// limit on the number of parameters). Tests set 0 to exercise the subquery path.
    pub max_inline_grants: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { max_connections: 16, acquire_timeout: Duration::from_secs(5), max_inline_grants: 1000 }
    }
}

/// The handle to Cohort's database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub(crate) db: DatabaseConnection,
    metrics: Arc<StoreMetrics>,
    pub(crate) max_inline_grants: usize,
    /// Viewers resolved in the last minute (their ids, not their grants).
    pub(crate) viewers: Arc<access::viewer::ViewerCache>,
    /// Woken whenever a unit of work commits events, so this process's background worker fans
    /// them out at once instead of at its next poll (other replicas still poll).
    pub(crate) outbox: Arc<events::OutboxSignal>,
    /// Data-usage metering shared by every handle of this store (`usage`).
    pub(crate) usage: Arc<usage::UsageBook>,
    /// The keys of the suppression list's e-mail hashes, shared by every handle of this store.
    pub(crate) link_keys: consent::links::SharedLinkKeys,
}

impl Store {
    /// Connects to `sqlite://…` or `postgres://…`. For SQLite files, the file is created if missing
    /// and WAL journaling is used so readers never wait for the writer.
    pub async fn connect(url: &str, pool: StoreOptions) -> StoreResult<Store> {
        let url = normalise_sqlite_url(url);
        let is_sqlite = url.starts_with("sqlite:");
        let mut opts = ConnectOptions::new(url.clone());
        let max = if is_sqlite && url.contains(":memory:") { 1 } else { pool.max_connections };
        opts.max_connections(max)
            .min_connections(if is_sqlite && url.contains(":memory:") { 1 } else { 0 })
            .acquire_timeout(pool.acquire_timeout)
            .sqlx_logging(false);
        if is_sqlite {
            opts.map_sqlx_sqlite_opts(|o| {
                use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
                // WAL lets readers proceed while one writer commits; NORMAL is durable in WAL mode
                // except for the last transactions before a power cut.
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
            });
        }
        if is_sqlite && url.contains(":memory:") {
            // An in-memory database lives as long as its one connection: never recycle it.
            opts.idle_timeout(None::<Duration>).max_lifetime(None::<Duration>);
        }
        let mut db = Database::connect(opts).await.map_err(StoreError::Database)?;
        let metrics = Arc::new(StoreMetrics::default());
        let m = metrics.clone();
        db.set_metric_callback(move |info| {
            m.statements.fetch_add(1, Ordering::Relaxed);
            m.statement_micros.fetch_add(info.elapsed.as_micros() as u64, Ordering::Relaxed);
            if info.failed {
                m.failed_statements.fetch_add(1, Ordering::Relaxed);
            }
            if m.recording.load(Ordering::Relaxed)
                && let Ok(mut r) = m.recorded.lock()
            {
                r.push(info.statement.clone());
            }
            // `COHORT_LOG=cohort::sql=debug` shows every statement (text only, never values).
            tracing::debug!(target: "cohort::sql", elapsed_us = info.elapsed.as_micros() as u64, failed = info.failed, sql = %info.statement.sql);
        });
        Ok(Store {
            db,
            metrics,
            max_inline_grants: pool.max_inline_grants,
            viewers: Arc::default(),
            outbox: Arc::default(),
            usage: Arc::default(),
            link_keys: consent::links::SharedLinkKeys::new(LinkKeys::ephemeral()),
        })
    }

    /// Installs the public-link keys (`COHORT_PUBLIC_LINK_KEYS`) as the keys of the suppression
    /// list's e-mail hashes for every handle of this store, the background worker's included
    /// (`cohort_api::build` does it at start). Until then a random key of this process is used.
    pub fn use_link_keys(&self, keys: LinkKeys) {
        self.link_keys.set(keys);
    }

    pub(crate) fn dialect(&self) -> core::dialect::Dialect {
        core::dialect::Dialect::of(self.db.get_database_backend())
    }

    /// Starts keeping every statement this store runs (see [`Store::take_recorded`]).
    pub fn start_recording(&self) {
        if let Ok(mut r) = self.metrics.recorded.lock() {
            r.clear();
        }
        self.metrics.recording.store(true, Ordering::Relaxed);
    }

    /// Stops recording and returns the statements run since [`Store::start_recording`], in order.
    pub fn take_recorded(&self) -> Vec<sea_orm::Statement> {
        self.metrics.recording.store(false, Ordering::Relaxed);
        self.metrics.recorded.lock().map(|mut r| std::mem::take(&mut *r)).unwrap_or_default()
    }

    pub fn metrics(&self) -> &StoreMetrics {
        &self.metrics
    }

    /// Data-usage metering of this process (switch it off for a benchmark comparison).
    pub fn usage(&self) -> &UsageBook {
        &self.usage
    }

    /// Writes the metering buffer now (the flusher calls it every second; call it once more on
    /// shutdown so nothing counted is lost).
    pub async fn flush_usage(&self) -> StoreResult<usize> {
        self.usage.flush(&self.db, self.dialect()).await
    }

    pub fn backend_name(&self) -> &'static str {
        self.dialect().name()
    }

    /// (open connections, idle connections) of the pool.
    pub fn pool_stats(&self) -> (u32, u32) {
        match self.db.get_database_backend() {
            DbBackend::Postgres => {
                let p = self.db.get_postgres_connection_pool();
                (p.size(), p.num_idle() as u32)
            }
            DbBackend::Sqlite => {
                let p = self.db.get_sqlite_connection_pool();
                (p.size(), p.num_idle() as u32)
            }
            _ => (0, 0),
        }
    }

    /// Applies every pending migration.
    pub async fn migrate(&self) -> StoreResult<()> {
        cohort_migrations::Migrator::up(&self.db, None).await.map_err(StoreError::Database)
    }

    /// Rolls back every migration (tests and `cohort migrate --down`).
    pub async fn migrate_down_all(&self) -> StoreResult<()> {
        cohort_migrations::Migrator::down(&self.db, None).await.map_err(StoreError::Database)
    }

    /// Ready = the database answers and no migration is pending.
    pub async fn is_ready(&self) -> bool {
        if self.db.execute_unprepared("SELECT 1").await.is_err() {
            return false;
        }
        match cohort_migrations::Migrator::get_pending_migrations(&self.db).await {
            Ok(p) => p.is_empty(),
            Err(_) => false,
        }
    }

    /// The names of the tables that exist (for migration tests).
    pub async fn table_names(&self) -> StoreResult<Vec<String>> {
        let sql = self.dialect().table_names();
        let rows = self.db.query_all_raw(sea_orm::Statement::from_string(self.db.get_database_backend(), sql)).await?;
        rows.iter().map(|r| r.try_get::<String>("", "name").map_err(StoreError::Database)).collect()
    }

    /// The system handle: for the CLI, demo seeding and background work. It can act in any
    /// tenant by design, so it is never handed to request handlers (the API crate receives the
    /// store only to build its [`Gate`], which keeps it private).
    pub fn system(&self) -> SystemHandle {
        SystemHandle::new(self.clone())
    }

    pub async fn close(self) {
        let _ = self.db.close().await;
    }
}

/// `sqlite://cohort.db` → create the file if it is missing (`mode=rwc`), unless a mode is given.
fn normalise_sqlite_url(url: &str) -> String {
    if url.starts_with("sqlite:") && !url.contains(":memory:") && !url.contains("mode=") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}mode=rwc")
    } else {
        url.to_owned()
    }
}
