//! What a careful reviewer checks in a module before it can decide anything, found in its AST:
//!
//! - every function it calls exists: one of its own, the rule API, or Rhai's standard library, with
//!   that many arguments (a misspelt `parm(...)` would otherwise fail, or deny, only when reached);
//! - every path it reads below `tx` and `env` is a field the engine provides (a misspelt
//!   `tx.actor.jurisdction` reads `()`, a rule that never fires);
//! - every attribute it reads under `tx.context.attributes` or `tx.actor.attributes` is declared,
//!   with its type, in the manifest's `attributes` (so the engine type-checks it on every request);
//!   one read by a computed key cannot be checked, and is a warning.
//!
//! Paths are followed through `let` aliases and the parameters of the module's own functions, as
//! [`super::usage`] follows them. The module is analysed as written, before optimisation.
//! It also collects the rule names the module can produce (the first argument of `deny` and
//! `permit`, an obligation's kind or `rule`), which bundle validation compares with the test
//! cases' expectations.

use super::fields::Field;
use crate::bundle::DeclaredAttributes;
use rhai::{ASTNode, Expr, ImmutableString, Position, Stmt, AST};
use std::collections::{BTreeMap, BTreeSet};

/// What the analysis of one module found.
#[derive(Debug, Default, Clone)]
pub struct Findings {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    /// Rule names (and obligation kinds) the module produces with a literal name.
    pub rules: BTreeSet<String>,
    /// Literal beginnings of rule names computed as `"prefix" + value`.
    pub rule_prefixes: BTreeSet<String>,
    /// Whether some `deny`/`permit` names its rule by a computed value with no literal beginning.
    pub computed_rules: bool,
}

/// Functions Rhai resolves itself, by name (any arity).
const KEYWORDS: [&str; 11] = [
    "type_of",
    "is_def_var",
    "is_def_fn",
    "is_shared",
    "Fn",
    "call",
    "curry",
    "print",
    "debug",
    "eval",
    "this",
];

/// The functions a module can call: (name, number of parameters), methods counting their object.
pub(super) type Known = BTreeSet<(String, usize)>;

pub(super) fn known_functions(engine: &rhai::Engine) -> Known {
    engine
        .collect_fn_metadata(
            None,
            |info| Some((info.metadata.name.to_string(), info.metadata.num_params)),
            true,
        )
        .into_iter()
        .collect()
}

/// A path below `tx` or `env`, as written.
type Names = Vec<String>;

