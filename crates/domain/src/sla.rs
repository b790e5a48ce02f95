//! SLA defaults and the ticket clock (DESIGN §1 "SLA contracts (SLA defaults)").
//!
//! - **Which contract**: among all the contact's groups' effective default SLAs (own, else the
//!   nearest ancestor's — the [`inherit`] rule) the highest `rank` wins; ties: smaller group
//!   precedence, then group id; else the tenant's fallback; else none.
//! - **The clock**: due times are business time from the ticket's opening in the contract's
//!   calendar. The first-response clock never pauses; the resolution clock does not run while
//!   the ticket waits on the customer or is resolved/closed. Due times are always recomputed
//!   from the original opening and the full status history, so a severity change or a contract
//!   switch keeps elapsed and paused time exactly (nothing is carried over by hand, so nothing
//!   can be lost or counted twice).

use crate::calendar::{Calendar, Exclusion};
use crate::ids::{GroupId, SlaContractId};
use crate::inherit::{self, Found};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    Critical,
    High,
    Normal,
    Low,
}

impl Severity {
    pub const ALL: [Severity; 4] = [Severity::Critical, Severity::High, Severity::Normal, Severity::Low];
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "CRITICAL",
            Severity::High => "HIGH",
            Severity::Normal => "NORMAL",
            Severity::Low => "LOW",
        }
    }
    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Targets in business minutes; `None`: no target for that clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Targets {
    pub first_response: Option<i64>,
    pub resolution: Option<i64>,
}

/// A contract's targets: the defaults (before severity is evaluated, and for severities the
/// contract names no targets for) and per severity.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContractTargets {
    pub default: Targets,
    pub per_severity: Vec<(Severity, Targets)>,
}

impl ContractTargets {
    /// The targets that apply at `severity` (`None` = not evaluated yet).
    pub fn at(&self, severity: Option<Severity>) -> Targets {
        severity.and_then(|s| self.per_severity.iter().find(|(x, _)| *x == s).map(|(_, t)| *t)).unwrap_or(self.default)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TicketStatus {
    New,
    Open,
    WaitingOnCustomer,
    Resolved,
    Closed,
}

impl TicketStatus {
    pub const ALL: [TicketStatus; 5] = [
        TicketStatus::New,
        TicketStatus::Open,
        TicketStatus::WaitingOnCustomer,
        TicketStatus::Resolved,
        TicketStatus::Closed,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::New => "NEW",
            TicketStatus::Open => "OPEN",
            TicketStatus::WaitingOnCustomer => "WAITING_ON_CUSTOMER",
            TicketStatus::Resolved => "RESOLVED",
            TicketStatus::Closed => "CLOSED",
        }
    }
    pub fn parse(s: &str) -> Option<TicketStatus> {
        TicketStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }
    /// Whether the resolution clock runs in this status.
    pub fn clock_runs(self) -> bool {
        matches!(self, TicketStatus::New | TicketStatus::Open)
    }
    /// Whether the ticket is done (resolved or closed); a done ticket may be reopened.
    pub fn is_done(self) -> bool {
        matches!(self, TicketStatus::Resolved | TicketStatus::Closed)
    }
    /// Allowed moves: anything to anything else, except back to `NEW`.
    pub fn can_move_to(self, to: TicketStatus) -> bool {
        self != to && to != TicketStatus::New
    }
}

/// The periods in which the resolution clock stood still, from the status history (in order,
/// the first entry being the opening).
pub fn exclusions(history: &[(TicketStatus, DateTime<Utc>)]) -> Vec<Exclusion> {
    let mut out = vec![];
    let mut paused_since: Option<DateTime<Utc>> = None;
    for (status, at) in history {
        match (status.clock_runs(), paused_since) {
            (false, None) => paused_since = Some(*at),
            (true, Some(s)) => {
                out.push((s, Some(*at)));
                paused_since = None;
            }
            _ => {}
        }
    }
    if let Some(s) = paused_since {
        out.push((s, None));
    }
    out
}

/// Due times for the targets, from the opening, in the calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueTimes {
    pub first_response: Option<DateTime<Utc>>,
    /// `None` also while the resolution clock stands still.
    pub resolution: Option<DateTime<Utc>>,
}

