//! `cohort` — the contact-groups service.
//!
//! `serve` migrates and serves; `serve --demo` needs no configuration at all; `migrate`, `schema`,
//! `openapi` and `token` are the operator's tools. Configuration comes from `COHORT_*` variables.

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use cohort_api::config::Settings;
use cohort_store::Store;
use secrecy::{ExposeSecret, SecretString};

/// mimalloc instead of glibc malloc: per-thread free lists without glibc's arena locking and
/// chunk coalescing (`unlink_chunk` alone was 3 % of a W1 request's CPU; BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "cohort", version, about = "Contact groups for CRMs: a GraphQL API that never leaks a contact")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Apply migrations, then serve (default: SQLite `cohort.db`, 127.0.0.1:8080).
    Serve {
        /// Create a demo tenant with sample data, enable GraphiQL and print ready-to-use tokens.
        #[arg(long)]
        demo: bool,
    },
    /// Apply pending migrations (or, with --down, roll every migration back).
    Migrate {
        #[arg(long)]
        down: bool,
    },
    /// Run only the webhook delivery worker (for deployments that separate it from `serve`;
    /// several may run against one PostgreSQL database).
    Worker,
    /// Print the GraphQL SDL.
    Schema,
    /// Print the REST facade's OpenAPI 3.1 document (JSON).
    Openapi,
    /// Issue an HS256 token (needs COHORT_JWT_SECRET).
    Token {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        subject: String,
        /// admin, agent or integration; repeat for several.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// Lifetime: seconds, or with a unit (30m, 12h, 7d). Default 1h.
        #[arg(long, default_value = "1h")]
        ttl: String,
    },
}

fn parse_ttl(s: &str) -> anyhow::Result<u64> {
    let s = s.trim();
    let (num, mul) = match s.chars().last() {
        Some('s') => (&s[..s.len() - 1], 1),
        Some('m') => (&s[..s.len() - 1], 60),
        Some('h') => (&s[..s.len() - 1], 3600),
        Some('d') => (&s[..s.len() - 1], 86_400),
        _ => (s, 1),
    };
    let n: u64 = num.parse().with_context(|| format!("--ttl: '{s}' is not a duration"))?;
    if n == 0 || n * mul > 366 * 86_400 {
        bail!("--ttl must be between 1 second and 366 days");
    }
    Ok(n * mul)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutdown requested; draining in-flight requests");
}

async fn connect(settings: &Settings) -> anyhow::Result<Store> {
    let url = settings.database_url.expose_secret();
    let store = Store::connect(url, settings.database.clone())
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the database {}: {e}", describe_database(url)))?;
    Ok(store)
}

/// Where a database URL points, for error messages: `PostgreSQL at host:port (database d)` or
/// `SQLite file <path>` — never the user's password.
fn describe_database(url: &str) -> String {
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let path = rest.trim_start_matches("//");
        let path = path.split('?').next().unwrap_or(path);
        return format!("(SQLite file '{path}')");
    }
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let rest = rest.rsplit_once('@').map(|(_, r)| r).unwrap_or(rest);
    let (addr, db) = rest.split_once('/').unwrap_or((rest, ""));
    let db = db.split('?').next().unwrap_or(db);
    let addr = if addr.contains(':') { addr.to_owned() } else { format!("{addr}:5432") };
    format!("(PostgreSQL at {addr}, database '{db}')")
}

async fn serve(demo: bool) -> anyhow::Result<()> {
    let settings = Settings::from_env(demo)?;
    let telemetry =
        cohort_api::telemetry::init_with_traces(&settings.log_filter, settings.log_format, settings.traces.as_ref())?;
    let served = run_server(settings, demo).await;
    // After the last request has ended (and its spans with it): the buffered spans leave now.
    telemetry.shutdown().await;
    served
}

