//! Helpers for test suites that need their own PostgreSQL database. Not used by the service.
//!
//! Migrating a fresh database for every test is slow on PostgreSQL (dozens of DDL statements,
//! each with its catalog work), so test databases are *cloned* from one migrated template:
//! [`create_migrated_postgres_database`] makes, once per process, the template
//! `cohort_tmpl_<16 hex>` (named after a hash of the migration names and sources, so a new migration makes a
//! new template) and then runs `CREATE DATABASE <name> TEMPLATE <template>`, a file copy.
//!
//! How the template stays correct:
//! - it is built under a temporary name and renamed to its final name as the very last step, so
//!   a database with the final name is always complete and is reused by later runs;
//! - builders in different processes (`cargo test` runs test binaries one after another, but
//!   people run several at once) take a PostgreSQL advisory lock first; the lock is held by the
//!   building session and released when it ends, so a builder that crashed leaves no lock, and
//!   the temporary database it left behind is dropped by the next builder;
//! - nothing ever keeps a connection to the template (cloning refuses a template that anyone is
//!   connected to): it is built over one connection that is closed before the rename, and it is
//!   marked `ALLOW_CONNECTIONS false`, so no one can connect to it later by mistake.
//!
//! Templates of older migration sets are left alone (another checkout may still be using them);
//! drop them with `DROP DATABASE … WITH (FORCE)` when they are no longer wanted. Editing a
//! migration in place (same name, new content) needs the template dropped by hand.

use cohort_migrations::MigratorTrait;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, Statement};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use tokio::sync::OnceCell;

fn check_name(name: &str) -> Result<(), sea_orm::DbErr> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        return Err(sea_orm::DbErr::Custom("invalid database name".into()));
    }
    Ok(())
}

/// `CREATE DATABASE name` through the maintenance connection `admin_url`.
pub async fn create_postgres_database(admin_url: &str, name: &str) -> Result<(), sea_orm::DbErr> {
    check_name(name)?;
    let db = Database::connect(admin_url).await?;
    db.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await?;
    db.close().await
}

/// `DROP DATABASE name WITH (FORCE)` through `admin_url`.
pub async fn drop_postgres_database(admin_url: &str, name: &str) -> Result<(), sea_orm::DbErr> {
    check_name(name)?;
    let db = Database::connect(admin_url).await?;
    db.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await?;
    db.close().await
}

/// The name of the template database for the current set of migrations:
/// `cohort_tmpl_` and a 64-bit hash of the migration names and their source text, in order (a
/// migration edited before it ships gets a new template too).
pub fn postgres_template_name() -> String {
    let names: Vec<String> = cohort_migrations::Migrator::migrations().iter().map(|m| m.name().to_owned()).collect();
    let mut parts: Vec<&str> = names.iter().map(String::as_str).collect();
    parts.extend(cohort_migrations::sources().iter().copied());
    format!("cohort_tmpl_{}", crate::core::uow::fingerprint(&parts))
}

/// One initialisation per admin URL and process, safe under parallel tests (the others wait).
fn template_cell(admin_url: &str) -> Arc<OnceCell<String>> {
    static CELLS: LazyLock<Mutex<HashMap<String, Arc<OnceCell<String>>>>> = LazyLock::new(Default::default);
    let mut cells = CELLS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    cells.entry(admin_url.to_owned()).or_default().clone()
}

/// Makes sure the migrated template exists on the server of `admin_url` (built at most once per
/// process; reused across runs) and returns its name.
pub async fn postgres_template(admin_url: &str) -> Result<String, DbErr> {
    let cell = template_cell(admin_url);
    let name = cell
        .get_or_try_init(|| async {
            let name = postgres_template_name();
            ensure_template(admin_url, &name).await?;
            Ok::<_, DbErr>(name)
        })
        .await?;
    Ok(name.clone())
}

/// `CREATE DATABASE name TEMPLATE <the migrated template>` through `admin_url`: a fresh database
/// with every migration applied, without running them.
pub async fn create_migrated_postgres_database(admin_url: &str, name: &str) -> Result<(), DbErr> {
    check_name(name)?;
    let template = postgres_template(admin_url).await?;
    let db = Database::connect(admin_url).await?;
    let res = db.execute_unprepared(&format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\"")).await;
    let closed = db.close().await;
    res?;
    closed
}

