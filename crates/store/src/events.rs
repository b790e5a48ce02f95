//! Domain events: what the unit of work writes to the outbox, and the admins' read of it.
//!
//! Payloads are thin on purpose (ids and small facts, never contact fields or membership lists):
//! the outbox feeds webhooks, and a webhook must not become an export channel.

use crate::access::handle::DataHandle;
use crate::core::page::{Page, PageRequest, decode_cursor, encode_cursor};
use crate::entities::event;
use crate::error::{StoreError, StoreResult};
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use uuid::Uuid;

/// The payload layout version every event carries; bumped when a payload changes incompatibly.
pub const EVENT_SCHEMA_VERSION: i32 = 1;

macro_rules! event_types {
    ($($variant:ident => $name:literal,)*) => {
        /// Every event type Cohort emits. The text form is the public contract (`group.created`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventType { $($variant,)* }

        impl EventType {
            pub const ALL: &'static [EventType] = &[$(EventType::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(EventType::$variant => $name,)* }
            }

            /// Strict: an unknown name is `None`, never some other type.
            pub fn parse(s: &str) -> Option<EventType> {
                match s { $($name => Some(EventType::$variant),)* _ => None }
            }
        }
    };
}

event_types! {
    AddressBookCreated => "address_book.created",
    AccessGranted => "address_book.access_granted",
    AccessRevoked => "address_book.access_revoked",
    UserCreated => "user.created",
    UserGroupCreated => "user_group.created",
    UserGroupMembersAdded => "user_group.members_added",
    UserGroupMembersRemoved => "user_group.members_removed",
    ContactCreated => "contact.created",
    ContactUpdated => "contact.updated",
    ContactDeleted => "contact.deleted",
    ContactErased => "contact.erased",
    ContactStatusChanged => "contact.status_changed",
    GroupCreated => "group.created",
    GroupUpdated => "group.updated",
    GroupMoved => "group.moved",
    GroupDeleted => "group.deleted",
    GroupMembersAdded => "group.members_added",
    GroupMembersRemoved => "group.members_removed",
    ProductCreated => "product.created",
    ProductUpdated => "product.updated",
    PriceListCreated => "price_list.created",
    PriceListUpdated => "price_list.updated",
    PriceListItemsSet => "price_list.items_set",
    PriceListAssigned => "price_list.assigned",
    PriceListUnassigned => "price_list.unassigned",
    DefaultPriceListSet => "price_list.default_set",
    OrderPlaced => "order.placed",
    ProcessingAreaCreated => "processing_area.created",
    ProcessingAreaUpdated => "processing_area.updated",
    ProcessAreaCreated => "process_area.created",
    ProcessAreaUpdated => "process_area.updated",
    ResponsibilityChanged => "responsibility.changed",
    MessageReceived => "message.received",
    MessageRouted => "message.routed",
    MessageReassigned => "message.reassigned",
    BusinessCalendarCreated => "business_calendar.created",
    BusinessCalendarUpdated => "business_calendar.updated",
    SlaContractCreated => "sla_contract.created",
    SlaContractUpdated => "sla_contract.updated",
    DefaultSlaSet => "sla_contract.default_set",
    TicketCreated => "ticket.created",
    TicketSlaAssigned => "ticket.sla_assigned",
    TicketSlaChanged => "ticket.sla_changed",
    TicketStatusChanged => "ticket.status_changed",
    TicketResponded => "ticket.responded",
    TicketSlaBreached => "ticket.sla_breached",
    WebhookEndpointCreated => "webhook_endpoint.created",
    WebhookEndpointUpdated => "webhook_endpoint.updated",
    WebhookEndpointDeleted => "webhook_endpoint.deleted",
    WebhookSecretRotated => "webhook_endpoint.secret_rotated",
    WebhookEndpointDisabled => "webhook_endpoint.disabled",
    SequenceCreated => "sequence.created",
    SequenceUpdated => "sequence.updated",
    SequencePaused => "sequence.paused",
    SequenceResumed => "sequence.resumed",
    SequenceEnrolled => "sequence.enrolled",
    SequenceEnrolmentsStopped => "sequence.enrolments_stopped",
    SequenceStepDue => "sequence.step_due",
    SequenceEnrolmentCompleted => "sequence.enrolment_completed",
    ConsentTextCreated => "consent_text.created",
    WebFormCreated => "web_form.created",
    WebFormUpdated => "web_form.updated",
    ConsentGiven => "consent.given",
    ConsentConfirmed => "consent.confirmed",
    ConsentWithdrawn => "consent.withdrawn",
    ConsentConfirmationRequested => "consent.confirmation_requested",
    DataUsageThresholdExceeded => "data_usage.threshold_exceeded",
    DataUsageBlocked => "data_usage.blocked",
    DataUsageBlockLifted => "data_usage.block_lifted",
}

