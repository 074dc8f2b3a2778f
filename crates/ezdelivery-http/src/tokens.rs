//! The tokens file: who may call the API, as what. It holds only each
//! token's SHA-256, so reading the file does not give a token away, and a
//! presented token is hashed and compared in constant time.
//!
//! ```toml
//! [[token]]
//! sha256 = "…"        # `printf %s "$TOKEN" | sha256sum`
//! role = "customer"   # customer | owner | rider | admin
//! name = "kim"
//! ```

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a caller may do: each role is limited to its own resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Places, pays, cancels and reviews their own orders.
    Customer,
    /// Runs the stores whose owner is their name: menus, inbox, cooking.
    Owner,
    /// Delivers the orders assigned to them, or starts an unassigned one.
    Rider,
    /// Everything.
    Admin,
}

impl Role {
    /// The role's name, as in the tokens file.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Owner => "owner",
            Role::Rider => "rider",
            Role::Admin => "admin",
        }
    }
}

/// Who is calling: a role and the name it acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// What the caller may do.
    pub role: Role,
    /// The customer's, owner's or rider's name (an admin's is just a label).
    pub name: String,
}

impl Principal {
    /// The caller as one word, for idempotency keys and logs: `customer:kim`.
    /// A name longer than [`SCOPE_NAME_BYTES`] is written as its SHA-256
    /// (`customer:sha256:…`): a name may have 1,000 characters, and a
    /// scope is at most 255 (and is part of a primary key, which
    /// PostgreSQL bounds to about 2.7 KB).
    pub fn scope(&self) -> String {
        match self.name.len() {
            0..=SCOPE_NAME_BYTES => format!("{}:{}", self.role.as_str(), self.name),
            _ => format!("{}:sha256:{}", self.role.as_str(), sha256_hex(&self.name)),
        }
    }
}

/// The longest name a scope holds as it is, in bytes.
pub const SCOPE_NAME_BYTES: usize = 200;

/// Why a tokens file was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokensError(pub String);

impl fmt::Display for TokensError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TokensError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    token: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    sha256: String,
    role: Role,
    name: String,
}

/// The tokens the server accepts.
#[derive(Debug, Clone)]
pub struct Tokens {
    entries: Vec<([u8; 32], Principal)>,
}

impl Tokens {
    /// Reads the tokens file at `path`. It is refused when others than its
    /// owner may read or write it (as ssh refuses a private key),
    /// when it is not the TOML above, or when it holds no token.
    pub fn load(path: &Path) -> Result<Tokens, TokensError> {
        let shown = path.display();
        let text = std::fs::read_to_string(path)
            .map_err(|e| TokensError(format!("cannot read the tokens file {shown}: {e}")))?;
        check_permissions(path)?;
        Tokens::parse(&text).map_err(|e| TokensError(format!("the tokens file {shown}: {e}")))
    }

    /// Reads tokens from TOML text (no permission check: for tests and embedders).
    pub fn parse(text: &str) -> Result<Tokens, TokensError> {
        let file: File = toml::from_str(text).map_err(|e| TokensError(e.message().to_string()))?;
        if file.token.is_empty() {
            return Err(TokensError("it holds no [[token]]: add one (README, \"Serving HTTP\")".into()));
        }
        let mut entries = Vec::with_capacity(file.token.len());
        for (i, entry) in file.token.into_iter().enumerate() {
            let digest = parse_hex(&entry.sha256).ok_or_else(|| {
                TokensError(format!(
                    "token {}: sha256 must be 64 hex digits (the SHA-256 of the token, not the token)",
                    i + 1
                ))
            })?;
            // The name is compared exactly with the names in requests and
            // records, which the engine keeps trimmed and printable.
            let name = ezdelivery_core::domain::validate::name("name", &entry.name)
                .map_err(|e| TokensError(format!("token {}: {e}", i + 1)))?;
            if name != entry.name {
                return Err(TokensError(format!("token {}: name must not start or end with spaces", i + 1)));
            }
            if entries.iter().any(|(known, _)| *known == digest) {
                return Err(TokensError(format!("token {}: the same sha256 is listed twice", i + 1)));
            }
            entries.push((digest, Principal { role: entry.role, name }));
        }
        Ok(Tokens { entries })
    }

