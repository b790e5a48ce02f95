//! The unit of work: the one transaction type every write runs in.
//!
//! It is opened from the request's [`DataHandle`] (so it carries that viewer), collects the audit
//! entries and domain events the write produces, owns the idempotency key of the request, and on
//! [`UnitOfWork::commit`] writes them together with the data — atomically: a refused or failed
//! write leaves no audit row and no event, a committed one exactly its own. The raw transaction is
//! private to this module's callers in the store; nothing outside the store can open one, and a
//! write helper takes `&UnitOfWork`, never a bare connection.
//!
//! On SQLite the transaction takes the write lock up front (`BEGIN IMMEDIATE`): a deferred
//! transaction that reads and then writes can fail with `SQLITE_BUSY` when another writer got in
//! between, whereas an immediate one just waits.

use crate::access::handle::DataHandle;
use crate::access::viewer::Viewer;
use crate::core::dialect::{Dialect, RowLock};
use crate::core::sql::Sql;
use crate::entities::{audit, event, idempotency};
use crate::error::{StoreError, StoreResult};
use crate::events::{EVENT_SCHEMA_VERSION, EventType, NewEvent, Subject};
use chrono::Utc;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// How long an idempotency key remembers its answer.
const KEY_TTL_HOURS: i64 = 24;

struct AuditEntry {
    action: &'static str,
    target_type: &'static str,
    target_id: Option<Uuid>,
    details: serde_json::Value,
}

/// The key this unit of work claimed, and the answer to store with it at commit.
struct ClaimedKey {
    key: String,
    answer: Option<String>,
}

pub(crate) struct UnitOfWork {
    txn: DatabaseTransaction,
    viewer: Arc<Viewer>,
    request_id: Option<Arc<str>>,
    audit: Mutex<Vec<AuditEntry>>,
    events: Mutex<Vec<NewEvent>>,
    key: Option<ClaimedKey>,
    outbox: Arc<crate::events::OutboxSignal>,
}

/// The tables whose rows a unit of work locks.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LockedTable {
    Tenants,
    Groups,
    Contacts,
    UserGroups,
    WebForms,
    Products,
    PriceLists,
}

/// What claiming an idempotency key found.
pub(crate) enum Claim<T> {
    /// The key is new: this unit of work does the work and its answer is remembered at commit.
    Fresh,
    /// The same user already ran this request with this key: its first answer.
    Replay(T),
}

impl DataHandle {
    /// Opens the unit of work for one write.
    pub(crate) async fn begin(&self) -> StoreResult<UnitOfWork> {
        let txn = self.db.begin_with_options(immediate()).await?;
        Ok(UnitOfWork {
            txn,
            viewer: self.viewer.clone(),
            request_id: self.request_id.clone(),
            audit: Mutex::new(Vec::new()),
            events: Mutex::new(Vec::new()),
            key: None,
            outbox: self.outbox.clone(),
        })
    }
}

impl UnitOfWork {
    /// The transaction, for the statements of the write itself.
    pub(crate) fn tx(&self) -> &DatabaseTransaction {
        &self.txn
    }

    pub(crate) fn viewer(&self) -> &Viewer {
        &self.viewer
    }

    pub(crate) fn dialect(&self) -> Dialect {
        self.viewer.dialect
    }

    /// Records a change for the audit log (written at commit, with the actor and request id).
    /// `details` hold ids, keys, counts and configuration values only — never personal data:
    /// the log is append-only and erasure cannot reach it. Updates record
    /// `{"changed": {field: {"before": …, "after": …}}}` (see [`crate::audit::Changes`]).
    pub(crate) fn audit(
        &self,
        action: &'static str,
        target_type: &'static str,
        target_id: Option<Uuid>,
        details: serde_json::Value,
    ) {
        if let Ok(mut a) = self.audit.lock() {
            a.push(AuditEntry { action, target_type, target_id, details });
        }
    }

    /// Records a domain event for the outbox (written at commit).
    pub(crate) fn emit(&self, event_type: EventType, subjects: Vec<Subject>, payload: serde_json::Value) {
        if let Ok(mut e) = self.events.lock() {
            e.push(NewEvent::new(event_type, subjects, payload));
        }
    }