/// What an event is about. The kind names are the GraphQL type names, so the API can turn a
/// subject into a global id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SubjectKind {
    AddressBook,
    User,
    UserGroup,
    Contact,
    Group,
    Product,
    PriceList,
    Order,
    ProcessArea,
    ProcessingArea,
    Message,
    WebhookEndpoint,
    BusinessCalendar,
    SlaContract,
    Ticket,
    Sequence,
    SequenceEnrolment,
    ConsentText,
    WebForm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    #[serde(rename = "type")]
    pub kind: SubjectKind,
    pub id: Uuid,
}

impl Subject {
    pub fn new(kind: SubjectKind, id: Uuid) -> Subject {
        Subject { kind, id }
    }
}

/// An event as the unit of work collects it before commit.
#[derive(Debug, Clone)]
pub(crate) struct NewEvent {
    pub(crate) event_type: EventType,
    pub(crate) subjects: Vec<Subject>,
    pub(crate) payload: serde_json::Value,
}

impl NewEvent {
    pub(crate) fn new(event_type: EventType, subjects: Vec<Subject>, payload: serde_json::Value) -> NewEvent {
        NewEvent { event_type, subjects, payload }
    }
}

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub id: Uuid,
    pub event_type: EventType,
    pub occurred_at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub request_id: Option<String>,
    pub subjects: Vec<Subject>,
    pub schema_version: i32,
    pub payload: serde_json::Value,
}

impl TryFrom<event::Model> for EventRecord {
    type Error = StoreError;
    fn try_from(m: event::Model) -> StoreResult<EventRecord> {
        Ok(EventRecord {
            id: m.id,
            event_type: EventType::parse(&m.event_type)
                .ok_or_else(|| StoreError::corrupt("events.event_type", &m.event_type))?,
            occurred_at: m.occurred_at,
            actor_id: m.actor_id,
            request_id: m.request_id,
            subjects: serde_json::from_str(&m.subjects)
                .map_err(|_| StoreError::corrupt("events.subjects", &m.subjects))?,
            schema_version: m.schema_version,
            payload: serde_json::from_str(&m.payload).map_err(|_| StoreError::corrupt("events.payload", &m.payload))?,
        })
    }
}

/// A filter on event types: exact names (`group.created`) or prefixes (`group.*`).
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub types: Vec<String>,
}

const MAX_TYPE_FILTERS: usize = 50;

/// Exact names and `prefix.*` patterns, expanded to the known types they cover (an unknown name
/// or a prefix that covers nothing is `BAD_USER_INPUT` on `types`).
pub(crate) fn expand_types(types: &[String]) -> StoreResult<Vec<&'static str>> {
    if types.len() > MAX_TYPE_FILTERS {
        return Err(StoreError::invalid("types", format!("at most {MAX_TYPE_FILTERS} entries")));
    }
    let mut wanted: Vec<&'static str> = Vec::new();
    for t in types {
        let matched: Vec<&'static str> =
            EventType::ALL.iter().map(|e| e.as_str()).filter(|n| type_matches(t, n)).collect();
        if matched.is_empty() {
            return Err(StoreError::invalid("types", "unknown event type or prefix (e.g. `group.created`, `group.*`)"));
        }
        wanted.extend(matched);
    }
    Ok(wanted)
}

/// Whether `pattern` (an exact type or `prefix.*`) covers the event type `name`.
pub(crate) fn type_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix(".*") {
        Some(prefix) => name.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('.')),
        None => pattern == name,
    }
}

