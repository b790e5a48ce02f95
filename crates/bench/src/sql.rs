//! `cohort-bench sql`: the raw-SQL ceiling of a workload.
//!
//! The statements are not written out by hand (they would drift from the server's): the workload's
//! request is served once in-process by the real router over the same database with statement
//! recording on, and exactly what it ran — text and bound values — is then replayed over a plain
//! connection pool (prepared; sqlx caches each statement per connection) with no HTTP, GraphQL,
//! authentication or JSON in between. One replay of the whole sequence is one "transaction".

use crate::dataset::{self as ds, Size};
use crate::report::{Figures, Stopwatch};
use crate::workloads::{self, Workload};
use anyhow::{Context, bail};
use axum::body::Body;
use cohort_api::config::Settings;
use cohort_store::{Store, StoreOptions};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, Statement};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tower::ServiceExt;

pub struct SqlArgs {
    pub database: String,
    pub workload: Workload,
    pub connections: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub size: Size,
    pub show: bool,
}

/// The statements the server runs for one request of `w` (after one warm-up request).
pub async fn capture(database: &str, w: Workload, size: &Size) -> anyhow::Result<Vec<Statement>> {
    let Some(prepared) = workloads::prepare(w, size) else {
        bail!("the raw-SQL ceiling is measured for the read workloads W1–W5");
    };
    let store = Store::connect(database, StoreOptions { max_connections: 2, ..Default::default() })
        .await
        .context("cannot open the database")?;
    let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let settings = Settings::for_tests(database, &secret);
    let router = cohort_api::build(&settings, store.clone())?;
    let token = cohort_api::auth::issue_hs256(
        secret.as_bytes(),
        &settings.jwt.issuer,
        &settings.jwt.audience,
        ds::TENANT,
        &ds::subject(1),
        &["agent".to_owned()],
        600,
    )?;
    let body = serde_json::to_vec(&prepared.body)?;
    for record in [false, true] {
        let req = axum::http::Request::post("/graphql")
            .header("content-type", "application/json")
            .header("accept", "application/graphql-response+json")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::from(body.clone()))?;
        if record {
            store.start_recording();
        }
        let resp = router.clone().oneshot(req).await?;
        let bytes = axum::body::to_bytes(resp.into_body(), 64 << 20).await?;
        let recorded = if record { store.take_recorded() } else { vec![] };
        let v: serde_json::Value = serde_json::from_slice(&bytes)?;
        (prepared.check)(&v).map_err(|e| anyhow::anyhow!("{} answered wrongly in-process: {e}", w.name()))?;
        if record {
            store.close().await;
            return Ok(recorded);
        }
    }
    bail!("nothing recorded")
}

pub async fn run(args: SqlArgs) -> anyhow::Result<Figures> {
    let statements = Arc::new(capture(&args.database, args.workload, &args.size).await?);
    eprintln!("{}: {} statements per request", args.workload.name(), statements.len());
    if args.show {
        for s in statements.iter() {
            eprintln!("  {}\n    values: {:?}", s.sql, s.values.as_ref().map(|v| &v.0));
        }
    }
    let mut opts = ConnectOptions::new(args.database.clone());
    opts.max_connections(args.connections as u32).min_connections(args.connections as u32).sqlx_logging(false);
    let db: DatabaseConnection = Database::connect(opts).await.context("cannot open the database")?;
    let backend = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => "postgres",
        _ => "sqlite",
    };

    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let mut tasks = vec![];
    for _ in 0..args.connections {
        let (db, statements, stop, measuring) = (db.clone(), statements.clone(), stop.clone(), measuring.clone());
        tasks.push(tokio::spawn(async move {
            let mut w = Stopwatch::new();
            let mut errors = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let mut ok = true;
                for s in statements.iter() {
                    if db.query_all_raw(s.clone()).await.is_err() {
                        ok = false;
                    }
                }
                if measuring.load(Ordering::Relaxed) {
                    if ok {
                        w.record(t.elapsed());
                    } else {
                        errors += 1;
                    }
                }
            }
            (w, errors)
        }));
    }
    tokio::time::sleep(args.warmup).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(args.duration).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut all = Stopwatch::new();
    let mut errors = 0;
    for t in tasks {
        let (w, e) = t.await?;
        all.merge(&w);
        errors += e;
    }
    db.close().await?;
    Ok(Figures::from_stopwatch(
        args.workload.name(),
        "sql",
        backend,
        args.connections,
        &all,
        elapsed,
        errors,
        Some(statements.len() as f64),
        None,
    ))
}
