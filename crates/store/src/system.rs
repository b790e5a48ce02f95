//! The system handle: work done on behalf of the service itself (demo seeding now; background
//! jobs later). It can act inside any tenant, so it is deliberately not a `Viewer` and is never
//! handed to request handlers.

use crate::access::handle::DataHandle;
use crate::access::principals::{ensure_tenant, ensure_user};
use crate::access::viewer::Identity;
use crate::entities::address_book;
use crate::error::StoreResult;
use crate::{ContactInput, GroupInput, Principal, Store};
use cohort_domain::contact::{ContactFields, ContactKind};
use cohort_domain::group::MembershipSource;
use cohort_domain::ids::ContactId;
use cohort_domain::{AccessLevel, Role, Roles};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

#[derive(Clone)]
pub struct SystemHandle {
    pub(crate) store: Store,
}

/// What `serve --demo` created, for printing tokens.
#[derive(Debug, Clone)]
pub struct DemoTenant {
    pub tenant_key: String,
    pub admin_subject: String,
    pub agent_subject: String,
    /// An ERP integration (role `integration`) with WRITE on "Customers DACH".
    pub integration_subject: String,
    pub created: bool,
}

const FIRST: &[&str] =
    &["Anna", "Ben", "Clara", "David", "Eva", "Felix", "Greta", "Hans", "Ida", "Jonas", "Karla", "Lukas"];
const LAST: &[&str] =
    &["Abbott", "Baker", "Carter", "Dawson", "Ellis", "Fischer", "Graham", "Hoffmann", "Ibsen", "Jensen"];
const COMPANIES: &[&str] = &["Acme GmbH", "Birch & Co", "Contoso AG", "Dunder Ltd", "Evergreen KG", "Fabrikam Inc"];
const STATUSES: &[&str] =
    &["lead_cold", "lead_warm", "lead_hot", "prospect_value_buyer", "customer", "customer", "dead"];

impl SystemHandle {
    pub(crate) fn new(store: Store) -> Self {
        SystemHandle { store }
    }

    /// A set-based loader into the tenant `tenant_key` (created if missing), for the benchmark
    /// generator and bulk imports.
    pub async fn bulk_loader(&self, tenant_key: &str) -> StoreResult<crate::BulkLoader> {
        crate::BulkLoader::open(self.store.clone(), tenant_key).await
    }

    /// How many users a tenant has (the benchmark generator refuses to load into a used tenant).
    pub async fn tenant_user_count(&self, tenant: cohort_domain::ids::TenantId) -> StoreResult<u64> {
        Ok(crate::entities::user::Entity::find()
            .filter(crate::entities::user::Column::TenantId.eq(tenant.0))
            .count(&self.store.db)
            .await?)
    }

    /// A data handle acting as `subject` with `roles` in `tenant_key` (tenant and user created if
    /// needed), for seeding, imports and background work that must go through the same rules as
    /// a request (visibility, unit of work, events). The grants are read as for a request.
    pub async fn act_as(&self, tenant_key: &str, subject: &str, roles: Roles) -> StoreResult<DataHandle> {
        let t = ensure_tenant(&self.store.db, tenant_key).await?;
        ensure_user(&self.store.db, t, subject, None, None).await?;
        let id = Identity::new(tenant_key.to_owned(), subject.to_owned(), roles, None, None);
        let viewer = self.store.resolve_viewer(&id).await?;
        Ok(DataHandle::new(
            self.store.db.clone(),
            viewer,
            None,
            self.store.outbox.clone(),
            self.store.usage.clone(),
            self.store.link_keys.clone(),
        ))
    }

    /// Resolves when a unit of work of this process has committed events since the last call (a
    /// permit is kept if nobody was waiting): the worker's wake-up.
    pub async fn events_committed(&self) {
        self.store.outbox.worker_wakeup().await
    }

    /// Acts as an admin of `tenant_key`.
    async fn admin_of(&self, tenant_key: &str, subject: &str) -> StoreResult<DataHandle> {
        self.act_as(tenant_key, subject, Roles::new([Role::Admin])).await
    }

