//! The endpoints: each a fixed GraphQL document and the code that builds its variables and shapes
//! its answer. The `#[utoipa::path]` of each is its OpenAPI operation.

use super::problem::{PROBLEM_JSON, Problem};
use super::types::*;
use super::{IDEMPOTENCY_KEY, Operation, Refused, idempotency_key, json_response, prepare, typed};
use crate::http::AppState;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use std::collections::HashMap;

macro_rules! price_fields {
    () => {
        "fragment RestPrice on PriceResolution { product { id sku name } quantity unitPrice lineTotal currency \
         source priceList { id name } group { id name } }"
    };
}

macro_rules! order_fields {
    () => {
        "fragment RestOrder on Order { id contact { id displayName } currency total lineCount placedAt pricedAt \
         lines { lineNo sku productName quantity unitPrice lineTotal source priceList { id name } } }"
    };
}

macro_rules! contact_fields {
    () => {
        "fragment RestContact on Contact { id kind displayName firstName lastName companyName \
         emails { address label } phones { number label } externalIds { system value } \
         addressBook { id name } createdAt updatedAt }"
    };
}

pub(crate) const RESOLVE_PRICE: Operation = Operation {
    name: "RestResolvePrice",
    root: "resolvePrice",
    document: concat!(
        "query RestResolvePrice($input: ResolvePriceInput!) { resolvePrice(input: $input) { ...RestPrice } } ",
        price_fields!()
    ),
};

pub(crate) const QUOTE_ORDER: Operation = Operation {
    name: "RestQuoteOrder",
    root: "quoteOrder",
    document: concat!(
        "query RestQuoteOrder($input: QuoteOrderInput!) { quoteOrder(input: $input) { currency total lines { ...RestPrice } } } ",
        price_fields!()
    ),
};

pub(crate) const PLACE_ORDER: Operation = Operation {
    name: "RestPlaceOrder",
    root: "placeOrder",
    document: concat!(
        "mutation RestPlaceOrder($input: PlaceOrderInput!) { placeOrder(input: $input) { replayed order { ...RestOrder } } } ",
        order_fields!()
    ),
};

pub(crate) const GET_ORDER: Operation = Operation {
    name: "RestOrder",
    root: "order",
    document: concat!("query RestOrder($id: ID!) { order(id: $id) { ...RestOrder } } ", order_fields!()),
};

pub(crate) const SET_GROUP_MEMBERS: Operation = Operation {
    name: "RestSetGroupMembers",
    root: "setGroupMembersByExternalId",
    document: "mutation RestSetGroupMembers($groupId: ID!, $system: String!, $externalIds: [String!]!, $idempotencyKey: String) { \
        setGroupMembersByExternalId(input: {groupId: $groupId, system: $system, externalIds: $externalIds, idempotencyKey: $idempotencyKey}) { \
        added removed unchanged notFound } }",
};

pub(crate) const UPSERT_CONTACTS: Operation = Operation {
    name: "RestUpsertContacts",
    root: "upsertContacts",
    document: concat!(
        "mutation RestUpsertContacts($addressBookId: ID!, $system: String!, $atomic: Boolean = true, $contacts: [UpsertContactInput!]!) { \
         upsertContacts(input: {addressBookId: $addressBookId, system: $system, atomic: $atomic, contacts: $contacts}) { \
         committed created updated unchanged failed \
         results { index externalId status contact { ...RestContact } error { code message field } } } } ",
        contact_fields!()
    ),
};

pub(crate) const CHANGES: Operation = Operation {
    name: "RestChanges",
    root: "changes",
    document: "query RestChanges($since: String, $types: [ChangeType!], $first: Int) { \
        changes(since: $since, types: $types, first: $first) { \
        changes { cursor type operation id externalIds { system value } changedAt } cursor hasMore } }",
};

/// The request body extractor of JSON endpoints (read by [`prepare`], not by axum's `Json`, so a
/// bad body is a problem document).
type RawBody = Result<Bytes, BytesRejection>;

/// Who the idempotency key problems are about: the header, not a body field.
fn key_problem(p: Refused) -> Refused {
    if p.field.as_deref() == Some("idempotencyKey") { Box::new((*p).with_field(IDEMPOTENCY_KEY)) } else { p }
}

fn path_problem(_: PathRejection) -> Problem {
    Problem::new("BAD_REQUEST", "the path could not be read (percent-encoded UTF-8 expected)")
}

