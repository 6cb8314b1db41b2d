//! Bearer tokens and the roles they carry (`--tokens FILE`).
//!
//! Each guarded endpoint needs one role: `ledger` (the block feed), `governance` (governance
//! messages, proposals, the policy set, members), `evaluate` (decisions, AuthZEN), `audit` (the
//! decision log and consents). The tokens file gives each caller a name, a secret and the roles
//! it may use:
//!
//! ```toml
//! [[token]]
//! name = "ledger-node"
//! secret = "…at least 32 characters…"
//! roles = ["ledger", "evaluate"]
//! ```
//!
//! A presented token is compared with every configured secret in constant time ([`subtle`]),
//! without stopping at the first match, so the time taken does not say which secret (or how much
//! of one) matched. Only a secret's length can show through timing.

use crate::config::ConfigError;
use serde::Deserialize;
use std::path::Path;
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// The shortest secret accepted from the tokens file.
pub const MIN_SECRET_LEN: usize = 32;

/// What a guarded endpoint needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// `POST /v1/blocks`.
    Ledger,
    /// `POST /v1/governance`, `GET /v1/proposals…`, `/v1/policy-set`, `/v1/members`.
    Governance,
    /// `POST /v1/evaluate[/batch]`, `POST /access/v1/evaluation[s]`.
    Evaluate,
    /// `GET /v1/decisions`, `/v1/audit/verify`, `/v1/consents`.
    Audit,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Ledger, Role::Governance, Role::Evaluate, Role::Audit];

    pub fn name(self) -> &'static str {
        match self {
            Role::Ledger => "ledger",
            Role::Governance => "governance",
            Role::Evaluate => "evaluate",
            Role::Audit => "audit",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// One caller: its name (logged as the request's `principal`), secret and roles.
#[derive(Clone)]
struct Entry {
    name: String,
    secret: Box<[u8]>,
    roles: u8,
}

/// The configured tokens. `Debug` shows names and roles, never secrets.
#[derive(Clone, Default)]
pub struct Tokens {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| (&e.name, e.roles)))
            .finish()
    }
}

/// The verdict on a request's `Authorization` header.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// The token carries the role; the caller's name.
    Allowed(&'a str),
    /// No bearer token was sent.
    Missing,
    /// The token is none of the configured ones.
    Unknown,
    /// The token is known (the caller's name) but lacks the role.
    Forbidden(&'a str),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    token: Vec<FileEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    name: String,
    secret: String,
    roles: Vec<Role>,
}

impl Tokens {
    /// One token with every role: the single `--token` form.
    pub fn single(secret: &str) -> Self {
        Tokens {
            entries: vec![Entry {
                name: "token".into(),
                secret: secret.as_bytes().into(),
                roles: Role::ALL.iter().fold(0, |acc, r| acc | r.bit()),
            }],
        }
    }

    /// Reads the tokens file; every error names the setting `tokens`, the file and the entry.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let fail =
            |reason: String| ConfigError::new("tokens", format!("{}: {reason}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        Self::parse(&text).map_err(fail)
    }

    /// Parses the text of a tokens file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())?;
        if file.token.is_empty() {
            return Err("no `[[token]]` entry: a tokens file grants at least one token".into());
        }
        let mut entries: Vec<Entry> = Vec::with_capacity(file.token.len());
        for (i, t) in file.token.into_iter().enumerate() {
            let at = format!("token[{i}]");
            if t.name.is_empty() || !t.name.chars().all(|c| c.is_ascii_graphic()) {
                return Err(format!(
                    "{at}.name: must be non-empty printable ASCII without spaces"
                ));
            }
            if entries.iter().any(|e| e.name == t.name) {
                return Err(format!("{at}.name: `{}` is named twice", t.name));
            }
            if t.secret.len() < MIN_SECRET_LEN || !t.secret.chars().all(|c| c.is_ascii_graphic()) {
                return Err(format!(
                    "{at}.secret: must be at least {MIN_SECRET_LEN} printable ASCII characters without spaces"
                ));
            }
            if entries.iter().any(|e| *e.secret == *t.secret.as_bytes()) {
                return Err(format!("{at}.secret: the same secret is given twice"));
            }
            if t.roles.is_empty() {
                return Err(format!(
                    "{at}.roles: at least one of ledger, governance, evaluate, audit"
                ));
            }
            entries.push(Entry {
                name: t.name,
                secret: t.secret.into_bytes().into(),
                roles: t.roles.iter().fold(0, |acc, r| acc | r.bit()),
            });
        }
        Ok(Tokens { entries })
    }

    /// Judges the value of an `Authorization` header against `role`.
    pub fn judge(&self, authorization: Option<&[u8]>, role: Role) -> Verdict<'_> {
        let Some(given) = authorization.and_then(bearer) else {
            return Verdict::Missing;
        };
        // Every secret is compared, whatever matched before: the roles of the matching entry (at
        // most one: secrets are unique) and its index are selected without branching.
        let mut roles = 0u8;
        let mut found = 0u32;
        let mut index = 0u32;
        for (i, entry) in self.entries.iter().enumerate() {
            let eq = entry.secret.as_ref().ct_eq(given);
            roles.conditional_assign(&entry.roles, eq);
            found.conditional_assign(&1, eq);
            index.conditional_assign(&(i as u32), eq);
        }
        if found == 0 {
            return Verdict::Unknown;
        }
        let name = self
            .entries
            .get(index as usize)
            .map_or("", |e| e.name.as_str());
        if roles & role.bit() == 0 {
            Verdict::Forbidden(name)
        } else {
            Verdict::Allowed(name)
        }
    }

    /// The names of the configured callers and their roles, for the start-up log.
    pub fn describe(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|e| {
                let roles: Vec<&str> = Role::ALL
                    .iter()
                    .filter(|r| e.roles & r.bit() != 0)
                    .map(|r| r.name())
                    .collect();
                format!("{}: {}", e.name, roles.join(","))
            })
            .collect()
    }
}