pub fn due_times(cal: &Calendar, t: Targets, opened_at: DateTime<Utc>, paused: &[Exclusion]) -> DueTimes {
    DueTimes {
        first_response: t.first_response.and_then(|m| cal.add_minutes(opened_at, m, &[])),
        resolution: t.resolution.and_then(|m| cal.add_minutes(opened_at, m, paused)),
    }
}

/// Where the resolution clock stands at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockReading {
    /// Business minutes counted so far.
    pub elapsed: i64,
    /// Business minutes the clock stood still (calendar working time inside pauses).
    pub paused: i64,
    /// Target minus elapsed (negative once breached); `None` without a resolution target.
    pub remaining: Option<i64>,
    pub resolution_breached: bool,
}

pub fn read_clock(
    cal: &Calendar,
    t: Targets,
    opened_at: DateTime<Utc>,
    paused: &[Exclusion],
    now: DateTime<Utc>,
) -> ClockReading {
    let counted = cal.seconds_between(opened_at, now, paused);
    let all = cal.seconds_between(opened_at, now, &[]);
    ClockReading {
        elapsed: counted / 60,
        paused: (all - counted) / 60,
        remaining: t.resolution.map(|m| m - counted / 60),
        resolution_breached: t.resolution.is_some_and(|m| counted > m * 60),
    }
}

