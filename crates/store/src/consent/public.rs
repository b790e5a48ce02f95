//! The public side of consent: what a website, a form submitter and a person following a link
//! in a mail can do, without logging in.
//!
//! [`PublicDoor`] is the only way in. It acts on exactly one tenant, found from a form's public
//! key or from a verified link, through that tenant's public actor (`cohort:public`, one user per
//! tenant, so history and events name it): every write goes through the same unit of work,
//! membership write path and outbox as a signed-in request. What it can do is fixed by its
//! methods — read a form, add a submission, confirm one request, change one contact's public
//! subscriptions — and everything it shows is public: public group names and descriptions, the
//! consent wording, the tenant's public name. Never an internal group name, never another
//! contact, never whether an e-mail address was already known.

use super::links::{LinkClaims, LinkError, LinkPurpose};
use super::log::{self, Entry, Evidence};
use super::{PublicLinks, fields_from_json, origins_from_json, public_name_of};
use crate::Store;
use crate::access::handle::DataHandle;
use crate::contacts::contact::ContactInput;
use crate::core::dialect::RowLock;
use crate::core::sql::Sql;
use crate::core::uow::{LockedTable, UnitOfWork};
use crate::entities::{consent_request, consent_state, consent_text, membership, tenant, web_form, web_form_version};
use crate::error::{StoreError, StoreResult};
use crate::events::{EventType, Subject, SubjectKind};
use crate::groups::membership::{join_with_consent, leave_in};
use chrono::{DateTime, Utc};
use cohort_domain::consent::{ConsentAction, ConsentChannel, ConsentStatus, FieldSpec, RawSubmission, ValidSubmission};
use cohort_domain::contact::{ContactFields, ContactKind};
use cohort_domain::group::MembershipSource;
use cohort_domain::ids::{AddressBookId, GroupId, WebFormId};
use cohort_domain::sequence::Chain;
use cohort_domain::text::Name;
use cohort_domain::{Role, Roles};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// The subject of each tenant's public actor.
pub const PUBLIC_SUBJECT: &str = "cohort:public";

/// A public group as the public sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicGroupRecord {
    pub id: GroupId,
    pub public_name: String,
    pub public_description: Option<String>,
}

/// The consent wording a form shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicTextRecord {
    pub purpose: String,
    pub language: String,
    pub version: i32,
    pub body: String,
    pub sha256: String,
}

/// What a website needs to render a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicFormRecord {
    pub key: String,
    pub form_id: WebFormId,
    pub version: i32,
    pub tenant_name: String,
    pub title: Option<String>,
    pub submit_label: Option<String>,
    pub fields: Vec<FieldSpec>,
    pub groups: Vec<PublicGroupRecord>,
    pub consent_text: PublicTextRecord,
    pub double_opt_in: bool,
    pub origins: Vec<String>,
    pub success_url: Option<String>,
    pub keep_evidence: bool,
}

/// A submission as received (validated against the form here).
#[derive(Debug, Clone, Default)]
pub struct SubmissionInput {
    pub raw: RawSubmission,
    pub groups: Vec<GroupId>,
    pub evidence: Evidence,
}

/// The answer to a submission: the same for a known and an unknown e-mail address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmissionReceipt {
    pub confirmation_required: bool,
    pub success_url: Option<String>,
}

/// The answer to a confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmOutcome {
    pub tenant_name: String,
    pub groups: Vec<PublicGroupRecord>,
    /// True when this link had been followed before (nothing changed now).
    pub already_confirmed: bool,
    pub redirect: Option<String>,
}

/// One group in the preference centre.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreferenceGroupRecord {
    pub group: PublicGroupRecord,
    pub subscribed: bool,
    /// Given through a double opt-in form and not confirmed yet.
    pub pending: bool,
    /// For a group one is not subscribed to: the wording subscribing there agrees to (shown on
    /// the page, recorded with the consent).
    pub consent_text: Option<OfferedText>,
}

/// A consent wording as offered for a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedText {
    pub id: Uuid,
    pub sha256: String,
    pub text: PublicTextRecord,
}

/// The preference centre of one contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreferencesRecord {
    pub tenant_name: String,
    pub groups: Vec<PreferenceGroupRecord>,
}

/// What a person changes in the preference centre.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreferenceChange {
    /// Subscribed to exactly these of the listed groups (the HTML form's checkboxes).
    Set(Vec<GroupId>),
    Unsubscribe(Vec<GroupId>),
    Subscribe(Vec<GroupId>),
    WithdrawAll,
    /// RFC 8058: the link's group, or every group when the link names none.
    OneClick,
}

