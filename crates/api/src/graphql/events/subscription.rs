//! The events area's subscription: the outbox, live (over WebSocket, see [`crate::ws`]).
//!
//! A subscription holds no handle of its own between deliveries: each delivery batch admits the
//! connection's token again ([`Admission::renew`]: verified again, viewer and grants resolved
//! again) and reads through that fresh handle with the store's event-feed methods, which check
//! exactly what the `events` query checks. So an expired token ends the subscription
//! (`UNAUTHENTICATED`) and no batch is read with rights the token no longer carries.

use crate::error::ApiError;
use crate::graphql::events::Event;
use crate::graphql::ids;
use async_graphql::futures_util::stream::{self, Stream};
use async_graphql::{Context, Subscription};
use cohort_domain::ids::EventId;
use cohort_store::{Admission, DataHandle, EventCommits, EventFeed, EventFilter, EventRecord, FeedStart, Refused};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What a WebSocket connection gives its subscriptions (request data, set at `connection_init`
/// by [`crate::ws`] only — over HTTP it is absent, and subscriptions do not run there anyway).
pub struct LiveConnection {
    /// Re-admits the connection's token for each delivery batch.
    pub admission: Admission,
    /// This process's commits of events (wakes the subscriptions at once).
    pub commits: EventCommits,
    /// How often a subscription looks without being woken (events of other replicas).
    pub poll_interval: Duration,
}

/// Events read per batch.
const BATCH: u32 = 100;
/// At most this many batches a second per subscription, however often commits wake it.
const MIN_BATCH_GAP: Duration = Duration::from_millis(100);

#[derive(Default)]
pub struct EventSubscription;

#[Subscription]
impl EventSubscription {
    /// The tenant's events as they are committed (admin; over WebSocket, `graphql-transport-ws`).
    /// Each event is sent once, oldest first: with `after` (an `events` edge cursor, or the `id`
    /// of the last event received) what came after it is replayed first, without it the stream
    /// starts with the events committed after subscribing. `types` filters as in `events`. The
    /// token is checked again for every batch: when it expires, the subscription ends with
    /// `UNAUTHENTICATED`.
    async fn events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Exact types (`group.created`) and prefixes (`group.*`); none = every type.")] types: Option<
            Vec<String>,
        >,
        #[graphql(desc = "Replay from here: an `events` edge cursor, or the `id` of the last event received.")]
        after: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Event>> + use<>> {
        let conn = ctx.data_opt::<LiveConnection>().ok_or(ApiError::Unauthenticated)?;
        let start = match after {
            None => FeedStart::Now,
            Some(a) => start_after(a)?,
        };
        let handle = renew(&conn.admission).await?;
        let filter = EventFilter { types: types.unwrap_or_default() };
        let feed = handle.open_event_feed(filter, start).await.map_err(ApiError::from)?;
        let live = Live {
            admission: conn.admission.clone(),
            commits: conn.commits.clone(),
            poll_interval: conn.poll_interval,
            feed,
            queue: VecDeque::new(),
            last_batch: None,
            backlog: false,
            ended: false,
        };
        Ok(stream::unfold(live, Live::next))
    }
}

/// `after`: an `events` edge cursor, or an `Event` id.
fn start_after(after: String) -> Result<FeedStart, ApiError> {
    if after.starts_with("c1.") {
        return Ok(FeedStart::AfterCursor(after));
    }
    match ids::decode_any(&after) {
        Some((tag, id)) if tag == EventId::TAG => Ok(FeedStart::AfterEvent(id)),
        _ => Err(ApiError::bad_input("after", "is neither an `events` cursor nor an Event id")),
    }
}

async fn renew(admission: &Admission) -> Result<DataHandle, ApiError> {
    admission.renew().await.map_err(|e| match e {
        Refused::Unauthenticated(reason) => {
            tracing::debug!(%reason, "subscription token refused");
            ApiError::Unauthenticated
        }
        Refused::Internal(e) => ApiError::Internal(e.to_string()),
    })
}

/// One subscription's state between the events it yields.
struct Live {
    admission: Admission,
    commits: EventCommits,
    poll_interval: Duration,
    feed: EventFeed,
    /// Read, not yet yielded.
    queue: VecDeque<EventRecord>,
    last_batch: Option<Instant>,
    /// The last batch was full: more are waiting (a replay), read on without a pause.
    backlog: bool,
    /// After an error: the stream ends (the client resubscribes with `after`).
    ended: bool,
}

impl Live {
    async fn next(mut self) -> Option<(async_graphql::Result<Event>, Live)> {
        loop {
            if let Some(e) = self.queue.pop_front() {
                return Some((Ok(Event::from(e)), self));
            }
            if self.ended {
                return None;
            }
            match self.batch().await {
                Ok(true) => {}
                Ok(false) => self.wait().await,
                Err(e) => {
                    self.ended = true;
                    return Some((Err(e.into()), self));
                }
            }
        }
    }

    /// One delivery batch, through a fresh handle: late commits first (they are older), then
    /// what came after the newest event sent. Whether anything was read.
    async fn batch(&mut self) -> Result<bool, ApiError> {
        if let Some(gap) = self.last_batch.map(|t| MIN_BATCH_GAP.saturating_sub(t.elapsed()))
            && !gap.is_zero()
            && !self.backlog
        {
            tokio::time::sleep(gap).await;
        }
        self.last_batch = Some(Instant::now());
        let handle = renew(&self.admission).await?;
        let late = handle.sweep_event_feed(&mut self.feed).await?;
        let fresh = handle.poll_event_feed(&mut self.feed, BATCH).await?;
        let any = !late.is_empty() || !fresh.is_empty();
        self.backlog = fresh.len() == BATCH as usize;
        self.queue.extend(late);
        self.queue.extend(fresh);
        Ok(any)
    }

    /// Until this process commits events, or the poll interval has passed.
    async fn wait(&mut self) {
        let poll = self.poll_interval;
        tokio::select! {
            changed = self.commits.changed() => {
                if changed.is_err() {
                    // The store is gone (shutting down): poll only.
                    tokio::time::sleep(poll).await;
                }
            }
            _ = tokio::time::sleep(poll) => {}
        }
    }
}