    /// Serialises the tenant's hierarchy changes (create under a parent, move, delete): each reads
    /// the ancestors and subtree it rewrites, and two of them interleaving on PostgreSQL could
    /// otherwise each pass the cycle check against a tree the other is changing. One row lock on
    /// the tenant, held to commit; SQLite's single writer serialises them already.
    pub(crate) async fn lock_hierarchy(&self) -> StoreResult<()> {
        self.lock_row(LockedTable::Tenants, self.viewer.tenant_id.0, RowLock::NoKeyUpdate).await
    }

    /// Locks many groups of the viewer's tenant until commit, in one statement (rows that no
    /// longer exist are simply not locked; callers read them again after locking).
    pub(crate) async fn lock_groups(&self, ids: &[Uuid], lock: RowLock) -> StoreResult<()> {
        let suffix = self.dialect().lock_rows(lock);
        if suffix.is_empty() || ids.is_empty() {
            return Ok(());
        }
        // In id order (and in bounded lists), so two lockers of overlapping sets cannot deadlock.
        let mut sorted = ids.to_vec();
        sorted.sort();
        for chunk in sorted.chunks(1000) {
            let mut q = Sql::new(self.dialect());
            q.push("SELECT id FROM contact_groups WHERE tenant_id = ")
                .bind(self.viewer.tenant_id.0)
                .push(" AND id IN ")
                .bind_list(chunk.iter().copied())
                .push(" ORDER BY id")
                .push(suffix);
            self.txn.query_all_raw(q.build()).await?;
        }
        Ok(())
    }

    /// Locks one row of the viewer's tenant until commit (PostgreSQL; nothing on SQLite, whose
    /// writers are serialised). A row that no longer exists is `NotFound`.
    pub(crate) async fn lock_row(&self, table: LockedTable, id: Uuid, lock: RowLock) -> StoreResult<()> {
        let suffix = self.dialect().lock_rows(lock);
        if suffix.is_empty() {
            return Ok(());
        }
        let mut q = Sql::new(self.dialect());
        let tenant_table = match table {
            LockedTable::Tenants => None,
            LockedTable::Groups => Some("contact_groups"),
            LockedTable::Contacts => Some("contacts"),
            LockedTable::UserGroups => Some("user_groups"),
            LockedTable::WebForms => Some("web_forms"),
            LockedTable::Products => Some("products"),
            LockedTable::PriceLists => Some("price_lists"),
        };
        match tenant_table {
            None => q.push("SELECT id FROM tenants WHERE id = ").bind(id),
            Some(t) => q
                .push("SELECT id FROM ")
                .push(t)
                .push(" WHERE tenant_id = ")
                .bind(self.viewer.tenant_id.0)
                .push(" AND id = ")
                .bind(id),
        };
        q.push(suffix);
        self.txn.query_one_raw(q.build()).await?.map(|_| ()).ok_or(StoreError::NotFound)
    }

    /// Holds a lock on `key` until commit (PostgreSQL advisory lock; nothing on SQLite).
    pub(crate) async fn lock_key(&self, key: i64) -> StoreResult<()> {
        if let Some(prefix) = self.dialect().advisory_xact_lock() {
            let mut q = Sql::new(self.dialect());
            q.push(prefix).bind(key).push(")");
            self.txn.execute_raw(q.build()).await?;
        }
        Ok(())
    }