/// Why a public request was refused.
#[derive(Debug, thiserror::Error)]
pub enum PublicRefusal {
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The confirmation was withdrawn afterwards (or before it was followed): following it again
    /// must not subscribe the person again.
    #[error("the consent this link confirms was withdrawn")]
    Used,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sea_orm::DbErr> for PublicRefusal {
    fn from(e: sea_orm::DbErr) -> Self {
        PublicRefusal::Store(StoreError::Database(e))
    }
}

/// The door for unauthenticated public requests (see the module documentation).
pub struct PublicDoor {
    store: Store,
    links: Arc<PublicLinks>,
    actors: Mutex<HashMap<Uuid, DataHandle>>,
}

impl PublicDoor {
    pub fn new(store: Store, links: Arc<PublicLinks>) -> PublicDoor {
        PublicDoor { store, links, actors: Mutex::new(HashMap::new()) }
    }

    pub fn links(&self) -> &PublicLinks {
        &self.links
    }

    /// The tenant's public actor: a data handle with the admin role inside that tenant only.
    async fn actor(&self, tenant: Uuid, request_id: Option<&str>) -> StoreResult<DataHandle> {
        let cached = self.actors.lock().ok().and_then(|a| a.get(&tenant).cloned());
        let mut h = match cached {
            Some(h) => h,
            None => {
                let t = tenant::Entity::find_by_id(tenant).one(&self.store.db).await?.ok_or(StoreError::NotFound)?;
                let h = self.store.system().act_as(&t.key, PUBLIC_SUBJECT, Roles::new([Role::Admin])).await?;
                if let Ok(mut a) = self.actors.lock() {
                    a.insert(tenant, h.clone());
                }
                h
            }
        };
        h.request_id = request_id.map(Arc::from);
        Ok(h)
    }

    /// (form, its current version) for an enabled form's key.
    async fn form_by_key<C: ConnectionTrait>(
        conn: &C,
        key: &str,
    ) -> StoreResult<(web_form::Model, web_form_version::Model)> {
        if key.is_empty() || key.len() > 64 {
            return Err(StoreError::NotFound);
        }
        let f = web_form::Entity::find()
            .filter(web_form::Column::PublicKey.eq(key))
            .filter(web_form::Column::Enabled.eq(true))
            .one(conn)
            .await?
            .ok_or(StoreError::NotFound)?;
        let v = web_form_version::Entity::find()
            .filter(web_form_version::Column::TenantId.eq(f.tenant_id))
            .filter(web_form_version::Column::FormId.eq(f.id))
            .filter(web_form_version::Column::Version.eq(f.version))
            .one(conn)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok((f, v))
    }

    /// The public groups a form version offers, in the form's order.
    async fn offered<C: ConnectionTrait>(
        conn: &C,
        tenant: Uuid,
        form: Uuid,
        version: i32,
    ) -> StoreResult<Vec<PublicGroupRecord>> {
        let d = crate::core::dialect::Dialect::of(conn.get_database_backend());
        let mut q = Sql::new(d);
        q.push("SELECT g.id, g.public_name, g.public_description FROM web_form_groups fg JOIN contact_groups g ON g.tenant_id = fg.tenant_id AND g.id = fg.group_id WHERE fg.tenant_id = ")
            .bind(tenant)
            .push(" AND fg.form_id = ")
            .bind(form)
            .push(" AND fg.version = ")
            .bind(version)
            .push(" AND g.public_name IS NOT NULL ORDER BY fg.position");
        let mut out = vec![];
        for r in conn.query_all_raw(q.build()).await? {
            out.push(PublicGroupRecord {
                id: GroupId(r.try_get("", "id")?),
                public_name: r.try_get("", "public_name")?,
                public_description: r.try_get("", "public_description")?,
            });
        }
        Ok(out)
    }

    /// What a website needs to render the form with `key` (`NotFound` for unknown or disabled).
    pub async fn form(&self, key: &str) -> StoreResult<PublicFormRecord> {
        let db = &self.store.db;
        let (f, v) = Self::form_by_key(db, key).await?;
        let groups = Self::offered(db, f.tenant_id, f.id, v.version).await?;
        let t = consent_text::Entity::find()
            .filter(consent_text::Column::TenantId.eq(f.tenant_id))
            .filter(consent_text::Column::Id.eq(v.consent_text_id))
            .one(db)
            .await?
            .ok_or(StoreError::NotFound)?;
        let (_, tenant_name) = public_name_of(db, f.tenant_id).await?;
        Ok(PublicFormRecord {
            key: f.public_key,
            form_id: WebFormId(f.id),
            version: v.version,
            tenant_name,
            title: v.title,
            submit_label: v.submit_label,
            fields: fields_from_json(&v.fields)?,
            groups,
            consent_text: PublicTextRecord {
                purpose: t.purpose,
                language: t.language,
                version: t.version,
                body: t.body,
                sha256: t.sha256,
            },
            double_opt_in: v.double_opt_in,
            origins: origins_from_json(&v.origins)?,
            success_url: v.success_url,
            keep_evidence: v.keep_evidence,
        })
    }

