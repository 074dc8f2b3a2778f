//! HTTP gateways: the payment and delivery-charge services reached over
//! HTTP, speaking the gateway protocol of the README.
//!
//! Every call is a `POST` with a JSON body, `Content-Type: application/json`
//! and an `Idempotency-Key` header holding the request's key, which stays
//! the same when the engine retries the attempt. A 2xx answer whose JSON
//! body has an `id` approves (the `id` is the gateway's reference, needed to
//! refund); a 402 or 422 to a payment declines it with the JSON `message`
//! (or the status line). Anything else means the gateway *may have acted*
//! ([`GatewayOutcome::Unavailable`]): any other status (503 and 500
//! included: a proxy in front of the gateway may say so after the gateway
//! acted), a 2xx whose body cannot be read or has no `id`, a redirect, the
//! timeout, a connection dropped after the request was sent. The engine
//! replays such an attempt under the same key until the gateway's answer
//! can be read. Only a connection that was never established
//! ([`GatewayOutcome::NotReached`]) proves nothing happened. One timeout
//! covers the whole call; redirects are not followed.
//!
//! ```no_run
//! use std::time::Duration;
//! use ezdelivery_core::adapters::http::HttpPayment;
//!
//! let payment = HttpPayment::new("http://127.0.0.1:8083", Duration::from_millis(610)).unwrap();
//! ```

use std::time::Duration;

use serde_json::json;

use super::http_client::{path_segment, HttpClient, Reply, SendError, UrlUse};
use crate::error::Result;
use crate::ports::{ChargeGateway, ChargeRequest, GatewayOutcome, PaymentGateway, PaymentRequest, RefundRequest};

/// The default timeout of a gateway call (610 ms, as in the original system).
pub const DEFAULT_TIMEOUT: Duration = super::http_client::DEFAULT_TIMEOUT;

/// The payment service over HTTP: `POST {url}/payments` and
/// `POST {url}/payments/{id}/cancel`.
#[derive(Debug)]
pub struct HttpPayment {
    client: HttpClient,
    name: String,
}

impl HttpPayment {
    /// A payment gateway at the base URL `url` (`http://host:port[/prefix]`;
    /// `https://` needs the `tls` feature), each call bounded by `timeout`.
    /// A URL without a host, with another scheme, with a query, or a zero
    /// timeout is [`crate::Error::Invalid`].
    pub fn new(url: &str, timeout: Duration) -> Result<HttpPayment> {
        let client = HttpClient::new("payment gateway url", url, UrlUse::Base, timeout)?;
        Ok(HttpPayment { name: client.service_name(), client })
    }

    /// The same gateway under another name ([`PaymentGateway::name`]):
    /// the name of the service, kept when its URL changes (a new host
    /// name or port), so that what it holds is still settled through it.
    /// An empty name, one that is not one line of text, or `sandbox`, is
    /// [`crate::Error::Invalid`].
    pub fn named(self, name: &str) -> Result<HttpPayment> {
        Ok(HttpPayment { name: service_alias("payment gateway name", name)?, ..self })
    }
}

impl PaymentGateway for HttpPayment {
    /// The base URL, without credentials (see `HttpClient::service_name`).
    fn name(&self) -> &str {
        &self.name
    }

    fn approve(&self, request: &PaymentRequest) -> GatewayOutcome {
        let body = json!({
            "orderId": request.order_id,
            "amount": request.amount,
            "method": "card",
            "card": request.card,
        });
        let sent = self.client.post_json("/payments", &request.idempotency_key, &body);
        outcome("payment gateway", sent, Call::Approve)
    }

    fn refund(&self, request: &RefundRequest) -> GatewayOutcome {
        cancel(&self.client, "/payments", "payment gateway (refund)", request)
    }
}

/// The delivery-charge service over HTTP: `POST {url}/deliveryCharges` and
/// `POST {url}/deliveryCharges/{id}/cancel`.
#[derive(Debug)]
pub struct HttpCharge {
    client: HttpClient,
    name: String,
}

impl HttpCharge {
    /// A charge gateway at the base URL `url`, each call bounded by
    /// `timeout`; the same rules as [`HttpPayment::new`].
    pub fn new(url: &str, timeout: Duration) -> Result<HttpCharge> {
        let client = HttpClient::new("charge gateway url", url, UrlUse::Base, timeout)?;
        Ok(HttpCharge { name: client.service_name(), client })
    }

    /// The same gateway under another name, as [`HttpPayment::named`].
    pub fn named(self, name: &str) -> Result<HttpCharge> {
        Ok(HttpCharge { name: service_alias("charge gateway name", name)?, ..self })
    }
}