pub(super) fn module(
    ast: &AST,
    path: &str,
    roots: &[(&'static str, &'static Field); 2],
    known: &Known,
    declared: &DeclaredAttributes,
) -> Findings {
    let mut findings = Findings::default();
    let at = |pos: Position| match (pos.line(), pos.position()) {
        (Some(l), Some(c)) => format!("{path}: line {l}, column {c}"),
        (Some(l), None) => format!("{path}: line {l}"),
        _ => path.to_owned(),
    };
    let own: BTreeMap<ImmutableString, Vec<Vec<ImmutableString>>> = {
        let mut own: BTreeMap<_, Vec<_>> = BTreeMap::new();
        for f in ast.iter_fn_def() {
            own.entry(f.name.clone())
                .or_default()
                .push(f.params.iter().cloned().collect());
        }
        own
    };
    let defines = |name: &str, arity: usize| {
        own.get(name)
            .is_some_and(|lists| lists.iter().any(|p| p.len() == arity))
    };
    let resolved = aliases(ast, roots, &own);

    ast.walk(&mut |nodes: &[ASTNode]| {
        let Some(node) = nodes.last() else {
            return true;
        };
        let call = match node {
            ASTNode::Expr(Expr::FnCall(call, pos)) | ASTNode::Stmt(Stmt::FnCall(call, pos)) => {
                Some((&**call, *pos, false))
            }
            ASTNode::Expr(Expr::MethodCall(call, pos)) => Some((&**call, *pos, true)),
            _ => None,
        };
        if let Some((call, pos, method)) = call {
            let name = call.name.as_str();
            let arity = call.args.len() + usize::from(method);
            let exists = call.op_token.is_some()
                || KEYWORDS.contains(&name)
                || defines(name, arity)
                || (method && defines(name, call.args.len()))
                || known.contains(&(name.to_owned(), arity));
            if !exists {
                let mut names: BTreeSet<&str> = known
                    .iter()
                    .filter(|(n, _)| !n.contains('$') && !n.starts_with(char::is_uppercase))
                    .map(|(n, _)| n.as_str())
                    .collect();
                names.extend(own.keys().map(|k| k.as_str()));
                let arities: Vec<String> = known
                    .iter()
                    .filter(|(n, _)| n == name)
                    .map(|(_, a)| a.to_string())
                    .chain(
                        own.get(name)
                            .into_iter()
                            .flatten()
                            .map(|p| p.len().to_string()),
                    )
                    .collect();
                let what = if method {
                    format!("unknown method `{name}` with {} arguments", call.args.len())
                } else {
                    format!("unknown function `{name}` with {arity} arguments")
                };
                let hint = if !arities.is_empty() {
                    format!(" (`{name}` takes {} arguments)", arities.join(" or "))
                } else {
                    suggest(name, names.iter().copied())
                };
                findings.errors.push(format!("{}: {what}{hint}", at(pos)));
            }
            if !method && call.op_token.is_none() && !defines(name, arity) {
                rule_names(name, &call.args, &mut findings);
            }
            // `"x" in attrs` (the parser's `contains(attrs, "x")`) and `attrs.contains("x")`.
            let (container, key) = match (method, &call.args[..]) {
                (false, [container, key]) if name == "contains" => (Some(container), Some(key)),
                _ => (None, None),
            };
            if let (Some(Expr::Variable(v, _, _)), Some(Expr::StringConstant(key, _))) =
                (container, key)
            {
                if let Some(bases) = resolved.get(&v.1) {
                    let suffix = [key.to_string()];
                    check_any(bases, &suffix, roots, declared, &at(pos), &mut findings);
                }
            }
        }
        match node {
            ASTNode::Expr(expr @ (Expr::Dot(bin, ..) | Expr::Index(bin, ..))) => {
                // Only the outermost expression of a chain.
                let inner = matches!(
                    nodes.iter().rev().nth(1),
                    Some(ASTNode::Expr(Expr::Dot(outer, ..) | Expr::Index(outer, ..)))
                        if std::ptr::eq(&outer.rhs, *expr) || std::ptr::eq(&outer.lhs, *expr)
                );
                if inner {
                    return true;
                }
                let Expr::Variable(v, _, _) = &bin.lhs else {
                    return true;
                };
                let Some(bases) = resolved.get(&v.1) else {
                    return true;
                };
                let (names, computed) = chain(expr);
                let pos = expr.position();
                let complete = check_any(bases, &names, roots, declared, &at(pos), &mut findings);
                if let Some(full) = complete.filter(|f| computed && is_attributes(f, roots)) {
                    findings.warnings.push(format!(
                        "{}: `{}` is read by a computed key: which attributes the module reads \
                         cannot be checked against the manifest's declarations",
                        at(pos),
                        full.join(".")
                    ));
                }
            }
            ASTNode::Expr(Expr::Variable(v, _, pos)) => {
                // A path used whole: checked as far as it goes (its aliases' reads are checked
                // where they happen).
                if let Some(bases) = resolved.get(&v.1) {
                    check_any(bases, &[], roots, declared, &at(*pos), &mut findings);
                }
            }
            _ => {}
        }
        true
    });
    findings.errors.sort();
    findings.errors.dedup();
    findings.warnings.sort();
    findings.warnings.dedup();
    findings
}

