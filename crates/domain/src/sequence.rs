//! Follow-up sequences: a start group, ordered steps with delays, and the rules of enrolment.
//!
//! Pure rules only — parsing and validating a definition, when a step falls due, and the loop
//! guard; the store applies them inside the unit of work that changed a membership.

use crate::error::{DomainError, DomainResult};
use crate::ids::{GroupId, SequenceId};
use crate::text::{Key, MAX_STATUS_KEY_CHARS, Name};
use chrono::{DateTime, Months, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// At most this many steps in one sequence.
pub const MAX_STEPS: usize = 50;
/// The longest template key of an `EMIT` step (`Key` rules).
pub const MAX_TEMPLATE_KEY_CHARS: usize = 100;
/// All delays of a sequence together stay below ten years (a typo like `P100Y` is refused).
pub const MAX_TOTAL_MONTHS: u32 = 120;

/// How long after the previous step (the first step: after enrolment) a step falls due: an
/// ISO 8601 duration (`P3D`, `PT2H30M`, `P1M`, `P2W`). Years and months are calendar arithmetic
/// (1 month after 31 January is the last day of February); the rest is exact time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delay {
    text: String,
    months: u32,
    seconds: u64,
}

impl Delay {
    pub fn parse(field: &'static str, raw: &str) -> DomainResult<Delay> {
        let text = raw.trim();
        let bad = || {
            DomainError::invalid(
                field,
                format!(
                    "'{}' is not an ISO 8601 duration such as P3D, PT12H or P1M",
                    text.chars().take(40).collect::<String>()
                ),
            )
        };
        // `iso8601` is lenient (it reads a bare `PT` as zero and `P1D2H` as something): the
        // designators must be the standard's, in their places — date units before `T`, time units
        // after it — and a delay must say how long.
        if text.is_empty() || text.len() > 40 || !designators_in_place(text) {
            return Err(bad());
        }
        let (months, seconds) = match iso8601::duration(text).map_err(|_| bad())? {
            iso8601::Duration::Weeks(w) => (0, u64::from(w) * 7 * 86_400),
            iso8601::Duration::YMDHMS { year, month, day, hour, minute, second, millisecond } => {
                if millisecond != 0 {
                    return Err(DomainError::invalid(field, "must be whole seconds"));
                }
                let months = year.checked_mul(12).and_then(|y| y.checked_add(month)).ok_or_else(bad)?;
                let seconds =
                    u64::from(day) * 86_400 + u64::from(hour) * 3_600 + u64::from(minute) * 60 + u64::from(second);
                (months, seconds)
            }
        };
        if months > MAX_TOTAL_MONTHS || seconds > u64::from(MAX_TOTAL_MONTHS) * 31 * 86_400 {
            return Err(DomainError::invalid(field, "must be less than ten years"));
        }
        Ok(Delay { text: text.to_owned(), months, seconds })
    }

    pub fn zero() -> Delay {
        Delay { text: "PT0S".into(), months: 0, seconds: 0 }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The instant `self` after `t` (`None` only beyond the calendar's range).
    pub fn after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let t = t.checked_add_months(Months::new(self.months))?;
        t.checked_add_signed(chrono::Duration::seconds(i64::try_from(self.seconds).ok()?))
    }

    /// Roughly how many months the delay spans (for the total bound).
    fn approx_months(&self) -> u64 {
        u64::from(self.months) + self.seconds / (30 * 86_400)
    }
}

/// `P[nY][nM][nW][nD][T[nH][nM][nS]]` with at least one number, each unit after a number.
fn designators_in_place(text: &str) -> bool {
    let Some(rest) = text.strip_prefix('P') else { return false };
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return false,
        None => (rest, None),
    };
    let units_ok = |part: &str, units: &str| {
        let mut digits = 0;
        let mut last_unit = None;
        for c in part.chars() {
            if c.is_ascii_digit() {
                digits += 1;
            } else {
                let Some(pos) = units.find(c) else { return false };
                if digits == 0 || last_unit.is_some_and(|l| pos <= l) {
                    return false;
                }
                last_unit = Some(pos);
                digits = 0;
            }
        }
        digits == 0
    };
    (!date.is_empty() || time.is_some()) && units_ok(date, "YMWD") && time.is_none_or(|t| units_ok(t, "HMS"))
}

impl fmt::Display for Delay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Delay {
    type Err = DomainError;
    fn from_str(s: &str) -> DomainResult<Delay> {
        Delay::parse("delay", s)
    }
}

