//! Consent for public groups (GDPR Art. 7): the wording people see, the forms that ask for it, and
//! the vocabulary of the append-only consent log.
//!
//! Pure rules only: validating a consent text and hashing its canonical bytes, validating a web
//! form's definition (fields, origins, redirect URLs) and a submission against it, and deriving a
//! contact's consent status for a group from the log's latest entry.

use crate::error::{DomainError, DomainResult};
use crate::text::{Email, Lines, Name, Phone, check_chars, optional_line};
use sha2::{Digest, Sha256};
use std::fmt::Write;

/// The longest consent wording (characters).
pub const MAX_TEXT_CHARS: usize = 20_000;
/// At most this many groups offered by one form, and origins allowed for it.
pub const MAX_FORM_GROUPS: usize = 50;
pub const MAX_FORM_ORIGINS: usize = 20;

/// What a consent entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsentAction {
    /// The person expressed consent (awaiting confirmation when the form asks for double opt-in).
    Given,
    /// The person confirmed through the double opt-in link.
    Confirmed,
    /// The person (or an agent on their behalf) withdrew consent.
    Withdrawn,
}

/// How a consent entry came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsentChannel {
    WebForm,
    PreferenceLink,
    OneClickUnsubscribe,
    AgentOnBehalf,
    Import,
    Api,
}

/// A contact's standing for one public group, derived from the latest consent entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsentStatus {
    /// Consent in force: confirmed through double opt-in, or given where no confirmation is asked
    /// (a single opt-in form, an agent taking consent by phone, an import with evidence).
    Confirmed,
    /// Given through a double opt-in form; the confirmation link has not been followed yet.
    Pending,
    Withdrawn,
    /// No consent on record (e.g. a member an agent assigned without asking).
    None,
}

macro_rules! text_enum {
    ($t:ident { $($v:ident => $s:literal,)* }) => {
        impl $t {
            pub const ALL: &'static [$t] = &[$($t::$v,)*];
            pub fn as_str(self) -> &'static str {
                match self { $($t::$v => $s,)* }
            }
            pub fn parse(s: &str) -> Option<$t> {
                match s { $($s => Some($t::$v),)* _ => None }
            }
        }
    };
}

text_enum!(ConsentAction { Given => "GIVEN", Confirmed => "CONFIRMED", Withdrawn => "WITHDRAWN", });
text_enum!(ConsentChannel {
    WebForm => "WEB_FORM",
    PreferenceLink => "PREFERENCE_LINK",
    OneClickUnsubscribe => "ONE_CLICK_UNSUBSCRIBE",
    AgentOnBehalf => "AGENT_ON_BEHALF",
    Import => "IMPORT",
    Api => "API",
});
text_enum!(ConsentStatus { Confirmed => "CONFIRMED", Pending => "PENDING", Withdrawn => "WITHDRAWN", None => "NONE", });

impl ConsentStatus {
    /// The status after an entry: `awaiting_confirmation` is true for a `GIVEN` entry that came
    /// with a double opt-in request.
    pub fn after(action: ConsentAction, awaiting_confirmation: bool) -> ConsentStatus {
        match action {
            ConsentAction::Given if awaiting_confirmation => ConsentStatus::Pending,
            ConsentAction::Given | ConsentAction::Confirmed => ConsentStatus::Confirmed,
            ConsentAction::Withdrawn => ConsentStatus::Withdrawn,
        }
    }
}

/// A consent text's purpose: a key such as `newsletter` or `travel-offers` (lower-case letters,
/// digits, `-`, `_`; 1 to 64).
pub fn parse_purpose(raw: &str) -> DomainResult<String> {
    let s = raw.trim();
    if s.is_empty()
        || s.len() > 64
        || !s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        return Err(DomainError::invalid("purpose", "must be 1 to 64 lower-case letters, digits, '-' or '_'"));
    }
    Ok(s.to_owned())
}

/// A language tag (BCP 47, the common shape): `en`, `de`, `de-AT`, `pt-BR`; normalised to a
/// lower-case language and an upper-case region.
pub fn parse_language(raw: &str) -> DomainResult<String> {
    let s = raw.trim();
    let bad = || DomainError::invalid("language", "must be a language tag such as en, de or de-AT");
    let mut parts = s.split('-');
    let lang = parts.next().ok_or_else(bad)?;
    if !(2..=3).contains(&lang.len()) || !lang.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(bad());
    }
    let mut out = lang.to_ascii_lowercase();
    for p in parts {
        if p.is_empty() || p.len() > 8 || !p.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(bad());
        }
        out.push('-');
        if p.len() == 2 { out.push_str(&p.to_ascii_uppercase()) } else { out.push_str(p) }
    }
    Ok(out)
}

/// The canonical form of a consent wording, which is what is stored, shown and hashed: line
/// endings as `\n`, trailing spaces removed from every line, no leading or trailing blank lines.
/// Refused when empty, longer than [`MAX_TEXT_CHARS`] or containing control characters.
pub fn canonical_text(raw: &str) -> DomainResult<String> {
    let unified = raw.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = unified.split('\n').map(str::trim_end).collect();
    let text = lines.join("\n").trim_matches('\n').to_owned();
    if text.trim().is_empty() {
        return Err(DomainError::invalid("body", "must not be empty"));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(DomainError::invalid("body", format!("must be at most {MAX_TEXT_CHARS} characters")));
    }
    check_chars("body", &text, Lines::Multi)?;
    Ok(text)
}