    /// Adds a submission of the form with `key`: the contact is matched by e-mail in the intake
    /// book or created there; a consent entry per chosen group; with double opt-in a confirmation
    /// request (its link goes out in `consent.confirmation_requested`), without it the
    /// memberships at once (source `WEB_FORM`). Existing contacts' details are never changed by
    /// a submission — anyone can type anyone's address.
    pub async fn submit(
        &self,
        key: &str,
        input: SubmissionInput,
        request_id: Option<&str>,
    ) -> StoreResult<SubmissionReceipt> {
        let (f, ver) = Self::form_by_key(&self.store.db, key).await?;
        let fields = fields_from_json(&ver.fields)?;
        let valid = ValidSubmission::validate(&input.raw, &fields)?;
        let offered = Self::offered(&self.store.db, f.tenant_id, f.id, ver.version).await?;
        let offered_ids: HashSet<GroupId> = offered.iter().map(|g| g.id).collect();
        let mut chosen: Vec<GroupId> = vec![];
        for g in &input.groups {
            if !offered_ids.contains(g) {
                return Err(StoreError::invalid("groups", "choose among the groups this form offers"));
            }
            if !chosen.contains(g) {
                chosen.push(*g);
            }
        }
        if chosen.is_empty() {
            // A single-purpose form (one newsletter) needs no checkbox — as configured, not as
            // many groups as happen to be public now.
            let configured = crate::entities::web_form_group::Entity::find()
                .filter(crate::entities::web_form_group::Column::TenantId.eq(f.tenant_id))
                .filter(crate::entities::web_form_group::Column::FormId.eq(f.id))
                .filter(crate::entities::web_form_group::Column::Version.eq(ver.version))
                .count(&self.store.db)
                .await?;
            match offered.as_slice() {
                [only] if configured == 1 => chosen.push(only.id),
                _ => return Err(StoreError::invalid("groups", "choose at least one")),
            }
        }
        let actor = self.actor(f.tenant_id, request_id).await?;
        let w = actor.begin().await?;
        // An address whose contact was erased (GDPR Art. 17) is on the suppression list: a new
        // subscription needs fresh, provable consent from the address owner, so the form asks for
        // double opt-in confirmation even if it is a single opt-in form. Refusing outright would
        // stop the person from ever subscribing again; confirming proves it is them.
        let suppressed = crate::access::handle::DataHandle::is_suppressed(
            w.tx(),
            w.dialect(),
            f.tenant_id,
            &self.links.keys,
            valid.email.as_str(),
        )
        .await?;
        let double_opt_in = ver.double_opt_in || suppressed;
        let receipt = SubmissionReceipt { confirmation_required: double_opt_in, success_url: ver.success_url.clone() };
        w.lock_row(LockedTable::WebForms, f.id, RowLock::Share).await?;
        // Two submissions of one new address must not create two contacts.
        w.lock_key(email_lock_key(f.tenant_id, ver.intake_book_id, valid.email.as_str())).await?;
        let contact = match find_by_email(&w, ver.intake_book_id, valid.email.as_str()).await? {
            Some(c) => c,
            None => {
                let (first, last) = match (&valid.first_name, &valid.last_name) {
                    // The address stands in for a name (bounded like one, so a long address
                    // is accepted exactly as it would be for a known contact).
                    (None, None) => (None, Some(valid.email.as_str().chars().take(Name::MAX_CHARS).collect())),
                    (a, b) => (a.clone(), b.clone()),
                };
                let m = actor
                    .create_contact_in(
                        &w,
                        ContactInput {
                            address_book_id: AddressBookId(ver.intake_book_id),
                            kind: ContactKind::Person,
                            fields: ContactFields {
                                first_name: first,
                                last_name: last,
                                company_name: None,
                                emails: vec![(valid.email.as_str().to_owned(), None)],
                                phones: valid.phone.iter().map(|p| (p.as_str().to_owned(), None)).collect(),
                            },
                            company_id: None,
                            business_status: None,
                        },
                    )
                    .await?;
                (m.id, m.address_book_id, m.sort_name)
            }
        };
        let text = consent_text::Entity::find()
            .filter(consent_text::Column::TenantId.eq(f.tenant_id))
            .filter(consent_text::Column::Id.eq(ver.consent_text_id))
            .one(w.tx())
            .await?
            .ok_or(StoreError::NotFound)?;
        // Lock order as everywhere: groups, then the contact (see `lock_public`).
        lock_public(&w, &chosen, contact.0).await?;
        let states = states_of(&w, contact.0, &chosen).await?;
        let members = members_of(&w, contact.0, &chosen).await?;
        let request = double_opt_in.then(Uuid::now_v7);
        let evidence = if ver.keep_evidence { input.evidence } else { Evidence::default() };
        let mut asked: Vec<Uuid> = vec![];
        for g in &chosen {
            let confirmed = states.get(&g.0).is_some_and(|s| s.0 == ConsentStatus::Confirmed);
            if confirmed && members.contains_key(&g.0) {
                continue; // Nothing to ask: consent in force and a member already.
            }
            let entry = log::append(
                &w,
                &Entry {
                    contact: contact.0,
                    group: g.0,
                    action: ConsentAction::Given,
                    channel: ConsentChannel::WebForm,
                    form: Some((f.id, ver.version)),
                    text: Some((text.id, text.sha256.clone())),
                    request,
                    evidence: evidence.clone(),
                    agent: None,
                    note: None,
                },
            )
            .await?;
            asked.push(g.0);
            if request.is_none() {
                start_membership(&w, *g, &contact, members.contains_key(&g.0), MembershipSource::WebForm, entry)
                    .await?;
            }
        }
        if let Some(rid) = request.filter(|_| !asked.is_empty()) {
            let now = Utc::now();
            let expires_at = trunc(now + self.links.confirm_ttl);
            consent_request::Entity::insert(consent_request::ActiveModel {
                tenant_id: Set(f.tenant_id),
                id: Set(rid),
                contact_id: Set(contact.0),
                form_id: Set(f.id),
                form_version: Set(ver.version),
                created_at: Set(now),
                expires_at: Set(expires_at),
                confirmed_at: Set(None),
            })
            .exec_without_returning(w.tx())
            .await?;
            if self.links.mail {
                super::mail::queue(&w, rid, now).await?;
            }
            let claims = LinkClaims {
                purpose: LinkPurpose::Confirm,
                expires_at,
                tenant: f.tenant_id,
                contact: contact.0,
                reference: rid,
            };
            // The tenant's mailer sends the link (a webhook); the event carries no address: the
            // mailer reads the contact through the API, under its own rights.
            w.emit(
                EventType::ConsentConfirmationRequested,
                vec![Subject::new(SubjectKind::Contact, contact.0), Subject::new(SubjectKind::WebForm, f.id)],
                serde_json::json!({
                    "confirmationId": rid,
                    "confirmationUrl": self.links.confirm_url(&claims),
                    "expiresAt": expires_at,
                    "formVersion": ver.version,
                    "groupIds": asked,
                }),
            );
        }
        w.commit().await?;
        Ok(receipt)
    }

