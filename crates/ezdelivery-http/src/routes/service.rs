//! What the server says of itself: `/healthz`, `/metrics`, `/openapi.json`.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::Errors;
use crate::auth::{require_role, Caller};
use crate::problem::Problem;
use crate::state::AppState;

/// `GET /healthz`
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// `ok`.
    status: &'static str,
}

/// 200 when the database answers (no token needed).
#[utoipa::path(get, path = "/healthz", tag = "service",
    responses((status = 200, description = "the database answers", body = Health),
              (status = 503, description = "the database does not answer", body = Problem,
               content_type = "application/problem+json")))]
pub(crate) async fn healthz(State(state): State<AppState>) -> Result<Json<Health>, Problem> {
    state
        .engine
        .run(|e| {
            // Anyone may ask: the database's name and address stay in the log.
            e.events(i64::MAX, None, 1).map(drop).map_err(|e| {
                Problem::unavailable("the database does not answer; the server's log says why")
                    .with_cause(e.to_string())
            })
        })
        .await?;
    Ok(Json(Health { status: "ok" }))
}

/// Prometheus text: orders by status, gateway calls by outcome with their
/// latency, breaker states, what waits in the outbox, requests (admin).
#[utoipa::path(get, path = "/metrics", tag = "service",
    responses((status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain"), Errors),
    security(("bearer" = [])))]
pub(crate) async fn metrics(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<impl IntoResponse, Problem> {
    require_role(&caller, &[], "read the metrics")?;
    let metrics = std::sync::Arc::clone(&state.metrics);
    let text = state.engine.run(move |e| metrics.render(e)).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text))
}

/// This API's OpenAPI 3.1 document (no token needed).
#[utoipa::path(get, path = "/openapi.json", tag = "service",
    responses((status = 200, description = "the OpenAPI document", body = Object)))]
pub(crate) async fn openapi(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], state.openapi.as_str().to_owned())
}
