//! Validated text values. Each newtype has a `parse` constructor; holding one proves the rule.

use crate::error::{DomainError, DomainResult};

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
        if s.chars().any(char::is_control) {
            return Err(DomainError::invalid(field, "must not contain control characters"));
        }
        Ok(Name(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn into_string(self) -> String {
        self.0
    }
}

/// An optional free text (descriptions, notes): trimmed; empty becomes `None`; at most 2,000
/// characters.
pub fn optional_text(field: &'static str, raw: Option<&str>) -> DomainResult<Option<String>> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) if s.chars().count() > 2000 => Err(DomainError::invalid(field, "must be at most 2000 characters")),
        Some(s) => Ok(Some(s.to_owned())),
    }
}

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

/// A search term for prefix search: trimmed, lower-cased, 1 to 100 characters.
pub fn search_prefix(raw: &str) -> DomainResult<Option<String>> {
    let s = raw.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if s.chars().count() > 100 {
        return Err(DomainError::invalid("search", "must be at most 100 characters"));
    }
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

    proptest! {
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