/// Resolve one price
///
/// The product's price for a contact (their own lists, their groups' lists, the default list, the
/// list price — the first that has one), for a quantity and currency. Needs READ on the
/// contact's address book; writes nothing. GraphQL: `resolvePrice`.
#[utoipa::path(
    post,
    path = "/api/v1/prices:resolve",
    operation_id = "resolvePrice",
    tag = "pricing",
    request_body = ResolvePriceRequest,
    responses(
        (status = 200, description = "The price.", body = PriceResolution),
        (status = 400, description = "The body is not JSON.", body = Problem, content_type = PROBLEM_JSON),
        (status = 401, description = "No valid bearer token.", body = Problem, content_type = PROBLEM_JSON),
        (status = 404, description = "The contact or product is unknown or not visible (the same answer for both).", body = Problem, content_type = PROBLEM_JSON),
        (status = 415, description = "The body is not `application/json`.", body = Problem, content_type = PROBLEM_JSON),
        (status = 422, description = "`BAD_USER_INPUT` (`field` names it) or `NO_PRICE` (no price in that currency).", body = Problem, content_type = PROBLEM_JSON),
        (status = 500, description = "`INTERNAL` (quote `requestId`).", body = Problem, content_type = PROBLEM_JSON),
    ),
    security(("bearerAuth" = []))
)]
pub(crate) async fn resolve_price(State(st): State<AppState>, headers: HeaderMap, body: RawBody) -> Response {
    let (call, body) = match prepare(st, &headers, Some(body)).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    call.finish(
        async {
            typed::<ResolvePriceRequest>(body.clone())?;
            let r: PriceResolution = call.run(&RESOLVE_PRICE, json!({ "input": body })).await?;
            Ok(json_response(StatusCode::OK, &r))
        }
        .await,
    )
}

/// Quote an order
///
/// Prices an order without placing it: every line as `prices:resolve` would, and the total.
/// Needs READ on the contact's address book; writes nothing. GraphQL: `quoteOrder`.
#[utoipa::path(
    post,
    path = "/api/v1/quotes",
    operation_id = "quoteOrder",
    tag = "pricing",
    request_body = OrderRequest,
    responses(
        (status = 200, description = "The quote.", body = OrderQuote),
        (status = 400, description = "The body is not JSON.", body = Problem, content_type = PROBLEM_JSON),
        (status = 401, description = "No valid bearer token.", body = Problem, content_type = PROBLEM_JSON),
        (status = 404, description = "The contact or a product is unknown or not visible.", body = Problem, content_type = PROBLEM_JSON),
        (status = 415, description = "The body is not `application/json`.", body = Problem, content_type = PROBLEM_JSON),
        (status = 422, description = "`BAD_USER_INPUT` (`field` names it) or `NO_PRICE`.", body = Problem, content_type = PROBLEM_JSON),
        (status = 500, description = "`INTERNAL` (quote `requestId`).", body = Problem, content_type = PROBLEM_JSON),
    ),
    security(("bearerAuth" = []))
)]
pub(crate) async fn quote_order(State(st): State<AppState>, headers: HeaderMap, body: RawBody) -> Response {
    let (call, body) = match prepare(st, &headers, Some(body)).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    call.finish(
        async {
            typed::<OrderRequest>(body.clone())?;
            let r: OrderQuote = call.run(&QUOTE_ORDER, json!({ "input": body })).await?;
            Ok(json_response(StatusCode::OK, &r))
        }
        .await,
    )
}

