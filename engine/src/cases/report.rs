//! How `accord test` reports results: text for people, JSON for tools, JUnit XML for CI systems.
//!
//! Decisions are spelt as in the test cases (`allow`, `deny`). Durations are wall-clock time of
//! the test run (never an input to a decision).

use super::coverage::{Coverage, CoverageItem};
use super::{CaseResult, Status};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::time::Duration;

/// What the reports say about the run as a whole.
#[derive(Debug, Clone, Copy)]
pub struct RunInfo<'a> {
    pub bundle: &'a str,
    pub version: &'a str,
    /// The `--filter` pattern, if any.
    pub filter: Option<&'a str>,
}

/// Counts of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub total: usize,
    pub passed: usize,
    /// Ran, with a decision other than expected.
    pub failed: usize,
    /// Could not run.
    pub errors: usize,
    pub duration: Duration,
}

impl Summary {
    pub fn of<'r>(results: impl IntoIterator<Item = &'r CaseResult>) -> Summary {
        let mut s = Summary {
            total: 0,
            passed: 0,
            failed: 0,
            errors: 0,
            duration: Duration::ZERO,
        };
        for r in results {
            s.total += 1;
            s.duration += r.duration;
            match r.status {
                Status::Passed => s.passed += 1,
                Status::Failed => s.failed += 1,
                Status::Error => s.errors += 1,
            }
        }
        s
    }
}

/// `1.234 ms`, to the microsecond.
fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// The first line of the text report.
pub fn text_header(info: &RunInfo<'_>, cases: usize) -> String {
    let filter = info
        .filter
        .map(|f| format!(" matching `{f}`"))
        .unwrap_or_default();
    format!(
        "running {cases} cases{filter} of bundle {} ({})",
        info.bundle, info.version
    )
}

/// The lines of one case: nothing for a pass unless `verbose`; a failure with each mismatch and
/// the case's `why`.
pub fn text_case(result: &CaseResult, verbose: bool) -> Vec<String> {
    let mut lines = Vec::new();
    if result.passed() {
        if verbose {
            lines.push(format!(
                "ok   {} :: {} ({:.3} ms)",
                result.file,
                result.name,
                millis(result.duration)
            ));
        }
        return lines;
    }
    let timing = if verbose && result.status == Status::Failed {
        format!(" ({:.3} ms)", millis(result.duration))
    } else {
        String::new()
    };
    lines.push(format!("FAIL {} :: {}{timing}", result.file, result.name));
    for f in &result.failures {
        lines.push(format!("       {f}"));
    }
    if !result.why.is_empty() {
        lines.push(format!("       why: {}", result.why));
    }
    lines
}

/// The last line of the text report.
pub fn text_summary(summary: &Summary) -> String {
    format!(
        "test result: {} passed, {} failed",
        summary.passed,
        summary.failed + summary.errors
    )
}

/// The coverage section of the text report: the percentage, then every side not exercised and
/// the rules never exercised at all; with `verbose`, every side with its case count.
pub fn text_coverage(coverage: &Coverage, verbose: bool) -> Vec<String> {
    let mut lines = vec![format!(
        "coverage: {} of {} rule sides exercised ({:.1}%)",
        coverage.exercised(),
        coverage.items.len(),
        coverage.percent()
    )];
    let describe = |i: &CoverageItem| {
        format!(
            "{:<10} {} ({})",
            format!("{} side", i.side.as_str()),
            i.id(),
            i.path
        )
    };
    if verbose {
        for item in &coverage.items {
            lines.push(format!("  {:>4}  {}", item.cases, describe(item)));
        }
    }
    let missing: Vec<&CoverageItem> = coverage.items.iter().filter(|i| !i.covered()).collect();
    if !missing.is_empty() {
        lines.push("not exercised:".into());
        for item in missing {
            lines.push(format!("  {}", describe(item)));
        }
    }
    let never = coverage.never_exercised();
    if !never.is_empty() {
        lines.push(format!(
            "never exercised on any side ({}): {}",
            never.len(),
            never.join(", ")
        ));
    }
    let attached = coverage.obligations.iter().filter(|i| i.covered()).count();
    lines.push(format!(
        "obligations: {attached} of {} attached by some allow (not counted above)",
        coverage.obligations.len()
    ));
    let unattached: Vec<String> = coverage
        .obligations
        .iter()
        .filter(|i| !i.covered())
        .map(CoverageItem::id)
        .collect();
    if !unattached.is_empty() {
        lines.push(format!("  never attached: {}", unattached.join(", ")));
    }
    for problem in &coverage.problems {
        lines.push(format!("  could not read rule ids: {problem}"));
    }
    lines
}

