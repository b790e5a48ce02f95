//! Latencies, one result line per measurement, and the BENCHMARKS.md table.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// Recorded values (microseconds), kept whole: quantiles are exact, not bucketed. A run records
/// at most a few million of them (8 bytes each). No histogram crate: `hdrhistogram` pulled in
/// `byteorder` with its default feature, which made every crate above `byteorder` (sqlx,
/// sea-orm, the workspace itself) build twice — once for `cargo run`, once for the workspace.
#[derive(Debug, Clone, Default)]
pub struct Samples(Vec<u64>);

impl Samples {
    pub fn new() -> Samples {
        Samples(Vec::new())
    }
    /// Records `v` (zero counts as one, as a latency below the clock's resolution).
    pub fn record(&mut self, v: u64) {
        self.0.push(v.max(1));
    }
    pub fn add(&mut self, other: &Samples) {
        self.0.extend_from_slice(&other.0);
    }
    pub fn len(&self) -> u64 {
        self.0.len() as u64
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn max(&self) -> u64 {
        self.0.iter().copied().max().unwrap_or(0)
    }
    /// The smallest recorded value with at least `q` of all values at or below it (0 when empty).
    pub fn value_at_quantile(&self, q: f64) -> u64 {
        if self.0.is_empty() {
            return 0;
        }
        let mut sorted = self.0.clone();
        sorted.sort_unstable();
        let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }
}

/// Request latencies in microseconds.
pub struct Stopwatch(Samples);

impl Stopwatch {
    pub fn new() -> Stopwatch {
        Stopwatch(Samples::new())
    }
    pub fn record(&mut self, d: Duration) {
        self.0.record(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }
    pub fn merge(&mut self, other: &Stopwatch) {
        self.0.add(&other.0);
    }
    pub fn count(&self) -> u64 {
        self.0.len()
    }
}

/// One measurement: a workload on one database at one concurrency, through the server or as
/// raw SQL.
#[derive(Debug, Clone)]
pub struct Figures {
    pub workload: String,
    /// "server" or "sql".
    pub mode: String,
    pub database: String,
    pub connections: usize,
    pub requests: u64,
    pub seconds: f64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub errors: u64,
    pub statements_per_request: Option<f64>,
    pub peak_rss_bytes: Option<u64>,
    /// A fact measured beside the load (W7: statements per message for 1 vs 20+ groups).
    pub note: Option<String>,
}

impl Figures {
    #[allow(clippy::too_many_arguments)]
    pub fn from_stopwatch(
        workload: &str,
        mode: &str,
        database: &str,
        connections: usize,
        w: &Stopwatch,
        elapsed: Duration,
        errors: u64,
        statements_per_request: Option<f64>,
        peak_rss_bytes: Option<u64>,
    ) -> Figures {
        let ms = |q: f64| w.0.value_at_quantile(q) as f64 / 1000.0;
        Figures {
            workload: workload.to_owned(),
            mode: mode.to_owned(),
            database: database.to_owned(),
            connections,
            requests: w.count(),
            seconds: elapsed.as_secs_f64(),
            per_second: w.count() as f64 / elapsed.as_secs_f64().max(1e-9),
            p50_ms: ms(0.5),
            p95_ms: ms(0.95),
            p99_ms: ms(0.99),
            max_ms: w.0.max() as f64 / 1000.0,
            errors,
            statements_per_request,
            peak_rss_bytes,
            note: None,
        }
    }

    pub fn with_note(mut self, note: Option<String>) -> Figures {
        self.note = note;
        self
    }

    pub fn print(&self) {
        let stmts = self.statements_per_request.map(|s| format!("{s:.1}")).unwrap_or_else(|| "-".into());
        let rss = self.peak_rss_bytes.map(|b| format!("{:.1} MB", b as f64 / 1e6)).unwrap_or_else(|| "-".into());
        println!(
            "{:<10} {:<6} {:<8} conns={:<3} {:>9.1}/s  p50 {:>7.2} ms  p95 {:>7.2} ms  p99 {:>7.2} ms  max {:>8.2} ms  errors {}  statements/request {}  peak RSS {}",
            self.workload,
            self.mode,
            self.database,
            self.connections,
            self.per_second,
            self.p50_ms,
            self.p95_ms,
            self.p99_ms,
            self.max_ms,
            self.errors,
            stmts,
            rss
        );
        if let Some(n) = &self.note {
            println!("{:<10} {n}", self.workload);
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "workload": self.workload, "mode": self.mode, "database": self.database,
            "connections": self.connections, "requests": self.requests, "seconds": self.seconds,
            "per_second": self.per_second, "p50_ms": self.p50_ms, "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms, "max_ms": self.max_ms, "errors": self.errors,
            "statements_per_request": self.statements_per_request, "peak_rss_bytes": self.peak_rss_bytes,
            "note": self.note,
        })
    }

