//! Structured logging and traces.
//!
//! **Logs.** Every line inside a request carries its `request_id` and `trace_id` (fields of the
//! `request` span the router opens); `COHORT_LOG_FORMAT=json` emits one JSON object per line.
//!
//! **Traces.** A request joins the caller's trace when it sends W3C trace context
//! (`traceparent`, `tracestate`; read by OpenTelemetry's [`TraceContextPropagator`]), else it
//! starts a new one. Its trace id is in every log line whether or not spans are exported. With
//! `COHORT_OTLP_ENDPOINT` set, spans go to that collector over OTLP/HTTP (protobuf), batched on
//! the tokio runtime:
//!
//! - `request` (server): the HTTP request — `http.request.method`, `http.route`,
//!   `http.response.status_code`; named `<METHOD> <route>`;
//! - `graphql.operation`, its child: `graphql.operation.name` and `graphql.operation.type` —
//!   never the document, never a variable's value;
//! - `sea_orm.query_all` / `query_one` / `execute` / `begin` / `commit` / `rollback` (client),
//!   children of the above: one per SQL statement, made by sea-orm's `tracing-spans` feature
//!   around each statement it runs (so they time the real statement, connection wait included),
//!   with `db.system` (`postgresql`, `sqlite`), `db.operation` and `db.statement` — the SQL
//!   text, whose values are always bound parameters (`?` / `$n`), never spliced in.
//!
//! What is cheap when nothing is exported: the operation and statement spans are never enabled
//! (their callsites are off for good, one atomic load each), no span is ever built for
//! OpenTelemetry, and the trace id is taken from `traceparent` or drawn at random, once per
//! request, before its span is made (so the id is a field from the start). Those spans never shape a log line either: a line inside a statement is still
//! logged under the `request` span, with its request and trace ids.

use crate::config::{ConfigError, LogFormat, TraceExport};
use axum::http::{HeaderMap, Method};
use opentelemetry::KeyValue;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{Status, TraceContextExt, TraceId, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SdkTracerProvider};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tracing::Metadata;
use tracing::subscriber::Interest;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{DynFilterFn, FilterExt, LevelFilter, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The target of spans made for traces only (the GraphQL operation): never in a log line.
pub const TRACE_TARGET: &str = "cohort::trace";

/// How long one export may take (the collector's answer included).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutting down may wait for the last spans to leave.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(15);

/// Whether spans are exported (set once, by [`init_with_traces`]): the request path asks it
/// before doing anything that only an exporter needs.
static EXPORTING: AtomicBool = AtomicBool::new(false);

pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// The installed tracer provider, if spans are exported; [`Telemetry::shutdown`] sends the last
/// of them.
#[must_use = "call shutdown() before the process exits, or the last spans are lost"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports what is still buffered and stops the exporter, waiting at most 15 s (an
    /// unreachable collector must not hold up the exit). Failures are logged, never fatal.
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else { return };
        // The batch processor's shutdown blocks until its task on the runtime has exported:
        // it must not block a runtime thread.
        let done = tokio::task::spawn_blocking(move || provider.shutdown());
        match tokio::time::timeout(SHUTDOWN_TIMEOUT, done).await {
            Ok(Ok(Ok(()))) => tracing::debug!("trace exporter stopped"),
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "the last spans could not be exported"),
            Ok(Err(e)) => tracing::warn!(error = %e, "stopping the trace exporter failed"),
            Err(_) => tracing::warn!("the trace exporter did not stop in time; the last spans are lost"),
        }
    }
}

/// Logging only (the tools, `cohort worker`, tests): nothing is exported.
pub fn init(filter: &str, format: LogFormat) {
    install(filter, format, None);
}

/// Logging and, when `traces` is set, span export over OTLP/HTTP. Must run on the tokio
/// runtime (the batch processor is a task of it). An exporter that cannot be built is a
/// configuration error; one that fails later only logs (`opentelemetry_sdk` errors).
pub fn init_with_traces(
    filter: &str,
    format: LogFormat,
    traces: Option<&TraceExport>,
) -> Result<Telemetry, ConfigError> {
    let Some(traces) = traces else {
        install(filter, format, None);
        return Ok(Telemetry { provider: None });
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(traces.traces_url.clone())
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| ConfigError(format!("COHORT_OTLP_ENDPOINT: cannot export traces there: {e}")))?;
    let processor = opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
        exporter,
        opentelemetry_sdk::runtime::Tokio,
    )
    .build();
    let resource = opentelemetry_sdk::Resource::builder_empty()
        .with_service_name(traces.service_name.clone())
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    // The default sampler (parent-based, always on) follows the caller's sampled flag.
    let provider = SdkTracerProvider::builder().with_span_processor(processor).with_resource(resource).build();
    let tracer = provider.tracer("cohort");
    if install(filter, format, Some(tracer)) {
        EXPORTING.store(true, Ordering::Relaxed);
        tracing::info!(endpoint = %traces.traces_url, service = %traces.service_name, "exporting traces over OTLP/HTTP");
    }
    Ok(Telemetry { provider: Some(provider) })
}

/// Spans that exist for traces only: the GraphQL operation and sea-orm's statement spans.
fn trace_only(m: &Metadata<'_>) -> bool {
    m.is_span() && (m.target() == TRACE_TARGET || is_statement(m))
}

fn is_statement(m: &Metadata<'_>) -> bool {
    m.is_span() && m.target().starts_with("sea_orm::") && m.name().starts_with("sea_orm.")
}

fn is_request(m: &Metadata<'_>) -> bool {
    m.is_span() && m.name() == "request" && m.target() == "cohort_api::http"
}