/// The token of `Bearer <token>` (the scheme is case-insensitive, RFC 9110 §11.1).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEDGER: &str = "ledger-secret-0123456789abcdef0123456789";
    const AUDIT: &str = "audit-secret-0123456789abcdef0123456789a";

    fn tokens() -> Tokens {
        Tokens::parse(&format!(
            "[[token]]\nname = \"node\"\nsecret = \"{LEDGER}\"\nroles = [\"ledger\", \"evaluate\"]\n\
             [[token]]\nname = \"auditor\"\nsecret = \"{AUDIT}\"\nroles = [\"audit\"]\n"
        ))
        .expect("parses")
    }

    fn header(secret: &str) -> Vec<u8> {
        format!("Bearer {secret}").into_bytes()
    }

    #[test]
    fn a_token_is_allowed_its_roles_only() {
        let t = tokens();
        let ledger = header(LEDGER);
        assert_eq!(
            t.judge(Some(&ledger), Role::Ledger),
            Verdict::Allowed("node")
        );
        assert_eq!(
            t.judge(Some(&ledger), Role::Evaluate),
            Verdict::Allowed("node")
        );
        assert_eq!(
            t.judge(Some(&ledger), Role::Audit),
            Verdict::Forbidden("node")
        );
        let audit = header(AUDIT);
        assert_eq!(
            t.judge(Some(&audit), Role::Audit),
            Verdict::Allowed("auditor")
        );
        assert_eq!(
            t.judge(Some(&audit), Role::Governance),
            Verdict::Forbidden("auditor")
        );
        assert_eq!(t.judge(Some(b"bearer x"), Role::Audit), Verdict::Unknown);
        // A prefix of a secret is not the secret.
        assert_eq!(t.judge(Some(&ledger[..20]), Role::Ledger), Verdict::Unknown);
        assert_eq!(t.judge(None, Role::Audit), Verdict::Missing);
        assert_eq!(t.judge(Some(b"Basic abc"), Role::Audit), Verdict::Missing);
        assert_eq!(t.judge(Some(b"Bearer "), Role::Audit), Verdict::Missing);
        assert_eq!(
            t.judge(Some(format!("BEARER  {LEDGER} ").as_bytes()), Role::Ledger),
            Verdict::Allowed("node")
        );
    }

    #[test]
    fn the_single_token_carries_every_role() {
        let t = Tokens::single("s3cret");
        for role in Role::ALL {
            assert_eq!(
                t.judge(Some(b"Bearer s3cret"), role),
                Verdict::Allowed("token")
            );
        }
    }

    #[test]
    fn a_bad_tokens_file_is_refused_naming_the_entry() {
        let ok = format!("name = \"a\"\nsecret = \"{LEDGER}\"\nroles = [\"ledger\"]\n");
        for (text, expected) in [
            (String::new(), "no `[[token]]`"),
            ("[[token]]\nname = \"a\"\n".to_owned(), "missing field"),
            (format!("[[token]]\n{ok}[[token]]\n{ok}"), "token[1].name"),
            (
                format!("[[token]]\n{ok}[[token]]\nname = \"b\"\nsecret = \"{LEDGER}\"\nroles = [\"audit\"]\n"),
                "token[1].secret: the same secret",
            ),
            (
                "[[token]]\nname = \"a\"\nsecret = \"short\"\nroles = [\"ledger\"]\n".to_owned(),
                "token[0].secret: must be at least 32",
            ),
            (
                format!("[[token]]\nname = \"a\"\nsecret = \"{LEDGER}\"\nroles = []\n"),
                "token[0].roles",
            ),
            (
                format!("[[token]]\nname = \"a\"\nsecret = \"{LEDGER}\"\nroles = [\"admin\"]\n"),
                "unknown variant `admin`",
            ),
            (format!("[[token]]\n{ok}scope = 1\n"), "unknown field `scope`"),
        ] {
            let e = Tokens::parse(&text).expect_err("refused");
            assert!(e.contains(expected), "{text:?}: {e}");
        }
    }

    #[test]
    fn debug_shows_no_secret() {
        let shown = format!("{:?}", tokens());
        assert!(shown.contains("node") && !shown.contains(LEDGER), "{shown}");
    }

    #[test]
    fn a_missing_file_names_the_setting() {
        let e = Tokens::load(Path::new("/nonexistent/tokens.toml")).expect_err("refused");
        assert_eq!(e.setting, "tokens");
        assert!(e.reason.contains("/nonexistent/tokens.toml"), "{e}");
    }
}
