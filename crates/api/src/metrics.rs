//! Prometheus metrics (text exposition): requests by operation and outcome code, request latency,
//! SQL statement counts, the database pool, and open WebSockets and subscriptions.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::Ordering;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabels {
    pub operation: String,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PathLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
    pub database: String,
}

/// At most this many distinct `operation` labels (client-chosen `operationName`s); further names
/// count as `other`, so no client can grow the series without bound.
pub const MAX_OPERATION_LABELS: usize = 100;

pub struct Metrics {
    registry: Registry,
    operation_names: std::sync::Mutex<std::collections::HashSet<String>>,
    pub graphql_operations: Family<OpLabels, Counter>,
    pub http_requests: Family<RouteLabels, Counter>,
    pub http_duration: Family<PathLabels, Histogram>,
    db_statements: Counter,
    db_statements_failed: Counter,
    db_statement_seconds: prometheus_client::metrics::counter::Counter<f64, std::sync::atomic::AtomicU64>,
    db_pool: Family<StateLabels, Gauge>,
    build_info: Family<BuildLabels, Gauge>,
    resident_memory: Gauge,
    resident_memory_peak: Gauge,
    /// Open GraphQL WebSocket connections ([`crate::ws`]).
    pub ws_connections: Gauge,
    /// Open GraphQL subscriptions, over all WebSocket connections.
    pub subscriptions: Gauge,
    /// Results sent to subscribers (`next` messages).
    pub subscription_messages: Counter,
}

/// (resident, peak resident) bytes of this process, from `/proc/self/status` (Linux; zero elsewhere).
fn resident_memory() -> (i64, i64) {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return (0, 0);
    };
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|r| r.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
            .map_or(0, |v| v * 1024)
    };
    (kb("VmRSS:"), kb("VmHWM:"))
}