impl Serialize for Delay {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Delay {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Delay, D::Error> {
        let s = String::deserialize(d)?;
        Delay::parse("delay", &s).map_err(serde::de::Error::custom)
    }
}

/// What a step does when it falls due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StepAction {
    /// Emits `sequence.step_due` with the template key, for the mailer.
    Emit {
        #[serde(rename = "templateKey")]
        template_key: String,
    },
    AddToGroup {
        #[serde(rename = "groupId")]
        group: GroupId,
    },
    RemoveFromGroup {
        #[serde(rename = "groupId")]
        group: GroupId,
    },
    /// Sets the contact's business status (`None` clears it).
    SetBusinessStatus {
        #[serde(rename = "statusKey")]
        key: Option<String>,
    },
}

impl StepAction {
    pub fn kind(&self) -> &'static str {
        match self {
            StepAction::Emit { .. } => "EMIT",
            StepAction::AddToGroup { .. } => "ADD_TO_GROUP",
            StepAction::RemoveFromGroup { .. } => "REMOVE_FROM_GROUP",
            StepAction::SetBusinessStatus { .. } => "SET_BUSINESS_STATUS",
        }
    }
    /// The group a step changes, if any.
    pub fn group(&self) -> Option<GroupId> {
        match self {
            StepAction::AddToGroup { group } | StepAction::RemoveFromGroup { group } => Some(*group),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub delay: Delay,
    #[serde(flatten)]
    pub action: StepAction,
}

/// The kinds of step a client names, with the argument each needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    Emit,
    AddToGroup,
    RemoveFromGroup,
    SetBusinessStatus,
}

/// A step as a client sends it, before validation.
#[derive(Debug, Clone)]
pub struct StepDraft<'a> {
    pub delay: &'a str,
    pub action: ActionKind,
    pub template_key: Option<&'a str>,
    pub group: Option<GroupId>,
    pub status_key: Option<&'a str>,
}

/// Validates the steps of a definition: 1 to [`MAX_STEPS`], each with a valid delay and exactly
/// the argument its action needs, all delays together under ten years.
pub fn validate_steps(drafts: &[StepDraft<'_>]) -> DomainResult<Vec<Step>> {
    if drafts.is_empty() || drafts.len() > MAX_STEPS {
        return Err(DomainError::invalid("steps", format!("must hold 1 to {MAX_STEPS} steps")));
    }
    let mut steps = Vec::with_capacity(drafts.len());
    let mut months = 0u64;
    for d in drafts {
        let delay = Delay::parse("steps.delay", d.delay)?;
        months += delay.approx_months();
        let extra = |f: bool, what: &'static str| {
            if f {
                Err(DomainError::invalid("steps", format!("{} steps take no {what}", kind_name(d.action))))
            } else {
                Ok(())
            }
        };
        let action = match d.action {
            ActionKind::Emit => {
                extra(d.group.is_some(), "groupId")?;
                extra(d.status_key.is_some(), "statusKey")?;
                let key = d
                    .template_key
                    .ok_or_else(|| DomainError::invalid("steps.templateKey", "EMIT steps need a templateKey"))?;
                StepAction::Emit {
                    template_key: Key::parse("steps.templateKey", key, MAX_TEMPLATE_KEY_CHARS)?.into_string(),
                }
            }
            ActionKind::AddToGroup | ActionKind::RemoveFromGroup => {
                extra(d.template_key.is_some(), "templateKey")?;
                extra(d.status_key.is_some(), "statusKey")?;
                let group = d.group.ok_or_else(|| {
                    DomainError::invalid("steps.groupId", format!("{} steps need a groupId", kind_name(d.action)))
                })?;
                if d.action == ActionKind::AddToGroup {
                    StepAction::AddToGroup { group }
                } else {
                    StepAction::RemoveFromGroup { group }
                }
            }
            ActionKind::SetBusinessStatus => {
                extra(d.template_key.is_some(), "templateKey")?;
                extra(d.group.is_some(), "groupId")?;
                let key = d
                    .status_key
                    .map(|k| Key::parse("steps.statusKey", k, MAX_STATUS_KEY_CHARS).map(Key::into_string))
                    .transpose()?;
                StepAction::SetBusinessStatus { key }
            }
        };
        steps.push(Step { delay, action });
    }
    if months >= u64::from(MAX_TOTAL_MONTHS) {
        return Err(DomainError::invalid("steps", "all delays together must be less than ten years"));
    }
    Ok(steps)
}

fn kind_name(k: ActionKind) -> &'static str {
    match k {
        ActionKind::Emit => "EMIT",
        ActionKind::AddToGroup => "ADD_TO_GROUP",
        ActionKind::RemoveFromGroup => "REMOVE_FROM_GROUP",
        ActionKind::SetBusinessStatus => "SET_BUSINESS_STATUS",
    }
}

/// A validated sequence name (`Name` rules) with its sort key.
pub fn sequence_name(raw: &str) -> DomainResult<(String, String)> {
    let n = Name::parse("name", raw)?;
    let sort = n.as_str().to_lowercase();
    Ok((n.into_string(), sort))
}

