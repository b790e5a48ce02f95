//! Routing (DESIGN §1 "Responsibility and routing"): who handles a contact's message in one
//! process area.
//!
//! Facts in: the contact's direct groups with their precedence, what each group's ancestor chain
//! sets for the area (the [`inherit`] rule picks the nearest setter), and the area's defaults.
//! The candidates are the groups with an effective responsibility, smallest precedence first
//! (ties: group id); the first decides. Fields the decider leaves empty, and contacts with no
//! candidate at all, fall back to the area's defaults — field by field. The decision depends on
//! the facts only (never on who asks or the order the facts arrive in); what a caller may be told
//! about the groups involved is the caller's business (the store withholds hidden groups).

use crate::ids::{GroupId, ProcessingAreaId, UserGroupId, UserId};
use crate::inherit::{self, Found};
use std::collections::HashMap;

/// How a message reached Cohort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Email,
    Web,
    Phone,
    Portal,
    Api,
}

impl Channel {
    pub const ALL: [Channel; 5] = [Channel::Email, Channel::Web, Channel::Phone, Channel::Portal, Channel::Api];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "EMAIL",
            Channel::Web => "WEB",
            Channel::Phone => "PHONE",
            Channel::Portal => "PORTAL",
            Channel::Api => "API",
        }
    }

    /// Strict: anything else is `None`.
    pub fn parse(s: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// The largest message body Cohort stores: 1 MB (10^6 bytes of UTF-8).
pub const MAX_BODY_BYTES: usize = 1_000_000;
/// The longest subject (RFC 5322's line limit).
pub const MAX_SUBJECT_CHARS: usize = 998;

/// What a group sets for one process area. Each part is optional; a responsibility that sets
/// nothing is not a responsibility (the store refuses to save one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Responsibility {
    pub worker: Option<UserId>,
    pub user_group: Option<UserGroupId>,
    pub processing_area: Option<ProcessingAreaId>,
}

impl Responsibility {
    pub fn is_empty(&self) -> bool {
        self.worker.is_none() && self.user_group.is_none() && self.processing_area.is_none()
    }
}

/// The process area's module defaults: its queue (always set), optionally a worker and a user
/// group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AreaDefaults {
    pub processing_area: ProcessingAreaId,
    pub worker: Option<UserId>,
    pub user_group: Option<UserGroupId>,
}

/// A field of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    Worker,
    UserGroup,
    ProcessingArea,
}

/// Why a candidate group decided or did not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The first candidate: its responsibility decides.
    Decided,
    /// A candidate after the first (greater precedence, or equal precedence and greater id).
    PassedOver,
}

/// One of the contact's groups that has an effective responsibility for the area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub group: GroupId,
    pub precedence: i32,
    /// The group that sets the responsibility (`group` itself, or its nearest ancestor that does).
    pub defined_on: GroupId,
    /// 0 when the group sets it itself.
    pub depth: i32,
    pub responsibility: Responsibility,
    pub outcome: Outcome,
}

/// The routing decision with everything needed to explain it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub worker: Option<UserId>,
    pub user_group: Option<UserGroupId>,
    pub processing_area: ProcessingAreaId,
    /// The deciding group (the contact's group), if any group decided.
    pub from_group: Option<GroupId>,
    /// Where the deciding responsibility is defined (the deciding group or an ancestor).
    pub defined_on: Option<GroupId>,
    /// Every candidate in decision order.
    pub candidates: Vec<Candidate>,
    /// The fields taken from the process area's defaults (ascending).
    pub fallbacks: Vec<Field>,
}

