//! The audit log (issue 15, item 5): every mutation leaves an entry with its actor, subject and
//! request id; updates record before/after values; the database refuses to change or delete
//! entries; `auditLog` is for admins, filters and pages newest first; sensitive reads are
//! recorded.

use crate::on_both_backends;
use crate::support::{Actor, Backend, CREATE_CONTACT, TestApp, World};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

const ENTRIES: &str = "query($f: AuditLogFilter, $first: Int, $after: String) { auditLog(filter: $f, first: $first, after: $after) { totalCount edges { cursor node { id at action requestId subjectType subjectId details actor { subject } } } pageInfo { hasNextPage endCursor } } }";

/// The mutations of the schema (`type Mutation { … }` in the checked-in SDL, which a test keeps
/// identical to the served schema).
fn schema_mutations() -> BTreeSet<String> {
    let sdl = include_str!("../../schema.graphql");
    let start = sdl.find("type Mutation {").expect("type Mutation in schema.graphql");
    let body = &sdl[start + "type Mutation {".len()..];
    let body = &body[..body.find("\n}").expect("end of type Mutation")];
    let mut names = BTreeSet::new();
    let mut in_doc = false;
    for line in body.lines().map(str::trim) {
        // Skip `"""` descriptions (they may contain parentheses and colons).
        if let Some(rest) = line.strip_prefix("\"\"\"") {
            let one_line = rest.contains("\"\"\"");
            if !one_line {
                in_doc = !in_doc;
            }
            continue;
        }
        if in_doc || line.is_empty() || line.starts_with('"') || line.starts_with('#') {
            continue;
        }
        let end = line.find(['(', ':']).unwrap_or(line.len());
        names.insert(line[..end].trim().to_owned());
    }
    names
}

/// One row of the table: a mutation called once, the action its entry must carry, the request
/// it ran in and (where the call names one) the subject's id.
struct Row {
    mutation: &'static str,
    action: &'static str,
    request_id: String,
    subject: Option<String>,
}

/// Runs the table's calls as one admin and remembers each request id.
struct Table<'a> {
    app: &'a TestApp,
    token: String,
    rows: Vec<Row>,
}

impl Table<'_> {
    /// Calls `mutation` (asserting success) under a fresh request id and adds its row.
    async fn run(&mut self, mutation: &'static str, action: &'static str, query: &str, vars: Value) -> Value {
        let request_id = format!("audit-{mutation}-{}", uuid::Uuid::new_v4().simple());
        let resp = self
            .app
            .client
            .post(self.app.url("/graphql"))
            .bearer_auth(&self.token)
            .header("x-request-id", &request_id)
            .json(&json!({"query": query, "variables": vars}))
            .send()
            .await
            .expect("request");
        let body: Value = resp.json().await.expect("json body");
        assert!(body.get("errors").is_none(), "{mutation}: {body:#}");
        self.rows.push(Row { mutation, action, request_id, subject: None });
        body["data"][mutation].clone()
    }

    /// The subject the last row's entry must name.
    fn subject(&mut self, id: &Value) {
        let id = id.as_str().unwrap_or_else(|| panic!("subject id of {:?}", self.rows.last().map(|r| r.mutation)));
        if let Some(r) = self.rows.last_mut() {
            r.subject = Some(id.to_owned());
        }
    }
}

