//! The KakaoTalk notifier: sends each message to the token owner's own
//! KakaoTalk ("send to me", `POST {base_url}/v2/api/talk/memo/default/send`)
//! with `Authorization: Bearer TOKEN` and the form field `template_object`
//! holding a text template. A 2xx answer means delivered.
//!
//! A text template's text is at most [`MAX_TEXT_CHARS`] characters (longer
//! is HTTP 400, every time): the notifier declares the limit
//! ([`Notifier::max_chars`]), so the engine fits each message to it
//! ([`crate::domain::fit`]), and fits again whatever it is handed directly.
//!
//! The token is a secret: it is never part of an error message or of the
//! `Debug` output, and the header carrying it is marked sensitive.

use std::fmt;
use std::time::Duration;

use serde_json::json;

use super::http_client::{HttpClient, Secret, UrlUse};
use crate::domain::fit::fit;
use crate::domain::ChannelName;
use crate::error::Result;
use crate::ports::{Message, Notifier};

/// KakaoTalk's API host.
pub const KAKAO_API: &str = "https://kapi.kakao.com";

/// The longest text KakaoTalk takes in a text template, in characters.
pub const MAX_TEXT_CHARS: usize = 200;

/// The "send to me" endpoint, below the base URL.
const SEND_TO_ME: &str = "/v2/api/talk/memo/default/send";

/// Sends messages to KakaoTalk.
pub struct KakaoNotifier {
    channel: ChannelName,
    client: HttpClient,
    token: Secret,
}

impl KakaoNotifier {
    /// Sends through the API at `base_url` ([`KAKAO_API`], which needs the
    /// `tls` feature (the `ezdelivery` program has it), or a stand-in) with the access token `token`, each
    /// call bounded by `timeout`; the channel is named `kakao`. A bad URL,
    /// an empty token or one that cannot go in a header, or a zero timeout
    /// is [`crate::Error::Invalid`] (which never quotes the token).
    pub fn new(base_url: &str, token: impl Into<String>, timeout: Duration) -> Result<KakaoNotifier> {
        Ok(KakaoNotifier {
            channel: ChannelName::known("kakao"),
            client: HttpClient::new("kakao base_url", base_url, UrlUse::Base, timeout)?,
            token: Secret::new("the KakaoTalk token", token.into())?,
        })
    }

    /// Names the channel `name` instead (to tell two accounts apart).
    pub fn named(mut self, name: ChannelName) -> KakaoNotifier {
        self.channel = name;
        self
    }
}

impl fmt::Debug for KakaoNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KakaoNotifier")
            .field("channel", &self.channel)
            .field("client", &self.client)
            .field("token", &self.token)
            .finish()
    }
}

impl Notifier for KakaoNotifier {
    fn channel(&self) -> &ChannelName {
        &self.channel
    }

    fn max_chars(&self) -> Option<usize> {
        Some(MAX_TEXT_CHARS)
    }

    fn send(&self, message: &Message) -> std::result::Result<(), String> {
        self.post(&self.client, message)
    }

    fn send_within(&self, message: &Message, within: Duration) -> std::result::Result<(), String> {
        self.post(&self.client.at_most(within), message)
    }
}