/// Routes one message. `memberships`: the contact's direct groups with their precedence.
/// `found`: (direct group, what its ancestor chain sets), as read from the closure table.
/// Rows for groups not in `memberships` are ignored.
pub fn route(
    memberships: impl IntoIterator<Item = (GroupId, i32)>,
    found: impl IntoIterator<Item = (GroupId, Found<Responsibility>)>,
    defaults: &AreaDefaults,
) -> Decision {
    let precedence: HashMap<GroupId, i32> = memberships.into_iter().collect();
    let effective = inherit::effective_per(found.into_iter().filter(|(g, _)| precedence.contains_key(g)));
    let mut candidates: Vec<Candidate> = effective
        .into_iter()
        .filter_map(|(group, e)| {
            // A chain where one setter holds several rows cannot happen (one row per group and
            // area); should it, the smallest value decides, deterministically.
            let responsibility = e.values.iter().copied().min_by_key(key)?;
            Some(Candidate {
                group,
                precedence: precedence[&group],
                defined_on: e.from,
                depth: e.depth,
                responsibility,
                outcome: Outcome::PassedOver,
            })
        })
        .collect();
    candidates.sort_by_key(|c| (c.precedence, c.group));
    if let Some(first) = candidates.first_mut() {
        first.outcome = Outcome::Decided;
    }
    let decider = candidates.first().map(|c| c.responsibility).unwrap_or_default();
    let mut fallbacks = vec![];
    let worker = decider.worker.or_else(|| {
        fallbacks.push(Field::Worker);
        defaults.worker
    });
    let user_group = decider.user_group.or_else(|| {
        fallbacks.push(Field::UserGroup);
        defaults.user_group
    });
    let processing_area = decider.processing_area.unwrap_or_else(|| {
        fallbacks.push(Field::ProcessingArea);
        defaults.processing_area
    });
    fallbacks.sort();
    Decision {
        worker,
        user_group,
        processing_area,
        from_group: candidates.first().map(|c| c.group),
        defined_on: candidates.first().map(|c| c.defined_on),
        candidates,
        fallbacks,
    }
}

