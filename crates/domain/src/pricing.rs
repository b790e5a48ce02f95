//! Price resolution (DESIGN §1 "Price lists"), as a pure function: the store gathers the facts
//! (the product, the candidate lists in no particular order, the lists' contents) and this module
//! decides — deterministically, and with an explanation of every candidate it looked at.
//!
//! Candidate order: (1) the contact's own lists by priority; (2) the lists of every group the
//! contact is a direct member of (own or inherited), merged by priority, ties broken by group
//! precedence, then group id, then list id; (3) the tenant's default list. The first list that
//! has an item for the product valid at the date, in the currency, with `minQuantity ≤ quantity`
//! prices the line; within it the item with the largest `minQuantity` wins. Else the product's
//! list price applies if its currency matches; else there is no price.

use crate::ids::{GroupId, PriceItemId, PriceListId, ProductId};
use crate::money::Currency;
use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use std::collections::{HashMap, HashSet};

/// Where a price came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    ContactList,
    GroupList,
    DefaultList,
    ListPrice,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub id: ProductId,
    pub list_price: Decimal,
    pub currency: Currency,
}

/// How an item prices its product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemPrice {
    /// A fixed unit price.
    Fixed(Decimal),
    /// A percentage off the list's base price (0 to 100).
    PercentOff(Decimal),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceItem {
    pub id: PriceItemId,
    pub product: ProductId,
    pub min_quantity: Decimal,
    pub price: ItemPrice,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_to: Option<DateTime<Utc>>,
}

/// What a list's percentages are taken off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// The product's list price.
    ListPrice,
    /// Another list's price for the same product (chains allowed, cycles refused).
    List(PriceListId),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceList {
    pub id: PriceListId,
    pub currency: Currency,
    /// Validity window `[valid_from, valid_to)`; open ends are unbounded.
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_to: Option<DateTime<Utc>>,
    pub base: Base,
    pub items: Vec<PriceItem>,
}

/// A list assigned to a group, as it applies to one of the contact's direct groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupAssignment {
    /// The contact's direct group.
    pub group: GroupId,
    pub precedence: i32,
    /// The group the assignment is defined on (the group itself, or the nearest ancestor it
    /// inherits its lists from).
    pub defined_on: GroupId,
    pub list: PriceListId,
    pub priority: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactAssignment {
    pub list: PriceListId,
    pub priority: i32,
}

/// Every list that may apply, in any order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignments {
    pub contact: Vec<ContactAssignment>,
    pub groups: Vec<GroupAssignment>,
    pub default: Option<PriceListId>,
}

/// One list in the resolution order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub step: Step,
    pub list: PriceListId,
    pub priority: i32,
    /// For group lists: the contact's group, and where the assignment is defined.
    pub group: Option<GroupId>,
    pub defined_on: Option<GroupId>,
}

