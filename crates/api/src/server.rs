//! The HTTP server: our own accept loop over hyper's HTTP/1 connections, because `axum::serve`
//! has no header-read timeout, no idle timeout and no connection limit — a client trickling its
//! headers, or a few hundred that connect and say nothing, would hold the server's connections
//! and file descriptors for as long as they like.
//!
//! - **Header-read timeout** (`COHORT_HEADER_READ_TIMEOUT_SECS`): a fresh connection must have
//!   sent its first request head within it; the next request on a kept-alive connection, within
//!   it of its first byte. Then hyper closes the connection.
//! - **Keep-alive timeout** (`COHORT_KEEP_ALIVE_TIMEOUT_SECS`): how long a kept-alive connection
//!   may wait for its next request — and how long a response may wait for a client that does not
//!   read it (a write that makes no progress fails the connection).
//! - **Connection limit** (`COHORT_MAX_CONNECTIONS`): one semaphore permit per connection, held
//!   until the connection ends. A connection over the limit is accepted and answered at once with
//!   `503 Service Unavailable` (`Connection: close`, `Retry-After: 1`) and closed — so the accept
//!   queue keeps draining, clients (and load-balancer health checks) learn of the overload at once
//!   instead of hanging, and file descriptors are freed immediately.
//!
//! hyper's HTTP/1 header timer also runs while a kept-alive connection waits for its next
//! request, so on its own it would close every idle connection after the header timeout. The
//! connection's [`HeadTimer`] gives hyper that timer with the semantics above: it sees, through
//! the connection's [`Tracked`] stream, whether the next request has begun to arrive.
//!
//! Connections may be upgraded to WebSocket (GraphQL subscriptions, [`crate::ws`]). An upgraded
//! connection keeps its [`ConnectionSlot`] — its place under the connection limit — until the
//! WebSocket ends.
//!
//! Graceful shutdown: when `shutdown` resolves, no connection is accepted any more, idle
//! connections close, in-flight requests are answered before their connections close, and
//! WebSockets are told (close `1001`) through their slot; `serve` returns when every connection,
//! upgraded or not, has ended. (hyper-util's `GracefulShutdown` cannot watch a connection that
//! may be upgraded, so the slots do it.)

use crate::config::ServerLimits;
use hyper::rt::{Sleep, Timer};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};

/// One connection's place in the server, in its requests' extensions: holding it keeps the
/// connection counted (under `COHORT_MAX_CONNECTIONS`) and keeps `serve` from returning. An
/// upgraded connection (a WebSocket) keeps it for as long as it lives.
#[derive(Clone)]
pub struct ConnectionSlot {
    _permit: Arc<OwnedSemaphorePermit>,
    _drain: mpsc::Sender<()>,
    stopping: watch::Receiver<bool>,
}

impl ConnectionSlot {
    /// Resolves once the server is shutting down.
    pub async fn stopping(&mut self) {
        // An error means the server is gone altogether: stopping too.
        let _ = self.stopping.wait_for(|s| *s).await;
    }
}

