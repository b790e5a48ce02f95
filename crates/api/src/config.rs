//! Typed configuration, read from the environment (12-factor; DESIGN §3) with safe defaults.
//! Secrets are held in `SecretString` so they cannot end up in a log line by accident.

use secrecy::SecretString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Bounds applied to every GraphQL request before any resolver runs.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_aliases: usize,
    pub max_batch: usize,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 12,
            max_complexity: 2_000,
            max_aliases: 50,
            max_batch: 10,
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// How the HTTP server treats connections (`COHORT_HEADER_READ_TIMEOUT_SECS`,
/// `COHORT_KEEP_ALIVE_TIMEOUT_SECS`, `COHORT_MAX_CONNECTIONS`): slow and idle clients must not
/// hold the server's connections and file descriptors. See [`crate::server`].
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// A request's head (request line and headers) must have arrived this long after the
    /// connection was opened — for the next request on a kept-alive connection, after its first
    /// byte. Beyond it the connection is closed.
    pub header_read_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request, and how long a response
    /// may wait for a client that does not read it, before the connection is closed.
    pub keep_alive_timeout: Duration,
    /// Connections served at once. More are answered `503` and closed at once (the server also
    /// lowers this to what its open-file limit allows, see [`ServerLimits::fit_open_file_limit`]).
    pub max_connections: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            header_read_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(60),
            max_connections: 1024,
        }
    }
}

/// GraphQL subscriptions over WebSocket (`COHORT_WS_*`, `COHORT_EVENTS_POLL_MS`; see [`crate::ws`]):
/// what one client may hold open, and how the server keeps connections honest.
#[derive(Debug, Clone)]
pub struct SubscriptionLimits {
    /// WebSocket connections open at once (`COHORT_WS_MAX_CONNECTIONS`, default 256; 0 turns
    /// subscriptions off); more are answered `503` before the upgrade. Each also keeps its place
    /// under `COHORT_MAX_CONNECTIONS`.
    pub max_connections: usize,
    /// Subscriptions at once on one connection (`COHORT_WS_MAX_SUBSCRIPTIONS`, default 10); one
    /// more is refused with an `error` message (`RATE_LIMITED`), the others go on.
    pub max_subscriptions: usize,
    /// How often the server sends the protocol's `ping` (`COHORT_WS_PING_SECS`, default 15); a
    /// client that sends nothing, not even the `pong`, for two intervals is closed with `3008`.
    pub ping_interval: Duration,
    /// How long after the upgrade `connection_init` may take (`COHORT_WS_INIT_TIMEOUT_SECS`,
    /// default 10); then the server closes with 4408.
    pub init_timeout: Duration,
    /// How often a subscription also looks for events without being woken
    /// (`COHORT_EVENTS_POLL_MS`, default 2000): events of other replicas, and those written outside
    /// a request (the worker's, the metering's).
    pub poll_interval: Duration,
}

impl Default for SubscriptionLimits {
    fn default() -> Self {
        SubscriptionLimits {
            max_connections: 256,
            max_subscriptions: 10,
            ping_interval: Duration::from_secs(15),
            init_timeout: Duration::from_secs(10),
            poll_interval: Duration::from_millis(2000),
        }
    }
}

/// How tokens are verified (`COHORT_JWT_*`); defined with the verifier in the store.
pub use cohort_store::TokenSettings as JwtSettings;

