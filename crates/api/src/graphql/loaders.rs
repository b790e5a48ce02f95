//! Per-request DataLoaders: every per-row lookup a page needs (a contact's address book, e-mails,
//! status, company) is batched into one viewer-scoped store call per page, never one per row.

use crate::error::ApiError;
use cohort_domain::ids::{
    AddressBookId, BusinessStatusId, ContactId, GroupId, OrderId, ProductId, UserGroupId, UserId,
};
use cohort_store::{
    AddressBookRecord, BusinessStatusRecord, ContactRecord, DataHandle, EmailRecord, GroupRecord, MembershipRecord,
    PhoneRecord, UserGroupRecord, UserRecord,
};
use std::collections::HashMap;

/// The loaders hold the request's data handle: they can reach exactly what its viewer may.
pub struct Loaders {
    pub data: DataHandle,
    /// Member pages a `group(id)` resolver read together with the group (one statement instead
    /// of two), each waiting for the `members` field it was read for.
    pub prefetched_members: std::sync::Mutex<Vec<PrefetchedMembers>>,
}

impl Loaders {
    pub fn new(data: DataHandle) -> Loaders {
        Loaders { data, prefetched_members: Default::default() }
    }
}

/// Which member page a `members` field asks for: a prefetched page serves only the field that
/// asks for exactly this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembersKey {
    pub group: GroupId,
    pub include_subgroups: bool,
    pub order: cohort_store::MemberOrder,
    pub consent: Option<cohort_domain::consent::ConsentStatus>,
    pub first: u32,
    pub after: Option<String>,
    pub with_total: bool,
    pub membership: bool,
}

/// A member page read ahead, and its total when the statement carried it.
pub struct PrefetchedMembers {
    pub key: MembersKey,
    pub page: cohort_store::Page<cohort_store::MemberRecord>,
    pub total: Option<u64>,
}

/// Wrapper keys so e-mails, phones and contacts (all keyed by contact id) use separate loaders:
/// a query selecting e-mails only never reads phones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EmailsOf(pub ContactId);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PhonesOf(pub ContactId);

/// A contact's memberships (in groups the viewer can see).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MembershipsOf(pub ContactId);

/// A group's visible member count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MemberCountOf {
    pub group: GroupId,
    pub include_subgroups: bool,
}

/// The membership that makes `contact` an effective member of `root` (itself or a subgroup).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EffectiveOf {
    pub root: GroupId,
    pub contact: ContactId,
}

type R<K, V> = Result<HashMap<K, V>, async_graphql::Error>;

fn err(e: cohort_store::StoreError) -> async_graphql::Error {
    ApiError::from(e).into()
}

impl async_graphql::dataloader::Loader<ContactId> for Loaders {
    type Value = ContactRecord;
    type Error = async_graphql::Error;
    async fn load(&self, keys: &[ContactId]) -> R<ContactId, ContactRecord> {
        Ok(self.data.contacts_by_ids(keys).await.map_err(err)?.into_iter().map(|c| (c.id, c)).collect())
    }
}

impl async_graphql::dataloader::Loader<EmailsOf> for Loaders {
    type Value = Vec<EmailRecord>;
    type Error = async_graphql::Error;
    async fn load(&self, keys: &[EmailsOf]) -> R<EmailsOf, Vec<EmailRecord>> {
        let ids: Vec<ContactId> = keys.iter().map(|k| k.0).collect();
        // Every key gets an answer (empty lists included), so the request cache remembers it.
        let mut found = self.data.contact_emails(&ids).await.map_err(err)?;
        Ok(keys.iter().map(|k| (*k, found.remove(&k.0).unwrap_or_default())).collect())
    }
}

impl async_graphql::dataloader::Loader<PhonesOf> for Loaders {
    type Value = Vec<PhoneRecord>;
    type Error = async_graphql::Error;
    async fn load(&self, keys: &[PhonesOf]) -> R<PhonesOf, Vec<PhoneRecord>> {
        let ids: Vec<ContactId> = keys.iter().map(|k| k.0).collect();
        let mut found = self.data.contact_phones(&ids).await.map_err(err)?;
        Ok(keys.iter().map(|k| (*k, found.remove(&k.0).unwrap_or_default())).collect())
    }
}

impl async_graphql::dataloader::Loader<AddressBookId> for Loaders {
    type Value = AddressBookRecord;
    type Error = async_graphql::Error;
    async fn load(&self, keys: &[AddressBookId]) -> R<AddressBookId, AddressBookRecord> {
        Ok(self.data.address_books_by_ids(keys).await.map_err(err)?.into_iter().map(|b| (b.id, b)).collect())
    }
}