/// Why a candidate list did not price the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The list is not (any longer) known.
    UnknownList,
    /// Another currency than the one asked for.
    Currency,
    /// Not yet valid, or no longer valid, at the date.
    NotValidAtDate,
    /// No item for the product valid at the date.
    NoItem,
    /// Items exist, but all need a larger quantity.
    QuantityTooSmall,
    /// A percentage item whose base has no price (base list in another currency, a cycle, …).
    NoBasePrice,
    /// Already considered earlier in the order (assigned twice).
    Duplicate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Applied {
        item: PriceItemId,
        unit_price: Decimal,
    },
    Skipped(SkipReason),
    /// Later in the order than the list that applied.
    NotReached,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Considered {
    pub candidate: Candidate,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub unit_price: Decimal,
    pub line_total: Decimal,
    pub currency: Currency,
    pub step: Step,
    pub list: Option<PriceListId>,
    pub item: Option<PriceItemId>,
    pub group: Option<GroupId>,
    pub defined_on: Option<GroupId>,
    /// Every candidate, in order, with what happened to it.
    pub considered: Vec<Considered>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PricingError {
    /// No list applies and the list price is in another currency.
    NoPrice { considered: Vec<Considered> },
}

/// Unit prices keep at most this many decimals (a percentage off can produce more).
pub const UNIT_PRICE_DECIMALS: u32 = 6;

/// The candidates in resolution order (DESIGN §1), each list once.
pub fn order(a: &Assignments) -> Vec<Candidate> {
    let mut contact = a.contact.clone();
    contact.sort_by_key(|x| (x.priority, x.list));
    let mut groups = a.groups.clone();
    groups.sort_by(|x, y| {
        (x.priority, x.precedence, x.group, x.list, x.defined_on).cmp(&(
            y.priority,
            y.precedence,
            y.group,
            y.list,
            y.defined_on,
        ))
    });
    let mut out: Vec<Candidate> = contact
        .into_iter()
        .map(|c| Candidate {
            step: Step::ContactList,
            list: c.list,
            priority: c.priority,
            group: None,
            defined_on: None,
        })
        .collect();
    out.extend(groups.into_iter().map(|g| Candidate {
        step: Step::GroupList,
        list: g.list,
        priority: g.priority,
        group: Some(g.group),
        defined_on: Some(g.defined_on),
    }));
    if let Some(d) = a.default {
        out.push(Candidate { step: Step::DefaultList, list: d, priority: 0, group: None, defined_on: None });
    }
    out
}

fn in_window(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>, at: DateTime<Utc>) -> bool {
    from.is_none_or(|f| f <= at) && to.is_none_or(|t| at < t)
}

/// The item of `list` that prices `product` at (`quantity`, `at`): the largest applicable
/// `minQuantity` (ties: the smallest item id).
fn best_item(
    list: &PriceList,
    product: ProductId,
    quantity: Decimal,
    at: DateTime<Utc>,
) -> Result<&PriceItem, SkipReason> {
    let valid: Vec<&PriceItem> =
        list.items.iter().filter(|i| i.product == product && in_window(i.valid_from, i.valid_to, at)).collect();
    if valid.is_empty() {
        return Err(SkipReason::NoItem);
    }
    valid
        .into_iter()
        .filter(|i| i.min_quantity <= quantity)
        .max_by(|a, b| a.min_quantity.cmp(&b.min_quantity).then(b.id.cmp(&a.id)))
        .ok_or(SkipReason::QuantityTooSmall)
}

struct Ctx<'a> {
    product: &'a Product,
    quantity: Decimal,
    at: DateTime<Utc>,
    lists: &'a HashMap<PriceListId, PriceList>,
}

impl Ctx<'_> {
    /// The unit price `list` gives the product: its own best item, or (without one) its base's.
    fn list_price(&self, list: &PriceList, seen: &mut HashSet<PriceListId>) -> Option<Decimal> {
        if !seen.insert(list.id) || !in_window(list.valid_from, list.valid_to, self.at) {
            return None;
        }
        match best_item(list, self.product.id, self.quantity, self.at) {
            Ok(item) => self.item_price(list, item, seen),
            Err(_) => self.base_price(list, seen),
        }
    }

    fn base_price(&self, list: &PriceList, seen: &mut HashSet<PriceListId>) -> Option<Decimal> {
        match list.base {
            Base::ListPrice => (self.product.currency == list.currency).then_some(self.product.list_price),
            Base::List(b) => {
                let base = self.lists.get(&b)?;
                if base.currency != list.currency {
                    return None;
                }
                self.list_price(base, seen)
            }
        }
    }

    fn item_price(&self, list: &PriceList, item: &PriceItem, seen: &mut HashSet<PriceListId>) -> Option<Decimal> {
        let p = match item.price {
            ItemPrice::Fixed(p) => p,
            ItemPrice::PercentOff(pct) => {
                let base = self.base_price(list, seen)?;
                base * (Decimal::ONE_HUNDRED - pct) / Decimal::ONE_HUNDRED
            }
        };
        Some(p.round_dp_with_strategy(UNIT_PRICE_DECIMALS, RoundingStrategy::MidpointAwayFromZero).normalize())
    }
}