    /// Claims `key` for this user's request `op` with `fingerprint` (a hash of its arguments).
    ///
    /// The claim is an insert that does nothing on conflict: of concurrent callers with one key,
    /// the first proceeds and the others wait on its row until it commits, then read its answer
    /// (PostgreSQL), or they simply queue behind the writer lock (SQLite). Keys are per tenant
    /// **and user**: another user's identical key is a different request.
    pub(crate) async fn claim_key<T: DeserializeOwned>(
        &mut self,
        key: &str,
        op: &'static str,
        fingerprint: &str,
    ) -> StoreResult<Claim<T>> {
        check_key(key)?;
        let v = self.viewer.clone();
        let now = Utc::now();
        // Keys live for a day; this user's expired ones are swept first, so a stale answer is
        // never replayed.
        idempotency::Entity::delete_many()
            .filter(idempotency::Column::TenantId.eq(v.tenant_id.0))
            .filter(idempotency::Column::UserId.eq(v.user_id.0))
            .filter(idempotency::Column::CreatedAt.lt(now - chrono::Duration::hours(KEY_TTL_HOURS)))
            .exec(&self.txn)
            .await?;
        let inserted = idempotency::Entity::insert(idempotency::ActiveModel {
            tenant_id: Set(v.tenant_id.0),
            user_id: Set(v.user_id.0),
            key: Set(key.to_owned()),
            operation: Set(op.to_owned()),
            request_hash: Set(fingerprint.to_owned()),
            response: Set(String::new()),
            created_at: Set(now),
        })
        .on_conflict(
            OnConflict::columns([idempotency::Column::TenantId, idempotency::Column::UserId, idempotency::Column::Key])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&self.txn)
        .await?;
        if inserted == 1 {
            self.key = Some(ClaimedKey { key: key.to_owned(), answer: None });
            return Ok(Claim::Fresh);
        }
        let row = idempotency::Entity::find()
            .filter(idempotency::Column::TenantId.eq(v.tenant_id.0))
            .filter(idempotency::Column::UserId.eq(v.user_id.0))
            .filter(idempotency::Column::Key.eq(key))
            .one(&self.txn)
            .await?
            .ok_or_else(|| StoreError::corrupt("idempotency_keys", key))?;
        if row.operation != op || row.request_hash != fingerprint {
            return Err(StoreError::Conflict("this idempotency key was already used for a different request".into()));
        }
        serde_json::from_str(&row.response)
            .map(Claim::Replay)
            .map_err(|_| StoreError::corrupt("idempotency_keys.response", &row.response))
    }

    /// The answer to remember with the claimed key (if any) at commit.
    pub(crate) fn answer<T: Serialize>(&mut self, answer: &T) -> StoreResult<()> {
        if let Some(k) = self.key.as_mut() {
            k.answer = Some(serde_json::to_string(answer).map_err(|_| StoreError::corrupt("idempotent answer", "-"))?);
        }
        Ok(())
    }

