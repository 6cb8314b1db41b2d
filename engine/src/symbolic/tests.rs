//! Needs cvc5 (`apt-get install cvc5`; `.ci/run` installs it), except where a test names another
//! solver.

use super::*;
use cedar_policy::{Authorizer, Context, Decision, Entities, EntityUid, Request};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

const SCHEMA: &str = r#"
namespace Accord {
  entity Actor = { kind: String, roles: Set<String> };
  entity Record = { data_categories: Set<String>, patient: String };
  type Context = { purpose: String, break_glass: Bool };
  action "read", "write" appliesTo { principal: Actor, resource: Record, context: Context };
}
"#;

/// Treatment reads are allowed, psychotherapy notes only in an emergency; writes by
/// practitioners.
const BASE: &str = r#"
permit(principal, action == Accord::Action::"read", resource) when { context.purpose == "TREAT" };
forbid(principal, action == Accord::Action::"read", resource)
  when { resource.data_categories.contains("psychotherapy-notes") } unless { context.break_glass };
permit(principal, action == Accord::Action::"write", resource) when { principal.kind == "Practitioner" };
"#;

fn schema(text: &str) -> Schema {
    Schema::from_cedarschema_str(text).expect("schema parses").0
}

fn policies(text: &str) -> PolicySet {
    PolicySet::from_str(text).expect("policies parse")
}

fn settings() -> SolverSettings {
    let settings = SolverSettings::from_env();
    assert!(
        std::process::Command::new(&settings.program)
            .arg("--version")
            .output()
            .is_ok(),
        "these tests need cvc5 (`apt-get install cvc5`, or CVC5=path); {} cannot be run",
        settings.program.display()
    );
    settings
}

fn compare_texts(base: &str, target: &str) -> PolicySetComparison {
    let s = schema(SCHEMA);
    let (b, t) = (policies(base), policies(target));
    compare(
        CedarSide {
            schema: &s,
            policies: &b,
        },
        CedarSide {
            schema: &s,
            policies: &t,
        },
        &settings(),
    )
    .expect("the comparison runs")
}

fn action<'a>(c: &'a PolicySetComparison, name: &str) -> &'a ActionComparison {
    let uid = format!("Accord::Action::\"{name}\"");
    c.actions
        .iter()
        .find(|a| a.action == uid)
        .unwrap_or_else(|| panic!("{uid} is compared: {c:#?}"))
}

fn direction(d: &Option<Direction>) -> &Direction {
    d.as_ref().expect("both directions are queried")
}

/// Cedar's own decision on the counterexample under `text`.
fn decide(text: &str, cex: &Counterexample) -> Decision {
    let s = schema(SCHEMA);
    let uid = |u: &str| EntityUid::from_str(u).expect("a uid");
    let entities = Entities::from_json_value(serde_json::Value::from(cex.entities.clone()), None)
        .expect("the counterexample's entities read back");
    let context = Context::from_json_value(cex.context.clone(), None).expect("context");
    let request = Request::new(
        uid(&cex.principal),
        uid(&cex.action),
        uid(&cex.resource),
        context,
        Some(&s),
    )
    .expect("the counterexample is a valid request");
    Authorizer::new()
        .is_authorized(&request, &policies(text), &entities)
        .decision()
}

#[test]
fn a_tightening_is_stricter_with_a_request_the_base_allows_and_the_target_denies() {
    let target = format!(
        "{BASE}\nforbid(principal, action == Accord::Action::\"read\", resource) \
         when {{ principal.roles.contains(\"suspended\") }};"
    );
    let c = compare_texts(BASE, &target);
    assert!(!c.schema_changed);
    let read = action(&c, "read");
    assert_eq!(read.verdict, Verdict::Stricter, "{read:#?}");
    assert_eq!(direction(&read.newly_allowed).result, Finding::None);
    let denied = direction(&read.newly_denied);
    assert_eq!(denied.result, Finding::Found);
    let cex = denied.counterexample.as_ref().expect("a counterexample");
    assert_eq!(cex.action, "Accord::Action::\"read\"");
    assert_eq!(decide(BASE, cex), Decision::Allow, "{cex:#?}");
    assert_eq!(decide(&target, cex), Decision::Deny, "{cex:#?}");
    assert_eq!(action(&c, "write").verdict, Verdict::Equivalent);
    // The same solver on the same query gives the same answer.
    assert_eq!(compare_texts(BASE, &target), c);
    assert_eq!(c.query_limit_ms, 10_000);
    assert!(c.solver.starts_with("cvc5 "), "{}", c.solver);
}

