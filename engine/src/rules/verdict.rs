//! Checks what a module returned and turns it into reasons, obligations or errors.

use super::native::{Answer, Verdict};
use super::{RuleModule, Stage};
use crate::decision::{DecisionBuilder, Obligation, ObligationWhen, Reason, RuleEffect};
use crate::transaction::{AccessRequest, Timestamp};
use rhai::{Dynamic, Map};
use serde_json::Value;
use std::collections::BTreeMap;

/// Adds what a module answered to `builder`: [`collect`] for a Rhai value, and verdicts the native
/// evaluator kept apart checked alike, as the maps Rhai would hold.
pub(super) fn collect_answer(
    module: &RuleModule,
    answer: Answer<'_>,
    request: &AccessRequest,
    builder: &mut DecisionBuilder,
) {
    match answer {
        Answer::Nothing => {}
        Answer::Value(value) => collect(module, value, request, builder),
        Answer::Verdicts(verdicts) => {
            for (index, verdict) in verdicts.into_iter().enumerate() {
                if let Err(problem) = add_built(module, verdict, request, builder) {
                    builder.error(
                        module.id.clone(),
                        format!("{}: verdict {index}: {problem}", module.path),
                    );
                }
            }
        }
    }
}

/// Adds every verdict of `value` to `builder`; any malformed verdict is an error for the module.
pub(super) fn collect(
    module: &RuleModule,
    value: Dynamic,
    request: &AccessRequest,
    builder: &mut DecisionBuilder,
) {
    let type_name = value.type_name();
    let Some(items) = value.try_cast::<rhai::Array>() else {
        builder.error(
            module.id.clone(),
            format!(
                "{}: evaluate must return an array of verdicts, not {type_name}",
                module.path
            ),
        );
        return;
    };
    for (index, item) in items.into_iter().enumerate() {
        if let Err(problem) = add(module, item, request, builder) {
            builder.error(
                module.id.clone(),
                format!("{}: verdict {index}: {problem}", module.path),
            );
        }
    }
}

fn text(map: &Map, key: &str) -> Result<String, String> {
    match map.get(key) {
        Some(v) if v.is_string() => {
            // Read in place: the map is this verdict's own, dropped afterwards.
            let s = v
                .read_lock::<rhai::ImmutableString>()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default();
            filled(key, s)
        }
        Some(v) => Err(format!("`{key}` must be a string, not {}", v.type_name())),
        None => Err(format!("missing `{key}`")),
    }
}

/// A verdict's string `key`, which must not be blank.
fn filled(key: &str, s: String) -> Result<String, String> {
    if s.trim().is_empty() {
        Err(format!("`{key}` must not be empty"))
    } else {
        Ok(s)
    }
}

/// A rule verdict's effect, where the module's stage allows one.
fn rule_effect(module: &RuleModule, effect: &str) -> Result<RuleEffect, String> {
    if module.stage == Stage::Obligations {
        return Err(format!(
            "a `{effect}` verdict from a module declared `obligations_only`; it may only attach obligations"
        ));
    }
    Ok(if effect == "deny" {
        RuleEffect::Deny
    } else {
        RuleEffect::Permit
    })
}

/// [`add`] for a verdict the native evaluator built: the same checks, in the same order, on the
/// parts of the map it stands for.
fn add_built(
    module: &RuleModule,
    verdict: Verdict<'_>,
    request: &AccessRequest,
    builder: &mut DecisionBuilder,
) -> Result<(), String> {
    match verdict {
        Verdict::Rule {
            deny,
            rule,
            citation,
            message,
        } => {
            let effect = rule_effect(module, if deny { "deny" } else { "permit" })?;
            builder.reason(Reason {
                module: module.id.clone(),
                rule: filled("rule", rule.into_owned())?,
                effect,
                citation: filled("citation", citation.into_owned())?,
                message: filled("message", message.into_owned())?,
            });
            Ok(())
        }
        Verdict::Obligation {
            kind,
            citation,
            details,
        } => {
            let kind = filled("kind", kind.into_owned())?;
            let citation = filled("citation", citation.into_owned())?;
            add_obligation(module, kind, citation, &details, request, builder)
        }
    }
}