impl async_graphql::dataloader::Loader<BusinessStatusId> for Loaders {
    type Value = BusinessStatusRecord;
    type Error = async_graphql::Error;
    async fn load(&self, keys: &[BusinessStatusId]) -> R<BusinessStatusId, BusinessStatusRecord> {
        Ok(self.data.business_statuses_by_ids(keys).await.map_err(err)?.into_iter().map(|s| (s.id, s)).collect())
    }
}

impl async_graphql::dataloader::Loader<UserId> for Loaders {
    type Value = UserRecord;
    type Error = async_graphql::Error;
    async fn load(&self, keys: &[UserId]) -> R<UserId, UserRecord> {
        Ok(self.data.users_by_ids(keys).await.map_err(err)?.into_iter().map(|u| (u.id, u)).collect())
    }
}

impl async_graphql::dataloader::Loader<UserGroupId> for Loaders {
    type Value = UserGroupRecord;
    type Error = async_graphql::Error;
    async fn load(&self, keys: &[UserGroupId]) -> R<UserGroupId, UserGroupRecord> {
        Ok(self.data.user_groups_by_ids(keys).await.map_err(err)?.into_iter().map(|g| (g.id, g)).collect())
    }
}

impl async_graphql::dataloader::Loader<GroupId> for Loaders {
    type Value = GroupRecord;
    type Error = async_graphql::Error;
    async fn load(&self, keys: &[GroupId]) -> R<GroupId, GroupRecord> {
        Ok(self.data.groups_by_ids(keys).await.map_err(err)?.into_iter().map(|g| (g.id, g)).collect())
    }
}

/// Each membership comes with its group (read by the same statement); whoever loads them feeds
/// the groups to the `GroupId` loader, so `membership { group { … } }` costs no statement more.
impl async_graphql::dataloader::Loader<MembershipsOf> for Loaders {
    type Value = Vec<(MembershipRecord, GroupRecord)>;
    type Error = async_graphql::Error;
    async fn load(&self, keys: &[MembershipsOf]) -> R<MembershipsOf, Vec<(MembershipRecord, GroupRecord)>> {
        let ids: Vec<ContactId> = keys.iter().map(|k| k.0).collect();
        let mut found = self.data.contact_memberships(&ids).await.map_err(err)?;
        Ok(keys.iter().map(|k| (*k, found.remove(&k.0).unwrap_or_default())).collect())
    }
}

impl async_graphql::dataloader::Loader<EffectiveOf> for Loaders {
    /// `None`: not an effective member (for the viewer) — cached like any answer.
    type Value = Option<MembershipRecord>;
    type Error = async_graphql::Error;
    async fn load(&self, keys: &[EffectiveOf]) -> R<EffectiveOf, Option<MembershipRecord>> {
        // One page asks for one root: group the keys by root (normally a single call).
        let mut by_root: HashMap<GroupId, Vec<ContactId>> = HashMap::new();
        for k in keys {
            by_root.entry(k.root).or_default().push(k.contact);
        }
        let mut out = HashMap::new();
        for (root, contacts) in by_root {
            let mut found = self.data.effective_memberships(root, &contacts).await.map_err(err)?;
            for c in contacts {
                out.insert(EffectiveOf { root, contact: c }, found.remove(&c));
            }
        }
        Ok(out)
    }
}

impl async_graphql::dataloader::Loader<MemberCountOf> for Loaders {
    type Value = u64;
    type Error = async_graphql::Error;
    async fn load(&self, keys: &[MemberCountOf]) -> R<MemberCountOf, u64> {
        let mut out = HashMap::new();
        for include_subgroups in [false, true] {
            let groups: Vec<GroupId> =
                keys.iter().filter(|k| k.include_subgroups == include_subgroups).map(|k| k.group).collect();
            if groups.is_empty() {
                continue;
            }
            let counts = self.data.group_member_counts(&groups, include_subgroups).await.map_err(err)?;
            for g in groups {
                out.insert(MemberCountOf { group: g, include_subgroups }, counts.get(&g).copied().unwrap_or(0));
            }
        }
        Ok(out)
    }
}

impl async_graphql::dataloader::Loader<ProductId> for Loaders {
    type Value = cohort_store::ProductRecord;
    type Error = async_graphql::Error;
    async fn load(&self, keys: &[ProductId]) -> R<ProductId, cohort_store::ProductRecord> {
        Ok(self.data.products_by_ids(keys).await.map_err(err)?.into_iter().map(|p| (p.id, p)).collect())
    }
}

