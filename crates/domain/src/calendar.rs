//! Business calendars and business-time arithmetic (DESIGN §1 "SLA contracts").
//!
//! A calendar is an IANA time zone plus weekly working intervals (several per day allowed) and
//! holidays (a date, optionally recurring every year, optionally a half day), or 24×7. Working
//! intervals are local wall-clock times; they are turned into instants day by day, so a working
//! day that contains a daylight-saving change is as long as it really is (a 00:00–24:00 Sunday
//! in Europe/Prague lasts 23 hours in March and 25 in October). A local time that falls into a
//! spring-forward gap means the first instant after the gap; an ambiguous one (autumn) its
//! earlier occurrence.
//!
//! Time is measured in seconds and reported in whole business minutes. *Exclusions* are periods
//! that do not count even when the calendar is working (a ticket waiting on the customer); an
//! open exclusion (no end yet) stops the clock from its start on.

use crate::error::{DomainError, DomainResult};
use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Minutes in a day: interval ends run up to and including 24:00.
pub const DAY_MINUTES: u16 = 1440;
/// Half-day holidays keep the working time before noon.
const NOON: u16 = 720;
/// How far ahead arithmetic looks for working time before it gives up (a calendar whose every
/// day is a holiday for ten years is, for SLA purposes, never open).
const HORIZON_DAYS: i64 = 3660;

/// One working interval of a day, `[start, end)` in minutes after local midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct WorkInterval {
    pub start: u16,
    pub end: u16,
}

/// A day off: a date, or the same month and day every year; a half day works until noon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holiday {
    pub date: NaiveDate,
    pub recurring: bool,
    pub half_day: bool,
}

impl Holiday {
    fn matches(&self, d: NaiveDate) -> bool {
        if self.recurring { self.date.month() == d.month() && self.date.day() == d.day() } else { self.date == d }
    }
}

/// A period that does not count: `[start, end)`, or from `start` on while `end` is `None`.
pub type Exclusion = (DateTime<Utc>, Option<DateTime<Utc>>);

/// A validated business calendar.
#[derive(Debug, Clone, PartialEq)]
pub struct Calendar {
    tz: Tz,
    /// 24×7: every instant counts (the weekly intervals and holidays are ignored).
    always: bool,
    /// Monday first.
    week: [Vec<WorkInterval>; 7],
    holidays: Vec<Holiday>,
}

/// Parses an IANA time-zone name (`Europe/Prague`); anything else is `BAD_USER_INPUT`.
pub fn parse_time_zone(name: &str) -> DomainResult<Tz> {
    name.trim()
        .parse::<Tz>()
        .map_err(|_| DomainError::invalid("timeZone", "is not an IANA time zone (e.g. Europe/Prague)"))
}

impl Calendar {
    /// A 24×7 calendar.
    pub fn always_open(tz: Tz) -> Calendar {
        Calendar { tz, always: true, week: Default::default(), holidays: vec![] }
    }

    /// A working-hours calendar. Refused: intervals that are empty, reversed, beyond 24:00 or
    /// overlapping within a day, and a week without any working time.
    pub fn new(tz: Tz, week: [Vec<WorkInterval>; 7], holidays: Vec<Holiday>) -> DomainResult<Calendar> {
        let mut week = week;
        for day in week.iter_mut() {
            day.sort();
            for i in day.iter() {
                if i.start >= i.end || i.end > DAY_MINUTES {
                    return Err(DomainError::invalid(
                        "week",
                        "each interval must start before it ends, within 00:00–24:00",
                    ));
                }
            }
            if day.windows(2).any(|w| w[1].start < w[0].end) {
                return Err(DomainError::invalid("week", "intervals of one day must not overlap"));
            }
        }
        if week.iter().all(Vec::is_empty) {
            return Err(DomainError::invalid("week", "a calendar needs working time in its week (or is 24×7)"));
        }
        if holidays.len() > 1000 {
            return Err(DomainError::invalid("holidays", "at most 1000 holidays"));
        }
        Ok(Calendar { tz, always: false, week, holidays })
    }

    pub fn time_zone(&self) -> Tz {
        self.tz
    }
    pub fn is_always_open(&self) -> bool {
        self.always
    }
    pub fn week(&self) -> &[Vec<WorkInterval>; 7] {
        &self.week
    }
    pub fn holidays(&self) -> &[Holiday] {
        &self.holidays
    }

