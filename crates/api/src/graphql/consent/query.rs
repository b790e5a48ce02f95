//! Queries of the consent area.

use crate::error::ApiError;
use crate::graphql::consent::*;
use crate::graphql::{data, ids};
use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use cohort_domain::ids::{ContactId, GroupId, WebFormId};
use cohort_store::PublicLinks;
use std::sync::Arc;

/// A signed preference-centre link for one contact.
#[derive(SimpleObject)]
pub struct PreferenceLink {
    /// The preference centre (a page for people, JSON for programs).
    pub url: String,
    /// For the `List-Unsubscribe` header (RFC 8058: `List-Unsubscribe-Post: List-Unsubscribe=One-Click`).
    pub list_unsubscribe: String,
    /// When the link stops working; ask for a new one for each mailing.
    pub expires_at: DateTime<Utc>,
}

#[derive(Default)]
pub struct ConsentQuery;

#[Object]
impl ConsentQuery {
    /// Consent texts of the tenant, every version (newest first per purpose and language).
    async fn consent_texts(
        &self,
        ctx: &Context<'_>,
        purpose: Option<String>,
        language: Option<String>,
    ) -> async_graphql::Result<Vec<ConsentText>> {
        Ok(data(ctx)?
            .consent_texts(purpose.as_deref(), language.as_deref())
            .await
            .map_err(ApiError::from)?
            .into_iter()
            .map(ConsentText)
            .collect())
    }

    /// The web forms the viewer configures (admins: all; others: those whose intake book they
    /// manage), by name.
    async fn web_forms(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<WebForm>> {
        Ok(data(ctx)?.web_forms().await.map_err(ApiError::from)?.into_iter().map(WebForm).collect())
    }

    /// One web form the viewer configures; `null` if there is none with this id or the viewer may
    /// not configure it.
    async fn web_form(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<WebForm>> {
        let Ok(id) = ids::decode(WebFormId::TAG, &id) else { return Ok(None) };
        match data(ctx)?.web_form(WebFormId(id)).await {
            Ok(f) => Ok(Some(WebForm(f))),
            Err(cohort_store::StoreError::NotFound) => Ok(None),
            Err(e) => Err(ApiError::from(e).into()),
        }
    }

    /// A contact's preference-centre link, for a mailer to put in a message (needs WRITE on the
    /// contact's address book). With `groupId` (a public group), the one-click unsubscribe of
    /// the link leaves only that group; without, every public group.
    async fn preference_link(
        &self,
        ctx: &Context<'_>,
        contact_id: ID,
        group_id: Option<ID>,
    ) -> async_graphql::Result<PreferenceLink> {
        let contact = ContactId(ids::decode(ContactId::TAG, &contact_id)?);
        let group = group_id.as_ref().map(|g| ids::decode(GroupId::TAG, g).map(GroupId)).transpose()?;
        let links = ctx
            .data_opt::<Arc<PublicLinks>>()
            .ok_or_else(|| ApiError::Internal("public links missing from request".into()))?;
        let l = data(ctx)?.preference_link(links, contact, group).await.map_err(ApiError::from)?;
        Ok(PreferenceLink { list_unsubscribe: format!("<{}>", l.url), url: l.url, expires_at: l.expires_at })
    }

    /// The tenant's public name (shown on its public pages), when set.
    async fn public_profile(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        Ok(data(ctx)?.public_profile().await.map_err(ApiError::from)?)
    }
}
