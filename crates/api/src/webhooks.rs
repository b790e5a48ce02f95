//! Outgoing webhooks per the Standard Webhooks specification: the delivery worker, the
//! signature, and the outbound policy.
//!
//! - **Signature**: `webhook-id` (the event's global id, the same on every retry, so receivers
//!   can drop duplicates), `webhook-timestamp` (Unix seconds of the attempt) and
//!   `webhook-signature`: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` keyed with the
//!   base64-decoded part of the `whsec_…` secret; during a rotation one signature per secret,
//!   space-separated, as the spec allows.
//! - **Outbound policy (SSRF)**: `https` only; every resolved address must be public — no
//!   loopback, private, link-local (cloud metadata lives there), carrier-grade NAT, multicast or
//!   reserved ranges — unless the host is listed in `COHORT_WEBHOOK_ALLOW_HOSTS`; the request is
//!   sent to exactly the addresses that were checked (no second resolution to rebind); no
//!   redirects; connect and total timeouts; at most 64 KiB of the answer is read. A refusal is an
//!   attempt like any other: visible in the delivery log with its error class.
//! - **The worker** ([`run_worker`]): emits time-driven facts (`ticket.sla_breached`, once per
//!   ticket and target), fans events out, claims due deliveries (shared by replicas
//!   through `FOR UPDATE SKIP LOCKED`), attempts them concurrently, records each attempt, and on
//!   shutdown lets in-flight attempts finish (each is bounded by the timeout).

use crate::config::WebhookSettings;
use crate::graphql::ids;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cohort_domain::ids::{EventId, UserId};
use cohort_store::{AttemptOutcome, DueDelivery, EventRecord, SystemHandle};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

/// The signature header value for one message, one `v1,…` per secret.
pub fn sign(secrets: &[String], msg_id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(secrets.len());
    for s in secrets {
        let key = STANDARD.decode(s.strip_prefix("whsec_").unwrap_or(s)).ok()?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        out.push(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())));
    }
    Some(out.join(" "))
}

/// Whether an address is one a webhook must never reach without an explicit allowance.
pub fn is_refused_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => refused_v4(a),
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return refused_v4(v4);
            }
            let s = a.segments();
            a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local (fd00:ec2::254, the AWS metadata v6, is here)
                || (s[0] & 0xffc0) == 0xfe80 // link local
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64 to anything, private included
        }
    }
}

fn refused_v4(a: Ipv4Addr) -> bool {
    let o = a.octets();
    a.is_loopback()
        || a.is_private()
        || a.is_link_local() // 169.254/16: cloud metadata (169.254.169.254)
        || a.is_unspecified()
        || a.is_broadcast()
        || a.is_multicast()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64/10 carrier-grade NAT
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // 192.0.0/24
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // 198.18/15 benchmarking
        || o[0] >= 240 // reserved
}

/// Why a URL may not be used, if it may not (the create/update check; deliveries check the
/// resolved addresses again every time, since DNS can change).
pub fn check_endpoint_url(settings: &WebhookSettings, url: &str) -> Result<(), &'static str> {
    let u = reqwest::Url::parse(url).map_err(|_| "is not a valid URL")?;
    let host = u.host_str().ok_or("has no host")?;
    if !u.username().is_empty() || u.password().is_some() {
        return Err("must not carry credentials (use the signature to authenticate Cohort)");
    }
    let allowed = settings.allow_hosts.iter().any(|h| h.eq_ignore_ascii_case(host.trim_matches(['[', ']'])));
    if u.scheme() != "https" && !(allowed && u.scheme() == "http") {
        return Err("must use https");
    }
    if !allowed {
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>()
            && is_refused_address(ip)
        {
            return Err("points at a private, loopback or link-local address");
        }
        if host.eq_ignore_ascii_case("localhost") || host.ends_with(".localhost") || host.ends_with(".internal") {
            return Err("points at a local host name");
        }
    }
    Ok(())
}

/// The JSON body of a message: `{type, timestamp, data}` with the outbox's thin payload.
pub fn body(e: &EventRecord) -> serde_json::Value {
    let subjects: Vec<serde_json::Value> = e
        .subjects
        .iter()
        .map(|s| {
            let tag = crate::graphql::events::subject_tag(s.kind);
            serde_json::json!({"type": tag, "id": ids::encode(tag, s.id).0})
        })
        .collect();
    serde_json::json!({
        "type": e.event_type.as_str(),
        "timestamp": e.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": {
            "id": ids::encode(EventId::TAG, e.id).0,
            "subjects": subjects,
            "actorId": e.actor_id.map(|u| ids::encode(UserId::TAG, u).0),
            "requestId": e.request_id,
            "schemaVersion": e.schema_version,
            "payload": e.payload,
        }
    })
}