/// SHA-256 of the canonical text's UTF-8 bytes, lower-case hex: what a consent entry cites, so
/// the exact wording a person saw can be proven later.
pub fn text_sha256(canonical: &str) -> String {
    let digest = Sha256::digest(canonical.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A field a web form asks for. The e-mail is always asked and always required.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FormField {
    Email,
    FirstName,
    LastName,
    Phone,
}

text_enum!(FormField { Email => "EMAIL", FirstName => "FIRST_NAME", LastName => "LAST_NAME", Phone => "PHONE", });

impl FormField {
    /// The name of the field in a submission (JSON key and HTML input name).
    pub fn input_name(self) -> &'static str {
        match self {
            FormField::Email => "email",
            FormField::FirstName => "firstName",
            FormField::LastName => "lastName",
            FormField::Phone => "phone",
        }
    }
}

/// One field of a form and whether it must be filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    pub field: FormField,
    pub required: bool,
}

/// The fields of a form: e-mail first and required (added when missing), each field once.
pub fn normalise_fields(fields: &[FieldSpec]) -> DomainResult<Vec<FieldSpec>> {
    let mut out = vec![FieldSpec { field: FormField::Email, required: true }];
    for f in fields {
        if f.field == FormField::Email {
            if !f.required {
                return Err(DomainError::invalid("fields", "the e-mail address is always required"));
            }
            continue;
        }
        if out.iter().any(|o| o.field == f.field) {
            return Err(DomainError::invalid("fields", format!("{} is listed twice", f.field.as_str())));
        }
        out.push(*f);
    }
    Ok(out)
}

/// An origin a form may be posted from (CORS): `https://host[:port]` (or `http://` for localhost
/// and 127.0.0.1, for development), no path, query or credentials. Normalised as browsers send
/// it in the `Origin` header.
pub fn parse_origin(raw: &str) -> DomainResult<String> {
    let s = raw.trim();
    let bad = |why: &str| {
        DomainError::invalid("allowedOrigins", format!("'{}': {why}", s.chars().take(80).collect::<String>()))
    };
    let u = url::Url::parse(s).map_err(|_| bad("not a URL"))?;
    let host = u.host_str().ok_or_else(|| bad("no host"))?;
    check_scheme(&u, host).map_err(&bad)?;
    if !u.username().is_empty() || u.password().is_some() || u.query().is_some() || u.fragment().is_some() {
        return Err(bad("an origin has no credentials, query or fragment"));
    }
    if u.path() != "/" && !u.path().is_empty() {
        return Err(bad("an origin has no path"));
    }
    Ok(u.origin().ascii_serialization())
}

/// A redirect target after a submission or confirmation: an absolute `https` URL (or `http` on
/// localhost), without credentials.
pub fn parse_redirect(field: &'static str, raw: &str) -> DomainResult<String> {
    let s = raw.trim();
    let bad = |why: &str| DomainError::invalid(field, format!("'{}': {why}", s.chars().take(80).collect::<String>()));
    if s.chars().count() > 2000 {
        return Err(bad("longer than 2000 characters"));
    }
    let u = url::Url::parse(s).map_err(|_| bad("not an absolute URL"))?;
    let host = u.host_str().ok_or_else(|| bad("no host"))?;
    check_scheme(&u, host).map_err(&bad)?;
    if !u.username().is_empty() || u.password().is_some() {
        return Err(bad("must not carry credentials"));
    }
    Ok(u.to_string())
}

fn check_scheme(u: &url::Url, host: &str) -> Result<(), &'static str> {
    let local = host == "localhost" || host == "127.0.0.1" || host == "[::1]";
    match u.scheme() {
        "https" => Ok(()),
        "http" if local => Ok(()),
        _ => Err("must use https (http only for localhost)"),
    }
}

/// The values a person sent through a form, before validation.
#[derive(Debug, Clone, Default)]
pub struct RawSubmission {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
}

/// A submission that passed its form's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidSubmission {
    pub email: Email,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<Phone>,
}