    fn instant(&self, date: NaiveDate, minute: u16) -> DateTime<Utc> {
        let (date, minute) = if minute >= DAY_MINUTES { (date + Duration::days(1), 0) } else { (date, minute) };
        let local = NaiveDateTime::new(date, NaiveTime::MIN) + Duration::minutes(minute as i64);
        to_utc(&self.tz, local)
    }

    /// The working intervals of one local date, as instants, in order.
    fn day(&self, date: NaiveDate) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let holiday = self.holidays.iter().filter(|h| h.matches(date)).map(|h| h.half_day).min();
        let cut = match holiday {
            Some(false) => return vec![],
            Some(true) => NOON,
            None => DAY_MINUTES,
        };
        let wd = date.weekday().num_days_from_monday() as usize;
        self.week[wd]
            .iter()
            .filter(|i| i.start < cut)
            .map(|i| (self.instant(date, i.start), self.instant(date, i.end.min(cut))))
            .filter(|(a, b)| a < b)
            .collect()
    }

    /// Working pieces from `start` on (clipped to it), minus `exclusions`, in order; ends at the
    /// horizon or at an open exclusion.
    fn pieces<'a>(
        &'a self,
        start: DateTime<Utc>,
        exclusions: &'a [Exclusion],
    ) -> impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)> + 'a {
        let stop = exclusions.iter().filter(|(_, e)| e.is_none()).map(|(s, _)| *s).min();
        let raw: Box<dyn Iterator<Item = (DateTime<Utc>, DateTime<Utc>)> + 'a> = if self.always {
            let end = start + Duration::days(HORIZON_DAYS);
            Box::new(std::iter::once((start, end)))
        } else {
            let first = start.with_timezone(&self.tz).date_naive() - Duration::days(1);
            Box::new((0..HORIZON_DAYS).flat_map(move |n| self.day(first + Duration::days(n))))
        };
        raw.filter_map(move |(a, b)| {
            let a = a.max(start);
            (a < b).then_some((a, b))
        })
        .take_while(move |(a, _)| stop.is_none_or(|s| *a < s))
        .flat_map(move |(a, b)| subtract(a, b, exclusions))
    }

    /// The instant at which `minutes` business minutes have passed since `start` (`start`
    /// itself for 0), skipping `exclusions`; `None` if that never happens (an open exclusion,
    /// or no working time within ten years).
    pub fn add_minutes(&self, start: DateTime<Utc>, minutes: i64, exclusions: &[Exclusion]) -> Option<DateTime<Utc>> {
        let mut left = Duration::minutes(minutes.max(0));
        if left.is_zero() {
            return Some(start);
        }
        for (a, b) in self.pieces(start, exclusions) {
            let len = b - a;
            if left <= len {
                return Some(a + left);
            }
            left -= len;
        }
        None
    }

    /// Business seconds in `[from, to)`, not counting `exclusions`.
    pub fn seconds_between(&self, from: DateTime<Utc>, to: DateTime<Utc>, exclusions: &[Exclusion]) -> i64 {
        if to <= from {
            return 0;
        }
        let mut total = 0;
        for (a, b) in self.pieces(from, exclusions) {
            if a >= to {
                break;
            }
            total += (b.min(to) - a).num_seconds();
        }
        total
    }

    /// Whole business minutes in `[from, to)`, not counting `exclusions`.
    pub fn minutes_between(&self, from: DateTime<Utc>, to: DateTime<Utc>, exclusions: &[Exclusion]) -> i64 {
        self.seconds_between(from, to, exclusions) / 60
    }
}

/// A local wall-clock time as an instant: gaps resolve to the first valid minute after them,
/// ambiguous times to their earlier occurrence.
fn to_utc(tz: &Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, _) => a.with_timezone(&Utc),
        LocalResult::None => {
            // No gap in the tz database is longer than a day; minutes are the calendar's grain.
            for k in 1..=1440 {
                if let Some(t) = tz.from_local_datetime(&(local + Duration::minutes(k))).earliest() {
                    return t.with_timezone(&Utc);
                }
            }
            Utc.from_utc_datetime(&local)
        }
    }
}