fn outcome(
    start: Instant,
    status: Option<u16>,
    class: Option<&'static str>,
    excerpt: Option<String>,
) -> AttemptOutcome {
    AttemptOutcome {
        status_code: status,
        duration_ms: start.elapsed().as_millis() as i64,
        error_class: class,
        response_excerpt: excerpt,
    }
}

/// One attempt of one delivery.
pub async fn attempt(settings: &WebhookSettings, d: &DueDelivery) -> AttemptOutcome {
    let start = Instant::now();
    let fail = |class| outcome(start, None, Some(class), None);
    let Ok(url) = reqwest::Url::parse(&d.url) else { return fail("INVALID_URL") };
    let Some(host) = url.host_str().map(|h| h.trim_matches(['[', ']']).to_owned()) else { return fail("INVALID_URL") };
    let allowed = settings.allow_hosts.iter().any(|h| h.eq_ignore_ascii_case(&host));
    if url.scheme() != "https" && !(allowed && url.scheme() == "http") {
        return fail("INSECURE_SCHEME");
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> =
        match tokio::time::timeout(settings.connect_timeout, tokio::net::lookup_host((host.as_str(), port))).await {
            Ok(Ok(a)) => a.collect(),
            Ok(Err(_)) => return fail("DNS"),
            Err(_) => return fail("TIMEOUT"),
        };
    if addrs.is_empty() {
        return fail("DNS");
    }
    if !allowed && addrs.iter().any(|a| is_refused_address(a.ip())) {
        return fail("REFUSED_ADDRESS");
    }
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.timeout)
        .resolve_to_addrs(&host, &addrs)
        .user_agent(concat!("Cohort-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(_) => return fail("CLIENT"),
    };
    let payload = body(&d.event);
    let bytes = serde_json::to_vec(&payload).unwrap_or_default();
    let msg_id = ids::encode(EventId::TAG, d.event.id).0;
    let ts = chrono::Utc::now().timestamp();
    let Some(signature) = sign(&d.secrets, &msg_id, ts, &bytes) else { return fail("SECRET") };
    let resp = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &msg_id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .body(bytes)
        .send()
        .await;
    let mut resp = match resp {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return fail("TIMEOUT"),
        Err(e) if e.is_connect() => return fail("CONNECT"),
        Err(_) => return fail("REQUEST"),
    };
    let status = resp.status().as_u16();
    // Read a bounded part of the answer (never the whole of a hostile stream).
    let mut buf: Vec<u8> = Vec::new();
    let mut timed_out = false;
    loop {
        match tokio::time::timeout(settings.timeout, resp.chunk()).await {
            Ok(Ok(Some(c))) => {
                buf.extend_from_slice(&c[..c.len().min(settings.max_response_bytes.saturating_sub(buf.len()))]);
                if buf.len() >= settings.max_response_bytes {
                    break;
                }
            }
            Ok(Ok(None)) | Ok(Err(_)) => break,
            Err(_) => {
                timed_out = true;
                break;
            }
        }
    }
    let excerpt = (!buf.is_empty()).then(|| String::from_utf8_lossy(&buf[..buf.len().min(1024)]).into_owned());
    let class = match status {
        200..=299 if !timed_out => None,
        200..=299 => Some("TIMEOUT"),
        300..=399 => Some("REDIRECT"),
        _ => Some("HTTP_STATUS"),
    };
    outcome(start, Some(status), class, excerpt)
}

/// The delivery worker: runs until `shutdown` turns `true`.
/// How long a wake-up by committed events waits for more commits before fanning out.
const WAKE_COALESCE: Duration = Duration::from_millis(5);

pub async fn run_worker(
    system: SystemHandle,
    settings: WebhookSettings,
    mailer: Option<std::sync::Arc<crate::mail::Mailer>>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let policy = settings.retry_policy();
    tracing::info!(concurrency = settings.concurrency, "webhook worker started");
    let mut next_timed = tokio::time::Instant::now();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let mut busy = false;
        // Time-driven work (SLA breaches, due sequence steps) runs on the poll timer — and again
        // at once while a pass finds work; a wake-up by committed events runs only the fan-out and
        // delivery below, so busy request traffic does not multiply these scans.
        if tokio::time::Instant::now() >= next_timed {
            let mut timed_busy = false;
            match system.emit_sla_breaches(200).await {
                Ok(n) => timed_busy |= n > 0,
                Err(e) => tracing::error!(error = %e, "emitting SLA breaches failed"),
            }
            match system.run_due_steps(100).await {
                Ok(n) => timed_busy |= n > 0,
                Err(e) => tracing::error!(error = %e, "running follow-up sequence steps failed"),
            }
            if !timed_busy {
                next_timed = tokio::time::Instant::now() + settings.poll_interval;
            }
            busy |= timed_busy;
        }
        if let Some(m) = &mailer {
            busy |= m.send_due(&system).await > 0;
        }
        match system.dispatch_events(500).await {
            Ok(n) => busy |= n > 0,
            Err(e) => tracing::error!(error = %e, "webhook fan-out failed"),
        }
        match system.claim_deliveries(settings.concurrency as u64, &policy).await {
            Ok(claimed) if !claimed.is_empty() => {
                busy = true;
                let mut set = tokio::task::JoinSet::new();
                for d in claimed {
                    let (s, sys, policy) = (settings.clone(), system.clone(), policy.clone());
                    // Each attempt records itself as soon as it is done, so the recording
                    // transactions of a batch overlap instead of queueing behind the slowest
                    // receiver.
                    set.spawn(async move {
                        let o = attempt(&s, &d).await;
                        if let Err(e) = sys.finish_delivery(&d, &o, &policy).await {
                            tracing::error!(error = %e, delivery = %d.id, "recording a webhook attempt failed");
                        }
                    });
                }
                // In-flight attempts always finish (each is bounded by the timeout), also on
                // shutdown, so nothing is left half-recorded.
                while set.join_next().await.is_some() {}
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "claiming webhook deliveries failed"),
        }
        if !busy {
            // Events committed by this process wake the worker at once; those of other replicas
            // (and due retries, steps and SLA breaches) are found at the next poll.
            tokio::select! {
                _ = tokio::time::sleep_until(next_timed) => {}
                _ = system.events_committed() => {
                    // Let the commits of a burst gather into one fan-out.
                    tokio::time::sleep(WAKE_COALESCE).await;
                }
                _ = shutdown.changed() => {}
            }
        }
    }
    tracing::info!("webhook worker stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_addresses() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "240.0.0.1",
        ] {
            assert!(is_refused_address(a.parse().unwrap()), "{a}"); // ok: unit test
        }
        for a in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(!is_refused_address(a.parse().unwrap()), "{a}"); // ok: unit test
        }
    }

    #[test]
    fn signature_matches_the_specification_example() {
        // The example of the Standard Webhooks specification (and its reference libraries).
        let s = sign(
            &["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned()],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(s.as_deref(), Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="));
    }

    fn due(url: &str) -> DueDelivery {
        DueDelivery {
            tenant_id: uuid::Uuid::nil(),
            id: uuid::Uuid::nil(),
            endpoint_id: uuid::Uuid::nil(),
            url: url.to_owned(),
            secrets: vec!["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()],
            attempt: 1,
            event: EventRecord {
                id: uuid::Uuid::now_v7(),
                event_type: cohort_store::EventType::GroupCreated,
                occurred_at: chrono::Utc::now(),
                actor_id: None,
                request_id: None,
                subjects: vec![],
                schema_version: 1,
                payload: serde_json::json!({}),
            },
        }
    }

    /// The addresses are checked again at delivery time, after resolving: a host name that
    /// resolves to loopback (DNS can change after the endpoint was accepted) is refused without
    /// a connection, and so is plain http.
    #[tokio::test]
    async fn deliveries_check_resolved_addresses() {
        let s = WebhookSettings::default();
        let o = attempt(&s, &due("https://localhost:9/hook")).await;
        assert_eq!(o.error_class, Some("REFUSED_ADDRESS"));
        let o = attempt(&s, &due("https://127.0.0.1:9/hook")).await;
        assert_eq!(o.error_class, Some("REFUSED_ADDRESS"));
        let o = attempt(&s, &due("http://hooks.example.com/hook")).await;
        assert_eq!(o.error_class, Some("INSECURE_SCHEME"));
        assert!(!o.succeeded());
    }

    #[test]
    fn endpoint_urls_follow_the_policy() {
        let s = WebhookSettings::default();
        assert!(check_endpoint_url(&s, "https://hooks.example.com/cohort").is_ok());
        for bad in [
            "http://hooks.example.com/x",
            "https://127.0.0.1/x",
            "https://169.254.169.254/latest",
            "https://localhost/x",
            "https://user:pw@hooks.example.com/",
            "ftp://x.example.com/",
        ] {
            assert!(check_endpoint_url(&s, bad).is_err(), "{bad}");
        }
        let allowed = WebhookSettings { allow_hosts: vec!["127.0.0.1".into()], ..WebhookSettings::default() };
        assert!(check_endpoint_url(&allowed, "http://127.0.0.1:9000/hook").is_ok());
    }
}