fn latency_histogram() -> Histogram {
    Histogram::new([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut root = Registry::default();
        // The standard process metric keeps its standard name; everything else is `cohort_*`.
        let resident_memory = Gauge::default();
        root.register_with_unit(
            "process_resident_memory",
            "Resident memory size in bytes",
            Unit::Bytes,
            resident_memory.clone(),
        );
        let registry = root.sub_registry_with_prefix("cohort");
        let resident_memory_peak = Gauge::default();
        registry.register_with_unit(
            "process_resident_memory_peak",
            "Peak resident memory size in bytes since start",
            Unit::Bytes,
            resident_memory_peak.clone(),
        );
        let build_info = Family::<BuildLabels, Gauge>::default();
        registry.register("build_info", "Version and database backend (value 1)", build_info.clone());
        let graphql_operations = Family::<OpLabels, Counter>::default();
        registry.register(
            "graphql_operations",
            "GraphQL operations by operation name and outcome code",
            graphql_operations.clone(),
        );
        let http_requests = Family::<RouteLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests by route and status", http_requests.clone());
        let http_duration =
            Family::<PathLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register("http_request_duration_seconds", "HTTP request latency", http_duration.clone());
        let db_statements = Counter::default();
        registry.register("db_statements", "SQL statements executed", db_statements.clone());
        let db_statements_failed = Counter::default();
        registry.register("db_statements_failed", "SQL statements that failed", db_statements_failed.clone());
        let db_statement_seconds =
            prometheus_client::metrics::counter::Counter::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register("db_statement_seconds", "Time spent executing SQL statements", db_statement_seconds.clone());
        let db_pool = Family::<StateLabels, Gauge>::default();
        registry.register("db_pool_connections", "Database pool connections by state", db_pool.clone());
        let ws_connections = Gauge::default();
        registry.register("ws_connections", "Open GraphQL WebSocket connections", ws_connections.clone());
        let subscriptions = Gauge::default();
        registry.register("subscriptions", "Open GraphQL subscriptions", subscriptions.clone());
        let subscription_messages = Counter::default();
        registry.register(
            "subscription_messages",
            "Results sent to GraphQL subscribers",
            subscription_messages.clone(),
        );
        Metrics {
            operation_names: Default::default(),
            registry: root,
            graphql_operations,
            http_requests,
            http_duration,
            db_statements,
            db_statements_failed,
            db_statement_seconds,
            db_pool,
            build_info,
            resident_memory,
            resident_memory_peak,
            ws_connections,
            subscriptions,
            subscription_messages,
        }
    }

    /// The `operation` label of a GraphQL request: `unauthenticated` without a valid token (any
    /// client could otherwise mint series), `anonymous` without a name, `other` for names that
    /// are not plain identifiers or beyond the first [`MAX_OPERATION_LABELS`] distinct ones.
    pub fn operation_label(&self, name: Option<&str>, authenticated: bool) -> String {
        if !authenticated {
            return "unauthenticated".into();
        }
        let Some(n) = name else { return "anonymous".into() };
        if n.is_empty() || n.len() > 64 || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return "other".into();
        }
        let Ok(mut known) = self.operation_names.lock() else { return "other".into() };
        if known.contains(n) || (known.len() < MAX_OPERATION_LABELS && known.insert(n.to_owned())) {
            n.to_owned()
        } else {
            "other".into()
        }
    }

    /// The exposition for a scrape: OpenMetrics text when the scraper's `Accept` asks for it,
    /// else the classic Prometheus text format (version 0.0.4) — with its content type each.
    pub fn render_for(&self, store: &cohort_store::Gate, accept: &str) -> (&'static str, String) {
        let text = self.render(store);
        if accept.split(',').any(|a| a.trim().starts_with("application/openmetrics-text")) {
            ("application/openmetrics-text; version=1.0.0; charset=utf-8", text)
        } else {
            ("text/plain; version=0.0.4; charset=utf-8", openmetrics_to_classic(&text))
        }
    }

    /// Renders the registry (OpenMetrics text), first copying the store's counters and pool
    /// state into it.
    pub fn render(&self, store: &cohort_store::Gate) -> String {
        let m = store.metrics();
        let stmts = m.statements.load(Ordering::Relaxed);
        let failed = m.failed_statements.load(Ordering::Relaxed);
        let micros = m.statement_micros.load(Ordering::Relaxed);
        // Counters only go up: add the difference since the last scrape.
        let add = |c: &Counter, total: u64| {
            let cur = c.get();
            if total > cur {
                c.inc_by(total - cur);
            }
        };
        add(&self.db_statements, stmts);
        add(&self.db_statements_failed, failed);
        let secs = micros as f64 / 1e6;
        let cur = self.db_statement_seconds.get();
        if secs > cur {
            self.db_statement_seconds.inc_by(secs - cur);
        }
        let (size, idle) = store.pool_stats();
        self.db_pool.get_or_create(&StateLabels { state: "idle".into() }).set(idle as i64);
        self.db_pool.get_or_create(&StateLabels { state: "active".into() }).set(size.saturating_sub(idle) as i64);
        self.build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                database: store.backend_name().to_owned(),
            })
            .set(1);
        let (rss, peak) = resident_memory();
        self.resident_memory.set(rss);
        self.resident_memory_peak.set(peak);
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// OpenMetrics text → the classic Prometheus text format: no `# UNIT` and no `# EOF`, and a
/// counter family is named after its samples (`x_total`), which is what classic parsers expect
/// (they call a `# TYPE x counter` whose samples are `x_total` "unknown").
pub fn openmetrics_to_classic(text: &str) -> String {
    let counters: std::collections::HashSet<&str> =
        text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.strip_suffix(" counter")).collect();
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            counters.contains(name).then(|| format!("{p}{name}_total {tail}"))
        });
        match renamed {
            Some(l) => out.push_str(l.trim_end()),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_text_names_counters_by_their_samples() {
        let om = "# HELP a_ops Operations.\n# TYPE a_ops counter\na_ops_total{x=\"1\"} 3\n# HELP a_s Seconds.\n# TYPE a_s gauge\n# UNIT a_s seconds\na_s 1.5\n# EOF\n";
        assert_eq!(
            openmetrics_to_classic(om),
            "# HELP a_ops_total Operations.\n# TYPE a_ops_total counter\na_ops_total{x=\"1\"} 3\n# HELP a_s Seconds.\n# TYPE a_s gauge\na_s 1.5\n"
        );
    }

    #[test]
    fn operation_labels_are_bounded() {
        let m = Metrics::new();
        assert_eq!(m.operation_label(Some("Anything"), false), "unauthenticated");
        assert_eq!(m.operation_label(None, true), "anonymous");
        assert_eq!(m.operation_label(Some("not ok!"), true), "other");
        for i in 0..MAX_OPERATION_LABELS {
            assert_eq!(m.operation_label(Some(&format!("Op{i}")), true), format!("Op{i}"));
        }
        assert_eq!(m.operation_label(Some("OneTooMany"), true), "other");
        assert_eq!(m.operation_label(Some("Op7"), true), "Op7", "known names keep their label");
    }
}
