//! A verdict the rule API's `deny`, `permit` and `obligation` built during evaluation. In Rhai it is
//! a map; the evaluator keeps its parts apart until something reads it as a map (a property, a
//! key test, a property set, a container of Rhai values), where [`Verdict::into_map`] gives the
//! map Rhai would hold. An answer made of verdicts alone reaches the decision without the map
//! (`rules::verdict::collect_native`).

use super::value::dynamic_size;
use crate::rules::api;
use rhai::{Dynamic, ImmutableString, Map};
use std::borrow::Cow;

#[derive(Clone)]
pub(in crate::rules) enum Verdict<'a> {
    /// `deny(rule, citation, message)` (`deny` true) or `permit(…)`.
    Rule {
        deny: bool,
        rule: Cow<'a, str>,
        citation: Cow<'a, str>,
        message: Cow<'a, str>,
    },
    /// `obligation(kind, citation, details)`: `details` as the module passed them (it may name
    /// the keys the call sets; the call's win), or those of a constant, read in place.
    Obligation {
        kind: Cow<'a, str>,
        citation: Cow<'a, str>,
        details: Cow<'a, Map>,
    },
}

/// The keys `obligation` sets over the details.
const OBLIGATION_KEYS: [&str; 3] = ["effect", "kind", "citation"];

impl Verdict<'static> {
    /// The verdict a constant map is (what the optimizer folds a call of `deny`, `permit` or
    /// `obligation` with constant arguments to): a plain map with a string `effect` of `deny` or
    /// `permit` and string `rule`, `citation` and `message`, nothing else; or with `effect`
    /// `obligation` and string `kind` and `citation`. `None` for any other value.
    pub(super) fn of_constant(value: &Dynamic) -> Option<Verdict<'static>> {
        if value.is_shared() || value.is_read_only() {
            return None;
        }
        let map = value.read_lock::<Map>()?;
        let text = |key: &str| -> Option<Cow<'static, str>> {
            let v = map.get(key)?;
            if v.is_shared() {
                return None;
            }
            let s = v.read_lock::<ImmutableString>()?;
            Some(Cow::Owned(s.as_str().to_owned()))
        };
        let effect = text("effect")?;
        match effect.as_ref() {
            "deny" | "permit" if map.len() == 4 => Some(Verdict::Rule {
                deny: effect == "deny",
                rule: text("rule")?,
                citation: text("citation")?,
                message: text("message")?,
            }),
            "obligation" => {
                let (kind, citation) = (text("kind")?, text("citation")?);
                let mut details = map.clone();
                for key in OBLIGATION_KEYS {
                    details.remove(key);
                }
                Some(Verdict::Obligation {
                    kind,
                    citation,
                    details: Cow::Owned(details),
                })
            }
            _ => None,
        }
    }
}

impl<'p> Verdict<'p> {
    /// The verdict, its strings read in place.
    pub(super) fn borrowed(&self) -> Verdict<'_> {
        match self {
            Verdict::Rule {
                deny,
                rule,
                citation,
                message,
            } => Verdict::Rule {
                deny: *deny,
                rule: Cow::Borrowed(rule),
                citation: Cow::Borrowed(citation),
                message: Cow::Borrowed(message),
            },
            Verdict::Obligation {
                kind,
                citation,
                details,
            } => Verdict::Obligation {
                kind: Cow::Borrowed(kind),
                citation: Cow::Borrowed(citation),
                details: Cow::Borrowed(&**details),
            },
        }
    }

    /// The map Rhai's rule API returns for the same call.
    pub(in crate::rules) fn into_map(self) -> Map {
        match self {
            Verdict::Rule {
                deny,
                rule,
                citation,
                message,
            } => api::verdict(
                if deny { "deny" } else { "permit" },
                &rule,
                &citation,
                &message,
            ),
            Verdict::Obligation {
                kind,
                citation,
                details,
            } => api::obligation(&kind, &citation, details.into_owned()),
        }
    }

    /// Whether the map holds `key`.
    pub(super) fn has_key(&self, key: &str) -> bool {
        match self {
            Verdict::Rule { .. } => matches!(key, "effect" | "rule" | "citation" | "message"),
            Verdict::Obligation { details, .. } => {
                OBLIGATION_KEYS.contains(&key) || details.contains_key(key)
            }
        }
    }

    /// The map's weight in Rhai's data-size check (`value::size` of the map).
    pub(super) fn size(&self) -> usize {
        match self {
            Verdict::Rule {
                deny,
                rule,
                citation,
                message,
            } => {
                let effect = if *deny { "deny" } else { "permit" };
                4 + effect.len() + rule.len() + citation.len() + message.len()
            }
            Verdict::Obligation {
                kind,
                citation,
                details,
            } => {
                let own: usize = details
                    .iter()
                    .filter(|(k, _)| !OBLIGATION_KEYS.contains(&k.as_str()))
                    .map(|(_, v)| 1 + dynamic_size(v))
                    .sum();
                own + 3 + "obligation".len() + kind.len() + citation.len()
            }
        }
    }
}