    /// Confirms a double opt-in request. Idempotent: following the link again answers the same
    /// without writing; after a withdrawal it is refused ([`PublicRefusal::Used`]).
    pub async fn confirm(
        &self,
        token: &str,
        evidence: Evidence,
        request_id: Option<&str>,
    ) -> Result<ConfirmOutcome, PublicRefusal> {
        let claims = self.links.keys.verify(token, LinkPurpose::Confirm, Utc::now())?;
        let actor = self.actor(claims.tenant, request_id).await.map_err(not_found_is_invalid)?;
        let w = actor.begin().await?;
        let req = consent_request::Entity::find()
            .filter(consent_request::Column::TenantId.eq(claims.tenant))
            .filter(consent_request::Column::Id.eq(claims.reference))
            .filter(consent_request::Column::ContactId.eq(claims.contact))
            .one(w.tx())
            .await?
            .ok_or(LinkError::Invalid)?;
        let ver = web_form_version::Entity::find()
            .filter(web_form_version::Column::TenantId.eq(claims.tenant))
            .filter(web_form_version::Column::FormId.eq(req.form_id))
            .filter(web_form_version::Column::Version.eq(req.form_version))
            .one(w.tx())
            .await?;
        let given = crate::entities::consent_entry::Entity::find()
            .filter(crate::entities::consent_entry::Column::TenantId.eq(claims.tenant))
            .filter(crate::entities::consent_entry::Column::ContactId.eq(req.contact_id))
            .filter(crate::entities::consent_entry::Column::RequestId.eq(req.id))
            .filter(crate::entities::consent_entry::Column::Action.eq(ConsentAction::Given.as_str()))
            .all(w.tx())
            .await?;
        let groups: Vec<GroupId> = given.iter().map(|e| GroupId(e.group_id)).collect();
        lock_public(&w, &groups, req.contact_id).await.map_err(not_found_is_invalid)?;
        let contact = contact_row(w.tx(), claims.tenant, req.contact_id).await?.ok_or(LinkError::Invalid)?;
        let public =
            super::public_groups(w.tx(), claims.tenant, &groups.iter().map(|g| g.0).collect::<Vec<_>>()).await?;
        let states = states_of(&w, req.contact_id, &groups).await?;
        let members = members_of(&w, req.contact_id, &groups).await?;
        let keep = ver.as_ref().is_some_and(|v| v.keep_evidence);
        let evidence = if keep { evidence } else { Evidence::default() };
        // A withdrawal after this request's consent voids it: the link cannot bring it back, even
        // when a newer submission is pending for the group.
        let withdrawn_after: HashSet<Uuid> = crate::entities::consent_entry::Entity::find()
            .filter(crate::entities::consent_entry::Column::TenantId.eq(claims.tenant))
            .filter(crate::entities::consent_entry::Column::ContactId.eq(req.contact_id))
            .filter(crate::entities::consent_entry::Column::Action.eq(ConsentAction::Withdrawn.as_str()))
            .filter(crate::entities::consent_entry::Column::At.gte(req.created_at))
            .all(w.tx())
            .await?
            .into_iter()
            .filter(|x| given.iter().any(|g| g.group_id == x.group_id && x.id > g.id))
            .map(|x| x.group_id)
            .collect();
        let (mut applied, mut already) = (vec![], vec![]);
        for e in &given {
            let Some((name, desc)) = public.get(&e.group_id) else { continue };
            if withdrawn_after.contains(&e.group_id) {
                continue;
            }
            let rec = PublicGroupRecord {
                id: GroupId(e.group_id),
                public_name: name.clone(),
                public_description: desc.clone(),
            };
            match states.get(&e.group_id).map(|s| s.0) {
                Some(ConsentStatus::Pending) => {
                    let entry = log::append(
                        &w,
                        &Entry {
                            contact: req.contact_id,
                            group: e.group_id,
                            action: ConsentAction::Confirmed,
                            channel: ConsentChannel::WebForm,
                            form: Some((req.form_id, req.form_version)),
                            text: e.text_id.zip(e.text_sha256.clone()),
                            request: Some(req.id),
                            evidence: evidence.clone(),
                            agent: None,
                            note: None,
                        },
                    )
                    .await?;
                    start_membership(
                        &w,
                        GroupId(e.group_id),
                        &contact,
                        members.contains_key(&e.group_id),
                        MembershipSource::WebForm,
                        entry,
                    )
                    .await?;
                    applied.push(rec);
                }
                Some(ConsentStatus::Confirmed) => already.push(rec),
                _ => {}
            }
        }
        if applied.is_empty() && already.is_empty() {
            return Err(PublicRefusal::Used);
        }
        if req.confirmed_at.is_none() {
            consent_request::Entity::update(consent_request::ActiveModel {
                tenant_id: Set(req.tenant_id),
                id: Set(req.id),
                confirmed_at: Set(Some(Utc::now())),
                ..Default::default()
            })
            .exec(w.tx())
            .await?;
        }
        let (_, tenant_name) = public_name_of(w.tx(), claims.tenant).await?;
        w.commit().await?;
        let already_confirmed = applied.is_empty();
        let mut groups = applied;
        groups.extend(already);
        groups.sort_by(|a, b| a.public_name.cmp(&b.public_name).then(a.id.0.cmp(&b.id.0)));
        Ok(ConfirmOutcome { tenant_name, groups, already_confirmed, redirect: ver.and_then(|v| v.confirmation_url) })
    }

