//! Reads from a running node (`--node URL`) what a member's message must name: the active
//! policy-set version and the voting rules' digest (a change's `base`), the consortium, and a
//! proposal's content hash (a vote's `content`).

use crate::commands::{bad_input, Failure};
use serde_json::Value;
use std::time::Duration;

/// A node's HTTP API, read-only.
pub struct NodeClient {
    url: String,
    token: Option<String>,
    http: reqwest::blocking::Client,
}

impl NodeClient {
    /// A client of the node at `url` (`http://host:port`), with the bearer token if the node
    /// requires one.
    pub fn new(url: &str, token: Option<String>) -> Result<Self, Failure> {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| bad_input(format!("--node {url}: {e}")))?;
        Ok(NodeClient {
            url: url.trim_end_matches('/').to_owned(),
            token: token.filter(|t| !t.is_empty()),
            http,
        })
    }

    /// `GET path` on the node: its JSON answer, or an error naming the URL and the problem.
    pub fn get(&self, path: &str) -> Result<Value, Failure> {
        let url = format!("{}{path}", self.url);
        let mut request = self.http.get(&url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .map_err(|e| bad_input(format!("{url}: {e}")))?;
        let status = response.status();
        let text = response
            .text()
            .map_err(|e| bad_input(format!("{url}: {e}")))?;
        let body = accord_engine::json::value_from_str(&text).unwrap_or(Value::Null);
        if !status.is_success() {
            let detail = body
                .get("detail")
                .and_then(Value::as_str)
                .unwrap_or(text.as_str());
            return Err(bad_input(format!("{url}: {status}: {detail}")));
        }
        Ok(body)
    }

    fn string_at(&self, path: &str, pointer: &str) -> Result<String, Failure> {
        let body = self.get(path)?;
        body.pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| bad_input(format!("{}{path}: the answer has no `{pointer}`", self.url)))
    }

    /// The active policy-set version: the `base` of a policy change.
    pub fn policy_version(&self) -> Result<String, Failure> {
        self.string_at("/v1/policy-set", "/active/version")
    }

    /// The digest of the voting rules in force: the `base` of a voting-rule change.
    pub fn voting_digest(&self) -> Result<String, Failure> {
        self.string_at("/v1/members", "/voting_digest")
    }

    /// The consortium the node serves.
    pub fn consortium(&self) -> Result<String, Failure> {
        self.string_at("/v1/members", "/consortium")
    }

    /// The content hash of proposal `id`: what a vote names.
    pub fn proposal_content(&self, id: &str) -> Result<String, Failure> {
        self.string_at(&proposal_path(id, ""), "/content")
    }
}

/// `/v1/proposals/{id}{rest}`, the id percent-encoded.
pub fn proposal_path(id: &str, rest: &str) -> String {
    let id: String = form_urlencoded::byte_serialize(id.as_bytes()).collect();
    format!("/v1/proposals/{id}{rest}")
}