impl DataHandle {
    /// The tenant's events, oldest first (admin). Admins read every address book, so no contact
    /// an event names is hidden from the reader; non-admins may not read the outbox at all,
    /// because even counts ("12 members added") would describe contacts they cannot see.
    pub async fn events(&self, f: &EventFilter, page: &PageRequest) -> StoreResult<Page<EventRecord>> {
        let mut q = self.filtered_events(f)?;
        if let Some(after) = page.after_key::<Uuid>()? {
            q = q.filter(event::Column::Id.gt(after));
        }
        let rows = q.order_by_asc(event::Column::Id).limit(page.limit()).all(&self.db).await?;
        let recs = rows.into_iter().map(EventRecord::try_from).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_rows(recs, page, |e| e.id))
    }

    /// How many events the filter matches (admin).
    pub async fn event_count(&self, f: &EventFilter) -> StoreResult<u64> {
        Ok(self.filtered_events(f)?.count(&self.db).await?)
    }

    /// The events `f` selects, for `events` and `event_count` (admin only, see `events`).
    fn filtered_events(&self, f: &EventFilter) -> StoreResult<sea_orm::Select<event::Entity>> {
        let v = self.viewer();
        if !v.is_admin() {
            return Err(StoreError::forbidden("reading events needs the admin role"));
        }
        if f.types.len() > MAX_TYPE_FILTERS {
            return Err(StoreError::invalid("types", format!("at most {MAX_TYPE_FILTERS} entries")));
        }
        let mut q = event::Entity::find().filter(event::Column::TenantId.eq(v.tenant_id.0));
        if !f.types.is_empty() {
            // Prefixes expand to the known types they cover, so the filter is one IN list on the
            // (tenant, type, id) index and an unknown name is a clear error, not an empty page.
            let wanted = expand_types(&f.types)?;
            q = q.filter(event::Column::EventType.is_in(wanted));
        }
        Ok(q)
    }
}

// ---------------------------------------------------------------------------------------------
// Live feeds: the in-process wake-up and the subscriber's position (GraphQL subscriptions).

/// Wakes whoever waits for new outbox events in this process after a unit of work committed
/// some: the background worker (a single waiter; a permit is kept while it is busy) and the live
/// feeds **of that tenant** (each watches its tenant's commit counter, so none takes another's
/// wake-up, and one tenant's writes never wake another tenant's subscriptions). Commits of other
/// replicas, and the few events written outside a unit of work, are not signalled: the worker
/// and the feeds also poll.
#[derive(Debug, Default)]
pub(crate) struct OutboxSignal {
    worker: tokio::sync::Notify,
    /// Per tenant with live feeds: the commit counter they watch (made by the first feed, dropped
    /// at a commit once no feed watches it any more).
    commits: std::sync::Mutex<std::collections::HashMap<Uuid, tokio::sync::watch::Sender<u64>>>,
}