/// Outgoing webhooks (`COHORT_WEBHOOK_*`): the worker, its retry schedule and the outbound
/// policy that keeps it from being pointed at the service's own network (SSRF).
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Run the delivery worker inside `cohort serve` (`COHORT_WEBHOOK_WORKER`, default on);
    /// `cohort worker` runs it alone.
    pub worker: bool,
    /// Hosts exempt from the outbound policy (`COHORT_WEBHOOK_ALLOW_HOSTS`, comma-separated):
    /// they may use `http` and resolve to private or loopback addresses. Empty by default.
    pub allow_hosts: Vec<String>,
    /// The delays before each retry (`COHORT_WEBHOOK_RETRY_SCHEDULE`, e.g. `5s,5m,30m,2h,5h,10h,10h`).
    pub retry_schedule: Vec<chrono::Duration>,
    /// Disable an endpoint after it has failed continuously this long (`COHORT_WEBHOOK_DISABLE_AFTER`, default 5d).
    pub disable_after: chrono::Duration,
    /// Connect timeout and total timeout of one attempt (`COHORT_WEBHOOK_TIMEOUT_SECS`, default 10).
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// How much of a response is read (64 KiB) and how much of it is kept for the log (1 KiB).
    pub max_response_bytes: usize,
    /// How often the worker looks for work when it found none (`COHORT_WEBHOOK_POLL_MS`, default 1000).
    pub poll_interval: Duration,
    /// Deliveries attempted at once per worker (`COHORT_WEBHOOK_CONCURRENCY`, default 16).
    pub concurrency: usize,
    /// How long a claimed delivery stays reserved for its worker (`COHORT_WEBHOOK_LEASE_SECS`,
    /// default 60; always longer than the timeout): a worker killed mid-delivery leaves it to be
    /// claimed again after this.
    pub lease: chrono::Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        let p = cohort_store::RetryPolicy::default();
        WebhookSettings {
            worker: true,
            allow_hosts: vec![],
            retry_schedule: p.schedule,
            disable_after: p.disable_after,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            max_response_bytes: 64 * 1024,
            poll_interval: Duration::from_millis(1000),
            concurrency: 16,
            lease: p.lease,
        }
    }
}

impl WebhookSettings {
    pub fn retry_policy(&self) -> cohort_store::RetryPolicy {
        cohort_store::RetryPolicy {
            schedule: self.retry_schedule.clone(),
            disable_after: self.disable_after,
            lease: self.lease,
        }
    }
}

/// `5s`, `5m`, `2h`, `1d` (or plain seconds).
pub fn parse_duration(name: &str, s: &str) -> Result<chrono::Duration, ConfigError> {
    let s = s.trim();
    let bad = || ConfigError(format!("{name}: '{s}' is not a duration (5s, 5m, 2h, 1d)"));
    let (num, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c),
        _ => (s, 's'),
    };
    let n: i64 = num.parse().map_err(|_| bad())?;
    if n < 0 {
        return Err(bad());
    }
    Ok(match unit {
        's' => chrono::Duration::seconds(n),
        'm' => chrono::Duration::minutes(n),
        'h' => chrono::Duration::hours(n),
        'd' => chrono::Duration::days(n),
        _ => return Err(bad()),
    })
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// May hold a password: a secret, shown in `Debug` output as `[REDACTED]`.
    pub database_url: SecretString,
    /// Pool size, acquire timeout and the inline-grants threshold of the store.
    pub database: cohort_store::StoreOptions,
    pub listen: SocketAddr,
    pub jwt: JwtSettings,
    pub graphiql: bool,
    pub introspection: bool,
    /// Data-usage metering (`COHORT_DATA_USAGE`, default on). Off only for measuring what it
    /// costs: with it off, thresholds and the daily export budget are not enforced either.
    pub data_usage: bool,
    /// How often the metering buffer is written (`COHORT_DATA_USAGE_FLUSH`, default 1s); `None`
    /// = only when figures are read and at shutdown (tests, so background statements never mix
    /// with a request's statement count).
    pub data_usage_flush: Option<std::time::Duration>,
    /// How long a process trusts its copy of a tenant's data-usage policy (changes made through
    /// another replica apply after at most this long).
    pub data_usage_policy_ttl: std::time::Duration,
    pub cors_origins: Vec<String>,
    /// Request headers a browser may send cross-origin (`COHORT_CORS_HEADERS`), lower-case.
    pub cors_headers: Vec<String>,
    pub log_filter: String,
    pub log_format: LogFormat,
    pub limits: Limits,
    pub server: ServerLimits,
    /// GraphQL subscriptions over WebSocket.
    pub subscriptions: SubscriptionLimits,
    pub webhooks: WebhookSettings,
    pub public: PublicConfig,
    /// Confirmation mails sent by Cohort itself (`COHORT_SMTP_URL`, `COHORT_SMTP_FROM`); off
    /// when unset.
    pub smtp: Option<crate::mail::SmtpSettings>,
    /// Automatic persisted queries and trusted documents (`COHORT_APQ_CACHE_SIZE`,
    /// `COHORT_TRUSTED_DOCUMENTS`, see [`crate::persisted`]).
    pub persisted: crate::persisted::PersistedSettings,
    /// Where spans are exported over OTLP/HTTP (`COHORT_OTLP_ENDPOINT`,
    /// `COHORT_OTLP_SERVICE_NAME`); `None` (the default): nothing is exported and no traffic
    /// leaves for it. See [`crate::telemetry`].
    pub traces: Option<TraceExport>,
}

