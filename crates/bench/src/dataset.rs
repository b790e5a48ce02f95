//! Dataset M, exactly as `../shared/bench/DATASET.md` defines it, and its scaled-down size `s`.
//!
//! Everything is arithmetic on generation indexes, so the generator, the workloads and the
//! response checks all derive from the same functions. Cohort ids are deterministic (UUIDv8 with
//! the entity kind and the generation index in it), which is the mapping the issue asks for:
//! `contact_id(79191)` *is* contact 79191's id, in every run, on every database.

use chrono::{DateTime, Duration, TimeZone, Utc};
use cohort_domain::AccessLevel;
use cohort_domain::group::MembershipSource;
use rust_decimal::Decimal;
use uuid::Uuid;

pub const TENANT: &str = "bench";

const FN: [&str; 40] = [
    "Anna", "Ben", "Clara", "David", "Eva", "Felix", "Greta", "Hans", "Ida", "Jonas", "Karla", "Lukas", "Mia", "Noah",
    "Olga", "Paul", "Quinn", "Rosa", "Sven", "Tina", "Uwe", "Vera", "Walter", "Xenia", "Yusuf", "Zoe", "Amir", "Bea",
    "Carlos", "Dana", "Emil", "Fatima", "Georg", "Hanna", "Igor", "Julia", "Kai", "Lena", "Marco", "Nina",
];
const LN: [&str; 50] = [
    "Abbott", "Baker", "Carter", "Dawson", "Ellis", "Fischer", "Graham", "Hoffmann", "Ibsen", "Jensen", "Keller",
    "Lambert", "Meyer", "Novak", "Olsen", "Peters", "Quast", "Richter", "Schmidt", "Turner", "Ulrich", "Vogel",
    "Weber", "Xander", "Young", "Zimmer", "Arnold", "Brandt", "Conrad", "Dietrich", "Engel", "Frank", "Gruber",
    "Hartmann", "Jung", "Koch", "Lorenz", "Maier", "Neumann", "Otto", "Pohl", "Roth", "Stein", "Thiel", "Unger",
    "Voss", "Wolf", "Berger", "Huber", "Kraus",
];
const SX: [&str; 8] = ["", "son", "er", "ley", "ford", "ton", "well", "by"];
const CO: [&str; 5] = ["GmbH", "AG", "Ltd", "Inc", "KG"];

pub const USERS: u64 = 100;
pub const USER_GROUPS: u64 = 10;
pub const BOOKS: u64 = 200;
pub const PRODUCTS: u64 = 10_000;
pub const PRICE_LISTS: u64 = 200;
pub const ITEMS_PER_LIST: u64 = 1_000;

/// What kind of entity a deterministic id names (a byte inside the UUID).
#[derive(Clone, Copy)]
#[repr(u8)]
enum Kind {
    User = 1,
    UserGroup = 2,
    Book = 3,
    Contact = 4,
    Group = 5,
    Product = 6,
    PriceList = 7,
    PriceItem = 8,
}

fn id(kind: Kind, index: u64) -> Uuid {
    let mut b = [0u8; 16];
    b[0..4].copy_from_slice(b"CBM1");
    b[4] = kind as u8;
    // Bytes 8..16 hold the index; UUIDv8 overwrites the top two bits of byte 8 (the variant), which
    // the index never reaches. Ids of one kind therefore sort like their indexes.
    b[8..16].copy_from_slice(&index.to_be_bytes());
    Uuid::new_v8(b)
}

pub fn user_id(u: u64) -> Uuid {
    id(Kind::User, u)
}
pub fn user_group_id(ug: u64) -> Uuid {
    id(Kind::UserGroup, ug)
}
pub fn book_id(b: u64) -> Uuid {
    id(Kind::Book, b)
}
pub fn contact_id(c: u64) -> Uuid {
    id(Kind::Contact, c)
}
pub fn group_id(g: u64) -> Uuid {
    id(Kind::Group, g)
}
pub fn product_id(p: u64) -> Uuid {
    id(Kind::Product, p)
}
pub fn price_list_id(l: u64) -> Uuid {
    id(Kind::PriceList, l)
}
/// Item `j` of list `l`, tier `t` (0: min quantity 1, 1: min quantity 10).
pub fn price_item_id(l: u64, j: u64, t: u64) -> Uuid {
    id(Kind::PriceItem, (l * ITEMS_PER_LIST + j) * 2 + t)
}

/// The subject in user `u`'s token.
pub fn subject(u: u64) -> String {
    format!("user-{u}")
}

/// Size `m` (1,000,000 contacts, 2,000 groups) or `s` (the same formulas over 10,000 contacts and
/// 200 groups: every count that DATASET.md writes in terms of a million is scaled by 1/100).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size {
    pub contacts: u64,
    pub groups: u64,
}

impl Size {
    pub const M: Size = Size { contacts: 1_000_000, groups: 2_000 };
    pub const S: Size = Size { contacts: 10_000, groups: 200 };

    pub fn parse(s: &str) -> Option<Size> {
        match s {
            "m" | "M" => Some(Size::M),
            "s" | "S" => Some(Size::S),
            _ => None,
        }
    }