/// A name given to an HTTP gateway, checked: one line of text, not empty,
/// and not the sandbox's (which would let the service settle what the
/// sandbox pretended to take, and the sandbox what the service took).
fn service_alias(what: &str, name: &str) -> Result<String> {
    let name = crate::domain::validate::name(what, name)?;
    if name == super::sandbox::SANDBOX {
        return Err(crate::Error::Invalid(crate::domain::validate::Invalid(format!(
            "{what} `{name}` is the sandbox's: give the service a name of its own (its URL, say)"
        ))));
    }
    Ok(name)
}

impl ChargeGateway for HttpCharge {
    /// The base URL, without credentials.
    fn name(&self) -> &str {
        &self.name
    }

    fn pay(&self, request: &ChargeRequest) -> GatewayOutcome {
        let body = json!({
            "orderId": request.order_id,
            "rider": request.rider,
            "amount": request.amount,
        });
        let sent = self.client.post_json("/deliveryCharges", &request.idempotency_key, &body);
        outcome("charge gateway", sent, Call::Pay)
    }

    fn refund(&self, request: &RefundRequest) -> GatewayOutcome {
        cancel(&self.client, "/deliveryCharges", "charge gateway (refund)", request)
    }
}

/// `POST {collection}/{gateway_ref}/cancel`: a payment and a delivery charge
/// are refunded by the same call, under the refund's own idempotency key.
fn cancel(client: &HttpClient, collection: &str, what: &str, request: &RefundRequest) -> GatewayOutcome {
    let path = format!("{collection}/{}/cancel", path_segment(&request.gateway_ref));
    let sent = client.post_json(&path, &request.idempotency_key, &json!({ "reason": request.reason }));
    outcome(what, sent, Call::Refund)
}

/// What a call expects of an answer. A payment's approval may be declined
/// (402/422) and needs the gateway's `id`; so does a delivery charge, whose
/// 402/422 is a refusal too (the service answered: its breaker is not to
/// count it; the engine, which cannot drop a rider's charge, asks again and
/// then a person); a refund is done by any 2xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Approve,
    Pay,
    Refund,
}