/// The table-driven test: every mutation in the schema has a row here, and each row's call
/// leaves its audit entry (action, actor, subject, request id). A mutation added to the schema
/// without a row fails this test; give it a row (a call that succeeds and the action it must
/// write) in the marked place below.
async fn every_mutation_leaves_an_audit_entry(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let mut t = Table { app: &app, token: app.token(&w.tenant, "admin", &["admin"]), rows: vec![] };
    let admin_id = admin.ok("{ viewer { user { id } } }", json!({})).await["viewer"]["user"]["id"].clone();

    // Users, user groups, address books and grants.
    let d = t
        .run(
            "createUser",
            "user.create",
            "mutation { createUser(input: {subject: \"audit-user\"}) { user { id } } }",
            json!({}),
        )
        .await;
    let user = d["user"]["id"].clone();
    t.subject(&user);
    let d = t
        .run(
            "createUserGroup",
            "userGroup.create",
            "mutation { createUserGroup(input: {name: \"Auditors\"}) { userGroup { id } } }",
            json!({}),
        )
        .await;
    let ug = d["userGroup"]["id"].clone();
    t.subject(&ug);
    t.run(
        "addUserGroupMembers",
        "userGroup.addMembers",
        "mutation($g: ID!, $u: [ID!]!) { addUserGroupMembers(input: {userGroupId: $g, userIds: $u}) { addedCount } }",
        json!({"g": ug, "u": [user]}),
    )
    .await;
    t.subject(&ug);
    t.run(
        "removeUserGroupMembers",
        "userGroup.removeMembers",
        "mutation($g: ID!, $u: [ID!]!) { removeUserGroupMembers(input: {userGroupId: $g, userIds: $u}) { removedCount } }",
        json!({"g": ug, "u": [user]}),
    )
    .await;
    t.subject(&ug);
    let d = t
        .run(
            "createAddressBook",
            "addressBook.create",
            "mutation { createAddressBook(input: {name: \"Audit book\"}) { addressBook { id } } }",
            json!({}),
        )
        .await;
    let book = d["addressBook"]["id"].clone();
    t.subject(&book);
    t.run(
        "grantAddressBookAccess",
        "addressBook.grant",
        "mutation($b: ID!, $g: ID!) { grantAddressBookAccess(input: {addressBookId: $b, userGroupId: $g, level: READ}) { grant { level } } }",
        json!({"b": book, "g": ug}),
    )
    .await;
    t.subject(&book);
    t.run(
        "revokeAddressBookAccess",
        "addressBook.revoke",
        "mutation($b: ID!, $g: ID!) { revokeAddressBookAccess(input: {addressBookId: $b, userGroupId: $g}) { revoked } }",
        json!({"b": book, "g": ug}),
    )
    .await;
    t.subject(&book);

    // Contacts.
    let d = t
        .run(
            "createContact",
            "contact.create",
            CREATE_CONTACT,
            json!({"i": {"addressBookId": w.own, "kind": "PERSON", "firstName": "Dora", "lastName": "Doe"}}),
        )
        .await;
    let c = d["contact"]["id"].clone();
    t.subject(&c);
    t.run(
        "updateContact",
        "contact.update",
        "mutation($i: UpdateContactInput!) { updateContact(input: $i) { contact { id } } }",
        json!({"i": {"id": c, "firstName": "Dorothea"}}),
    )
    .await;
    t.subject(&c);
    t.run(
        "setContactBusinessStatus",
        "contact.setBusinessStatus",
        "mutation($id: ID!) { setContactBusinessStatus(input: {contactId: $id, status: \"customer\"}) { contact { id } } }",
        json!({"id": c}),
    )
    .await;
    t.subject(&c);

    // Groups and members.
    const CREATE_GROUP: &str = "mutation($i: CreateGroupInput!) { createGroup(input: $i) { group { id } } }";
    let d = t
        .run("createGroup", "group.create", CREATE_GROUP, json!({"i": {"addressBookId": w.own, "name": "Audit group"}}))
        .await;
    let g = d["group"]["id"].clone();
    t.subject(&g);
    let child = admin.ok(CREATE_GROUP, json!({"i": {"addressBookId": w.own, "name": "Audit child"}})).await["createGroup"]
        ["group"]["id"]
        .clone();
    t.run(
        "updateGroup",
        "group.update",
        "mutation($g: ID!) { updateGroup(input: {id: $g, name: \"Audit group renamed\", publicName: \"Audit news\"}) { group { id } } }",
        json!({"g": g}),
    )
    .await;
    t.subject(&g);
    t.run(
        "moveGroup",
        "group.move",
        "mutation($id: ID!, $p: ID) { moveGroup(input: {id: $id, parentId: $p}) { group { id } } }",
        json!({"id": child, "p": g}),
    )
    .await;
    t.subject(&child);
    t.run(
        "addGroupMembers",
        "group.addMembers",
        "mutation($i: AddGroupMembersInput!) { addGroupMembers(input: $i) { addedCount } }",
        json!({"i": {"groupId": g, "contactIds": [c]}}),
    )
    .await;
    t.subject(&g);
    t.run(
        "removeGroupMembers",
        "group.removeMembers",
        "mutation($i: RemoveGroupMembersInput!) { removeGroupMembers(input: $i) { removedCount } }",
        json!({"i": {"groupId": g, "contactIds": [c]}}),
    )
    .await;
    t.subject(&g);

    // Products, price lists and assignments.
    let d = t
        .run(
            "createProduct",
            "product.create",
            "mutation { createProduct(input: {sku: \"AUD-1\", name: \"Audit widget\", listPrice: \"10\", currency: \"EUR\"}) { product { id } } }",
            json!({}),
        )
        .await;
    let p = d["product"]["id"].clone();
    t.subject(&p);
    t.run(
        "updateProduct",
        "product.update",
        "mutation($p: ID!) { updateProduct(input: {id: $p, listPrice: \"12\"}) { product { id } } }",
        json!({"p": p}),
    )
    .await;
    t.subject(&p);
    t.run(
        "setExternalId",
        "product.setExternalId",
        "mutation($p: ID!) { setExternalId(input: {nodeId: $p, system: \"erp\", id: \"AUD-4711\"}) { node { id } } }",
        json!({"p": p}),
    )
    .await;
    t.subject(&p);
    t.run(
        "removeExternalId",
        "product.removeExternalId",
        "mutation($p: ID!) { removeExternalId(input: {nodeId: $p, system: \"erp\"}) { node { id } } }",
        json!({"p": p}),
    )
    .await;
    t.subject(&p);
    let d = t
        .run(
            "createPriceList",
            "priceList.create",
            "mutation { createPriceList(input: {name: \"Audit list\", currency: \"EUR\"}) { priceList { id } } }",
            json!({}),
        )
        .await;
    let list = d["priceList"]["id"].clone();
    t.subject(&list);
    t.run(
        "updatePriceList",
        "priceList.update",
        "mutation($i: UpdatePriceListInput!) { updatePriceList(input: $i) { priceList { id } } }",
        json!({"i": {"id": list, "name": "Audit list 2", "currency": "EUR"}}),
    )
    .await;
    t.subject(&list);
    t.run(
        "setPriceListItems",
        "priceList.setItems",
        "mutation($l: ID!, $p: ID!) { setPriceListItems(input: {priceListId: $l, items: [{productId: $p, fixedPrice: \"9.5\"}]}) { itemCount } }",
        json!({"l": list, "p": p}),
    )
    .await;
    t.subject(&list);
    t.run(
        "assignGroupPriceList",
        "group.assignPriceList",
        "mutation($g: ID!, $l: ID!) { assignGroupPriceList(input: {groupId: $g, priceListId: $l, priority: 1}) { group { id } } }",
        json!({"g": g, "l": list}),
    )
    .await;
    t.subject(&g);
    t.run(
        "unassignGroupPriceList",
        "group.unassignPriceList",
        "mutation($g: ID!, $l: ID!) { unassignGroupPriceList(input: {groupId: $g, priceListId: $l}) { __typename } }",
        json!({"g": g, "l": list}),
    )
    .await;
    t.subject(&g);
    t.run(
        "assignContactPriceList",
        "contact.assignPriceList",
        "mutation($c: ID!, $l: ID!) { assignContactPriceList(input: {contactId: $c, priceListId: $l, priority: 1}) { contact { id } } }",
        json!({"c": c, "l": list}),
    )
    .await;
    t.subject(&c);
    t.run(
        "unassignContactPriceList",
        "contact.unassignPriceList",
        "mutation($c: ID!, $l: ID!) { unassignContactPriceList(input: {contactId: $c, priceListId: $l}) { __typename } }",
        json!({"c": c, "l": list}),
    )
    .await;
    t.subject(&c);
    t.run(
        "setDefaultPriceList",
        "tenant.setDefaultPriceList",
        "mutation($l: ID) { setDefaultPriceList(input: {priceListId: $l}) { priceList { name } } }",
        json!({"l": list}),
    )
    .await;
    let d = t
        .run(
            "placeOrder",
            "order.place",
            "mutation($c: ID!) { placeOrder(input: {contactId: $c, currency: \"EUR\", lines: [{sku: \"AUD-1\", quantity: \"2\"}]}) { order { id } } }",
            json!({"c": c}),
        )
        .await;
    t.subject(&d["order"]["id"]);

    // Routing.
    let d = t
        .run(
            "createProcessingArea",
            "processingArea.create",
            "mutation { createProcessingArea(input: {name: \"Audit queue\"}) { processingArea { id } } }",
            json!({}),
        )
        .await;
    let queue = d["processingArea"]["id"].clone();
    t.subject(&queue);
    t.run(
        "updateProcessingArea",
        "processingArea.update",
        "mutation($q: ID!) { updateProcessingArea(input: {id: $q, name: \"Audit queue 2\"}) { __typename } }",
        json!({"q": queue}),
    )
    .await;
    t.subject(&queue);
    let d = t
        .run(
            "createProcessArea",
            "processArea.create",
            "mutation($q: ID!) { createProcessArea(input: {key: \"audit\", name: \"Audit\", defaultProcessingAreaId: $q}) { processArea { id } } }",
            json!({"q": queue}),
        )
        .await;
    let area = d["processArea"]["id"].clone();
    t.subject(&area);
    t.run(
        "updateProcessArea",
        "processArea.update",
        "mutation($a: ID!) { updateProcessArea(input: {id: $a, name: \"Audit 2\"}) { processArea { key } } }",
        json!({"a": area}),
    )
    .await;
    t.subject(&area);
    t.run(
        "setGroupResponsibility",
        "group.setResponsibility",
        "mutation($g: ID!, $a: ID!, $u: ID!) { setGroupResponsibility(input: {groupId: $g, processAreaId: $a, workerId: $u}) { __typename } }",
        json!({"g": g, "a": area, "u": admin_id}),
    )
    .await;
    t.subject(&g);
    t.run(
        "clearGroupResponsibility",
        "group.clearResponsibility",
        "mutation($g: ID!, $a: ID!) { clearGroupResponsibility(input: {groupId: $g, processAreaId: $a}) { cleared } }",
        json!({"g": g, "a": area}),
    )
    .await;
    t.subject(&g);
    let d = t
        .run(
            "receiveMessage",
            "message.receive",
            "mutation($c: ID!) { receiveMessage(input: {contactId: $c, processArea: \"audit\", channel: EMAIL, subject: \"Hello\", body: \"Please call me\"}) { messageId } }",
            json!({"c": c}),
        )
        .await;
    let message = d["messageId"].clone();
    t.subject(&message);
    t.run(
        "reassignMessage",
        "message.reassign",
        "mutation($m: ID!, $q: ID!) { reassignMessage(input: {messageId: $m, processingAreaId: $q}) { __typename } }",
        json!({"m": message, "q": queue}),
    )
    .await;
    t.subject(&message);
    t.run(
        "setMessageSettings",
        "tenant.setHidePrivateSubjects",
        "mutation { setMessageSettings(input: {hidePrivateSubjects: true}) { hidePrivateSubjects } }",
        json!({}),
    )
    .await;

    // SLA and tickets.
    let d = t
        .run(
            "createBusinessCalendar",
            "businessCalendar.create",
            "mutation { createBusinessCalendar(input: {name: \"Audit cal\", timeZone: \"UTC\", alwaysOpen: true}) { businessCalendar { id } } }",
            json!({}),
        )
        .await;
    let cal = d["businessCalendar"]["id"].clone();
    t.subject(&cal);
    t.run(
        "updateBusinessCalendar",
        "businessCalendar.update",
        "mutation($id: ID!) { updateBusinessCalendar(input: {id: $id, calendar: {name: \"Audit cal 2\", timeZone: \"UTC\", alwaysOpen: true}}) { __typename } }",
        json!({"id": cal}),
    )
    .await;
    t.subject(&cal);
    let d = t
        .run(
            "createSlaContract",
            "slaContract.create",
            "mutation($c: ID!) { createSlaContract(input: {name: \"Audit SLA\", rank: 1, calendarId: $c, defaultTargets: {resolutionMinutes: 600}}) { slaContract { id } } }",
            json!({"c": cal}),
        )
        .await;
    let sla = d["slaContract"]["id"].clone();
    t.subject(&sla);
    t.run(
        "updateSlaContract",
        "slaContract.update",
        "mutation($id: ID!, $c: ID!) { updateSlaContract(input: {id: $id, contract: {name: \"Audit SLA 2\", rank: 1, calendarId: $c, defaultTargets: {resolutionMinutes: 30}}}) { slaContract { id } } }",
        json!({"id": sla, "c": cal}),
    )
    .await;
    t.subject(&sla);
    t.run(
        "setGroupDefaultSla",
        "group.setDefaultSla",
        "mutation($g: ID!, $c: ID) { setGroupDefaultSla(input: {groupId: $g, slaContractId: $c}) { group { id } } }",
        json!({"g": g, "c": sla}),
    )
    .await;
    t.subject(&g);
    t.run(
        "setTenantDefaultSla",
        "tenant.setDefaultSla",
        "mutation($c: ID) { setTenantDefaultSla(input: {slaContractId: $c}) { slaContract { name } } }",
        json!({"c": sla}),
    )
    .await;
    let d = t
        .run(
            "createTicket",
            "ticket.create",
            "mutation($c: ID!) { createTicket(input: {contactId: $c, subject: \"Broken\", channel: EMAIL, processArea: \"audit\"}) { ticketId } }",
            json!({"c": c}),
        )
        .await;
    let ticket = d["ticketId"].clone();
    t.subject(&ticket);
    t.run(
        "evaluateTicketSeverity",
        "ticket.evaluateSeverity",
        "mutation($t: ID!) { evaluateTicketSeverity(input: {ticketId: $t, severity: HIGH}) { __typename } }",
        json!({"t": ticket}),
    )
    .await;
    t.subject(&ticket);
    t.run(
        "switchTicketSla",
        "ticket.switchSla",
        "mutation($t: ID!, $s: ID!) { switchTicketSla(input: {ticketId: $t, slaContractId: $s}) { __typename } }",
        json!({"t": ticket, "s": sla}),
    )
    .await;
    t.subject(&ticket);
    t.run(
        "respondToTicket",
        "ticket.respond",
        "mutation($t: ID!) { respondToTicket(input: {ticketId: $t}) { __typename } }",
        json!({"t": ticket}),
    )
    .await;
    t.subject(&ticket);
    t.run(
        "setTicketStatus",
        "ticket.setStatus",
        "mutation($t: ID!) { setTicketStatus(input: {ticketId: $t, status: CLOSED}) { ticket { id } } }",
        json!({"t": ticket}),
    )
    .await;
    t.subject(&ticket);

    // Sequences.
    let d = t
        .run(
            "createSequence",
            "sequence.create",
            "mutation($g: ID!) { createSequence(input: {name: \"Audit seq\", startGroupId: $g, steps: [{delay: \"P1D\", action: EMIT, templateKey: \"welcome\"}]}) { sequence { id } } }",
            json!({"g": g}),
        )
        .await;
    let seq = d["sequence"]["id"].clone();
    t.subject(&seq);
    t.run(
        "updateSequence",
        "sequence.update",
        "mutation($s: ID!) { updateSequence(input: {id: $s, name: \"Audit seq 2\"}) { __typename } }",
        json!({"s": seq}),
    )
    .await;
    t.subject(&seq);
    t.run(
        "pauseSequence",
        "sequence.pause",
        "mutation($s: ID!) { pauseSequence(input: {id: $s}) { __typename } }",
        json!({"s": seq}),
    )
    .await;
    t.subject(&seq);

    // Consent and forms.
    let d = t
        .run(
            "createConsentText",
            "consentText.create",
            "mutation { createConsentText(input: {purpose: \"audit-offers\", language: \"en\", body: \"I agree.\"}) { consentText { id } } }",
            json!({}),
        )
        .await;
    let text = d["consentText"]["id"].clone();
    t.subject(&text);
    t.run(
        "setPublicProfile",
        "tenant.setPublicProfile",
        "mutation { setPublicProfile(input: {publicName: \"Audit Travel\"}) { publicName } }",
        json!({}),
    )
    .await;
    let d = t
        .run(
            "createWebForm",
            "webForm.create",
            "mutation($b: ID!, $g: ID!, $t: ID!) { createWebForm(input: {name: \"Audit form\", intakeAddressBookId: $b, groupIds: [$g], consentTextId: $t}) { webForm { id } } }",
            json!({"b": w.own, "g": g, "t": text}),
        )
        .await;
    let form = d["webForm"]["id"].clone();
    t.subject(&form);
    t.run(
        "updateWebForm",
        "webForm.update",
        "mutation($f: ID!) { updateWebForm(input: {id: $f, enabled: false}) { __typename } }",
        json!({"f": form}),
    )
    .await;
    t.subject(&form);
    t.run(
        "recordConsent",
        "consent.record",
        "mutation($c: ID!, $g: ID!, $t: ID!) { recordConsent(input: {contactId: $c, groupId: $g, action: GIVEN, consentTextId: $t}) { __typename } }",
        json!({"c": c, "g": g, "t": text}),
    )
    .await;
    t.subject(&c);

    // Webhooks: an endpoint nobody listens on, so its delivery fails and can be redelivered.
    let d = t
        .run(
            "createWebhookEndpoint",
            "webhookEndpoint.create",
            "mutation { createWebhookEndpoint(input: {url: \"http://127.0.0.1:9/audit\", eventTypes: [\"group.created\"]}) { webhookEndpoint { id } } }",
            json!({}),
        )
        .await;
    let hook = d["webhookEndpoint"]["id"].clone();
    t.subject(&hook);
    t.run(
        "updateWebhookEndpoint",
        "webhookEndpoint.update",
        "mutation($id: ID!) { updateWebhookEndpoint(input: {id: $id, description: \"Audit ERP\"}) { __typename } }",
        json!({"id": hook}),
    )
    .await;
    t.subject(&hook);
    t.run(
        "rotateWebhookSecret",
        "webhookEndpoint.rotateSecret",
        "mutation($id: ID!) { rotateWebhookSecret(input: {id: $id, graceHours: 1}) { secret } }",
        json!({"id": hook}),
    )
    .await;
    t.subject(&hook);
    admin.ok(CREATE_GROUP, json!({"i": {"addressBookId": w.own, "name": "Audit hook trigger"}})).await;
    let delivery = wait_for_attempted_delivery(&admin).await;
    t.run(
        "redeliverWebhook",
        "webhookDelivery.redeliver",
        "mutation($d: ID!) { redeliverWebhook(input: {deliveryId: $d}) { __typename } }",
        json!({"d": delivery}),
    )
    .await;
    t.subject(&delivery);
    t.run(
        "deleteWebhookEndpoint",
        "webhookEndpoint.delete",
        "mutation($id: ID!) { deleteWebhookEndpoint(input: {id: $id}) { __typename } }",
        json!({"id": hook}),
    )
    .await;
    t.subject(&hook);

    // Deletions last.
    let other = admin
        .ok(CREATE_CONTACT, json!({"i": {"addressBookId": w.own, "kind": "COMPANY", "companyName": "Gone Ltd"}}))
        .await["createContact"]["contact"]["id"]
        .clone();
    t.run(
        "deleteContact",
        "contact.delete",
        "mutation($id: ID!) { deleteContact(input: {id: $id}) { deletedId } }",
        json!({"id": other}),
    )
    .await;
    t.subject(&other);
    t.run(
        "deleteGroup",
        "group.delete",
        "mutation($id: ID!) { deleteGroup(input: {id: $id}) { deletedIds } }",
        json!({"id": child}),
    )
    .await;
    t.subject(&child);

    t.run(
        "setDataUsagePolicy",
        "dataUsagePolicy.set",
        "mutation($u: ID!) { setDataUsagePolicy(input: {scope: USER, userId: $u, warnContacts: 1000}) { policy { scope } } }",
        json!({"u": admin_id}),
    )
    .await;
    t.subject(&admin_id);
    t.run(
        "liftDataUsageBlock",
        "dataUsage.liftBlock",
        "mutation($u: ID!) { liftDataUsageBlock(input: {userId: $u}) { usage { liftedAt } } }",
        json!({"u": admin_id}),
    )
    .await;
    t.subject(&admin_id);

    let gone = admin
        .ok(CREATE_CONTACT, json!({"i": {"addressBookId": w.own, "kind": "COMPANY", "companyName": "Erased Ltd"}}))
        .await["createContact"]["contact"]["id"]
        .clone();
    t.run(
        "eraseContact",
        "contact.erase",
        "mutation($c: ID!) { eraseContact(input: {contactId: $c, reason: \"ticket 4711\"}) { contact { id } } }",
        json!({"c": gone}),
    )
    .await;
    t.subject(&gone);

    // Integrators' sync: each upsert writes through createContact's / createProduct's path (and
    // so its audit entry); a membership sync records its diff.
    let d = t
        .run(
            "upsertContacts",
            "contact.create",
            "mutation($b: ID!) { upsertContacts(input: {addressBookId: $b, system: \"erp\", contacts: [{externalId: \"AUD-U1\", kind: COMPANY, companyName: \"Upserted Ltd\"}]}) { results { contact { id } } } }",
            json!({"b": w.own}),
        )
        .await;
    let upserted = d["results"][0]["contact"]["id"].clone();
    t.subject(&upserted);
    let d = t
        .run(
            "upsertProducts",
            "product.create",
            "mutation { upsertProducts(input: {system: \"erp\", products: [{externalId: \"AUD-P1\", sku: \"AUD-P1\", name: \"Upserted\", listPrice: \"1\", currency: \"EUR\"}]}) { results { product { id } } } }",
            json!({}),
        )
        .await;
    t.subject(&d["results"][0]["product"]["id"].clone());
    let synced = admin.ok(CREATE_GROUP, json!({"i": {"addressBookId": w.own, "name": "Audit sync"}})).await["createGroup"]
        ["group"]["id"]
        .clone();
    t.run(
        "setGroupMembersByExternalId",
        "group.setMembers",
        "mutation($g: ID!) { setGroupMembersByExternalId(input: {groupId: $g, system: \"erp\", externalIds: [\"AUD-U1\"]}) { added } }",
        json!({"g": synced}),
    )
    .await;
    t.subject(&synced);

    // ── Rows for mutations added on other branches go here (merge: one `t.run(…)` per new
    // mutation, with the action its store method audits), e.g.
    //   setDataUsagePolicy  → "dataUsagePolicy.set"  (subject: the tenant)
    //   liftDataUsageBlock  → "dataUsage.liftBlock"  (subject: the user)
    //   eraseContact        → "contact.erase"        (subject: the contact)
    // ────────────────────────────────────────────────────────────────────────────────────────

    // Every mutation of the schema has a row…
    let covered: BTreeSet<String> = t.rows.iter().map(|r| r.mutation.to_owned()).collect();
    let missing: Vec<String> = schema_mutations().into_iter().filter(|m| !covered.contains(m)).collect();
    assert!(missing.is_empty(), "mutations without a row in the audit table (add one above): {missing:?}");
    // …and each row's request left its entry: the action, by the admin, about the subject.
    for r in &t.rows {
        let d = admin.ok(ENTRIES, json!({"f": {"requestId": r.request_id}})).await;
        let nodes: Vec<&Value> = d["auditLog"]["edges"].as_array().expect("edges").iter().map(|e| &e["node"]).collect();
        let entry = nodes.iter().find(|n| n["action"] == r.action).unwrap_or_else(|| {
            panic!("{}: no `{}` entry in request {}: {nodes:#?}", r.mutation, r.action, r.request_id)
        });
        assert_eq!(entry["actor"]["subject"], "admin", "{}", r.mutation);
        assert_eq!(entry["requestId"], json!(r.request_id), "{}", r.mutation);
        if let Some(s) = &r.subject {
            assert_eq!(entry["subjectId"], json!(s), "{}: subject", r.mutation);
        }
        // No personal data in the details (the test's names, e-mail and message text).
        let details = entry["details"].to_string();
        for personal in ["Dora", "Dorothea", "Doe", "Please call me", "Hello", "Broken"] {
            assert!(!details.contains(personal), "{}: personal data in details {details}", r.mutation);
        }
    }
}

