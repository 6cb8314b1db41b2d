//! `accord validate` on a copy of the default bundle with one mistake a compliance officer could
//! make: each is reported, naming file and place, before the bundle is ever proposed; and
//! `accord test` / `accord check` deny where a mistake reaches a decision.

use crate::common::{accord, copy_dir, root, stderr, stdout};
use std::path::PathBuf;

struct Copy {
    _dir: tempfile::TempDir,
    policies: PathBuf,
}

impl Copy {
    fn new() -> Copy {
        let dir = tempfile::tempdir().expect("temp dir");
        copy_dir(&root().join("policies"), &dir.path().join("policies"));
        copy_dir(
            &root().join("jurisdictions"),
            &dir.path().join("jurisdictions"),
        );
        let policies = dir.path().join("policies");
        Copy {
            _dir: dir,
            policies,
        }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.policies.join(file)
    }

    fn edit(&self, file: &str, edit: impl FnOnce(String) -> String) {
        let path = self.path(file);
        let before = std::fs::read_to_string(&path).expect("read");
        let after = edit(before.clone());
        assert_ne!(before, after, "{file} unchanged");
        std::fs::write(path, after).expect("write");
    }

    fn write(&self, file: &str, text: &str) {
        std::fs::write(self.path(file), text).expect("write");
    }

    /// Adds a Rhai module `test/record-count` that denies past 1000 records.
    fn with_record_count_module(&self, declared: &str) {
        self.edit("manifest.yaml", |m| {
            m.replacen(
                "modules:\n",
                "modules:\n  - id: test/record-count\n    kind: rhai\n    file: rhai/record-count.rhai\n    regimes: [HIPAA]\n    citation: \"45 CFR 164.502(b)\"\n",
                1,
            )
            .replacen("attributes:\n  context:\n", &format!("attributes:\n  context:\n    record_count: {declared}\n"), 1)
        });
        self.write(
            "rhai/record-count.rhai",
            "fn evaluate(tx, env) {\n    if tx.context.attributes.record_count > 1000 {\n        return [deny(\"bulk\", \"45 CFR 164.502(b)\", \"more than 1000 records\")];\n    }\n    []\n}\n",
        );
    }

    fn validate(&self, extra: &[&str]) -> (Option<i32>, String, String) {
        let dir = self.policies.display().to_string();
        let mut args = vec!["validate"];
        args.extend(extra);
        args.push(&dir);
        let o = accord(&args);
        (o.status.code(), stdout(&o), stderr(&o))
    }
}

fn errors(err: &str) -> Vec<&str> {
    err.lines().filter(|l| l.starts_with("error: ")).collect()
}

#[test]
fn a_string_record_count_is_a_deny_with_the_field_named() {
    let copy = Copy::new();
    copy.with_record_count_module("integer");
    let (code, out, err) = copy.validate(&[]);
    assert_eq!(code, Some(0), "{out}{err}");
    let dir = tempfile::tempdir().expect("temp");
    let tx = std::fs::read_to_string(root().join("examples/treatment-read.json")).expect("tx");
    for (value, needle) in [
        ("5000", "\"rule\":\"bulk\""),
        (
            "\"5000\"",
            "field `context.attributes.record_count`: must be an integer",
        ),
    ] {
        let text = tx.replacen(
            "\"context\": {",
            &format!("\"context\": {{\n  \"attributes\": {{ \"record_count\": {value} }},"),
            1,
        );
        assert_ne!(text, tx);
        let path = dir.path().join("tx.json");
        std::fs::write(&path, text).expect("write");
        let o = accord(&[
            "check",
            &path.display().to_string(),
            "--policies",
            &copy.policies.display().to_string(),
        ]);
        assert_eq!(o.status.code(), Some(1), "{value}: {}", stdout(&o));
        assert!(stdout(&o).contains(needle), "{value}: {}", stdout(&o));
    }
}

