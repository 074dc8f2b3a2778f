//! The OpenAPI document: the paths and schemas come from the handlers'
//! `#[utoipa::path]` annotations and the types' `ToSchema` derives; this
//! adds what is said once for the whole API (its title, the bearer scheme).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi};

/// `api` (the routes' paths and schemas) with the API's info and security scheme.
pub(crate) fn document(mut api: OpenApi) -> OpenApi {
    api.info = InfoBuilder::new()
        .title("ezdelivery")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "The ezdelivery HTTP API (`ezdelivery serve`): the CLI's commands and JSON shapes over HTTP. \
             Every request but /healthz and /openapi.json needs `Authorization: Bearer TOKEN`; errors are \
             application/problem+json with `kind`; every POST honours `Idempotency-Key`.",
        ))
        .build();
    let components = api.components.get_or_insert_with(Default::default);
    components
        .add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
    api
}