/// The id of a delivery that has been attempted at least once and is not being attempted now.
async fn wait_for_attempted_delivery(admin: &crate::support::Actor<'_>) -> Value {
    const Q: &str =
        "{ webhookEndpoints { deliveries(first: 10) { edges { node { id status attempts { attempt } } } } } }";
    for _ in 0..300 {
        let d = admin.ok(Q, json!({})).await;
        if let Some(n) = d["webhookEndpoints"][0]["deliveries"]["edges"]
            .as_array()
            .and_then(|e| e.first())
            .map(|e| &e["node"])
            .filter(|n| n["status"] != "DELIVERING" && n["attempts"].as_array().is_some_and(|a| !a.is_empty()))
        {
            return n["id"].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no attempted delivery");
}

/// The database itself refuses to change or remove entries, on both backends.
async fn audit_log_is_append_only(app: TestApp) {
    let w = World::build(&app).await;
    assert!(cohort_store::testing::audit_row_count(&app.store).await.expect("count") > 0, "World::build wrote entries");
    let _ = w;
    let upd = cohort_store::testing::execute_unchecked(&app.store, "UPDATE audit_log SET action = 'rewritten'").await;
    assert!(upd.is_err(), "UPDATE of the audit log must be refused: {upd:?}");
    let del = cohort_store::testing::execute_unchecked(&app.store, "DELETE FROM audit_log").await;
    assert!(del.is_err(), "DELETE from the audit log must be refused: {del:?}");
    if app.backend == Backend::Postgres {
        let t = cohort_store::testing::execute_unchecked(&app.store, "TRUNCATE audit_log").await;
        assert!(t.is_err(), "TRUNCATE must be refused");
    }
    // Appending still works.
    let ins = cohort_store::testing::execute_unchecked(
        &app.store,
        "INSERT INTO audit_log (tenant_id, id, actor_id, action, target_type, target_id, at, details, request_id, actor_kind) \
         SELECT tenant_id, id, actor_id, action, target_type, target_id, at, details, request_id, actor_kind FROM audit_log WHERE 1 = 0",
    )
    .await;
    assert!(ins.is_ok(), "{ins:?}");
}

/// An update records the before and after values of the fields it changed, and only those.
async fn updates_record_before_and_after(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let g = crate::groups::group(&admin, &w.own, "Before", None).await;
    admin
        .ok(
            "mutation($g: ID!) { updateGroup(input: {id: $g, name: \"After\", precedence: 0}) { group { id } } }",
            json!({"g": g}),
        )
        .await;
    let d = admin.ok(ENTRIES, json!({"f": {"action": "group.update", "subjectId": g}})).await;
    let edges = d["auditLog"]["edges"].as_array().expect("edges");
    assert_eq!(edges.len(), 1, "{d:#}");
    assert_eq!(edges[0]["node"]["details"]["changed"], json!({"name": {"before": "Before", "after": "After"}}));
    assert_eq!(edges[0]["node"]["subjectType"], "Group");
}

/// The details of the `action` entries about `subject`, newest first.
async fn details_of(admin: &Actor<'_>, action: &str, subject: &Value) -> Vec<Value> {
    let d = admin.ok(ENTRIES, json!({"f": {"action": action, "subjectId": subject}})).await;
    d["auditLog"]["edges"].as_array().expect("edges").iter().map(|e| e["node"]["details"].clone()).collect()
}

/// The plain UUID inside a global id, as the audit details name ids.
fn uuid_of(id: &Value) -> String {
    let (_, u) = cohort_api::graphql::ids::decode_any(id.as_str().expect("id")).expect("a global id");
    u.to_string()
}

async fn processing_area_update_records_before_and_after(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let ug = admin
        .ok("mutation { createUserGroup(input: {name: \"Queue team\"}) { userGroup { id } } }", json!({}))
        .await["createUserGroup"]["userGroup"]["id"]
        .clone();
    let q = admin
        .ok(
            "mutation { createProcessingArea(input: {name: \"Queue A\", description: \"First line\"}) { processingArea { id } } }",
            json!({}),
        )
        .await["createProcessingArea"]["processingArea"]["id"]
        .clone();
    // The description is sent again unchanged: not listed.
    admin
        .ok(
            "mutation($q: ID!, $g: ID!) { updateProcessingArea(input: {id: $q, name: \"Queue B\", description: \"First line\", userGroupId: $g}) { __typename } }",
            json!({"q": q, "g": ug}),
        )
        .await;
    let d = details_of(&admin, "processingArea.update", &q).await;
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(
        d[0]["changed"],
        json!({
            "name": {"before": "Queue A", "after": "Queue B"},
            "userGroup": {"before": null, "after": uuid_of(&ug)},
        })
    );
}

async fn process_area_update_records_before_and_after(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let queue = |name: &'static str| {
        let admin = &admin;
        async move {
            admin
                .ok(
                    "mutation($n: String!) { createProcessingArea(input: {name: $n}) { processingArea { id } } }",
                    json!({"n": name}),
                )
                .await["createProcessingArea"]["processingArea"]["id"]
                .clone()
        }
    };
    let (q1, q2) = (queue("Inbox 1").await, queue("Inbox 2").await);
    let a = admin
        .ok(
            "mutation($q: ID!) { createProcessArea(input: {key: \"claims\", name: \"Claims\", defaultProcessingAreaId: $q}) { processArea { id } } }",
            json!({"q": q1}),
        )
        .await["createProcessArea"]["processArea"]["id"]
        .clone();
    admin
        .ok(
            "mutation($a: ID!, $q: ID!) { updateProcessArea(input: {id: $a, name: \"Claims\", defaultProcessingAreaId: $q}) { processArea { key } } }",
            json!({"a": a, "q": q2}),
        )
        .await;
    let d = details_of(&admin, "processArea.update", &a).await;
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0]["changed"], json!({"defaultProcessingArea": {"before": uuid_of(&q1), "after": uuid_of(&q2)}}));
}

