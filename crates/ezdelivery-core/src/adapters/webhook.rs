//! The webhook notifier: `POST {url}` with the message as JSON, `{"id",
//! "orderId", "event", "status", "recipient", "message", "at"}`, and an
//! `Idempotency-Key` header holding the message id (stable across retries,
//! so the receiver can drop repeats). A 2xx answer means delivered; any
//! other status, a connection error or the timeout is an error, and the
//! engine retries the message later.

use std::time::Duration;

use super::http_client::{HttpClient, UrlUse};
use super::MessageJson;
use crate::domain::ChannelName;
use crate::error::Result;
use crate::ports::{Message, Notifier};

/// Posts messages to a URL.
#[derive(Debug)]
pub struct WebhookNotifier {
    channel: ChannelName,
    client: HttpClient,
}

impl WebhookNotifier {
    /// Posts to `url` (`http://…`, or `https://…` with the `tls` feature),
    /// each call bounded by `timeout`; the channel is named `webhook`. A bad
    /// URL or a zero timeout is [`crate::Error::Invalid`].
    pub fn new(url: &str, timeout: Duration) -> Result<WebhookNotifier> {
        Ok(WebhookNotifier {
            channel: ChannelName::known("webhook"),
            client: HttpClient::new("webhook url", url, UrlUse::Exact, timeout)?,
        })
    }

    /// Names the channel `name` instead (to tell two webhooks apart).
    pub fn named(mut self, name: ChannelName) -> WebhookNotifier {
        self.channel = name;
        self
    }
}

impl Notifier for WebhookNotifier {
    fn channel(&self) -> &ChannelName {
        &self.channel
    }

    fn send(&self, message: &Message) -> std::result::Result<(), String> {
        post(&self.client, message)
    }

    fn send_within(&self, message: &Message, within: Duration) -> std::result::Result<(), String> {
        post(&self.client.at_most(within), message)
    }
}

/// Posts `message` through `client`.
fn post(client: &HttpClient, message: &Message) -> std::result::Result<(), String> {
    client
        .post_json("", &message.id, &MessageJson::from(message))
        .map_err(|e| e.reason)
        .and_then(|reply| reply.delivered())
        .map_err(|e| format!("webhook: {e}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::adapters::sample_message;
    use ezdelivery_testkit::server::{refused_url, Reply, ScriptedServer};

    const LONG: Duration = Duration::from_secs(5);

    #[test]
    fn posts_the_message_and_a_2xx_delivers_it() {
        let server = ScriptedServer::start(vec![Reply::json(204, "")]);
        let notifier = WebhookNotifier::new(&format!("{}/hooks/ezdelivery?team=1", server.url()), LONG).unwrap();
        assert_eq!(notifier.channel().as_str(), "webhook");
        let message = sample_message();
        notifier.send(&message).unwrap();
        let sent = server.finish();
        assert_eq!(sent.len(), 1);
        assert_eq!((sent[0].method.as_str(), sent[0].path.as_str()), ("POST", "/hooks/ezdelivery?team=1"));
        assert_eq!(sent[0].header("content-type"), Some("application/json"));
        assert_eq!(sent[0].header("idempotency-key"), Some("7:customer"));
        assert_eq!(
            sent[0].json(),
            json!({"id": "7:customer", "orderId": 3, "event": "PaymentApproved", "status": "paid",
                   "recipient": "kim", "message": message.text, "at": "2026-11-23T12:00:00Z"})
        );
    }

    #[test]
    fn anything_else_is_an_error_to_retry() {
        let server = ScriptedServer::start(vec![
            Reply::json(500, r#"{"message": "database down"}"#),
            Reply::json(200, "").after(Duration::from_millis(1500)),
        ]);
        let notifier = WebhookNotifier::new(server.url(), Duration::from_millis(200))
            .unwrap()
            .named(ChannelName::new("ops").unwrap());
        assert_eq!(notifier.channel().as_str(), "ops");
        assert_eq!(
            notifier.send(&sample_message()).unwrap_err(),
            "webhook: HTTP 500 Internal Server Error: database down"
        );
        assert_eq!(notifier.send(&sample_message()).unwrap_err(), "webhook: no answer within 200 ms");
        assert_eq!(server.finish().len(), 2);
        let refused = WebhookNotifier::new(&refused_url(), LONG).unwrap();
        assert!(refused.send(&sample_message()).unwrap_err().starts_with("webhook: cannot reach the server"));
    }

    /// Within a command's budget, a call gives up at the budget, not at the
    /// channel's own (longer) timeout; a longer budget leaves the timeout.
    #[test]
    fn a_call_within_a_budget_gives_up_at_the_budget() {
        let server = ScriptedServer::start(vec![
            Reply::json(200, "").after(Duration::from_millis(1500)),
            Reply::json(200, "").after(Duration::from_millis(1500)),
        ]);
        let notifier = WebhookNotifier::new(server.url(), Duration::from_millis(300)).unwrap();
        let cut = notifier.send_within(&sample_message(), Duration::from_millis(100));
        assert_eq!(cut.unwrap_err(), "webhook: no answer within 100 ms");
        let own = notifier.send_within(&sample_message(), LONG);
        assert_eq!(own.unwrap_err(), "webhook: no answer within 300 ms");
        assert_eq!(server.finish().len(), 2);
    }
}
