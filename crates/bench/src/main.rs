//! `cohort-bench` — Cohort's benchmark harness (not part of `cargo test`; BENCHMARKS.md says how to
//! run it).
//!
//! - `generate` loads dataset M (`--size m`) or its 1/100 scale (`--size s`) into a database.
//! - `run` drives a running `cohort serve` over HTTP as user 1 and checks every answer.
//! - `sql` replays the exact statements the server runs for a workload, for the raw-SQL ceiling.
//! - `forms` posts public web-form submissions (a fresh tenant each run) and verifies them.
//! - `report` turns the result lines both append to `--out` into the BENCHMARKS.md table.

mod dataset;
mod forms;
mod generate;
mod report;
mod routing;
mod run;
mod sql;
mod tickets;
mod upserts;
mod webhooks;
mod workloads;

use anyhow::Context;
use clap::{Parser, Subcommand};
use dataset::Size;
use report::Figures;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;
use workloads::Workload;

#[derive(Parser)]
#[command(
    name = "cohort-bench",
    about = "Cohort's benchmark harness: dataset M, workloads W1–W10, R4, U1, raw-SQL ceiling"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct Load {
    /// W1 … W6 (DATASET.md); W7 receiveMessage for a contact in 20+ groups with a
    /// responsibility (also counts statements per message for 1 vs 20+ groups); W8 a page of 50
    /// messages of a queue. W9 createTicket for that contact, whose groups carry default SLAs
    /// (also counts statements per ticket for 1 vs 20+ groups); W10 a page of 50 tickets of the
    /// queue, nearest due time first. W7–W10 set up what they need as an admin first. R4 is W4
    /// through the REST facade (`POST /api/v1/prices:resolve`, the same inputs and answer). U1
    /// is `upsertContacts` in batches of 1,000 into a new address book, three phases one after
    /// the other (create, unchanged, 10 % changed), each warm-up + duration, one line each.
    #[arg(long, value_parser = parse_workload)]
    workload: Workload,
    /// Concurrent connections (each runs requests back to back).
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Unmeasured seconds before measuring (connections, caches, JIT users).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// The size the database was generated with (expected answers depend on it).
    #[arg(long, default_value = "m", value_parser = parse_size)]
    size: Size,
    /// Append the result as one JSON line to this file (for `report`).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Load the dataset into an empty database (migrating it first).
    Generate {
        #[arg(long, env = "COHORT_DATABASE_URL")]
        database: String,
        #[arg(long, default_value = "m", value_parser = parse_size)]
        size: Size,
    },
    /// Drive a running server over HTTP.
    Run {
        /// The server, e.g. http://127.0.0.1:8080
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// The server's HS256 secret, to sign user 1's token (and an admin's for W6–W10's setup).
        #[arg(long, env = "COHORT_JWT_SECRET", hide_env_values = true)]
        jwt_secret: String,
        #[arg(long, env = "COHORT_JWT_ISSUER", default_value = "cohort")]
        jwt_issuer: String,
        #[arg(long, env = "COHORT_JWT_AUDIENCE", default_value = "cohort-api")]
        jwt_audience: String,
        /// Act as a tenant admin instead of user 1 (W6: all 10,000 contacts are visible; W7–W10:
        /// post and page as the admin).
        #[arg(long)]
        admin: bool,
        #[command(flatten)]
        load: Load,
    },
    /// Replay the server's statements for W1–W5 directly against the database.
    Sql {
        #[arg(long, env = "COHORT_DATABASE_URL")]
        database: String,
        /// Print the statements and their values.
        #[arg(long)]
        show: bool,
        #[command(flatten)]
        load: Load,
    },
    /// Webhook throughput and commit-to-delivery latency against a running server (worker on,
    /// `COHORT_WEBHOOK_ALLOW_HOSTS=127.0.0.1`): a local receiver, an endpoint for it, and
    /// `connections` producers flipping contacts' business statuses (one event each).
    Webhooks {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        #[arg(long, env = "COHORT_JWT_SECRET", hide_env_values = true)]
        jwt_secret: String,
        #[arg(long, env = "COHORT_JWT_ISSUER", default_value = "cohort")]
        jwt_issuer: String,
        #[arg(long, env = "COHORT_JWT_AUDIENCE", default_value = "cohort-api")]
        jwt_audience: String,
        /// Events to produce (rounded down to a multiple of `connections`).
        #[arg(long, default_value_t = 2000)]
        events: u64,
        #[arg(long, default_value_t = 8)]
        connections: usize,
    },
    /// Public web-form submissions per second against a running server: as the admin of a fresh
    /// tenant, an intake book, four public groups, a consent text and a form; then `connections`
    /// clients post `submissions` in total (new e-mails choosing two groups, every tenth a repeat)
    /// and the result is verified through GraphQL. Raise the server's
    /// `COHORT_PUBLIC_RATE_PER_IP`/`_PER_FORM` (e.g. `1000000/s`), or pass `--expect-limited`.
    Forms {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        #[arg(long, env = "COHORT_JWT_SECRET", hide_env_values = true)]
        jwt_secret: String,
        #[arg(long, env = "COHORT_JWT_ISSUER", default_value = "cohort")]
        jwt_issuer: String,
        #[arg(long, env = "COHORT_JWT_AUDIENCE", default_value = "cohort-api")]
        jwt_audience: String,
        /// Submissions in total (over all connections).
        #[arg(long, default_value_t = 2000)]
        submissions: usize,
        #[arg(long, default_value_t = 16)]
        connections: usize,
        /// Make the form double opt-in (memberships wait for the confirmation link).
        #[arg(long)]
        double_opt_in: bool,
        /// The server runs its default rate limits: 429 answers (each with `Retry-After`) are
        /// expected besides 202, and at least one.
        #[arg(long)]
        expect_limited: bool,
    },
    /// Print the markdown table of a results file.
    Report { file: PathBuf },
}