async fn webhook_endpoint_update_records_before_and_after(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let d = admin
        .ok(
            "mutation { createWebhookEndpoint(input: {url: \"https://hooks.example.com/a\", description: \"ERP\", eventTypes: [\"group.created\"]}) { webhookEndpoint { id } secret } }",
            json!({}),
        )
        .await;
    let hook = d["createWebhookEndpoint"]["webhookEndpoint"]["id"].clone();
    let secret = d["createWebhookEndpoint"]["secret"].as_str().expect("secret").to_owned();
    admin
        .ok(
            "mutation($id: ID!) { updateWebhookEndpoint(input: {id: $id, url: \"https://hooks.example.com/b\", description: \"ERP\", eventTypes: [\"group.updated\", \"group.created\"]}) { __typename } }",
            json!({"id": hook}),
        )
        .await;
    admin
        .ok(
            "mutation($id: ID!) { updateWebhookEndpoint(input: {id: $id, enabled: false}) { __typename } }",
            json!({"id": hook}),
        )
        .await;
    let d = details_of(&admin, "webhookEndpoint.update", &hook).await;
    assert_eq!(d.len(), 2, "{d:#?}");
    assert_eq!(d[0]["changed"], json!({"enabled": {"before": true, "after": false}}));
    assert_eq!(
        d[1]["changed"],
        json!({
            "url": {"before": "https://hooks.example.com/a", "after": "https://hooks.example.com/b"},
            "eventTypes": {"before": ["group.created"], "after": ["group.created", "group.updated"]},
        })
    );
    // The signing secret never reaches the log, not even after a rotation.
    let rotated = admin
        .ok(
            "mutation($id: ID!) { rotateWebhookSecret(input: {id: $id, graceHours: 1}) { secret } }",
            json!({"id": hook}),
        )
        .await["rotateWebhookSecret"]["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let all = admin.ok(ENTRIES, json!({"f": {"subjectId": hook}})).await.to_string();
    assert!(!all.contains(&secret) && !all.contains(&rotated) && !all.contains("whsec_"), "{all}");
}

async fn sequence_update_records_before_and_after(app: TestApp) {
    const UPDATE: &str = "mutation($i: UpdateSequenceInput!) { updateSequence(input: $i) { sequence { version } } }";
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let g = crate::groups::group(&admin, &w.own, "Newcomers", None).await;
    let step = |delay: &str, key: &str| json!({"delay": delay, "action": "EMIT", "templateKey": key});
    let seq = admin
        .ok(
            "mutation($i: CreateSequenceInput!) { createSequence(input: $i) { sequence { id } } }",
            json!({"i": {"name": "Seq A", "startGroupId": g, "steps": [step("P1D", "welcome")]}}),
        )
        .await["createSequence"]["sequence"]["id"]
        .clone();
    // `stopOnLeave` is sent as it is (true by default): not listed.
    let d = admin
        .ok(
            UPDATE,
            json!({"i": {"id": seq, "name": "Seq B", "stopOnLeave": true, "steps": [step("P1D", "welcome"), step("P2D", "reminder")]}}),
        )
        .await;
    assert_eq!(d["updateSequence"]["sequence"]["version"], 2);
    let d = details_of(&admin, "sequence.update", &seq).await;
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0]["version"], 2);
    assert_eq!(
        d[0]["changed"],
        json!({
            "name": {"before": "Seq A", "after": "Seq B"},
            "steps": {
                "before": [{"delay": "P1D", "action": "EMIT", "templateKey": "welcome"}],
                "after": [
                    {"delay": "P1D", "action": "EMIT", "templateKey": "welcome"},
                    {"delay": "P2D", "action": "EMIT", "templateKey": "reminder"},
                ],
            },
        })
    );
    // A long definition is recorded by version (every version is kept), not copied whole.
    let long_key = "k".repeat(100);
    let many: Vec<Value> = (0..50).map(|_| step("P1D", &long_key)).collect();
    admin.ok(UPDATE, json!({"i": {"id": seq, "steps": many}})).await;
    let d = details_of(&admin, "sequence.update", &seq).await;
    assert_eq!(d.len(), 2, "{d:#?}");
    assert_eq!(d[0]["version"], 3);
    assert_eq!(
        d[0]["changed"],
        json!({"steps": {"before": {"version": 2, "stepCount": 2}, "after": {"version": 3, "stepCount": 50}}})
    );
}