/// Maps what the server answered (or why it could not) to the port's
/// outcome, by the gateway protocol: a readable 2xx approves, a 402/422 to a
/// payment or a charge declines, a connection never established is
/// [`GatewayOutcome::NotReached`], and everything else may have left the
/// work done, so it is [`GatewayOutcome::Unavailable`].
fn outcome(what: &str, sent: std::result::Result<Reply, SendError>, call: Call) -> GatewayOutcome {
    let reply = match sent {
        Ok(reply) => reply,
        Err(e) if e.maybe_sent => return GatewayOutcome::Unavailable { reason: format!("{what}: {e}") },
        Err(e) => return GatewayOutcome::NotReached { reason: format!("{what}: {e}") },
    };
    if reply.is_success() {
        match reply.json_field("id") {
            Some(gateway_ref) => GatewayOutcome::Approved { gateway_ref },
            None if call == Call::Refund => GatewayOutcome::Approved { gateway_ref: String::new() },
            // It acted, most likely, but without its reference nothing can
            // be refunded: replay the key until the answer can be read.
            None => GatewayOutcome::Unavailable {
                reason: format!("{what}: {} without a readable JSON `id` in its body", reply.status_line()),
            },
        }
    } else if call == Call::Approve && matches!(reply.status(), 402 | 422) {
        // The card's refusal, in the gateway's words, is the customer's to read.
        GatewayOutcome::Declined { reason: reply.message().unwrap_or_else(|| reply.status_line()) }
    } else if call == Call::Pay && matches!(reply.status(), 402 | 422) {
        // A charge's refusal stays on it for a person (`relay --attention`): say whose and how.
        GatewayOutcome::Declined { reason: format!("{what}: {}", reply.describe()) }
    } else {
        GatewayOutcome::Unavailable { reason: format!("{what}: {}", reply.describe()) }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use ezdelivery_testkit::server::{refused_url, Reply, ScriptedServer};

    const LONG: Duration = Duration::from_secs(5);

    fn pay_request(key: &str, card: Option<&str>) -> PaymentRequest {
        PaymentRequest { idempotency_key: key.into(), order_id: 42, amount: 36_000, card: card.map(String::from) }
    }

    fn refund_request(gateway_ref: &str) -> RefundRequest {
        RefundRequest {
            idempotency_key: "refund-1".into(),
            order_id: 42,
            gateway_ref: gateway_ref.into(),
            amount: 36_000,
            reason: "cancelled by the customer".into(),
        }
    }

    fn charge_request() -> ChargeRequest {
        ChargeRequest {
            idempotency_key: "charge-1".into(),
            order_id: 42,
            rider_id: 3,
            rider: "lee".into(),
            amount: 3000,
        }
    }

    /// The reason of an answer that may have been acted on.
    fn unavailable(outcome: &GatewayOutcome) -> &str {
        match outcome {
            GatewayOutcome::Unavailable { reason } => reason,
            other => panic!("expected Unavailable (may have acted), got {other:?}"),
        }
    }

    /// The reason of a call that certainly never reached the server.
    fn not_reached(outcome: &GatewayOutcome) -> &str {
        match outcome {
            GatewayOutcome::NotReached { reason } => reason,
            other => panic!("expected NotReached, got {other:?}"),
        }
    }

    #[test]
    fn approve_posts_the_protocol_and_parses_the_id() {
        let server = ScriptedServer::start(vec![Reply::json(201, r#"{"id": "pay_123", "status": "approved"}"#)]);
        let gw = HttpPayment::new(&format!("{}/", server.url()), LONG).unwrap();
        let outcome = gw.approve(&pay_request("key-1", Some("************1111")));
        assert_eq!(outcome, GatewayOutcome::Approved { gateway_ref: "pay_123".into() });
        let sent = server.finish();
        assert_eq!(sent.len(), 1);
        let req = &sent[0];
        assert_eq!((req.method.as_str(), req.path.as_str()), ("POST", "/payments"));
        assert_eq!(req.header("content-type"), Some("application/json"));
        assert_eq!(req.header("idempotency-key"), Some("key-1"));
        assert_eq!(req.json(), json!({"orderId": 42, "amount": 36000, "method": "card", "card": "************1111"}));
    }

    #[test]
    fn a_2xx_without_a_readable_id_may_have_acted_and_invents_no_reference() {
        let oversize = format!(r#"{{"id": "pay_9", "pad": "{}"}}"#, "x".repeat(70 * 1024));
        let server = ScriptedServer::start(vec![
            Reply::json(200, ""),
            Reply::json(204, ""),
            Reply::json(200, "<html><body>OK</body></html>"),
            Reply::json(200, &oversize),
            Reply::json(201, r#"{"status": "approved"}"#),
        ]);
        let gw = HttpPayment::new(server.url(), LONG).unwrap();
        for key in ["a", "b", "c", "d", "e"] {
            let outcome = gw.approve(&pay_request(key, None));
            assert!(unavailable(&outcome).contains("without a readable JSON `id`"), "{key}: {outcome:?}");
        }
        let sent = server.finish();
        assert_eq!(sent[0].json()["card"], serde_json::Value::Null);
    }

    #[test]
    fn the_same_key_goes_out_on_every_retry() {
        let server = ScriptedServer::start(vec![Reply::json(503, ""), Reply::json(200, r#"{"id": "p"}"#)]);
        let gw = HttpPayment::new(server.url(), LONG).unwrap();
        let request = pay_request("attempt-9", None);
        assert!(matches!(gw.approve(&request), GatewayOutcome::Unavailable { .. }));
        assert!(matches!(gw.approve(&request), GatewayOutcome::Approved { .. }));
        let keys: Vec<_> = server.finish().iter().map(|r| r.header("Idempotency-Key").map(String::from)).collect();
        assert_eq!(keys, vec![Some("attempt-9".to_string()); 2]);
    }

    #[test]
    fn declines_402_and_422_with_the_message_or_the_status_line() {
        let server = ScriptedServer::start(vec![
            Reply::json(402, r#"{"message": "insufficient funds"}"#),
            Reply::json(422, r#"{"message": "card expired"}"#),
            Reply::json(402, "not json"),
        ]);
        let gw = HttpPayment::new(server.url(), LONG).unwrap();
        let declined = |reason: &str| GatewayOutcome::Declined { reason: reason.into() };
        assert_eq!(gw.approve(&pay_request("a", None)), declined("insufficient funds"));
        assert_eq!(gw.approve(&pay_request("b", None)), declined("card expired"));
        assert_eq!(gw.approve(&pay_request("c", None)), declined("HTTP 402 Payment Required"));
        assert_eq!(server.finish().len(), 3);
    }

    #[test]
    fn every_other_status_may_have_acted() {
        let server = ScriptedServer::start(vec![
            Reply::json(503, r#"{"message": "maintenance"}"#),
            Reply::json(500, ""),
            Reply::json(302, ""),
        ]);
        let gw = HttpPayment::new(server.url(), LONG).unwrap();
        let reason = gw.approve(&pay_request("a", None));
        assert_eq!(unavailable(&reason), "payment gateway: HTTP 503 Service Unavailable: maintenance");
        assert!(unavailable(&gw.approve(&pay_request("b", None))).contains("HTTP 500"));
        assert!(unavailable(&gw.approve(&pay_request("c", None))).contains("HTTP 302"));
        assert_eq!(server.finish().len(), 3);
    }

    #[test]
    fn a_slow_server_is_unavailable_after_the_timeout() {
        let server =
            ScriptedServer::start(vec![Reply::json(200, r#"{"id": "late"}"#).after(Duration::from_millis(1500))]);
        let gw = HttpPayment::new(server.url(), Duration::from_millis(200)).unwrap();
        let outcome = gw.approve(&pay_request("slow", None));
        assert!(unavailable(&outcome).contains("no answer within 200 ms"), "{outcome:?}");
        server.finish();
    }

    #[test]
    fn a_refused_connection_is_the_one_answer_that_proves_nothing_happened() {
        let gw = HttpPayment::new(&refused_url(), LONG).unwrap();
        let outcome = gw.approve(&pay_request("x", None));
        assert!(not_reached(&outcome).starts_with("payment gateway: cannot reach the server"), "{outcome:?}");
        let charge = HttpCharge::new(&refused_url(), LONG).unwrap();
        not_reached(&charge.pay(&charge_request()));
    }

    #[test]
    fn refund_cancels_the_payment_by_its_reference() {
        let server = ScriptedServer::start(vec![
            Reply::json(200, r#"{"id": "refund_1"}"#),
            Reply::json(422, r#"{"message": "already cancelled"}"#),
        ]);
        let gw = HttpPayment::new(&format!("{}/api/v1", server.url()), LONG).unwrap();
        assert_eq!(gw.refund(&refund_request("pay_123")), GatewayOutcome::Approved { gateway_ref: "refund_1".into() });
        // A refund is never declined: a refusal is kept for a retry.
        let refused = gw.refund(&refund_request("pay/../x"));
        assert_eq!(unavailable(&refused), "payment gateway (refund): HTTP 422 Unprocessable Entity: already cancelled");
        let sent = server.finish();
        assert_eq!(sent[0].path, "/api/v1/payments/pay_123/cancel");
        assert_eq!(sent[0].header("idempotency-key"), Some("refund-1"));
        assert_eq!(sent[0].header("content-type"), Some("application/json"));
        assert_eq!(sent[0].json(), json!({"reason": "cancelled by the customer"}));
        assert_eq!(sent[1].path, "/api/v1/payments/pay%2F..%2Fx/cancel");
    }

    #[test]
    fn charge_pays_and_takes_back() {
        let server = ScriptedServer::start(vec![
            Reply::json(200, r#"{"id": "dc_7"}"#),
            Reply::json(200, "{}"),
            Reply::json(402, r#"{"message": "no"}"#),
        ]);
        let gw = HttpCharge::new(server.url(), LONG).unwrap();
        assert_eq!(gw.pay(&charge_request()), GatewayOutcome::Approved { gateway_ref: "dc_7".into() });
        // Any 2xx refunds: a refund's reference is never needed.
        assert_eq!(gw.refund(&refund_request("dc_7")), GatewayOutcome::Approved { gateway_ref: String::new() });
        // A 402 to a charge is a refusal, as to a payment (SPEC: "same
        // rules"): the service answered, so its breaker does not count it.
        let GatewayOutcome::Declined { reason } = gw.pay(&charge_request()) else { panic!("a refusal") };
        assert!(reason.starts_with("charge gateway: ") && reason.contains("402") && reason.contains("no"), "{reason}");
        let sent = server.finish();
        assert_eq!((sent[0].method.as_str(), sent[0].path.as_str()), ("POST", "/deliveryCharges"));
        assert_eq!(sent[0].header("idempotency-key"), Some("charge-1"));
        assert_eq!(sent[0].header("content-type"), Some("application/json"));
        assert_eq!(sent[0].json(), json!({"orderId": 42, "rider": "lee", "amount": 3000}));
        assert_eq!(sent[1].path, "/deliveryCharges/dc_7/cancel");
        assert_eq!(sent[1].header("idempotency-key"), Some("refund-1"));
        assert_eq!(sent[1].json(), json!({"reason": "cancelled by the customer"}));
    }

    #[test]
    fn bad_urls_are_invalid_input() {
        for url in ["ftp://x", "localhost:8083", ""] {
            assert!(matches!(HttpPayment::new(url, LONG), Err(crate::Error::Invalid(_))), "{url}");
            assert!(matches!(HttpCharge::new(url, LONG), Err(crate::Error::Invalid(_))), "{url}");
        }
    }
}