impl ValidSubmission {
    /// Checks `raw` against the form's `fields`: required ones present, values valid, and no
    /// value for a field the form does not ask (it would be stored without the person knowing).
    pub fn validate(raw: &RawSubmission, fields: &[FieldSpec]) -> DomainResult<ValidSubmission> {
        let asked = |f: FormField| fields.iter().find(|s| s.field == f);
        let blank = |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
        let take = |f: FormField, v: &Option<String>| -> DomainResult<Option<String>> {
            let v = blank(v);
            match (asked(f), v) {
                (None, Some(_)) => Err(DomainError::invalid(f.input_name(), "this form does not ask for it")),
                (Some(s), None) if s.required => Err(DomainError::invalid(f.input_name(), "is required")),
                (_, v) => Ok(v),
            }
        };
        let email = take(FormField::Email, &raw.email)?.ok_or_else(|| DomainError::invalid("email", "is required"))?;
        let email = Email::parse(&email).map_err(|_| DomainError::invalid("email", "is not a valid e-mail address"))?;
        let first_name = match take(FormField::FirstName, &raw.first_name)? {
            Some(n) => Some(Name::parse("firstName", &n)?.into_string()),
            None => None,
        };
        let last_name = match take(FormField::LastName, &raw.last_name)? {
            Some(n) => Some(Name::parse("lastName", &n)?.into_string()),
            None => None,
        };
        let phone = match take(FormField::Phone, &raw.phone)? {
            Some(p) => {
                Some(Phone::parse(&p).map_err(|_| DomainError::invalid("phone", "is not a valid phone number"))?)
            }
            None => None,
        };
        Ok(ValidSubmission { email, first_name, last_name, phone })
    }
}

/// A web form's name, optional title and button label (shown on the public page).
pub fn form_label(field: &'static str, raw: Option<&str>) -> DomainResult<Option<String>> {
    optional_line(field, raw, 200)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_text_is_stable_and_hashed() {
        let a = canonical_text("I agree.  \r\nSend me offers.\r\n\r\n").unwrap();
        let b = canonical_text("\nI agree.\nSend me offers.").unwrap();
        assert_eq!(a, "I agree.\nSend me offers.");
        assert_eq!(a, b);
        assert_eq!(text_sha256(&a), text_sha256(&b));
        // Known vector: sha256("abc").
        assert_eq!(text_sha256("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(canonical_text("  \n ").is_err());
        assert!(canonical_text("a\u{0}b").is_err());
    }

    #[test]
    fn purposes_and_languages() {
        assert_eq!(parse_purpose(" travel-offers ").unwrap(), "travel-offers");
        assert!(parse_purpose("Travel Offers").is_err());
        assert_eq!(parse_language("DE-at").unwrap(), "de-AT");
        assert_eq!(parse_language("en").unwrap(), "en");
        assert!(parse_language("english!").is_err());
        assert!(parse_language("").is_err());
    }

    #[test]
    fn origins_and_redirects() {
        assert_eq!(parse_origin("https://Travel.Example").unwrap(), "https://travel.example");
        assert_eq!(parse_origin("http://localhost:5173").unwrap(), "http://localhost:5173");
        assert!(parse_origin("http://travel.example").is_err());
        assert!(parse_origin("https://travel.example/form").is_err());
        assert!(parse_origin("https://u:p@travel.example").is_err());
        assert!(parse_origin("javascript:alert(1)").is_err());
        assert!(parse_redirect("successUrl", "https://travel.example/thanks?x=1").is_ok());
        assert!(parse_redirect("successUrl", "/thanks").is_err());
        assert!(parse_redirect("successUrl", "ftp://travel.example").is_err());
    }

    #[test]
    fn fields_put_the_email_first() {
        let f = normalise_fields(&[FieldSpec { field: FormField::FirstName, required: false }]).unwrap();
        assert_eq!(f[0], FieldSpec { field: FormField::Email, required: true });
        assert_eq!(f.len(), 2);
        assert!(normalise_fields(&[FieldSpec { field: FormField::Email, required: false }]).is_err());
        let twice = FieldSpec { field: FormField::Phone, required: true };
        assert!(normalise_fields(&[twice, twice]).is_err());
    }

    #[test]
    fn submissions_follow_their_form() {
        let fields = normalise_fields(&[FieldSpec { field: FormField::FirstName, required: true }]).unwrap();
        let raw = RawSubmission {
            email: Some(" Eva@Example.COM ".into()),
            first_name: Some("Eva".into()),
            ..Default::default()
        };
        let v = ValidSubmission::validate(&raw, &fields).unwrap();
        assert_eq!(v.email.as_str(), "eva@example.com");
        assert_eq!(v.first_name.as_deref(), Some("Eva"));
        let missing = RawSubmission { email: Some("eva@example.com".into()), ..Default::default() };
        assert_eq!(ValidSubmission::validate(&missing, &fields).unwrap_err().field(), "firstName");
        let unasked = RawSubmission { phone: Some("+420 123 456".into()), ..raw.clone() };
        assert_eq!(ValidSubmission::validate(&unasked, &fields).unwrap_err().field(), "phone");
        let bad = RawSubmission { email: Some("nope".into()), ..raw };
        assert_eq!(ValidSubmission::validate(&bad, &fields).unwrap_err().field(), "email");
    }

    #[test]
    fn status_follows_the_latest_entry() {
        assert_eq!(ConsentStatus::after(ConsentAction::Given, true), ConsentStatus::Pending);
        assert_eq!(ConsentStatus::after(ConsentAction::Given, false), ConsentStatus::Confirmed);
        assert_eq!(ConsentStatus::after(ConsentAction::Confirmed, false), ConsentStatus::Confirmed);
        assert_eq!(ConsentStatus::after(ConsentAction::Withdrawn, true), ConsentStatus::Withdrawn);
        for c in ConsentChannel::ALL {
            assert_eq!(ConsentChannel::parse(c.as_str()), Some(*c));
        }
    }
}
