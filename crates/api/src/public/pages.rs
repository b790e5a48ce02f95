//! The small pages people see when they follow a link: confirmation, preference centre, the
//! answer to a plain HTML form, and link problems. English and German (`Accept-Language`), no
//! JavaScript, semantic HTML (labels, fieldset/legend, `lang`), the tenant's public name as the
//! heading. `maud` escapes every interpolated value.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cohort_domain::ids::GroupId;
use cohort_store::{ConfirmOutcome, PreferencesRecord, PublicFormRecord};
use maud::{DOCTYPE, Markup, html};

/// The page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    De,
}

impl Lang {
    /// The first of `en`/`de` by the `Accept-Language` weights (RFC 9110 §12.5.4); English when
    /// neither is asked for.
    pub fn from_headers(h: &HeaderMap) -> Lang {
        let raw = h.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("");
        Self::negotiate(raw)
    }

    pub fn negotiate(raw: &str) -> Lang {
        let mut best: Option<(f32, Lang)> = None;
        for (i, part) in raw.split(',').enumerate() {
            let mut it = part.split(';');
            let tag = it.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = it.find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse::<f32>().ok())).unwrap_or(1.0);
            let lang = match tag.split('-').next() {
                Some("de") => Lang::De,
                Some("en") => Lang::En,
                _ => continue,
            };
            // Earlier entries win ties.
            let q = q - i as f32 * 1e-4;
            if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
                best = Some((q, lang));
            }
        }
        best.map(|(_, l)| l).unwrap_or(Lang::En)
    }

    fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
        }
    }

    fn t(self, en: &'static str, de: &'static str) -> &'static str {
        match self {
            Lang::En => en,
            Lang::De => de,
        }
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1a1a1a;background:#fff}\
h1{font-size:1.5rem}fieldset{border:1px solid #767676;padding:1rem}legend{font-weight:600}\
label{display:block;margin:.5rem 0}.desc{display:block;color:#4a4a4a;margin-left:1.75rem;font-size:.95rem}\
button{font-size:1rem;padding:.5rem 1rem;margin:.75rem .5rem 0 0}.note{background:#e8f4ea;border-left:4px solid #1b7a34;padding:.5rem 1rem}\
.problem{background:#fdecea;border-left:4px solid #b3261e;padding:.5rem 1rem}";

fn layout(lang: Lang, organisation: &str, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (title) " – " (organisation) }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                header { p { strong { (organisation) } } }
                main { h1 { (title) } (body) }
            }
        }
    }
}

/// A page answer with the headers every public page carries: no script, no framing, no caching,
/// no referrer (the URL holds the link).
pub fn respond(status: StatusCode, page: Markup) -> Response {
    let mut r = (status, page.into_string()).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::VARY, HeaderValue::from_static("accept, accept-language"));
    r
}

fn gid(g: GroupId) -> String {
    crate::graphql::ids::encode(GroupId::TAG, g.0).to_string()
}

pub fn received(lang: Lang, f: &PublicFormRecord) -> Markup {
    let title = lang.t("Thank you", "Vielen Dank");
    layout(
        lang,
        &f.tenant_name,
        title,
        html! {
            @if f.double_opt_in {
                p { (lang.t(
                    "We have sent you an e-mail. Please follow the link in it to confirm your subscription.",
                    "Wir haben Ihnen eine E-Mail geschickt. Bitte bestätigen Sie Ihre Anmeldung über den Link darin."
                )) }
            } @else {
                p { (lang.t("Your subscription has been received.", "Ihre Anmeldung ist eingegangen.")) }
            }
        },
    )
}

pub fn confirmed(lang: Lang, o: &ConfirmOutcome) -> Markup {
    let title = lang.t("Subscription confirmed", "Anmeldung bestätigt");
    layout(
        lang,
        &o.tenant_name,
        title,
        html! {
            p.note role="status" {
                @if o.already_confirmed {
                    (lang.t("You had already confirmed this subscription.", "Sie hatten diese Anmeldung bereits bestätigt."))
                } @else {
                    (lang.t("Thank you for confirming.", "Danke für Ihre Bestätigung."))
                }
            }
            p { (lang.t("You are subscribed to:", "Sie erhalten:")) }
            ul { @for g in &o.groups { li { (g.public_name) } } }
            p { (lang.t(
                "Every message we send you has a link to change or withdraw this at any time.",
                "Jede Nachricht enthält einen Link, mit dem Sie dies jederzeit ändern oder widerrufen können."
            )) }
        },
    )
}