    pub fn name(&self) -> &'static str {
        if *self == Size::M { "m" } else { "s" }
    }

    /// Scales a count given for dataset M.
    fn scale(&self, n: u64) -> u64 {
        n * self.contacts / Size::M.contacts
    }

    /// The ring: a bijection on `0..contacts` (7919 is prime and divides neither size).
    pub fn ring(&self, idx: u64) -> u64 {
        (idx * 7919) % self.contacts + 1
    }

    /// The contact W2 shows (79,191 in M).
    pub fn w2_contact(&self) -> u64 {
        79_191 % self.contacts
    }

    /// The contact W4/W5 price for (999,991 in M).
    pub fn pricing_contact(&self) -> u64 {
        self.contacts - 9
    }

    /// The groups the pricing contact is additionally assigned to (1001..1020 in M).
    pub fn pricing_extra_groups(&self) -> std::ops::RangeInclusive<u64> {
        let first = self.groups / 2 + 1;
        first..=first + 19
    }

    /// The ring indexes W6 adds and removes (500,000..509,999 in M; at most every contact).
    pub fn w6_ring(&self) -> std::ops::Range<u64> {
        let start = self.contacts / 2;
        start..start + 10_000.min(self.contacts)
    }
}

/// User 1, the benchmark viewer, sees exactly the books with `b % 10 = 1`.
pub fn visible_to_user1(contact: u64) -> bool {
    contact_book(contact) % 10 == 1
}

pub fn contact_book(c: u64) -> u64 {
    ((c - 1) % BOOKS) + 1
}

/// Grants as (book, principal is a user group?, principal index, level).
pub fn grants() -> Vec<(u64, bool, u64, AccessLevel)> {
    let mut out = vec![];
    for (j, b) in (1..=91).step_by(10).enumerate() {
        out.push((b, false, 1, if j < 5 { AccessLevel::Read } else { AccessLevel::Write }));
    }
    for b in (101..=191).step_by(10) {
        out.push((b, true, 1, AccessLevel::Read));
    }
    const LEVELS: [AccessLevel; 3] = [AccessLevel::Read, AccessLevel::Write, AccessLevel::Manage];
    for u in 2..=USERS {
        for j in 0..10 {
            out.push((((u * 13 + j * 20) % BOOKS) + 1, false, u, LEVELS[((u + j) % 3) as usize]));
        }
    }
    for ug in 2..=USER_GROUPS {
        for j in 0..10 {
            out.push((((ug * 17 + j * 20) % BOOKS) + 1, true, ug, AccessLevel::Read));
        }
    }
    out
}

pub fn user_group_of(u: u64) -> u64 {
    ((u - 1) % USER_GROUPS) + 1
}

pub enum ContactName {
    Person { first: &'static str, last: String },
    Company { name: String },
}

pub fn contact_name(c: u64) -> ContactName {
    let h = (c * 2_654_435_761) % 4_294_967_296;
    let ln = LN[((h / 40) % 50) as usize];
    if c.is_multiple_of(5) {
        ContactName::Company { name: format!("{ln} {}", CO[((h / 2000) % 5) as usize]) }
    } else {
        ContactName::Person { first: FN[(h % 40) as usize], last: format!("{ln}{}", SX[((h / 2000) % 8) as usize]) }
    }
}

/// What `orderBy: NAME` sorts on: the stored sort key is the lower-cased sort name.
pub fn sort_key(c: u64) -> String {
    match contact_name(c) {
        ContactName::Person { last, .. } => last.to_lowercase(),
        ContactName::Company { name } => name.to_lowercase(),
    }
}

pub fn email(c: u64) -> String {
    format!("c{c}@example.com")
}

pub fn group_parent(g: u64) -> Option<u64> {
    match g {
        1..=20 => None,
        21..=200 => Some(1 + (g - 21) / 9),
        _ => Some(21 + (g - 201) / 10),
    }
}

pub fn group_name(g: u64) -> String {
    match g {
        1..=20 => format!("Root group {g}"),
        21..=200 => format!("Group {g}"),
        _ => format!("Subgroup {g}"),
    }
}

pub fn group_public_name(g: u64) -> Option<String> {
    g.is_multiple_of(3).then(|| format!("Public group {g}"))
}

pub fn group_book(g: u64) -> u64 {
    ((g - 1) % BOOKS) + 1
}

/// One membership row as DATASET.md defines it.
pub struct Member {
    pub contact: u64,
    pub joined_at: DateTime<Utc>,
    pub source: MembershipSource,
    /// The user index when the source is ASSIGNED.
    pub assigned_by: Option<u64>,
}

fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).single().unwrap_or_default()
}

fn member(size: &Size, idx: u64, x: u64, y: u64) -> Member {
    let source = [MembershipSource::Import, MembershipSource::Assigned, MembershipSource::Automation][(y % 3) as usize];
    Member {
        contact: size.ring(idx),
        joined_at: epoch() + Duration::seconds(((x * 104_729) % 157_680_000) as i64),
        assigned_by: (source == MembershipSource::Assigned).then_some(1 + (y % 100)),
        source,
    }
}