/// Place an order
///
/// Prices the lines (as `quotes`) and stores the order with those prices frozen. Needs WRITE on
/// the contact's address book. Send an `Idempotency-Key` to make retries safe: a retry with the
/// same key and body answers the order the first request placed (`Idempotent-Replayed: true`)
/// and places nothing. GraphQL: `placeOrder`.
#[utoipa::path(
    post,
    path = "/api/v1/orders",
    operation_id = "placeOrder",
    tag = "orders",
    request_body = OrderRequest,
    params(
        ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 200, description = "Makes retries safe: the same key (same caller, same body, within 24 h) answers the first request's order and places nothing. 1 to 200 printable characters."),
    ),
    responses(
        (status = 201, description = "The order was placed (or, for a retry, had been).", body = Order,
            headers(
                ("Location" = String, description = "`/api/v1/orders/{id}`"),
                ("Idempotent-Replayed" = String, description = "`true` when this answers a retry with the same `Idempotency-Key`."),
            )),
        (status = 400, description = "The body is not JSON.", body = Problem, content_type = PROBLEM_JSON),
        (status = 401, description = "No valid bearer token.", body = Problem, content_type = PROBLEM_JSON),
        (status = 403, description = "`FORBIDDEN`: no WRITE on the contact's book, or another date than now for non-admins.", body = Problem, content_type = PROBLEM_JSON),
        (status = 404, description = "The contact or a product is unknown or not visible.", body = Problem, content_type = PROBLEM_JSON),
        (status = 409, description = "`CONFLICT`: the `Idempotency-Key` was used for another request.", body = Problem, content_type = PROBLEM_JSON),
        (status = 415, description = "The body is not `application/json`.", body = Problem, content_type = PROBLEM_JSON),
        (status = 422, description = "`BAD_USER_INPUT` (`field` names it) or `NO_PRICE`.", body = Problem, content_type = PROBLEM_JSON),
        (status = 500, description = "`INTERNAL` (quote `requestId`).", body = Problem, content_type = PROBLEM_JSON),
    ),
    security(("bearerAuth" = []))
)]
pub(crate) async fn place_order(State(st): State<AppState>, headers: HeaderMap, body: RawBody) -> Response {
    let (call, body) = match prepare(st, &headers, Some(body)).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    call.finish(
        async {
            let key = idempotency_key(&headers)?;
            typed::<OrderRequest>(body.clone())?;
            let mut vars = json!({ "input": body });
            if let Some(k) = key {
                vars["input"]["idempotencyKey"] = json!(k);
            }
            let placed: PlacedOrder = call.run(&PLACE_ORDER, vars).await.map_err(key_problem)?;
            let mut r = json_response(StatusCode::CREATED, &placed.order);
            if let Ok(loc) = HeaderValue::from_str(&format!("/api/v1/orders/{}", placed.order.id)) {
                r.headers_mut().insert(header::LOCATION, loc);
            }
            if placed.replayed {
                r.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
            }
            Ok(r)
        }
        .await,
    )
}

/// Read an order
///
/// One order, with its lines as placed; `404` if the caller cannot see the order's contact.
/// GraphQL: `order`.
#[utoipa::path(
    get,
    path = "/api/v1/orders/{id}",
    operation_id = "getOrder",
    tag = "orders",
    params(("id" = String, Path, description = "The order's global id.")),
    responses(
        (status = 200, description = "The order.", body = Order),
        (status = 401, description = "No valid bearer token.", body = Problem, content_type = PROBLEM_JSON),
        (status = 403, description = "`DATA_USAGE_LIMIT`: the order's contact would be beyond the caller's daily limit of distinct contacts.", body = Problem, content_type = PROBLEM_JSON),
        (status = 404, description = "No such order, or one the caller cannot see (the same answer).", body = Problem, content_type = PROBLEM_JSON),
        (status = 500, description = "`INTERNAL` (quote `requestId`).", body = Problem, content_type = PROBLEM_JSON),
    ),
    security(("bearerAuth" = []))
)]
pub(crate) async fn get_order(
    State(st): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let (call, _) = match prepare(st, &headers, None).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    call.finish(
        async {
            let Path(id) = id.map_err(path_problem)?;
            let r: Order = call.run(&GET_ORDER, json!({ "id": id })).await?;
            Ok(json_response(StatusCode::OK, &r))
        }
        .await,
    )
}

