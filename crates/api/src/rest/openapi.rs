//! The OpenAPI 3.1 document of the REST facade, generated from the endpoints' `#[utoipa::path]`s
//! and the body types. Served at `GET /api/v1/openapi.json` (no token needed), printed by
//! `cohort openapi`, committed as `openapi.json` (a test keeps it current).

use super::endpoints;
use super::problem::{Problem, ProblemItem};
use super::types::*;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use std::sync::OnceLock;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Cohort REST API",
        description = "A REST facade over Cohort's GraphQL API for the calls integrators make most. Every \
endpoint runs a fixed GraphQL operation through the same authorization, limits and error codes as \
`POST /graphql`. Ids are the GraphQL API's opaque global ids; amounts and quantities are decimal \
strings; times are RFC 3339. Errors are RFC 9457 problem details (`application/problem+json`) whose \
`code` is GraphQL's `extensions.code`. Write endpoints take an `Idempotency-Key` header.",
        license(name = "MIT OR Apache-2.0", identifier = "MIT OR Apache-2.0"),
    ),
    paths(
        endpoints::resolve_price,
        endpoints::quote_order,
        endpoints::place_order,
        endpoints::get_order,
        endpoints::upsert_contacts,
        endpoints::put_contact,
        endpoints::set_group_members,
        endpoints::changes,
    ),
    components(schemas(
        Problem,
        ProblemItem,
        ResolvePriceRequest,
        PriceResolution,
        OrderRequest,
        OrderLineRequest,
        OrderQuote,
        Order,
        OrderLine,
        SetGroupMembersRequest,
        SetGroupMembersResult,
        UpsertContactsRequest,
        UpsertContactInput,
        PutContactRequest,
        UpsertContactsResult,
        UpsertContactResult,
        ContactUpsert,
        ChangePage,
        Change,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "pricing", description = "Prices and quotes (nothing is written)."),
        (name = "orders", description = "Orders with frozen prices."),
        (name = "contacts", description = "Contacts by their ids in source systems."),
        (name = "groups", description = "Group members by their ids in source systems."),
        (name = "changes", description = "What changed, for polling integrations."),
    )
)]
struct ApiDoc;

/// The `bearerAuth` scheme every endpoint requires: the JWT the GraphQL API takes.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("`Authorization: Bearer <JWT>`, as for `POST /graphql`."))
                    .build(),
            ),
        );
    }
}

/// The document as pretty JSON, ending in a newline (what `openapi.json` holds).
pub fn openapi_json() -> String {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let mut s = doc.to_pretty_json().unwrap_or_else(|e| panic!("the OpenAPI document does not serialise: {e}"));
    s.push('\n');
    s
}

pub(crate) async fn serve() -> Response {
    static DOC: OnceLock<String> = OnceLock::new();
    let body = DOC.get_or_init(openapi_json).clone();
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}