/// The members of group `g` (ring order), without the pricing contact's extra assignments.
pub fn members(size: &Size, g: u64) -> impl Iterator<Item = Member> + '_ {
    let (count, offset) = if g == 1 {
        (size.scale(100_000), 0)
    } else {
        (size.scale(2000 + (g * 7919) % 1001), size.scale((g - 2) * 1000))
    };
    (1..=count).map(move |k| {
        if g == 1 { member(size, k, k, k) } else { member(size, (offset + k) % size.contacts, g * 1000 + k, g + k) }
    })
}

/// Does group `g` hold contact `c` (ring membership or the pricing contact's extra groups)?
pub fn is_member(size: &Size, g: u64, c: u64) -> bool {
    (size.pricing_contact() == c && size.pricing_extra_groups().contains(&g))
        || members(size, g).any(|m| m.contact == c)
}

/// Every group contact `c` is a member of (ring memberships and the pricing contact's extras),
/// ascending.
pub fn groups_of(size: &Size, c: u64) -> Vec<u64> {
    (1..=size.groups).filter(|g| is_member(size, *g, c)).collect()
}

pub fn product_list_price(p: u64) -> Decimal {
    Decimal::from(10 + (p % 990))
}

/// Items of list `l`: (j, product, price for min quantity 1, price for min quantity 10).
pub fn list_items(l: u64) -> impl Iterator<Item = (u64, u64, Decimal, Decimal)> {
    let factor = Decimal::new(70 + (l % 20) as i64, 2);
    (0..ITEMS_PER_LIST).map(move |j| {
        let p = ((l * 37 + j * 10) % PRODUCTS) + 1;
        let one = (product_list_price(p) * factor).round_dp(2);
        let ten = (one * Decimal::new(95, 2)).round_dp(2);
        (j, p, one, ten)
    })
}

/// Group `g`'s lists as (list, priority).
pub fn group_lists(g: u64) -> [(u64, i32); 3] {
    [0, 1, 2].map(|i| (((g * 3 + i) % PRICE_LISTS) + 1, i as i32 + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn the_ring_is_a_bijection_on_both_sizes() {
        for size in [Size::S, Size::M] {
            let step = if size == Size::M { 97 } else { 1 };
            let seen: HashSet<u64> = (0..size.contacts).map(|i| size.ring(i)).collect();
            assert_eq!(seen.len() as u64, size.contacts);
            assert!((0..size.contacts).step_by(step).all(|i| (1..=size.contacts).contains(&size.ring(i))));
        }
    }

    #[test]
    fn user_1_sees_the_books_ending_in_1_and_visible_ring_indexes_are_multiples_of_10() {
        let books: HashSet<u64> = grants().iter().filter(|(_, _, p, _)| *p == 1).map(|(b, ..)| *b).collect();
        assert_eq!(books, (1..=BOOKS).filter(|b| b % 10 == 1).collect());
        for idx in 0..1000 {
            assert_eq!(visible_to_user1(Size::M.ring(idx)), idx % 10 == 0, "ring index {idx}");
        }
    }

    #[test]
    fn group_1_has_10000_members_visible_to_user_1_in_m() {
        let visible = members(&Size::M, 1).filter(|m| visible_to_user1(m.contact)).count();
        assert_eq!(visible, 10_000);
        assert_eq!(members(&Size::M, 1).count(), 100_000);
    }

    #[test]
    fn ids_are_deterministic_distinct_per_kind_and_ordered_by_index() {
        assert_eq!(contact_id(79_191), contact_id(79_191));
        assert_ne!(contact_id(1), group_id(1));
        assert!(contact_id(9) < contact_id(10) && contact_id(255) < contact_id(256));
        assert_eq!(contact_id(1).get_version_num(), 8);
    }

    #[test]
    fn the_pricing_contact_is_in_its_20_extra_groups_and_its_ring_groups() {
        for size in [Size::S, Size::M] {
            let c = size.pricing_contact();
            let groups = groups_of(&size, c);
            assert!(size.pricing_extra_groups().all(|g| groups.contains(&g)), "{size:?}");
            assert!(groups.len() >= 20, "{size:?}: {groups:?}");
            assert!(visible_to_user1(c));
        }
    }

    #[test]
    fn names_follow_the_formulas() {
        // id 1: h = 2654435761 → FN[1] = Ben, LN[(h/40)%50] = LN[44] = Unger, SX[(h/2000)%8] = SX[1].
        match contact_name(1) {
            ContactName::Person { first, last } => assert_eq!((first, last.as_str()), ("Ben", "Ungerson")),
            ContactName::Company { .. } => panic!("contact 1 is a person"),
        }
        assert!(matches!(contact_name(5), ContactName::Company { .. }));
        assert_eq!(group_parent(21), Some(1));
        assert_eq!(group_parent(200), Some(20));
        assert_eq!(group_parent(201), Some(21));
        assert_eq!(group_parent(2000), Some(200));
    }
}