async fn run_server(mut settings: Settings, demo: bool) -> anyhow::Result<()> {
    if demo && settings.jwt.secret.is_none() && settings.jwt.public_keys.is_none() {
        // A fresh random secret per run: demo tokens die with the process.
        let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        settings.jwt.secret = Some(SecretString::from(secret));
    }
    // The whole configuration is checked before the database is touched: a bad key file must
    // not fail only after migrations ran.
    cohort_store::check_token_settings(&settings.jwt)?;
    let store = connect(&settings).await?;
    store.migrate().await.map_err(|e| anyhow::anyhow!("migration failed: {e}"))?;
    tracing::info!(database = store.backend_name(), "migrations applied");
    let demo_tokens = if demo {
        let d = store.system().seed_demo().await.map_err(|e| anyhow::anyhow!("demo seeding failed: {e}"))?;
        match &settings.jwt.secret {
            Some(secret) => {
                let issue = |sub: &str, role: &str| {
                    cohort_api::auth::issue_hs256(
                        secret.expose_secret().as_bytes(),
                        &settings.jwt.issuer,
                        &settings.jwt.audience,
                        &d.tenant_key,
                        sub,
                        &[role.to_owned()],
                        12 * 3600,
                    )
                };
                Some((issue(&d.admin_subject, "admin")?, issue(&d.agent_subject, "agent")?))
            }
            None => None,
        }
    } else {
        None
    };
    let router = cohort_api::build(&settings, store.clone())?;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    if demo {
        println!();
        println!("Cohort demo is running.");
        println!("  GraphQL:  http://{addr}/graphql");
        println!("  GraphiQL: http://{addr}/graphiql   (paste a token into the Headers tab:");
        println!("            {{\"Authorization\": \"Bearer <token>\"}})");
        println!("  Health:   http://{addr}/healthz   Metrics: http://{addr}/metrics");
        if let Some((admin, agent)) = &demo_tokens {
            println!();
            println!("Admin token (tenant demo, sees every address book; valid 12 h):");
            println!("{admin}");
            println!();
            println!("Agent token (sees 'Customers DACH' and 'Partners & Leads' only):");
            println!("{agent}");
        }
        println!();
    }
    // Descriptors beyond the HTTP connections: the database pool, files, the listener, logs.
    let reserved = settings.database.max_connections as usize + 64;
    let max_connections = settings.server.fit_open_file_limit(reserved);
    tracing::info!(
        max_connections,
        header_read_timeout_secs = settings.server.header_read_timeout.as_secs(),
        keep_alive_timeout_secs = settings.server.keep_alive_timeout.as_secs(),
        "connection limits"
    );
    let worker = cohort_api::spawn_webhook_worker(&settings, &store);
    cohort_api::serve_with(listener, router, &settings.server, shutdown_signal()).await?;
    // What the last requests received is counted too.
    if let Err(e) = store.flush_usage().await {
        tracing::error!(error = %e, "writing the last data-usage figures failed");
    }
    stop_worker(worker).await;
    store.close().await;
    Ok(())
}

/// Stops the webhook worker after its in-flight attempts (each bounded by its timeout).
async fn stop_worker(worker: Option<(tokio::sync::watch::Sender<bool>, tokio::task::JoinHandle<()>)>) {
    if let Some((tx, handle)) = worker {
        let _ = tx.send(true);
        let _ = handle.await;
    }
}

async fn worker() -> anyhow::Result<()> {
    let mut settings = Settings::from_env(false)?;
    cohort_api::telemetry::init(&settings.log_filter, settings.log_format);
    settings.webhooks.worker = true;
    let store = connect(&settings).await?;
    if !store.is_ready().await {
        bail!("the database has pending migrations: run `cohort migrate` (or `cohort serve`) first");
    }
    let w = cohort_api::spawn_webhook_worker(&settings, &store);
    shutdown_signal().await;
    stop_worker(w).await;
    store.close().await;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve { demo: false }) {
        Command::Serve { demo } => serve(demo).await,
        Command::Migrate { down } => {
            let settings = Settings::from_env(false)?;
            cohort_api::telemetry::init(&settings.log_filter, settings.log_format);
            let store = connect(&settings).await?;
            if down {
                store.migrate_down_all().await.map_err(|e| anyhow::anyhow!("rollback failed: {e}"))?;
                println!("all migrations rolled back");
            } else {
                store.migrate().await.map_err(|e| anyhow::anyhow!("migration failed: {e}"))?;
                println!("migrations applied");
            }
            store.close().await;
            Ok(())
        }
        Command::Worker => worker().await,
        Command::Schema => {
            print!("{}", cohort_api::sdl());
            Ok(())
        }
        Command::Openapi => {
            print!("{}", cohort_api::openapi_json());
            Ok(())
        }
        Command::Token { tenant, subject, roles, ttl } => {
            let settings = Settings::from_env(false)?;
            let Some(secret) = settings.jwt.secret.as_ref() else {
                bail!("`cohort token` issues HS256 tokens and needs COHORT_JWT_SECRET");
            };
            for r in &roles {
                if cohort_domain::Role::parse(r).is_none() {
                    bail!("unknown role '{r}': use admin, agent or integration");
                }
            }
            let token = cohort_api::auth::issue_hs256(
                secret.expose_secret().as_bytes(),
                &settings.jwt.issuer,
                &settings.jwt.audience,
                &tenant,
                &subject,
                &roles,
                parse_ttl(&ttl)?,
            )?;
            println!("{token}");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::describe_database;

    #[test]
    fn database_descriptions_name_the_place_never_the_password() {
        assert_eq!(
            describe_database("postgres://app:s3cret@db.internal:6432/cohort?sslmode=require"),
            "(PostgreSQL at db.internal:6432, database 'cohort')"
        );
        assert_eq!(describe_database("postgresql://db/cohort"), "(PostgreSQL at db:5432, database 'cohort')");
        assert_eq!(describe_database("sqlite:///var/lib/cohort/c.db?mode=rwc"), "(SQLite file '/var/lib/cohort/c.db')");
        assert_eq!(describe_database("sqlite://cohort.db"), "(SQLite file 'cohort.db')");
        assert!(!describe_database("postgres://u:p%40ss@h/d").contains("p%40ss"));
    }
}