/// Prices `quantity` of `product` in `currency` at `at` for a contact with these assignments.
/// `quantity` must already be validated (positive, see [`crate::money::parse_quantity`]).
pub fn resolve(
    product: &Product,
    quantity: Decimal,
    currency: Currency,
    at: DateTime<Utc>,
    assignments: &Assignments,
    lists: &HashMap<PriceListId, PriceList>,
) -> Result<Resolution, PricingError> {
    let ctx = Ctx { product, quantity, at, lists };
    let mut considered: Vec<Considered> = Vec::new();
    let mut seen_lists: HashSet<PriceListId> = HashSet::new();
    let mut applied: Option<(Candidate, PriceItemId, Decimal)> = None;
    for candidate in order(assignments) {
        if applied.is_some() {
            considered.push(Considered { candidate, outcome: Outcome::NotReached });
            continue;
        }
        if !seen_lists.insert(candidate.list) {
            considered.push(Considered { candidate, outcome: Outcome::Skipped(SkipReason::Duplicate) });
            continue;
        }
        let outcome = match lists.get(&candidate.list) {
            None => Err(SkipReason::UnknownList),
            Some(l) if l.currency != currency => Err(SkipReason::Currency),
            Some(l) if !in_window(l.valid_from, l.valid_to, at) => Err(SkipReason::NotValidAtDate),
            Some(l) => best_item(l, product.id, quantity, at).and_then(|item| {
                let mut seen = HashSet::from([l.id]);
                ctx.item_price(l, item, &mut seen).map(|p| (item.id, p)).ok_or(SkipReason::NoBasePrice)
            }),
        };
        match outcome {
            Ok((item, unit_price)) => {
                considered
                    .push(Considered { candidate: candidate.clone(), outcome: Outcome::Applied { item, unit_price } });
                applied = Some((candidate, item, unit_price));
            }
            Err(r) => considered.push(Considered { candidate, outcome: Outcome::Skipped(r) }),
        }
    }
    match applied {
        Some((c, item, unit_price)) => Ok(Resolution {
            unit_price,
            line_total: currency.round(unit_price * quantity),
            currency,
            step: c.step,
            list: Some(c.list),
            item: Some(item),
            group: c.group,
            defined_on: c.defined_on,
            considered,
        }),
        None if product.currency == currency => Ok(Resolution {
            unit_price: product.list_price,
            line_total: currency.round(product.list_price * quantity),
            currency,
            step: Step::ListPrice,
            list: None,
            item: None,
            group: None,
            defined_on: None,
            considered,
        }),
        None => Err(PricingError::NoPrice { considered }),
    }
}