fn key(r: &Responsibility) -> (Option<UserId>, Option<UserGroupId>, Option<ProcessingAreaId>) {
    (r.worker, r.user_group, r.processing_area)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use uuid::Uuid;

    fn g(n: u128) -> GroupId {
        GroupId(Uuid::from_u128(n))
    }
    fn u(n: u128) -> UserId {
        UserId(Uuid::from_u128(n))
    }
    fn q(n: u128) -> ProcessingAreaId {
        ProcessingAreaId(Uuid::from_u128(n))
    }
    fn ug(n: u128) -> UserGroupId {
        UserGroupId(Uuid::from_u128(n))
    }
    fn defaults() -> AreaDefaults {
        AreaDefaults { processing_area: q(900), worker: Some(u(901)), user_group: None }
    }
    fn own(group: u128, r: Responsibility) -> (GroupId, Found<Responsibility>) {
        (g(group), Found { defined_on: g(group), depth: 0, value: r })
    }

    #[test]
    fn no_groups_means_the_area_defaults() {
        let d = route([], [], &defaults());
        assert_eq!(d.processing_area, q(900));
        assert_eq!(d.worker, Some(u(901)));
        assert_eq!(d.user_group, None);
        assert_eq!(d.from_group, None);
        assert_eq!(d.fallbacks, vec![Field::Worker, Field::UserGroup, Field::ProcessingArea]);
        assert!(d.candidates.is_empty());
    }

    #[test]
    fn smallest_precedence_decides_and_empty_fields_fall_back() {
        let vip = Responsibility { worker: Some(u(1)), user_group: Some(ug(7)), processing_area: None };
        let dach = Responsibility { worker: Some(u(2)), user_group: None, processing_area: Some(q(5)) };
        let d = route([(g(10), 5), (g(20), 1)], [own(10, dach), own(20, vip)], &defaults());
        assert_eq!(d.from_group, Some(g(20)));
        assert_eq!(d.worker, Some(u(1)));
        assert_eq!(d.user_group, Some(ug(7)));
        // The decider sets no queue: the area's, not the next candidate's.
        assert_eq!(d.processing_area, q(900));
        assert_eq!(d.fallbacks, vec![Field::ProcessingArea]);
        assert_eq!(
            d.candidates.iter().map(|c| (c.group, c.outcome)).collect::<Vec<_>>(),
            vec![(g(20), Outcome::Decided), (g(10), Outcome::PassedOver)]
        );
    }

    #[test]
    fn ties_are_broken_by_group_id_and_groups_without_responsibility_are_no_candidates() {
        let r = |w| Responsibility { worker: Some(u(w)), ..Default::default() };
        let d = route([(g(3), 1), (g(2), 1), (g(1), 0)], [own(3, r(3)), own(2, r(2))], &defaults());
        assert_eq!(d.from_group, Some(g(2)));
        assert_eq!(d.candidates.len(), 2, "group 1 sets nothing and inherits nothing");
    }

    #[test]
    fn a_subgroup_inherits_its_nearest_ancestors_responsibility() {
        let parent = Responsibility { worker: Some(u(1)), ..Default::default() };
        let grand = Responsibility { worker: Some(u(2)), ..Default::default() };
        let d = route(
            [(g(30), 0)],
            [
                (g(30), Found { defined_on: g(20), depth: 1, value: parent }),
                (g(30), Found { defined_on: g(10), depth: 2, value: grand }),
            ],
            &defaults(),
        );
        assert_eq!(d.worker, Some(u(1)));
        assert_eq!(d.from_group, Some(g(30)));
        assert_eq!(d.defined_on, Some(g(20)));
        assert_eq!(d.candidates[0].depth, 1);
    }

    fn resp() -> impl Strategy<Value = Responsibility> {
        (proptest::option::of(0u128..4), proptest::option::of(0u128..4), proptest::option::of(0u128..4))
            .prop_map(|(w, gr, a)| Responsibility {
                worker: w.map(u),
                user_group: gr.map(ug),
                processing_area: a.map(q),
            })
            .prop_filter("a responsibility sets something", |r| !r.is_empty())
    }

    /// A random forest of chains: each direct group has an ancestor chain (ids unique per depth
    /// level) and some of the chain's groups set a responsibility.
    /// (the contact's groups with precedence, ancestor rows per group)
    type Facts = (Vec<(GroupId, i32)>, Vec<(GroupId, Found<Responsibility>)>);

    fn facts() -> impl Strategy<Value = Facts> {
        proptest::collection::vec((-3i32..3, proptest::collection::vec(proptest::option::of(resp()), 1..4)), 0..6)
            .prop_map(|groups| {
                let mut members = vec![];
                let mut found = vec![];
                for (i, (prec, chain)) in groups.into_iter().enumerate() {
                    let direct = g(1000 + i as u128);
                    members.push((direct, prec));
                    for (depth, set) in chain.into_iter().enumerate() {
                        let on = if depth == 0 { direct } else { g(2000 + (i * 10 + depth) as u128) };
                        if let Some(r) = set {
                            found.push((direct, Found { defined_on: on, depth: depth as i32, value: r }));
                        }
                    }
                }
                (members, found)
            })
    }

    proptest! {
        /// The order facts arrive in never changes the decision.
        #[test]
        fn order_of_facts_is_irrelevant((members, found) in facts(), seed in any::<u64>()) {
            let a = route(members.clone(), found.clone(), &defaults());
            let mut m2 = members.clone();
            let mut f2 = found.clone();
            let n = f2.len().max(1);
            for i in 0..f2.len() {
                f2.swap(i, (seed.wrapping_mul(31).wrapping_add(i as u64) % n as u64) as usize);
            }
            m2.reverse();
            prop_assert_eq!(a, route(m2, f2, &defaults()));
        }

        /// The decider is the candidate with the smallest (precedence, id), and every group with
        /// an effective responsibility is a candidate.
        #[test]
        fn precedence_is_respected((members, found) in facts()) {
            let d = route(members.clone(), found.clone(), &defaults());
            let with_resp: std::collections::HashSet<GroupId> = found.iter().map(|(g, _)| *g).collect();
            prop_assert_eq!(d.candidates.len(), with_resp.len());
            let best = members.iter().filter(|(g, _)| with_resp.contains(g)).min_by_key(|(g, p)| (*p, *g));
            prop_assert_eq!(d.from_group, best.map(|(g, _)| *g));
            for w in d.candidates.windows(2) {
                prop_assert!((w[0].precedence, w[0].group) < (w[1].precedence, w[1].group));
            }
        }

        /// Routing over the raw ancestor rows equals routing over each group's flattened
        /// (effective) responsibility set on the group itself.
        #[test]
        fn inheritance_equals_flattening((members, found) in facts()) {
            let d = route(members.clone(), found.clone(), &defaults());
            let flat: Vec<(GroupId, Found<Responsibility>)> = members
                .iter()
                .filter_map(|(grp, _)| {
                    let e = inherit::effective(found.iter().filter(|(x, _)| x == grp).map(|(_, f)| f.clone()))?;
                    Some((*grp, Found { defined_on: *grp, depth: 0, value: e.values[0] }))
                })
                .collect();
            let f = route(members, flat, &defaults());
            prop_assert_eq!((d.worker, d.user_group, d.processing_area, d.from_group, d.fallbacks.clone()),
                (f.worker, f.user_group, f.processing_area, f.from_group, f.fallbacks));
        }
    }
}
