//! Public groups and consent (DESIGN §1 "Consent"): consent texts, web forms, the append-only
//! consent log and the consent state of each (group, contact), for signed-in users.
//!
//! - Consent texts are for admins to write and for every user of the tenant to read; a text is
//!   immutable (editing one adds the next version).
//! - A web form is configured by admins or by users with `MANAGE` on its intake book; editing
//!   its definition adds a version, and submissions record the version they used.
//! - The consent log of a contact exists for viewers who can see the contact (as everything about
//!   a contact); the group an entry names is shown only where the viewer can see the group.
//! - The public side — forms, submissions, confirmations, the preference centre — is
//!   [`public::PublicDoor`], which acts on one tenant through one signed link or form key.

pub mod links;
pub(crate) mod log;
pub mod mail;
pub mod public;

use crate::access::handle::DataHandle;
use crate::access::viewer::Viewer;
use crate::audit::{Changes, json_or_text};
use crate::core::dialect::RowLock;
use crate::core::sql::Sql;
use crate::core::uow::{LockedTable, UnitOfWork};
use crate::core::visibility::{book_level, book_levels};
use crate::entities::{
    consent_entry, consent_text, group, membership, tenant, tenant_settings, web_form, web_form_group, web_form_version,
};
use crate::error::{StoreError, StoreResult};
use crate::events::{EventType, Subject, SubjectKind};
use crate::groups::membership::join_with_consent;
use chrono::{DateTime, Utc};
use cohort_domain::AccessLevel;
use cohort_domain::consent::{
    ConsentAction, ConsentChannel, ConsentStatus, FieldSpec, FormField, MAX_FORM_GROUPS, MAX_FORM_ORIGINS,
    canonical_text, form_label, normalise_fields, parse_language, parse_origin, parse_purpose, parse_redirect,
    text_sha256,
};
use cohort_domain::group::MembershipSource;
use cohort_domain::ids::{AddressBookId, ConsentEntryId, ConsentTextId, ContactId, GroupId, UserId, WebFormId};
use cohort_domain::sequence::Chain;
use cohort_domain::text::{Name, optional_text};
use links::{LinkClaims, LinkKeys, LinkPurpose};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use std::collections::{BTreeMap, HashMap, HashSet};
use uuid::Uuid;

/// Where public links point and how long they live (`COHORT_PUBLIC_BASE_URL`,
/// `COHORT_PUBLIC_LINK_KEYS`, `COHORT_CONFIRM_LINK_TTL`, `COHORT_PREFERENCE_LINK_TTL`).
#[derive(Debug)]
pub struct PublicLinks {
    pub keys: LinkKeys,
    /// Absolute URL of this service as the public reaches it, without a trailing slash.
    pub base_url: String,
    pub confirm_ttl: chrono::Duration,
    pub preference_ttl: chrono::Duration,
    /// Cohort sends the confirmation mails itself (SMTP configured): each request queues one.
    pub mail: bool,
}

impl PublicLinks {
    pub(crate) fn confirm_url(&self, c: &LinkClaims) -> String {
        format!("{}/public/v1/confirm/{}", self.base_url, self.keys.sign(c))
    }
    pub(crate) fn preference_url(&self, c: &LinkClaims) -> String {
        format!("{}/public/v1/preferences/{}", self.base_url, self.keys.sign(c))
    }
}

/// A preference link for one contact, as `preferenceLink` answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedLink {
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

fn require_admin(v: &Viewer, what: &str) -> StoreResult<()> {
    if v.is_admin() { Ok(()) } else { Err(StoreError::forbidden(format!("{what} is for admins"))) }
}

/// One version of a consent wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentTextRecord {
    pub id: ConsentTextId,
    pub purpose: String,
    pub language: String,
    pub version: i32,
    pub body: String,
    pub sha256: String,
    pub created_by: Option<UserId>,
    pub created_at: DateTime<Utc>,
}