impl async_graphql::dataloader::Loader<OrderId> for Loaders {
    /// An order's lines (orders the viewer cannot see have none).
    type Value = Vec<cohort_store::OrderLineRecord>;
    type Error = async_graphql::Error;
    async fn load(&self, keys: &[OrderId]) -> R<OrderId, Vec<cohort_store::OrderLineRecord>> {
        let mut found = self.data.order_lines(keys).await.map_err(err)?;
        Ok(keys.iter().map(|k| (*k, found.remove(k).unwrap_or_default())).collect())
    }
}

impl async_graphql::dataloader::Loader<cohort_domain::ids::ProcessingAreaId> for Loaders {
    type Value = cohort_store::ProcessingAreaRecord;
    type Error = async_graphql::Error;
    async fn load(
        &self,
        keys: &[cohort_domain::ids::ProcessingAreaId],
    ) -> R<cohort_domain::ids::ProcessingAreaId, cohort_store::ProcessingAreaRecord> {
        Ok(self.data.processing_areas_by_ids(keys).await.map_err(err)?.into_iter().map(|q| (q.id, q)).collect())
    }
}

impl async_graphql::dataloader::Loader<cohort_domain::ids::ProcessAreaId> for Loaders {
    type Value = cohort_store::ProcessAreaRecord;
    type Error = async_graphql::Error;
    async fn load(
        &self,
        keys: &[cohort_domain::ids::ProcessAreaId],
    ) -> R<cohort_domain::ids::ProcessAreaId, cohort_store::ProcessAreaRecord> {
        Ok(self.data.process_areas_by_ids(keys).await.map_err(err)?.into_iter().map(|a| (a.id, a)).collect())
    }
}

impl async_graphql::dataloader::Loader<cohort_domain::ids::MessageId> for Loaders {
    type Value = cohort_store::MessageRecord;
    type Error = async_graphql::Error;
    async fn load(
        &self,
        keys: &[cohort_domain::ids::MessageId],
    ) -> R<cohort_domain::ids::MessageId, cohort_store::MessageRecord> {
        Ok(self.data.messages_by_ids(keys).await.map_err(err)?.into_iter().map(|m| (m.id, m)).collect())
    }
}

/// A message's assignment history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AssignmentsOf(pub cohort_domain::ids::MessageId);

impl async_graphql::dataloader::Loader<AssignmentsOf> for Loaders {
    type Value = Vec<cohort_store::AssignmentRecord>;
    type Error = async_graphql::Error;
    async fn load(&self, keys: &[AssignmentsOf]) -> R<AssignmentsOf, Vec<cohort_store::AssignmentRecord>> {
        let ids: Vec<_> = keys.iter().map(|k| k.0).collect();
        let mut found = self.data.message_assignments(&ids).await.map_err(err)?;
        Ok(keys.iter().map(|k| (*k, found.remove(&k.0).unwrap_or_default())).collect())
    }
}

impl async_graphql::dataloader::Loader<cohort_domain::ids::SlaContractId> for Loaders {
    type Value = cohort_store::ContractRecord;
    type Error = async_graphql::Error;
    async fn load(
        &self,
        keys: &[cohort_domain::ids::SlaContractId],
    ) -> R<cohort_domain::ids::SlaContractId, cohort_store::ContractRecord> {
        Ok(self.data.sla_contracts_by_ids(keys).await.map_err(err)?.into_iter().map(|c| (c.id, c)).collect())
    }
}

impl async_graphql::dataloader::Loader<cohort_domain::ids::BusinessCalendarId> for Loaders {
    type Value = cohort_store::CalendarRecord;
    type Error = async_graphql::Error;
    async fn load(
        &self,
        keys: &[cohort_domain::ids::BusinessCalendarId],
    ) -> R<cohort_domain::ids::BusinessCalendarId, cohort_store::CalendarRecord> {
        Ok(self.data.business_calendars_by_ids(keys).await.map_err(err)?.into_iter().map(|c| (c.id, c)).collect())
    }
}

impl async_graphql::dataloader::Loader<cohort_domain::ids::TicketId> for Loaders {
    type Value = cohort_store::TicketRecord;
    type Error = async_graphql::Error;
    async fn load(
        &self,
        keys: &[cohort_domain::ids::TicketId],
    ) -> R<cohort_domain::ids::TicketId, cohort_store::TicketRecord> {
        Ok(self.data.tickets_by_ids(keys).await.map_err(err)?.into_iter().map(|t| (t.id, t)).collect())
    }
}

