//! Money: exact decimals (never floats), ISO 4217 currencies with their minor units, and the
//! rounding rule of DESIGN §1 (half away from zero, to the currency's minor units).

use crate::error::{DomainError, DomainResult};
use rust_decimal::{Decimal, RoundingStrategy};

/// ISO 4217 codes with their minor units (the currencies a CRM price list plausibly uses; extend
/// as needed). Codes not in the table are refused rather than guessed.
const CURRENCIES: &[(&str, u32)] = &[
    ("AED", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("BGN", 2),
    ("BHD", 3),
    ("BRL", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("CZK", 2),
    ("DKK", 2),
    ("EGP", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("HKD", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("ISK", 0),
    ("JOD", 3),
    ("JPY", 0),
    ("KRW", 0),
    ("KWD", 3),
    ("MAD", 2),
    ("MXN", 2),
    ("MYR", 2),
    ("NOK", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PHP", 2),
    ("PLN", 2),
    ("QAR", 2),
    ("RON", 2),
    ("RSD", 2),
    ("SAR", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("THB", 2),
    ("TND", 3),
    ("TRY", 2),
    ("TWD", 2),
    ("UAH", 2),
    ("USD", 2),
    ("VND", 0),
    ("ZAR", 2),
];

/// An ISO 4217 currency code we know the minor units of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: [u8; 3],
    minor_units: u32,
}

impl Currency {
    pub fn parse(raw: &str) -> DomainResult<Self> {
        let code = raw.trim().to_ascii_uppercase();
        CURRENCIES
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(c, m)| {
                let b = c.as_bytes();
                Currency { code: [b[0], b[1], b[2]], minor_units: *m }
            })
            .ok_or_else(|| {
                DomainError::invalid(
                    "currency",
                    format!("'{}' is not a supported ISO 4217 currency", raw.chars().take(8).collect::<String>()),
                )
            })
    }
    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.code).unwrap_or("XXX")
    }
    pub fn minor_units(&self) -> u32 {
        self.minor_units
    }
    /// Rounds half away from zero to the currency's minor units (2 for EUR: 100.005 → 100.01).
    /// The result carries exactly the minor units' scale, so it prints as money ("720.00").
    pub fn round(&self, amount: Decimal) -> Decimal {
        let mut r = amount.round_dp_with_strategy(self.minor_units, RoundingStrategy::MidpointAwayFromZero);
        r.rescale(self.minor_units);
        r
    }
}

impl std::fmt::Display for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// The most significant digits a decimal input may have (what a `Decimal` holds exactly).
pub const MAX_DECIMAL_DIGITS: usize = 28;
/// The longest decimal text accepted (leading zeros included).
const MAX_DECIMAL_TEXT: usize = 100;

/// Parses a decimal number written in plain notation — the one grammar of every `Decimal`
/// input: an optional `-`, one or more digits, optionally a `.` followed by one or more digits;
/// at most [`MAX_DECIMAL_DIGITS`] significant digits (and as many decimal places). Nothing else:
/// no `+`, no exponent (`1e5`), no digit separators (`1_000`, `1,000`), no leading or trailing
/// dot (`.5`, `5.`), no whitespace inside or around. What it accepts is exactly the value
/// written, never rounded.
pub fn parse_decimal_text(s: &str) -> DomainResult<Decimal> {
    let invalid = || {
        DomainError::invalid(
            "Decimal",
            "must be a decimal number in plain notation such as \"12.50\" or \"-3\" (no exponent, '+', '_', separators or spaces)",
        )
    };
    if s.len() > MAX_DECIMAL_TEXT {
        return Err(invalid());
    }
    let unsigned = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match unsigned.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (unsigned, None),
    };
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.is_some_and(|f| !digits(f)) {
        return Err(invalid());
    }
    let frac = frac.unwrap_or("");
    let significant = format!("{int}{frac}").trim_start_matches('0').len();
    if significant > MAX_DECIMAL_DIGITS || frac.len() > MAX_DECIMAL_DIGITS {
        return Err(DomainError::invalid(
            "Decimal",
            format!("at most {MAX_DECIMAL_DIGITS} significant digits and {MAX_DECIMAL_DIGITS} decimal places"),
        ));
    }
    Decimal::from_str_exact(s).map_err(|_| invalid())
}

/// A price: a non-negative amount, at most 6 decimal places, below 10^12.
pub fn parse_price(field: &'static str, amount: Decimal) -> DomainResult<Decimal> {
    let amount = amount.normalize();
    if amount.is_sign_negative() && !amount.is_zero() {
        return Err(DomainError::invalid(field, "must not be negative"));
    }
    if amount.scale() > 6 {
        return Err(DomainError::invalid(field, "at most 6 decimal places"));
    }
    if amount >= Decimal::from(1_000_000_000_000i64) {
        return Err(DomainError::invalid(field, "is too large"));
    }
    Ok(amount.normalize())
}

/// A quantity: positive, at most 3 decimal places (weights, lengths), below 10^9.
pub fn parse_quantity(amount: Decimal) -> DomainResult<Decimal> {
    let amount = amount.normalize();
    if amount <= Decimal::ZERO {
        return Err(DomainError::invalid("quantity", "must be positive"));
    }
    if amount.scale() > 3 {
        return Err(DomainError::invalid("quantity", "at most 3 decimal places"));
    }
    if amount >= Decimal::from(1_000_000_000i64) {
        return Err(DomainError::invalid("quantity", "is too large"));
    }
    Ok(amount.normalize())
}

/// Fixed-point storage: prices and percentages in millionths, quantities in thousandths. Values
/// are validated to those scales first, so the conversions are exact.
/// `None` when the value does not fit (callers validate amounts first, see [`MAX_AMOUNT`]).
pub fn to_micros(v: Decimal) -> Option<i64> {
    v.checked_mul(Decimal::from(1_000_000))?.trunc().try_into().ok()
}
pub fn from_micros(v: i64) -> Decimal {
    Decimal::new(v, 6).normalize()
}
pub fn to_millis(v: Decimal) -> Option<i64> {
    v.checked_mul(Decimal::from(1_000))?.trunc().try_into().ok()
}

/// Money rounded to its currency, as an integer count of minor units (cents for EUR): how
/// order totals are stored, so sums of many orders stay far inside 64 bits.
pub fn to_minor(v: Decimal, currency: Currency) -> Option<i64> {
    currency.round(v).checked_mul(Decimal::from(10i64.pow(currency.minor_units())))?.trunc().try_into().ok()
}
pub fn from_minor(v: i64, currency: Currency) -> Decimal {
    Decimal::new(v, currency.minor_units())
}

/// The largest price, line total or order total accepted (10^12 units of any currency).
pub fn max_amount() -> Decimal {
    Decimal::from(1_000_000_000_000i64)
}
pub fn from_millis(v: i64) -> Decimal {
    Decimal::new(v, 3).normalize()
}

/// A percentage: 0 to 100, at most 4 decimal places.
pub fn parse_percent(field: &'static str, v: Decimal) -> DomainResult<Decimal> {
    if v < Decimal::ZERO || v > Decimal::ONE_HUNDRED {
        return Err(DomainError::invalid(field, "must be between 0 and 100"));
    }
    if v.scale() > 4 {
        return Err(DomainError::invalid(field, "at most 4 decimal places"));
    }
    Ok(v.normalize())
}

/// unit price × quantity, rounded to the currency.
pub fn line_total(unit_price: Decimal, quantity: Decimal, currency: Currency) -> Decimal {
    currency.round(unit_price * quantity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn the_designs_worked_example() {
        let eur = Currency::parse("eur").unwrap();
        assert_eq!(line_total(d("33.335"), d("3"), eur), d("100.01"));
        assert_eq!(line_total(d("80"), d("9"), eur).to_string(), "720.00", "money prints with its minor units");
        assert_eq!(eur.round(d("0.005")), d("0.01"));
        assert_eq!(eur.round(d("-0.005")), d("-0.01"), "half away from zero, also below zero");
        assert_eq!(eur.round(d("2.675")), d("2.68"), "exact decimals: no binary-float surprise");
    }

    #[test]
    fn minor_units_follow_iso_4217() {
        assert_eq!(Currency::parse("JPY").unwrap().round(d("100.5")), d("101"));
        assert_eq!(Currency::parse("KWD").unwrap().round(d("1.0005")), d("1.001"));
        assert!(Currency::parse("EURO").is_err());
        assert!(Currency::parse("XYZ").is_err());
    }

    #[test]
    fn quantities_and_prices_are_validated() {
        assert!(parse_quantity(d("0")).is_err());
        assert!(parse_quantity(d("-1")).is_err());
        assert!(parse_quantity(d("1.0001")).is_err());
        assert!(parse_price("price", d("-0.01")).is_err());
        assert_eq!(parse_price("price", d("10.500")).unwrap(), d("10.5"));
    }

    #[test]
    fn fixed_point_roundtrips() {
        for v in ["0", "0.000001", "12.5", "999999.999999"] {
            assert_eq!(from_micros(to_micros(d(v)).unwrap()), d(v).normalize());
        }
        assert_eq!(from_millis(to_millis(d("2.125")).unwrap()), d("2.125"));
        assert_eq!(to_micros(d("1e22")), None, "too large is refused, never clamped");
        let eur = Currency::parse("EUR").unwrap();
        assert_eq!(to_minor(d("720.005"), eur), Some(72001));
        assert_eq!(from_minor(72001, eur).to_string(), "720.01");
        assert_eq!(parse_quantity(d("1.0000")).unwrap(), d("1"), "trailing zeros are fine");
    }

    #[test]
    fn decimal_text_is_plain_notation_only() {
        for (text, value) in [
            ("0", "0"),
            ("12", "12"),
            ("12.50", "12.50"),
            ("-3", "-3"),
            ("-0.001", "-0.001"),
            ("007.5", "7.5"),
            ("0.0000000000000000000000000001", "0.0000000000000000000000000001"),
            ("9999999999999999999999999999", "9999999999999999999999999999"),
        ] {
            let v = parse_decimal_text(text).unwrap();
            assert_eq!(v, d(value), "{text}");
            assert_eq!(v.to_string(), value, "{text}: the scale is kept");
        }
        for bad in [
            "",
            "-",
            "+1",
            "1_000",
            "1,000",
            "1e5",
            "1E5",
            "1e-5",
            ".5",
            "5.",
            "-.5",
            "1.2.3",
            " 1",
            "1 ",
            "1 000",
            "\t1",
            "0x10",
            "NaN",
            "inf",
            "--1",
            "1-",
            "١٢",
            "１",
            "12\u{0}",
            "99999999999999999999999999999",
            "0.00000000000000000000000000001",
            "1.0000000000000000000000000000",
        ] {
            assert!(parse_decimal_text(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(parse_decimal_text(&format!("0.{}", "0".repeat(200))).is_err(), "length is bounded");
    }

    proptest! {
        /// Every Decimal of the grammar's precision prints in plain notation and parses back to
        /// itself, scale included.
        #[test]
        fn decimals_roundtrip_through_their_text(mantissa in -(10i128.pow(28) - 1)..10i128.pow(28), scale in 0u32..=28) {
            let x = Decimal::from_i128_with_scale(mantissa, scale);
            let back = parse_decimal_text(&x.to_string()).unwrap();
            prop_assert_eq!(back, x);
            prop_assert_eq!(back.scale(), x.scale());
        }

        /// Exponents, underscores, a plus sign or a leading dot are refused wherever they are.
        #[test]
        fn other_notations_are_refused(a in "[0-9]{0,6}", b in "[0-9]{0,6}", bad in "[eE_+]|\\.") {
            let text = format!("{a}{bad}{b}");
            let plain = bad == "." && !a.is_empty() && !b.is_empty();
            prop_assert_eq!(parse_decimal_text(&text).is_ok(), plain, "{}", text);
            let leading_dot = format!(".{a}{b}");
            prop_assert!(parse_decimal_text(&leading_dot).is_err());
        }
    }

    proptest! {
        /// Rounding is idempotent, never moves more than half a minor unit, and is symmetric.
        #[test]
        fn rounding_is_sound(units in -10_000_000_000i64..10_000_000_000i64, scale in 0u32..7) {
            let eur = Currency::parse("EUR").unwrap();
            let x = Decimal::new(units, scale);
            let r = eur.round(x);
            prop_assert_eq!(eur.round(r), r);
            prop_assert!((r - x).abs() <= Decimal::new(5, 3));
            prop_assert_eq!(eur.round(-x), -r);
            prop_assert!(r.scale() <= 2);
        }
    }
}
