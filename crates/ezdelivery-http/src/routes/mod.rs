//! The endpoints, one module per part of the API, and the error responses
//! every operation documents. Each handler carries its OpenAPI
//! description (`#[utoipa::path]`), from which `/openapi.json` is made.

pub(crate) mod catalogue;
pub(crate) mod events;
pub(crate) mod orders;
pub(crate) mod service;

use utoipa::IntoResponses;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::problem::Problem;
use crate::state::AppState;

/// The errors any authenticated operation may answer, as problem+json.
#[derive(IntoResponses)]
#[allow(dead_code)] // only its OpenAPI description is used
pub(crate) enum Errors {
    /// A value is wrong (`invalid_input`).
    #[response(
        status = 400,
        description = "invalid_input: a value is wrong",
        content_type = "application/problem+json"
    )]
    BadRequest(Problem),
    /// No token, or an unknown one.
    #[response(status = 401, description = "no valid bearer token", content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// A payment was declined; the order stays `pending_payment`.
    #[response(
        status = 402,
        description = "declined: the card was declined",
        content_type = "application/problem+json"
    )]
    Declined(Problem),
    /// Another's resource.
    #[response(
        status = 403,
        description = "another's resource, or not this role's",
        content_type = "application/problem+json"
    )]
    Forbidden(Problem),
    /// No such record.
    #[response(
        status = 404,
        description = "not_found: no such store, menu, order or rider",
        content_type = "application/problem+json"
    )]
    NotFound(Problem),
    /// The state machine refuses, or the same idempotency key is still at work.
    #[response(
        status = 409,
        description = "invalid_state: the state machine refuses",
        content_type = "application/problem+json"
    )]
    Conflict(Problem),
    /// The body is over the limit.
    #[response(status = 413, description = "the request body is too large", content_type = "application/problem+json")]
    TooLarge(Problem),
    /// The idempotency key was used with another request.
    #[response(
        status = 422,
        description = "the Idempotency-Key was used with another body",
        content_type = "application/problem+json"
    )]
    Unprocessable(Problem),
    /// The server failed.
    #[response(
        status = 500,
        description = "internal (or money_moved: see the order)",
        content_type = "application/problem+json"
    )]
    Internal(Problem),
    /// A gateway is down (the work is kept and queued), or the server is busy.
    #[response(status = 503, description = "unavailable: try again after Retry-After seconds", content_type = "application/problem+json",
               headers(("Retry-After" = u32, description = "seconds to wait")))]
    Unavailable(Problem),
}

/// The `Idempotency-Key` header every `POST` honours (described once).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // only its OpenAPI description is used
pub(crate) struct IdempotencyKey {
    /// 1 to 255 visible ASCII characters (no spaces), in one header: the
    /// same key and body return the first response without doing the
    /// work again; another body is 422.
    #[param(rename = "Idempotency-Key")]
    key: Option<String>,
}

/// Every endpoint, with its OpenAPI description.
pub(crate) fn all() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(service::healthz))
        .routes(routes!(service::metrics))
        .routes(routes!(service::openapi))
        .routes(routes!(catalogue::add_store, catalogue::stores))
        .routes(routes!(catalogue::open_store))
        .routes(routes!(catalogue::close_store))
        .routes(routes!(catalogue::store_orders))
        .routes(routes!(catalogue::add_menu))
        .routes(routes!(catalogue::menus))
        .routes(routes!(catalogue::menu_soldout))
        .routes(routes!(catalogue::menu_available))
        .routes(routes!(catalogue::add_rider))
        .routes(routes!(orders::place_order))
        .routes(routes!(orders::order))
        .routes(routes!(orders::customer_orders))
        .routes(routes!(orders::pay))
        .routes(routes!(orders::cook_start))
        .routes(routes!(orders::cook_finish))
        .routes(routes!(orders::cook_reject))
        .routes(routes!(orders::delivery_start))
        .routes(routes!(orders::delivery_complete))
        .routes(routes!(orders::cancel))
        .routes(routes!(orders::review))
        .routes(routes!(events::events))
        .routes(routes!(events::order_events))
}