fn coverage_item_json(item: &CoverageItem) -> Value {
    json!({
        "module": item.module,
        "rule": item.rule,
        "language": item.language.as_str(),
        "path": item.path,
        "side": item.side.as_str(),
        "cases": item.cases,
        "first_case": item.first_case,
    })
}

/// The coverage as JSON.
pub fn coverage_json(coverage: &Coverage) -> Value {
    json!({
        "percent": (coverage.percent() * 10.0).round() / 10.0,
        "exercised": coverage.exercised(),
        "total": coverage.items.len(),
        "rules": coverage.items.iter().map(coverage_item_json).collect::<Vec<_>>(),
        "never_exercised": coverage.never_exercised(),
        "obligations": coverage.obligations.iter().map(coverage_item_json).collect::<Vec<_>>(),
        "problems": coverage.problems,
    })
}

/// The whole run as one JSON document.
pub fn json(info: &RunInfo<'_>, results: &[CaseResult], coverage: Option<&Coverage>) -> Value {
    let summary = Summary::of(results);
    let cases: Vec<Value> = results
        .iter()
        .map(|r| {
            json!({
                "file": r.file,
                "name": r.name,
                "why": r.why,
                "status": r.status.as_str(),
                "expected": r.expected.map(|e| e.as_str()),
                "decision": r.decision.as_ref().map(|d| d.decision.as_str()),
                "reasons": r.decision.as_ref().map(|d| d
                    .reasons
                    .iter()
                    .map(|x| format!("{}#{}", x.module, x.rule))
                    .collect::<Vec<_>>()),
                "duration_ms": millis(r.duration),
                "failures": r.failures,
            })
        })
        .collect();
    let mut out = json!({
        "bundle": { "name": info.bundle, "version": info.version },
        "filter": info.filter,
        "summary": {
            "total": summary.total,
            "passed": summary.passed,
            "failed": summary.failed,
            "errors": summary.errors,
            "duration_ms": millis(summary.duration),
        },
        "cases": cases,
    });
    if let Some(coverage) = coverage {
        out["coverage"] = coverage_json(coverage);
    }
    out
}

/// Text as XML character data or attribute value: markup escaped, and the characters XML 1.0
/// cannot carry replaced by U+FFFD.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn seconds(d: Duration) -> String {
    format!("{:.6}", d.as_secs_f64())
}

/// The run as JUnit XML: one `testsuite` per test file, in the order run, one `testcase` per case;
/// a case with another decision is a `failure`, one that could not run an `error`.
pub fn junit(info: &RunInfo<'_>, results: &[CaseResult]) -> String {
    let mut files: Vec<(&str, Vec<&CaseResult>)> = Vec::new();
    for r in results {
        match files.iter_mut().find(|(f, _)| *f == r.file) {
            Some((_, cases)) => cases.push(r),
            None => files.push((&r.file, vec![r])),
        }
    }
    let all = Summary::of(results);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{}\">",
        xml(info.bundle),
        all.total,
        all.failed,
        all.errors,
        seconds(all.duration)
    );
    for (file, cases) in files {
        let s = Summary::of(cases.iter().copied());
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"0\" time=\"{}\">",
            xml(file),
            s.total,
            s.failed,
            s.errors,
            seconds(s.duration)
        );
        let _ = writeln!(
            out,
            "    <properties>\n      <property name=\"bundle.version\" value=\"{}\"/>{}\n    </properties>",
            xml(info.version),
            info.filter
                .map(|f| format!("\n      <property name=\"filter\" value=\"{}\"/>", xml(f)))
                .unwrap_or_default()
        );
        for case in cases {
            let open = format!(
                "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\"",
                xml(&case.name),
                xml(&case.file),
                seconds(case.duration)
            );
            let element = match case.status {
                Status::Passed => {
                    let _ = writeln!(out, "{open}/>");
                    continue;
                }
                Status::Failed => "failure",
                Status::Error => "error",
            };
            let mut body = case.failures.join("\n");
            if !case.why.is_empty() {
                body.push_str("\nwhy: ");
                body.push_str(&case.why);
            }
            let _ = writeln!(
                out,
                "{open}>\n      <{element} message=\"{}\" type=\"{}\">{}</{element}>\n    </testcase>",
                xml(case.failures.first().map_or("", String::as_str)),
                if element == "failure" { "decision" } else { "case" },
                xml(&body)
            );
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