#[test]
fn a_loosening_is_looser_with_a_request_the_target_allows_and_the_base_denies() {
    let target = BASE.replace(
        "when { context.purpose == \"TREAT\" }",
        "when { context.purpose == \"TREAT\" || context.purpose == \"HPAYMT\" }",
    );
    assert_ne!(target, BASE);
    let c = compare_texts(BASE, &target);
    let read = action(&c, "read");
    assert_eq!(read.verdict, Verdict::Looser, "{read:#?}");
    let allowed = direction(&read.newly_allowed);
    let cex = allowed.counterexample.as_ref().expect("a counterexample");
    assert_eq!(cex.context["purpose"], "HPAYMT", "{cex:#?}");
    assert_eq!(decide(BASE, cex), Decision::Deny);
    assert_eq!(decide(&target, cex), Decision::Allow);
    assert_eq!(direction(&read.newly_denied).result, Finding::None);
}

#[test]
fn an_equivalent_rewrite_is_equivalent_on_every_action() {
    // The conditions reordered and the exception folded into the condition; one permit split
    // in two that together allow the same.
    let rewritten = r#"
permit(principal, action == Accord::Action::"read", resource) when { "TREAT" == context.purpose };
forbid(principal, action, resource)
  when { action == Accord::Action::"read" && !context.break_glass
         && resource.data_categories.contains("psychotherapy-notes") };
permit(principal, action == Accord::Action::"write", resource)
  when { principal.kind == "Practitioner" && principal.roles.contains("nurse") };
permit(principal, action == Accord::Action::"write", resource)
  when { principal.kind == "Practitioner" && !principal.roles.contains("nurse") };
"#;
    let c = compare_texts(BASE, rewritten);
    let verdicts: Vec<(&str, Verdict)> = c
        .actions
        .iter()
        .map(|a| (a.action.as_str(), a.verdict))
        .collect();
    assert_eq!(
        verdicts,
        vec![
            ("Accord::Action::\"read\"", Verdict::Equivalent),
            ("Accord::Action::\"write\"", Verdict::Equivalent)
        ]
    );
}

#[test]
fn a_change_that_allows_some_and_denies_others_is_incomparable() {
    let target = BASE.replace("\"Practitioner\"", "\"Nurse\"");
    let c = compare_texts(BASE, &target);
    let write = action(&c, "write");
    assert_eq!(write.verdict, Verdict::Incomparable, "{write:#?}");
    let allowed = direction(&write.newly_allowed).counterexample.as_ref();
    let denied = direction(&write.newly_denied).counterexample.as_ref();
    assert_eq!(decide(&target, allowed.expect("allowed")), Decision::Allow);
    assert_eq!(decide(BASE, denied.expect("denied")), Decision::Allow);
    assert_eq!(action(&c, "read").verdict, Verdict::Equivalent);
}