/// Span export over OTLP/HTTP with protobuf bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceExport {
    /// The collector's traces URL: `COHORT_OTLP_ENDPOINT` as given when it ends in `/v1/traces`,
    /// else with `/v1/traces` appended (as `OTEL_EXPORTER_OTLP_ENDPOINT` is read).
    pub traces_url: String,
    /// The `service.name` resource attribute (`COHORT_OTLP_SERVICE_NAME`, default `cohort`).
    pub service_name: String,
}

impl TraceExport {
    /// Checks `COHORT_OTLP_ENDPOINT`: an absolute http(s) URL with a host. Credentials in the URL
    /// are refused (the URL is logged at start-up); a collector's token goes into
    /// `OTEL_EXPORTER_OTLP_HEADERS`, which the exporter reads.
    pub fn parse(endpoint: &str, service_name: Option<String>) -> Result<TraceExport, ConfigError> {
        let bad = |why: &str| ConfigError(format!("COHORT_OTLP_ENDPOINT {why}, not '{endpoint}'"));
        let url = url::Url::parse(endpoint).map_err(|_| bad("must be an http(s) URL such as http://collector:4318"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return Err(bad("must be an http(s) URL such as http://collector:4318"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            // Not echoed: it holds a secret.
            return Err(ConfigError(
                "COHORT_OTLP_ENDPOINT must not carry credentials; put the collector's authorization into \
                 OTEL_EXPORTER_OTLP_HEADERS"
                    .into(),
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("must have no query or fragment"));
        }
        let mut traces_url = url.as_str().trim_end_matches('/').to_owned();
        if !traces_url.ends_with("/v1/traces") {
            traces_url.push_str("/v1/traces");
        }
        let service_name = service_name.unwrap_or_else(|| "cohort".into());
        if service_name.len() > 255 || service_name.chars().any(char::is_control) {
            return Err(ConfigError("COHORT_OTLP_SERVICE_NAME must be at most 255 printable characters".into()));
        }
        Ok(TraceExport { traces_url, service_name })
    }
}

/// Public groups' endpoints and links (`COHORT_PUBLIC_*`, DESIGN §3).
#[derive(Debug, Clone)]
pub struct PublicConfig {
    /// `COHORT_PUBLIC_LINK_KEYS`: `kid:secret,…`, newest first (the newest signs, all verify).
    /// Unset: a random key per process (links die with it; the server warns).
    pub link_keys: Option<SecretString>,
    /// `COHORT_PUBLIC_BASE_URL`: how the public reaches this service (links in mails point
    /// here). Default `http://<COHORT_LISTEN>`.
    pub base_url: Option<String>,
    /// `COHORT_CONFIRM_LINK_TTL` (default 7d) and `COHORT_PREFERENCE_LINK_TTL` (default 365d).
    pub confirm_ttl: chrono::Duration,
    pub preference_ttl: chrono::Duration,
    /// Rate limits and proxy trust.
    pub endpoints: crate::public::PublicSettings,
}

impl Default for PublicConfig {
    fn default() -> Self {
        PublicConfig {
            link_keys: None,
            base_url: None,
            confirm_ttl: chrono::Duration::days(7),
            preference_ttl: chrono::Duration::days(365),
            endpoints: crate::public::PublicSettings::default(),
        }
    }
}

impl PublicConfig {
    /// The signing keys and link settings, checked (`KeyConfigError` on a bad key list).
    pub fn links(
        &self,
        listen: SocketAddr,
        mail: bool,
    ) -> Result<cohort_store::PublicLinks, cohort_store::KeyConfigError> {
        use secrecy::ExposeSecret;
        let keys = match &self.link_keys {
            Some(k) => cohort_store::LinkKeys::parse(k.expose_secret())?,
            None => cohort_store::LinkKeys::ephemeral(),
        };
        let base = self.base_url.clone().unwrap_or_else(|| format!("http://{listen}"));
        Ok(cohort_store::PublicLinks {
            keys,
            base_url: base.trim_end_matches('/').to_owned(),
            confirm_ttl: self.confirm_ttl,
            preference_ttl: self.preference_ttl,
            mail,
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

/// What browsers' GraphQL clients send besides the basics: Apollo Client's client awareness
/// headers, W3C trace context / baggage from the OpenTelemetry and Sentry browser SDKs, and the
/// REST facade's `Idempotency-Key`.
pub const DEFAULT_CORS_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "accept",
    "idempotency-key",
    "apollographql-client-name",
    "apollographql-client-version",
    "traceparent",
    "tracestate",
    "baggage",
];

pub fn default_cors_headers() -> Vec<String> {
    DEFAULT_CORS_HEADERS.iter().map(|h| h.to_string()).collect()
}

/// `COHORT_CORS_HEADERS`: comma-separated header names (each a valid HTTP token).
pub fn parse_cors_headers(s: &str) -> Result<Vec<String>, ConfigError> {
    let mut out = vec![];
    for h in s.split(',').map(str::trim).filter(|h| !h.is_empty()) {
        if axum::http::HeaderName::from_bytes(h.as_bytes()).is_err() {
            return Err(ConfigError(format!("COHORT_CORS_HEADERS: '{h}' is not a header name")));
        }
        out.push(h.to_ascii_lowercase());
    }
    if out.is_empty() {
        return Err(ConfigError("COHORT_CORS_HEADERS must name at least one header".into()));
    }
    Ok(out)
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn env_bool(name: &str, default: bool) -> Result<bool, ConfigError> {
    match env(name).as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some("0" | "false" | "no" | "off") => Ok(false),
        Some(other) => Err(ConfigError(format!("{name} must be true or false, not '{other}'"))),
    }
}

/// `COHORT_WS_*` and `COHORT_EVENTS_POLL_MS`, each within bounds.
fn subscription_limits() -> Result<SubscriptionLimits, ConfigError> {
    let d = SubscriptionLimits::default();
    let ranged = |name: &str, default: u64, min: u64, max: u64| -> Result<u64, ConfigError> {
        let v: u64 = env_num(name, default)?;
        if !(min..=max).contains(&v) {
            return Err(ConfigError(format!("{name} must be {min} to {max}")));
        }
        Ok(v)
    };
    Ok(SubscriptionLimits {
        max_connections: ranged("COHORT_WS_MAX_CONNECTIONS", d.max_connections as u64, 0, 1_000_000)? as usize,
        max_subscriptions: ranged("COHORT_WS_MAX_SUBSCRIPTIONS", d.max_subscriptions as u64, 1, 1000)? as usize,
        ping_interval: Duration::from_secs(ranged("COHORT_WS_PING_SECS", d.ping_interval.as_secs(), 1, 3600)?),
        init_timeout: Duration::from_secs(ranged("COHORT_WS_INIT_TIMEOUT_SECS", d.init_timeout.as_secs(), 1, 300)?),
        poll_interval: Duration::from_millis(ranged(
            "COHORT_EVENTS_POLL_MS",
            d.poll_interval.as_millis() as u64,
            50,
            3_600_000,
        )?),
    })
}

fn env_num<T: std::str::FromStr>(name: &str, default: T) -> Result<T, ConfigError> {
    match env(name) {
        None => Ok(default),
        Some(s) => s.parse().map_err(|_| ConfigError(format!("{name} must be a number, not '{s}'"))),
    }
}

impl Settings {
    /// Reads `COHORT_*` variables. `dev` (demo mode) turns GraphiQL and introspection on by default.
    pub fn from_env(dev: bool) -> Result<Settings, ConfigError> {
        let listen_raw = env("COHORT_LISTEN").unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen = listen_raw
            .parse()
            .map_err(|_| ConfigError(format!("COHORT_LISTEN must be host:port, not '{listen_raw}'")))?;
        let leeway_secs: u64 = env_num("COHORT_JWT_LEEWAY_SECS", 30)?;
        if leeway_secs > 30 {
            return Err(ConfigError("COHORT_JWT_LEEWAY_SECS must be at most 30".into()));
        }
        let log_format = match env("COHORT_LOG_FORMAT").as_deref() {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(o) => {
                return Err(ConfigError(format!("COHORT_LOG_FORMAT must be json or pretty, not '{o}'")));
            }
        };
        let d = Limits::default();
        let db = cohort_store::StoreOptions::default();
        let max_connections: u32 = env_num("COHORT_DATABASE_MAX_CONNECTIONS", db.max_connections)?;
        if !(1..=1000).contains(&max_connections) {
            return Err(ConfigError("COHORT_DATABASE_MAX_CONNECTIONS must be 1 to 1000".into()));
        }
        let acquire_ms: u64 = env_num("COHORT_DATABASE_ACQUIRE_TIMEOUT_MS", db.acquire_timeout.as_millis() as u64)?;
        if acquire_ms == 0 {
            return Err(ConfigError("COHORT_DATABASE_ACQUIRE_TIMEOUT_MS must be at least 1".into()));
        }
        let sd = ServerLimits::default();
        let header_secs: u64 = env_num("COHORT_HEADER_READ_TIMEOUT_SECS", sd.header_read_timeout.as_secs())?;
        if !(1..=300).contains(&header_secs) {
            return Err(ConfigError("COHORT_HEADER_READ_TIMEOUT_SECS must be 1 to 300".into()));
        }
        let keep_alive_secs: u64 = env_num("COHORT_KEEP_ALIVE_TIMEOUT_SECS", sd.keep_alive_timeout.as_secs())?;
        if !(1..=3600).contains(&keep_alive_secs) {
            return Err(ConfigError("COHORT_KEEP_ALIVE_TIMEOUT_SECS must be 1 to 3600".into()));
        }
        let max_http_connections: usize = env_num("COHORT_MAX_CONNECTIONS", sd.max_connections)?;
        if !(1..=1_000_000).contains(&max_http_connections) {
            return Err(ConfigError("COHORT_MAX_CONNECTIONS must be 1 to 1000000".into()));
        }
        let subscriptions = subscription_limits()?;
        let apq_cache_size: usize = env_num("COHORT_APQ_CACHE_SIZE", crate::persisted::DEFAULT_APQ_CACHE_SIZE)?;
        if apq_cache_size > crate::persisted::MAX_APQ_CACHE_SIZE {
            return Err(ConfigError("COHORT_APQ_CACHE_SIZE must be 0 (off) to 1000000".into()));
        }
        // The manifest is read and every entry's hash checked here, before the database is touched.
        let trusted_documents = match env("COHORT_TRUSTED_DOCUMENTS") {
            Some(path) => {
                Some(std::sync::Arc::new(crate::persisted::TrustedDocuments::load(std::path::Path::new(&path))?))
            }
            None => None,
        };
        // Checked here with the rest, before the database is touched.
        let traces = match env("COHORT_OTLP_ENDPOINT") {
            Some(endpoint) => Some(TraceExport::parse(&endpoint, env("COHORT_OTLP_SERVICE_NAME"))?),
            None => None,
        };
        Ok(Settings {
            traces,
            database_url: SecretString::from(env("COHORT_DATABASE_URL").unwrap_or_else(|| "sqlite://cohort.db".into())),
            database: cohort_store::StoreOptions {
                max_connections,
                acquire_timeout: Duration::from_millis(acquire_ms),
                ..db
            },
            listen,
            jwt: JwtSettings {
                secret: env("COHORT_JWT_SECRET").map(SecretString::from),
                public_keys: env("COHORT_JWT_PUBLIC_KEYS").map(PathBuf::from),
                issuer: env("COHORT_JWT_ISSUER").unwrap_or_else(|| "cohort".into()),
                audience: env("COHORT_JWT_AUDIENCE").unwrap_or_else(|| "cohort-api".into()),
                leeway_secs,
            },
            graphiql: env_bool("COHORT_GRAPHIQL", dev)?,
            introspection: env_bool("COHORT_INTROSPECTION", dev)?,
            data_usage: env_bool("COHORT_DATA_USAGE", true)?,
            data_usage_flush: Some(match env("COHORT_DATA_USAGE_FLUSH") {
                Some(s) => parse_duration("COHORT_DATA_USAGE_FLUSH", &s)?
                    .to_std()
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| ConfigError("COHORT_DATA_USAGE_FLUSH: must be a positive duration".into()))?,
                None => std::time::Duration::from_secs(1),
            }),
            data_usage_policy_ttl: std::time::Duration::from_secs(5),
            cors_origins: env("COHORT_CORS_ORIGINS")
                .map(|s| s.split(',').map(|o| o.trim().to_owned()).filter(|o| !o.is_empty()).collect())
                .unwrap_or_default(),
            cors_headers: match env("COHORT_CORS_HEADERS") {
                Some(s) => parse_cors_headers(&s)?,
                None => default_cors_headers(),
            },
            log_filter: env("COHORT_LOG").unwrap_or_else(|| "info,sqlx=warn,sea_orm=warn".into()),
            log_format,
            limits: Limits {
                max_depth: env_num("COHORT_MAX_DEPTH", d.max_depth)?,
                max_complexity: env_num("COHORT_MAX_COMPLEXITY", d.max_complexity)?,
                max_aliases: env_num("COHORT_MAX_ALIASES", d.max_aliases)?,
                max_batch: env_num("COHORT_MAX_BATCH", d.max_batch)?,
                max_body_bytes: env_num("COHORT_MAX_BODY_BYTES", d.max_body_bytes)?,
                request_timeout: Duration::from_secs(env_num("COHORT_REQUEST_TIMEOUT_SECS", 30u64)?),
            },
            server: ServerLimits {
                header_read_timeout: Duration::from_secs(header_secs),
                keep_alive_timeout: Duration::from_secs(keep_alive_secs),
                max_connections: max_http_connections,
            },
            subscriptions,
            webhooks: {
                let w = WebhookSettings::default();
                let retry_schedule = match env("COHORT_WEBHOOK_RETRY_SCHEDULE") {
                    None => w.retry_schedule,
                    Some(s) => s
                        .split(',')
                        .map(|d| parse_duration("COHORT_WEBHOOK_RETRY_SCHEDULE", d))
                        .collect::<Result<_, _>>()?,
                };
                let disable_after = match env("COHORT_WEBHOOK_DISABLE_AFTER") {
                    None => w.disable_after,
                    Some(s) => parse_duration("COHORT_WEBHOOK_DISABLE_AFTER", &s)?,
                };
                let timeout_secs: u64 = env_num("COHORT_WEBHOOK_TIMEOUT_SECS", w.timeout.as_secs())?;
                let concurrency: usize = env_num("COHORT_WEBHOOK_CONCURRENCY", w.concurrency)?;
                if timeout_secs == 0 || concurrency == 0 {
                    return Err(ConfigError(
                        "COHORT_WEBHOOK_TIMEOUT_SECS and COHORT_WEBHOOK_CONCURRENCY must be positive".into(),
                    ));
                }
                WebhookSettings {
                    worker: env_bool("COHORT_WEBHOOK_WORKER", true)?,
                    allow_hosts: env("COHORT_WEBHOOK_ALLOW_HOSTS")
                        .map(|s| {
                            s.split(',').map(|h| h.trim().to_ascii_lowercase()).filter(|h| !h.is_empty()).collect()
                        })
                        .unwrap_or_default(),
                    retry_schedule,
                    disable_after,
                    connect_timeout: w.connect_timeout.min(Duration::from_secs(timeout_secs)),
                    timeout: Duration::from_secs(timeout_secs),
                    poll_interval: Duration::from_millis(env_num("COHORT_WEBHOOK_POLL_MS", 1000u64)?.max(10)),
                    lease: chrono::Duration::seconds(
                        env_num("COHORT_WEBHOOK_LEASE_SECS", w.lease.num_seconds())?.max(timeout_secs as i64 + 1),
                    ),
                    concurrency,
                    ..w
                }
            },
            smtp: match (env("COHORT_SMTP_URL"), env("COHORT_SMTP_FROM")) {
                (None, None) => None,
                (Some(url), Some(from)) => {
                    let s = crate::mail::SmtpSettings { url: SecretString::from(url), from };
                    s.check()?;
                    Some(s)
                }
                _ => return Err(ConfigError("set COHORT_SMTP_URL and COHORT_SMTP_FROM together".into())),
            },
            persisted: crate::persisted::PersistedSettings { apq_cache_size, trusted: trusted_documents },
            public: {
                let d = PublicConfig::default();
                let base_url = match env("COHORT_PUBLIC_BASE_URL") {
                    None => None,
                    Some(u) => {
                        let parsed = url::Url::parse(&u)
                            .ok()
                            .filter(|p| matches!(p.scheme(), "http" | "https") && p.host_str().is_some());
                        if parsed.is_none() {
                            return Err(ConfigError(format!(
                                "COHORT_PUBLIC_BASE_URL must be an http(s) URL, not '{u}'"
                            )));
                        }
                        Some(u)
                    }
                };
                let ttl = |name: &str, default: chrono::Duration| -> Result<chrono::Duration, ConfigError> {
                    match env(name) {
                        None => Ok(default),
                        Some(s) => {
                            let d = parse_duration(name, &s)?;
                            if d < chrono::Duration::minutes(5) {
                                return Err(ConfigError(format!("{name} must be at least 5m")));
                            }
                            Ok(d)
                        }
                    }
                };
                let rate = |name: &str, default: crate::public::Rate| match env(name) {
                    None => Ok(default),
                    Some(s) => crate::public::Rate::parse(name, &s),
                };
                PublicConfig {
                    link_keys: env("COHORT_PUBLIC_LINK_KEYS").map(SecretString::from),
                    base_url,
                    confirm_ttl: ttl("COHORT_CONFIRM_LINK_TTL", d.confirm_ttl)?,
                    preference_ttl: ttl("COHORT_PREFERENCE_LINK_TTL", d.preference_ttl)?,
                    endpoints: crate::public::PublicSettings {
                        per_ip: rate("COHORT_PUBLIC_RATE_PER_IP", d.endpoints.per_ip)?,
                        per_form: rate("COHORT_PUBLIC_RATE_PER_FORM", d.endpoints.per_form)?,
                        trust_forwarded_for: env_bool("COHORT_TRUST_FORWARDED_FOR", false)?,
                    },
                }
            },
        })
    }

    /// Settings for tests and embedding: in-memory values, no environment.
    pub fn for_tests(database_url: &str, secret: &str) -> Settings {
        Settings {
            database_url: SecretString::from(database_url.to_owned()),
            database: cohort_store::StoreOptions::default(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            jwt: JwtSettings {
                secret: Some(SecretString::from(secret.to_owned())),
                public_keys: None,
                issuer: "cohort".into(),
                audience: "cohort-api".into(),
                leeway_secs: 30,
            },
            graphiql: false,
            introspection: false,
            data_usage: true,
            data_usage_flush: None,
            data_usage_policy_ttl: std::time::Duration::from_secs(3600),
            cors_origins: vec![],
            cors_headers: default_cors_headers(),
            log_filter: "warn".into(),
            log_format: LogFormat::Pretty,
            limits: Limits::default(),
            server: ServerLimits::default(),
            subscriptions: SubscriptionLimits::default(),
            // Tests that deliver webhooks turn the worker on (and allow 127.0.0.1) themselves.
            webhooks: WebhookSettings { worker: false, ..WebhookSettings::default() },
            public: PublicConfig::default(),
            smtp: None,
            persisted: crate::persisted::PersistedSettings::default(),
            traces: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_headers_are_header_names() {
        assert_eq!(parse_cors_headers(" Content-Type, x-Trace ").unwrap(), vec!["content-type", "x-trace"]); // ok: unit test
        assert!(parse_cors_headers("bad header").is_err());
        assert!(parse_cors_headers(" , ").is_err());
        assert!(default_cors_headers().contains(&"traceparent".to_string()));
    }

    #[test]
    fn otlp_endpoints_are_http_urls_of_a_collector() {
        let url = |e: &str| TraceExport::parse(e, None).map(|t| t.traces_url);
        assert_eq!(url("http://collector:4318").ok().as_deref(), Some("http://collector:4318/v1/traces"));
        assert_eq!(url("https://otel.example/base/").ok().as_deref(), Some("https://otel.example/base/v1/traces"));
        assert_eq!(url("http://127.0.0.1:4318/v1/traces").ok().as_deref(), Some("http://127.0.0.1:4318/v1/traces"));
        for bad in ["collector:4318", "grpc://collector:4317", "http://", "file:///tmp/x", "http://c/?a=1"] {
            assert!(url(bad).is_err(), "{bad} was accepted");
        }
        let e = url("http://user:hunter2@collector:4318").expect_err("credentials refused");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert_eq!(TraceExport::parse("http://c:4318", None).map(|t| t.service_name).ok().as_deref(), Some("cohort"));
        assert!(TraceExport::parse("http://c:4318", Some("a\nb".into())).is_err());
    }
}
