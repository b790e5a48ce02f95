//! Writing the consent log: one append per entry, the (group, contact) state folded from it, and
//! the event — always together, inside the caller's unit of work.

use crate::core::uow::UnitOfWork;
use crate::entities::{consent_entry, consent_state, membership};
use crate::error::{StoreError, StoreResult};
use crate::events::{EventType, Subject, SubjectKind};
use chrono::Utc;
use cohort_domain::consent::{ConsentAction, ConsentChannel, ConsentStatus};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::ConsentEntryRecord;

/// IP address and user agent, kept only where the form enables it.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Evidence {
    /// Bounded to what the columns hold (a user agent is free text from the client).
    pub(crate) fn bounded(self) -> Evidence {
        let cut = |s: String, n: usize| -> String {
            let clean: String = s.chars().filter(|c| !c.is_control()).collect();
            clean.chars().take(n).collect()
        };
        Evidence { ip: self.ip.map(|s| cut(s, 64)), user_agent: self.user_agent.map(|s| cut(s, 512)) }
    }
}

pub(crate) struct Entry {
    pub contact: Uuid,
    pub group: Uuid,
    pub action: ConsentAction,
    pub channel: ConsentChannel,
    /// (form, version)
    pub form: Option<(Uuid, i32)>,
    /// (text, its SHA-256)
    pub text: Option<(Uuid, String)>,
    /// The double opt-in request (a `GIVEN` with one awaits confirmation).
    pub request: Option<Uuid>,
    pub evidence: Evidence,
    pub agent: Option<Uuid>,
    pub note: Option<String>,
}

/// Appends `e`, moves the (group, contact) state to what it implies and emits its event.
pub(crate) async fn append(w: &UnitOfWork, e: &Entry) -> StoreResult<Uuid> {
    let v = w.viewer();
    let id = Uuid::now_v7();
    let now = Utc::now();
    let ev = e.evidence.clone().bounded();
    consent_entry::Entity::insert(consent_entry::ActiveModel {
        tenant_id: Set(v.tenant_id.0),
        id: Set(id),
        contact_id: Set(e.contact),
        group_id: Set(e.group),
        action: Set(e.action.as_str().to_owned()),
        at: Set(now),
        channel: Set(e.channel.as_str().to_owned()),
        form_id: Set(e.form.map(|f| f.0)),
        form_version: Set(e.form.map(|f| f.1)),
        text_id: Set(e.text.as_ref().map(|t| t.0)),
        text_sha256: Set(e.text.as_ref().map(|t| t.1.clone())),
        request_id: Set(e.request),
        ip: Set(ev.ip),
        user_agent: Set(ev.user_agent),
        agent_id: Set(e.agent),
        note: Set(e.note.clone()),
    })
    .exec_without_returning(w.tx())
    .await?;
    let status = ConsentStatus::after(e.action, e.request.is_some() && e.action == ConsentAction::Given);
    consent_state::Entity::insert(consent_state::ActiveModel {
        tenant_id: Set(v.tenant_id.0),
        group_id: Set(e.group),
        contact_id: Set(e.contact),
        status: Set(status.as_str().to_owned()),
        entry_id: Set(id),
        request_id: Set(e.request),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([
            consent_state::Column::TenantId,
            consent_state::Column::GroupId,
            consent_state::Column::ContactId,
        ])
        .update_columns([
            consent_state::Column::Status,
            consent_state::Column::EntryId,
            consent_state::Column::RequestId,
            consent_state::Column::UpdatedAt,
        ])
        .to_owned(),
    )
    .exec_without_returning(w.tx())
    .await?;
    let event = match e.action {
        ConsentAction::Given => EventType::ConsentGiven,
        ConsentAction::Confirmed => EventType::ConsentConfirmed,
        ConsentAction::Withdrawn => EventType::ConsentWithdrawn,
    };
    // Ids and the channel only: no e-mail address, no evidence.
    w.emit(
        event,
        vec![Subject::new(SubjectKind::Contact, e.contact), Subject::new(SubjectKind::Group, e.group)],
        serde_json::json!({
            "channel": e.channel.as_str(),
            "status": status.as_str(),
            "formId": e.form.map(|f| f.0),
            "formVersion": e.form.map(|f| f.1),
        }),
    );
    Ok(id)
}

/// Points an existing membership at the consent entry it now rests on.
pub(crate) async fn link_membership(w: &UnitOfWork, group: Uuid, contact: Uuid, entry: Uuid) -> StoreResult<()> {
    membership::Entity::update_many()
        .col_expr(membership::Column::ConsentId, Expr::value(entry))
        .filter(membership::Column::TenantId.eq(w.viewer().tenant_id.0))
        .filter(membership::Column::GroupId.eq(group))
        .filter(membership::Column::ContactId.eq(contact))
        .exec(w.tx())
        .await?;
    Ok(())
}

pub(crate) async fn load<C: ConnectionTrait>(conn: &C, tenant: Uuid, id: Uuid) -> StoreResult<ConsentEntryRecord> {
    let m = consent_entry::Entity::find()
        .filter(consent_entry::Column::TenantId.eq(tenant))
        .filter(consent_entry::Column::Id.eq(id))
        .one(conn)
        .await?
        .ok_or(StoreError::NotFound)?;
    m.try_into()
}
