//! Contact groups: validation, membership provenance and the hierarchy rule (no cycles).

use crate::access::Roles;
use crate::error::{DomainError, DomainResult};
use crate::ids::GroupId;
use crate::text::{Name, optional_text};
use std::collections::{HashMap, HashSet};

/// At most this many contact ids in one `addGroupMembers` / `removeGroupMembers` call.
pub const MAX_BULK_IDS: usize = 10_000;

/// How a contact came to be in a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MembershipSource {
    Assigned,
    Import,
    Api,
    WebForm,
    SelfService,
    Automation,
}

impl MembershipSource {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Assigned => "ASSIGNED",
            Self::Import => "IMPORT",
            Self::Api => "API",
            Self::WebForm => "WEB_FORM",
            Self::SelfService => "SELF_SERVICE",
            Self::Automation => "AUTOMATION",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ASSIGNED" => Self::Assigned,
            "IMPORT" => Self::Import,
            "API" => Self::Api,
            "WEB_FORM" => Self::WebForm,
            "SELF_SERVICE" => Self::SelfService,
            "AUTOMATION" => Self::Automation,
            _ => return None,
        })
    }
    /// The source of a membership change a worker or machine makes through the API: the one they
    /// name, else `API` for integration tokens and `ASSIGNED` for everyone else. Web-form and
    /// self-service memberships carry consent evidence and only come from the public endpoints.
    pub fn for_api_call(requested: Option<Self>, roles: &Roles) -> DomainResult<Self> {
        match requested {
            Some(Self::WebForm | Self::SelfService) => Err(DomainError::invalid(
                "source",
                "WEB_FORM and SELF_SERVICE memberships are created by the public consent endpoints only",
            )),
            Some(s) => Ok(s),
            None if roles.is_integration() && !roles.is_admin() => Ok(Self::Api),
            None => Ok(Self::Assigned),
        }
    }
}

/// A group's validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidGroup {
    pub name: String,
    pub sort_name: String,
    pub description: Option<String>,
    pub precedence: i32,
    pub public_name: Option<String>,
    pub public_description: Option<String>,
}

impl ValidGroup {
    pub fn validate(
        name: &str,
        description: Option<&str>,
        precedence: i32,
        public_name: Option<&str>,
        public_description: Option<&str>,
    ) -> DomainResult<Self> {
        let name = Name::parse("name", name)?;
        if !(-1_000_000..=1_000_000).contains(&precedence) {
            return Err(DomainError::invalid("precedence", "must be between -1000000 and 1000000"));
        }
        let public_name = match public_name.map(str::trim) {
            None | Some("") => None,
            Some(p) => Some(Name::parse("publicName", p)?.into_string()),
        };
        let public_description = optional_text("publicDescription", public_description)?;
        if public_description.is_some() && public_name.is_none() {
            return Err(DomainError::invalid("publicDescription", "a public description needs a public name"));
        }
        Ok(ValidGroup {
            sort_name: name.as_str().to_lowercase(),
            name: name.into_string(),
            description: optional_text("description", description)?,
            precedence,
            public_name,
            public_description,
        })
    }
}

/// Whether moving `group` under `new_parent` is allowed, given the set of `group`'s descendants
/// (including `group` itself): the new parent must not be in that subtree.
pub fn check_move(group: GroupId, new_parent: Option<GroupId>, subtree: &HashSet<GroupId>) -> DomainResult<()> {
    debug_assert!(subtree.contains(&group));
    match new_parent {
        Some(p) if p == group => Err(DomainError::invalid("parentId", "a group cannot be its own parent")),
        Some(p) if subtree.contains(&p) => Err(DomainError::invalid(
            "parentId",
            "the new parent is inside this group's subtree: that would create a cycle",
        )),
        _ => Ok(()),
    }
}

