//! Request bodies, path and query parameters, read so that every mistake is
//! a problem+json answer (400, or 413 for a body over the limit) instead of
//! axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, Uri};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};

use crate::problem::Problem;

/// A JSON body: an object. An empty body, or `null` (which the OpenAPI
/// document allows where every field is optional), reads as `{}`, so
/// bodies whose fields are all optional (`/cancel`, `/payments`) may be
/// left out. Anything else but an object is refused, an array too (which
/// serde would otherwise read field by field, in order).
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<JsonBody<T>, Problem> {
        let bytes = Bytes::from_request(request, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                Problem::invalid(format!("cannot read the request body: {e}"))
            }
        })?;
        let text: &[u8] = match bytes.trim_ascii() {
            b"" | b"null" => b"{}",
            object if object.starts_with(b"{") => &bytes,
            _ => return Err(Problem::invalid("the request body must be a JSON object")),
        };
        serde_json::from_slice(text).map(JsonBody).map_err(|e| {
            Problem::invalid(format!("the request body is not the JSON this endpoint takes: {}", shown(&e)))
        })
    }
}

/// serde's message without the value it quotes ("invalid type: integer
/// `4111111111111111`, expected a string"): a card number sent as a number
/// must not come back in the answer, nor be kept with an idempotency key.
fn shown(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.split_once(", expected") {
        Some((head, tail)) if head.starts_with("invalid ") => {
            format!("{}, expected{tail}", head.split(':').next().unwrap_or("invalid value"))
        }
        _ => text,
    }
}

/// 413: the body is over the server's limit.
pub(crate) fn too_large() -> Problem {
    Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "invalid_input", "the request body is too large")
}

/// An id in a path, a query or a body: a whole number from 1, as the CLI
/// takes them, so `/orders/0` is 400 `invalid_input` (as `status 0` exits
/// 2), not 404.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Id(pub i64);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Id, D::Error> {
        match i64::deserialize(deserializer)? {
            id if id >= 1 => Ok(Id(id)),
            id => Err(D::Error::custom(format!("an id must be 1 or more, got {id}"))),
        }
    }
}

/// A path parameter (an id, a name).
pub struct PathParam<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParam<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<PathParam<T>, Problem> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| PathParam(t))
            .map_err(|e| Problem::invalid(format!("bad path parameter: {}", e.body_text())))
    }
}

/// Query parameters. One with an empty value is left out, as an HTML
/// form sends the fields left blank (`/events?order=&after=5`), and so
/// is one with no value at all (`?order&after=5`).
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<QueryParams<T>, Problem> {
        let given = parts.uri.query().unwrap_or_default();
        let kept: Vec<&str> =
            given.split('&').filter(|pair| pair.split_once('=').is_some_and(|(_, value)| !value.is_empty())).collect();
        let uri: Uri = format!("/?{}", kept.join("&"))
            .parse()
            .map_err(|_| Problem::invalid("bad query parameter: the query is not a valid URI query"))?;
        Query::<T>::try_from_uri(&uri)
            .map(|Query(t)| QueryParams(t))
            .map_err(|e| Problem::invalid(format!("bad query parameter: {}", e.body_text())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrongly_typed_value_is_not_repeated_back() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Pay {
            card: Option<String>,
        }
        let e = serde_json::from_str::<Pay>(r#"{"card": 4111111111111111}"#).unwrap_err();
        let text = shown(&e);
        assert!(!text.contains("4111") && text.contains("expected a string"), "{text}");
        let e = serde_json::from_str::<Pay>(r#"{"cart": "x"}"#).unwrap_err();
        assert_eq!(shown(&e), e.to_string(), "other messages are kept whole");
    }

    /// Runs an extractor to its end.
    fn block_on<F: std::future::Future>(extracting: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().expect("a runtime").block_on(extracting)
    }

    #[test]
    fn an_empty_query_parameter_is_one_left_out() {
        // As the endpoints' own: an unknown parameter (a cache buster) is
        // ignored.
        #[derive(Debug, PartialEq, serde::Deserialize)]
        struct Page {
            order: Option<i64>,
            after: Option<i64>,
        }
        let read = |uri: &'static str| {
            let (mut parts, ()) = Request::builder().uri(uri).body(()).expect("a request").into_parts();
            block_on(QueryParams::<Page>::from_request_parts(&mut parts, &())).map(|QueryParams(p)| p)
        };
        let page = |order, after| Page { order, after };
        assert_eq!(read("/events").expect("no query"), page(None, None));
        assert_eq!(read("/events?").expect("an empty query"), page(None, None));
        assert_eq!(read("/events?order=&after=5").expect("order left blank"), page(None, Some(5)));
        assert_eq!(read("/events?order=3&&after=").expect("after left blank"), page(Some(3), None));
        assert_eq!(read("/events?order&after=2").expect("order with no value"), page(None, Some(2)));
        assert_eq!(read("/events?after=1&_=1733300000").expect("an unknown one"), page(None, Some(1)), "ignored");
        for refused in ["/events?after=x", "/events?order=5=", "/events?after==", "/events?order=1&order=2"] {
            let problem = read(refused).expect_err(refused);
            assert_eq!((problem.status, problem.kind.as_str()), (400, "invalid_input"), "{refused}");
        }
    }

    #[test]
    fn a_body_is_an_object_or_nothing() {
        #[derive(Debug, PartialEq, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Reason {
            reason: Option<String>,
        }
        let read = |body: &'static str| {
            let request = Request::new(axum::body::Body::from(body));
            block_on(JsonBody::<Reason>::from_request(request, &())).map(|JsonBody(r)| r)
        };
        let late = Reason { reason: Some("late".into()) };
        assert_eq!(read(r#" {"reason": "late"} "#).expect("an object"), late);
        for nothing in ["", " \n", "null", " null\n"] {
            assert_eq!(read(nothing).expect("no body"), Reason { reason: None }, "{nothing:?}");
        }
        for refused in [r#"["late"]"#, r#""late""#, "1", "true", "nul", r#"{"reason": 1}"#] {
            let problem = read(refused).expect_err(refused);
            assert_eq!((problem.status, problem.kind.as_str()), (400, "invalid_input"), "{refused:?}");
        }
    }
}