/// A stand-in solver that names itself and then never answers a query.
fn silent_solver(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("silent-cvc5");
    std::fs::write(
        &path,
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'This is cvc5 version 0.0-silent'; exit 0; fi\nexec sleep 60\n",
    )
    .expect("write the stand-in solver");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

#[test]
fn a_query_past_its_time_limit_is_a_timeout_and_leaves_the_action_undecided() {
    let dir = std::env::temp_dir().join(format!("accord-symbolic-timeout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let settings = SolverSettings {
        program: silent_solver(&dir),
        query_limit: Duration::from_millis(20),
    };
    let s = schema(SCHEMA);
    let (b, t) = (policies(BASE), policies(&BASE.replace("TREAT", "ETREAT")));
    let started = std::time::Instant::now();
    let c = compare(
        CedarSide {
            schema: &s,
            policies: &b,
        },
        CedarSide {
            schema: &s,
            policies: &t,
        },
        &settings,
    )
    .expect("the comparison runs");
    // Two queries (read, both directions), each abandoned after 20 ms and the grace.
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(c.solver, "cvc5 0.0-silent");
    assert_eq!(c.query_limit_ms, 20);
    let read = action(&c, "read");
    assert_eq!(read.verdict, Verdict::Undecided, "{read:#?}");
    for d in [&read.newly_allowed, &read.newly_denied] {
        let d = direction(d);
        assert_eq!(d.result, Finding::Timeout);
        assert_eq!(
            d.detail.as_deref(),
            Some("no answer within 20 ms; the solver was stopped")
        );
    }
    // The write policies are the same on both sides: the compiler proves it without a query.
    assert_eq!(action(&c, "write").verdict, Verdict::Equivalent);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_the_solver_the_comparison_is_not_run_and_says_why() {
    let s = schema(SCHEMA);
    let b = policies(BASE);
    let side = CedarSide {
        schema: &s,
        policies: &b,
    };
    let settings = SolverSettings {
        program: PathBuf::from("/nonexistent/cvc5"),
        ..SolverSettings::default()
    };
    let err = compare(side, side, &settings).expect_err("no solver");
    assert!(
        err.reason
            .starts_with("the SMT solver `/nonexistent/cvc5` could not be started"),
        "{err}"
    );
    assert!(err.reason.contains("install cvc5"), "{err}");
}

fn compare_schemas(base: (&str, &str), target: (&str, &str)) -> PolicySetComparison {
    let (bs, ts) = (schema(base.0), schema(target.0));
    let (bp, tp) = (policies(base.1), policies(target.1));
    compare(
        CedarSide {
            schema: &bs,
            policies: &bp,
        },
        CedarSide {
            schema: &ts,
            policies: &tp,
        },
        &settings(),
    )
    .expect("the comparison runs")
}

fn verdicts(c: &PolicySetComparison) -> Vec<(&str, Verdict)> {
    c.actions
        .iter()
        .map(|a| (a.action.as_str(), a.verdict))
        .collect()
}

#[test]
fn a_new_action_is_added_and_the_others_are_compared_on_the_target_schema() {
    let wider = SCHEMA.replace("\"read\", \"write\"", "\"read\", \"write\", \"export\"");
    let target = format!(
        "{BASE}\npermit(principal, action == Accord::Action::\"export\", resource) \
         when {{ context.purpose == \"TREAT\" }};"
    );
    let c = compare_schemas((SCHEMA, BASE), (&wider, &target));
    assert!(c.schema_changed);
    assert_eq!(
        verdicts(&c),
        vec![
            ("Accord::Action::\"export\"", Verdict::Added),
            ("Accord::Action::\"read\"", Verdict::Equivalent),
            ("Accord::Action::\"write\"", Verdict::Equivalent),
        ]
    );
    assert!(action(&c, "export").newly_allowed.is_none());
}

#[test]
fn base_policies_that_do_not_type_on_the_target_schema_leave_the_action_undecided() {
    // `write` is gone: the base's write policy names an action the target schema lacks.
    let narrower = SCHEMA.replace("\"read\", \"write\"", "\"read\"");
    let target = BASE
        .lines()
        .filter(|l| !l.contains("\"write\""))
        .collect::<Vec<_>>()
        .join("\n");
    let c = compare_schemas((SCHEMA, BASE), (&narrower, &target));
    assert_eq!(
        verdicts(&c),
        vec![
            ("Accord::Action::\"read\"", Verdict::Undecided),
            ("Accord::Action::\"write\"", Verdict::Removed),
        ]
    );
    let read = action(&c, "read");
    for d in [&read.newly_allowed, &read.newly_denied] {
        let d = direction(d);
        assert_eq!(d.result, Finding::Error);
        let detail = d.detail.as_deref().unwrap_or("");
        assert!(
            detail.starts_with("the base policies on the target's schema: "),
            "{detail}"
        );
    }
}

#[test]
fn called_from_an_async_task_the_comparison_still_runs() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let s = schema(SCHEMA);
    let b = policies(BASE);
    let side = CedarSide {
        schema: &s,
        policies: &b,
    };
    let settings = settings();
    let c = runtime
        .block_on(async { compare(side, side, &settings) })
        .expect("runs");
    assert!(
        c.actions.iter().all(|a| a.verdict == Verdict::Equivalent),
        "{c:#?}"
    );
}

#[test]
fn verdicts_follow_the_two_directions() {
    use Finding::*;
    assert_eq!(verdict(None, None), Verdict::Equivalent);
    assert_eq!(verdict(None, Found), Verdict::Stricter);
    assert_eq!(verdict(Found, None), Verdict::Looser);
    assert_eq!(verdict(Found, Found), Verdict::Incomparable);
    assert_eq!(verdict(Found, Timeout), Verdict::Undecided);
    assert_eq!(verdict(Error, None), Verdict::Undecided);
}
