//! Rule coverage: which rules the test cases made determine a decision (`accord test --coverage`).
//!
//! A rule *determines* a decision when it is one of the decision's reasons: a permit when the
//! decision is allow, a forbid or deny when it is deny. So each rule has a side to be exercised
//! on: a Cedar `permit` the allow side, a Cedar `forbid` the deny side, and a Rhai rule id each
//! side its module can give it (`permit("id", ..)` the allow side, `deny("id", ..)` the deny side;
//! one id given both ways needs a case on each side). The Rhai rule ids are read from each module's
//! source: the first argument of every `permit` and `deny` call. An id built at run time from a
//! literal prefix (`permit("marketing-" + exception, ..)`) is the pattern `marketing-*`, covered by
//! any rule id with that prefix.
//!
//! The obligations each module can attach (`obligation("kind", ..)`, whose rule is the `rule` of
//! its details, else the kind) are reported beside, as attached by some allow or not; they decide
//! nothing, so they do not count in the percentage.

use super::CaseResult;
use crate::bundle::{Bundle, ModuleKind};
use crate::decision::{Decision, Effect, RuleEffect};
use rhai::{ASTNode, Expr, Stmt};
use std::collections::BTreeMap;

/// Which decision a rule is exercised on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Side {
    /// A permit among the reasons of an allow.
    Allow,
    /// A forbid or deny among the reasons of a deny.
    Deny,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Allow => "allow",
            Side::Deny => "deny",
        }
    }

    fn of(effect: RuleEffect) -> Side {
        match effect {
            RuleEffect::Permit => Side::Allow,
            RuleEffect::Deny => Side::Deny,
        }
    }
}

/// The language a rule is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Language {
    Cedar,
    Rhai,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Cedar => "cedar",
            Language::Rhai => "rhai",
        }
    }
}

/// One side of one rule, and the cases that exercised it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoverageItem {
    pub module: String,
    /// The rule id; for an id built at run time, its literal prefix followed by `*`.
    pub rule: String,
    pub language: Language,
    /// The file of the module.
    pub path: String,
    pub side: Side,
    /// How many cases exercised it.
    pub cases: usize,
    /// The first of them, as `file :: name`.
    pub first_case: Option<String>,
}

impl CoverageItem {
    pub fn covered(&self) -> bool {
        self.cases > 0
    }

    /// `module#rule`.
    pub fn id(&self) -> String {
        format!("{}#{}", self.module, self.rule)
    }

    fn matches(&self, module: &str, rule: &str) -> bool {
        module == self.module
            && match self.rule.strip_suffix('*') {
                Some(prefix) if self.language == Language::Rhai => rule.starts_with(prefix),
                _ => rule == self.rule,
            }
    }
}

/// What the cases exercised of a bundle's rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Every side of every rule, by module, rule and side.
    pub items: Vec<CoverageItem>,
    /// The obligations each module can attach (side [`Side::Allow`]); not counted in
    /// [`percent`](Coverage::percent).
    pub obligations: Vec<CoverageItem>,
    /// Rhai modules whose source could not be read for rule ids.
    pub problems: Vec<String>,
}