fn parse_workload(s: &str) -> Result<Workload, String> {
    Workload::parse(s).ok_or_else(|| format!("'{s}' is not a workload (W1 … W10, R4, U1)"))
}

fn parse_size(s: &str) -> Result<Size, String> {
    Size::parse(s).ok_or_else(|| format!("'{s}' is not a size (s or m)"))
}

fn secs(s: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s).map_err(|_| anyhow::anyhow!("'{s}' is not a number of seconds"))
}

fn emit(figures: &[Figures], out: Option<&PathBuf>) -> anyhow::Result<()> {
    for f in figures {
        f.print();
    }
    if let Some(path) = out {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        for f in figures {
            writeln!(file, "{}", f.to_json())?;
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Generate { database, size } => generate::run(&database, size).await,
        Command::Run { url, jwt_secret, jwt_issuer, jwt_audience, admin, load } => {
            let figures = run::run(run::RunArgs {
                url,
                workload: load.workload,
                connections: load.connections.max(1),
                duration: secs(load.duration)?,
                warmup: secs(load.warmup)?,
                size: load.size,
                secret: jwt_secret,
                issuer: jwt_issuer,
                audience: jwt_audience,
                as_admin: admin,
            })
            .await?;
            emit(&figures, load.out.as_ref())?;
            if figures.iter().any(|f| f.errors > 0) {
                anyhow::bail!("{} answered with errors", load.workload.name());
            }
            Ok(())
        }
        Command::Sql { database, show, load } => {
            let figures = sql::run(sql::SqlArgs {
                database,
                workload: load.workload,
                connections: load.connections.max(1),
                duration: secs(load.duration)?,
                warmup: secs(load.warmup)?,
                size: load.size,
                show,
            })
            .await?;
            emit(std::slice::from_ref(&figures), load.out.as_ref())?;
            if figures.errors > 0 {
                anyhow::bail!("{} statements failed", figures.errors);
            }
            Ok(())
        }
        Command::Webhooks { url, jwt_secret, jwt_issuer, jwt_audience, events, connections } => {
            let base = url.trim_end_matches('/').trim_end_matches("/graphql").to_owned();
            let token = cohort_api::auth::issue_hs256(
                jwt_secret.as_bytes(),
                &jwt_issuer,
                &jwt_audience,
                dataset::TENANT,
                "bench-admin",
                &["admin".to_owned()],
                3600,
            )?;
            let admin = run::Client {
                http: reqwest::Client::builder()
                    .pool_max_idle_per_host(connections.max(1))
                    .tcp_nodelay(true)
                    .build()?,
                graphql: format!("{base}/graphql"),
                token,
            };
            println!("{}", webhooks::run(webhooks::WebhookArgs { admin, events, connections }).await?);
            Ok(())
        }
        Command::Forms {
            url,
            jwt_secret,
            jwt_issuer,
            jwt_audience,
            submissions,
            connections,
            double_opt_in,
            expect_limited,
        } => {
            forms::run(forms::FormArgs {
                url,
                secret: jwt_secret,
                issuer: jwt_issuer,
                audience: jwt_audience,
                submissions,
                connections,
                double_opt_in,
                expect_limited,
            })
            .await?;
            Ok(())
        }
        Command::Report { file } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            print!("{}", report::table(&text));
            Ok(())
        }
    }
}
