//! Prometheus metrics, kept in atomics and rendered as text at `/metrics`.

use crate::problem::{ProblemKind, ALL_KINDS};
use accord_engine::{Decision, Effect};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The endpoints that get their own latency series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Evaluate,
    EvaluateBatch,
    AuthzenEvaluation,
    AuthzenEvaluations,
    Decisions,
    AuditVerify,
    Blocks,
    Governance,
    Other,
}

const ENDPOINTS: [Endpoint; 9] = [
    Endpoint::Evaluate,
    Endpoint::EvaluateBatch,
    Endpoint::AuthzenEvaluation,
    Endpoint::AuthzenEvaluations,
    Endpoint::Decisions,
    Endpoint::AuditVerify,
    Endpoint::Blocks,
    Endpoint::Governance,
    Endpoint::Other,
];

impl Endpoint {
    pub fn from_path(path: &str) -> Self {
        match path {
            "/v1/evaluate" => Endpoint::Evaluate,
            "/v1/evaluate/batch" => Endpoint::EvaluateBatch,
            "/access/v1/evaluation" => Endpoint::AuthzenEvaluation,
            "/access/v1/evaluations" => Endpoint::AuthzenEvaluations,
            "/v1/decisions" => Endpoint::Decisions,
            "/v1/audit/verify" => Endpoint::AuditVerify,
            "/v1/blocks" => Endpoint::Blocks,
            "/v1/governance" => Endpoint::Governance,
            _ => Endpoint::Other,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Endpoint::Evaluate => "evaluate",
            Endpoint::EvaluateBatch => "evaluate_batch",
            Endpoint::AuthzenEvaluation => "authzen_evaluation",
            Endpoint::AuthzenEvaluations => "authzen_evaluations",
            Endpoint::Decisions => "decisions",
            Endpoint::AuditVerify => "audit_verify",
            Endpoint::Blocks => "blocks",
            Endpoint::Governance => "governance",
            Endpoint::Other => "other",
        }
    }

    fn index(self) -> usize {
        ENDPOINTS
            .iter()
            .position(|e| *e == self)
            .unwrap_or(ENDPOINTS.len() - 1)
    }
}

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    /// Non-cumulative counts per bucket, the last one for +Inf.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

/// The server's counters.
#[derive(Default)]
pub struct Metrics {
    allow: AtomicU64,
    deny: AtomicU64,
    /// (module, outcome) → decisions whose reasons cite the module.
    by_module: Mutex<BTreeMap<(String, &'static str), u64>>,
    latency: [Histogram; ENDPOINTS.len()],
    problems: [AtomicU64; ALL_KINDS.len()],
}

/// Values the state gives at render time.
pub struct Gauges<'a> {
    pub policy_name: &'a str,
    pub policy_version: &'a str,
    pub activated_at_height: u64,
    pub applied_height: Option<u64>,
    pub log_entries: u64,
    /// Writer rounds, seconds writing batches, seconds flushing.
    pub log_rounds: (u64, f64, f64),
    pub data_bytes: Option<u64>,
    pub in_flight: usize,
    /// Process-log lines dropped, where `accord serve` installed its log.
    pub dropped_log_lines: Option<usize>,
    /// Whether the data directory takes writes; storage faults seen and healed so far.
    pub storage_healthy: bool,
    pub storage_faults: (u64, u64),
}

/// Decisions counted by outcome, and by the modules that decided them, not yet added to
/// [`Metrics`]: counted where the decisions were made, added once they are logged.
#[derive(Debug, Default)]
pub struct DecisionTally {
    allow: u64,
    deny: u64,
    modules: BTreeMap<(String, &'static str), u64>,
}

impl DecisionTally {
    pub fn of<'d>(decisions: impl IntoIterator<Item = &'d Decision>) -> Self {
        let mut tally = DecisionTally::default();
        for d in decisions {
            let outcome = match d.decision {
                Effect::Allow => {
                    tally.allow += 1;
                    "allow"
                }
                Effect::Deny => {
                    tally.deny += 1;
                    "deny"
                }
            };
            let mut seen: Vec<&str> = d.reasons.iter().map(|r| r.module.as_str()).collect();
            seen.extend(d.errors.iter().map(|e| e.module.as_str()));
            seen.sort_unstable();
            seen.dedup();
            for m in seen {
                *tally.modules.entry((m.to_owned(), outcome)).or_default() += 1;
            }
        }
        tally
    }

    pub fn allowed(&self) -> u64 {
        self.allow
    }

    pub fn denied(&self) -> u64 {
        self.deny
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn count_decisions<'d>(&self, decisions: impl IntoIterator<Item = &'d Decision>) {
        self.add(DecisionTally::of(decisions));
    }

    /// Adds decisions counted beforehand (where they were made, off the async workers).
    pub fn add(&self, tally: DecisionTally) {
        self.allow.fetch_add(tally.allow, Ordering::Relaxed);
        self.deny.fetch_add(tally.deny, Ordering::Relaxed);
        if let Ok(mut all) = self.by_module.lock() {
            for (key, n) in tally.modules {
                *all.entry(key).or_default() += n;
            }
        }
    }

    pub fn observe(&self, endpoint: Endpoint, elapsed: Duration) {
        self.latency[endpoint.index()].observe(elapsed);
    }