impl OutboxSignal {
    /// After a commit of `tenant` that wrote events.
    pub(crate) fn committed(&self, tenant: Uuid) {
        self.worker.notify_one();
        if let Ok(mut feeds) = self.commits.lock()
            && let Some(tx) = feeds.get(&tenant)
        {
            if tx.receiver_count() == 0 {
                feeds.remove(&tenant);
            } else {
                tx.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    }

    /// A watch on `tenant`'s commits. (Should the lock be poisoned, a receiver whose sender is
    /// gone: its `changed()` fails at once and the feed falls back to polling.)
    fn watch(&self, tenant: Uuid) -> EventCommits {
        match self.commits.lock() {
            Ok(mut feeds) => feeds.entry(tenant).or_insert_with(|| tokio::sync::watch::channel(0).0).subscribe(),
            Err(_) => tokio::sync::watch::channel(0).1,
        }
    }

    /// The worker's wake-up (see `SystemHandle::events_committed`).
    pub(crate) async fn worker_wakeup(&self) {
        self.worker.notified().await
    }
}

/// Marks a change whenever a unit of work of this process has committed events of one tenant
/// ([`DataHandle::event_commits`]); `changed().await` wakes on the next one.
pub type EventCommits = tokio::sync::watch::Receiver<u64>;

/// How far below the newest event a feed has sent it still looks for events that committed late
/// (see [`EventFeed`]).
pub const LATE_COMMIT_WINDOW: std::time::Duration = std::time::Duration::from_secs(30);

/// At most this many of the newest ids of the window are re-checked and remembered per feed: a
/// tenant writing thousands of events a second would otherwise make every sweep read, and every
/// feed keep, the whole window. In a window that dense, a late commit older than the newest
/// `LATE_COMMIT_IDS` is not re-checked.
pub const LATE_COMMIT_IDS: usize = 5_000;

/// A subscriber's position in the outbox: what it has been sent, so that each event reaches it
/// exactly once ([`DataHandle::open_event_feed`], [`DataHandle::poll_event_feed`],
/// [`DataHandle::sweep_event_feed`]).
///
/// Event ids are UUIDv7 taken when the writing transaction commits, so they grow with commit
/// time — but not strictly with commit *order*: on PostgreSQL two transactions can take their ids
/// in one order and commit in the other, and another replica's events carry its clock. A cursor
/// alone (`id > last sent`) would skip such a late event for good. A feed therefore remembers the
/// ids it sent within [`LATE_COMMIT_WINDOW`] below the newest one, and a sweep sends whatever has
/// appeared in that window since. (SQLite commits one writer at a time, in id order.)
#[derive(Debug, Clone)]
pub struct EventFeed {
    tenant: Uuid,
    filter: EventFilter,
    /// Nothing at or before it is sent: the start position (`after`), or the newest matching
    /// event when the feed opened.
    floor: Option<Uuid>,
    /// The newest id sent, or the floor.
    high: Option<Uuid>,
    /// The ids sent within the window below `high`.
    recent: BTreeSet<Uuid>,
}

/// Where a feed starts.
#[derive(Debug, Clone)]
pub enum FeedStart {
    /// With the events committed from now on.
    Now,
    /// After an `events` edge cursor: what came after it is replayed first.
    AfterCursor(String),
    /// After the event with this id: what came after it is replayed first.
    AfterEvent(Uuid),
}

/// The smallest UUIDv7 of Unix millisecond `ms`, and the millisecond of a UUIDv7.
fn v7_floor(ms: u64) -> Uuid {
    Uuid::from_u128(u128::from(ms) << 80)
}

fn v7_millis(id: Uuid) -> u64 {
    (id.as_u128() >> 80) as u64
}

impl EventFeed {
    /// The newest event sent (or the start position): where a new feed resumes (`AfterEvent`).
    pub fn position(&self) -> Option<Uuid> {
        self.high
    }

    /// How many sent ids the feed remembers (bounded by the events of one window).
    pub fn remembered(&self) -> usize {
        self.recent.len()
    }

    /// The exclusive lower end of the late-commit window: never below the floor.
    fn window_start(&self) -> Option<Uuid> {
        let high = self.high?;
        let lowest = v7_floor(v7_millis(high).saturating_sub(LATE_COMMIT_WINDOW.as_millis() as u64));
        Some(match self.floor {
            Some(f) if f > lowest => f,
            _ => lowest,
        })
    }

    fn sent(&mut self, ids: impl IntoIterator<Item = Uuid>) {
        for id in ids {
            if self.high.is_none_or(|h| id > h) {
                self.high = Some(id);
            }
            self.recent.insert(id);
        }
        if let Some(start) = self.window_start() {
            self.recent = self.recent.split_off(&start);
        }
        while self.recent.len() > LATE_COMMIT_IDS {
            self.recent.pop_first();
        }
    }
}

impl DataHandle {
    /// Opens a live feed of the events `filter` selects. Checked exactly as [`DataHandle::events`]
    /// (admin only; an unknown type or a bad cursor is `BAD_USER_INPUT`), and so is every read
    /// of it — by the handle that reads it, which may be a fresher one of the same tenant.
    pub async fn open_event_feed(&self, filter: EventFilter, start: FeedStart) -> StoreResult<EventFeed> {
        let q = self.filtered_events(&filter)?;
        let floor = match start {
            FeedStart::Now => {
                q.select_only()
                    .column(event::Column::Id)
                    .order_by_desc(event::Column::Id)
                    .limit(1)
                    .into_tuple::<Uuid>()
                    .one(&self.db)
                    .await?
            }
            FeedStart::AfterCursor(c) => Some(decode_cursor::<Uuid>(&c)?),
            FeedStart::AfterEvent(id) => Some(id),
        };
        Ok(EventFeed { tenant: self.viewer().tenant_id.0, filter, floor, high: floor, recent: BTreeSet::new() })
    }

    /// The next events of `feed` after the newest one sent, oldest first, at most `max` (1 to
    /// 100): a page of [`DataHandle::events`].
    pub async fn poll_event_feed(&self, feed: &mut EventFeed, max: u32) -> StoreResult<Vec<EventRecord>> {
        self.check_feed(feed)?;
        let first = max.clamp(1, crate::core::page::MAX_PAGE_SIZE) as i32;
        let page = PageRequest::new(Some(first), feed.high.map(|h| encode_cursor(&h)))?;
        let rows: Vec<EventRecord> = self.events(&feed.filter, &page).await?.rows.into_iter().map(|(_, e)| e).collect();
        feed.sent(rows.iter().map(|e| e.id));
        Ok(rows)
    }

    /// The events that committed late (see [`EventFeed`]): those within the window below the
    /// newest one sent that the feed has not sent, oldest first. One index read of ids; the rows
    /// are read only when there is something to send.
    pub async fn sweep_event_feed(&self, feed: &mut EventFeed) -> StoreResult<Vec<EventRecord>> {
        self.check_feed(feed)?;
        let (Some(high), Some(start)) = (feed.high, feed.window_start()) else { return Ok(vec![]) };
        let ids: Vec<Uuid> = self
            .filtered_events(&feed.filter)?
            .filter(event::Column::Id.gt(start))
            .filter(event::Column::Id.lte(high))
            .select_only()
            .column(event::Column::Id)
            .order_by_desc(event::Column::Id)
            .limit(LATE_COMMIT_IDS as u64)
            .into_tuple()
            .all(&self.db)
            .await?;
        // Below the oldest id remembered (a window denser than LATE_COMMIT_IDS), nothing is
        // known to have been sent: only ids the feed could have remembered are candidates.
        let oldest_known = if feed.recent.len() >= LATE_COMMIT_IDS { feed.recent.first().copied() } else { None };
        let missing: Vec<Uuid> = ids
            .into_iter()
            .filter(|id| oldest_known.is_none_or(|o| *id > o) && !feed.recent.contains(id))
            .rev()
            .collect();
        let mut late = Vec::with_capacity(missing.len());
        for chunk in missing.chunks(500) {
            let rows = self
                .filtered_events(&feed.filter)?
                .filter(event::Column::Id.is_in(chunk.iter().copied()))
                .order_by_asc(event::Column::Id)
                .all(&self.db)
                .await?;
            for r in rows {
                late.push(EventRecord::try_from(r)?);
            }
        }
        feed.sent(late.iter().map(|e| e.id));
        Ok(late)
    }

    /// Wakes after this process's next commit of the viewer's tenant that wrote events (see
    /// [`OutboxSignal`]).
    pub fn event_commits(&self) -> EventCommits {
        self.outbox.watch(self.viewer().tenant_id.0)
    }

    fn check_feed(&self, feed: &EventFeed) -> StoreResult<()> {
        if feed.tenant != self.viewer().tenant_id.0 {
            return Err(StoreError::forbidden("this event feed belongs to another tenant"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roundtrip_and_unknown_names_do_not_parse() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(*t));
            let (area, action) = t.as_str().split_once('.').expect("area.action");
            assert!(!area.is_empty() && !action.is_empty());
        }
        assert_eq!(EventType::parse("group.exploded"), None);
        assert_eq!(EventType::parse("GROUP.CREATED"), None);
    }

    #[test]
    fn a_feed_remembers_what_it_sent_within_the_window_and_never_goes_below_its_floor() {
        let ms = |m: u64| Uuid::from_u128((u128::from(m) << 80) | 0x7000_8000_0000_0000_0001);
        let window = LATE_COMMIT_WINDOW.as_millis() as u64;
        let t0 = 1_800_000_000_000;
        assert_eq!(v7_millis(ms(t0)), t0);
        assert!(v7_floor(t0) < ms(t0) && v7_floor(t0 + 1) > ms(t0));
        let mut f = EventFeed {
            tenant: Uuid::nil(),
            filter: EventFilter::default(),
            floor: Some(ms(t0)),
            high: Some(ms(t0)),
            recent: BTreeSet::new(),
        };
        assert_eq!(f.window_start(), Some(ms(t0)), "the floor bounds the window");
        f.sent([ms(t0 + window + 10), ms(t0 + 5)]);
        assert_eq!(f.position(), Some(ms(t0 + window + 10)), "the newest id, whatever the order sent");
        assert_eq!(f.window_start(), Some(v7_floor(t0 + 10)));
        assert_eq!(f.remembered(), 1, "ids below the window are forgotten");
        f.sent([ms(t0 + 3 * window)]);
        assert_eq!(f.remembered(), 1);
        // A dense window keeps only the newest LATE_COMMIT_IDS ids.
        let base = t0 + 3 * window;
        f.sent((1..=(LATE_COMMIT_IDS as u64 + 50)).map(|i| ms(base + i)));
        assert_eq!(f.remembered(), LATE_COMMIT_IDS);
        assert_eq!(f.recent.first().copied(), Some(ms(base + 51)), "the oldest are forgotten first");
    }

    #[tokio::test]
    async fn commits_wake_only_their_tenants_feeds() {
        let signal = OutboxSignal::default();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let wa = signal.watch(a);
        let mut wb = signal.watch(b);
        signal.committed(b);
        assert!(wb.has_changed().expect("open"), "b's feed wakes");
        assert!(!wa.has_changed().expect("open"), "a's feed sleeps on");
        wb.borrow_and_update();
        drop(wa);
        signal.committed(a);
        assert!(signal.commits.lock().expect("lock").get(&a).is_none(), "a tenant without feeds is forgotten");
        assert!(!wb.has_changed().expect("open"));
    }
}
