//! Data-usage policy (DESIGN §1 "Protecting the data"): which thresholds and which export budget
//! apply to a user, and which day a read belongs to.
//!
//! A tenant sets a policy; roles and single users may override it field by field. A field left
//! unset (`None`) inherits the broader scope; `Some(0)` switches that limit off. With several
//! roles, the most generous override among them applies (a role widens what its holders may do,
//! it never narrows another role's), and a user override beats every role.

use crate::access::Roles;
use crate::error::{DomainError, DomainResult};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

/// How many (contact, group) membership pairs a user may receive per day when the tenant has not
/// configured a budget. Browsing 50 full member pages (100 each) a day stays within it; dumping the
/// membership matrix of a real tenant does not (DESIGN §1: no bulk export of contacts with their
/// groups).
pub const DEFAULT_MEMBERSHIP_PAIR_BUDGET: u64 = 5_000;

/// The largest value any limit may take (far above any tenant, well inside `i64`).
pub const MAX_LIMIT: u64 = 1_000_000_000;

/// One scope's settings, as stored. `None` inherits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyFields {
    pub warn_contacts: Option<u64>,
    pub block_contacts: Option<u64>,
    pub membership_pair_budget: Option<u64>,
}

impl PolicyFields {
    /// Checks the values an admin sends.
    pub fn validate(&self) -> DomainResult<()> {
        for (field, v) in [
            ("warnContacts", self.warn_contacts),
            ("blockContacts", self.block_contacts),
            ("membershipPairBudget", self.membership_pair_budget),
        ] {
            if v.is_some_and(|v| v > MAX_LIMIT) {
                return Err(DomainError::invalid(field, format!("must be at most {MAX_LIMIT} (0 switches it off)")));
            }
        }
        if let (Some(w), Some(b)) = (self.warn_contacts, self.block_contacts)
            && w > 0
            && b > 0
            && w > b
        {
            return Err(DomainError::invalid("warnContacts", "must not be above blockContacts"));
        }
        Ok(())
    }
}

/// The limits in force for one user: `None` = no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EffectiveLimits {
    pub warn_contacts: Option<u64>,
    pub block_contacts: Option<u64>,
    pub membership_pair_budget: Option<u64>,
}

/// "Most generous" for limits where `0` = off: off beats any number, a larger number beats a
/// smaller one.
fn generous(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (None, x) | (x, None) => x,
        (Some(0), _) | (_, Some(0)) => Some(0),
        (Some(x), Some(y)) => Some(x.max(y)),
    }
}

fn off_is_none(v: Option<u64>) -> Option<u64> {
    v.filter(|n| *n > 0)
}

/// The limits for a user with `roles`, from the tenant policy, the role overrides (by role name)
/// and the user's own override.
pub fn effective_limits(
    tenant: Option<&PolicyFields>,
    roles: &Roles,
    role_overrides: &[(String, PolicyFields)],
    user: Option<&PolicyFields>,
) -> EffectiveLimits {
    let mut by_role = PolicyFields::default();
    for (name, f) in role_overrides {
        if roles.iter().any(|r| r.as_str() == name) {
            by_role.warn_contacts = generous(by_role.warn_contacts, f.warn_contacts);
            by_role.block_contacts = generous(by_role.block_contacts, f.block_contacts);
            by_role.membership_pair_budget = generous(by_role.membership_pair_budget, f.membership_pair_budget);
        }
    }
    let t = tenant.cloned().unwrap_or_default();
    let u = user.cloned().unwrap_or_default();
    let pick = |u: Option<u64>, r: Option<u64>, t: Option<u64>| u.or(r).or(t);
    EffectiveLimits {
        warn_contacts: off_is_none(pick(u.warn_contacts, by_role.warn_contacts, t.warn_contacts)),
        block_contacts: off_is_none(pick(u.block_contacts, by_role.block_contacts, t.block_contacts)),
        membership_pair_budget: off_is_none(
            pick(u.membership_pair_budget, by_role.membership_pair_budget, t.membership_pair_budget)
                .or(Some(DEFAULT_MEMBERSHIP_PAIR_BUDGET)),
        ),
    }
}

/// An IANA time zone name for the tenant's usage days.
pub fn parse_time_zone(s: &str) -> DomainResult<Tz> {
    s.parse::<Tz>().map_err(|_| DomainError::invalid("timeZone", "is not an IANA time zone name (e.g. Europe/Prague)"))
}

/// The usage day `at` belongs to in `tz`.
pub fn usage_day(at: DateTime<Utc>, tz: Tz) -> NaiveDate {
    at.with_timezone(&tz).date_naive()
}

/// What a read may do, given the day so far: `Ok` or which limit it hits. `new_contacts` are the
/// contacts of this answer the user has not received yet today; `lifted` = an admin lifted the
/// day's block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageVerdict {
    Allowed,
    /// The answer would reveal contacts beyond the blocking threshold.
    ContactLimit {
        limit: u64,
    },
    /// The answer would take the day's membership pairs beyond the budget.
    PairBudget {
        budget: u64,
    },
}