/// Checks `suffix` read below a variable bound to `bases`. The binding is flow-insensitive (a
/// variable stands for every path it is bound to anywhere), so the read is wrong only when it is
/// wrong below every base; the errors are then those of the first. Returns the first full path
/// known all the way, if any.
fn check_any(
    bases: &BTreeSet<Names>,
    suffix: &[String],
    roots: &[(&'static str, &'static Field); 2],
    declared: &DeclaredAttributes,
    at: &str,
    findings: &mut Findings,
) -> Option<Names> {
    let mut first_errors = None;
    for base in bases {
        let mut full = base.clone();
        full.extend(suffix.iter().cloned());
        let mut trial = Findings::default();
        if check_path(&full, roots, declared, at, &mut trial) {
            return Some(full);
        }
        first_errors.get_or_insert(trial.errors);
    }
    findings.errors.extend(first_errors.unwrap_or_default());
    None
}

/// Rule names of the rule API's calls with literal names.
fn rule_names(name: &str, args: &[Expr], findings: &mut Findings) {
    let literal = |i: usize| match args.get(i) {
        Some(Expr::StringConstant(s, _)) => Some(s.to_string()),
        _ => None,
    };
    match name {
        "deny" | "permit" => match (literal(0), args.first()) {
            (Some(rule), _) => {
                findings.rules.insert(rule);
            }
            (None, Some(Expr::FnCall(concat, _)))
                if concat.op_token.is_some()
                    && concat.name == "+"
                    && matches!(concat.args.first(), Some(Expr::StringConstant(..))) =>
            {
                if let Some(Expr::StringConstant(prefix, _)) = concat.args.first() {
                    findings.rule_prefixes.insert(prefix.to_string());
                }
            }
            _ => findings.computed_rules = true,
        },
        "obligation" => {
            if let Some(kind) = literal(0) {
                findings.rules.insert(kind);
            }
            if let Some(Expr::Map(x, _)) = args.get(2) {
                for (key, value) in x.0.iter() {
                    if key.name == "rule" {
                        match value {
                            Expr::StringConstant(s, _) => {
                                findings.rules.insert(s.to_string());
                            }
                            _ => findings.computed_rules = true,
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

/// The names a chain reads after its variable: properties and literal string keys, up to the
/// first method call or computed key (`true` when it stops at a computed key).
fn chain(expr: &Expr) -> (Names, bool) {
    let mut names = Vec::new();
    let computed = walk_chain(expr, &mut names, true);
    (names, computed)
}

fn walk_chain(expr: &Expr, names: &mut Names, root: bool) -> bool {
    match expr {
        Expr::Dot(bin, ..) => {
            if !root {
                if walk_chain(&bin.lhs, names, false) {
                    return true;
                }
                if matches!(bin.lhs, Expr::MethodCall(..)) {
                    return false;
                }
            }
            walk_chain(&bin.rhs, names, false)
        }
        Expr::Index(bin, ..) => {
            if !root && walk_chain(&bin.lhs, names, false) {
                return true;
            }
            match &bin.rhs {
                Expr::StringConstant(s, _) => {
                    names.push(s.to_string());
                    false
                }
                Expr::IntegerConstant(..) => false,
                _ => true,
            }
        }
        Expr::Property(p, _) => {
            names.push(p.2.to_string());
            false
        }
        _ => false,
    }
}

/// Whether `names` ends at an attribute map (`tx.context.attributes`, `tx.actor.attributes`).
fn is_attributes(names: &[String], roots: &[(&'static str, &'static Field); 2]) -> bool {
    attributes_place(names, roots).is_some_and(|(_, rest)| rest.is_empty())
}

/// Where `names` reaches an attribute map: its place (`context`, `actor`) and the names after it.
fn attributes_place<'n>(
    names: &'n [String],
    roots: &[(&'static str, &'static Field); 2],
) -> Option<(&'n str, &'n [String])> {
    let (root, rest) = names.split_first()?;
    if root != roots[0].0 {
        return None;
    }
    match rest {
        [place, attrs, after @ ..]
            if attrs == "attributes" && (place == "context" || place == "actor") =>
        {
            Some((place.as_str(), after))
        }
        _ => None,
    }
}

/// Checks a path read (`names`, from a root) against the field tree and the declared attributes;
/// returns whether the path was known all the way.
fn check_path(
    names: &[String],
    roots: &[(&'static str, &'static Field); 2],
    declared: &DeclaredAttributes,
    at: &str,
    findings: &mut Findings,
) -> bool {
    let Some((root, rest)) = names.split_first() else {
        return true;
    };
    let Some((_, mut field)) = roots.iter().find(|(n, _)| n == root) else {
        return true;
    };
    if let Some((place, after)) = attributes_place(names, roots) {
        if let Some(attribute) = after.first() {
            let types = if place == "context" {
                &declared.context
            } else {
                &declared.actor
            };
            if !types.contains_key(attribute) {
                findings.errors.push(format!(
                    "{at}: reads `{root}.{place}.attributes.{attribute}`, which manifest.yaml does not \
                     declare (add it with its type under `attributes.{place}`){}",
                    suggest(attribute, types.keys().map(String::as_str))
                ));
                return false;
            }
        }
        return true;
    }
    for (i, name) in rest.iter().enumerate() {
        match field {
            Field::Record(fields) => match fields.iter().find(|(n, _)| n == name) {
                Some((_, child)) => field = child,
                None => {
                    let parent = names[..=i].join(".");
                    findings.errors.push(format!(
                        "{at}: `{parent}` has no field `{name}`{}",
                        suggest(name, fields.iter().map(|(n, _)| *n))
                    ));
                    return false;
                }
            },
            // A property of a leaf (a list's `len`, say) is Rhai's.
            Field::Leaf(_) => return true,
        }
    }
    true
}

/// Variables bound to paths below `evaluate`'s parameters (`let ctx = tx.context;`, and the
/// parameters of the module's own functions called with such a path), with the names as written.
fn aliases(
    ast: &AST,
    roots: &[(&'static str, &'static Field); 2],
    own: &BTreeMap<ImmutableString, Vec<Vec<ImmutableString>>>,
) -> BTreeMap<ImmutableString, BTreeSet<Names>> {
    let mut resolved: BTreeMap<ImmutableString, BTreeSet<Names>> = BTreeMap::new();
    if let Some(entry) = ast
        .iter_fn_def()
        .find(|f| f.name == "evaluate" && f.params.len() == 2)
    {
        for (param, (root, _)) in entry.params.iter().zip(roots) {
            resolved
                .entry(param.clone())
                .or_default()
                .insert(vec![(*root).to_owned()]);
        }
    }
    let mut bindings: Vec<(ImmutableString, ImmutableString, Names)> = Vec::new();
    ast.walk(&mut |nodes: &[ASTNode]| {
        match nodes.last() {
            Some(ASTNode::Stmt(Stmt::Var(v, _, _))) => {
                if let Some((base, props)) = pure_chain(&v.1) {
                    bindings.push((v.0.name.clone(), base, props));
                }
            }
            Some(ASTNode::Expr(Expr::FnCall(call, _))) if call.op_token.is_none() => {
                let Some(lists) = own.get(&call.name) else {
                    return true;
                };
                for params in lists.iter().filter(|p| p.len() == call.args.len()) {
                    for (param, arg) in params.iter().zip(call.args.iter()) {
                        if let Some((base, props)) = pure_chain(arg) {
                            bindings.push((param.clone(), base, props));
                        }
                    }
                }
            }
            _ => {}
        }
        true
    });
    // Paths only grow along bindings; bounded by a depth to reach a fixpoint.
    for _ in 0..8 {
        let mut changed = false;
        for (name, base, props) in &bindings {
            let Some(bases) = resolved.get(base).cloned() else {
                continue;
            };
            let entry = resolved.entry(name.clone()).or_default();
            for b in bases {
                let mut path = b;
                path.extend(props.iter().cloned());
                if path.len() <= 8 {
                    changed |= entry.insert(path);
                }
            }
        }
        if !changed {
            break;
        }
    }
    resolved
}

/// A variable followed only by property reads and literal string keys.
fn pure_chain(expr: &Expr) -> Option<(ImmutableString, Names)> {
    match expr {
        Expr::Variable(x, _, _) if x.2.is_empty() => Some((x.1.clone(), Vec::new())),
        Expr::Dot(bin, ..) | Expr::Index(bin, ..) => {
            let Expr::Variable(x, _, _) = &bin.lhs else {
                return None;
            };
            if !x.2.is_empty() {
                return None;
            }
            let (names, computed) = chain(expr);
            if computed || has_method(expr) {
                return None;
            }
            Some((x.1.clone(), names))
        }
        _ => None,
    }
}

fn has_method(expr: &Expr) -> bool {
    match expr {
        Expr::MethodCall(..) => true,
        Expr::Dot(bin, ..) | Expr::Index(bin, ..) => has_method(&bin.lhs) || has_method(&bin.rhs),
        _ => false,
    }
}

/// ` (did you mean `x`?)` for the closest of `candidates` to `name`, when one is close.
pub fn suggest<'c>(name: &str, candidates: impl Iterator<Item = &'c str>) -> String {
    let limit = (name.chars().count() / 3).max(1);
    let best = candidates
        .map(|c| (distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min();
    match best {
        Some((_, c)) => format!(" (did you mean `{c}`?)"),
        None => String::new(),
    }
}

/// Edit distance (insertions, deletions, substitutions and swaps of adjacent characters), by
/// characters, case-insensitive.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// Where a module can run away, for the sandbox-limit errors (Rhai reports those without a
/// position): its loops, and its functions that call themselves, directly or in a cycle.
#[derive(Debug, Default, Clone)]
pub(super) struct RunawaySites {
    /// `line 3 (loop)`, …
    pub loops: Vec<String>,
    /// `down (line 1)`, …
    pub recursive: Vec<String>,
}

pub(super) fn runaway_sites(ast: &AST) -> RunawaySites {
    let line = |p: Position| p.line().map_or_else(String::new, |l| format!("line {l}"));
    let mut sites = RunawaySites::default();
    let defs: Vec<_> = ast.iter_fn_def().collect();
    let spans: Vec<(Position, Position)> = defs
        .iter()
        .map(|f| (f.body.start_position(), f.body.end_position()))
        .collect();
    let key = |p: Position| (p.line().unwrap_or(0), p.position().unwrap_or(0));
    let enclosing = |p: Position| {
        spans
            .iter()
            .position(|(s, e)| key(p) >= key(*s) && key(p) <= key(*e))
    };
    let mut calls: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); defs.len()];
    ast.walk(&mut |nodes: &[ASTNode]| {
        match nodes.last() {
            Some(ASTNode::Stmt(stmt @ (Stmt::While(..) | Stmt::Do(..) | Stmt::For(..)))) => {
                let kind = match stmt {
                    Stmt::For(..) => "for",
                    Stmt::Do(..) => "do",
                    _ => "loop or while",
                };
                sites
                    .loops
                    .push(format!("{} ({kind})", line(stmt.position())));
            }
            Some(
                ASTNode::Expr(Expr::FnCall(call, pos)) | ASTNode::Stmt(Stmt::FnCall(call, pos)),
            ) => {
                if let (Some(from), Some(to)) = (
                    enclosing(*pos),
                    defs.iter()
                        .position(|f| f.name == call.name && f.params.len() == call.args.len()),
                ) {
                    calls[from].insert(to);
                }
            }
            _ => {}
        }
        true
    });
    for (i, f) in defs.iter().enumerate() {
        // Whether `i` reaches itself.
        let mut seen = BTreeSet::new();
        let mut stack: Vec<usize> = calls[i].iter().copied().collect();
        while let Some(j) = stack.pop() {
            if seen.insert(j) {
                stack.extend(calls[j].iter().copied());
            }
        }
        if seen.contains(&i) {
            sites
                .recursive
                .push(format!("`{}` ({})", f.name, line(spans[i].0)));
        }
    }
    sites
}