/// Set a group's members
///
/// Sets the members to exactly the contacts with these ids in one source system: contacts not
/// yet members join, members not listed leave. Ids no visible contact holds are listed in
/// `notFound`. Needs WRITE on the group's home book. Send an `Idempotency-Key` to make retries
/// safe. GraphQL: `setGroupMembersByExternalId`.
#[utoipa::path(
    put,
    path = "/api/v1/groups/{id}/members",
    operation_id = "setGroupMembers",
    tag = "groups",
    request_body = SetGroupMembersRequest,
    params(
        ("id" = String, Path, description = "The group's global id."),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 200, description = "Makes retries safe: the same key (same caller, same body, within 24 h) answers the first request's result and changes nothing."),
    ),
    responses(
        (status = 200, description = "What changed.", body = SetGroupMembersResult),
        (status = 400, description = "The body is not JSON.", body = Problem, content_type = PROBLEM_JSON),
        (status = 401, description = "No valid bearer token.", body = Problem, content_type = PROBLEM_JSON),
        (status = 403, description = "`FORBIDDEN`: no WRITE on the group's book.", body = Problem, content_type = PROBLEM_JSON),
        (status = 404, description = "The group is unknown or not visible.", body = Problem, content_type = PROBLEM_JSON),
        (status = 409, description = "`CONFLICT`: the `Idempotency-Key` was used for another request.", body = Problem, content_type = PROBLEM_JSON),
        (status = 415, description = "The body is not `application/json`.", body = Problem, content_type = PROBLEM_JSON),
        (status = 422, description = "`BAD_USER_INPUT` (`field` names it).", body = Problem, content_type = PROBLEM_JSON),
        (status = 500, description = "`INTERNAL` (quote `requestId`).", body = Problem, content_type = PROBLEM_JSON),
    ),
    security(("bearerAuth" = []))
)]
pub(crate) async fn set_group_members(
    State(st): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    body: RawBody,
) -> Response {
    let (call, body) = match prepare(st, &headers, Some(body)).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    call.finish(
        async {
            let Path(id) = id.map_err(path_problem)?;
            let key = idempotency_key(&headers)?;
            let input: SetGroupMembersRequest = typed(body)?;
            let vars = json!({
                "groupId": id,
                "system": input.system,
                "externalIds": input.external_ids,
                "idempotencyKey": key,
            });
            let r: SetGroupMembersResult = call.run(&SET_GROUP_MEMBERS, vars).await.map_err(key_problem)?;
            Ok(json_response(StatusCode::OK, &r))
        }
        .await,
    )
}

/// The variables of `upsertContacts` for a batch.
fn upsert_variables(address_book_id: &str, system: &str, atomic: Option<bool>, contacts: Value) -> Value {
    let mut vars = json!({ "addressBookId": address_book_id, "system": system, "contacts": contacts });
    if let Some(a) = atomic {
        vars["atomic"] = json!(a);
    }
    vars
}

/// The code of items that were fine but not written because another item of the atomic call
/// failed.
const ROLLED_BACK: &str = "ROLLED_BACK";

/// The problem of a batch that was not committed: the first failed item's code, every item that
/// failed (not those only rolled back with it) in `errors`.
fn uncommitted(r: &UpsertContactsResult) -> Problem {
    let failed: Vec<_> = r
        .results
        .iter()
        .filter(|i| i.status == UpsertStatus::Failed)
        .filter(|i| i.error.as_ref().is_none_or(|e| e.code != ROLLED_BACK))
        .map(|i| {
            let e = i.error.clone().unwrap_or(UpsertError {
                code: "INTERNAL".into(),
                message: "internal error".into(),
                field: None,
            });
            super::problem::ProblemItem {
                index: i.index,
                external_id: i.external_id.clone(),
                code: e.code,
                message: e.message,
                field: e.field,
            }
        })
        .collect();
    let (code, detail, field) = match failed.first() {
        Some(f) => (f.code.clone(), f.message.clone(), f.field.clone()),
        None => ("INTERNAL".to_owned(), "internal error".to_owned(), None),
    };
    let mut p = Problem::new(&code, detail);
    if failed.len() == 1
        && let Some(f) = field
    {
        p = p.with_field(f);
    }
    p.errors = Some(failed);
    p
}

/// Create or update contacts
///
/// Creates or updates contacts by their ids in one source system (`system`/`externalId`), in one
/// address book. Atomic by default: one failed item writes none, and the answer is a problem
/// listing the failed items in `errors`; with `atomic: false` every item that can be written is,
/// and the answer tells each item's fate. Needs WRITE on the address book. GraphQL:
/// `upsertContacts`.
///
/// No `Idempotency-Key`: an upsert is idempotent by itself — a retry finds the contacts as the
/// first request wrote them and answers `UNCHANGED`.
#[utoipa::path(
    post,
    path = "/api/v1/contacts:upsert",
    operation_id = "upsertContacts",
    tag = "contacts",
    request_body = UpsertContactsRequest,
    responses(
        (status = 200, description = "What happened to each item.", body = UpsertContactsResult),
        (status = 400, description = "The body is not JSON.", body = Problem, content_type = PROBLEM_JSON),
        (status = 401, description = "No valid bearer token.", body = Problem, content_type = PROBLEM_JSON),
        (status = 403, description = "`FORBIDDEN`: no WRITE on the address book.", body = Problem, content_type = PROBLEM_JSON),
        (status = 404, description = "The address book is unknown or not visible.", body = Problem, content_type = PROBLEM_JSON),
        (status = 409, description = "`CONFLICT` (an atomic batch whose first failed item conflicts; `errors` lists them all).", body = Problem, content_type = PROBLEM_JSON),
        (status = 415, description = "The body is not `application/json`.", body = Problem, content_type = PROBLEM_JSON),
        (status = 422, description = "`BAD_USER_INPUT` (`field` names it); for an atomic batch with failed items, `errors` lists them.", body = Problem, content_type = PROBLEM_JSON),
        (status = 500, description = "`INTERNAL` (quote `requestId`).", body = Problem, content_type = PROBLEM_JSON),
    ),
    security(("bearerAuth" = []))
)]
pub(crate) async fn upsert_contacts(State(st): State<AppState>, headers: HeaderMap, body: RawBody) -> Response {
    let (call, body) = match prepare(st, &headers, Some(body)).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    call.finish(
        async {
            let input: UpsertContactsRequest = typed(body.clone())?;
            // The items as sent: on an update, an omitted name stays and `null` clears it.
            let vars = upsert_variables(&input.address_book_id, &input.system, input.atomic, body["contacts"].clone());
            let r: UpsertContactsResult = call.run(&UPSERT_CONTACTS, vars).await?;
            if !r.committed && r.failed > 0 {
                return Err(uncommitted(&r).into());
            }
            Ok(json_response(StatusCode::OK, &r))
        }
        .await,
    )
}