async fn web_form_update_records_before_and_after(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    admin.ok("mutation { setPublicProfile(input: {publicName: \"Audit Travel\"}) { publicName } }", json!({})).await;
    let g = admin
        .ok(
            "mutation($i: CreateGroupInput!) { createGroup(input: $i) { group { id } } }",
            json!({"i": {"addressBookId": w.own, "name": "Newsletter", "publicName": "News"}}),
        )
        .await["createGroup"]["group"]["id"]
        .clone();
    let text = admin
        .ok(
            "mutation { createConsentText(input: {purpose: \"news\", language: \"en\", body: \"Send me news.\"}) { consentText { id } } }",
            json!({}),
        )
        .await["createConsentText"]["consentText"]["id"]
        .clone();
    let form = admin
        .ok(
            "mutation($i: CreateWebFormInput!) { createWebForm(input: $i) { webForm { id } } }",
            json!({"i": {"name": "Form A", "intakeAddressBookId": w.own, "groupIds": [g], "consentTextId": text,
                         "fields": [{"field": "FIRST_NAME", "required": false}], "title": "Join us"}}),
        )
        .await["createWebForm"]["webForm"]["id"]
        .clone();
    const UPDATE: &str = "mutation($i: UpdateWebFormInput!) { updateWebForm(input: $i) { webForm { version } } }";
    // The groups are sent again unchanged: not listed.
    let d = admin
        .ok(
            UPDATE,
            json!({"i": {"id": form, "name": "Form B", "groupIds": [g], "title": "Join now",
                         "fields": [{"field": "FIRST_NAME", "required": true}]}}),
        )
        .await;
    assert_eq!(d["updateWebForm"]["webForm"]["version"], 2);
    admin.ok(UPDATE, json!({"i": {"id": form, "enabled": false}})).await;
    let d = details_of(&admin, "webForm.update", &form).await;
    assert_eq!(d.len(), 2, "{d:#?}");
    assert_eq!(
        d[1]["changed"],
        json!({
            "name": {"before": "Form A", "after": "Form B"},
            "title": {"before": "Join us", "after": "Join now"},
            "fields": {
                "before": [{"field": "EMAIL", "required": true}, {"field": "FIRST_NAME", "required": false}],
                "after": [{"field": "EMAIL", "required": true}, {"field": "FIRST_NAME", "required": true}],
            },
            "version": {"before": 1, "after": 2},
        })
    );
    // Switching it off adds no version.
    assert_eq!(d[0]["changed"], json!({"enabled": {"before": true, "after": false}}));
}