pub struct DayState {
    pub distinct_contacts: u64,
    pub membership_pairs: u64,
    pub lifted: bool,
}

pub fn judge(limits: &EffectiveLimits, day: &DayState, new_contacts: u64, pairs: u64) -> UsageVerdict {
    if day.lifted {
        return UsageVerdict::Allowed;
    }
    if let Some(limit) = limits.block_contacts
        && new_contacts > 0
        && day.distinct_contacts + new_contacts > limit
    {
        return UsageVerdict::ContactLimit { limit };
    }
    if let Some(budget) = limits.membership_pair_budget
        && pairs > 0
        && day.membership_pairs + pairs > budget
    {
        return UsageVerdict::PairBudget { budget };
    }
    UsageVerdict::Allowed
}

/// Whether reaching `distinct` contacts crosses the warning threshold (the caller makes sure the
/// warning is raised once per day).
pub fn crosses_warning(limits: &EffectiveLimits, distinct: u64) -> bool {
    limits.warn_contacts.is_some_and(|w| distinct >= w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Role;

    fn f(w: Option<u64>, b: Option<u64>, p: Option<u64>) -> PolicyFields {
        PolicyFields { warn_contacts: w, block_contacts: b, membership_pair_budget: p }
    }

    #[test]
    fn defaults_apply_without_any_policy() {
        let l = effective_limits(None, &Roles::new([Role::Agent]), &[], None);
        assert_eq!(l.warn_contacts, None);
        assert_eq!(l.block_contacts, None);
        assert_eq!(l.membership_pair_budget, Some(DEFAULT_MEMBERSHIP_PAIR_BUDGET));
    }

    #[test]
    fn user_beats_role_beats_tenant_and_zero_switches_off() {
        let tenant = f(Some(100), Some(200), Some(5000));
        let roles =
            vec![("agent".to_owned(), f(None, Some(300), None)), ("admin".to_owned(), f(None, Some(0), Some(0)))];
        let agent = effective_limits(Some(&tenant), &Roles::new([Role::Agent]), &roles, None);
        assert_eq!(
            (agent.warn_contacts, agent.block_contacts, agent.membership_pair_budget),
            (Some(100), Some(300), Some(5000))
        );
        let admin = effective_limits(Some(&tenant), &Roles::new([Role::Admin, Role::Agent]), &roles, None);
        // The most generous role wins: admin's "off" beats agent's 300.
        assert_eq!((admin.block_contacts, admin.membership_pair_budget), (None, None));
        let user = f(Some(10), None, Some(0));
        let one = effective_limits(Some(&tenant), &Roles::new([Role::Agent]), &roles, Some(&user));
        assert_eq!((one.warn_contacts, one.block_contacts, one.membership_pair_budget), (Some(10), Some(300), None));
        // The tenant switching the budget off drops the built-in default.
        let open = effective_limits(Some(&f(None, None, Some(0))), &Roles::default(), &[], None);
        assert_eq!(open.membership_pair_budget, None);
    }

    #[test]
    fn validation_refuses_nonsense() {
        assert!(f(Some(10), Some(5), None).validate().is_err());
        assert!(f(Some(MAX_LIMIT + 1), None, None).validate().is_err());
        assert!(f(Some(10), Some(0), None).validate().is_ok());
        assert!(f(Some(5), Some(10), Some(0)).validate().is_ok());
    }

    #[test]
    fn the_day_follows_the_time_zone() {
        let at: DateTime<Utc> = "2026-12-03T23:30:00Z".parse().unwrap_or_default();
        assert_eq!(usage_day(at, chrono_tz::UTC).to_string(), "2026-12-03");
        let prague = parse_time_zone("Europe/Prague").expect("zone");
        assert_eq!(usage_day(at, prague).to_string(), "2026-12-04");
        assert!(parse_time_zone("Mars/Olympus").is_err());
    }

    #[test]
    fn judging_counts_only_new_contacts_and_honours_a_lift() {
        let l = EffectiveLimits { warn_contacts: Some(2), block_contacts: Some(3), membership_pair_budget: Some(10) };
        let day = DayState { distinct_contacts: 3, membership_pairs: 0, lifted: false };
        assert_eq!(judge(&l, &day, 0, 0), UsageVerdict::Allowed, "already seen contacts stay readable");
        assert_eq!(judge(&l, &day, 1, 0), UsageVerdict::ContactLimit { limit: 3 });
        let day2 = DayState { distinct_contacts: 1, membership_pairs: 8, lifted: false };
        assert_eq!(judge(&l, &day2, 1, 3), UsageVerdict::PairBudget { budget: 10 });
        assert_eq!(judge(&l, &day2, 1, 2), UsageVerdict::Allowed);
        let lifted = DayState { distinct_contacts: 99, membership_pairs: 99, lifted: true };
        assert_eq!(judge(&l, &lifted, 5, 5), UsageVerdict::Allowed);
        assert!(crosses_warning(&l, 2) && !crosses_warning(&l, 1));
    }
}