    /// The preference centre of the link's contact (a plain read, no transaction).
    pub async fn preferences(&self, token: &str) -> Result<PreferencesRecord, PublicRefusal> {
        let claims = self.links.keys.verify(token, LinkPurpose::Preferences, Utc::now())?;
        let db = &self.store.db;
        contact_row(db, claims.tenant, claims.contact).await?.ok_or(LinkError::Invalid)?;
        Ok(preference_view(db, claims.tenant, claims.contact).await?)
    }

    /// Applies a change in the preference centre and answers the new state.
    ///
    /// Withdrawing is as easy as giving (Art. 7(3)) and must be complete: "everything" and a
    /// one-click unsubscribe end every consent in force and every membership in a public group —
    /// also for groups that are no longer listed (their public name removed, no form offering
    /// them) and for consent whose membership an agent already ended. A pending double opt-in
    /// is shown as chosen, and left alone unless it is unticked.
    pub async fn update_preferences(
        &self,
        token: &str,
        change: PreferenceChange,
        request_id: Option<&str>,
    ) -> Result<PreferencesRecord, PublicRefusal> {
        let claims = self.links.keys.verify(token, LinkPurpose::Preferences, Utc::now())?;
        let actor = self.actor(claims.tenant, request_id).await.map_err(not_found_is_invalid)?;
        let (tenant, cid) = (claims.tenant, claims.contact);
        let link_group = (!claims.reference.is_nil()).then_some(GroupId(claims.reference));
        let w = actor.begin().await?;
        // What may change, read before locking so that the groups can be locked before the
        // contact (the order of every write path); a group that appears in between is left for
        // the next request.
        let first = preference_view(w.tx(), tenant, cid).await?;
        let mut lockable: Vec<GroupId> = first.groups.iter().map(|g| g.group.id).collect();
        lockable.extend(in_force(w.tx(), tenant, cid).await?.keys().map(|g| GroupId(*g)));
        lockable.extend(link_group);
        lockable.sort();
        lockable.dedup();
        lock_public(&w, &lockable, cid).await.map_err(not_found_is_invalid)?;
        let contact = contact_row(w.tx(), tenant, cid).await?.ok_or(LinkError::Invalid)?;
        let mut before = preference_view(w.tx(), tenant, cid).await?;
        before.groups.retain(|g| lockable.contains(&g.group.id));
        let forced = in_force(w.tx(), tenant, cid).await?;
        let members = members_of(&w, cid, &lockable).await?;
        let public_members = super::public_groups(w.tx(), tenant, &members.keys().copied().collect::<Vec<_>>()).await?;
        // Everything a complete withdrawal ends: consent in force, memberships of public groups.
        let holding: Vec<GroupId> = lockable
            .iter()
            .copied()
            .filter(|g| forced.contains_key(&g.0) || public_members.contains_key(&g.0))
            .collect();
        let listed: HashMap<GroupId, &PreferenceGroupRecord> = before.groups.iter().map(|g| (g.group.id, g)).collect();
        let holds = |g: &PreferenceGroupRecord| g.subscribed || g.pending;
        let unknown = |ids: &[GroupId]| ids.iter().any(|g| !listed.contains_key(g));
        let refuse = || Err(StoreError::invalid("groups", "choose among the groups listed").into());
        let (channel, leave, join): (ConsentChannel, Vec<GroupId>, Vec<GroupId>) = match &change {
            PreferenceChange::Set(keep) => {
                if unknown(keep) {
                    return refuse();
                }
                let leave =
                    before.groups.iter().filter(|g| holds(g) && !keep.contains(&g.group.id)).map(|g| g.group.id);
                let join = before.groups.iter().filter(|g| !holds(g) && keep.contains(&g.group.id)).map(|g| g.group.id);
                (ConsentChannel::PreferenceLink, leave.collect(), join.collect())
            }
            PreferenceChange::Unsubscribe(ids) => {
                if unknown(ids) {
                    return refuse();
                }
                (ConsentChannel::PreferenceLink, ids.iter().copied().filter(|g| holding.contains(g)).collect(), vec![])
            }
            PreferenceChange::Subscribe(ids) => {
                if unknown(ids) {
                    return refuse();
                }
                let join = ids.iter().copied().filter(|g| listed.get(g).is_some_and(|x| !holds(x)));
                (ConsentChannel::PreferenceLink, vec![], join.collect())
            }
            PreferenceChange::WithdrawAll => (ConsentChannel::PreferenceLink, holding.clone(), vec![]),
            PreferenceChange::OneClick => {
                let leave = holding.iter().copied().filter(|g| link_group.is_none_or(|o| o == *g)).collect();
                (ConsentChannel::OneClickUnsubscribe, leave, vec![])
            }
        };
        for g in &leave {
            log::append(&w, &withdrawal(cid, g.0, channel)).await?;
            if let Some(src) = members.get(&g.0) {
                leave_in(
                    &w,
                    *g,
                    &[(cid, contact.1, src.clone())],
                    Some(MembershipSource::SelfService),
                    Some(match channel {
                        ConsentChannel::OneClickUnsubscribe => "consent withdrawn: one-click unsubscribe",
                        _ => "consent withdrawn in the preference centre",
                    }),
                )
                .await?;
            }
        }
        for g in &join {
            // The wording the page showed for the group: the newest enabled form's that offers it.
            let text = listed
                .get(g)
                .and_then(|x| x.consent_text.as_ref())
                .ok_or_else(|| StoreError::invalid("groups", "this group takes no new subscriptions"))?;
            let entry = log::append(
                &w,
                &Entry {
                    contact: cid,
                    group: g.0,
                    action: ConsentAction::Given,
                    channel,
                    form: None,
                    text: Some((text.id, text.sha256.clone())),
                    request: None,
                    evidence: Evidence::default(),
                    agent: None,
                    note: None,
                },
            )
            .await?;
            start_membership(&w, *g, &contact, members.contains_key(&g.0), MembershipSource::SelfService, entry)
                .await?;
        }
        let after = preference_view(w.tx(), tenant, cid).await?;
        w.commit().await?;
        Ok(after)
    }
}

/// The groups where the contact's consent is in force (`CONFIRMED` or `PENDING`), public or not.
async fn in_force<C: ConnectionTrait>(
    conn: &C,
    tenant: Uuid,
    contact: Uuid,
) -> StoreResult<HashMap<Uuid, ConsentStatus>> {
    let mut out = HashMap::new();
    for s in consent_state::Entity::find()
        .filter(consent_state::Column::TenantId.eq(tenant))
        .filter(consent_state::Column::ContactId.eq(contact))
        .filter(
            consent_state::Column::Status.is_in([ConsentStatus::Confirmed.as_str(), ConsentStatus::Pending.as_str()]),
        )
        .all(conn)
        .await?
    {
        let st = ConsentStatus::parse(&s.status).ok_or_else(|| StoreError::corrupt("consent status", &s.status))?;
        out.insert(s.group_id, st);
    }
    Ok(out)
}

fn withdrawal(contact: Uuid, group: Uuid, channel: ConsentChannel) -> Entry {
    Entry {
        contact,
        group,
        action: ConsentAction::Withdrawn,
        channel,
        form: None,
        text: None,
        request: None,
        evidence: Evidence::default(),
        agent: None,
        note: None,
    }
}

/// A tenant or contact that no longer exists makes its links invalid, not "not found".
fn not_found_is_invalid(e: StoreError) -> PublicRefusal {
    match e {
        StoreError::NotFound => PublicRefusal::Link(LinkError::Invalid),
        e => PublicRefusal::Store(e),
    }
}

/// Link expiry in whole seconds (what the token carries).
fn trunc(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

fn email_lock_key(tenant: Uuid, book: Uuid, email: &str) -> i64 {
    let mut h = Sha256::new();
    h.update(b"cohort-email-lock");
    h.update(tenant.as_bytes());
    h.update(book.as_bytes());
    h.update(email.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    i64::from_be_bytes(b)
}

/// (id, book, sort name) of a contact.
type ContactRow = (Uuid, Uuid, String);

async fn find_by_email(w: &UnitOfWork, book: Uuid, email: &str) -> StoreResult<Option<ContactRow>> {
    let v = w.viewer();
    let mut q = Sql::new(v.dialect);
    // From the address to the contacts (the address index), never from the book's contacts to
    // their addresses: without statistics PostgreSQL chose the latter, one probe per contact of
    // the intake book (BENCHMARKS.md, public forms). MATERIALIZED fixes the order on both.
    q.push("WITH e AS MATERIALIZED (SELECT contact_id FROM contact_emails WHERE tenant_id = ")
        .bind(v.tenant_id.0)
        .push(" AND address = ")
        .bind(email.to_owned())
        .push(") SELECT c.id, c.address_book_id, c.sort_name FROM e JOIN contacts c ON c.tenant_id = ")
        .bind(v.tenant_id.0)
        .push(" AND c.id = e.contact_id WHERE c.address_book_id = ")
        .bind(book)
        .push(" ORDER BY c.id LIMIT 1");
    match w.tx().query_one_raw(q.build()).await? {
        Some(r) => Ok(Some((r.try_get("", "id")?, r.try_get("", "address_book_id")?, r.try_get("", "sort_name")?))),
        None => Ok(None),
    }
}

async fn contact_row<C: ConnectionTrait>(conn: &C, tenant: Uuid, id: Uuid) -> StoreResult<Option<ContactRow>> {
    Ok(crate::entities::contact::Entity::find()
        .filter(crate::entities::contact::Column::TenantId.eq(tenant))
        .filter(crate::entities::contact::Column::Id.eq(id))
        .one(conn)
        .await?
        .map(|c| (c.id, c.address_book_id, c.sort_name)))
}

/// The consent state per group: (status, request).
async fn states_of(
    w: &UnitOfWork,
    contact: Uuid,
    groups: &[GroupId],
) -> StoreResult<HashMap<Uuid, (ConsentStatus, Option<Uuid>)>> {
    let mut out = HashMap::new();
    if groups.is_empty() {
        return Ok(out);
    }
    for s in consent_state::Entity::find()
        .filter(consent_state::Column::TenantId.eq(w.viewer().tenant_id.0))
        .filter(consent_state::Column::ContactId.eq(contact))
        .filter(consent_state::Column::GroupId.is_in(groups.iter().map(|g| g.0)))
        .all(w.tx())
        .await?
    {
        let st = ConsentStatus::parse(&s.status).ok_or_else(|| StoreError::corrupt("consent status", &s.status))?;
        out.insert(s.group_id, (st, s.request_id));
    }
    Ok(out)
}

/// The contact's memberships among `groups`: group → source.
async fn members_of(w: &UnitOfWork, contact: Uuid, groups: &[GroupId]) -> StoreResult<HashMap<Uuid, String>> {
    if groups.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(membership::Entity::find()
        .filter(membership::Column::TenantId.eq(w.viewer().tenant_id.0))
        .filter(membership::Column::ContactId.eq(contact))
        .filter(membership::Column::GroupId.is_in(groups.iter().map(|g| g.0)))
        .all(w.tx())
        .await?
        .into_iter()
        .map(|m| (m.group_id, m.source))
        .collect())
}

/// Locks the groups a public request may join or leave (shared: public joins of other contacts
/// proceed; a person's bulk change of the group's members waits), then the contact (exclusive:
/// one public request per person at a time, so the state read is the state written). Groups
/// before contacts, the order every write path takes, so no two of them deadlock.
async fn lock_public(w: &UnitOfWork, groups: &[GroupId], contact: Uuid) -> StoreResult<()> {
    w.lock_groups(&groups.iter().map(|g| g.0).collect::<Vec<_>>(), RowLock::Share).await?;
    w.lock_row(LockedTable::Contacts, contact, RowLock::NoKeyUpdate).await
}

/// Starts (or, for a member already, links) the membership that rests on `entry`. The caller
/// holds the group's lock ([`lock_public`]).
async fn start_membership(
    w: &UnitOfWork,
    group: GroupId,
    contact: &ContactRow,
    member: bool,
    source: MembershipSource,
    entry: Uuid,
) -> StoreResult<()> {
    if member {
        return log::link_membership(w, group.0, contact.0, entry).await;
    }
    join_with_consent(w, group, std::slice::from_ref(contact), source, &Chain::default(), Some(entry)).await
}

/// The wording of the newest enabled form version that offers `group`: what the preference
/// centre shows for it, and what a subscription there records.
async fn offering_text<C: ConnectionTrait>(conn: &C, tenant: Uuid, group: Uuid) -> StoreResult<Option<OfferedText>> {
    let d = crate::core::dialect::Dialect::of(conn.get_database_backend());
    let mut q = Sql::new(d);
    q.push("SELECT t.id, t.sha256, t.purpose, t.language, t.version, t.body FROM web_forms f JOIN web_form_groups fg ON fg.tenant_id = f.tenant_id AND fg.form_id = f.id AND fg.version = f.version JOIN web_form_versions fv ON fv.tenant_id = f.tenant_id AND fv.form_id = f.id AND fv.version = f.version JOIN consent_texts t ON t.tenant_id = fv.tenant_id AND t.id = fv.consent_text_id WHERE f.tenant_id = ")
        .bind(tenant)
        .push(" AND f.enabled = ")
        .bind(true)
        .push(" AND fg.group_id = ")
        .bind(group)
        .push(" ORDER BY fv.created_at DESC, f.id LIMIT 1");
    match conn.query_one_raw(q.build()).await? {
        Some(r) => Ok(Some(OfferedText {
            id: r.try_get("", "id")?,
            sha256: r.try_get("", "sha256")?,
            text: PublicTextRecord {
                purpose: r.try_get("", "purpose")?,
                language: r.try_get("", "language")?,
                version: r.try_get("", "version")?,
                body: r.try_get("", "body")?,
                sha256: r.try_get("", "sha256")?,
            },
        })),
        None => Ok(None),
    }
}

/// The public groups of a contact's preference centre: those it is a member of or has a pending
/// consent for, and those an enabled form offers; by public name.
async fn preference_view<C: ConnectionTrait>(conn: &C, t: Uuid, contact: Uuid) -> StoreResult<PreferencesRecord> {
    let mut q = Sql::new(crate::core::dialect::Dialect::of(conn.get_database_backend()));
    q.push("SELECT g.id, g.public_name, g.public_description, CASE WHEN EXISTS (SELECT 1 FROM group_memberships m WHERE m.tenant_id = g.tenant_id AND m.group_id = g.id AND m.contact_id = ")
        .bind(contact)
        .push(") THEN 1 ELSE 0 END AS subscribed, CASE WHEN EXISTS (SELECT 1 FROM consent_states s WHERE s.tenant_id = g.tenant_id AND s.group_id = g.id AND s.contact_id = ")
        .bind(contact)
        .push(" AND s.status = ")
        .bind(ConsentStatus::Pending.as_str())
        .push(") THEN 1 ELSE 0 END AS pending FROM contact_groups g WHERE g.tenant_id = ")
        .bind(t)
        .push(" AND g.public_name IS NOT NULL AND (g.id IN (SELECT m.group_id FROM group_memberships m WHERE m.tenant_id = ")
        .bind(t)
        .push(" AND m.contact_id = ")
        .bind(contact)
        .push(") OR g.id IN (SELECT s.group_id FROM consent_states s WHERE s.tenant_id = ")
        .bind(t)
        .push(" AND s.contact_id = ")
        .bind(contact)
        .push(" AND s.status = ")
        .bind(ConsentStatus::Pending.as_str())
        .push(") OR g.id IN (SELECT fg.group_id FROM web_forms f JOIN web_form_groups fg ON fg.tenant_id = f.tenant_id AND fg.form_id = f.id AND fg.version = f.version WHERE f.tenant_id = ")
        .bind(t)
        .push(" AND f.enabled = ")
        .bind(true)
        .push(")) ORDER BY g.public_name, g.id");
    let mut groups = BTreeMap::new();
    for r in conn.query_all_raw(q.build()).await? {
        let id: Uuid = r.try_get("", "id")?;
        let subscribed: i32 = r.try_get("", "subscribed")?;
        let pending: i32 = r.try_get("", "pending")?;
        let name: String = r.try_get("", "public_name")?;
        groups.insert(
            (name.clone(), id),
            PreferenceGroupRecord {
                group: PublicGroupRecord {
                    id: GroupId(id),
                    public_name: name,
                    public_description: r.try_get("", "public_description")?,
                },
                subscribed: subscribed != 0,
                pending: pending != 0 && subscribed == 0,
                consent_text: if subscribed == 0 { offering_text(conn, t, id).await? } else { None },
            },
        );
    }
    let (_, tenant_name) = public_name_of(conn, t).await?;
    Ok(PreferencesRecord { tenant_name, groups: groups.into_values().collect() })
}
