//! Inherited settings: "a subgroup that sets no X inherits X from its nearest ancestor that does"
//! (DESIGN §1). One rule for every inherited setting — price lists now, default SLAs and
//! responsibilities per process area next — so they cannot drift apart.
//!
//! Input is what the ancestor chain of a group sets: each value with the group that sets it and
//! that group's distance from the group asked about (0 = the group itself). A group may set
//! several values of one setting (several price lists); the nearest setter passes all of its own
//! values and nothing of anyone further up.

use crate::ids::GroupId;
use std::collections::HashMap;
use std::hash::Hash;

/// One value found on the ancestor chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found<T> {
    /// The group that sets the value.
    pub defined_on: GroupId,
    /// Its distance from the group asked about: 0 for the group itself, 1 for its parent, …
    pub depth: i32,
    pub value: T,
}

/// The effective setting and where it came from (explanations name `from`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inherited<T> {
    pub from: GroupId,
    pub depth: i32,
    /// The nearest setter's values, in the order they were found.
    pub values: Vec<T>,
}

impl<T> Inherited<T> {
    /// Whether the group sets the value itself (rather than inheriting it).
    pub fn is_own(&self) -> bool {
        self.depth == 0
    }
}

/// The effective setting of one group, or `None` when neither it nor any ancestor sets one.
pub fn effective<T>(found: impl IntoIterator<Item = Found<T>>) -> Option<Inherited<T>> {
    let mut best: Option<Inherited<T>> = None;
    for f in found {
        match &mut best {
            Some(b) if f.depth > b.depth => {}
            Some(b) if f.depth == b.depth && f.defined_on == b.from => b.values.push(f.value),
            Some(b) if f.depth == b.depth => {
                // Two different groups at one distance cannot both be ancestors of one group in a
                // tree; keep the first deterministically rather than mixing them.
                let _ = b;
            }
            _ => best = Some(Inherited { from: f.defined_on, depth: f.depth, values: vec![f.value] }),
        }
    }
    best
}

/// [`effective`] for many groups at once: `found` holds (group asked about, value found).
pub fn effective_per<K: Eq + Hash, T>(found: impl IntoIterator<Item = (K, Found<T>)>) -> HashMap<K, Inherited<T>> {
    let mut by_key: HashMap<K, Vec<Found<T>>> = HashMap::new();
    for (k, f) in found {
        by_key.entry(k).or_default().push(f);
    }
    by_key.into_iter().filter_map(|(k, fs)| effective(fs).map(|e| (k, e))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use uuid::Uuid;

    fn g(n: u128) -> GroupId {
        GroupId(Uuid::from_u128(n))
    }

    fn f(group: u128, depth: i32, value: &'static str) -> Found<&'static str> {
        Found { defined_on: g(group), depth, value }
    }

    #[test]
    fn own_setting_wins_over_inherited() {
        let e = effective([f(2, 1, "parent"), f(1, 0, "own-a"), f(1, 0, "own-b"), f(3, 2, "grandparent")]);
        assert_eq!(e, Some(Inherited { from: g(1), depth: 0, values: vec!["own-a", "own-b"] }));
        assert!(e.is_some_and(|e| e.is_own()));
    }

    #[test]
    fn nearest_ancestor_passes_all_its_values_and_nothing_else() {
        let e = effective([f(3, 2, "gp"), f(2, 1, "p1"), f(2, 1, "p2")]);
        assert_eq!(e, Some(Inherited { from: g(2), depth: 1, values: vec!["p1", "p2"] }));
    }

    #[test]
    fn nothing_set_on_the_chain_is_none() {
        assert_eq!(effective::<&str>([]), None);
        assert!(effective_per::<u8, &str>([]).is_empty());
    }

    #[test]
    fn per_group() {
        let m = effective_per([(10u8, f(2, 1, "a")), (11, f(11, 0, "b")), (10, f(3, 2, "c"))]);
        assert_eq!(m[&10].values, vec!["a"]);
        assert_eq!(m[&11].from, g(11));
    }

    proptest! {
        /// Whatever the order rows arrive in, the result is exactly the values of the setter at
        /// the smallest depth (chains are trees: one group per depth).
        #[test]
        fn result_is_the_nearest_setter(mut depths in proptest::collection::vec(0i32..6, 1..12), seed in any::<u64>()) {
            // One group per depth; each depth sets `depth + 1` values.
            depths.sort();
            depths.dedup();
            let mut rows = vec![];
            for d in &depths {
                for i in 0..=*d {
                    rows.push(Found { defined_on: g(*d as u128 + 100), depth: *d, value: (*d, i) });
                }
            }
            // Shuffle deterministically.
            let n = rows.len();
            for i in 0..n {
                let j = ((seed.wrapping_mul(6364136223846793005).wrapping_add(i as u64)) % n as u64) as usize;
                rows.swap(i, j);
            }
            let e = effective(rows).expect("something is set");
            let nearest = depths[0];
            prop_assert_eq!(e.depth, nearest);
            prop_assert_eq!(e.from, g(nearest as u128 + 100));
            prop_assert_eq!(e.values.len(), nearest as usize + 1);
            prop_assert!(e.values.iter().all(|(d, _)| *d == nearest));
        }
    }
}
