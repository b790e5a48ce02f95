//! Business calendars (admin configuration; readable by every member of the tenant).

use super::*;
use crate::access::handle::DataHandle;
use crate::audit::Changes;
use crate::core::uow::UnitOfWork;
use crate::entities::business_calendar;
use crate::events::{EventType, Subject, SubjectKind};
use cohort_domain::calendar::DAY_MINUTES;
use cohort_domain::text::Name;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

/// "HH:MM" → minutes after midnight ("24:00" allowed as an end).
fn parse_hhmm(s: &str) -> StoreResult<u16> {
    let bad = || {
        StoreError::invalid(
            "intervals",
            format!("'{}' is not a time of day (HH:MM)", s.chars().take(20).collect::<String>()),
        )
    };
    let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m >= 60 || h * 60 + m > DAY_MINUTES {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

pub(crate) fn build_calendar(input: &CalendarInput) -> StoreResult<Calendar> {
    let tz = parse_time_zone(&input.time_zone)?;
    if input.always_open {
        if !input.intervals.is_empty() || !input.holidays.is_empty() {
            return Err(StoreError::invalid("alwaysOpen", "a 24×7 calendar has no intervals or holidays"));
        }
        return Ok(Calendar::always_open(tz));
    }
    if input.intervals.len() > 100 {
        return Err(StoreError::invalid("intervals", "at most 100 intervals"));
    }
    let mut week: [Vec<WorkInterval>; 7] = Default::default();
    for (day, start, end) in &input.intervals {
        let slot = week
            .get_mut(*day as usize)
            .ok_or_else(|| StoreError::invalid("intervals", "weekday must be 0 (Monday) to 6 (Sunday)"))?;
        slot.push(WorkInterval { start: parse_hhmm(start)?, end: parse_hhmm(end)? });
    }
    let mut seen = HashSet::new();
    for h in &input.holidays {
        if !seen.insert((h.date, h.recurring)) {
            return Err(StoreError::invalid("holidays", format!("{} is listed twice", h.date)));
        }
    }
    Ok(Calendar::new(tz, week, input.holidays.clone())?)
}

pub(crate) fn calendar_record(m: business_calendar::Model) -> StoreResult<CalendarRecord> {
    let cal = stored_calendar(&m)?.calendar()?;
    Ok(CalendarRecord {
        id: BusinessCalendarId(m.id),
        name: m.name,
        time_zone: m.time_zone,
        always_open: m.always_open,
        week: cal.week().clone(),
        holidays: cal.holidays().to_vec(),
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

pub(crate) fn stored_calendar(m: &business_calendar::Model) -> StoreResult<StoredCalendar> {
    Ok(StoredCalendar {
        time_zone: m.time_zone.clone(),
        always_open: m.always_open,
        week: serde_json::from_str(&m.week).map_err(|_| StoreError::corrupt("business_calendars.week", &m.week))?,
        holidays: serde_json::from_str(&m.holidays)
            .map_err(|_| StoreError::corrupt("business_calendars.holidays", &m.holidays))?,
    })
}

fn write_fields(m: &mut business_calendar::Model, name: String, cal: &Calendar) {
    let s = StoredCalendar::of(cal);
    m.name = name;
    m.time_zone = s.time_zone;
    m.always_open = s.always_open;
    m.week = serde_json::to_string(&s.week).unwrap_or_default();
    m.holidays = serde_json::to_string(&s.holidays).unwrap_or_default();
}

impl UnitOfWork {
    pub(crate) async fn calendar_model(&self, id: BusinessCalendarId) -> StoreResult<business_calendar::Model> {
        business_calendar::Entity::find()
            .filter(business_calendar::Column::TenantId.eq(self.viewer().tenant_id.0))
            .filter(business_calendar::Column::Id.eq(id.0))
            .one(self.tx())
            .await?
            .ok_or(StoreError::NotFound)
    }
}

impl DataHandle {
    pub async fn create_business_calendar(&self, input: &CalendarInput) -> StoreResult<CalendarRecord> {
        let v = self.viewer();
        require_admin(v, "configuring business calendars")?;
        let name = Name::parse("name", &input.name)?.into_string();
        let cal = build_calendar(input)?;
        let now = Utc::now();
        let mut m = business_calendar::Model {
            tenant_id: v.tenant_id.0,
            id: Uuid::now_v7(),
            name: String::new(),
            time_zone: String::new(),
            always_open: false,
            week: String::new(),
            holidays: String::new(),
            created_at: now,
            updated_at: now,
        };
        write_fields(&mut m, name, &cal);
        let w = self.begin().await?;
        business_calendar::Entity::insert(business_calendar::ActiveModel::from(m.clone()))
            .exec_without_returning(w.tx())
            .await
            .map_err(|e| StoreError::unique_as_conflict(e, "a calendar with this name already exists"))?;
        w.audit("businessCalendar.create", "BusinessCalendar", Some(m.id), serde_json::json!({"name": m.name}));
        w.emit(
            EventType::BusinessCalendarCreated,
            vec![Subject::new(SubjectKind::BusinessCalendar, m.id)],
            serde_json::json!({}),
        );
        w.commit().await?;
        calendar_record(m)
    }

    /// Replaces a calendar's definition. Tickets keep the calendar they were given (see
    /// `switch_ticket_sla` to re-apply).
    pub async fn update_business_calendar(
        &self,
        id: BusinessCalendarId,
        input: &CalendarInput,
    ) -> StoreResult<CalendarRecord> {
        let v = self.viewer();
        require_admin(v, "configuring business calendars")?;
        let name = Name::parse("name", &input.name)?.into_string();
        let cal = build_calendar(input)?;
        let w = self.begin().await?;
        let mut m = w.calendar_model(id).await?;
        let old = m.clone();
        write_fields(&mut m, name, &cal);
        m.updated_at = Utc::now();
        business_calendar::Entity::update(business_calendar::ActiveModel::from(m.clone()).reset_all())
            .exec(w.tx())
            .await
            .map_err(|e| StoreError::unique_as_conflict(e, "a calendar with this name already exists"))?;
        let mut changes = Changes::new();
        changes
            .field("name", &old.name, &m.name)
            .field("timeZone", &old.time_zone, &m.time_zone)
            .field("alwaysOpen", old.always_open, m.always_open)
            .field("week", &old.week, &m.week)
            .field("holidays", &old.holidays, &m.holidays);
        w.audit("businessCalendar.update", "BusinessCalendar", Some(m.id), changes.details(serde_json::json!({})));
        w.emit(
            EventType::BusinessCalendarUpdated,
            vec![Subject::new(SubjectKind::BusinessCalendar, m.id)],
            serde_json::json!({}),
        );
        w.commit().await?;
        calendar_record(m)
    }

    pub async fn business_calendars(&self) -> StoreResult<Vec<CalendarRecord>> {
        business_calendar::Entity::find()
            .filter(business_calendar::Column::TenantId.eq(self.viewer().tenant_id.0))
            .order_by_asc(business_calendar::Column::Name)
            .all(&self.db)
            .await?
            .into_iter()
            .map(calendar_record)
            .collect()
    }

    pub async fn business_calendars_by_ids(&self, ids: &[BusinessCalendarId]) -> StoreResult<Vec<CalendarRecord>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        business_calendar::Entity::find()
            .filter(business_calendar::Column::TenantId.eq(self.viewer().tenant_id.0))
            .filter(business_calendar::Column::Id.is_in(ids.iter().map(|i| i.0)))
            .all(&self.db)
            .await?
            .into_iter()
            .map(calendar_record)
            .collect()
    }
}