impl From<consent_text::Model> for ConsentTextRecord {
    fn from(m: consent_text::Model) -> Self {
        ConsentTextRecord {
            id: ConsentTextId(m.id),
            purpose: m.purpose,
            language: m.language,
            version: m.version,
            body: m.body,
            sha256: m.sha256,
            created_by: m.created_by.map(UserId),
            created_at: m.created_at,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ConsentTextInput {
    pub purpose: String,
    pub language: String,
    pub body: String,
}

/// A web form with its current definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebFormRecord {
    pub id: WebFormId,
    pub public_key: String,
    pub name: String,
    pub version: i32,
    pub enabled: bool,
    pub intake_book_id: AddressBookId,
    pub consent_text_id: ConsentTextId,
    pub double_opt_in: bool,
    pub keep_evidence: bool,
    pub fields: Vec<FieldSpec>,
    pub origins: Vec<String>,
    pub group_ids: Vec<GroupId>,
    pub title: Option<String>,
    pub submit_label: Option<String>,
    pub success_url: Option<String>,
    pub confirmation_url: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct WebFormInput {
    pub name: String,
    pub intake_book_id: AddressBookId,
    pub group_ids: Vec<GroupId>,
    pub consent_text_id: ConsentTextId,
    pub double_opt_in: bool,
    pub keep_evidence: bool,
    pub fields: Vec<FieldSpec>,
    pub origins: Vec<String>,
    pub title: Option<String>,
    pub submit_label: Option<String>,
    pub success_url: Option<String>,
    pub confirmation_url: Option<String>,
    pub enabled: bool,
}

/// A change to a web form: `None` keeps a value, `Some(None)` clears an optional one.
#[derive(Debug, Clone, Default)]
pub struct WebFormPatch {
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub intake_book_id: Option<AddressBookId>,
    pub group_ids: Option<Vec<GroupId>>,
    pub consent_text_id: Option<ConsentTextId>,
    pub double_opt_in: Option<bool>,
    pub keep_evidence: Option<bool>,
    pub fields: Option<Vec<FieldSpec>>,
    pub origins: Option<Vec<String>>,
    pub title: Option<Option<String>>,
    pub submit_label: Option<Option<String>>,
    pub success_url: Option<Option<String>>,
    pub confirmation_url: Option<Option<String>>,
}

/// One entry of the consent log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentEntryRecord {
    pub id: ConsentEntryId,
    pub contact_id: ContactId,
    pub group_id: GroupId,
    pub action: ConsentAction,
    pub at: DateTime<Utc>,
    pub channel: ConsentChannel,
    pub form_id: Option<WebFormId>,
    pub form_version: Option<i32>,
    pub text_id: Option<ConsentTextId>,
    pub text_sha256: Option<String>,
    /// The double opt-in request this entry belongs to (its confirmation link's id).
    pub request_id: Option<Uuid>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub agent_id: Option<UserId>,
    pub note: Option<String>,
}

impl TryFrom<consent_entry::Model> for ConsentEntryRecord {
    type Error = StoreError;
    fn try_from(m: consent_entry::Model) -> StoreResult<Self> {
        Ok(ConsentEntryRecord {
            id: ConsentEntryId(m.id),
            contact_id: ContactId(m.contact_id),
            group_id: GroupId(m.group_id),
            action: ConsentAction::parse(&m.action).ok_or_else(|| StoreError::corrupt("consent action", &m.action))?,
            at: m.at,
            channel: ConsentChannel::parse(&m.channel)
                .ok_or_else(|| StoreError::corrupt("consent channel", &m.channel))?,
            form_id: m.form_id.map(WebFormId),
            form_version: m.form_version,
            text_id: m.text_id.map(ConsentTextId),
            text_sha256: m.text_sha256,
            request_id: m.request_id,
            ip: m.ip,
            user_agent: m.user_agent,
            agent_id: m.agent_id.map(UserId),
            note: m.note,
        })
    }
}

/// Consent standing of a group's visible contacts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsentSummaryRecord {
    pub confirmed: u64,
    pub pending: u64,
    pub withdrawn: u64,
    /// Visible members without confirmed consent for the group: no consent on record (`NONE`),
    /// a pending confirmation, or re-added after a withdrawal.
    pub members_without_consent: u64,
}

/// What an agent records on a contact's behalf (`recordConsent`).
#[derive(Debug, Clone)]
pub struct RecordConsentInput {
    pub contact_id: ContactId,
    pub group_id: GroupId,
    /// `GIVEN` or `WITHDRAWN` (confirmation is the person's own act).
    pub action: ConsentAction,
    pub text_id: Option<ConsentTextId>,
    pub note: Option<String>,
}

/// A random public key for a form: 128 bits from two version-4 UUIDs' random parts, base64url.
fn new_form_key() -> String {
    use base64::Engine;
    let mut b = Vec::with_capacity(32);
    b.extend_from_slice(Uuid::new_v4().as_bytes());
    b.extend_from_slice(Uuid::new_v4().as_bytes());
    format!("wf_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&b[..24]))
}

pub(crate) fn fields_json(f: &[FieldSpec]) -> String {
    let v: Vec<serde_json::Value> =
        f.iter().map(|s| serde_json::json!({"field": s.field.as_str(), "required": s.required})).collect();
    serde_json::Value::Array(v).to_string()
}

pub(crate) fn fields_from_json(s: &str) -> StoreResult<Vec<FieldSpec>> {
    let v: Vec<serde_json::Value> = serde_json::from_str(s).map_err(|_| StoreError::corrupt("web form fields", s))?;
    v.iter()
        .map(|f| {
            let field = f["field"]
                .as_str()
                .and_then(FormField::parse)
                .ok_or_else(|| StoreError::corrupt("web form field", f))?;
            Ok(FieldSpec { field, required: f["required"].as_bool().unwrap_or(false) })
        })
        .collect()
}

pub(crate) fn origins_from_json(s: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(s).map_err(|_| StoreError::corrupt("web form origins", s))
}

/// A web form definition after validation (everything but the groups' and text's existence).
struct ValidForm {
    fields: Vec<FieldSpec>,
    origins: Vec<String>,
    title: Option<String>,
    submit_label: Option<String>,
    success_url: Option<String>,
    confirmation_url: Option<String>,
}

fn validate_form(
    fields: &[FieldSpec],
    origins: &[String],
    title: Option<&str>,
    submit_label: Option<&str>,
    success_url: Option<&str>,
    confirmation_url: Option<&str>,
) -> StoreResult<ValidForm> {
    if origins.len() > MAX_FORM_ORIGINS {
        return Err(StoreError::invalid("allowedOrigins", format!("at most {MAX_FORM_ORIGINS} origins")));
    }
    let mut os = Vec::with_capacity(origins.len());
    for o in origins {
        let o = parse_origin(o)?;
        if !os.contains(&o) {
            os.push(o);
        }
    }
    Ok(ValidForm {
        fields: normalise_fields(fields)?,
        origins: os,
        title: form_label("title", title)?,
        submit_label: form_label("submitLabel", submit_label)?,
        success_url: success_url.map(|u| parse_redirect("successUrl", u)).transpose()?,
        confirmation_url: confirmation_url.map(|u| parse_redirect("confirmationUrl", u)).transpose()?,
    })
}

impl DataHandle {
    /// Adds the next version of the wording for (purpose, language). Admins only.
    pub async fn create_consent_text(&self, input: ConsentTextInput) -> StoreResult<ConsentTextRecord> {
        let v = self.viewer();
        require_admin(v, "writing consent texts")?;
        let purpose = parse_purpose(&input.purpose)?;
        let language = parse_language(&input.language)?;
        let body = canonical_text(&input.body)?;
        let w = self.begin().await?;
        // Versions of one tenant's texts are numbered one after another: writers take turns.
        w.lock_row(LockedTable::Tenants, v.tenant_id.0, RowLock::NoKeyUpdate).await?;
        let last: Option<i32> = consent_text::Entity::find()
            .filter(consent_text::Column::TenantId.eq(v.tenant_id.0))
            .filter(consent_text::Column::Purpose.eq(purpose.as_str()))
            .filter(consent_text::Column::Language.eq(language.as_str()))
            .select_only()
            .column_as(consent_text::Column::Version.max(), "v")
            .into_tuple::<Option<i32>>()
            .one(w.tx())
            .await?
            .flatten();
        let m = consent_text::Model {
            tenant_id: v.tenant_id.0,
            id: Uuid::now_v7(),
            sha256: text_sha256(&body),
            purpose,
            language,
            version: last.unwrap_or(0) + 1,
            body,
            created_by: Some(v.user_id.0),
            created_at: Utc::now(),
        };
        consent_text::Entity::insert(consent_text::ActiveModel::from(m.clone()))
            .exec_without_returning(w.tx())
            .await
            .map_err(|e| StoreError::unique_as_conflict(e, "this version of the text was written at the same time"))?;
        w.audit(
            "consentText.create",
            "ConsentText",
            Some(m.id),
            serde_json::json!({"purpose": m.purpose, "language": m.language, "version": m.version, "sha256": m.sha256}),
        );
        w.emit(
            EventType::ConsentTextCreated,
            vec![Subject::new(SubjectKind::ConsentText, m.id)],
            serde_json::json!({"purpose": m.purpose, "language": m.language, "version": m.version}),
        );
        w.commit().await?;
        Ok(m.into())
    }

    /// The tenant's consent texts (every version), by purpose, language and newest version first.
    pub async fn consent_texts(
        &self,
        purpose: Option<&str>,
        language: Option<&str>,
    ) -> StoreResult<Vec<ConsentTextRecord>> {
        let v = self.viewer();
        let mut q = consent_text::Entity::find().filter(consent_text::Column::TenantId.eq(v.tenant_id.0));
        if let Some(p) = purpose {
            q = q.filter(consent_text::Column::Purpose.eq(parse_purpose(p)?));
        }
        if let Some(l) = language {
            q = q.filter(consent_text::Column::Language.eq(parse_language(l)?));
        }
        let rows = q
            .order_by_asc(consent_text::Column::Purpose)
            .order_by_asc(consent_text::Column::Language)
            .order_by_desc(consent_text::Column::Version)
            .limit(500)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    pub async fn consent_texts_by_ids(&self, ids: &[ConsentTextId]) -> StoreResult<Vec<ConsentTextRecord>> {
        let v = self.viewer();
        let rows = consent_text::Entity::find()
            .filter(consent_text::Column::TenantId.eq(v.tenant_id.0))
            .filter(consent_text::Column::Id.is_in(ids.iter().map(|i| i.0)))
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// The groups a form may offer: visible to the viewer and public (a public name set).
    async fn check_offered_groups<C: ConnectionTrait>(&self, conn: &C, ids: &[GroupId]) -> StoreResult<Vec<GroupId>> {
        let v = self.viewer();
        if ids.is_empty() {
            return Err(StoreError::invalid("groupIds", "a form offers at least one public group"));
        }
        if ids.len() > MAX_FORM_GROUPS {
            return Err(StoreError::invalid("groupIds", format!("at most {MAX_FORM_GROUPS} groups")));
        }
        let mut seen = HashSet::new();
        let ids: Vec<GroupId> = ids.iter().copied().filter(|g| seen.insert(*g)).collect();
        let rows = crate::groups::hierarchy::visible_groups(v)
            .filter(group::Column::Id.is_in(ids.iter().map(|g| g.0)))
            .all(conn)
            .await?;
        let found: HashMap<Uuid, &group::Model> = rows.iter().map(|g| (g.id, g)).collect();
        // A form adds members: WRITE on each group's home book, as `addGroupMembers`.
        let levels = book_levels(conn, v, &rows.iter().map(|g| g.address_book_id).collect::<Vec<_>>()).await?;
        for g in &ids {
            match found.get(&g.0) {
                None => return Err(StoreError::NotFound),
                Some(m) if !v.is_admin() && levels.get(&m.address_book_id).is_none_or(|l| *l < AccessLevel::Write) => {
                    return Err(StoreError::forbidden(
                        "offering a group on a form needs WRITE on the group's home address book",
                    ));
                }
                Some(m) if m.public_name.is_none() => {
                    return Err(StoreError::invalid(
                        "groupIds",
                        format!("group '{}' is not public: give it a public name first", m.name),
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(ids)
    }

    async fn check_text<C: ConnectionTrait>(&self, conn: &C, id: ConsentTextId) -> StoreResult<consent_text::Model> {
        consent_text::Entity::find()
            .filter(consent_text::Column::TenantId.eq(self.viewer().tenant_id.0))
            .filter(consent_text::Column::Id.eq(id.0))
            .one(conn)
            .await?
            .ok_or_else(|| StoreError::invalid("consentTextId", "is not a consent text of this tenant"))
    }

    /// Admins, or `MANAGE` on the intake book.
    async fn require_form_book<C: ConnectionTrait>(&self, conn: &C, book: AddressBookId) -> StoreResult<()> {
        match book_level(conn, self.viewer(), book).await? {
            None => Err(StoreError::NotFound),
            Some(l) if l < AccessLevel::Manage => {
                Err(StoreError::forbidden("configuring a web form needs MANAGE on its intake address book"))
            }
            Some(_) => Ok(()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn write_form_version(
        &self,
        w: &UnitOfWork,
        form: Uuid,
        version: i32,
        book: AddressBookId,
        text: ConsentTextId,
        double_opt_in: bool,
        keep_evidence: bool,
        valid: &ValidForm,
        groups: &[GroupId],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let v = w.viewer();
        web_form_version::Entity::insert(web_form_version::ActiveModel {
            tenant_id: Set(v.tenant_id.0),
            form_id: Set(form),
            version: Set(version),
            intake_book_id: Set(book.0),
            consent_text_id: Set(text.0),
            double_opt_in: Set(double_opt_in),
            keep_evidence: Set(keep_evidence),
            fields: Set(fields_json(&valid.fields)),
            origins: Set(serde_json::to_string(&valid.origins).map_err(|e| StoreError::corrupt("origins", e))?),
            title: Set(valid.title.clone()),
            submit_label: Set(valid.submit_label.clone()),
            success_url: Set(valid.success_url.clone()),
            confirmation_url: Set(valid.confirmation_url.clone()),
            created_by: Set(Some(v.user_id.0)),
            created_at: Set(now),
        })
        .exec_without_returning(w.tx())
        .await?;
        web_form_group::Entity::insert_many(groups.iter().enumerate().map(|(i, g)| web_form_group::ActiveModel {
            tenant_id: Set(v.tenant_id.0),
            form_id: Set(form),
            version: Set(version),
            group_id: Set(g.0),
            position: Set(i as i32),
        }))
        .exec_without_returning(w.tx())
        .await?;
        Ok(())
    }

    /// Creates a web form (admins, or `MANAGE` on the intake book; the groups must be public and
    /// visible to the creator).
    pub async fn create_web_form(&self, input: WebFormInput) -> StoreResult<WebFormRecord> {
        let v = self.viewer();
        let name = Name::parse("name", &input.name)?;
        let valid = validate_form(
            &input.fields,
            &input.origins,
            input.title.as_deref(),
            input.submit_label.as_deref(),
            input.success_url.as_deref(),
            input.confirmation_url.as_deref(),
        )?;
        let w = self.begin().await?;
        self.require_form_book(w.tx(), input.intake_book_id).await?;
        let groups = self.check_offered_groups(w.tx(), &input.group_ids).await?;
        self.check_text(w.tx(), input.consent_text_id).await?;
        let now = Utc::now();
        let id = Uuid::now_v7();
        web_form::Entity::insert(web_form::ActiveModel {
            tenant_id: Set(v.tenant_id.0),
            id: Set(id),
            public_key: Set(new_form_key()),
            name: Set(name.as_str().to_owned()),
            sort_name: Set(name.as_str().to_lowercase()),
            version: Set(1),
            enabled: Set(input.enabled),
            created_by: Set(Some(v.user_id.0)),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_without_returning(w.tx())
        .await
        .map_err(|e| StoreError::unique_as_conflict(e, "a web form with this name exists"))?;
        self.write_form_version(
            &w,
            id,
            1,
            input.intake_book_id,
            input.consent_text_id,
            input.double_opt_in,
            input.keep_evidence,
            &valid,
            &groups,
            now,
        )
        .await?;
        w.audit("webForm.create", "WebForm", Some(id), serde_json::json!({"name": name.as_str(), "version": 1}));
        w.emit(
            EventType::WebFormCreated,
            vec![Subject::new(SubjectKind::WebForm, id)],
            serde_json::json!({"version": 1}),
        );
        let rec = self.web_forms_in(w.tx(), Some(WebFormId(id))).await?.pop().ok_or(StoreError::NotFound)?;
        w.commit().await?;
        Ok(rec)
    }

    /// Changes a web form. A change to what the form shows or does adds a version; its name and
    /// `enabled` are kept on the form itself.
    pub async fn update_web_form(&self, id: WebFormId, p: WebFormPatch) -> StoreResult<WebFormRecord> {
        let v = self.viewer();
        let w = self.begin().await?;
        w.lock_row(LockedTable::WebForms, id.0, RowLock::NoKeyUpdate).await?;
        let cur = self.web_forms_in(w.tx(), Some(id)).await?.pop().ok_or(StoreError::NotFound)?;
        self.require_form_book(w.tx(), cur.intake_book_id).await?;
        let now = Utc::now();
        let name = p.name.as_deref().map(|n| Name::parse("name", n)).transpose()?;
        let definition_changed = p.intake_book_id.is_some()
            || p.group_ids.is_some()
            || p.consent_text_id.is_some()
            || p.double_opt_in.is_some()
            || p.keep_evidence.is_some()
            || p.fields.is_some()
            || p.origins.is_some()
            || p.title.is_some()
            || p.submit_label.is_some()
            || p.success_url.is_some()
            || p.confirmation_url.is_some();
        let mut version = cur.version;
        if definition_changed {
            let book = p.intake_book_id.unwrap_or(cur.intake_book_id);
            if book != cur.intake_book_id {
                self.require_form_book(w.tx(), book).await?;
            }
            let pick = |n: &Option<Option<String>>, c: &Option<String>| match n {
                Some(x) => x.clone(),
                None => c.clone(),
            };
            let valid = validate_form(
                p.fields.as_deref().unwrap_or(&cur.fields),
                p.origins.as_deref().unwrap_or(&cur.origins),
                pick(&p.title, &cur.title).as_deref(),
                pick(&p.submit_label, &cur.submit_label).as_deref(),
                pick(&p.success_url, &cur.success_url).as_deref(),
                pick(&p.confirmation_url, &cur.confirmation_url).as_deref(),
            )?;
            let groups = self.check_offered_groups(w.tx(), p.group_ids.as_deref().unwrap_or(&cur.group_ids)).await?;
            let text = p.consent_text_id.unwrap_or(cur.consent_text_id);
            self.check_text(w.tx(), text).await?;
            version += 1;
            self.write_form_version(
                &w,
                id.0,
                version,
                book,
                text,
                p.double_opt_in.unwrap_or(cur.double_opt_in),
                p.keep_evidence.unwrap_or(cur.keep_evidence),
                &valid,
                &groups,
                now,
            )
            .await?;
        }
        let mut upd = web_form::ActiveModel {
            tenant_id: Set(v.tenant_id.0),
            id: Set(id.0),
            version: Set(version),
            updated_at: Set(now),
            ..Default::default()
        };
        if let Some(n) = &name {
            upd.name = Set(n.as_str().to_owned());
            upd.sort_name = Set(n.as_str().to_lowercase());
        }
        if let Some(e) = p.enabled {
            upd.enabled = Set(e);
        }
        web_form::Entity::update(upd)
            .exec(w.tx())
            .await
            .map_err(|e| StoreError::unique_as_conflict(e, "a web form with this name exists"))?;
        let rec = self.web_forms_in(w.tx(), Some(id)).await?.pop().ok_or(StoreError::NotFound)?;
        // The whole definition is small, bounded configuration (field names with a required
        // flag, at most MAX_FORM_GROUPS group ids and MAX_FORM_ORIGINS origins, short labels and
        // redirect URLs), so changed parts are recorded as values, not just as the new version:
        // old versions are not readable through the API. Nothing personal is in a definition;
        // the form's public key never changes here and is not recorded. `version` is listed
        // whenever one was added (a definition resent unchanged still adds one).
        let mut changes = Changes::new();
        changes
            .field("name", &cur.name, &rec.name)
            .field("enabled", cur.enabled, rec.enabled)
            .field("version", cur.version, rec.version)
            .field("intakeAddressBookId", cur.intake_book_id, rec.intake_book_id)
            .field("groupIds", &cur.group_ids, &rec.group_ids)
            .field("consentTextId", cur.consent_text_id, rec.consent_text_id)
            .field("doubleOptIn", cur.double_opt_in, rec.double_opt_in)
            .field("keepEvidence", cur.keep_evidence, rec.keep_evidence)
            .field("fields", json_or_text(&fields_json(&cur.fields)), json_or_text(&fields_json(&rec.fields)))
            .field("allowedOrigins", &cur.origins, &rec.origins)
            .field("title", &cur.title, &rec.title)
            .field("submitLabel", &cur.submit_label, &rec.submit_label)
            .field("successUrl", &cur.success_url, &rec.success_url)
            .field("confirmationUrl", &cur.confirmation_url, &rec.confirmation_url);
        w.audit("webForm.update", "WebForm", Some(id.0), changes.details(serde_json::json!({})));
        w.emit(
            EventType::WebFormUpdated,
            vec![Subject::new(SubjectKind::WebForm, id.0)],
            serde_json::json!({"version": version}),
        );
        w.commit().await?;
        Ok(rec)
    }

    /// The web forms the viewer may configure (admins: all; others: those whose intake book they
    /// manage), by name.
    pub async fn web_forms(&self) -> StoreResult<Vec<WebFormRecord>> {
        self.web_forms_in(&self.db, None).await
    }

    pub async fn web_form(&self, id: WebFormId) -> StoreResult<WebFormRecord> {
        self.web_forms_in(&self.db, Some(id)).await?.pop().ok_or(StoreError::NotFound)
    }

    async fn web_forms_in<C: ConnectionTrait>(
        &self,
        conn: &C,
        only: Option<WebFormId>,
    ) -> StoreResult<Vec<WebFormRecord>> {
        let v = self.viewer();
        let mut q = web_form::Entity::find().filter(web_form::Column::TenantId.eq(v.tenant_id.0));
        if let Some(id) = only {
            q = q.filter(web_form::Column::Id.eq(id.0));
        }
        let forms = q.order_by_asc(web_form::Column::SortName).limit(500).all(conn).await?;
        if forms.is_empty() {
            return Ok(vec![]);
        }
        let ids: Vec<Uuid> = forms.iter().map(|f| f.id).collect();
        let versions = web_form_version::Entity::find()
            .filter(web_form_version::Column::TenantId.eq(v.tenant_id.0))
            .filter(web_form_version::Column::FormId.is_in(ids.iter().copied()))
            .all(conn)
            .await?;
        let current: HashMap<Uuid, web_form_version::Model> = versions
            .into_iter()
            .filter(|ver| forms.iter().any(|f| f.id == ver.form_id && f.version == ver.version))
            .map(|ver| (ver.form_id, ver))
            .collect();
        let mut groups: HashMap<Uuid, Vec<(i32, GroupId)>> = HashMap::new();
        for g in web_form_group::Entity::find()
            .filter(web_form_group::Column::TenantId.eq(v.tenant_id.0))
            .filter(web_form_group::Column::FormId.is_in(ids.iter().copied()))
            .all(conn)
            .await?
        {
            if forms.iter().any(|f| f.id == g.form_id && f.version == g.version) {
                groups.entry(g.form_id).or_default().push((g.position, GroupId(g.group_id)));
            }
        }
        let books: Vec<Uuid> = current.values().map(|c| c.intake_book_id).collect();
        let levels = book_levels(conn, v, &books).await?;
        let mut out = Vec::with_capacity(forms.len());
        for f in forms {
            let Some(ver) = current.get(&f.id) else { continue };
            let manages = v.is_admin() || levels.get(&ver.intake_book_id).is_some_and(|l| *l >= AccessLevel::Manage);
            if !manages {
                continue;
            }
            let mut gs = groups.remove(&f.id).unwrap_or_default();
            gs.sort();
            out.push(WebFormRecord {
                id: WebFormId(f.id),
                public_key: f.public_key,
                name: f.name,
                version: f.version,
                enabled: f.enabled,
                intake_book_id: AddressBookId(ver.intake_book_id),
                consent_text_id: ConsentTextId(ver.consent_text_id),
                double_opt_in: ver.double_opt_in,
                keep_evidence: ver.keep_evidence,
                fields: fields_from_json(&ver.fields)?,
                origins: origins_from_json(&ver.origins)?,
                group_ids: gs.into_iter().map(|(_, g)| g).collect(),
                title: ver.title.clone(),
                submit_label: ver.submit_label.clone(),
                success_url: ver.success_url.clone(),
                confirmation_url: ver.confirmation_url.clone(),
                created_at: f.created_at,
                updated_at: f.updated_at,
            });
        }
        Ok(out)
    }

    /// The name the tenant shows the public (heading of the preference centre and confirmation
    /// pages). Admins only; `None` falls back to the tenant's name.
    pub async fn set_public_profile(&self, public_name: Option<String>) -> StoreResult<Option<String>> {
        let v = self.viewer();
        require_admin(v, "the public profile")?;
        let name = match public_name.as_deref() {
            Some(n) => Some(Name::parse("publicName", n)?.into_string()),
            None => None,
        };
        let w = self.begin().await?;
        tenant_settings::Entity::insert(tenant_settings::ActiveModel {
            tenant_id: Set(v.tenant_id.0),
            default_price_list_id: Set(None),
            updated_at: Set(Utc::now()),
            public_name: Set(name.clone()),
            ..Default::default()
        })
        .on_conflict(
            OnConflict::column(tenant_settings::Column::TenantId)
                .update_columns([tenant_settings::Column::PublicName, tenant_settings::Column::UpdatedAt])
                .to_owned(),
        )
        .exec_without_returning(w.tx())
        .await?;
        w.audit("tenant.setPublicProfile", "Tenant", Some(v.tenant_id.0), serde_json::json!({"publicName": name}));
        w.commit().await?;
        Ok(name)
    }

    /// The tenant's public name as set (`None` when not set).
    pub async fn public_profile(&self) -> StoreResult<Option<String>> {
        public_name_of(&self.db, self.viewer().tenant_id.0).await.map(|(set, _)| set)
    }

    /// The consent log of a visible contact, newest first (at most 500 entries).
    pub async fn contact_consents(&self, contact: ContactId) -> StoreResult<Vec<ConsentEntryRecord>> {
        let v = self.viewer();
        let mut q = Sql::new(v.dialect);
        q.push("SELECT l.* FROM consent_log l JOIN contacts c ON c.tenant_id = l.tenant_id AND c.id = l.contact_id WHERE l.tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND l.contact_id = ")
            .bind(contact.0)
            .push(" AND ")
            .visible_books(v, "c.address_book_id", AccessLevel::Read)
            // An entry about a group the viewer cannot see would say the contact is (or was) in it.
            .push(" AND l.group_id IN ")
            .visible_groups(v)
            .push(" ORDER BY l.id DESC LIMIT 500");
        let rows = self.db.query_all_raw(q.build()).await?;
        let entries = rows
            .iter()
            .map(|r| {
                use sea_orm::FromQueryResult;
                ConsentEntryRecord::try_from(consent_entry::Model::from_query_result(r, "")?)
            })
            .collect::<StoreResult<Vec<_>>>()?;
        // A person's consent history is a sensitive read (one entry per contact asked about).
        self.audit_read(
            "contact.readConsentLog",
            "Contact",
            Some(contact.0),
            serde_json::json!({"entries": entries.len()}),
        )
        .await?;
        Ok(entries)
    }

    /// Consent entries by id, for visible contacts only (the members page's `consent` edges).
    pub async fn consent_entries_by_ids(&self, ids: &[ConsentEntryId]) -> StoreResult<Vec<ConsentEntryRecord>> {
        let v = self.viewer();
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let mut q = Sql::new(v.dialect);
        q.push("SELECT l.* FROM consent_log l JOIN contacts c ON c.tenant_id = l.tenant_id AND c.id = l.contact_id WHERE l.tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND l.id IN ")
            .bind_list(ids.iter().map(|i| i.0))
            .push(" AND ")
            .visible_books(v, "c.address_book_id", AccessLevel::Read)
            .push(" AND l.group_id IN ")
            .visible_groups(v);
        let rows = self.db.query_all_raw(q.build()).await?;
        rows.iter()
            .map(|r| {
                use sea_orm::FromQueryResult;
                ConsentEntryRecord::try_from(consent_entry::Model::from_query_result(r, "")?)
            })
            .collect()
    }

    /// A visible contact's consent status for each of `groups` (hidden or unknown groups, and
    /// groups without an entry: `NONE`).
    pub async fn consent_statuses(
        &self,
        contact: ContactId,
        groups: &[GroupId],
    ) -> StoreResult<HashMap<GroupId, ConsentStatus>> {
        let v = self.viewer();
        let mut out: HashMap<GroupId, ConsentStatus> = groups.iter().map(|g| (*g, ConsentStatus::None)).collect();
        if groups.is_empty() {
            return Ok(out);
        }
        let mut q = Sql::new(v.dialect);
        q.push("SELECT s.group_id, s.status FROM consent_states s JOIN contacts c ON c.tenant_id = s.tenant_id AND c.id = s.contact_id JOIN contact_groups g ON g.tenant_id = s.tenant_id AND g.id = s.group_id WHERE s.tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND s.contact_id = ")
            .bind(contact.0)
            .push(" AND s.group_id IN ")
            .bind_list(groups.iter().map(|g| g.0))
            .push(" AND ")
            .visible_books(v, "c.address_book_id", AccessLevel::Read)
            .push(" AND ")
            .visible_books(v, "g.address_book_id", AccessLevel::Read);
        for r in self.db.query_all_raw(q.build()).await? {
            let s: String = r.try_get("", "status")?;
            let status = ConsentStatus::parse(&s).ok_or_else(|| StoreError::corrupt("consent status", &s))?;
            out.insert(GroupId(r.try_get("", "group_id")?), status);
        }
        Ok(out)
    }

    /// Consent standing of visible groups over their visible contacts.
    pub async fn consent_summaries(&self, groups: &[GroupId]) -> StoreResult<HashMap<GroupId, ConsentSummaryRecord>> {
        let v = self.viewer();
        let mut out: HashMap<GroupId, ConsentSummaryRecord> = HashMap::new();
        if groups.is_empty() {
            return Ok(out);
        }
        let mut q = Sql::new(v.dialect);
        q.push("SELECT s.group_id, s.status, COUNT(*) AS n FROM consent_states s JOIN contacts c ON c.tenant_id = s.tenant_id AND c.id = s.contact_id WHERE s.tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND s.group_id IN ")
            .bind_list(groups.iter().map(|g| g.0))
            .push(" AND s.group_id IN ")
            .visible_groups(v)
            .push(" AND ")
            .visible_books(v, "c.address_book_id", AccessLevel::Read)
            .push(" GROUP BY s.group_id, s.status");
        for r in self.db.query_all_raw(q.build()).await? {
            let g = GroupId(r.try_get("", "group_id")?);
            let n: i64 = r.try_get("", "n")?;
            let s: String = r.try_get("", "status")?;
            let e = out.entry(g).or_default();
            match ConsentStatus::parse(&s) {
                Some(ConsentStatus::Confirmed) => e.confirmed = n as u64,
                Some(ConsentStatus::Pending) => e.pending = n as u64,
                Some(ConsentStatus::Withdrawn) => e.withdrawn = n as u64,
                _ => return Err(StoreError::corrupt("consent status", &s)),
            }
        }
        let mut q = Sql::new(v.dialect);
        q.push("SELECT m.group_id, COUNT(*) AS n FROM group_memberships m WHERE m.tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND m.group_id IN ")
            .bind_list(groups.iter().map(|g| g.0))
            .push(" AND m.group_id IN ")
            .visible_groups(v)
            .push(" AND ")
            .visible_books(v, "m.address_book_id", AccessLevel::Read)
            .push(" AND NOT EXISTS (SELECT 1 FROM consent_states s WHERE s.tenant_id = m.tenant_id AND s.group_id = m.group_id AND s.contact_id = m.contact_id AND s.status = ")
            .bind(ConsentStatus::Confirmed.as_str())
            .push(") GROUP BY m.group_id");
        for r in self.db.query_all_raw(q.build()).await? {
            let n: i64 = r.try_get("", "n")?;
            out.entry(GroupId(r.try_get("", "group_id")?)).or_default().members_without_consent = n as u64;
        }
        Ok(out)
    }

    /// How many visible contacts are members (of the group, or with `include_subgroups` of it or a
    /// visible descendant) whose membership's group has consent status `status` for them.
    pub async fn group_member_count_with_consent(
        &self,
        group: GroupId,
        include_subgroups: bool,
        status: ConsentStatus,
    ) -> StoreResult<u64> {
        let v = self.viewer();
        let mut q = Sql::new(v.dialect);
        q.push("SELECT COUNT(DISTINCT m.contact_id) AS n FROM group_memberships m WHERE m.tenant_id = ")
            .bind(v.tenant_id.0);
        if include_subgroups {
            q.push(" AND m.group_id IN ").visible_subtree(v, group.0);
        } else {
            q.push(" AND m.group_id = ").bind(group.0).push(" AND m.group_id IN ").visible_groups(v);
        }
        q.push(" AND ").visible_books(v, "m.address_book_id", AccessLevel::Read);
        push_consent_filter(&mut q, status);
        let n: i64 = match self.db.query_one_raw(q.build()).await? {
            Some(r) => r.try_get("", "n")?,
            None => 0,
        };
        Ok(n as u64)
    }

    /// An agent records consent given (by phone, on paper) or withdrawn on the contact's behalf:
    /// `WRITE` on the contact's book, the group public and visible. Giving adds the membership
    /// (source `ASSIGNED`, linked to the entry); withdrawing ends it.
    pub async fn record_consent(&self, input: RecordConsentInput) -> StoreResult<ConsentEntryRecord> {
        let v = self.viewer();
        let note = optional_text("note", input.note.as_deref())?;
        let w = self.begin().await?;
        // It changes the group's members: WRITE on its home book, as `addGroupMembers`.
        let g = self.group_for(w.tx(), v, input.group_id, AccessLevel::Write).await?;
        if g.public_name.is_none() {
            return Err(StoreError::invalid("groupId", "consent is recorded for public groups only"));
        }
        // Like a change of the group's members: the group, then the contact (the order of every
        // write path), so the membership read below is the one written.
        w.lock_row(LockedTable::Groups, g.id, RowLock::NoKeyUpdate).await?;
        let contact = self.contact_for(w.tx(), v, input.contact_id, AccessLevel::Write).await?;
        w.lock_row(LockedTable::Contacts, contact.id, RowLock::NoKeyUpdate).await?;
        // An erased contact (a tombstone, no addresses) subscribes to nothing: the person gives
        // new consent as a new contact (their address is suppressed, not blocked).
        if input.action == ConsentAction::Given
            && crate::contacts::erasure::erased_at(w.tx(), v.dialect, v.tenant_id.0, contact.id).await?.is_some()
        {
            return Err(StoreError::Conflict("the contact was erased; record the consent for a new contact".into()));
        }
        let text = match (input.action, input.text_id) {
            (ConsentAction::Given, None) => {
                return Err(StoreError::invalid("consentTextId", "name the wording the person agreed to"));
            }
            (ConsentAction::Given, Some(t)) => Some(self.check_text(w.tx(), t).await?),
            (ConsentAction::Withdrawn, _) => None,
            (ConsentAction::Confirmed, _) => {
                return Err(StoreError::invalid("action", "confirmation is the person's own act, through the link"));
            }
        };
        let entry = log::Entry {
            contact: contact.id,
            group: g.id,
            action: input.action,
            channel: ConsentChannel::AgentOnBehalf,
            form: None,
            text: text.as_ref().map(|t| (t.id, t.sha256.clone())),
            request: None,
            evidence: log::Evidence::default(),
            agent: Some(v.user_id.0),
            note,
        };
        let id = log::append(&w, &entry).await?;
        let member = membership::Entity::find()
            .filter(membership::Column::TenantId.eq(v.tenant_id.0))
            .filter(membership::Column::GroupId.eq(g.id))
            .filter(membership::Column::ContactId.eq(contact.id))
            .one(w.tx())
            .await?;
        match input.action {
            ConsentAction::Given => match member {
                Some(_) => log::link_membership(&w, g.id, contact.id, id).await?,
                None => {
                    join_with_consent(
                        &w,
                        GroupId(g.id),
                        &[(contact.id, contact.address_book_id, contact.sort_name.clone())],
                        MembershipSource::Assigned,
                        &Chain::default(),
                        Some(id),
                    )
                    .await?
                }
            },
            _ => {
                if let Some(m) = member {
                    crate::groups::membership::leave_in(
                        &w,
                        GroupId(g.id),
                        &[(contact.id, contact.address_book_id, m.source)],
                        None,
                        Some("consent withdrawn (recorded by an agent)"),
                    )
                    .await?;
                }
            }
        }
        w.audit(
            "consent.record",
            "Contact",
            Some(contact.id),
            serde_json::json!({"groupId": g.id, "consentEntryId": id, "action": input.action.as_str(),
                "consentTextId": input.text_id.map(|t| t.0)}),
        );
        let rec = log::load(w.tx(), v.tenant_id.0, id).await?;
        w.commit().await?;
        Ok(rec)
    }

    /// A preference-centre link for a contact the viewer may change (`WRITE` on its book), for
    /// the mailer to put in a message (and its `List-Unsubscribe` header). With `group`, the
    /// one-click unsubscribe of that link leaves only that group.
    pub async fn preference_link(
        &self,
        links: &PublicLinks,
        contact: ContactId,
        group: Option<GroupId>,
    ) -> StoreResult<IssuedLink> {
        let v = self.viewer();
        let c = self.contact_for_read_or_write(contact, AccessLevel::Write).await?;
        if let Some(g) = group {
            let gm = crate::groups::hierarchy::visible_groups(v)
                .filter(group::Column::Id.eq(g.0))
                .one(&self.db)
                .await?
                .ok_or(StoreError::NotFound)?;
            if gm.public_name.is_none() {
                return Err(StoreError::invalid("groupId", "preference links are for public groups"));
            }
        }
        // Who handed out whose link is on record: a link lets its holder change the person's
        // subscriptions as the person.
        let w = self.begin().await?;
        w.audit("contact.preferenceLinkIssued", "Contact", Some(c), serde_json::json!({"groupId": group.map(|g| g.0)}));
        w.commit().await?;
        let expires_at = Utc::now() + links.preference_ttl;
        let claims = LinkClaims {
            purpose: LinkPurpose::Preferences,
            expires_at: DateTime::from_timestamp(expires_at.timestamp(), 0).unwrap_or(expires_at),
            tenant: v.tenant_id.0,
            contact: c,
            reference: group.map(|g| g.0).unwrap_or(Uuid::nil()),
        };
        Ok(IssuedLink { url: links.preference_url(&claims), expires_at: claims.expires_at })
    }

    async fn contact_for_read_or_write(&self, contact: ContactId, needed: AccessLevel) -> StoreResult<Uuid> {
        let v = self.viewer();
        let mut q = Sql::new(v.dialect);
        q.push("SELECT c.id FROM contacts c WHERE c.tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND c.id = ")
            .bind(contact.0)
            .push(" AND ")
            .visible_books(v, "c.address_book_id", AccessLevel::Read);
        self.db.query_one_raw(q.build()).await?.ok_or(StoreError::NotFound)?;
        let book = crate::entities::contact::Entity::find()
            .filter(crate::entities::contact::Column::TenantId.eq(v.tenant_id.0))
            .filter(crate::entities::contact::Column::Id.eq(contact.0))
            .select_only()
            .column(crate::entities::contact::Column::AddressBookId)
            .into_tuple::<Uuid>()
            .one(&self.db)
            .await?
            .ok_or(StoreError::NotFound)?;
        match book_level(&self.db, v, AddressBookId(book)).await? {
            Some(l) if l >= needed => Ok(contact.0),
            Some(_) => Err(StoreError::forbidden("this needs WRITE on the contact's address book")),
            None => Err(StoreError::NotFound),
        }
    }
}

/// ` AND <the membership row m has consent status s for its group>`: members pages and their
/// counts filter with the same predicate.
pub(crate) fn push_consent_filter(q: &mut Sql, status: ConsentStatus) {
    match status {
        ConsentStatus::None => {
            q.push(" AND NOT EXISTS (SELECT 1 FROM consent_states cs WHERE cs.tenant_id = m.tenant_id AND cs.group_id = m.group_id AND cs.contact_id = m.contact_id)");
        }
        s => {
            q.push(" AND EXISTS (SELECT 1 FROM consent_states cs WHERE cs.tenant_id = m.tenant_id AND cs.group_id = m.group_id AND cs.contact_id = m.contact_id AND cs.status = ")
                .bind(s.as_str())
                .push(")");
        }
    }
}

/// (the public name as set, what to show: the set name, else the tenant's name).
pub(crate) async fn public_name_of<C: ConnectionTrait>(
    conn: &C,
    tenant: Uuid,
) -> StoreResult<(Option<String>, String)> {
    let set: Option<String> = tenant_settings::Entity::find()
        .filter(tenant_settings::Column::TenantId.eq(tenant))
        .one(conn)
        .await?
        .and_then(|s| s.public_name);
    let shown = match &set {
        Some(n) => n.clone(),
        None => tenant::Entity::find_by_id(tenant).one(conn).await?.map(|t| t.name).unwrap_or_default(),
    };
    Ok((set, shown))
}

/// Group ids to the groups' public names and descriptions, for the public groups among them.
pub(crate) async fn public_groups<C: ConnectionTrait>(
    conn: &C,
    tenant: Uuid,
    ids: &[Uuid],
) -> StoreResult<BTreeMap<Uuid, (String, Option<String>)>> {
    let mut out = BTreeMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    for g in group::Entity::find()
        .filter(group::Column::TenantId.eq(tenant))
        .filter(group::Column::Id.is_in(ids.iter().copied()))
        .all(conn)
        .await?
    {
        if let Some(n) = g.public_name {
            out.insert(g.id, (n, g.public_description));
        }
    }
    Ok(out)
}
