//! The event log (`events`), at once as JSON or live as Server-Sent Events.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ezdelivery_core::json::EventList;
use serde::Deserialize;
use utoipa::IntoParams;

use super::Errors;
use crate::auth::{order_access, require_role, Caller, OrderAction};
use crate::body::{Id, PathParam, QueryParams};
use crate::problem::Problem;
use crate::sse;
use crate::state::AppState;
use crate::tokens::Principal;

/// The most events one `GET` returns.
const MAX_LIMIT: usize = 10_000;

/// `GET /events?order=&after=&limit=`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct EventQuery {
    /// Only this order's events (anyone who may see the order); without
    /// it, every event (admin only).
    #[param(value_type = Option<i64>, minimum = 1)]
    order: Option<Id>,
    /// Only events after this `seq` (a stream resumes after `Last-Event-ID` instead).
    #[param(minimum = 0)]
    after: Option<i64>,
    /// At most this many (1 to 10000, default 1000); not for streams.
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<usize>,
}

/// `GET /orders/{id}/events?after=`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AfterQuery {
    /// Only events after this `seq`.
    #[param(minimum = 0)]
    after: Option<i64>,
}

/// The header that resumes a live stream (asked for with `Accept:
/// text/event-stream`).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // only its OpenAPI description is used
pub(crate) struct StreamHeaders {
    /// Resume a stream after this event (its `seq`, the SSE `id`).
    #[param(rename = "Last-Event-ID", minimum = 0)]
    last_event_id: Option<i64>,
}

/// The log in commit order (`events`): `{"events":[…]}`, or with `Accept:
/// text/event-stream` a live stream of CloudEvents, each with its `seq` as
/// the SSE `id`, resumed after `Last-Event-ID`.
#[utoipa::path(get, path = "/events", tag = "events", params(EventQuery, StreamHeaders),
    responses((status = 200, description = "the events",
               content((EventList = "application/json"), (String = "text/event-stream"))), Errors),
    security(("bearer" = [])))]
pub(crate) async fn events(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    QueryParams(query): QueryParams<EventQuery>,
) -> Result<Response, Problem> {
    let order = query.order.map(|Id(id)| id);
    let (checked, who) = (state.clone(), caller.clone());
    checked
        .engine
        .run(move |e| match order {
            Some(order) => order_access(e, &who, order, OrderAction::Read).map(drop),
            None => require_role(&who, &[], "read every event (ask with ?order=ID)"),
        })
        .await?;
    answer(state, caller, &headers, order, query.after, query.limit).await
}

/// One order's events (`events --order ID --follow`), for tracking: live
/// with `Accept: text/event-stream`, else `{"events":[…]}`.
#[utoipa::path(get, path = "/orders/{id}/events", tag = "events",
    params(("id" = i64, Path, description = "the order", example = 1), AfterQuery, StreamHeaders),
    responses((status = 200, description = "the order's events",
               content((EventList = "application/json"), (String = "text/event-stream"))), Errors),
    security(("bearer" = [])))]
pub(crate) async fn order_events(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    PathParam(Id(id)): PathParam<Id>,
    QueryParams(query): QueryParams<AfterQuery>,
) -> Result<Response, Problem> {
    let who = caller.clone();
    state.engine.run(move |e| order_access(e, &who, id, OrderAction::Read).map(drop)).await?;
    answer(state, caller, &headers, Some(id), query.after, None).await
}

async fn answer(
    state: AppState,
    caller: Principal,
    headers: &HeaderMap,
    order: Option<i64>,
    after: Option<i64>,
    limit: Option<usize>,
) -> Result<Response, Problem> {
    let after = after.unwrap_or(0);
    if after < 0 {
        return Err(Problem::invalid(format!("after must be 0 or more, got {after}")));
    }
    if wants_stream(headers) {
        let resume = sse::last_event_id(headers)?.unwrap_or(after);
        return Ok(sse::stream(state, caller, order, resume).into_response());
    }
    let limit = limit.unwrap_or(1000);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Problem::invalid(format!("limit must be 1 to {MAX_LIMIT}, got {limit}")));
    }
    let events = state.engine.run(move |e| Ok(e.events(after, order, limit)?)).await?;
    Ok(Json(EventList::from(events.as_slice())).into_response())
}

/// Whether the client asked for a live stream.
fn wants_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim().starts_with("text/event-stream")))
}
