//! Explaining a decision reaches the decision deciding reaches, on every case of the default
//! bundle, and every reason it gives can be traced to what the explanation shows: a satisfied
//! Cedar policy, a Rhai module's verdict, or the engine's own "no permit".

use accord_engine::cases::case_inputs;
use accord_engine::cedar::PolicyOutcome;
use accord_engine::rules::ModuleRun;
use accord_engine::Bundle;
use std::path::Path;

fn default_bundle() -> Bundle {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    Bundle::load(&dir).unwrap_or_else(|e| panic!("default bundle loads: {e}"))
}

#[test]
fn explaining_decides_as_deciding_and_traces_every_reason() {
    let bundle = default_bundle();
    let inputs = case_inputs(&bundle);
    assert!(inputs.len() >= 150, "only {} cases", inputs.len());
    for input in &inputs {
        let label = format!("{} :: {}", input.file, input.name);
        let explanation = bundle.explain(&input.request, &input.registry, 7);
        let decision = bundle.decide(&input.request, &input.registry, 7);
        assert_eq!(explanation.decision, decision, "{label}");
        for reason in &decision.reasons {
            let id = format!("{}#{}", reason.module, reason.rule);
            let by_cedar = explanation.cedar.as_ref().is_some_and(|c| {
                c.policies
                    .iter()
                    .any(|p| p.id == id && p.outcome == PolicyOutcome::Satisfied)
            });
            let by_module = explanation.modules.iter().any(|t| match &t.run {
                ModuleRun::Ran { verdicts, .. } => verdicts.contains(reason),
                ModuleRun::NotApplicable(_) => false,
            });
            assert!(
                by_cedar || by_module || reason.module == "accord",
                "{label}: reason {id} is in no trace"
            );
        }
        // The text renders whatever the case.
        let text = explanation.to_string();
        assert!(
            text.contains(&format!("decision: {}", decision.decision)),
            "{label}"
        );
    }
}
