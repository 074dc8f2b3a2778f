//! Errors as `application/problem+json` (RFC 9457), with the `kind` of the
//! CLI's exit codes: one conversion from the engine's [`Error`], so a
//! refusal reads the same over HTTP as in a shell.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ezdelivery_core::{Error, ErrorKind};
use serde::Serialize;
use utoipa::ToSchema;

/// The media type of every error.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Seconds a client should wait before trying again after a 503.
const RETRY_AFTER_SECONDS: u32 = 1;

/// An error response: RFC 9457's members plus `kind` (the CLI's error kind)
/// and, when the error concerns one order, its `order_id` (an order that was
/// kept although the request failed, as with a payment gateway that is down).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// `about:blank`: the status and `kind` say what happened.
    #[serde(rename = "type")]
    #[schema(example = "about:blank")]
    pub type_uri: &'static str,
    /// The HTTP status's reason phrase.
    pub title: &'static str,
    /// The HTTP status code.
    pub status: u16,
    /// What happened, in the engine's words.
    pub detail: String,
    /// The machine-readable kind: `invalid_input`, `not_found`,
    /// `invalid_state`, `declined`, `unavailable`, `money_moved`, `internal`,
    /// or, for what only HTTP has, `unauthorized` and `forbidden`.
    #[schema(example = "invalid_state")]
    pub kind: String,
    /// The order concerned, when there is one (a kept order, a declined payment).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<i64>,
    /// What failed, for the server's log only: a storage failure's words
    /// (a database's address, a file's path) are the operator's, not the
    /// caller's. Logged once, when the problem is answered.
    #[serde(skip)]
    #[schema(ignore)]
    cause: Option<Box<str>>,
}

/// A failure's cause, carried from its [`Problem`] to the response, where
/// the server's log middleware (which knows the request's id) writes it.
#[derive(Debug, Clone)]
pub(crate) struct Cause(pub(crate) Box<str>);

impl Problem {
    /// A problem of `status` and `kind` saying `detail`.
    pub fn new(status: StatusCode, kind: &str, detail: impl Into<String>) -> Problem {
        Problem {
            type_uri: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: detail.into(),
            kind: kind.to_string(),
            order_id: None,
            cause: None,
        }
    }

    /// The same problem, with `cause` for the server's log.
    pub(crate) fn with_cause(self, cause: impl Into<String>) -> Problem {
        Problem { cause: Some(cause.into().into_boxed_str()), ..self }
    }

    /// 500 `internal` for a failure of the server's own: the caller is told
    /// that the log has it, and `cause` goes there.
    pub(crate) fn failed(cause: impl Into<String>) -> Problem {
        Problem::internal(INTERNAL_DETAIL).with_cause(cause)
    }

    /// What the log says of this problem: its cause, else its detail.
    pub(crate) fn logged(&self) -> &str {
        self.cause.as_deref().unwrap_or(&self.detail)
    }

    /// 400 `invalid_input`.
    pub fn invalid(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, ErrorKind::InvalidInput.as_str(), detail)
    }

    /// 401: no token, or one the tokens file does not hold.
    pub fn unauthorized() -> Problem {
        Problem::unauthorized_because("send `Authorization: Bearer TOKEN` with a token of the server's tokens file")
    }

    /// 401, saying what is wrong with the credentials sent.
    pub fn unauthorized_because(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    /// 403: the caller's role may not do this, or not to this record.
    pub fn forbidden(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 503 `unavailable`: try again later (`Retry-After` says when).
    pub fn unavailable(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, ErrorKind::Unavailable.as_str(), detail)
    }

    /// 500 `internal`: the server failed; nothing says whether the work was done.
    pub fn internal(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorKind::Internal.as_str(), detail)
    }
}

/// The status of each error kind: SPEC's table.
fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::InvalidState => StatusCode::CONFLICT,
        ErrorKind::Declined => StatusCode::PAYMENT_REQUIRED,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::MoneyMoved | ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// What a caller is told of a storage or internal failure: the server's
/// log says what it was.
pub(crate) const INTERNAL_DETAIL: &str = "the server failed to do this request; its log says why";

/// What a caller is told of the storage failure that followed money moved.
const LOGGED: &str = "the server's log says why";

impl From<Error> for Problem {
    fn from(error: Error) -> Problem {
        let kind = error.kind();
        let hidden = |e: &Error| matches!(e, Error::Storage(_) | Error::Internal(_));
        // A storage failure's words are for the operator (a database's
        // user, host and name, a file's path), not for every caller.
        let mut problem = match &error {
            e if hidden(e) => Problem::failed(error.to_string()),
            Error::MoneyMoved { order, what, source } if hidden(source) => {
                let told = Error::MoneyMoved { order: *order, what: *what, source: Box::new(Error::storage(LOGGED)) };
                Problem::new(status_of(kind), kind.as_str(), told.to_string()).with_cause(error.to_string())
            }
            _ => Problem::new(status_of(kind), kind.as_str(), error.to_string()),
        };
        problem.order_id = error.order();
        problem
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        with_problem_headers(&mut response);
        if let Some(cause) = self.cause {
            response.extensions_mut().insert(Cause(cause));
        }
        response
    }
}

/// Gives an error response the headers of its status: its media type,
/// `Retry-After` on a 503, and on a 401 the scheme that would do (RFC
/// 9110 15.5.2). A replayed answer gets them again, as it was first sent.
pub(crate) fn with_problem_headers(response: &mut Response) {
    let status = response.status();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    match status {
        StatusCode::SERVICE_UNAVAILABLE => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        StatusCode::UNAUTHORIZED => {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ezdelivery_core::domain::validate::Invalid;
    use ezdelivery_core::Record;

    #[test]
    fn each_engine_error_gets_the_status_of_its_kind() {
        let cases = [
            (Error::Invalid(Invalid("bad".into())), 400, "invalid_input"),
            (Error::not_found(Record::Order, 9), 404, "not_found"),
            (Error::Internal("boom".into()), 500, "internal"),
        ];
        for (error, status, kind) in cases {
            let p = Problem::from(error);
            assert_eq!((p.status, p.kind.as_str()), (status, kind));
        }
    }

    #[test]
    fn a_storage_failure_is_told_to_the_log_not_to_the_caller() {
        let failure = || Error::storage("no connection to PostgreSQL at ez@db.internal:5432/ez");
        let p = Problem::from(failure());
        assert_eq!((p.status, p.kind.as_str(), p.detail.as_str()), (500, "internal", INTERNAL_DETAIL));
        assert!(p.logged().contains("db.internal"), "{}", p.logged());
        let moved = Problem::from(Error::MoneyMoved {
            order: 7,
            what: ezdelivery_core::domain::Billing::Payment,
            source: Box::new(failure()),
        });
        assert_eq!((moved.status, moved.kind.as_str(), moved.order_id), (500, "money_moved", Some(7)));
        assert!(!moved.detail.contains("db.internal") && moved.detail.contains("do not pay again"), "{}", moved.detail);
        assert!(moved.logged().contains("db.internal"), "{}", moved.logged());
        let response = moved.into_response();
        assert!(response.extensions().get::<Cause>().is_some_and(|c| c.0.contains("db.internal")));
    }

    #[test]
    fn a_503_says_when_to_come_back_and_every_problem_is_problem_json() {
        let response = Problem::unavailable("down").into_response();
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
    }
}
