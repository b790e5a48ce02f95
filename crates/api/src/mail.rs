//! Sending confirmation mails itself (`COHORT_SMTP_URL`, optional): the double opt-in link, in
//! the consent text's language (English or German), from `COHORT_SMTP_FROM` with the tenant's
//! public name. Without SMTP the link goes out only in `consent.confirmation_requested`, for the
//! tenant's own mailer.

use cohort_store::{DueMail, PublicLinks, SystemHandle};
use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;

/// `COHORT_SMTP_URL` and `COHORT_SMTP_FROM`.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    /// `smtp://host:25` (plain), `smtp://user:pass@host:587?tls=required` (STARTTLS),
    /// `smtps://user:pass@host:465` (TLS): lettre's URL format. May hold a password.
    pub url: SecretString,
    /// The sender, e.g. `Cohort <no-reply@example.com>`.
    pub from: String,
}

impl SmtpSettings {
    /// Checks both values (at start-up, before anything is sent).
    pub fn check(&self) -> Result<(), crate::config::ConfigError> {
        self.from
            .parse::<Mailbox>()
            .map_err(|_| crate::config::ConfigError(format!("COHORT_SMTP_FROM: '{}' is not a mailbox", self.from)))?;
        AsyncSmtpTransport::<Tokio1Executor>::from_url(self.url.expose_secret())
            .map(|_| ())
            .map_err(|_| crate::config::ConfigError("COHORT_SMTP_URL is not an smtp:// or smtps:// URL".into()))
    }
}

pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    links: Arc<PublicLinks>,
}

impl Mailer {
    pub fn new(s: &SmtpSettings, links: Arc<PublicLinks>) -> Result<Mailer, crate::config::ConfigError> {
        s.check()?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(s.url.expose_secret())
            .map_err(|_| crate::config::ConfigError("COHORT_SMTP_URL is not an smtp:// or smtps:// URL".into()))?
            .timeout(Some(std::time::Duration::from_secs(20)))
            .build();
        let from = s.from.parse().map_err(|_| crate::config::ConfigError("COHORT_SMTP_FROM".into()))?;
        Ok(Mailer { transport, from, links })
    }

    /// Sends the due confirmation mails (claimed for two minutes each); returns how many were
    /// tried. Failures are recorded and retried with backoff.
    pub async fn send_due(&self, system: &SystemHandle) -> usize {
        let due = match system.claim_confirmation_mails(&self.links, 20, chrono::Duration::minutes(2)).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "claiming confirmation mails failed");
                return 0;
            }
        };
        let n = due.len();
        for m in due {
            let sent = self.send(&m).await;
            if let Err(e) = &sent {
                // The address is personal data: the log names the request, not the recipient.
                tracing::warn!(request = %m.id, error = %e, "a confirmation mail was not accepted; retried later");
            }
            let outcome = sent.map_err(|f| format!("{f}"));
            if let Err(e) = system.finish_confirmation_mail(&m, outcome).await {
                tracing::error!(error = %e, request = %m.id, "recording a confirmation mail failed");
            }
        }
        n
    }

    async fn send(&self, m: &DueMail) -> Result<(), MailFailure> {
        let to: Mailbox = m.to.parse().map_err(|_| MailFailure::NotAMailbox)?;
        let from = Mailbox::new(Some(m.organisation.clone()), self.from.email.clone());
        let (subject, body) = compose(m);
        let msg = Message::builder()
            .from(from)
            .sender(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(MailFailure::Build)?;
        self.transport.send(msg).await.map(|_| ()).map_err(MailFailure::Smtp)
    }
}

/// Why a confirmation mail was not handed over. Its text goes to the operator only: the log and
/// the mail queue's `last_error`, never to a client.
#[derive(Debug, thiserror::Error)]
enum MailFailure {
    #[error("the contact's address is not a mailbox")]
    NotAMailbox,
    #[error("building the message failed: {0}")]
    Build(lettre::error::Error),
    #[error("the SMTP server did not accept it: {0}")]
    Smtp(lettre::transport::smtp::Error),
}

/// (subject, plain-text body) in the consent text's language.
fn compose(m: &DueMail) -> (String, String) {
    let until = m.expires_at.format("%Y-%m-%d %H:%M UTC");
    if m.language.starts_with("de") {
        (
            format!("Bitte bestätigen Sie Ihre Anmeldung – {}", m.organisation),
            format!(
                "Guten Tag,\n\nbitte bestätigen Sie Ihre Anmeldung bei {org} mit diesem Link:\n\n{url}\n\n\
                 Der Link ist bis {until} gültig. Wenn Sie sich nicht angemeldet haben, ignorieren Sie \
                 diese Nachricht: ohne Ihre Bestätigung geschieht nichts.\n",
                org = m.organisation,
                url = m.confirm_url,
            ),
        )
    } else {
        (
            format!("Please confirm your subscription – {}", m.organisation),
            format!(
                "Hello,\n\nplease confirm your subscription to {org} with this link:\n\n{url}\n\n\
                 The link is valid until {until}. If you did not ask for this, ignore this message: \
                 nothing happens without your confirmation.\n",
                org = m.organisation,
                url = m.confirm_url,
            ),
        )
    }
}