impl Coverage {
    /// The rules of `bundle` and which of `results` exercised each.
    pub fn of(bundle: &Bundle, results: &[CaseResult]) -> Coverage {
        let mut coverage = Coverage::default();
        for (_, meta) in bundle.cedar().policies() {
            coverage.items.push(CoverageItem {
                module: meta.module.clone(),
                rule: meta.rule.clone(),
                language: Language::Cedar,
                path: meta.path.clone(),
                side: Side::of(meta.effect),
                cases: 0,
                first_case: None,
            });
        }
        for module in &bundle.manifest().modules {
            if module.kind != ModuleKind::Rhai {
                continue;
            }
            let text = bundle
                .files()
                .get(&module.file)
                .and_then(|b| std::str::from_utf8(b).ok());
            let Some(text) = text else {
                coverage
                    .problems
                    .push(format!("{}: not in the bundle or not UTF-8", module.file));
                continue;
            };
            match rhai_rules(text) {
                Ok(found) => {
                    let item = |rule: String, side| CoverageItem {
                        module: module.id.clone(),
                        rule,
                        language: Language::Rhai,
                        path: module.file.clone(),
                        side,
                        cases: 0,
                        first_case: None,
                    };
                    for (rule, effect) in found.verdicts {
                        coverage.items.push(item(rule, Side::of(effect)));
                    }
                    for rule in found.obligations {
                        coverage.obligations.push(item(rule, Side::Allow));
                    }
                }
                Err(e) => coverage.problems.push(format!("{}: {e}", module.file)),
            }
        }
        let key = |i: &CoverageItem| (i.module.clone(), i.rule.clone(), i.side);
        coverage.items.sort_by_key(key);
        coverage.items.dedup_by_key(|i| key(i));
        coverage.obligations.sort_by_key(key);
        coverage.obligations.dedup_by_key(|i| key(i));
        for result in results {
            if let Some(decision) = &result.decision {
                coverage.record(&format!("{} :: {}", result.file, result.name), decision);
            }
        }
        coverage
    }

    /// Counts what `decision` exercised.
    fn record(&mut self, case: &str, decision: &Decision) {
        let side = match decision.decision {
            Effect::Allow => Side::Allow,
            Effect::Deny => Side::Deny,
        };
        let hit = |item: &mut CoverageItem| {
            item.cases += 1;
            if item.first_case.is_none() {
                item.first_case = Some(case.to_owned());
            }
        };
        for item in self.items.iter_mut().filter(|i| i.side == side) {
            let effect = match side {
                Side::Allow => RuleEffect::Permit,
                Side::Deny => RuleEffect::Deny,
            };
            if decision
                .reasons
                .iter()
                .any(|r| r.effect == effect && item.matches(&r.module, &r.rule))
            {
                hit(item);
            }
        }
        for item in &mut self.obligations {
            if decision
                .obligations
                .iter()
                .any(|o| item.matches(&o.module, &o.rule))
            {
                hit(item);
            }
        }
    }

    /// How many rule sides some case exercised.
    pub fn exercised(&self) -> usize {
        self.items.iter().filter(|i| i.covered()).count()
    }

    /// Exercised rule sides as a percentage of all (100 when the bundle has no rules).
    pub fn percent(&self) -> f64 {
        if self.items.is_empty() {
            100.0
        } else {
            self.exercised() as f64 * 100.0 / self.items.len() as f64
        }
    }

    /// The rules (`module#rule`) no case exercised on any side, sorted.
    pub fn never_exercised(&self) -> Vec<String> {
        let mut by_rule: BTreeMap<String, bool> = BTreeMap::new();
        for item in &self.items {
            *by_rule.entry(item.id()).or_default() |= item.covered();
        }
        by_rule
            .into_iter()
            .filter(|(_, covered)| !covered)
            .map(|(id, _)| id)
            .collect()
    }
}

/// The rule ids a Rhai module's source gives verdicts and obligations.
#[derive(Debug, Default, PartialEq, Eq)]
struct RhaiRules {
    verdicts: Vec<(String, RuleEffect)>,
    obligations: Vec<String>,
}