/// One of the contact's groups with an effective default SLA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaCandidate {
    pub group: GroupId,
    pub precedence: i32,
    pub defined_on: GroupId,
    pub depth: i32,
    pub contract: SlaContractId,
    pub rank: i32,
    pub chosen: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlaSource {
    Group,
    TenantDefault,
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaChoice {
    pub contract: Option<SlaContractId>,
    pub source: SlaSource,
    pub from_group: Option<GroupId>,
    pub defined_on: Option<GroupId>,
    /// Highest rank first.
    pub candidates: Vec<SlaCandidate>,
}

/// Chooses the default SLA. `found`: (direct group, what its chain sets: (contract, rank)).
pub fn choose(
    memberships: impl IntoIterator<Item = (GroupId, i32)>,
    found: impl IntoIterator<Item = (GroupId, Found<(SlaContractId, i32)>)>,
    tenant_default: Option<SlaContractId>,
) -> SlaChoice {
    let precedence: HashMap<GroupId, i32> = memberships.into_iter().collect();
    let effective = inherit::effective_per(found.into_iter().filter(|(g, _)| precedence.contains_key(g)));
    let mut candidates: Vec<SlaCandidate> = effective
        .into_iter()
        .filter_map(|(group, e)| {
            let (contract, rank) = e.values.iter().copied().max_by_key(|(c, r)| (*r, std::cmp::Reverse(*c)))?;
            Some(SlaCandidate {
                group,
                precedence: precedence[&group],
                defined_on: e.from,
                depth: e.depth,
                contract,
                rank,
                chosen: false,
            })
        })
        .collect();
    candidates.sort_by_key(|c| (std::cmp::Reverse(c.rank), c.precedence, c.group));
    if let Some(first) = candidates.first_mut() {
        first.chosen = true;
        return SlaChoice {
            contract: Some(first.contract),
            source: SlaSource::Group,
            from_group: Some(first.group),
            defined_on: Some(first.defined_on),
            candidates,
        };
    }
    SlaChoice {
        contract: tenant_default,
        source: if tenant_default.is_some() { SlaSource::TenantDefault } else { SlaSource::None },
        from_group: None,
        defined_on: None,
        candidates,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::{WorkInterval, parse_time_zone};
    use chrono::TimeZone;
    use proptest::prelude::*;
    use uuid::Uuid;

    fn g(n: u128) -> GroupId {
        GroupId(Uuid::from_u128(n))
    }
    fn c(n: u128) -> SlaContractId {
        SlaContractId(Uuid::from_u128(n))
    }
    fn own(group: u128, contract: u128, rank: i32) -> (GroupId, Found<(SlaContractId, i32)>) {
        (g(group), Found { defined_on: g(group), depth: 0, value: (c(contract), rank) })
    }

    #[test]
    fn highest_rank_wins_then_precedence_then_id() {
        let ch = choose([(g(1), 5), (g(2), 1), (g(3), 1)], [own(1, 10, 9), own(2, 20, 3), own(3, 30, 3)], Some(c(99)));
        assert_eq!((ch.contract, ch.source, ch.from_group), (Some(c(10)), SlaSource::Group, Some(g(1))));
        let ch = choose([(g(2), 1), (g(3), 0)], [own(2, 20, 3), own(3, 30, 3)], None);
        assert_eq!(ch.from_group, Some(g(3)), "equal rank: smaller precedence");
        let ch = choose([(g(2), 1), (g(3), 1)], [own(3, 30, 3), own(2, 20, 3)], None);
        assert_eq!(ch.from_group, Some(g(2)), "equal rank and precedence: group id");
    }

    #[test]
    fn inherited_defaults_count_and_fallbacks_apply() {
        let inherited = (g(5), Found { defined_on: g(4), depth: 1, value: (c(40), 7) });
        let ch = choose([(g(5), 0)], [inherited], None);
        assert_eq!((ch.contract, ch.defined_on), (Some(c(40)), Some(g(4))));
        let ch = choose([(g(5), 0)], [], Some(c(99)));
        assert_eq!((ch.contract, ch.source), (Some(c(99)), SlaSource::TenantDefault));
        assert_eq!(choose([], [], None).source, SlaSource::None);
    }

    #[test]
    fn the_status_history_gives_the_pauses() {
        let t = |h| Utc.with_ymd_and_hms(2026, 11, 9, h, 0, 0).unwrap(); // ok: unit test
        use TicketStatus::*;
        let h = [
            (New, t(8)),
            (Open, t(9)),
            (WaitingOnCustomer, t(10)),
            (Open, t(12)),
            (Resolved, t(14)),
            (Open, t(15)),
            (WaitingOnCustomer, t(16)),
        ];
        assert_eq!(exclusions(&h), vec![(t(10), Some(t(12))), (t(14), Some(t(15))), (t(16), None)]);
    }

    #[test]
    fn a_switch_keeps_elapsed_and_paused_time() {
        let tz = parse_time_zone("Europe/Prague").unwrap(); // ok: unit test
        let day = vec![WorkInterval { start: 480, end: 1020 }];
        let cal = Calendar::new(tz, [day.clone(), day.clone(), day.clone(), day.clone(), day, vec![], vec![]], vec![])
            .unwrap(); // ok: unit test
        let l = |d, h, m| tz.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap().with_timezone(&Utc); // ok: unit test
        let opened = l(9, 8, 0); // Monday 08:00
        use TicketStatus::*;
        // A 1 h pause 09:00–10:00, then at 12:00 (3 business hours counted) the 4 h contract is
        // switched for an 8 h one: 5 h remain, the pause stays excluded.
        let h = [(New, opened), (WaitingOnCustomer, l(9, 9, 0)), (Open, l(9, 10, 0))];
        let p = exclusions(&h);
        let four = Targets { first_response: None, resolution: Some(240) };
        let eight = Targets { first_response: None, resolution: Some(480) };
        assert_eq!(due_times(&cal, four, opened, &p).resolution, Some(l(9, 13, 0)));
        let r = read_clock(&cal, eight, opened, &p, l(9, 12, 0));
        assert_eq!((r.elapsed, r.paused, r.remaining), (180, 60, Some(300)));
        assert_eq!(due_times(&cal, eight, opened, &p).resolution, Some(l(9, 17, 0)), "8–9 and 10–17: eight hours");
    }

    proptest! {
        /// The choice never depends on the order facts arrive in, and is always the highest rank.
        #[test]
        fn choice_is_order_independent(ranks in proptest::collection::vec((0i32..4, -2i32..3), 0..8)) {
            let members: Vec<(GroupId, i32)> = ranks.iter().enumerate().map(|(i, (_, p))| (g(i as u128), *p)).collect();
            let found: Vec<_> = ranks.iter().enumerate().map(|(i, (r, _))| own(i as u128, 100 + i as u128, *r)).collect();
            let a = choose(members.clone(), found.clone(), None);
            let mut f2 = found.clone();
            f2.reverse();
            let mut m2 = members.clone();
            m2.reverse();
            let b = choose(m2, f2, None);
            prop_assert_eq!(&a, &b);
            if let Some(best) = ranks.iter().map(|(r, _)| *r).max() {
                prop_assert_eq!(a.candidates[0].rank, best);
            }
        }
    }
}