/// A ticket's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HistoryOf(pub cohort_domain::ids::TicketId);

impl async_graphql::dataloader::Loader<HistoryOf> for Loaders {
    type Value = Vec<cohort_store::TicketEventRecord>;
    type Error = async_graphql::Error;
    async fn load(&self, keys: &[HistoryOf]) -> R<HistoryOf, Vec<cohort_store::TicketEventRecord>> {
        let ids: Vec<_> = keys.iter().map(|k| k.0).collect();
        let mut found = self.data.ticket_history(&ids).await.map_err(err)?;
        Ok(keys.iter().map(|k| (*k, found.remove(&k.0).unwrap_or_default())).collect())
    }
}

impl async_graphql::dataloader::Loader<cohort_domain::ids::SequenceId> for Loaders {
    type Value = cohort_store::SequenceRecord;
    type Error = async_graphql::Error;
    async fn load(
        &self,
        keys: &[cohort_domain::ids::SequenceId],
    ) -> R<cohort_domain::ids::SequenceId, cohort_store::SequenceRecord> {
        Ok(self.data.sequences_by_ids(keys).await.map_err(err)?.into_iter().map(|s| (s.id, s)).collect())
    }
}

/// The steps that ran for an enrolment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StepRunsOf(pub cohort_domain::ids::EnrolmentId);

impl async_graphql::dataloader::Loader<StepRunsOf> for Loaders {
    type Value = Vec<cohort_store::StepRunRecord>;
    type Error = async_graphql::Error;
    async fn load(&self, keys: &[StepRunsOf]) -> R<StepRunsOf, Vec<cohort_store::StepRunRecord>> {
        let ids: Vec<_> = keys.iter().map(|k| k.0).collect();
        let mut found = self.data.enrolment_steps(&ids).await.map_err(err)?;
        Ok(keys.iter().map(|k| (*k, found.remove(&k.0).unwrap_or_default())).collect())
    }
}

/// A contact's enrolments in follow-up sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnrolmentsOf(pub ContactId);

impl async_graphql::dataloader::Loader<EnrolmentsOf> for Loaders {
    type Value = Vec<cohort_store::EnrolmentRecord>;
    type Error = async_graphql::Error;
    async fn load(&self, keys: &[EnrolmentsOf]) -> R<EnrolmentsOf, Vec<cohort_store::EnrolmentRecord>> {
        let ids: Vec<_> = keys.iter().map(|k| k.0).collect();
        let mut found = self.data.contact_enrolments(&ids).await.map_err(err)?;
        Ok(keys.iter().map(|k| (*k, found.remove(&k.0).unwrap_or_default())).collect())
    }
}

impl async_graphql::dataloader::Loader<cohort_domain::ids::ConsentEntryId> for Loaders {
    type Value = cohort_store::ConsentEntryRecord;
    type Error = async_graphql::Error;
    async fn load(
        &self,
        keys: &[cohort_domain::ids::ConsentEntryId],
    ) -> R<cohort_domain::ids::ConsentEntryId, cohort_store::ConsentEntryRecord> {
        Ok(self.data.consent_entries_by_ids(keys).await.map_err(err)?.into_iter().map(|e| (e.id, e)).collect())
    }
}

/// The external ids of a contact, group, product or price list (none for objects the viewer
/// cannot see).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExternalIdsOf(pub cohort_store::ExternalTarget);

impl async_graphql::dataloader::Loader<ExternalIdsOf> for Loaders {
    type Value = Vec<cohort_store::ExternalIdRecord>;
    type Error = async_graphql::Error;
    async fn load(&self, keys: &[ExternalIdsOf]) -> R<ExternalIdsOf, Vec<cohort_store::ExternalIdRecord>> {
        // One store call (one statement) per type among the keys, normally just one.
        let mut out = HashMap::new();
        for kind in cohort_domain::external::ExternalKind::ALL {
            let of_kind: Vec<ExternalIdsOf> = keys.iter().filter(|k| k.0.kind() == kind).copied().collect();
            if of_kind.is_empty() {
                continue;
            }
            let ids: Vec<uuid::Uuid> = of_kind.iter().map(|k| k.0.uuid()).collect();
            let mut found = self.data.external_ids_of(kind, &ids).await.map_err(err)?;
            // Every key gets an answer (empty lists included), so the request cache remembers it.
            for k in of_kind {
                out.insert(k, found.remove(&k.0.uuid()).unwrap_or_default());
            }
        }
        Ok(out)
    }
}
