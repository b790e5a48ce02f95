//! The `ExternalId` type, its input, and the batched `externalIds` field of the four types that
//! carry them.

use crate::graphql::loader;
use crate::graphql::loaders::ExternalIdsOf;
use async_graphql::{Context, InputObject, SimpleObject};
use cohort_store::{ExternalIdRecord, ExternalTarget};

/// The id a source system (an ERP, a webshop) uses for an object: at most one per object and
/// system, unique per tenant, object type and system.
#[derive(SimpleObject, Clone, Debug)]
pub struct ExternalId {
    /// The source system: 1 to 64 characters, `a-z` or `0-9` first, then also `.`, `_` and `-`
    /// (`erp`, `shop.de`).
    pub system: String,
    /// The source system's id of the object (1 to 200 characters, compared exactly). Called
    /// `value`, not `id`: `id` is the cache key of every type, and this one is neither global nor
    /// unique (`erp`/`4711` and `shop`/`4711` would collapse into one entry of a normalised cache).
    pub value: String,
}

impl From<ExternalIdRecord> for ExternalId {
    fn from(r: ExternalIdRecord) -> Self {
        ExternalId { system: r.system, value: r.id }
    }
}

/// An external id to give an object when it is created.
#[derive(InputObject, Clone, Debug)]
pub struct ExternalIdInput {
    /// The source system (`erp`): 1 to 64 characters, `a-z` or `0-9` first, then also `.`, `_`
    /// and `-`.
    pub system: String,
    /// The source system's id (trimmed; 1 to 200 characters, no control characters).
    pub id: String,
}

/// The store's form of a create mutation's `externalIds` (absent = none).
pub(crate) fn external_inputs(v: Option<Vec<ExternalIdInput>>) -> Vec<ExternalIdRecord> {
    v.unwrap_or_default().into_iter().map(|e| ExternalIdRecord { system: e.system, id: e.id }).collect()
}

/// The `externalIds` field of a contact, group, product or price list, through the request's
/// DataLoader: a page of objects costs one statement per type, not one per object.
pub(crate) async fn external_ids_field(
    ctx: &Context<'_>,
    target: ExternalTarget,
) -> async_graphql::Result<Vec<ExternalId>> {
    Ok(loader(ctx)?.load_one(ExternalIdsOf(target)).await?.unwrap_or_default().into_iter().map(Into::into).collect())
}