/// Create or update one contact
///
/// Creates or updates the contact with this id in a source system: `201` when it was created,
/// `200` when it was updated or already as given. On an update, an omitted name stays as it is
/// and `null` clears it; `emails` / `phones`, when given, replace the whole list. Needs WRITE on
/// the address book. GraphQL: `upsertContacts` with one item. Idempotent by itself (no
/// `Idempotency-Key`).
#[utoipa::path(
    put,
    path = "/api/v1/contacts/{system}/{externalId}",
    operation_id = "putContact",
    tag = "contacts",
    request_body = PutContactRequest,
    params(
        ("system" = String, Path, description = "The source system (`erp`)."),
        ("externalId" = String, Path, description = "The contact's id in that system (percent-encoded)."),
    ),
    responses(
        (status = 200, description = "The contact was updated or was already as given.", body = ContactUpsert),
        (status = 201, description = "The contact was created.", body = ContactUpsert),
        (status = 400, description = "The body is not JSON.", body = Problem, content_type = PROBLEM_JSON),
        (status = 401, description = "No valid bearer token.", body = Problem, content_type = PROBLEM_JSON),
        (status = 403, description = "`FORBIDDEN`: no WRITE on the address book.", body = Problem, content_type = PROBLEM_JSON),
        (status = 404, description = "The address book is unknown or not visible.", body = Problem, content_type = PROBLEM_JSON),
        (status = 409, description = "`CONFLICT`.", body = Problem, content_type = PROBLEM_JSON),
        (status = 415, description = "The body is not `application/json`.", body = Problem, content_type = PROBLEM_JSON),
        (status = 422, description = "`BAD_USER_INPUT` (`field` names it).", body = Problem, content_type = PROBLEM_JSON),
        (status = 500, description = "`INTERNAL` (quote `requestId`).", body = Problem, content_type = PROBLEM_JSON),
    ),
    security(("bearerAuth" = []))
)]
pub(crate) async fn put_contact(
    State(st): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    body: RawBody,
) -> Response {
    let (call, body) = match prepare(st, &headers, Some(body)).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    call.finish(
        async {
            let Path((system, external_id)) = path.map_err(path_problem)?;
            let input: PutContactRequest = typed(body.clone())?;
            // The item as sent (an omitted name stays, `null` clears it), keyed by the path.
            let mut item = body;
            let book = input.address_book_id;
            if let Some(o) = item.as_object_mut() {
                o.remove("addressBookId");
                o.insert("externalId".into(), json!(external_id));
            }
            let vars = upsert_variables(&book, &system, Some(true), json!([item]));
            let r: UpsertContactsResult = call.run(&UPSERT_CONTACTS, vars).await?;
            let Some(one) = r.results.into_iter().next() else {
                tracing::error!("upsertContacts answered no result for one item");
                return Err(Problem::internal().into());
            };
            match (one.status, one.contact, one.error) {
                (UpsertStatus::Failed, _, e) => {
                    let e = e.unwrap_or(UpsertError {
                        code: "INTERNAL".into(),
                        message: "internal error".into(),
                        field: None,
                    });
                    let p = Problem::new(&e.code, e.message);
                    Err(Box::new(match e.field {
                        Some(f) => p.with_field(f),
                        None => p,
                    }))
                }
                (status, Some(contact), _) => {
                    let code = if status == UpsertStatus::Created { StatusCode::CREATED } else { StatusCode::OK };
                    Ok(json_response(code, &ContactUpsert { status, contact }))
                }
                (_, None, _) => {
                    tracing::error!("upsertContacts answered a written item without its contact");
                    Err(Problem::internal().into())
                }
            }
        }
        .await,
    )
}