    /// Who `token` belongs to, if anyone. Every entry is compared, each in
    /// constant time, so the time taken says nothing about the token.
    pub fn authenticate(&self, token: &str) -> Option<&Principal> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (stored, principal) in &self.entries {
            if bool::from(stored.ct_eq(&digest)) {
                found = Some(principal);
            }
        }
        found
    }
}

/// The SHA-256 of `data` in lowercase hex: what the tokens file stores of
/// a token.
pub fn sha256_hex(data: impl AsRef<[u8]>) -> String {
    Sha256::digest(data.as_ref()).iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hex(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<(), TokensError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| TokensError(format!("cannot read the tokens file {}: {e}", path.display())))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(TokensError(format!(
            "the tokens file {} may be read or written by others than its owner (mode {:o}): run `chmod 600 {}`",
            path.display(),
            mode & 0o777,
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path) -> Result<(), TokensError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(entries: &[(&str, &str, &str)]) -> String {
        entries
            .iter()
            .map(|(token, role, name)| {
                format!("[[token]]\nsha256 = \"{}\"\nrole = \"{role}\"\nname = \"{name}\"\n", sha256_hex(token))
            })
            .collect()
    }

    #[test]
    fn a_scope_holds_a_long_name_as_its_digest_and_stays_short() {
        let scope = |name: String| Principal { role: Role::Customer, name }.scope();
        assert_eq!(scope("kim".into()), "customer:kim");
        let at_most = "k".repeat(SCOPE_NAME_BYTES);
        assert_eq!(scope(at_most.clone()), format!("customer:{at_most}"));
        let longest = "김".repeat(1_000);
        let long = scope(longest.clone());
        assert_eq!(long, format!("customer:sha256:{}", sha256_hex(&longest)));
        assert_ne!(long, scope(format!("{longest}x")), "each long name its own");
        for name in [at_most, longest] {
            assert!(scope(name).chars().count() <= ezdelivery_core::app::requests::MAX_REQUEST_KEY);
        }
    }

    #[test]
    fn a_token_is_known_by_its_digest_only() {
        let tokens = Tokens::parse(&file(&[("secret-kim", "customer", "kim"), ("root", "admin", "ops")])).unwrap();
        let kim = tokens.authenticate("secret-kim").unwrap();
        assert_eq!((kim.role, kim.name.as_str()), (Role::Customer, "kim"));
        assert_eq!(tokens.authenticate("root").unwrap().role, Role::Admin);
        assert!(tokens.authenticate("secret-ki").is_none());
        assert!(tokens.authenticate(&sha256_hex("root")).is_none(), "the digest is not the token");
    }

    #[test]
    fn a_malformed_file_is_refused_with_the_reason() {
        assert!(Tokens::parse("").unwrap_err().0.contains("holds no [[token]]"));
        let bad = "[[token]]\nsha256 = \"abc\"\nrole = \"admin\"\nname = \"x\"\n";
        assert!(Tokens::parse(bad).unwrap_err().0.contains("64 hex digits"));
        let role = format!("[[token]]\nsha256 = \"{}\"\nrole = \"chef\"\nname = \"x\"\n", sha256_hex("t"));
        assert!(Tokens::parse(&role).is_err());
        let twice = file(&[("t", "admin", "ops"), ("t", "customer", "kim")]);
        assert!(Tokens::parse(&twice).unwrap_err().0.contains("listed twice"));
        assert!(Tokens::parse(&file(&[("t", "customer", "kim ")])).unwrap_err().0.contains("spaces"));
        assert!(Tokens::parse(&file(&[("t", "customer", "k\tim")])).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_file_others_may_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        std::fs::write(&path, file(&[("t", "admin", "ops")])).unwrap();
        for mode in [0o644, 0o640, 0o606] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let error = Tokens::load(&path).unwrap_err();
            assert!(error.0.contains("chmod 600"), "{mode:o}: {error}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Tokens::load(&path).is_ok());
    }
}