    pub fn count_problem(&self, kind: ProblemKind) {
        if let Some(i) = ALL_KINDS.iter().position(|k| *k == kind) {
            self.problems[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The Prometheus text exposition. `extra` is appended last (the node's metrics).
    pub fn render(&self, gauges: &Gauges<'_>, extra: impl FnOnce(&mut String)) -> String {
        let mut out = String::with_capacity(4096);
        let o = &mut out;
        // Writing to a String cannot fail.
        family(
            o,
            "accord_decisions_total",
            "counter",
            "Decisions made, by outcome.",
        );
        let _ = writeln!(
            o,
            "accord_decisions_total{{outcome=\"allow\"}} {}",
            self.allow.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            o,
            "accord_decisions_total{{outcome=\"deny\"}} {}",
            self.deny.load(Ordering::Relaxed)
        );
        family(
            o,
            "accord_module_decisions_total",
            "counter",
            "Decisions whose reasons or errors name the module, by outcome.",
        );
        if let Ok(modules) = self.by_module.lock() {
            for ((module, outcome), n) in modules.iter() {
                let _ = writeln!(
                    o,
                    "accord_module_decisions_total{{module=\"{}\",outcome=\"{outcome}\"}} {n}",
                    escape(module)
                );
            }
        }
        family(
            o,
            "accord_request_duration_seconds",
            "histogram",
            "Time from request to response, by endpoint.",
        );
        for endpoint in ENDPOINTS {
            let h = &self.latency[endpoint.index()];
            let label = endpoint.label();
            let mut cumulative = 0u64;
            for (i, bound) in BUCKETS.iter().enumerate() {
                cumulative += h.buckets[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    o,
                    "accord_request_duration_seconds_bucket{{endpoint=\"{label}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            cumulative += h.buckets[BUCKETS.len()].load(Ordering::Relaxed);
            let _ = writeln!(
                o,
                "accord_request_duration_seconds_bucket{{endpoint=\"{label}\",le=\"+Inf\"}} {cumulative}"
            );
            let _ = writeln!(
                o,
                "accord_request_duration_seconds_sum{{endpoint=\"{label}\"}} {}",
                h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
            );
            let _ = writeln!(
                o,
                "accord_request_duration_seconds_count{{endpoint=\"{label}\"}} {}",
                h.count.load(Ordering::Relaxed)
            );
        }
        family(
            o,
            "accord_problems_total",
            "counter",
            "Problem responses, by type.",
        );
        for (i, kind) in ALL_KINDS.iter().enumerate() {
            let _ = writeln!(
                o,
                "accord_problems_total{{type=\"{}\"}} {}",
                kind.code(),
                self.problems[i].load(Ordering::Relaxed)
            );
        }
        family(
            o,
            "accord_policy_set_info",
            "gauge",
            "The active policy set (value always 1).",
        );
        let _ = writeln!(
            o,
            "accord_policy_set_info{{name=\"{}\",version=\"{}\",activated_at_height=\"{}\"}} 1",
            escape(gauges.policy_name),
            escape(gauges.policy_version),
            gauges.activated_at_height
        );
        family(
            o,
            "accord_applied_height",
            "gauge",
            "Height of the last applied block (0 until a block is applied).",
        );
        let _ = writeln!(
            o,
            "accord_applied_height {}",
            gauges.applied_height.unwrap_or(0)
        );
        family(
            o,
            "accord_decision_log_entries",
            "gauge",
            "Entries in the decision log.",
        );
        let _ = writeln!(o, "accord_decision_log_entries {}", gauges.log_entries);
        let (rounds, writing, flushing) = gauges.log_rounds;
        family(
            o,
            "accord_decision_log_rounds_total",
            "counter",
            "Group commits (one batch and one flush each).",
        );
        let _ = writeln!(o, "accord_decision_log_rounds_total {rounds}");
        family(
            o,
            "accord_decision_log_write_seconds_total",
            "counter",
            "Time spent writing decision-log batches.",
        );
        let _ = writeln!(o, "accord_decision_log_write_seconds_total {writing}");
        family(
            o,
            "accord_decision_log_flush_seconds_total",
            "counter",
            "Time spent flushing the decision log to disk.",
        );
        let _ = writeln!(o, "accord_decision_log_flush_seconds_total {flushing}");
        if let Some(bytes) = gauges.data_bytes {
            family(
                o,
                "accord_data_size_bytes",
                "gauge",
                "Size on disk of the data directory's database.",
            );
            let _ = writeln!(o, "accord_data_size_bytes {bytes}");
        }
        family(
            o,
            "accord_requests_in_flight",
            "gauge",
            "Requests in progress.",
        );
        let _ = writeln!(o, "accord_requests_in_flight {}", gauges.in_flight);
        if let Some(dropped) = gauges.dropped_log_lines {
            family(
                o,
                "accord_log_lines_dropped_total",
                "counter",
                "Process-log lines dropped because the log writer fell behind.",
            );
            let _ = writeln!(o, "accord_log_lines_dropped_total {dropped}");
        }
        family(
            o,
            "accord_storage_healthy",
            "gauge",
            "1 while the data directory takes writes, 0 during a storage fault (writes refused).",
        );
        let _ = writeln!(
            o,
            "accord_storage_healthy {}",
            u8::from(gauges.storage_healthy)
        );
        family(
            o,
            "accord_storage_faults_total",
            "counter",
            "Storage faults (a failed write of the database or the decision log).",
        );
        let _ = writeln!(o, "accord_storage_faults_total {}", gauges.storage_faults.0);
        family(
            o,
            "accord_storage_recoveries_total",
            "counter",
            "Storage faults healed without a restart (the data directory reopened and writable).",
        );
        let _ = writeln!(
            o,
            "accord_storage_recoveries_total {}",
            gauges.storage_faults.1
        );
        // Hook: the block state machine appends its own series here (proposals by state, ...).
        extra(o);
        out
    }
}

/// The `# HELP` and `# TYPE` lines that open a metric family.
pub(crate) fn family(o: &mut String, name: &str, kind: &str, help: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {kind}");
}

/// Escapes a Prometheus label value.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
