//! SLA contracts, default SLAs per group (inherited down the tree) and the tenant fallback.

use super::*;
use crate::access::handle::DataHandle;
use crate::audit::{Changes, json_or_text};
use crate::core::sql::Sql;
use crate::core::uow::UnitOfWork;
use crate::entities::{group_default_sla, sla_contract, tenant_settings};
use crate::events::{EventType, Subject, SubjectKind};
use cohort_domain::AccessLevel;
use cohort_domain::inherit::{self, Found};
use cohort_domain::sla;
use cohort_domain::text::Name;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

/// Ten years of minutes: a target beyond that is a typo.
const MAX_TARGET_MINUTES: i64 = 10 * 366 * 24 * 60;

fn check_targets(t: &ContractTargets) -> StoreResult<()> {
    let all = std::iter::once(&t.default).chain(t.per_severity.iter().map(|(_, t)| t));
    for x in all {
        for m in [x.first_response, x.resolution].into_iter().flatten() {
            if !(0..=MAX_TARGET_MINUTES).contains(&m) {
                return Err(StoreError::invalid("targets", "targets are 0 to 5,270,400 business minutes"));
            }
        }
    }
    let mut seen = HashSet::new();
    if t.per_severity.iter().any(|(s, _)| !seen.insert(*s)) {
        return Err(StoreError::invalid("targets", "each severity at most once"));
    }
    Ok(())
}

