//! The business-status classification every tenant starts with (DESIGN §1). Statuses change often
//! and are not groups; every change is kept in the contact's status history.

/// (key, label, category) in display order.
pub const SEEDED_STATUSES: &[(&str, &str, &str)] = &[
    ("lead_cold", "Lead: cold", "LEAD"),
    ("lead_warm", "Lead: warm", "LEAD"),
    ("lead_hot", "Lead: hot", "LEAD"),
    ("prospect_bargain_hunter", "Prospect: bargain hunter", "PROSPECT"),
    ("prospect_staller", "Prospect: staller", "PROSPECT"),
    ("prospect_value_buyer", "Prospect: value buyer", "PROSPECT"),
    ("prospect_sitting_duck", "Prospect: sitting duck", "PROSPECT"),
    ("customer", "Customer", "CUSTOMER"),
    ("dead", "Dead", "DEAD"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_keys_are_unique() {
        let mut keys: Vec<_> = SEEDED_STATUSES.iter().map(|s| s.0).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), SEEDED_STATUSES.len());
    }
}