/// What a connection over the limit is told before it is closed.
fn overloaded_response() -> Vec<u8> {
    let body =
        r#"{"errors":[{"message":"too many connections; retry shortly","extensions":{"code":"SERVICE_UNAVAILABLE"}}]}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json; charset=utf-8\r\n\
         connection: close\r\nretry-after: 1\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Serves `router` on `listener` with `limits` until `shutdown` resolves, then drains in-flight
/// requests (see the module documentation).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    limits: &ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let overloaded = overloaded_response();
    let mut refused = Refusals::default();
    // Every slot holds a drain sender: when all are gone, every connection has ended.
    let (drain, mut drained) = mpsc::channel::<()>(1);
    let (stop, stopping) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            // Best effort and never waiting: the connection is closed right after.
            let _ = stream.try_write(&overloaded);
            refused.count(limits.max_connections);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::default());
        let io = TokioIo::new(Tracked::new(stream, activity.clone(), limits.keep_alive_timeout));
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(HeadTimer { activity, keep_alive: limits.keep_alive_timeout })
            .header_read_timeout(limits.header_read_timeout)
            .keep_alive(true);
        let slot = ConnectionSlot { _permit: Arc::new(permit), _drain: drain.clone(), stopping: stopping.clone() };
        let mut stopping = stopping.clone();
        // The peer address, for the public endpoints' per-IP limits (`ConnectInfo`), and the slot.
        let svc =
            tower::ServiceExt::map_request(router.clone(), move |mut r: hyper::Request<hyper::body::Incoming>| {
                r.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                r.extensions_mut().insert(slot.clone());
                r
            });
        let conn = builder.serve_connection(io, TowerToHyperService::new(svc)).with_upgrades();
        tokio::spawn(async move {
            let mut conn = pin!(conn);
            let stop = async move {
                let _ = stopping.wait_for(|s| *s).await;
            };
            let ended = tokio::select! {
                ended = conn.as_mut() => ended,
                () = stop => {
                    // Idle: closes now; busy: after the response in flight. Upgraded: already
                    // done here (the WebSocket holds the slot and hears of the shutdown itself).
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::debug!("draining connections");
    stop.send_replace(true);
    drop(drain);
    let _ = drained.recv().await;
    Ok(())
}

/// Connections refused over the limit, logged at most every 10 seconds (a flood of them must
/// not become a flood of log lines).
#[derive(Default)]
struct Refusals {
    since_logged: u64,
    logged_at: Option<Instant>,
}

impl Refusals {
    fn count(&mut self, limit: usize) {
        self.since_logged += 1;
        if self.logged_at.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            tracing::warn!(limit, refused = self.since_logged, "connection limit reached: answered 503 and closed");
            self.since_logged = 0;
            self.logged_at = Some(Instant::now());
        }
    }
}

/// An accept error: a connection that died in the queue is skipped; anything else (out of file
/// descriptors above all) is logged and waited out briefly instead of spinning.
async fn accept_failed(e: io::Error) {
    use io::ErrorKind::*;
    if matches!(e.kind(), ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed; retrying shortly");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

impl ServerLimits {
    /// Lowers `max_connections` to what the process's open-file limit leaves after `reserved`
    /// descriptors (the database pool, files, the listener): beyond it `accept` fails, and then no
    /// client — health checks included — gets through until idle connections time out. Returns
    /// the limit that applies. Only on Unix; elsewhere the configured limit stands.
    pub fn fit_open_file_limit(&mut self, reserved: usize) -> usize {
        #[cfg(unix)]
        if let Some(files) = rustix::process::getrlimit(rustix::process::Resource::Nofile).current {
            let room = usize::try_from(files).unwrap_or(usize::MAX).saturating_sub(reserved).max(1);
            if room < self.max_connections {
                tracing::warn!(
                    configured = self.max_connections,
                    open_file_limit = files,
                    reserved,
                    max_connections = room,
                    "the open-file limit leaves room for fewer connections than COHORT_MAX_CONNECTIONS; \
                     serving at most max_connections (raise `ulimit -n` to serve more)"
                );
                self.max_connections = room;
            }
        }
        #[cfg(not(unix))]
        let _ = reserved;
        self.max_connections
    }
}

// ---------------------------------------------------------------------------------------------
// Timers.

/// What a connection's timer knows of its traffic: bytes read so far.
#[derive(Debug, Default)]
struct Activity {
    read: AtomicU64,
}

/// The timer hyper's HTTP/1 connection uses — only for its header-read timeout, which it starts
/// whenever it begins waiting for a request head (on a new connection, and after every response
/// on a kept-alive one). Each such sleep resolves:
/// - on a fresh connection (nothing read yet): at hyper's deadline (the header-read timeout);
/// - on a kept-alive connection, while no byte of the next request has arrived: after the
///   keep-alive timeout;
/// - once bytes have arrived: the header-read timeout after they were first seen.
#[derive(Debug, Clone)]
struct HeadTimer {
    activity: Arc<Activity>,
    keep_alive: Duration,
}

impl Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        let now = Instant::now();
        let read_at_start = self.activity.read.load(Ordering::Relaxed);
        Box::pin(HeadSleep {
            activity: self.activity.clone(),
            fresh: read_at_start == 0,
            read_at_start,
            started: now,
            head_timeout: deadline.saturating_duration_since(now),
            keep_alive: self.keep_alive,
            first_bytes_at: None,
            inner: Box::pin(tokio::time::sleep_until(deadline.into())),
        })
    }
}

struct HeadSleep {
    activity: Arc<Activity>,
    fresh: bool,
    read_at_start: u64,
    started: Instant,
    head_timeout: Duration,
    keep_alive: Duration,
    first_bytes_at: Option<Instant>,
    inner: Pin<Box<tokio::time::Sleep>>,
}

impl HeadSleep {
    fn deadline(&mut self) -> Instant {
        if self.fresh {
            return self.started + self.head_timeout;
        }
        if self.activity.read.load(Ordering::Relaxed) == self.read_at_start {
            return self.started + self.keep_alive;
        }
        // hyper polls this right after a read that left the head incomplete: the first poll
        // that sees new bytes is (near enough) when they arrived.
        *self.first_bytes_at.get_or_insert_with(Instant::now) + self.head_timeout
    }
}

impl Future for HeadSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let deadline = tokio::time::Instant::from_std(this.deadline());
        if this.inner.deadline() != deadline {
            this.inner.as_mut().reset(deadline);
        }
        this.inner.as_mut().poll(cx)
    }
}