/// What joining the start group again does once an enrolment has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejoin {
    /// The sequence starts over from its first step (its current version).
    Restart,
    /// Nothing: a contact receives the sequence once.
    Ignore,
}

impl Rejoin {
    pub fn as_str(self) -> &'static str {
        match self {
            Rejoin::Restart => "RESTART",
            Rejoin::Ignore => "IGNORE",
        }
    }
    pub fn parse(s: &str) -> Option<Rejoin> {
        match s {
            "RESTART" => Some(Rejoin::Restart),
            "IGNORE" => Some(Rejoin::Ignore),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrolmentStatus {
    Active,
    Completed,
    Stopped,
}

impl EnrolmentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EnrolmentStatus::Active => "ACTIVE",
            EnrolmentStatus::Completed => "COMPLETED",
            EnrolmentStatus::Stopped => "STOPPED",
        }
    }
    pub fn parse(s: &str) -> Option<EnrolmentStatus> {
        match s {
            "ACTIVE" => Some(EnrolmentStatus::Active),
            "COMPLETED" => Some(EnrolmentStatus::Completed),
            "STOPPED" => Some(EnrolmentStatus::Stopped),
            _ => None,
        }
    }
}

/// Why an enrolment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// Every step ran.
    Completed,
    /// The contact left the start group (and its subgroups, where they count).
    LeftGroup,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Completed => "COMPLETED",
            EndReason::LeftGroup => "LEFT_GROUP",
        }
    }
    pub fn parse(s: &str) -> Option<EndReason> {
        match s {
            "COMPLETED" => Some(EndReason::Completed),
            "LEFT_GROUP" => Some(EndReason::LeftGroup),
            _ => None,
        }
    }
}

/// What running a step came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// The action took effect.
    Done,
    /// Nothing to do (already a member, not a member, status already set).
    Unchanged,
    /// The action could not run (its group or status no longer exists); the sequence goes on.
    Failed,
}

impl StepOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            StepOutcome::Done => "DONE",
            StepOutcome::Unchanged => "UNCHANGED",
            StepOutcome::Failed => "FAILED",
        }
    }
    pub fn parse(s: &str) -> Option<StepOutcome> {
        match s {
            "DONE" => Some(StepOutcome::Done),
            "UNCHANGED" => Some(StepOutcome::Unchanged),
            "FAILED" => Some(StepOutcome::Failed),
            _ => None,
        }
    }
}

/// The automation chain a membership change belongs to: the sequences whose steps led to it,
/// oldest first (empty for a change a person or an integration made).
///
/// The loop guard: a step's change may enrol the contact into further sequences, but never again
/// into one already in its chain — so `A: add to G` with `G` starting `A` again, or two sequences
/// moving a contact back and forth, run once and stop.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chain(pub Vec<SequenceId>);

impl Chain {
    /// Whether a change in this chain may enrol into `seq`.
    pub fn may_enrol(&self, seq: SequenceId) -> bool {
        !self.0.contains(&seq)
    }
    /// The chain of an enrolment into `seq` made by a change in this chain.
    pub fn then(&self, seq: SequenceId) -> Chain {
        let mut c = self.0.clone();
        c.push(seq);
        Chain(c)
    }
}