    /// Writes the audit entries, the events and the idempotent answer, then commits — all or
    /// nothing. Returns the ids of the events written.
    pub(crate) async fn commit(self) -> StoreResult<Vec<Uuid>> {
        let UnitOfWork { txn, viewer: v, request_id, audit, events, key, outbox } = self;
        let now = Utc::now();
        let audit = audit.into_inner().unwrap_or_default();
        if !audit.is_empty() {
            audit::Entity::insert_many(audit.into_iter().map(|a| audit::ActiveModel {
                tenant_id: Set(v.tenant_id.0),
                id: Set(Uuid::now_v7()),
                actor_id: Set(Some(v.user_id.0)),
                action: Set(a.action.to_owned()),
                target_type: Set(a.target_type.to_owned()),
                target_id: Set(a.target_id),
                at: Set(now),
                details: Set(Some(a.details.to_string())),
                request_id: Set(request_id.as_deref().map(str::to_owned)),
                actor_kind: Set(crate::audit::ACTOR_USER.to_owned()),
            }))
            .exec_without_returning(&txn)
            .await?;
        }
        let events = events.into_inner().unwrap_or_default();
        let mut ids = Vec::with_capacity(events.len());
        if !events.is_empty() {
            let mut fresh = ordered_event_ids(&txn, v.tenant_id.0, events.len()).await?.into_iter();
            let rows: Vec<event::ActiveModel> = events
                .into_iter()
                .map(|e| {
                    let id = fresh.next().unwrap_or_else(Uuid::now_v7);
                    ids.push(id);
                    event::ActiveModel {
                        tenant_id: Set(v.tenant_id.0),
                        id: Set(id),
                        event_type: Set(e.event_type.as_str().to_owned()),
                        occurred_at: Set(now),
                        actor_id: Set(Some(v.user_id.0)),
                        request_id: Set(request_id.as_deref().map(str::to_owned)),
                        subjects: Set(serde_json::to_string(&e.subjects).unwrap_or_else(|_| "[]".into())),
                        schema_version: Set(EVENT_SCHEMA_VERSION),
                        payload: Set(e.payload.to_string()),
                        dispatched_at: Set(None),
                    }
                })
                .collect();
            event::Entity::insert_many(rows).exec_without_returning(&txn).await?;
        }
        if let Some(ClaimedKey { key, answer }) = key {
            let answer = answer.ok_or_else(|| StoreError::corrupt("idempotent answer", "missing at commit"))?;
            idempotency::Entity::update_many()
                .col_expr(idempotency::Column::Response, sea_orm::sea_query::Expr::value(answer))
                .filter(idempotency::Column::TenantId.eq(v.tenant_id.0))
                .filter(idempotency::Column::UserId.eq(v.user_id.0))
                .filter(idempotency::Column::Key.eq(key))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        if !ids.is_empty() {
            outbox.committed(v.tenant_id.0);
        }
        Ok(ids)
    }
}

/// Ids for `n` events of `tenant` that the caller's transaction inserts next and then commits.
///
/// Event ids must grow with commit order within a tenant, or a reader resuming from a cursor
/// (`changes(since:)`, `events(after:)`) would skip an event whose transaction took its id first
/// and committed last. On PostgreSQL the tenant's event writers therefore take turns from here to
/// commit (a transaction-scoped advisory lock — the last lock a writer takes, held only for the
/// event insert and the commit) and take ids above the newest committed one, also when another
/// replica's clock is behind. SQLite commits one writer at a time already. Every writer of
/// events goes through here: the unit of work and the few system writers (usage notices, a
/// webhook endpoint disabled, an SLA breach).
pub(crate) async fn ordered_event_ids<C: ConnectionTrait>(conn: &C, tenant: Uuid, n: usize) -> StoreResult<Vec<Uuid>> {
    let mut floor: Option<Uuid> = None;
    if conn.get_database_backend() == sea_orm::DbBackend::Postgres {
        let mut q = Sql::new(Dialect::of(conn.get_database_backend()));
        q.push("SELECT pg_advisory_xact_lock(").bind(event_lock_key(tenant)).push(")");
        conn.execute_raw(q.build()).await?;
        floor = event::Entity::find()
            .filter(event::Column::TenantId.eq(tenant))
            .select_only()
            .column(event::Column::Id)
            .order_by_desc(event::Column::Id)
            .limit(1)
            .into_tuple::<Uuid>()
            .one(conn)
            .await?;
    }
    Ok((0..n).map(|_| next_event_id(&mut floor)).collect())
}

/// The advisory-lock key a tenant's event writers take turns on (see `ordered_event_ids`).
fn event_lock_key(tenant: Uuid) -> i64 {
    let fp = fingerprint(&["events", &tenant.to_string()]);
    u64::from_str_radix(&fp, 16).unwrap_or_default() as i64
}

/// A new UUIDv7 event id above `floor` (the newest id written so far), which it then becomes.
/// Normally the clock is ahead and this is just `now_v7()`; when it is not (another replica's
/// clock, the same millisecond) the id is the floor plus one, still a valid time-ordered id.
fn next_event_id(floor: &mut Option<Uuid>) -> Uuid {
    let mut id = Uuid::now_v7();
    if let Some(f) = *floor
        && id <= f
    {
        id = Uuid::from_u128(f.as_u128() + 1);
    }
    *floor = Some(id);
    id
}

/// Transaction options for a write: `BEGIN IMMEDIATE` on SQLite (see the module docs).
pub(crate) fn immediate() -> sea_orm::TransactionOptions {
    sea_orm::TransactionOptions {
        sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
        ..Default::default()
    }
}

fn check_key(key: &str) -> StoreResult<()> {
    if key.is_empty() || key.len() > 200 || key.chars().any(char::is_control) {
        return Err(StoreError::invalid("idempotencyKey", "must be 1 to 200 printable characters"));
    }
    Ok(())
}

/// FNV-1a over the parts: a stable fingerprint of a request's arguments, to detect an
/// idempotency key reused for a different request.
pub(crate) fn fingerprint(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0u8)) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}