#[test]
fn misspelt_functions_fields_and_attributes_are_errors_with_suggestions() {
    let copy = Copy::new();
    copy.with_record_count_module("integer");
    copy.edit("rhai/record-count.rhai", |t| {
        t.replace(
            "    []\n}",
            "    if parm(\"US\", \"review_hours\") == 1 { return []; }\n    if tx.actor.jurisdction == \"US\" { return []; }\n    if env.consent_withdrawn_typo == true { return []; }\n    if tx.context.attributes.recordcount == 1 { return []; }\n    []\n}",
        )
    });
    let (code, out, err) = copy.validate(&[]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert_eq!(
        errors(&err),
        [
            "error: rhai/record-count.rhai: line 5, column 8: unknown function `parm` with 2 arguments (did you mean `param`?)",
            "error: rhai/record-count.rhai: line 6, column 10: `tx.actor` has no field `jurisdction` (did you mean `jurisdiction`?)",
            "error: rhai/record-count.rhai: line 7, column 11: `env` has no field `consent_withdrawn_typo` (did you mean `consent_withdrawn`?)",
            "error: rhai/record-count.rhai: line 8, column 10: reads `tx.context.attributes.recordcount`, which manifest.yaml does not declare (add it with its type under `attributes.context`) (did you mean `record_count`?)",
        ],
        "{err}"
    );
    assert!(err.contains("invalid: policy bundle"), "{err}");
}

#[test]
fn a_dead_consent_rule_fails_validation_though_every_case_passes() {
    let copy = Copy::new();
    copy.edit("rhai/gdpr-data-subject-rights.rhai", |t| {
        t.replacen("env.consent_withdrawn", "env.consent_withdrawn_typo", 1)
    });
    let (code, _, err) = copy.validate(&[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(
            "`env` has no field `consent_withdrawn_typo` (did you mean `consent_withdrawn`?)"
        ),
        "{err}"
    );
    // The bundle cannot even be loaded to run its cases.
    let o = accord(&["test", &copy.policies.display().to_string()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("consent_withdrawn_typo"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn manifest_and_file_mistakes_are_errors() {
    let copy = Copy::new();
    copy.edit("manifest.yaml", |m| {
        m.replacen("purposes: [HMARKT]", "purposes: [TRAET]", 1)
    });
    let (code, _, err) = copy.validate(&[]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("].purposes[0]`: `TRAET` is not an HL7 v3 PurposeOfUse code, so the module would never run (did you mean `TREAT`?)")
            && err.contains("field `modules["),
        "{err}"
    );

    let copy = Copy::new();
    copy.write(
        "cedar/forgotten.cedar",
        "@id(\"x\") @citation(\"c\") @message(\"m\")\nforbid (principal, action, resource);\n",
    );
    let (code, _, err) = copy.validate(&[]);
    assert_eq!(code, Some(1));
    assert_eq!(
        errors(&err),
        ["error: cedar/forgotten.cedar: not named in manifest.yaml: Cedar policies the engine never loads"],
        "{err}"
    );
}

#[test]
fn an_impossible_forbid_is_a_warning_that_deny_warnings_fails() {
    let copy = Copy::new();
    copy.edit("cedar/part2.cedar", |t| {
        t + "\n@id(\"never\")\n@citation(\"42 CFR 2.13\")\n@message(\"m\")\nforbid (principal, action, resource)\nwhen { context.regimes.contains(\"42-CFR-Part-2\") && false };\n"
    });
    let (code, out, err) = copy.validate(&[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("ok: bundle accord-default"), "{out}");
    assert!(
        err.lines().any(
            |l| l.starts_with("warning: cedar/part2.cedar: policy `never`: line ")
                && l.contains("policy is impossible")
        ),
        "{err}"
    );
    let (code, _, err) = copy.validate(&["--deny-warnings"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("(--deny-warnings)"), "{err}");
}

#[test]
fn cedar_type_errors_and_unqualified_actions_name_line_column_and_help() {
    let copy = Copy::new();
    copy.edit("cedar/part2.cedar", |t| {
        t + "\n@id(\"typed\")\n@citation(\"c\")\n@message(\"m\")\nforbid (principal, action == Action::\"read\", resource)\nwhen { context.break_glass == \"yes\" };\n"
    });
    let (code, _, err) = copy.validate(&[]);
    assert_eq!(code, Some(1));
    let found = errors(&err);
    assert_eq!(found.len(), 1, "{err}");
    assert!(
        found[0].starts_with("error: cedar/part2.cedar: policy `typed`: line ")
            && found[0].contains("(help: did you mean `Accord::Action::\"read\"`?)"),
        "{err}"
    );
    copy.edit("cedar/part2.cedar", |t| {
        t.replace(
            "action == Action::\"read\"",
            "action == Accord::Action::\"read\"",
        )
    });
    let (_, _, err) = copy.validate(&[]);
    let found = errors(&err);
    assert!(
        found.len() == 1
            && found[0].starts_with("error: cedar/part2.cedar: policy `typed`: line ")
            && found[0].contains(
                ": the types Bool and String are not compatible (help: for policy `part2/emergency#typed`, both operands to a `==` expression must have compatible types"
            ),
        "{err}"
    );
}

#[test]
fn runaway_modules_deny_naming_the_limit() {
    let copy = Copy::new();
    copy.with_record_count_module("integer");
    copy.write(
        "rhai/record-count.rhai",
        "fn evaluate(tx, env) {\n    let n = 0;\n    while true { n += 1; }\n    []\n}\n",
    );
    let o = accord(&[
        "check",
        &root()
            .join("examples/treatment-read.json")
            .display()
            .to_string(),
        "--policies",
        &copy.policies.display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("rhai/record-count.rhai: sandbox limit: more than 100000 operations (a loop that does not end?); the module's loops: line 3 (loop or while)"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn an_expectation_naming_no_rule_is_an_error() {
    let copy = Copy::new();
    copy.edit("tests/part2.yaml", |t| {
        t.replacen("absent_rules: [", "absent_rules: [no-such-rule, ", 1)
    });
    let (code, _, err) = copy.validate(&[]);
    assert_eq!(code, Some(1), "{err}");
    let found = errors(&err);
    assert_eq!(found.len(), 1, "{err}");
    assert!(
        found[0].contains(".expect.absent_rules[0]: no policy or module has a rule `no-such-rule`"),
        "{err}"
    );
}