/// Reads every `permit(rule, ..)`, `deny(rule, ..)` and `obligation(kind, ..)` call of a module.
fn rhai_rules(text: &str) -> Result<RhaiRules, String> {
    let mut engine = rhai::Engine::new_raw();
    // Unoptimised: constant calls stay calls, and nothing is folded away.
    engine.set_optimization_level(rhai::OptimizationLevel::None);
    // The bundle compiled this module under the sandbox's limits already; no limit here.
    engine.set_max_expr_depths(0, 0);
    let ast = engine.compile(text).map_err(|e| e.to_string())?;
    let mut found = RhaiRules::default();
    ast.walk(&mut |path: &[ASTNode]| {
        let call = match path.last() {
            Some(ASTNode::Expr(Expr::FnCall(call, _))) => call,
            Some(ASTNode::Stmt(Stmt::FnCall(call, _))) => call,
            _ => return true,
        };
        if !call.namespace.is_empty() || call.op_token.is_some() {
            return true;
        }
        let first = call.args.first().map(rule_pattern);
        match (call.name.as_str(), call.args.len(), first) {
            ("permit", 3, Some(rule)) => found.verdicts.push((rule, RuleEffect::Permit)),
            ("deny", 3, Some(rule)) => found.verdicts.push((rule, RuleEffect::Deny)),
            ("obligation", 2 | 3, Some(kind)) => {
                let rule = call
                    .args
                    .get(2)
                    .and_then(|details| match details {
                        Expr::Map(map, _) => map
                            .0
                            .iter()
                            .find(|(name, _)| name.name == "rule")
                            .map(|(_, value)| rule_pattern(value)),
                        _ => None,
                    })
                    .unwrap_or(kind);
                found.obligations.push(rule);
            }
            _ => {}
        }
        true
    });
    Ok(found)
}

/// A rule id as written: a literal, or the literal prefix of an id built at run time and `*`.
fn rule_pattern(expr: &Expr) -> String {
    match expr {
        Expr::StringConstant(s, _) => s.to_string(),
        Expr::FnCall(call, _) if call.op_token.is_some() && call.name == "+" => {
            let prefix = call.args.first().map(rule_pattern).unwrap_or_default();
            format!("{}*", prefix.trim_end_matches('*'))
        }
        Expr::InterpolatedString(parts, _) => match parts.first() {
            Some(Expr::StringConstant(s, _)) => format!("{s}*"),
            _ => "*".into(),
        },
        _ => "*".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_come_from_literal_and_prefixed_calls() {
        let found = rhai_rules(
            r#"
            fn helper(x) { deny("from-helper", "c", "m") }
            fn evaluate(tx, env) {
                if tx.action == "read" { return [permit("both", "c", "m")]; }
                let kind = "x";
                let out = [deny("both", "c", "m"), permit("prefix-" + kind, "c", "m")];
                out.push(obligation("audit", "c", #{ within_hours: 1 }));
                out.push(obligation("notify", "c", #{ rule: "notify-late" }));
                out.push(deny(kind, "c", "m"));
                out
            }
            "#,
        )
        .expect("compiles");
        let mut verdicts = found.verdicts.clone();
        verdicts.sort();
        assert_eq!(
            verdicts,
            vec![
                ("*".to_owned(), RuleEffect::Deny),
                ("both".to_owned(), RuleEffect::Permit),
                ("both".to_owned(), RuleEffect::Deny),
                ("from-helper".to_owned(), RuleEffect::Deny),
                ("prefix-*".to_owned(), RuleEffect::Permit),
            ]
        );
        assert_eq!(found.obligations, vec!["audit", "notify-late"]);
    }

    #[test]
    fn a_pattern_matches_by_prefix_in_its_module_only() {
        let item = CoverageItem {
            module: "m".into(),
            rule: "marketing-*".into(),
            language: Language::Rhai,
            path: "rhai/m.rhai".into(),
            side: Side::Allow,
            cases: 0,
            first_case: None,
        };
        assert!(item.matches("m", "marketing-face-to-face"));
        assert!(!item.matches("n", "marketing-face-to-face"));
        assert!(!item.matches("m", "other"));
        let cedar = CoverageItem {
            language: Language::Cedar,
            rule: "a*".into(),
            ..item
        };
        assert!(cedar.matches("m", "a*"));
        assert!(!cedar.matches("m", "ab"), "a Cedar @id is never a pattern");
    }
}