/// A pool of exactly one connection that is never recycled: session state (the advisory lock)
/// stays on it.
async fn one_connection(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut o = ConnectOptions::new(url.to_owned());
    o.max_connections(1)
        .min_connections(0)
        .idle_timeout(None::<std::time::Duration>)
        .max_lifetime(None::<std::time::Duration>)
        .sqlx_logging(false);
    Database::connect(o).await
}

async fn database_exists(db: &DatabaseConnection, name: &str) -> Result<bool, DbErr> {
    let st = Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT 1 AS present FROM pg_database WHERE datname = $1",
        [name.into()],
    );
    Ok(db.query_one_raw(st).await?.is_some())
}

async fn ensure_template(admin_url: &str, template: &str) -> Result<(), DbErr> {
    check_name(template)?;
    let admin = one_connection(admin_url).await?;
    let res = build_template_locked(&admin, admin_url, template).await;
    // Ending the session also releases the advisory lock, whatever happened above.
    let closed = admin.close().await;
    res?;
    closed
}

async fn build_template_locked(admin: &DatabaseConnection, admin_url: &str, template: &str) -> Result<(), DbErr> {
    if database_exists(admin, template).await? {
        return Ok(());
    }
    // A stable lock key per template name (the hash part of it).
    let hash = template.rsplit('_').next().unwrap_or_default();
    let key = u64::from_str_radix(hash, 16).map_err(|_| DbErr::Custom("template name without hash".into()))? as i64;
    admin.execute_unprepared(&format!("SELECT pg_advisory_lock({key})")).await?;
    // Another process may have finished it while this one waited for the lock.
    if database_exists(admin, template).await? {
        admin.execute_unprepared(&format!("SELECT pg_advisory_unlock({key})")).await?;
        return Ok(());
    }
    // Whoever held the lock before and left this behind did not finish: start over.
    let tmp = format!("{template}_new");
    admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{tmp}\" WITH (FORCE)")).await?;
    admin.execute_unprepared(&format!("CREATE DATABASE \"{tmp}\"")).await?;
    let db = one_connection(&with_database(admin_url, &tmp)).await?;
    let migrated = cohort_migrations::Migrator::up(&db, None).await;
    let closed = db.close().await;
    migrated?;
    closed?;
    admin.execute_unprepared(&format!("ALTER DATABASE \"{tmp}\" WITH ALLOW_CONNECTIONS false")).await?;
    // The rename is the mark of completeness: only a fully migrated template has this name.
    admin.execute_unprepared(&format!("ALTER DATABASE \"{tmp}\" RENAME TO \"{template}\"")).await?;
    admin.execute_unprepared(&format!("SELECT pg_advisory_unlock({key})")).await?;
    Ok(())
}

/// How many audit rows `store` holds, over all tenants. The audit log has no public read yet; the
/// contract suite needs this to show that a refused write leaves no audit row behind.
pub async fn audit_row_count(store: &crate::Store) -> crate::StoreResult<u64> {
    use sea_orm::{EntityTrait, PaginatorTrait};
    Ok(crate::entities::audit::Entity::find().count(&store.db).await?)
}

/// Replaces the database name in a PostgreSQL URL.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// Signs a public link the way the server does, for tests of expiry, tampering and rotation
/// (`confirm`: a confirmation link with `reference` = its request; otherwise a preference link
/// with `reference` = its group or nil).
pub fn sign_link(
    keys: &str,
    confirm: bool,
    tenant: uuid::Uuid,
    contact: uuid::Uuid,
    reference: uuid::Uuid,
    expires_at: chrono::DateTime<chrono::Utc>,
) -> String {
    use crate::consent::links::{LinkClaims, LinkKeys, LinkPurpose};
    let keys = LinkKeys::parse(keys).expect("link keys");
    let purpose = if confirm { LinkPurpose::Confirm } else { LinkPurpose::Preferences };
    keys.sign(&LinkClaims { purpose, expires_at, tenant, contact, reference })
}

/// The id of the tenant with `key`.
pub async fn tenant_id(store: &crate::Store, key: &str) -> crate::StoreResult<uuid::Uuid> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    crate::entities::tenant::Entity::find()
        .filter(crate::entities::tenant::Column::Key.eq(key))
        .one(&store.db)
        .await?
        .map(|t| t.id)
        .ok_or(crate::StoreError::NotFound)
}