pub(crate) fn contract_record(m: sla_contract::Model) -> StoreResult<ContractRecord> {
    let targets: StoredContractTargets =
        serde_json::from_str(&m.targets).map_err(|_| StoreError::corrupt("sla_contracts.targets", &m.targets))?;
    Ok(ContractRecord {
        id: SlaContractId(m.id),
        name: m.name,
        rank: m.rank,
        calendar: BusinessCalendarId(m.calendar_id),
        targets: targets.targets()?,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

impl UnitOfWork {
    pub(crate) async fn contract_model(&self, id: SlaContractId) -> StoreResult<sla_contract::Model> {
        sla_contract::Entity::find()
            .filter(sla_contract::Column::TenantId.eq(self.viewer().tenant_id.0))
            .filter(sla_contract::Column::Id.eq(id.0))
            .one(self.tx())
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// The snapshot a ticket keeps of a contract (its targets and calendar now).
    pub(crate) async fn snapshot(&self, id: SlaContractId) -> StoreResult<(sla_contract::Model, SlaSnapshot)> {
        let c = self.contract_model(id).await?;
        let cal = self.calendar_model(BusinessCalendarId(c.calendar_id)).await?;
        let targets: StoredContractTargets =
            serde_json::from_str(&c.targets).map_err(|_| StoreError::corrupt("sla_contracts.targets", &c.targets))?;
        let snap =
            SlaSnapshot { contract_name: c.name.clone(), calendar: super::calendars::stored_calendar(&cal)?, targets };
        Ok((c, snap))
    }
}

impl DataHandle {
    pub async fn create_sla_contract(&self, input: &ContractInput) -> StoreResult<ContractRecord> {
        let v = self.viewer();
        require_admin(v, "configuring SLA contracts")?;
        let name = Name::parse("name", &input.name)?.into_string();
        check_targets(&input.targets)?;
        let w = self.begin().await?;
        w.calendar_model(input.calendar).await?;
        let now = Utc::now();
        let m = sla_contract::Model {
            tenant_id: v.tenant_id.0,
            id: Uuid::now_v7(),
            name,
            rank: input.rank,
            calendar_id: input.calendar.0,
            targets: serde_json::to_string(&StoredContractTargets::of(&input.targets)).unwrap_or_default(),
            created_at: now,
            updated_at: now,
        };
        sla_contract::Entity::insert(sla_contract::ActiveModel::from(m.clone()))
            .exec_without_returning(w.tx())
            .await
            .map_err(|e| StoreError::unique_as_conflict(e, "a contract with this name already exists"))?;
        w.audit("slaContract.create", "SlaContract", Some(m.id), serde_json::json!({"name": m.name, "rank": m.rank}));
        w.emit(
            EventType::SlaContractCreated,
            vec![Subject::new(SubjectKind::SlaContract, m.id)],
            serde_json::json!({}),
        );
        w.commit().await?;
        contract_record(m)
    }

    /// Replaces a contract's name, rank, calendar and targets. Existing tickets keep what they
    /// were given; `switch_ticket_sla` to the same contract re-applies it to one ticket.
    pub async fn update_sla_contract(&self, id: SlaContractId, input: &ContractInput) -> StoreResult<ContractRecord> {
        let v = self.viewer();
        require_admin(v, "configuring SLA contracts")?;
        let name = Name::parse("name", &input.name)?.into_string();
        check_targets(&input.targets)?;
        let w = self.begin().await?;
        let mut m = w.contract_model(id).await?;
        let old = m.clone();
        w.calendar_model(input.calendar).await?;
        m.name = name;
        m.rank = input.rank;
        m.calendar_id = input.calendar.0;
        m.targets = serde_json::to_string(&StoredContractTargets::of(&input.targets)).unwrap_or_default();
        m.updated_at = Utc::now();
        sla_contract::Entity::update(sla_contract::ActiveModel::from(m.clone()).reset_all())
            .exec(w.tx())
            .await
            .map_err(|e| StoreError::unique_as_conflict(e, "a contract with this name already exists"))?;
        let mut changes = Changes::new();
        changes
            .field("name", &old.name, &m.name)
            .field("rank", old.rank, m.rank)
            .field("calendarId", old.calendar_id, m.calendar_id)
            .field("targets", json_or_text(&old.targets), json_or_text(&m.targets));
        w.audit("slaContract.update", "SlaContract", Some(m.id), changes.details(serde_json::json!({})));
        w.emit(
            EventType::SlaContractUpdated,
            vec![Subject::new(SubjectKind::SlaContract, m.id)],
            serde_json::json!({}),
        );
        w.commit().await?;
        contract_record(m)
    }

    pub async fn sla_contracts(&self) -> StoreResult<Vec<ContractRecord>> {
        sla_contract::Entity::find()
            .filter(sla_contract::Column::TenantId.eq(self.viewer().tenant_id.0))
            .order_by_desc(sla_contract::Column::Rank)
            .order_by_asc(sla_contract::Column::Name)
            .all(&self.db)
            .await?
            .into_iter()
            .map(contract_record)
            .collect()
    }

    pub async fn sla_contracts_by_ids(&self, ids: &[SlaContractId]) -> StoreResult<Vec<ContractRecord>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        sla_contract::Entity::find()
            .filter(sla_contract::Column::TenantId.eq(self.viewer().tenant_id.0))
            .filter(sla_contract::Column::Id.is_in(ids.iter().map(|i| i.0)))
            .all(&self.db)
            .await?
            .into_iter()
            .map(contract_record)
            .collect()
    }

    /// Sets (or with `None` clears) a group's default SLA (MANAGE on its home book).
    pub async fn set_group_default_sla(&self, g: GroupId, contract: Option<SlaContractId>) -> StoreResult<()> {
        let v = self.viewer();
        let w = self.begin().await?;
        self.group_for(w.tx(), v, g, AccessLevel::Manage).await?;
        w.lock_row(crate::core::uow::LockedTable::Groups, g.0, crate::core::dialect::RowLock::Share).await?;
        let changed = match contract {
            Some(c) => {
                w.contract_model(c).await?;
                group_default_sla::Entity::insert(group_default_sla::ActiveModel {
                    tenant_id: Set(v.tenant_id.0),
                    group_id: Set(g.0),
                    sla_contract_id: Set(c.0),
                    updated_by: Set(Some(v.user_id.0)),
                    updated_at: Set(Utc::now()),
                })
                .on_conflict(
                    OnConflict::columns([group_default_sla::Column::TenantId, group_default_sla::Column::GroupId])
                        .update_columns([
                            group_default_sla::Column::SlaContractId,
                            group_default_sla::Column::UpdatedBy,
                            group_default_sla::Column::UpdatedAt,
                        ])
                        .to_owned(),
                )
                .exec_without_returning(w.tx())
                .await?;
                true
            }
            None => {
                group_default_sla::Entity::delete_many()
                    .filter(group_default_sla::Column::TenantId.eq(v.tenant_id.0))
                    .filter(group_default_sla::Column::GroupId.eq(g.0))
                    .exec(w.tx())
                    .await?
                    .rows_affected
                    > 0
            }
        };
        if changed {
            w.audit(
                "group.setDefaultSla",
                "Group",
                Some(g.0),
                serde_json::json!({"slaContractId": contract.map(|c| c.0)}),
            );
            let mut subjects = vec![Subject::new(SubjectKind::Group, g.0)];
            subjects.extend(contract.map(|c| Subject::new(SubjectKind::SlaContract, c.0)));
            w.emit(EventType::DefaultSlaSet, subjects, serde_json::json!({"cleared": contract.is_none()}));
        }
        w.commit().await?;
        Ok(())
    }

    /// A visible group's effective default SLA: its own, else its nearest ancestor's.
    pub async fn effective_default_sla(&self, g: GroupId) -> StoreResult<Option<EffectiveSlaRecord>> {
        let v = self.viewer();
        if self.groups_by_ids(&[g]).await?.is_empty() {
            return Err(StoreError::NotFound);
        }
        let mut q = Sql::new(v.dialect);
        q.push("SELECT cl.ancestor_id, cl.depth, d.sla_contract_id FROM group_closure cl JOIN group_default_slas d ON d.tenant_id = cl.tenant_id AND d.group_id = cl.ancestor_id WHERE cl.tenant_id = ")
            .bind(v.tenant_id.0)
            .push(" AND cl.descendant_id = ")
            .bind(g.0);
        let mut found = vec![];
        for r in self.db.query_all_raw(q.build()).await? {
            found.push(Found {
                defined_on: GroupId(r.try_get("", "ancestor_id")?),
                depth: r.try_get("", "depth")?,
                value: SlaContractId(r.try_get("", "sla_contract_id")?),
            });
        }
        Ok(inherit::effective(found).and_then(|e| {
            let (from, inherited) = (e.from, !e.is_own());
            e.values.into_iter().next().map(|c| EffectiveSlaRecord { contract: c, defined_on: from, inherited })
        }))
    }

    /// Sets (or clears) the tenant's fallback SLA (admin).
    pub async fn set_tenant_default_sla(&self, contract: Option<SlaContractId>) -> StoreResult<()> {
        let v = self.viewer();
        require_admin(v, "setting the tenant's default SLA")?;
        let w = self.begin().await?;
        if let Some(c) = contract {
            w.contract_model(c).await?;
        }
        tenant_settings::Entity::insert(tenant_settings::ActiveModel {
            tenant_id: Set(v.tenant_id.0),
            default_sla_contract_id: Set(contract.map(|c| c.0)),
            updated_at: Set(Utc::now()),
            ..Default::default()
        })
        .on_conflict(
            OnConflict::column(tenant_settings::Column::TenantId)
                .update_columns([tenant_settings::Column::DefaultSlaContractId, tenant_settings::Column::UpdatedAt])
                .to_owned(),
        )
        .exec_without_returning(w.tx())
        .await?;
        w.audit(
            "tenant.setDefaultSla",
            "Tenant",
            Some(v.tenant_id.0),
            serde_json::json!({"slaContractId": contract.map(|c| c.0)}),
        );
        let subjects = contract.map(|c| Subject::new(SubjectKind::SlaContract, c.0)).into_iter().collect();
        w.emit(EventType::DefaultSlaSet, subjects, serde_json::json!({"tenant": true, "cleared": contract.is_none()}));
        w.commit().await?;
        Ok(())
    }

    pub async fn tenant_default_sla(&self) -> StoreResult<Option<SlaContractId>> {
        Ok(tenant_settings::Entity::find()
            .filter(tenant_settings::Column::TenantId.eq(self.viewer().tenant_id.0))
            .one(&self.db)
            .await?
            .and_then(|s| s.default_sla_contract_id)
            .map(SlaContractId))
    }
}

/// The default SLA for a contact: all its groups (hidden ones too), one statement, plus the
/// tenant fallback.
pub(crate) async fn choose_for_contact<C: ConnectionTrait>(
    conn: &C,
    v: &Viewer,
    contact: ContactId,
) -> StoreResult<SlaChoice> {
    let mut q = Sql::new(v.dialect);
    q.push("SELECT m.group_id, g.precedence, cl.ancestor_id, cl.depth, d.sla_contract_id, k.rank FROM group_memberships m JOIN contact_groups g ON g.tenant_id = m.tenant_id AND g.id = m.group_id JOIN group_closure cl ON cl.tenant_id = m.tenant_id AND cl.descendant_id = m.group_id JOIN group_default_slas d ON d.tenant_id = cl.tenant_id AND d.group_id = cl.ancestor_id JOIN sla_contracts k ON k.tenant_id = d.tenant_id AND k.id = d.sla_contract_id WHERE m.tenant_id = ")
        .bind(v.tenant_id.0)
        .push(" AND m.contact_id = ")
        .bind(contact.0);
    let mut members = vec![];
    let mut found = vec![];
    for r in conn.query_all_raw(q.build()).await? {
        let g = GroupId(r.try_get("", "group_id")?);
        members.push((g, r.try_get::<i32>("", "precedence")?));
        found.push((
            g,
            Found {
                defined_on: GroupId(r.try_get("", "ancestor_id")?),
                depth: r.try_get("", "depth")?,
                value: (SlaContractId(r.try_get("", "sla_contract_id")?), r.try_get::<i32>("", "rank")?),
            },
        ));
    }
    members.sort();
    members.dedup();
    let fallback = tenant_settings::Entity::find()
        .filter(tenant_settings::Column::TenantId.eq(v.tenant_id.0))
        .one(conn)
        .await?
        .and_then(|s| s.default_sla_contract_id)
        .map(SlaContractId);
    Ok(sla::choose(members, found, fallback))
}
