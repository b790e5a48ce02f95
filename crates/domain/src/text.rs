//! Validated text values. Each newtype has a `parse` constructor; holding one proves the rule.
//!
//! Every text a client sends (names, labels, descriptions, notes, keys, search terms) passes
//! [`check_chars`] here, so one rule decides which characters are text on every database:
//! control characters (C0 including NUL, DEL, C1) are refused — PostgreSQL cannot store NUL at
//! all, and SQLite would store what PostgreSQL refuses. Multi-line free text (descriptions,
//! notes, reasons) may contain line feeds and tabs; single-line values (names, labels, SKUs,
//! keys, search terms) may not. Lone surrogates cannot occur in a Rust `str`.

use crate::error::{DomainError, DomainResult};

/// Whether a text value may span lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// Names, labels, keys, search terms: no control character at all.
    Single,
    /// Descriptions, notes, reasons: `\n` and `\t` allowed, every other control refused.
    Multi,
}

/// The one character rule of every text input: no control characters (`char::is_control`: C0
/// with NUL, DEL, C1), except line feed and tab in [`Lines::Multi`] text.
pub fn check_chars(field: &'static str, s: &str, lines: Lines) -> DomainResult<()> {
    let allowed = |c: char| lines == Lines::Multi && (c == '\n' || c == '\t');
    if s.chars().any(|c| c.is_control() && !allowed(c)) {
        return Err(DomainError::invalid(
            field,
            match lines {
                Lines::Single => "must not contain control characters",
                Lines::Multi => "must not contain control characters other than line feeds and tabs",
            },
        ));
    }
    Ok(())
}

/// A required, human-entered name (of a contact, address book, user group, …): trimmed, 1 to 200
/// characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name(String);

impl Name {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(field: &'static str, raw: &str) -> DomainResult<Self> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(DomainError::invalid(field, "must not be empty"));
        }
        if s.chars().count() > Self::MAX_CHARS {
            return Err(DomainError::invalid(field, format!("must be at most {} characters", Self::MAX_CHARS)));
        }
        check_chars(field, s, Lines::Single)?;
        Ok(Name(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn into_string(self) -> String {
        self.0
    }
}

/// An optional free text (descriptions, notes, reasons): trimmed; empty becomes `None`; at most
/// 2,000 characters; may span lines ([`Lines::Multi`]).
pub fn optional_text(field: &'static str, raw: Option<&str>) -> DomainResult<Option<String>> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) if s.chars().count() > 2000 => Err(DomainError::invalid(field, "must be at most 2000 characters")),
        Some(s) => {
            check_chars(field, s, Lines::Multi)?;
            Ok(Some(s.to_owned()))
        }
    }
}

/// An optional one-line text (an e-mail or phone label): trimmed; empty becomes `None`; at most
/// `max_chars` characters; no control characters.
pub fn optional_line(field: &'static str, raw: Option<&str>, max_chars: usize) -> DomainResult<Option<String>> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) if s.chars().count() > max_chars => {
            Err(DomainError::invalid(field, format!("must be at most {max_chars} characters")))
        }
        Some(s) => {
            check_chars(field, s, Lines::Single)?;
            Ok(Some(s.to_owned()))
        }
    }
}

/// An identifier a client names things by (a SKU, a business-status key): trimmed, 1 to
/// `max_chars` characters, no whitespace and no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key(String);

