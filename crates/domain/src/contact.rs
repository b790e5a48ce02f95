//! Contacts: persons and companies. Validation of a contact's fields and the derived display and
//! sort names live here, so create and update apply exactly the same rules.

use crate::error::{DomainError, DomainResult};
use crate::text::{Email, Name, Phone, optional_line};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ContactKind {
    Person,
    Company,
}

impl ContactKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ContactKind::Person => "PERSON",
            ContactKind::Company => "COMPANY",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "PERSON" => Some(ContactKind::Person),
            "COMPANY" => Some(ContactKind::Company),
            _ => None,
        }
    }
}

/// At most this many e-mail addresses / phone numbers per contact.
pub const MAX_EMAILS: usize = 10;
pub const MAX_PHONES: usize = 10;

/// The raw, unvalidated fields of a contact as a client sends them.
#[derive(Debug, Clone, Default)]
pub struct ContactFields {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company_name: Option<String>,
    pub emails: Vec<(String, Option<String>)>,
    pub phones: Vec<(String, Option<String>)>,
}

/// A contact's fields after validation, with its derived names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidContact {
    pub kind: ContactKind,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company_name: Option<String>,
    pub display_name: String,
    /// What `orderBy: NAME` sorts on (then id): a person's last name (first name when there is no
    /// last name), a company's name; lower-cased so the order is case-insensitive and identical on
    /// every database.
    pub sort_name: String,
    pub emails: Vec<(Email, Option<String>)>,
    pub phones: Vec<(Phone, Option<String>)>,
}

fn opt_name(field: &'static str, v: &Option<String>) -> DomainResult<Option<Name>> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => Name::parse(field, s).map(Some),
    }
}

/// The longest e-mail / phone label.
pub const MAX_LABEL_CHARS: usize = 50;

fn label(field: &'static str, l: &Option<String>) -> DomainResult<Option<String>> {
    optional_line(field, l.as_deref(), MAX_LABEL_CHARS)
}

impl ValidContact {
    pub fn validate(kind: ContactKind, f: &ContactFields) -> DomainResult<Self> {
        let first = opt_name("firstName", &f.first_name)?;
        let last = opt_name("lastName", &f.last_name)?;
        let company = opt_name("companyName", &f.company_name)?;
        let (display_name, sort_name) = match kind {
            ContactKind::Person => {
                if company.is_some() {
                    return Err(DomainError::invalid(
                        "companyName",
                        "a person has no company name; link the person to a company contact instead",
                    ));
                }
                match (&first, &last) {
                    (None, None) => {
                        return Err(DomainError::invalid("lastName", "a person needs a first or a last name"));
                    }
                    (Some(fst), None) => (fst.as_str().to_owned(), fst.as_str().to_lowercase()),
                    (None, Some(l)) => (l.as_str().to_owned(), l.as_str().to_lowercase()),
                    (Some(fst), Some(l)) => (format!("{} {}", fst.as_str(), l.as_str()), l.as_str().to_lowercase()),
                }
            }
            ContactKind::Company => {
                if first.is_some() || last.is_some() {
                    return Err(DomainError::invalid("firstName", "a company has no first or last name"));
                }
                let c = company.as_ref().ok_or_else(|| DomainError::invalid("companyName", "must not be empty"))?;
                (c.as_str().to_owned(), c.as_str().to_lowercase())
            }
        };
        if f.emails.len() > MAX_EMAILS {
            return Err(DomainError::invalid("emails", format!("at most {MAX_EMAILS} e-mail addresses")));
        }
        if f.phones.len() > MAX_PHONES {
            return Err(DomainError::invalid("phones", format!("at most {MAX_PHONES} phone numbers")));
        }
        let mut emails = Vec::with_capacity(f.emails.len());
        for (addr, l) in &f.emails {
            let e = Email::parse(addr)?;
            if emails.iter().any(|(x, _): &(Email, _)| x == &e) {
                return Err(DomainError::invalid("emails", format!("'{}' is listed twice", e.as_str())));
            }
            emails.push((e, label("emails", l)?));
        }
        let phones = f
            .phones
            .iter()
            .map(|(p, l)| Ok((Phone::parse(p)?, label("phones", l)?)))
            .collect::<DomainResult<Vec<_>>>()?;
        Ok(ValidContact {
            kind,
            first_name: first.map(Name::into_string),
            last_name: last.map(Name::into_string),
            company_name: company.map(Name::into_string),
            display_name,
            sort_name,
            emails,
            phones,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(first: &str, last: &str) -> ContactFields {
        ContactFields { first_name: Some(first.into()), last_name: Some(last.into()), ..Default::default() }
    }

    #[test]
    fn person_names_derive_display_and_sort() {
        let c = ValidContact::validate(ContactKind::Person, &person(" Anna ", "Zimmer")).unwrap();
        assert_eq!(c.display_name, "Anna Zimmer");
        assert_eq!(c.sort_name, "zimmer");
    }

    #[test]
    fn a_person_needs_a_name_and_a_company_its_name() {
        assert!(ValidContact::validate(ContactKind::Person, &person(" ", "")).is_err());
        assert!(ValidContact::validate(ContactKind::Company, &ContactFields::default()).is_err());
        let co = ContactFields { company_name: Some("Acme GmbH".into()), ..Default::default() };
        assert_eq!(ValidContact::validate(ContactKind::Company, &co).unwrap().sort_name, "acme gmbh");
        assert!(ValidContact::validate(ContactKind::Person, &co).is_err());
    }

    #[test]
    fn emails_are_validated_and_deduplicated() {
        let mut f = person("A", "B");
        f.emails = vec![("a@x.io".into(), None), ("A@X.io".into(), None)];
        assert!(ValidContact::validate(ContactKind::Person, &f).is_err());
        f.emails = vec![("not-an-email".into(), None)];
        assert!(ValidContact::validate(ContactKind::Person, &f).is_err());
    }
}