pub fn preferences(lang: Lang, p: &PreferencesRecord, saved: bool) -> Markup {
    let title = lang.t("Your subscriptions", "Ihre Abonnements");
    layout(
        lang,
        &p.tenant_name,
        title,
        html! {
            @if saved {
                p.note role="status" id="saved" { (lang.t("Your choices have been saved.", "Ihre Auswahl wurde gespeichert.")) }
            }
            form method="post" {
                fieldset {
                    legend { (lang.t("I would like to receive", "Ich möchte erhalten")) }
                    @if p.groups.is_empty() {
                        p { (lang.t("There is nothing to subscribe to at the moment.", "Derzeit gibt es nichts zu abonnieren.")) }
                    }
                    @for g in &p.groups {
                        @let id = format!("g-{}", g.group.id.0.simple());
                        label for=(id) {
                            input type="checkbox" id=(id) name="subscribed" value=(gid(g.group.id)) checked[g.subscribed || g.pending];
                            " " (g.group.public_name)
                            @if g.pending { " " em { (lang.t("(awaiting your confirmation)", "(wartet auf Ihre Bestätigung)")) } }
                        }
                        @if let Some(d) = &g.group.public_description { span.desc { (d) } }
                        @if let Some(t) = &g.consent_text {
                            @if !g.pending {
                                span.desc.consent { (lang.t("By ticking it you agree: ", "Mit dem Häkchen willigen Sie ein: ")) (t.text.body) }
                            }
                        }
                    }
                }
                button type="submit" name="action" value="save" { (lang.t("Save", "Speichern")) }
            }
            form method="post" {
                input type="hidden" name="action" value="withdraw_all";
                button type="submit" { (lang.t("Unsubscribe from everything", "Von allem abmelden")) }
            }
        },
    )
}

/// A plain HTML form's submission that was refused (the reason as the API gives it).
pub fn form_problem(lang: Lang, organisation: &str, detail: &str) -> Markup {
    layout(
        lang,
        organisation,
        lang.t("Please check your entry", "Bitte prüfen Sie Ihre Eingabe"),
        html! {
            p.problem role="alert" { (detail) }
            p { (lang.t("Please go back and correct it.", "Bitte gehen Sie zurück und korrigieren Sie sie.")) }
        },
    )
}

pub fn link_problem(lang: Lang, code: &str) -> Markup {
    let (title, text) = match code {
        "LINK_EXPIRED" => (
            lang.t("This link has expired", "Dieser Link ist abgelaufen"),
            lang.t(
                "Please use the link in a more recent message, or subscribe again.",
                "Bitte verwenden Sie den Link aus einer neueren Nachricht oder melden Sie sich erneut an.",
            ),
        ),
        "LINK_USED" => (
            lang.t("This subscription was withdrawn", "Diese Anmeldung wurde widerrufen"),
            lang.t(
                "You withdrew this consent after the link was sent. To receive messages again, please subscribe again.",
                "Sie haben diese Einwilligung widerrufen. Um wieder Nachrichten zu erhalten, melden Sie sich bitte erneut an.",
            ),
        ),
        _ => (
            lang.t("This link is not valid", "Dieser Link ist ungültig"),
            lang.t(
                "It may have been copied incompletely. Please open the link from the message again.",
                "Möglicherweise wurde er unvollständig kopiert. Bitte öffnen Sie den Link aus der Nachricht erneut.",
            ),
        ),
    };
    layout(lang, "Cohort", title, html! { p.problem role="alert" { (text) } p { small { "Code: " (code) } } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_follow_accept_language() {
        assert_eq!(Lang::negotiate(""), Lang::En);
        assert_eq!(Lang::negotiate("de-AT,de;q=0.9,en;q=0.8"), Lang::De);
        assert_eq!(Lang::negotiate("fr, en;q=0.5, de;q=0.7"), Lang::De);
        assert_eq!(Lang::negotiate("fr"), Lang::En);
        assert_eq!(Lang::negotiate("de;q=0, en"), Lang::En);
    }

    #[test]
    fn interpolated_text_is_escaped() {
        let p = PreferencesRecord {
            tenant_name: "<script>x</script>".into(),
            groups: vec![cohort_store::PreferenceGroupRecord {
                group: cohort_store::PublicGroupRecord {
                    id: GroupId(uuid::Uuid::nil()),
                    public_name: "\"><img src=x>".into(),
                    public_description: None,
                },
                subscribed: true,
                pending: false,
                consent_text: None,
            }],
        };
        let s = preferences(Lang::En, &p, false).into_string();
        assert!(!s.contains("<script>x") && !s.contains("<img src=x>"));
        assert!(s.contains("&lt;script&gt;"));
    }
}