impl Key {
    pub fn parse(field: &'static str, raw: &str, max_chars: usize) -> DomainResult<Self> {
        let s = raw.trim();
        check_chars(field, s, Lines::Single)?;
        if s.is_empty() || s.chars().count() > max_chars || s.chars().any(char::is_whitespace) {
            return Err(DomainError::invalid(field, format!("must be 1 to {max_chars} characters without spaces")));
        }
        Ok(Key(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn into_string(self) -> String {
        self.0
    }
}

/// The longest SKU (`Key` rules).
pub const MAX_SKU_CHARS: usize = 64;
/// The longest business-status key (`Key` rules).
pub const MAX_STATUS_KEY_CHARS: usize = 64;

/// An e-mail address: a pragmatic check (one `@`, a non-empty local part, a dotted domain
/// without spaces), normalised to lower case so lookups and prefix search are case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> DomainResult<Self> {
        let s = raw.trim();
        let invalid = || DomainError::invalid("emails", format!("'{}' is not a valid e-mail address", truncate(s, 80)));
        if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = s.split_once('@').ok_or_else(invalid)?;
        if local.is_empty()
            || local.len() > 64
            || domain.contains('@')
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
        {
            return Err(invalid());
        }
        Ok(Email(s.to_lowercase()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A phone number: digits with optional leading `+` and the usual separators; 3 to 20 digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> DomainResult<Self> {
        let s = raw.trim();
        let digits = s.chars().filter(char::is_ascii_digit).count();
        let ok_chars =
            s.char_indices().all(|(i, c)| c.is_ascii_digit() || " -()/.".contains(c) || (c == '+' && i == 0));
        if !ok_chars || !(3..=20).contains(&digits) {
            return Err(DomainError::invalid("phones", format!("'{}' is not a valid phone number", truncate(s, 40))));
        }
        Ok(Phone(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A search term for prefix search (the `search` argument or filter field): trimmed,
/// lower-cased, 1 to 100 characters, no control characters. Blank means no search.
pub fn search_prefix(raw: &str) -> DomainResult<Option<String>> {
    let s = raw.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if s.chars().count() > 100 {
        return Err(DomainError::invalid("search", "must be at most 100 characters"));
    }
    check_chars("search", s, Lines::Single)?;
    Ok(Some(s.to_lowercase()))
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_are_trimmed_and_required() {
        assert_eq!(Name::parse("name", "  Acme ").unwrap().as_str(), "Acme");
        assert!(Name::parse("name", "   ").is_err());
        assert!(Name::parse("name", "a\u{0}b").is_err());
        assert!(Name::parse("name", &"x".repeat(201)).is_err());
    }

    #[test]
    fn emails() {
        assert_eq!(Email::parse(" Anna@Example.COM ").unwrap().as_str(), "anna@example.com");
        for bad in
            ["", "anna", "anna@", "@example.com", "anna@example", "a b@example.com", "a@@b.com", "a@b..com", "a@.b.com"]
        {
            assert!(Email::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn phones() {
        assert!(Phone::parse("+49 30 1234567").is_ok());
        assert!(Phone::parse("(030) 123-45").is_ok());
        assert!(Phone::parse("12").is_err());
        assert!(Phone::parse("call me").is_err());
        assert!(Phone::parse("1+2345").is_err());
    }

    #[test]
    fn control_characters_are_refused_except_line_breaks_in_free_text() {
        for bad in ["a\u{0}b", "a\u{1}b", "a\u{1b}[31mb", "a\u{7f}b", "a\u{85}b", "a\u{9f}b", "a\rb"] {
            assert!(Name::parse("name", bad).is_err(), "{bad:?}");
            assert!(optional_line("label", Some(bad), 50).is_err(), "{bad:?}");
            assert!(Key::parse("sku", bad, 64).is_err(), "{bad:?}");
            assert!(search_prefix(bad).is_err(), "{bad:?}");
            assert!(optional_text("description", Some(bad)).is_err(), "{bad:?}");
        }
        for multi in ["line one\nline two", "a\tb"] {
            assert_eq!(optional_text("description", Some(multi)).unwrap().as_deref(), Some(multi));
            assert!(Name::parse("name", multi).is_err(), "{multi:?}");
            assert!(optional_line("label", Some(multi), 50).is_err(), "{multi:?}");
            assert!(search_prefix(multi).is_err(), "{multi:?}");
        }
        let e = optional_text("note", Some("a\u{0}")).unwrap_err();
        assert_eq!(e.field(), "note", "the error names the field");
        // Surrounding whitespace (line breaks included) is trimmed, as before.
        assert_eq!(Name::parse("name", "\n Anna \t").unwrap().as_str(), "Anna");
        // Mixed scripts, right-to-left text, combining marks and emoji are text.
        for ok in ["Zoë", "Ζωή", "مرحبا", "שלום", "e\u{301}", "👩\u{200d}💻", "李"] {
            assert_eq!(Name::parse("name", ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn keys() {
        assert_eq!(Key::parse("sku", " A-1 ", 64).unwrap().as_str(), "A-1");
        assert!(Key::parse("sku", "", 64).is_err());
        assert!(Key::parse("sku", "a b", 64).is_err());
        assert!(Key::parse("sku", &"x".repeat(65), 64).is_err());
        assert!(Key::parse("sku", &"é".repeat(64), 64).is_ok(), "characters, not bytes");
    }

    proptest! {
        /// Whatever is accepted holds no character a database could refuse or reinterpret.
        #[test]
        fn accepted_text_has_no_control_characters(s in "(\\PC|[\u{0}-\u{1f}\u{7f}-\u{9f}]){0,40}") {
            let single_ok = |t: &str| !t.chars().any(char::is_control);
            if let Ok(n) = Name::parse("name", &s) { prop_assert!(single_ok(n.as_str())); }
            if let Ok(Some(l)) = optional_line("label", Some(&s), 50) { prop_assert!(single_ok(&l)); }
            if let Ok(k) = Key::parse("sku", &s, 64) { prop_assert!(single_ok(k.as_str())); }
            if let Ok(Some(t)) = search_prefix(&s) { prop_assert!(single_ok(&t)); }
            if let Ok(Some(t)) = optional_text("note", Some(&s)) {
                prop_assert!(!t.chars().any(|c| c.is_control() && c != '\n' && c != '\t'));
            }
        }

        #[test]
        fn parsed_names_are_never_blank_or_padded(s in ".{0,300}") {
            if let Ok(n) = Name::parse("name", &s) {
                prop_assert!(!n.as_str().is_empty());
                prop_assert_eq!(n.as_str(), n.as_str().trim());
                prop_assert!(n.as_str().chars().count() <= Name::MAX_CHARS);
            }
        }

        #[test]
        fn parsed_emails_are_lowercase_with_one_at(s in "[a-zA-Z0-9.@_+-]{0,40}") {
            if let Ok(e) = Email::parse(&s) {
                prop_assert_eq!(e.as_str().matches('@').count(), 1);
                prop_assert_eq!(e.as_str().to_lowercase(), e.as_str());
            }
        }
    }
}