impl KakaoNotifier {
    /// Sends `message` through `client` ("send to me" with a text template).
    fn post(&self, client: &HttpClient, message: &Message) -> std::result::Result<(), String> {
        let template = json!({
            "object_type": "text",
            "text": fit(&message.text, MAX_TEXT_CHARS),
            "link": {"web_url": "", "mobile_web_url": ""},
        })
        .to_string();
        client
            .post_form(SEND_TO_ME, &self.token, &[("template_object", &template)])
            .map_err(|e| e.reason)
            .and_then(|reply| reply.delivered())
            .map_err(|e| self.token.scrub(format!("kakao: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::adapters::sample_message;
    use ezdelivery_testkit::server::{refused_url, Reply, ScriptedServer};

    const TOKEN: &str = "kakao-access-token-XYZ";
    const LONG: Duration = Duration::from_secs(5);

    #[test]
    fn sends_the_template_with_the_bearer_token() {
        let server = ScriptedServer::start(vec![Reply::json(200, r#"{"result_code": 0}"#)]);
        let notifier = KakaoNotifier::new(&format!("{}/", server.url()), TOKEN, LONG).unwrap();
        assert_eq!(notifier.channel().as_str(), "kakao");
        let message = sample_message();
        notifier.send(&message).unwrap();
        let sent = server.finish();
        assert_eq!(sent.len(), 1);
        assert_eq!((sent[0].method.as_str(), sent[0].path.as_str()), ("POST", "/v2/api/talk/memo/default/send"));
        assert_eq!(sent[0].header("authorization"), Some(format!("Bearer {TOKEN}").as_str()));
        assert_eq!(sent[0].header("content-type"), Some("application/x-www-form-urlencoded"));
        let template: Value = serde_json::from_str(&sent[0].form_field("template_object").unwrap()).unwrap();
        assert_eq!(
            template,
            json!({"object_type": "text", "text": message.text, "link": {"web_url": "", "mobile_web_url": ""}})
        );
    }

    #[test]
    fn a_big_order_is_fitted_to_kakaotalks_200_characters() {
        use crate::adapters::memory::MemoryStorage;
        use crate::{Engine, ItemPick, NewOrder};

        // Placed, then paid: the customer hears twice, the owner once.
        let server = ScriptedServer::start(vec![Reply::json(200, r#"{"result_code": 0}"#); 3]);
        let notifier = KakaoNotifier::new(server.url(), TOKEN, LONG).unwrap();
        assert_eq!(notifier.max_chars(), Some(MAX_TEXT_CHARS));
        let engine = Engine::builder(MemoryStorage::new()).notifier(notifier).build();
        let store = engine.add_store("교촌치킨 강남점", Some("park"), None).unwrap();
        let mut picks = Vec::new();
        for i in 1..=30 {
            let menu = engine.add_menu(store.id, &format!("반반 세트 {i}번"), 18_000).unwrap();
            picks.push(ItemPick::new(menu.id.to_string(), 2));
        }
        let order = engine.place_order(NewOrder::new(store.id, "kim", &picks).pay_now(None)).unwrap();
        assert_eq!(order.total, 1_080_000);
        engine.relay().unwrap();
        let sent = server.finish();
        let texts: Vec<String> = sent
            .iter()
            .map(|r| {
                let template: Value = serde_json::from_str(&r.form_field("template_object").unwrap()).unwrap();
                template["text"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(texts.len(), 3, "{texts:?}");
        for text in &texts {
            assert!(text.chars().count() <= MAX_TEXT_CHARS, "{} chars: {text}", text.chars().count());
        }
        let owner = texts.iter().find(|t| t.contains("새 주문")).unwrap();
        assert!(
            owner.starts_with(&format!("[교촌치킨 강남점] 새 주문 #{}: 반반 세트 1번 x2, ", order.order_id)),
            "{owner}"
        );
        assert!(owner.contains("개 · 1,080,000원 (고객 kim)"), "{owner}");
        assert!(owner.contains(" 외 "), "{owner}");

        // Handed a long text directly, the notifier fits it too.
        let server = ScriptedServer::start(vec![Reply::json(200, "")]);
        let notifier = KakaoNotifier::new(server.url(), TOKEN, LONG).unwrap();
        notifier.send(&Message { text: "가".repeat(500), ..sample_message() }).unwrap();
        let sent = server.finish();
        let template: Value = serde_json::from_str(&sent[0].form_field("template_object").unwrap()).unwrap();
        assert_eq!(template["text"].as_str().unwrap().chars().count(), MAX_TEXT_CHARS);
    }

    #[test]
    fn the_token_shows_nowhere() {
        let server = ScriptedServer::start(vec![
            Reply::json(401, &format!(r#"{{"msg": "this access token does not exist: {TOKEN}", "code": -401}}"#)),
            Reply::json(200, "").after(Duration::from_millis(1500)),
        ]);
        let notifier = KakaoNotifier::new(server.url(), TOKEN, Duration::from_millis(200))
            .unwrap()
            .named(ChannelName::new("kakao-me").unwrap());
        assert_eq!(notifier.channel().as_str(), "kakao-me");
        let debug = format!("{notifier:?} {notifier:#?}");
        assert!(!debug.contains(TOKEN), "{debug}");
        assert!(debug.contains("[redacted]"), "{debug}");

        let rejected = notifier.send(&sample_message()).unwrap_err();
        assert!(rejected.starts_with("kakao: HTTP 401 Unauthorized: this access token does not exist"), "{rejected}");
        let timed_out = notifier.send(&sample_message()).unwrap_err();
        assert_eq!(timed_out, "kakao: no answer within 200 ms");
        server.finish();
        let refused = KakaoNotifier::new(&refused_url(), TOKEN, LONG).unwrap();
        let unreachable = refused.send(&sample_message()).unwrap_err();
        for error in [&rejected, &timed_out, &unreachable] {
            assert!(!error.contains(TOKEN), "{error}");
        }

        for bad in ["", "bad\ntoken"] {
            let error = KakaoNotifier::new("http://127.0.0.1:9", bad, LONG).unwrap_err().to_string();
            assert!(error.contains("the KakaoTalk token"), "{error}");
            assert!(bad.is_empty() || !error.contains(bad), "{error}");
        }
    }
}
