//! Prometheus metrics (text exposition): requests by operation and outcome code, request latency,
//! SQL statement counts and the database pool.

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

pub struct Metrics {
    registry: Registry,
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
        Metrics {
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
        }
    }

    /// Renders the registry, first copying the store's counters and pool state into it.
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
