//! Cohort's API: the axum router, JWT → viewer, the GraphQL schema, error mapping, limits and
//! metrics. The binary (`src/main.rs`) and the tests build the service through [`build`].

pub mod auth;
pub mod config;
pub mod door;
pub mod error;
pub mod graphiql;
pub mod graphql;
pub mod http;
pub mod mail;
pub mod metrics;
pub mod persisted;
pub mod public;
pub mod rest;
pub mod server;
pub mod telemetry;
pub mod webhooks;
pub mod ws;

use cohort_store::{Gate, KeyConfigError};
use config::Settings;
use std::sync::Arc;

pub use graphql::sdl;
pub use rest::openapi_json;

/// Builds the service's router over an already-connected (and migrated) store. The store goes
/// into the [`Gate`] and no further: handlers and resolvers only ever see per-request handles.
pub fn build(settings: &Settings, store: cohort_store::Store) -> Result<axum::Router, KeyConfigError> {
    let links = Arc::new(settings.public.links(settings.listen, settings.smtp.is_some())?);
    if links.keys.is_ephemeral() {
        tracing::warn!(
            "COHORT_PUBLIC_LINK_KEYS is not set: public links (double opt-in, preference centre) are signed with a \
             random key of this process and stop working when it restarts; set it in production"
        );
    }
    // The suppression list's hashes are keyed with the link keys: every handle of this store (and
    // the sequence steps of this process's worker) checks the list with the keys erasure uses.
    store.use_link_keys(links.keys.clone());
    let door = Arc::new(cohort_store::PublicDoor::new(store.clone(), links.clone()));
    let public = public::PublicState::new(door, &settings.public.endpoints);
    store.usage().set_enabled(settings.data_usage);
    store.usage().set_policy_ttl(settings.data_usage_policy_ttl);
    if let Some(every) = settings.data_usage_flush {
        spawn_usage_flusher(&store, every);
    }
    let gate = Arc::new(Gate::new(store, &settings.jwt)?);
    let schema = graphql::build_schema(&settings.limits, settings.introspection);
    let state = http::AppState {
        non_null_roots: Arc::new(http::NonNullRoots::of(&schema)),
        schema,
        gate,
        metrics: Arc::new(metrics::Metrics::new()),
        limits: settings.limits.clone(),
        graphiql: settings.graphiql,
        webhooks: Arc::new(settings.webhooks.clone()),
        links,
        live: Arc::new(ws::LiveState::new(&settings.subscriptions)),
        persisted: Arc::new(persisted::Persisted::new(&settings.persisted, settings.introspection)),
    };
    Ok(http::router(state, public, settings))
}

pub use server::serve_with;

/// Writes the data-usage buffer every `every` (DESIGN §2: reads are counted off the hot path) for
/// as long as the runtime lives
/// (the binary flushes once more after draining requests). A failed flush keeps its entries for
/// the next one and is logged.
fn spawn_usage_flusher(store: &cohort_store::Store, every: std::time::Duration) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
    let store = store.clone();
    rt.spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = store.flush_usage().await {
                tracing::warn!(error = %e, "writing data-usage figures failed; kept for the next flush");
            }
        }
    });
}

/// Starts the webhook delivery worker (when `settings.webhooks.worker`) as a task; send `true`
/// on the returned channel and await the handle to stop it after its in-flight attempts.
pub fn spawn_webhook_worker(
    settings: &Settings,
    store: &cohort_store::Store,
) -> Option<(tokio::sync::watch::Sender<bool>, tokio::task::JoinHandle<()>)> {
    if !settings.webhooks.worker {
        return None;
    }
    // A worker on its own (`cohort worker`) checks the suppression list for sequence steps with
    // the configured link keys, as the servers do (see `build`).
    if settings.public.link_keys.is_some()
        && let Ok(l) = settings.public.links(settings.listen, false)
    {
        store.use_link_keys(l.keys);
    }
    let mailer = settings.smtp.as_ref().and_then(|smtp| {
        // Both are start-up configuration errors, for the operator's log only.
        let links = match settings.public.links(settings.listen, true) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "confirmation mails are not sent: the link keys are invalid");
                return None;
            }
        };
        match mail::Mailer::new(smtp, Arc::new(links)) {
            Ok(m) => Some(Arc::new(m)),
            Err(e) => {
                tracing::error!(error = %e, "confirmation mails are not sent: the SMTP configuration is invalid");
                None
            }
        }
    });
    let (tx, rx) = tokio::sync::watch::channel(false);
    let handle = tokio::spawn(webhooks::run_worker(store.system(), settings.webhooks.clone(), mailer, rx));
    Some((tx, handle))
}

/// Serves until `shutdown` resolves, then drains in-flight requests; with the default
/// [`config::ServerLimits`] (see [`serve_with`] and [`server`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, router, &config::ServerLimits::default(), shutdown).await
}