/// `[a, b)` minus every exclusion, as ordered pieces.
fn subtract(a: DateTime<Utc>, b: DateTime<Utc>, exclusions: &[Exclusion]) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut pieces = vec![(a, b)];
    for (s, e) in exclusions {
        let mut next = Vec::with_capacity(pieces.len() + 1);
        for (pa, pb) in pieces {
            let (es, ee) = (*s, e.unwrap_or(DateTime::<Utc>::MAX_UTC));
            if ee <= pa || es >= pb {
                next.push((pa, pb));
                continue;
            }
            if pa < es {
                next.push((pa, es));
            }
            if ee < pb {
                next.push((ee, pb));
            }
        }
        pieces = next;
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn prague() -> Tz {
        parse_time_zone("Europe/Prague").unwrap() // ok: unit test
    }
    fn iv(s: u16, e: u16) -> WorkInterval {
        WorkInterval { start: s, end: e }
    }
    fn office(tz: Tz, holidays: Vec<Holiday>) -> Calendar {
        let day = vec![iv(8 * 60, 17 * 60)];
        Calendar::new(tz, [day.clone(), day.clone(), day.clone(), day.clone(), day, vec![], vec![]], holidays).unwrap() // ok: unit test
    }
    fn local(tz: Tz, y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        tz.with_ymd_and_hms(y, m, d, h, min, 0).earliest().unwrap().with_timezone(&Utc) // ok: unit test
    }

    #[test]
    fn friday_afternoon_plus_four_hours_is_monday_late_morning() {
        let cal = office(prague(), vec![]);
        let opened = local(prague(), 2026, 11, 6, 16, 30); // a Friday
        assert_eq!(cal.add_minutes(opened, 240, &[]), Some(local(prague(), 2026, 11, 9, 11, 30)));
        assert_eq!(cal.minutes_between(opened, local(prague(), 2026, 11, 9, 11, 30), &[]), 240);
    }

    #[test]
    fn holidays_and_half_days_are_skipped() {
        let monday = NaiveDate::from_ymd_opt(2026, 11, 9).unwrap(); // ok: unit test
        let cal = office(prague(), vec![Holiday { date: monday, recurring: false, half_day: false }]);
        let opened = local(prague(), 2026, 11, 6, 16, 30);
        assert_eq!(cal.add_minutes(opened, 240, &[]), Some(local(prague(), 2026, 11, 10, 11, 30)));
        // A recurring half day (24 December) works 8:00–12:00 only.
        let xmas = NaiveDate::from_ymd_opt(2000, 12, 24).unwrap(); // ok: unit test
        let cal = office(prague(), vec![Holiday { date: xmas, recurring: true, half_day: true }]);
        let t = local(prague(), 2026, 12, 24, 11, 0); // a Thursday
        assert_eq!(cal.add_minutes(t, 120, &[]), Some(local(prague(), 2026, 12, 25, 9, 0)));
    }

    #[test]
    fn days_with_a_daylight_saving_change_are_as_long_as_they_are() {
        let sunday = vec![iv(0, DAY_MINUTES)];
        let cal = Calendar::new(prague(), [vec![], vec![], vec![], vec![], vec![], vec![], sunday], vec![]).unwrap(); // ok: unit test
        let march = local(prague(), 2026, 3, 29, 0, 0);
        assert_eq!(cal.minutes_between(march, march + Duration::days(2), &[]), 23 * 60);
        let october = local(prague(), 2026, 10, 25, 0, 0);
        assert_eq!(cal.minutes_between(october, october + Duration::days(2), &[]), 25 * 60);
        // Mon–Fri 8–17 across the March change: Friday 16:30 + 4 h is still Monday 11:30 local.
        let cal = office(prague(), vec![]);
        let opened = local(prague(), 2026, 3, 27, 16, 30);
        assert_eq!(cal.add_minutes(opened, 240, &[]), Some(local(prague(), 2026, 3, 30, 11, 30)));
    }

    #[test]
    fn intervals_touching_midnight_join_up() {
        let late = vec![iv(22 * 60, DAY_MINUTES)];
        let early = vec![iv(0, 2 * 60)];
        let cal = Calendar::new(prague(), [late, early, vec![], vec![], vec![], vec![], vec![]], vec![]).unwrap(); // ok: unit test
        let t = local(prague(), 2026, 11, 9, 23, 0); // Monday 23:00
        assert_eq!(cal.add_minutes(t, 120, &[]), Some(local(prague(), 2026, 11, 10, 1, 0)));
    }

    #[test]
    fn exclusions_pause_the_clock() {
        let cal = office(prague(), vec![]);
        let opened = local(prague(), 2026, 11, 9, 8, 0); // Monday
        let pause = (local(prague(), 2026, 11, 9, 9, 0), Some(local(prague(), 2026, 11, 9, 11, 0)));
        assert_eq!(cal.add_minutes(opened, 240, &[pause]), Some(local(prague(), 2026, 11, 9, 14, 0)));
        // While a pause is open, nothing is ever due.
        let open = (local(prague(), 2026, 11, 9, 9, 0), None);
        assert_eq!(cal.add_minutes(opened, 240, &[open]), None);
        assert_eq!(cal.minutes_between(opened, opened + Duration::days(3), &[open]), 60);
    }

    #[test]
    fn bad_calendars_are_refused() {
        let none: [Vec<WorkInterval>; 7] = Default::default();
        assert!(Calendar::new(prague(), none, vec![]).is_err(), "no working time");
        let mut w: [Vec<WorkInterval>; 7] = Default::default();
        w[0] = vec![iv(600, 600)];
        assert!(Calendar::new(prague(), w.clone(), vec![]).is_err(), "empty interval");
        w[0] = vec![iv(600, 700), iv(650, 800)];
        assert!(Calendar::new(prague(), w.clone(), vec![]).is_err(), "overlap");
        w[0] = vec![iv(600, 1500)];
        assert!(Calendar::new(prague(), w, vec![]).is_err(), "beyond 24:00");
        assert!(parse_time_zone("Mars/Olympus").is_err());
    }

    fn any_calendar() -> impl Strategy<Value = Calendar> {
        let day = proptest::collection::vec((0u16..24, 1u16..6), 0..3).prop_map(|v| {
            // Non-overlapping by construction: hours, sorted, each 1–5 hours, clipped to 24:00.
            let mut out: Vec<WorkInterval> = vec![];
            for (h, len) in v {
                let s = h * 60;
                let e = ((h + len) * 60).min(DAY_MINUTES);
                if out.last().is_none_or(|l| l.end <= s) && s < e {
                    out.push(iv(s, e));
                }
            }
            out
        });
        let zones = prop_oneof![Just("Europe/Prague"), Just("America/New_York"), Just("Asia/Kolkata"), Just("UTC")];
        (proptest::collection::vec(day, 7), zones, any::<bool>()).prop_filter_map(
            "some working time",
            |(days, z, always)| {
                let tz = parse_time_zone(z).ok()?;
                if always {
                    return Some(Calendar::always_open(tz));
                }
                let week: [Vec<WorkInterval>; 7] = days.try_into().ok()?;
                Calendar::new(tz, week, vec![]).ok()
            },
        )
    }

    fn any_instant() -> impl Strategy<Value = DateTime<Utc>> {
        // 2025–2028, minute-aligned: spans several DST changes.
        (0i64..(4 * 365 * 24 * 60))
            .prop_map(|m| Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap() + Duration::minutes(m)) // ok: unit test
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Adding and measuring are inverse.
        #[test]
        fn adding_and_measuring_are_inverse(cal in any_calendar(), start in any_instant(), minutes in 0i64..20_000) {
            let due = cal.add_minutes(start, minutes, &[]).expect("working time exists");
            prop_assert_eq!(cal.seconds_between(start, due, &[]), minutes * 60);
        }

        /// More minutes are never due earlier.
        #[test]
        fn adding_is_monotone(cal in any_calendar(), start in any_instant(), a in 0i64..10_000, b in 0i64..10_000) {
            let (lo, hi) = (a.min(b), a.max(b));
            prop_assert!(cal.add_minutes(start, lo, &[]) <= cal.add_minutes(start, hi, &[]));
        }

        /// 24×7 is wall-clock time.
        #[test]
        fn always_open_is_wall_clock(start in any_instant(), minutes in 0i64..100_000) {
            let cal = Calendar::always_open(parse_time_zone("Europe/Prague").unwrap()); // ok: unit test
            prop_assert_eq!(cal.add_minutes(start, minutes, &[]), Some(start + Duration::minutes(minutes)));
            prop_assert_eq!(cal.minutes_between(start, start + Duration::minutes(minutes), &[]), minutes);
        }

        /// Measured time is additive over a split point, with or without a pause.
        #[test]
        fn measuring_is_additive(cal in any_calendar(), a in any_instant(), d1 in 0i64..20_000, d2 in 0i64..20_000, p in 0i64..5_000) {
            let b = a + Duration::minutes(d1);
            let c = b + Duration::minutes(d2);
            let pause = [(a + Duration::minutes(p), Some(a + Duration::minutes(p + 90)))];
            for ex in [&[][..], &pause[..]] {
                prop_assert_eq!(cal.seconds_between(a, c, ex), cal.seconds_between(a, b, ex) + cal.seconds_between(b, c, ex));
            }
        }
    }
}