/// Whether making `list` use `base` would close a cycle of base lists (`bases` maps each list to
/// its base list, if it has one).
pub fn base_creates_cycle(list: PriceListId, base: PriceListId, bases: &HashMap<PriceListId, PriceListId>) -> bool {
    let mut cur = Some(base);
    let mut steps = 0;
    while let Some(l) = cur {
        if l == list || steps > bases.len() {
            return true;
        }
        cur = bases.get(&l).copied();
        steps += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }
    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }
    fn at(y: i32, m: u32, day: u32) -> DateTime<Utc> {
        use chrono::TimeZone;
        Utc.with_ymd_and_hms(y, m, day, 0, 0, 0).unwrap()
    }
    fn item(product: ProductId, min: &str, price: ItemPrice) -> PriceItem {
        PriceItem { id: PriceItemId::new(), product, min_quantity: d(min), price, valid_from: None, valid_to: None }
    }
    fn list(items: Vec<PriceItem>) -> PriceList {
        PriceList {
            id: PriceListId::new(),
            currency: eur(),
            valid_from: None,
            valid_to: None,
            base: Base::ListPrice,
            items,
        }
    }
    fn product(price: &str) -> Product {
        Product { id: ProductId::new(), list_price: d(price), currency: eur() }
    }
    fn lists(ls: &[&PriceList]) -> HashMap<PriceListId, PriceList> {
        ls.iter().map(|l| (l.id, (*l).clone())).collect()
    }
    fn group_assign(g: GroupId, precedence: i32, l: &PriceList, priority: i32) -> GroupAssignment {
        GroupAssignment { group: g, precedence, defined_on: g, list: l.id, priority }
    }

    #[test]
    fn priority_one_beats_priority_two_across_groups() {
        let p = product("100");
        let l1 = list(vec![item(p.id, "1", ItemPrice::Fixed(d("80")))]);
        let l2 = list(vec![item(p.id, "1", ItemPrice::Fixed(d("70")))]);
        let (g1, g2) = (GroupId::new(), GroupId::new());
        let a = Assignments {
            groups: vec![group_assign(g2, 1, &l2, 2), group_assign(g1, 9, &l1, 1)],
            ..Default::default()
        };
        let r = resolve(&p, d("1"), eur(), at(2026, 6, 1), &a, &lists(&[&l1, &l2])).unwrap();
        assert_eq!((r.unit_price, r.step, r.list, r.group), (d("80"), Step::GroupList, Some(l1.id), Some(g1)));
        assert_eq!(r.considered[1].outcome, Outcome::NotReached);
    }

    #[test]
    fn an_individual_list_beats_group_lists_and_the_default() {
        let p = product("100");
        let mine = list(vec![item(p.id, "1", ItemPrice::Fixed(d("95")))]);
        let grp = list(vec![item(p.id, "1", ItemPrice::Fixed(d("50")))]);
        let a = Assignments {
            contact: vec![ContactAssignment { list: mine.id, priority: 5 }],
            groups: vec![group_assign(GroupId::new(), 0, &grp, 1)],
            default: Some(grp.id),
        };
        let r = resolve(&p, d("1"), eur(), at(2026, 6, 1), &a, &lists(&[&mine, &grp])).unwrap();
        assert_eq!((r.step, r.unit_price), (Step::ContactList, d("95")));
    }

    #[test]
    fn volume_tiers_at_nine_and_ten() {
        let p = product("100");
        let l = list(vec![item(p.id, "1", ItemPrice::Fixed(d("10"))), item(p.id, "10", ItemPrice::Fixed(d("9.5")))]);
        let a = Assignments { default: Some(l.id), ..Default::default() };
        let ls = lists(&[&l]);
        assert_eq!(resolve(&p, d("9"), eur(), at(2026, 1, 1), &a, &ls).unwrap().unit_price, d("10"));
        let r = resolve(&p, d("10"), eur(), at(2026, 1, 1), &a, &ls).unwrap();
        assert_eq!((r.unit_price, r.line_total), (d("9.5"), d("95.00")));
    }

    #[test]
    fn a_future_list_is_ignored_today_and_applies_at_its_date() {
        let p = product("100");
        let mut l = list(vec![item(p.id, "1", ItemPrice::Fixed(d("60")))]);
        l.valid_from = Some(at(2027, 1, 1));
        let a = Assignments { default: Some(l.id), ..Default::default() };
        let ls = lists(&[&l]);
        let today = resolve(&p, d("1"), eur(), at(2026, 11, 23), &a, &ls).unwrap();
        assert_eq!((today.step, today.unit_price), (Step::ListPrice, d("100")));
        assert_eq!(today.considered[0].outcome, Outcome::Skipped(SkipReason::NotValidAtDate));
        assert_eq!(resolve(&p, d("1"), eur(), at(2027, 1, 1), &a, &ls).unwrap().unit_price, d("60"));
    }

    #[test]
    fn ten_percent_off_a_base_list() {
        let p = product("100");
        let base = list(vec![item(p.id, "1", ItemPrice::Fixed(d("80")))]);
        let mut derived = list(vec![item(p.id, "1", ItemPrice::PercentOff(d("10")))]);
        derived.base = Base::List(base.id);
        let a =
            Assignments { contact: vec![ContactAssignment { list: derived.id, priority: 1 }], ..Default::default() };
        let r = resolve(&p, d("3"), eur(), at(2026, 1, 1), &a, &lists(&[&base, &derived])).unwrap();
        assert_eq!((r.unit_price, r.line_total), (d("72"), d("216.00")));
    }

    #[test]
    fn currency_mismatch_is_no_price() {
        let p = Product { id: ProductId::new(), list_price: d("10"), currency: Currency::parse("USD").unwrap() };
        let l = list(vec![item(p.id, "1", ItemPrice::Fixed(d("9")))]);
        let a = Assignments { default: Some(l.id), ..Default::default() };
        let r = resolve(&p, d("1"), Currency::parse("CHF").unwrap(), at(2026, 1, 1), &a, &lists(&[&l]));
        assert!(matches!(r, Err(PricingError::NoPrice { .. })));
        // In EUR the list applies.
        assert_eq!(resolve(&p, d("1"), eur(), at(2026, 1, 1), &a, &lists(&[&l])).unwrap().unit_price, d("9"));
    }

    #[test]
    fn the_rounding_example() {
        let p = product("33.335");
        let r = resolve(&p, d("3"), eur(), at(2026, 1, 1), &Assignments::default(), &HashMap::new()).unwrap();
        assert_eq!((r.step, r.line_total), (Step::ListPrice, d("100.01")));
    }

    #[test]
    fn base_cycles_are_detected() {
        let (a, b, c) = (PriceListId::new(), PriceListId::new(), PriceListId::new());
        let bases = HashMap::from([(b, c), (c, a)]);
        assert!(base_creates_cycle(a, b, &bases), "a → b → c → a");
        assert!(base_creates_cycle(a, a, &HashMap::new()));
        assert!(!base_creates_cycle(b, a, &HashMap::new()));
    }

    #[test]
    fn a_cycle_that_slipped_in_prices_nothing_instead_of_looping() {
        let p = Product { id: ProductId::new(), list_price: d("10"), currency: Currency::parse("USD").unwrap() };
        let mut x = list(vec![item(p.id, "1", ItemPrice::PercentOff(d("10")))]);
        let mut y = list(vec![]);
        x.base = Base::List(y.id);
        y.base = Base::List(x.id);
        let a = Assignments { default: Some(x.id), ..Default::default() };
        let r = resolve(&p, d("1"), eur(), at(2026, 1, 1), &a, &lists(&[&x, &y]));
        assert!(
            matches!(r, Err(PricingError::NoPrice { ref considered }) if considered[0].outcome == Outcome::Skipped(SkipReason::NoBasePrice))
        );
    }

    // ---- properties ---------------------------------------------------------------------

    /// A world: one product, up to 6 lists with fixed-price tiers in EUR or USD, assignments.
    fn world() -> impl Strategy<Value = (Product, Vec<PriceList>, Assignments)> {
        let tiers = proptest::collection::vec((1u32..20, 1i64..10_000), 0..4);
        let lists = proptest::collection::vec((tiers, any::<bool>()), 1..7);
        let assigns = proptest::collection::vec((0usize..7, -3i32..3, 0usize..3, -2i32..2, any::<bool>()), 0..10);
        (lists, assigns, proptest::option::of(0usize..7)).prop_map(|(ls, asg, default)| {
            let p = Product {
                id: ProductId::new(),
                list_price: Decimal::new(10_000, 2),
                currency: Currency::parse("EUR").unwrap(),
            };
            let lists: Vec<PriceList> = ls
                .into_iter()
                .map(|(tiers, usd)| PriceList {
                    id: PriceListId::new(),
                    currency: Currency::parse(if usd { "USD" } else { "EUR" }).unwrap(),
                    valid_from: None,
                    valid_to: None,
                    base: Base::ListPrice,
                    items: tiers
                        .into_iter()
                        .map(|(min, cents)| PriceItem {
                            id: PriceItemId::new(),
                            product: p.id,
                            min_quantity: Decimal::from(min),
                            price: ItemPrice::Fixed(Decimal::new(cents, 2)),
                            valid_from: None,
                            valid_to: None,
                        })
                        .collect(),
                })
                .collect();
            let groups: Vec<GroupId> = (0..3).map(|_| GroupId::new()).collect();
            let mut a = Assignments::default();
            for (li, prio, gi, prec, individual) in asg {
                let l = lists[li % lists.len()].id;
                if individual {
                    a.contact.push(ContactAssignment { list: l, priority: prio });
                } else {
                    a.groups.push(GroupAssignment {
                        group: groups[gi],
                        precedence: prec,
                        defined_on: groups[gi],
                        list: l,
                        priority: prio,
                    });
                }
            }
            a.default = default.map(|i| lists[i % lists.len()].id);
            (p, lists, a)
        })
    }

    proptest! {
        /// The answer does not depend on the order the facts arrive in.
        #[test]
        fn independent_of_insertion_order((p, ls, a) in world(), q in 1u32..30, seed in any::<u64>()) {
            let map: HashMap<_, _> = ls.iter().map(|l| (l.id, l.clone())).collect();
            let mut b = a.clone();
            let n = b.groups.len();
            if n > 1 { b.groups.rotate_left((seed as usize) % n); }
            b.contact.reverse();
            let r1 = resolve(&p, Decimal::from(q), eur(), at(2026, 1, 1), &a, &map);
            let r2 = resolve(&p, Decimal::from(q), eur(), at(2026, 1, 1), &b, &map);
            prop_assert_eq!(r1, r2);
        }

        /// The first applicable list in the order always wins; the line total is the rounded
        /// product; a list price is used only when no list applies.
        #[test]
        fn first_applicable_list_wins((p, ls, a) in world(), q in 1u32..30) {
            let map: HashMap<_, _> = ls.iter().map(|l| (l.id, l.clone())).collect();
            let qty = Decimal::from(q);
            let r = resolve(&p, qty, eur(), at(2026, 1, 1), &a, &map).unwrap();
            let applicable = |id: PriceListId| {
                let l = &map[&id];
                l.currency == eur() && l.items.iter().any(|i| i.min_quantity <= qty)
            };
            let expected = order(&a).into_iter().map(|c| c.list).find(|l| applicable(*l));
            prop_assert_eq!(r.list, expected);
            prop_assert_eq!(r.line_total, eur().round(r.unit_price * qty));
            if expected.is_none() { prop_assert_eq!(r.step, Step::ListPrice); }
        }

        /// Tiers are monotone: a larger quantity never selects a smaller tier of the same list.
        #[test]
        fn tiers_are_monotone((p, ls, a) in world(), q1 in 1u32..30, q2 in 1u32..30) {
            let map: HashMap<_, _> = ls.iter().map(|l| (l.id, l.clone())).collect();
            let (lo, hi) = (q1.min(q2), q1.max(q2));
            let r_lo = resolve(&p, Decimal::from(lo), eur(), at(2026, 1, 1), &a, &map).unwrap();
            let r_hi = resolve(&p, Decimal::from(hi), eur(), at(2026, 1, 1), &a, &map).unwrap();
            if r_lo.list.is_some() && r_lo.list == r_hi.list {
                let tier = |r: &Resolution| map[&r.list.unwrap()].items.iter().find(|i| Some(i.id) == r.item).unwrap().min_quantity;
                prop_assert!(tier(&r_lo) <= tier(&r_hi));
            }
        }
    }
}