fn add(
    module: &RuleModule,
    item: Dynamic,
    request: &AccessRequest,
    builder: &mut DecisionBuilder,
) -> Result<(), String> {
    let type_name = item.type_name();
    let Some(map) = item.try_cast::<Map>() else {
        return Err(format!("a verdict must be a map, not {type_name}"));
    };
    let effect = text(&map, "effect")?;
    match effect.as_str() {
        "deny" | "permit" => {
            let effect_of_rule = rule_effect(module, &effect)?;
            let rule = text(&map, "rule")?;
            let citation = text(&map, "citation")?;
            let message = text(&map, "message")?;
            if let Some(extra) = map
                .keys()
                .find(|k| !matches!(k.as_str(), "effect" | "rule" | "citation" | "message"))
            {
                return Err(format!("unexpected key `{extra}` in a {effect} verdict"));
            }
            builder.reason(Reason {
                module: module.id.clone(),
                rule,
                effect: effect_of_rule,
                citation,
                message,
            });
            Ok(())
        }
        "obligation" => {
            let kind = text(&map, "kind")?;
            let citation = text(&map, "citation")?;
            add_obligation(module, kind, citation, &map, request, builder)
        }
        other => Err(format!(
            "`effect` must be `deny`, `permit` or `obligation`, not `{other}`"
        )),
    }
}

/// An obligation verdict of `kind` and `citation`, whose other keys are `map`'s (its `effect`,
/// `kind` and `citation`, if any, are not read).
fn add_obligation(
    module: &RuleModule,
    kind: String,
    citation: String,
    map: &Map,
    request: &AccessRequest,
    builder: &mut DecisionBuilder,
) -> Result<(), String> {
    let rule = match map.get("rule") {
        Some(_) => text(map, "rule")?,
        None => kind.clone(),
    };
    let when = match map.get("when") {
        None => ObligationWhen::Allow,
        Some(_) => {
            let text = text(map, "when")?;
            ObligationWhen::parse(&text).ok_or_else(|| {
                format!("`when` must be `allow`, `deny` or `always`, not `{text}`")
            })?
        }
    };
    let mut details = BTreeMap::new();
    for (key, value) in map {
        if matches!(
            key.as_str(),
            "effect" | "kind" | "citation" | "rule" | "when"
        ) {
            continue;
        }
        // A detail that is `()` (e.g. a parameter no jurisdiction defines) is left out.
        if value.is_unit() {
            continue;
        }
        // The engine sets these itself; a module may not forge them.
        if matches!(key.as_str(), "module" | "deadline") {
            return Err(format!("`{key}` is set by the engine, not by a module"));
        }
        details.insert(
            key.as_str().to_owned(),
            to_json(value).map_err(|e| format!("`{key}`: {e}"))?,
        );
    }
    if let Some(hours) = details.get("within_hours") {
        let hours = hours
            .as_i64()
            .filter(|h| *h >= 0)
            .ok_or("`within_hours` must be a non-negative integer")?;
        let deadline = hours
            .checked_mul(3600)
            .and_then(|s| request.timestamp.unix().checked_add(s))
            .and_then(Timestamp::format_unix)
            .ok_or("`within_hours` puts the deadline out of range")?;
        details.insert("deadline".into(), Value::from(deadline));
    }
    builder.obligation_when(
        when,
        Obligation {
            kind,
            citation,
            module: module.id.clone(),
            rule,
            details,
        },
    );
    Ok(())
}

/// Converts an obligation detail: strings, integers, booleans, and arrays of them.
fn to_json(value: &Dynamic) -> Result<Value, String> {
    if let Some(s) = value.read_lock::<rhai::ImmutableString>() {
        return Ok(Value::from(s.as_str()));
    }
    if let Ok(i) = value.as_int() {
        return Ok(Value::from(i));
    }
    if let Ok(b) = value.as_bool() {
        return Ok(Value::from(b));
    }
    if let Some(items) = value.clone().try_cast::<rhai::Array>() {
        return items
            .iter()
            .map(to_json)
            .collect::<Result<Vec<_>, _>>()
            .map(Value::from);
    }
    Err(format!(
        "must be a string, integer, boolean or array of them, not {}",
        value.type_name()
    ))
}