/// The change types `types` takes, in the query's spelling.
fn change_types(s: &str) -> Result<Vec<&'static str>, Refused> {
    s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| match t.to_ascii_lowercase().replace('-', "_").as_str() {
            "contact" => Ok("CONTACT"),
            "group" => Ok("GROUP"),
            "product" => Ok("PRODUCT"),
            "price_list" => Ok("PRICE_LIST"),
            _ => Err(Problem::bad_input(
                "types",
                format!("unknown change type '{t}': use contact, group, product, price_list"),
            )
            .into()),
        })
        .collect()
}

/// List changes
///
/// What changed since a cursor (contacts, groups, products, price lists the caller can see),
/// one entry per object (its latest change), oldest first. Call once without `since`: the page
/// is empty and its `cursor` is "now"; store it, read the current state, and from then on ask
/// for the changes since the stored cursor. Deleted objects (and contacts moved out of the
/// caller's sight) come as `DELETED`. GraphQL: `changes`.
#[utoipa::path(
    get,
    path = "/api/v1/changes",
    operation_id = "listChanges",
    tag = "changes",
    params(
        ("since" = Option<String>, Query, description = "The `cursor` of the previous page; absent = an empty page whose `cursor` is now."),
        ("types" = Option<String>, Query, description = "Comma-separated: `contact`, `group`, `product`, `price_list`; absent = all."),
        ("first" = Option<i32>, Query, description = "At most this many changes (1 to 500, default 100)."),
    ),
    responses(
        (status = 200, description = "A page of changes.", body = ChangePage),
        (status = 401, description = "No valid bearer token.", body = Problem, content_type = PROBLEM_JSON),
        (status = 403, description = "`DATA_USAGE_LIMIT`: the page would show contacts beyond the caller's daily limit of distinct contacts (an admin can lift the block).", body = Problem, content_type = PROBLEM_JSON),
        (status = 422, description = "`BAD_USER_INPUT`: a bad cursor, type or page size (`field` names the parameter).", body = Problem, content_type = PROBLEM_JSON),
        (status = 500, description = "`INTERNAL` (quote `requestId`).", body = Problem, content_type = PROBLEM_JSON),
    ),
    security(("bearerAuth" = []))
)]
pub(crate) async fn changes(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (call, _) = match prepare(st, &headers, None).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    call.finish(
        async {
            if let Some(k) = q.keys().find(|k| !matches!(k.as_str(), "since" | "types" | "first")) {
                return Err(Problem::bad_input(k.clone(), format!("unknown query parameter '{k}'")).into());
            }
            let mut vars = serde_json::Map::new();
            if let Some(s) = q.get("since") {
                vars.insert("since".into(), json!(s));
            }
            if let Some(t) = q.get("types") {
                vars.insert("types".into(), json!(change_types(t)?));
            }
            if let Some(f) = q.get("first") {
                let n: i32 = f
                    .trim()
                    .parse()
                    .map_err(|_| Problem::bad_input("first", "must be a whole number from 1 to 500"))?;
                vars.insert("first".into(), json!(n));
            }
            let r: ChangePage = call.run(&CHANGES, Value::Object(vars)).await?;
            Ok(json_response(StatusCode::OK, &r))
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_types_take_the_query_spelling() {
        let types = change_types("contact, Group,price-list").unwrap(); // ok: a unit test, not a request path
        assert_eq!(types, ["CONTACT", "GROUP", "PRICE_LIST"]);
        assert_eq!(change_types("contacts").unwrap_err().field.as_deref(), Some("types"));
    }

    #[test]
    fn documents_parse() {
        for op in
            [&RESOLVE_PRICE, &QUOTE_ORDER, &PLACE_ORDER, &GET_ORDER, &SET_GROUP_MEMBERS, &UPSERT_CONTACTS, &CHANGES]
        {
            let doc = async_graphql::parser::parse_query(op.document).unwrap_or_else(|e| panic!("{}: {e}", op.name));
            assert!(doc.operations.iter().any(|(n, _)| n.map(|n| n.as_str()) == Some(op.name)), "{}", op.name);
        }
    }
}
