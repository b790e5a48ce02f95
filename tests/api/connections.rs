//! Slow and idle clients (raw TCP): a client that trickles its request head or says nothing is
//! cut off after the header-read timeout, a kept-alive connection waits for its next request up
//! to the keep-alive timeout, connections over the limit are answered 503 and closed, and
//! graceful shutdown still answers the request in flight. (Server behaviour, the same on every
//! backend: run on SQLite. Every wait is bounded so that no test can hang; none asserts speed.)

use crate::support::{Backend, TestApp};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Long enough for any server under any load to act; only a bug makes a test wait this long.
const BOUND: Duration = Duration::from_secs(10);

async fn spawn(f: impl FnOnce(&mut cohort_api::config::Settings)) -> TestApp {
    TestApp::spawn_with(Backend::Sqlite, f).await.expect("sqlite app")
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base.trim_start_matches("http://")).await.expect("connect")
}

/// Reads until the server closes the connection (EOF or reset) and returns what it sent;
/// `None` if it is still open after `BOUND`.
async fn read_until_closed(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let r = timeout(BOUND, async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    r.ok().map(|_| out)
}

/// Reads one complete response (head and `content-length` body) from a kept-alive connection.
async fn read_response(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let r = timeout(BOUND, async {
        let mut buf = [0u8; 4096];
        loop {
            let n = s.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed before a full response: {:?}", String::from_utf8_lossy(&out));
            out.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&out).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if body.len() >= len {
                    return text;
                }
            }
        }
    })
    .await;
    r.expect("no complete response in time")
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: cohort\r\n\r\n";

fn assert_cut_off(reply: Option<Vec<u8>>, what: &str) {
    let reply = reply.unwrap_or_else(|| panic!("{what}: the connection is still open"));
    let text = String::from_utf8_lossy(&reply);
    assert!(reply.is_empty() || text.starts_with("HTTP/1.1 408"), "{what}: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_request_heads_are_cut_off_after_the_header_timeout() {
    let app = spawn(|s| {
        s.server.header_read_timeout = Duration::from_secs(1);
        s.server.keep_alive_timeout = Duration::from_secs(60);
    })
    .await;
    // A head trickled and then left unfinished.
    let mut trickle = connect(&app).await;
    trickle.write_all(b"GET /healthz HTTP/1.1\r\nhost: cohort\r\nx-slow: ").await.unwrap();
    // A connection that never says anything.
    let mut silent = connect(&app).await;
    // A kept-alive connection whose next request starts and stalls: the header timeout counts
    // from its first byte, not the (much longer) keep-alive timeout.
    let mut kept = connect(&app).await;
    kept.write_all(HEALTHZ).await.unwrap();
    assert!(read_response(&mut kept).await.starts_with("HTTP/1.1 200"));
    kept.write_all(b"GET /healthz HTTP/1.1\r\nhost: co").await.unwrap();
    assert_cut_off(read_until_closed(&mut trickle).await, "trickled head");
    assert_cut_off(read_until_closed(&mut silent).await, "silent connection");
    assert_cut_off(read_until_closed(&mut kept).await, "stalled second request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_alive_connections_wait_for_their_next_request_up_to_the_keep_alive_timeout() {
    let app = spawn(|s| {
        s.server.header_read_timeout = Duration::from_secs(1);
        s.server.keep_alive_timeout = Duration::from_secs(4);
    })
    .await;
    let mut s = connect(&app).await;
    s.write_all(HEALTHZ).await.unwrap();
    assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));
    // Idle for longer than the header timeout: still served, the keep-alive timeout applies.
    tokio::time::sleep(Duration::from_secs(2)).await;
    s.write_all(HEALTHZ).await.unwrap();
    assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));
    // Then left idle: closed after the keep-alive timeout.
    let rest = read_until_closed(&mut s).await.expect("an idle kept-alive connection is closed");
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_are_answered_503_and_closed() {
    let app = spawn(|s| {
        s.server.max_connections = 3;
        s.server.header_read_timeout = Duration::from_secs(60);
    })
    .await;
    // Three idle connections take every slot (accepted in order, before the fourth).
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(connect(&app).await);
    }
    let mut fourth = connect(&app).await;
    let reply = read_until_closed(&mut fourth).await.expect("the fourth connection is closed");
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("SERVICE_UNAVAILABLE"), "{text}");
    // Closing the idle ones frees their slots: /healthz answers again.
    drop(idle);
    let client = reqwest::Client::new();
    let healthy = timeout(BOUND, async {
        loop {
            match client.get(app.url("/healthz")).send().await {
                Ok(r) if r.status() == 200 => break,
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
    .await;
    assert!(healthy.is_ok(), "/healthz did not answer after the idle connections closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_answers_the_request_in_flight() {
    let mut app = spawn(|_| {}).await;
    let body = br#"{"query": "{ __typename }"}"#;
    let mut s = connect(&app).await;
    let head = format!(
        "POST /graphql HTTP/1.1\r\nhost: cohort\r\ncontent-type: application/json\r\ncontent-length: {}\r\nexpect: 100-continue\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    // `100 Continue` comes once the handler reads the body: the request is in flight.
    let mut buf = [0u8; 256];
    let n = timeout(BOUND, s.read(&mut buf)).await.expect("no 100 Continue").unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 100"), "{:?}", String::from_utf8_lossy(&buf[..n]));
    // An idle connection at shutdown is simply closed.
    let mut idle = connect(&app).await;
    idle.write_all(HEALTHZ).await.unwrap();
    assert!(read_response(&mut idle).await.starts_with("HTTP/1.1 200"));
    app.begin_shutdown();
    assert!(read_until_closed(&mut idle).await.is_some_and(|r| r.is_empty()));
    // The request in flight is still answered, then the connection closes.
    s.write_all(body).await.unwrap();
    let reply = read_until_closed(&mut s).await.expect("closed after the answer");
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains(r#"{"data":{"__typename":"Query"}}"#), "{text}");
    assert!(timeout(BOUND, app.stop()).await.is_ok(), "the server did not finish draining");
}