    /// Creates the demo tenant once: three address books, users and user groups, grants, 50
    /// contacts (persons linked to companies, with e-mails, phones and statuses; every person's
    /// name is unique, so the README can name them), a group hierarchy with members from every
    /// book, routing, SLA contracts, a ticket, products and price lists, and the travel agency's
    /// web form. Every README example runs against it (`tests/readme.rs`). Idempotent.
    pub async fn seed_demo(&self) -> StoreResult<DemoTenant> {
        let s = &self.store;
        let info = DemoTenant {
            tenant_key: "demo".into(),
            admin_subject: "demo-admin".into(),
            agent_subject: "demo-agent".into(),
            integration_subject: "demo-erp".into(),
            created: false,
        };
        let admin = self.admin_of(&info.tenant_key, &info.admin_subject).await?;
        let books = address_book::Entity::find()
            .filter(address_book::Column::TenantId.eq(admin.viewer().tenant_id.0))
            .count(&s.db)
            .await?;
        if books > 0 {
            return Ok(info);
        }
        let customers =
            admin.create_address_book("Customers DACH", Some("Key customers in Germany, Austria, Switzerland")).await?;
        let partners =
            admin.create_address_book("Partners & Leads", Some("Resellers, partners and fresh leads")).await?;
        let suppliers = admin.create_address_book("Suppliers", Some("Purchasing only: agents have no access")).await?;
        let agent = admin.create_user(&info.agent_subject, Some("Demo Agent"), Some("agent@demo.example")).await?;
        let l2 = admin.create_user("demo-l2", Some("Lena Support"), None).await?;
        let erp = admin.create_user(&info.integration_subject, Some("ERP sync"), None).await?;
        let kam = admin.create_user_group("Key account managers", Some("Own the DACH customer relationships")).await?;
        let support = admin.create_user_group("Support L2", Some("Second-level support")).await?;
        admin.add_user_group_members(kam.id, &[agent.id]).await?;
        admin.add_user_group_members(support.id, &[agent.id, l2.id]).await?;
        admin.grant_access(customers.id, Principal::UserGroup(kam.id), AccessLevel::Write).await?;
        admin.grant_access(partners.id, Principal::User(agent.id), AccessLevel::Read).await?;
        admin.grant_access(partners.id, Principal::UserGroup(support.id), AccessLevel::Read).await?;
        admin.grant_access(customers.id, Principal::User(erp.id), AccessLevel::Write).await?;

        let mut n = 0usize;
        // Persons are numbered across books; (i mod 12, (i + i / 12) mod 10) never repeats below
        // 120 persons, so names are unique: "Anna Abbott" is the first, in "Customers DACH".
        let mut person_no = 0usize;
        let mut everyone: Vec<(usize, ContactId)> = vec![];
        for (bi, book) in [&customers, &partners, &suppliers].into_iter().enumerate() {
            let mut companies: Vec<ContactId> = vec![];
            for ci in 0..2 {
                let name = COMPANIES[(bi * 2 + ci) % COMPANIES.len()];
                let c = admin
                    .create_contact(ContactInput {
                        address_book_id: book.id,
                        kind: ContactKind::Company,
                        fields: ContactFields {
                            company_name: Some(name.into()),
                            emails: vec![(format!("info@{}.example", slug(name)), Some("office".into()))],
                            phones: vec![(format!("+49 30 {:07}", 1000 + n), None)],
                            ..Default::default()
                        },
                        company_id: None,
                        business_status: Some(STATUSES[n % STATUSES.len()].into()),
                    })
                    .await?;
                companies.push(c.id);
                n += 1;
            }
            // 2 companies and 16 + 14 + 14 persons: the README's 50 contacts.
            let persons = if bi == 0 { 16 } else { 14 };
            for pi in 0..persons {
                let first = FIRST[person_no % FIRST.len()];
                let last = LAST[(person_no + person_no / FIRST.len()) % LAST.len()];
                person_no += 1;
                let person = admin
                    .create_contact(ContactInput {
                        address_book_id: book.id,
                        kind: ContactKind::Person,
                        fields: ContactFields {
                            first_name: Some(first.into()),
                            last_name: Some(last.into()),
                            emails: vec![(
                                format!("{}.{}{}@mail.example", first.to_lowercase(), last.to_lowercase(), n),
                                None,
                            )],
                            phones: if pi % 3 == 0 {
                                vec![(format!("+49 170 {:07}", 5000 + n), Some("mobile".into()))]
                            } else {
                                vec![]
                            },
                            ..Default::default()
                        },
                        company_id: (pi % 2 == 0).then(|| companies[pi / 2 % companies.len()]),
                        business_status: (pi % 4 != 3).then(|| STATUSES[(n + pi) % STATUSES.len()].to_string()),
                    })
                    .await?;
                everyone.push((bi, person.id));
                n += 1;
            }
        }

        // Groups: a regional hierarchy homed in "Customers DACH", a public newsletter, and a
        // purchasing segment homed in "Suppliers" (invisible to the agent). Members come from
        // every book: the agent sees only the ones they could see anyway.
        let group = |book, name: &str, parent, precedence, public: Option<&str>| GroupInput {
            address_book_id: book,
            parent_id: parent,
            name: name.into(),
            description: None,
            precedence,
            public_name: public.map(str::to_owned),
            public_description: public.map(|_| "News and offers, about once a month".to_owned()),
        };
        let europe = admin.create_group(group(customers.id, "Europe", None, 100, None)).await?;
        let dach = admin.create_group(group(customers.id, "DACH", Some(europe.id), 50, None)).await?;
        let germany = admin.create_group(group(customers.id, "Germany", Some(dach.id), 10, None)).await?;
        let austria = admin.create_group(group(customers.id, "Austria", Some(dach.id), 10, None)).await?;
        let south = admin.create_group(group(customers.id, "Southern Europe", Some(europe.id), 50, None)).await?;
        let newsletter =
            admin.create_group(group(partners.id, "Newsletter", None, 200, Some("Cohort Monthly"))).await?;
        let vip = admin.create_group(group(customers.id, "Key accounts", None, 1, None)).await?;
        let purchasing = admin.create_group(group(suppliers.id, "Preferred suppliers", None, 5, None)).await?;
        // Where the README's follow-up sequence moves its contacts: empty until then.
        admin.create_group(group(partners.id, "Warm leads", None, 150, None)).await?;
        let pick = |modulo: usize, rest: usize| -> Vec<ContactId> {
            everyone.iter().enumerate().filter(|(i, _)| i % modulo == rest).map(|(_, c)| c.1).collect()
        };
        admin.add_group_members(germany.id, &pick(3, 0), Some(MembershipSource::Import), None).await?;
        admin.add_group_members(austria.id, &pick(5, 1), Some(MembershipSource::Import), None).await?;
        admin.add_group_members(south.id, &pick(7, 2), None, None).await?;
        admin.add_group_members(newsletter.id, &pick(2, 1), Some(MembershipSource::Automation), None).await?;
        admin.add_group_members(vip.id, &pick(6, 0), None, None).await?;
        let suppliers_people: Vec<ContactId> = everyone.iter().filter(|(b, _)| *b == 2).map(|(_, c)| *c).collect();
        admin.add_group_members(purchasing.id, &suppliers_people, None, None).await?;

        // Routing: a general helpdesk queue, a key-account queue restricted to the key account
        // managers, and key accounts routed to the demo agent there; Germany's sales go to Lena.
        let general = admin.create_processing_area("Helpdesk — general", None, None).await?;
        let key_queue = admin
            .create_processing_area("Helpdesk — key accounts", Some("Only key account managers"), Some(kam.id))
            .await?;
        let sales_queue = admin.create_processing_area("Sales — DACH", None, None).await?;
        let helpdesk = admin
            .create_process_area(&crate::ProcessAreaInput {
                key: "helpdesk".into(),
                name: "Helpdesk".into(),
                default_processing_area: general.id,
                default_worker: Some(l2.id),
                default_user_group: None,
            })
            .await?;
        let sales = admin
            .create_process_area(&crate::ProcessAreaInput {
                key: "sales".into(),
                name: "Sales".into(),
                default_processing_area: sales_queue.id,
                default_worker: None,
                default_user_group: None,
            })
            .await?;
        let resp = |worker, user_group, queue| cohort_domain::routing::Responsibility {
            worker: Some(worker),
            user_group,
            processing_area: queue,
        };
        admin.set_group_responsibility(vip.id, helpdesk.id, resp(agent.id, Some(kam.id), Some(key_queue.id))).await?;
        admin.set_group_responsibility(germany.id, sales.id, resp(l2.id, None, None)).await?;
        // DACH's helpdesk mail is for second-level support: a key account in Germany has two
        // candidates, and the README's routing example shows the smaller precedence deciding.
        admin
            .set_group_responsibility(
                dach.id,
                helpdesk.id,
                cohort_domain::routing::Responsibility {
                    worker: None,
                    user_group: Some(support.id),
                    processing_area: Some(general.id),
                },
            )
            .await?;
        if let Some(first_vip) = pick(6, 0).first() {
            admin
                .receive_message(&crate::MessageInput {
                    contact: Some(*first_vip),
                    sender_email: None,
                    process_area: None,
                    channel: cohort_domain::routing::Channel::Email,
                    subject: "Delivery delayed?".into(),
                    body: "Hello, our order has not arrived yet. Could you check?".into(),
                    private: false,
                    recipient: None,
                    received_at: None,
                    external_id: Some("<demo-1@mail.example>".into()),
                })
                .await?;
        }
        // SLA: a Prague office calendar, a standard contract for everyone (the tenant fallback)
        // and a better one for key accounts; a ticket for the key account that wrote in.
        let holiday = |m, d, half_day| cohort_domain::calendar::Holiday {
            date: chrono::NaiveDate::from_ymd_opt(2000, m, d).unwrap_or_default(),
            recurring: true,
            half_day,
        };
        let office = admin
            .create_business_calendar(&crate::CalendarInput {
                name: "Prague office".into(),
                time_zone: "Europe/Prague".into(),
                always_open: false,
                intervals: (0..5).map(|d| (d, "08:00".to_owned(), "17:00".to_owned())).collect(),
                holidays: vec![
                    holiday(1, 1, false),
                    holiday(12, 24, true),
                    holiday(12, 25, false),
                    holiday(12, 26, false),
                ],
            })
            .await?;
        let targets = |fr, res, per: Vec<(cohort_domain::sla::Severity, i64)>| cohort_domain::sla::ContractTargets {
            default: cohort_domain::sla::Targets { first_response: Some(fr), resolution: Some(res) },
            per_severity: per
                .into_iter()
                .map(|(s, r)| (s, cohort_domain::sla::Targets { first_response: Some(fr), resolution: Some(r) }))
                .collect(),
        };
        let standard = admin
            .create_sla_contract(&crate::ContractInput {
                name: "Standard".into(),
                rank: 1,
                calendar: office.id,
                targets: targets(240, 2400, vec![]),
            })
            .await?;
        use cohort_domain::sla::Severity::*;
        let key_sla = admin
            .create_sla_contract(&crate::ContractInput {
                name: "Key account".into(),
                rank: 10,
                calendar: office.id,
                targets: targets(60, 480, vec![(Critical, 120), (High, 240), (Low, 1440)]),
            })
            .await?;
        admin.set_tenant_default_sla(Some(standard.id)).await?;
        admin.set_group_default_sla(vip.id, Some(key_sla.id)).await?;
        if let Some(first_vip) = pick(6, 0).first() {
            admin
                .create_ticket(&crate::TicketInput {
                    contact: *first_vip,
                    subject: "Delivery delayed".into(),
                    description: Some("Order not arrived yet (see their e-mail)".into()),
                    channel: cohort_domain::routing::Channel::Email,
                    process_area: None,
                    opened_at: None,
                    idempotency_key: None,
                })
                .await?;
        }

        // Pricing (the README's webshop example): an espresso machine listed at 99.00 EUR; key
        // accounts get the list "Gold" (80.00 from 1, 75.00 from 10) at priority 1, DACH — and so
        // Germany, which has no list of its own — "Silver" (70.00) at priority 2.
        let cents = |c: i64| rust_decimal::Decimal::new(c, 2);
        let machine = admin
            .create_product(crate::ProductInput {
                sku: "P-1".into(),
                name: "Espresso machine".into(),
                list_price: cents(9900),
                currency: "EUR".into(),
                active: true,
            })
            .await?;
        admin
            .create_product(crate::ProductInput {
                sku: "P-2".into(),
                name: "Coffee beans, 1 kg".into(),
                list_price: cents(1850),
                currency: "EUR".into(),
                active: true,
            })
            .await?;
        let item = |min: i64, price: i64| crate::PriceItemInput {
            product_id: machine.id,
            min_quantity: rust_decimal::Decimal::from(min),
            fixed_price: Some(cents(price)),
            discount_percent: None,
            valid_from: None,
            valid_to: None,
        };
        let list = |name: &str| crate::PriceListInput {
            name: name.into(),
            currency: "EUR".into(),
            valid_from: None,
            valid_to: None,
            base_price_list_id: None,
        };
        let gold = admin.create_price_list(list("Gold")).await?;
        admin.set_price_list_items(gold.id, &[item(1, 8000), item(10, 7500)]).await?;
        let silver = admin.create_price_list(list("Silver")).await?;
        admin.set_price_list_items(silver.id, &[item(1, 7000)]).await?;
        admin.assign_group_price_list(vip.id, gold.id, 1).await?;
        admin.assign_group_price_list(dach.id, silver.id, 2).await?;

        // Public groups (the travel agency of the README): "Travel offers" with a subgroup per
        // country, a consent text and a double opt-in web form offering the countries.
        admin.set_public_profile(Some("Cohort Demo Travel".into())).await?;
        let travel = admin.create_group(group(partners.id, "Travel offers", None, 300, Some("Travel offers"))).await?;
        let mut countries = vec![];
        for c in ["Greece", "Italy", "Spain", "Turkey"] {
            let mut g = group(partners.id, &format!("Travel {c}"), Some(travel.id), 300, Some(c));
            g.public_description = Some(format!("Offers for trips to {c}"));
            countries.push(admin.create_group(g).await?.id);
        }
        let text = admin
            .create_consent_text(crate::ConsentTextInput {
                purpose: "travel-offers".into(),
                language: "en".into(),
                body: "I would like to receive travel offers by e-mail for the countries I chose. \
                       I can withdraw my consent at any time with the link in every e-mail."
                    .into(),
            })
            .await?;
        admin
            .create_web_form(crate::WebFormInput {
                name: "Travel enquiries".into(),
                intake_book_id: partners.id,
                group_ids: countries,
                consent_text_id: text.id,
                double_opt_in: true,
                keep_evidence: false,
                fields: vec![
                    cohort_domain::consent::FieldSpec {
                        field: cohort_domain::consent::FormField::FirstName,
                        required: false,
                    },
                    cohort_domain::consent::FieldSpec {
                        field: cohort_domain::consent::FormField::LastName,
                        required: false,
                    },
                ],
                origins: vec!["http://localhost:5173".into()],
                title: Some("Travel offers by e-mail".into()),
                submit_label: Some("Subscribe".into()),
                success_url: None,
                confirmation_url: None,
                enabled: true,
            })
            .await?;
        Ok(DemoTenant { created: true, ..info })
    }
}

fn slug(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_lowercase()
}