/// `auditLog` is for admins; its filter and its pages.
async fn audit_log_is_for_admins_filters_and_pages(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    assert_eq!(agent.err(ENTRIES, json!({})).await, "FORBIDDEN");
    let admin_id = admin.ok("{ viewer { user { id } } }", json!({})).await["viewer"]["user"]["id"].clone();
    let agent_id = agent.ok("{ viewer { user { id } } }", json!({})).await["viewer"]["user"]["id"].clone();

    // The agent writes one contact; the admin has written World's six and more.
    let d = agent
        .ok(CREATE_CONTACT, json!({"i": {"addressBookId": w.own, "kind": "COMPANY", "companyName": "Agent Co"}}))
        .await;
    let mine = d["createContact"]["contact"]["id"].clone();
    let by_agent = admin.ok(ENTRIES, json!({"f": {"actor": agent_id, "action": "contact.create"}})).await;
    let edges = by_agent["auditLog"]["edges"].as_array().expect("edges");
    assert_eq!(edges.len(), 1);
    assert_eq!(edges[0]["node"]["subjectId"], mine);
    assert_eq!(edges[0]["node"]["actor"]["subject"], "agent");
    let by_admin = admin.ok(ENTRIES, json!({"f": {"actor": admin_id, "action": "contact.create"}})).await;
    assert_eq!(by_admin["auditLog"]["totalCount"], 6);
    let about = admin.ok(ENTRIES, json!({"f": {"subjectId": w.id("anna")}})).await;
    assert!(
        about["auditLog"]["edges"].as_array().expect("edges").iter().all(|e| e["node"]["subjectId"] == w.id("anna")),
        "{about:#}"
    );
    assert!(about["auditLog"]["totalCount"].as_i64().unwrap_or(0) >= 1);

    // from/to: the window after the agent's contact holds only what came later.
    let at = edges[0]["node"]["at"].as_str().expect("at").to_owned();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mid = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    tokio::time::sleep(Duration::from_millis(20)).await;
    crate::groups::group(&admin, &w.own, "Later", None).await;
    let later = admin.ok(ENTRIES, json!({"f": {"from": mid, "action": "group.create"}})).await;
    assert_eq!(later["auditLog"]["totalCount"], 1, "{later:#}");
    let earlier = admin.ok(ENTRIES, json!({"f": {"to": mid, "action": "contact.create"}})).await;
    assert_eq!(earlier["auditLog"]["totalCount"], 7);
    let none = admin.ok(ENTRIES, json!({"f": {"to": at, "actor": agent_id, "action": "contact.create"}})).await;
    assert_eq!(none["auditLog"]["totalCount"], 0, "`to` is exclusive");

    // Pages of 2 over the seven contact.create entries: newest first, no duplicates, all seen.
    let mut seen = HashSet::new();
    let mut order = vec![];
    let mut after: Option<String> = None;
    loop {
        let d = admin.ok(ENTRIES, json!({"f": {"action": "contact.create"}, "first": 2, "after": after})).await;
        for e in d["auditLog"]["edges"].as_array().expect("edges") {
            assert!(seen.insert(e["node"]["id"].as_str().expect("id").to_owned()), "duplicate {e}");
            order.push(e["node"]["at"].as_str().expect("at").to_owned());
        }
        if d["auditLog"]["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = d["auditLog"]["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    assert_eq!(seen.len(), 7);
    let parsed: Vec<chrono::DateTime<chrono::Utc>> = order.iter().map(|s| s.parse().expect("time")).collect();
    assert!(parsed.windows(2).all(|p| p[0] >= p[1]), "newest first: {order:?}");
    assert_eq!(admin.err(ENTRIES, json!({"first": 101})).await, "BAD_USER_INPUT");
    assert_eq!(admin.err(ENTRIES, json!({"after": "garbage"})).await, "BAD_USER_INPUT");
}

/// Reading price-list items, a contact's consent log and the audit log leave entries.
async fn sensitive_reads_are_recorded(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let list = admin
        .ok(
            "mutation { createPriceList(input: {name: \"Secret prices\", currency: \"EUR\"}) { priceList { id } } }",
            json!({}),
        )
        .await["createPriceList"]["priceList"]["id"]
        .clone();
    admin.ok("query($l: ID!) { node(id: $l) { ... on PriceList { items { id } } } }", json!({"l": list})).await;
    admin.ok("query($c: ID!) { contact(id: $c) { consents { id } } }", json!({"c": w.id("anna")})).await;
    admin.ok(ENTRIES, json!({"f": {"action": "nothing.yet"}})).await;
    let items = admin.ok(ENTRIES, json!({"f": {"action": "priceList.readItems"}})).await;
    assert_eq!(items["auditLog"]["edges"][0]["node"]["subjectId"], list, "{items:#}");
    assert_eq!(items["auditLog"]["edges"][0]["node"]["actor"]["subject"], "admin");
    let consents = admin.ok(ENTRIES, json!({"f": {"action": "contact.readConsentLog"}})).await;
    assert_eq!(consents["auditLog"]["edges"][0]["node"]["subjectId"], w.id("anna"), "{consents:#}");
    let reads = admin.ok(ENTRIES, json!({"f": {"action": "auditLog.read"}})).await;
    // Every read so far (this one included): the filter it used is on record.
    assert!(reads["auditLog"]["totalCount"].as_i64().unwrap_or(0) >= 4, "{reads:#}");
    assert!(
        reads["auditLog"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .any(|e| e["node"]["details"]["action"] == "nothing.yet"),
        "{reads:#}"
    );
}

on_both_backends!(
    audit_log_is_append_only,
    updates_record_before_and_after,
    processing_area_update_records_before_and_after,
    process_area_update_records_before_and_after,
    webhook_endpoint_update_records_before_and_after,
    sequence_update_records_before_and_after,
    web_form_update_records_before_and_after,
    audit_log_is_for_admins_filters_and_pages,
    sensitive_reads_are_recorded,
);

/// The table test needs the webhook worker on, delivering to loopback over plain HTTP (as in
/// `webhooks.rs`), so it spawns its own apps.
async fn hooked_app(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, |s| {
        s.webhooks.worker = true;
        s.webhooks.allow_hosts = vec!["127.0.0.1".into()];
        s.webhooks.poll_interval = Duration::from_millis(30);
        s.webhooks.timeout = Duration::from_secs(2);
    })
    .await
}

mod table {
    use crate::support::Backend;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_every_mutation_leaves_an_audit_entry() {
        let app = super::hooked_app(Backend::Sqlite).await.expect("sqlite app");
        super::every_mutation_leaves_an_audit_entry(app).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_every_mutation_leaves_an_audit_entry() {
        match super::hooked_app(Backend::Postgres).await {
            Some(app) => super::every_mutation_leaves_an_audit_entry(app).await,
            None => eprintln!("skipped on PostgreSQL: COHORT_TEST_DATABASE_URL is not set"),
        }
    }
}