/// Runs one raw statement against the store's database, bypassing every rule: for tests that
/// prove the database itself refuses something (the consent log's append-only triggers).
pub async fn execute_unchecked(store: &crate::Store, sql: &str) -> Result<u64, sea_orm::DbErr> {
    use sea_orm::ConnectionTrait;
    Ok(store.db.execute_unprepared(sql).await?.rows_affected())
}

/// Runs one raw query whose single row has an integer column `n` (a count), bypassing every
/// rule: for tests that check invariants across tables (member counters against membership rows).
pub async fn count_unchecked(store: &crate::Store, sql: &str) -> Result<i64, sea_orm::DbErr> {
    use sea_orm::{ConnectionTrait, Statement};
    let backend = store.db.get_database_backend();
    let row = store.db.query_one_raw(Statement::from_string(backend, sql.to_owned())).await?;
    Ok(row.map(|r| r.try_get::<i64>("", "n")).transpose()?.unwrap_or(0))
}

/// Every `table.column` of text-like type (text, varchar, char, json, jsonb) whose value contains
/// `needle` (case-insensitive), over the whole database, enumerated from the catalogue
/// (PostgreSQL `information_schema.columns` of the `public` schema; SQLite `sqlite_master` and
/// `pragma_table_info`). For the erasure test: after erasing, nothing may still hold the
/// person's name or address.
pub async fn text_columns_containing(store: &crate::Store, needle: &str) -> Result<Vec<String>, sea_orm::DbErr> {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let backend = store.db.get_database_backend();
    let catalogue = match backend {
        DbBackend::Postgres => {
            "SELECT table_name::text AS t, column_name::text AS c FROM information_schema.columns \
             WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb') \
             ORDER BY 1, 2"
        }
        _ => {
            "SELECT m.name AS t, p.name AS c FROM sqlite_master m, pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND (UPPER(p.type) LIKE '%CHAR%' \
             OR UPPER(p.type) LIKE '%TEXT%' OR UPPER(p.type) LIKE '%JSON%' OR UPPER(p.type) LIKE '%CLOB%' \
             OR p.type = '') ORDER BY 1, 2"
        }
    };
    let cols = store.db.query_all_raw(Statement::from_string(backend, catalogue)).await?;
    let mut hits = vec![];
    let pattern = format!("%{}%", needle.to_lowercase());
    for r in cols {
        let t: String = r.try_get("", "t")?;
        let c: String = r.try_get("", "c")?;
        // Identifiers come from the catalogue, quoted; the needle is bound.
        let (q, p) = if backend == DbBackend::Postgres { ("$1", "::text") } else { ("?", "") };
        let sql = format!(
            "SELECT COUNT(*) AS n FROM \"{}\" WHERE LOWER(\"{}\"{p}) LIKE {q}",
            t.replace('"', "\"\""),
            c.replace('"', "\"\"")
        );
        let row =
            store.db.query_one_raw(Statement::from_sql_and_values(backend, sql, [pattern.clone().into()])).await?;
        let n: i64 = row.map(|r| r.try_get::<i64>("", "n")).transpose()?.unwrap_or(0);
        if n > 0 {
            hits.push(format!("{t}.{c} ({n})"));
        }
    }
    Ok(hits)
}

/// Writes an outbox event row with the given id directly — no unit of work, no wake-up — as a
/// transaction that took its id earlier and committed later would have: for the live-feed tests
/// (a subscriber must still get it, once).
pub async fn insert_event_unchecked(
    store: &crate::Store,
    tenant: uuid::Uuid,
    id: uuid::Uuid,
    event_type: crate::EventType,
) -> crate::StoreResult<()> {
    use crate::entities::event;
    use sea_orm::{ActiveValue::Set, EntityTrait};
    event::Entity::insert(event::ActiveModel {
        tenant_id: Set(tenant),
        id: Set(id),
        event_type: Set(event_type.as_str().to_owned()),
        occurred_at: Set(chrono::Utc::now()),
        actor_id: Set(None),
        request_id: Set(None),
        subjects: Set("[]".into()),
        schema_version: Set(crate::EVENT_SCHEMA_VERSION),
        payload: Set("{}".into()),
        dispatched_at: Set(Some(chrono::Utc::now())),
    })
    .exec_without_returning(&store.db)
    .await?;
    Ok(())
}
