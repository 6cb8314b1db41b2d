//! Reading the log back: pages of entries for queries, and the segments' layout.

use super::{DecisionLog, LogError};
use serde::{Deserialize, Serialize};

/// A stored entry, as read back for queries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntrySummary {
    pub seq: u64,
    pub tx: String,
    pub patient: Option<String>,
    pub policy_version: String,
    pub outcome: String,
}

/// Filters of a page query; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct PageQuery {
    pub after: u64,
    pub limit: usize,
    /// Stop after examining this many entries even if the page is not full.
    pub scan_limit: usize,
    pub tx: Option<String>,
    pub patient: Option<String>,
    pub outcome: Option<String>,
    pub version: Option<String>,
}

/// One page of entries (their stored JSON text) and where the next page starts.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub entries: Vec<String>,
    /// `Some(seq)`: pass `after=seq` for more; `None`: the log has no more entries.
    pub next_after: Option<u64>,
}

impl DecisionLog {
    /// A page of entries after `query.after` that match the filters.
    pub fn page(&self, query: &PageQuery) -> Result<Page, LogError> {
        let first = query.after.saturating_add(1);
        // The segment holding entry `first` starts at or before it.
        let start = match self.tree.range(..=first.to_be_bytes()).next_back() {
            Some(item) => item.map_err(LogError::storage)?.0.to_vec(),
            None => first.to_be_bytes().to_vec(),
        };
        let mut page = Page::default();
        let mut scanned = 0usize;
        for item in self.tree.range(start..) {
            let (key, value) = item.map_err(LogError::storage)?;
            let Some(segment_start) = key_seq(&key) else {
                continue;
            };
            let text = String::from_utf8_lossy(&value);
            let lines = text.strip_suffix('\n').unwrap_or(&text).split('\n');
            for (seq, entry) in (segment_start..).zip(lines) {
                if seq < first {
                    continue;
                }
                scanned += 1;
                let summary: Option<EntrySummary> = accord_engine::json::parse_str(entry).ok();
                let matches = match &summary {
                    // A corrupt entry matches no filter but is shown unfiltered (audit/verify
                    // explains).
                    None => {
                        query.tx.is_none()
                            && query.patient.is_none()
                            && query.outcome.is_none()
                            && query.version.is_none()
                    }
                    Some(s) => {
                        query.tx.as_ref().is_none_or(|t| *t == s.tx)
                            && query
                                .patient
                                .as_ref()
                                .is_none_or(|p| Some(p) == s.patient.as_ref())
                            && query.outcome.as_ref().is_none_or(|o| *o == s.outcome)
                            && query
                                .version
                                .as_ref()
                                .is_none_or(|v| *v == s.policy_version)
                    }
                };
                if matches {
                    page.entries.push(entry.to_owned());
                }
                if page.entries.len() >= query.limit || scanned >= query.scan_limit {
                    // A full page that happens to end at the last entry still offers
                    // `next_after`; the next page is then empty. That is cheaper than peeking.
                    page.next_after = Some(seq);
                    return Ok(page);
                }
            }
        }
        Ok(page)
    }
}

/// The entries of one stored segment, each with its sequence number; an error says why the
/// segment cannot be read.
pub(super) fn segment_entries<'v>(
    key: &[u8],
    value: &'v [u8],
) -> Result<Vec<(u64, &'v str)>, String> {
    let start = key_seq(key).ok_or("key is not 8 bytes")?;
    let text = std::str::from_utf8(value).map_err(|e| format!("segment is not UTF-8: {e}"))?;
    let body = text
        .strip_suffix('\n')
        .ok_or("segment does not end with a newline")?;
    Ok((start..).zip(body.split('\n')).collect())
}

pub(super) fn key_seq(key: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(key).ok().map(u64::from_be_bytes)
}