/// The subtree of `root` (itself and every descendant) in a parent map. Used by tests and by
/// callers that hold the hierarchy in memory.
pub fn subtree(parents: &HashMap<GroupId, Option<GroupId>>, root: GroupId) -> HashSet<GroupId> {
    let mut children: HashMap<GroupId, Vec<GroupId>> = HashMap::new();
    for (c, p) in parents {
        if let Some(p) = p {
            children.entry(*p).or_default().push(*c);
        }
    }
    let mut out = HashSet::from([root]);
    let mut stack = vec![root];
    while let Some(g) = stack.pop() {
        for c in children.get(&g).into_iter().flatten() {
            if out.insert(*c) {
                stack.push(*c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Role;
    use proptest::prelude::*;

    #[test]
    fn default_sources() {
        let integ = Roles::new([Role::Integration]);
        let agent = Roles::new([Role::Agent]);
        assert_eq!(MembershipSource::for_api_call(None, &integ).unwrap(), MembershipSource::Api);
        assert_eq!(MembershipSource::for_api_call(None, &agent).unwrap(), MembershipSource::Assigned);
        assert_eq!(
            MembershipSource::for_api_call(Some(MembershipSource::Import), &agent).unwrap(),
            MembershipSource::Import
        );
        assert!(MembershipSource::for_api_call(Some(MembershipSource::SelfService), &agent).is_err());
        for s in ["ASSIGNED", "IMPORT", "API", "WEB_FORM", "SELF_SERVICE", "AUTOMATION"] {
            assert_eq!(MembershipSource::parse(s).unwrap().as_str(), s);
        }
    }

    #[test]
    fn group_validation() {
        assert!(ValidGroup::validate(" ", None, 0, None, None).is_err());
        assert!(ValidGroup::validate("G", None, 2_000_000, None, None).is_err());
        assert!(ValidGroup::validate("G", None, 0, None, Some("desc")).is_err());
        let g = ValidGroup::validate(" Greece ", Some(" "), 5, Some("Newsletter GR"), Some("News")).unwrap();
        assert_eq!((g.name.as_str(), g.sort_name.as_str(), g.description), ("Greece", "greece", None));
    }

    /// A forest of `n` groups: group i's parent is some j < i or none.
    fn forest() -> impl Strategy<Value = Vec<Option<usize>>> {
        (1usize..25).prop_flat_map(|n| {
            (0..n)
                .map(|i| if i == 0 { Just(None).boxed() } else { proptest::option::of(0..i).boxed() })
                .collect::<Vec<_>>()
        })
    }

    fn has_cycle(parents: &HashMap<GroupId, Option<GroupId>>) -> bool {
        parents.keys().any(|start| {
            let mut seen = HashSet::new();
            let mut cur = Some(*start);
            while let Some(g) = cur {
                if !seen.insert(g) {
                    return true;
                }
                cur = parents.get(&g).copied().flatten();
            }
            false
        })
    }

    proptest! {
        /// Whatever sequence of moves is attempted, applying only the accepted ones never creates
        /// a cycle, and every refused move really would have.
        #[test]
        fn accepted_moves_never_create_cycles(
            shape in forest(),
            moves in proptest::collection::vec((0usize..25, proptest::option::of(0usize..25)), 0..40),
        ) {
            let ids: Vec<GroupId> = shape.iter().map(|_| GroupId::new()).collect();
            let mut parents: HashMap<GroupId, Option<GroupId>> =
                shape.iter().enumerate().map(|(i, p)| (ids[i], p.map(|p| ids[p]))).collect();
            for (g, p) in moves {
                let g = ids[g % ids.len()];
                let p = p.map(|p| ids[p % ids.len()]);
                let sub = subtree(&parents, g);
                let mut trial = parents.clone();
                trial.insert(g, p);
                match check_move(g, p, &sub) {
                    Ok(()) => { parents = trial; prop_assert!(!has_cycle(&parents)); }
                    Err(_) => prop_assert!(has_cycle(&trial)),
                }
            }
        }

        /// Moving a group carries its whole subtree along: the subtree's members are unchanged.
        #[test]
        fn a_move_keeps_the_subtree(shape in forest(), g in 0usize..25, p in proptest::option::of(0usize..25)) {
            let ids: Vec<GroupId> = shape.iter().map(|_| GroupId::new()).collect();
            let mut parents: HashMap<GroupId, Option<GroupId>> =
                shape.iter().enumerate().map(|(i, q)| (ids[i], q.map(|q| ids[q]))).collect();
            let g = ids[g % ids.len()];
            let p = p.map(|p| ids[p % ids.len()]);
            let before = subtree(&parents, g);
            if check_move(g, p, &before).is_ok() {
                parents.insert(g, p);
                prop_assert_eq!(subtree(&parents, g), before);
            }
        }
    }
}