/// Installs the global subscriber; `false` if one was there already (tests install it once).
fn install(filter: &str, format: LogFormat, tracer: Option<opentelemetry_sdk::trace::SdkTracer>) -> bool {
    let env = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // Trace-only spans never become the "current span" of a log line: a JSON line names only
    // its innermost span, which must stay `request` (request and trace ids).
    // (The hint keeps the combination's hint at the `EnvFilter`'s: without one it would be
    // "anything", and every `debug!` would cost a callsite lookup instead of a level compare.)
    let logs_filter = env.and(filter_fn(|m| !trace_only(m)).with_max_level_hint(LevelFilter::TRACE));
    let fmt = tracing_subscriber::fmt::layer()
        .with_target(false)
        // Logs go to stderr: stdout carries command output (`schema`, `token`, the demo banner).
        .with_writer(std::io::stderr);
    let logs = match format {
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_filter(logs_filter)
            .boxed(),
        LogFormat::Pretty => fmt.with_filter(logs_filter).boxed(),
    };
    let traces = tracer.map(|tracer| {
        // Spans only (log events stay in the log: their fields were never vetted for export),
        // and only the request's: statements outside a request (the webhook worker, the
        // metering flush, migrations) would each become a trace of their own.
        let exported = DynFilterFn::new(|m, cx| {
            is_request(m)
                || (m.is_span() && m.target() == TRACE_TARGET)
                || (is_statement(m) && cx.lookup_current().is_some())
        })
        .with_callsite_filter(|m| {
            if is_request(m) || (m.is_span() && m.target() == TRACE_TARGET) || is_statement(m) {
                Interest::sometimes()
            } else {
                Interest::never()
            }
        })
        .with_max_level_hint(LevelFilter::INFO);
        tracing_opentelemetry::OpenTelemetryLayer::new(tracer)
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            // Nothing here reads OpenTelemetry's thread-local context; skip maintaining it.
            .with_context_activation(false)
            .with_filter(exported)
    });
    tracing_subscriber::registry().with(logs).with(traces).try_init().is_ok()
}

/// Request headers as the propagator reads them.
struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The caller's trace context, when it sent a valid W3C `traceparent` (and maybe `tracestate`);
/// else an empty context (a new trace).
pub fn caller_context(headers: &HeaderMap) -> opentelemetry::Context {
    if headers.contains_key("traceparent") {
        TraceContextPropagator::new().extract(&Headers(headers))
    } else {
        opentelemetry::Context::new()
    }
}

/// The trace id of a request when nothing is exported: the caller's, or a fresh random one.
pub fn local_trace_id(parent: &opentelemetry::Context) -> TraceId {
    let remote = parent.span().span_context().trace_id();
    if remote != TraceId::INVALID { remote } else { RandomIdGenerator::default().new_trace_id() }
}

/// When spans are exported: makes the request's `span` a child of the caller's context and
/// records, as field `trace_id`, the id the tracer gave it — the exported spans' id (the caller's,
/// or a new one the tracer drew).
pub fn join_trace(span: &tracing::Span, parent: opentelemetry::Context) {
    if span.is_disabled() {
        return;
    }
    let fallback = local_trace_id(&parent);
    // `context()` starts the OpenTelemetry span, under its parent: its ids are fixed from here.
    let _ = span.set_parent(parent);
    let exported = span.context().span().span_context().trace_id();
    let trace_id = if exported != TraceId::INVALID { exported } else { fallback };
    span.record("trace_id", tracing::field::display(trace_id));
}

/// Puts the HTTP semantic-convention attributes on the current (request) span, when exported.
pub fn record_response(method: &Method, route: Option<&str>, status: u16) {
    if !exporting() {
        return;
    }
    let cx = tracing::Span::current().context();
    let span = cx.span();
    // Not sampled (the caller said so): nothing of it is exported.
    if !span.is_recording() {
        return;
    }
    span.update_name(match route {
        Some(r) => format!("{method} {r}"),
        None => method.to_string(),
    });
    span.set_attribute(KeyValue::new("http.request.method", method.to_string()));
    if let Some(r) = route {
        span.set_attribute(KeyValue::new("http.route", r.to_owned()));
    }
    span.set_attribute(KeyValue::new("http.response.status_code", i64::from(status)));
    if status >= 500 {
        span.set_status(Status::error(""));
    }
}

/// The spawner of a request's data loaders (work done on its behalf): each batch task runs in
/// the span that asked for it (so its statements are children of the GraphQL operation in the
/// trace) *inside* `request`, the request's span. The log layer shows a line's innermost span
/// it keeps; the operation span is exported, not logged, so without the request's span around
/// it a batch's log lines would lose the request and trace ids.
pub fn request_spawner(
    request: tracing::Span,
) -> impl Fn(std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'static>>) -> tokio::task::JoinHandle<()>
+ Send
+ Sync
+ 'static {
    move |task| {
        use tracing::Instrument;
        let asking = tracing::Span::current();
        tokio::spawn(task.instrument(asking).instrument(request.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_traceparent_gives_its_trace_id_and_a_missing_one_a_fresh_id() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "traceparent",
            axum::http::HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        let cx = caller_context(&headers);
        assert_eq!(local_trace_id(&cx).to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(cx.span().span_context().is_remote());
        headers.insert("traceparent", axum::http::HeaderValue::from_static("00-zz-00f067aa0ba902b7-01"));
        let cx = caller_context(&headers);
        assert_eq!(cx.span().span_context().trace_id(), TraceId::INVALID);
        let fresh = local_trace_id(&cx).to_string();
        assert!(fresh.len() == 32 && fresh.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }
}