    pub fn from_json(v: &Value) -> Option<Figures> {
        Some(Figures {
            workload: v.get("workload")?.as_str()?.to_owned(),
            mode: v.get("mode")?.as_str()?.to_owned(),
            database: v.get("database")?.as_str()?.to_owned(),
            connections: v.get("connections")?.as_u64()? as usize,
            requests: v.get("requests")?.as_u64()?,
            seconds: v.get("seconds")?.as_f64()?,
            per_second: v.get("per_second")?.as_f64()?,
            p50_ms: v.get("p50_ms")?.as_f64()?,
            p95_ms: v.get("p95_ms")?.as_f64()?,
            p99_ms: v.get("p99_ms")?.as_f64()?,
            max_ms: v.get("max_ms")?.as_f64()?,
            errors: v.get("errors")?.as_u64()?,
            statements_per_request: v.get("statements_per_request").and_then(Value::as_f64),
            peak_rss_bytes: v.get("peak_rss_bytes").and_then(Value::as_u64),
            note: v.get("note").and_then(Value::as_str).map(str::to_owned),
        })
    }
}

/// The markdown table of a results file (one JSON object per line; a later line for the same
/// workload, mode, database and concurrency replaces an earlier one), followed by the notes of
/// its lines (W7's statements per message for 1 vs 20+ groups).
pub fn table(lines: &str) -> String {
    let mut all: BTreeMap<(String, String, usize, String), Figures> = BTreeMap::new();
    for l in lines.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(f) = serde_json::from_str::<Value>(l).ok().as_ref().and_then(Figures::from_json) {
            all.insert((f.database.clone(), f.workload.clone(), f.connections, f.mode.clone()), f);
        }
    }
    let mut out = String::from(
        "| database | workload | conns | requests/s | p50 ms | p95 ms | p99 ms | max ms | errors | SQL/request | raw SQL tx/s | efficiency | peak RSS |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for ((db, w, c, mode), f) in &all {
        if mode != "server" {
            continue;
        }
        let sql = all.get(&(db.clone(), w.clone(), *c, "sql".to_owned()));
        let (tps, ratio) = match sql {
            Some(s) => (format!("{:.0}", s.per_second), format!("{:.2}", f.per_second / s.per_second.max(1e-9))),
            None => ("–".into(), "–".into()),
        };
        out.push_str(&format!(
            "| {db} | {w} | {c} | {:.0} | {:.2} | {:.2} | {:.2} | {:.1} | {} | {} | {tps} | {ratio} | {} |\n",
            f.per_second,
            f.p50_ms,
            f.p95_ms,
            f.p99_ms,
            f.max_ms,
            f.errors,
            f.statements_per_request.map(|s| format!("{s:.1}")).unwrap_or_else(|| "–".into()),
            f.peak_rss_bytes.map(|b| format!("{:.0} MB", b as f64 / 1e6)).unwrap_or_else(|| "–".into()),
        ));
    }
    let notes: Vec<String> = all
        .iter()
        .filter_map(|((db, w, c, mode), f)| f.note.as_ref().map(|n| format!("- {db} {w} ({mode}, {c} conns): {n}\n")))
        .collect();
    if !notes.is_empty() {
        out.push('\n');
        out.extend(notes);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_exact_ranks() {
        let mut s = Samples::new();
        assert_eq!((s.value_at_quantile(0.5), s.max(), s.is_empty()), (0, 0, true));
        for v in (1..=100).rev() {
            s.record(v);
        }
        let q = |q| s.value_at_quantile(q);
        assert_eq!((q(0.0), q(0.01), q(0.5), q(0.95), q(0.99), q(1.0)), (1, 1, 50, 95, 99, 100));
        let mut t = Samples::new();
        t.record(0);
        t.add(&s);
        assert_eq!((t.len(), t.value_at_quantile(0.0), t.max()), (101, 1, 100), "zero counts as one");
    }

    #[test]
    fn a_line_round_trips_through_json_and_its_note_follows_the_table() {
        let mut w = Stopwatch::new();
        w.record(Duration::from_millis(5));
        let f = Figures::from_stopwatch("W7", "server", "postgres", 1, &w, Duration::from_secs(1), 0, Some(9.0), None)
            .with_note(Some("statements per receiveMessage: 9 (25 groups) = 9 (1 group)".into()));
        let back = Figures::from_json(&f.to_json()).expect("round trip");
        assert_eq!(back.note, f.note);
        assert_eq!(back.requests, 1);
        let old = Figures::from_stopwatch("W1", "server", "postgres", 1, &w, Duration::from_secs(1), 0, None, None);
        let text = format!("{}\n{}\n", old.to_json(), f.to_json());
        let t = table(&text);
        assert!(t.contains("| postgres | W7 | 1 | 1 |"), "{t}");
        assert!(
            t.trim_end().ends_with(
                "- postgres W7 (server, 1 conns): statements per receiveMessage: 9 (25 groups) = 9 (1 group)"
            ),
            "{t}"
        );
        assert_eq!(t.matches("\n- ").count(), 1, "W1 has no note: {t}");
    }
}
