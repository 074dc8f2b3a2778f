//! Reading the texts the domain shares (`Arc<str>`: an order's customer and
//! address, its store's name) straight from the JSON text into one
//! allocation. serde's own `Arc<str>` (its `rc` feature) reads a `Box<str>`
//! first and copies it into the `Arc`: two allocations for each text of
//! every view that `status` decodes.

use std::fmt;
use std::sync::Arc;

use serde::de::{Deserializer, Error, Visitor};

/// `#[serde(deserialize_with = "…")]` for an `Arc<str>` field.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<str>, D::Error> {
    d.deserialize_str(SharedText)
}

struct SharedText;

impl Visitor<'_> for SharedText {
    type Value = Arc<str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    // Borrowed and escaped (unescaped into a buffer) strings both come here.
    fn visit_str<E: Error>(self, text: &str) -> Result<Arc<str>, E> {
        Ok(Arc::from(text))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    #[derive(serde::Deserialize)]
    struct Named {
        #[serde(deserialize_with = "super::deserialize")]
        name: Arc<str>,
    }

    fn read(json: &str) -> Result<Arc<str>, serde_json::Error> {
        serde_json::from_str::<Named>(json).map(|n| n.name)
    }

    #[test]
    fn plain_escaped_and_wrong_texts() {
        assert_eq!(&*read(r#"{"name":"교촌치킨"}"#).unwrap(), "교촌치킨");
        assert_eq!(&*read(r#"{"name":"a \"b\" \u00e9"}"#).unwrap(), "a \"b\" é");
        let wrong = read(r#"{"name":7}"#).unwrap_err().to_string();
        assert!(wrong.contains("expected a string"), "{wrong}");
    }
}