impl Sleep for HeadSleep {}

// ---------------------------------------------------------------------------------------------
// The connection's stream.

/// The TCP stream of one connection: counts the bytes read (for [`HeadTimer`]) and fails a
/// write that makes no progress for the keep-alive timeout (a client that does not read its
/// response would otherwise hold the connection forever).
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
    write_stall_limit: Duration,
    write_stall: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Tracked {
    fn new(inner: TcpStream, activity: Arc<Activity>, write_stall_limit: Duration) -> Self {
        Tracked { inner, activity, write_stall_limit, write_stall: None }
    }

    /// The outcome of a write-side poll: progress clears the stall clock; `Pending` starts it
    /// (if not running) and fails the write once it runs out.
    fn watch_write<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if r.is_ready() {
            self.write_stall = None;
            return r;
        }
        let limit = self.write_stall_limit;
        let stall = self.write_stall.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match stall.as_mut().poll(cx) {
            Poll::Ready(()) => {
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "the client does not read its response")))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for Tracked {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        let n = buf.filled().len().saturating_sub(before);
        if n > 0 {
            this.activity.read.fetch_add(n as u64, Ordering::Relaxed);
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.watch_write(cx, r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.watch_write(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch_write(cx, r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn the_connection_limit_fits_the_open_file_limit() {
        let files = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
        let mut small = ServerLimits { max_connections: 5, ..ServerLimits::default() };
        if files.is_some_and(|f| f >= 5) {
            assert_eq!(small.fit_open_file_limit(0), 5, "a limit below the open-file limit stands");
        }
        let mut large = ServerLimits { max_connections: 1_000_000, ..ServerLimits::default() };
        let expected = match files {
            Some(f) => (f as usize).saturating_sub(64).clamp(1, 1_000_000),
            None => 1_000_000,
        };
        assert_eq!(large.fit_open_file_limit(64), expected);
        let mut starved = ServerLimits::default();
        if files.is_some() {
            assert_eq!(starved.fit_open_file_limit(usize::MAX), 1, "never below one connection");
        }
    }
}