/// When step `next` of `steps` falls due, the previous one having been due at `previous_due`
/// (enrolment time for the first step). `None`: no such step (the sequence is complete).
pub fn due_at(steps: &[Step], next: usize, previous_due: DateTime<Utc>) -> Option<DateTime<Utc>> {
    steps.get(next).and_then(|s| s.delay.after(previous_due))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 9, 0, 0).unwrap()
    }

    #[test]
    fn delays_parse_iso_8601_and_add_calendar_months() {
        let d = |s: &str| Delay::parse("delay", s).unwrap();
        assert_eq!(d("P3D").after(at(2026, 12, 1)), Some(at(2026, 12, 4)));
        assert_eq!(d("P2W").after(at(2026, 12, 1)), Some(at(2026, 12, 15)));
        assert_eq!(d("PT2H30M").after(at(2026, 12, 1)), Some(Utc.with_ymd_and_hms(2026, 12, 1, 11, 30, 0).unwrap()));
        assert_eq!(d("P1M").after(at(2027, 1, 31)), Some(at(2027, 2, 28)));
        assert_eq!(d("P1Y").after(at(2028, 2, 29)), Some(at(2029, 2, 28)));
        assert_eq!(d("P0D").after(at(2026, 12, 1)), Some(at(2026, 12, 1)));
        assert_eq!(d(" P3D ").as_str(), "P3D");
        for bad in [
            "",
            "3 days",
            "P",
            "PT",
            "-P3D",
            "P3.5D",
            "P200Y",
            "P1D2H",
            "P3DT",
            "PD",
            "P1H",
            "PT1D",
            "P2D1Y",
            &"P1D".repeat(20),
        ] {
            assert!(Delay::parse("delay", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn steps_need_exactly_their_argument() {
        let g = GroupId::new();
        let draft = |action, template_key, group, status_key| StepDraft {
            delay: "P1D",
            action,
            template_key,
            group,
            status_key,
        };
        assert!(validate_steps(&[]).is_err());
        assert!(validate_steps(&[draft(ActionKind::Emit, None, None, None)]).is_err());
        assert!(validate_steps(&[draft(ActionKind::Emit, Some("welcome"), Some(g), None)]).is_err());
        assert!(validate_steps(&[draft(ActionKind::AddToGroup, None, None, None)]).is_err());
        assert!(validate_steps(&[draft(ActionKind::Emit, Some("has space"), None, None)]).is_err());
        let ok = validate_steps(&[
            draft(ActionKind::Emit, Some("welcome"), None, None),
            draft(ActionKind::AddToGroup, None, Some(g), None),
            draft(ActionKind::SetBusinessStatus, None, None, Some("lead_warm")),
            draft(ActionKind::SetBusinessStatus, None, None, None),
        ])
        .unwrap();
        assert_eq!(ok[1].action, StepAction::AddToGroup { group: g });
        assert_eq!(ok[3].action, StepAction::SetBusinessStatus { key: None });
        let many: Vec<_> = (0..=MAX_STEPS).map(|_| draft(ActionKind::Emit, Some("x"), None, None)).collect();
        assert!(validate_steps(&many).is_err());
        let long: Vec<_> =
            (0..11).map(|_| StepDraft { delay: "P1Y", ..draft(ActionKind::Emit, Some("x"), None, None) }).collect();
        assert!(validate_steps(&long).is_err(), "eleven years in all");
    }

    #[test]
    fn steps_round_trip_through_their_stored_form() {
        let steps = validate_steps(&[
            StepDraft {
                delay: "P0D",
                action: ActionKind::Emit,
                template_key: Some("welcome"),
                group: None,
                status_key: None,
            },
            StepDraft {
                delay: "P7D",
                action: ActionKind::RemoveFromGroup,
                template_key: None,
                group: Some(GroupId::new()),
                status_key: None,
            },
        ])
        .unwrap();
        let json = serde_json::to_string(&steps).unwrap();
        assert!(json.contains(r#""action":"EMIT""#) && json.contains(r#""templateKey":"welcome""#), "{json}");
        assert_eq!(serde_json::from_str::<Vec<Step>>(&json).unwrap(), steps);
    }

    #[test]
    fn the_loop_guard_refuses_a_sequence_already_in_the_chain() {
        let (a, b) = (SequenceId::new(), SequenceId::new());
        let human = Chain::default();
        assert!(human.may_enrol(a));
        let in_a = human.then(a);
        assert!(!in_a.may_enrol(a));
        assert!(in_a.may_enrol(b));
        let in_b = in_a.then(b);
        assert!(!in_b.may_enrol(a) && !in_b.may_enrol(b));
    }

    #[test]
    fn the_travel_agency_schedule() {
        let g = GroupId::new();
        let steps = validate_steps(&[
            StepDraft {
                delay: "P0D",
                action: ActionKind::Emit,
                template_key: Some("welcome"),
                group: None,
                status_key: None,
            },
            StepDraft {
                delay: "P3D",
                action: ActionKind::Emit,
                template_key: Some("offer"),
                group: None,
                status_key: None,
            },
            StepDraft {
                delay: "P7D",
                action: ActionKind::AddToGroup,
                template_key: None,
                group: Some(g),
                status_key: None,
            },
        ])
        .unwrap();
        let joined = at(2026, 12, 1);
        let d0 = due_at(&steps, 0, joined).unwrap();
        let d1 = due_at(&steps, 1, d0).unwrap();
        let d2 = due_at(&steps, 2, d1).unwrap();
        assert_eq!((d0, d1, d2), (at(2026, 12, 1), at(2026, 12, 4), at(2026, 12, 11)));
        assert_eq!(due_at(&steps, 3, d2), None);
    }

    proptest! {
        #[test]
        fn exact_delays_add_up(days in 0u32..400, hours in 0u32..24, minutes in 0u32..60) {
            let text = format!("P{days}DT{hours}H{minutes}M");
            let d = Delay::parse("delay", &text).unwrap();
            let t = at(2026, 3, 1);
            let expected = t + chrono::Duration::minutes(i64::from(days) * 1440 + i64::from(hours) * 60 + i64::from(minutes));
            prop_assert_eq!(d.after(t), Some(expected));
            prop_assert!(d.after(t).unwrap() >= t, "monotone");
        }
    }
}
