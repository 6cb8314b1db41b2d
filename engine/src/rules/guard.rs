//! Leading guards of a module's `evaluate`, decided natively so a module that would certainly
//! return `[]` is not called at all.
//!
//! A [`Guard`] is the longest prefix of `evaluate`'s statements that this file can mirror exactly:
//! `let` bindings of expressions it models, and `if <condition> { return <empty array>; }` with no
//! `else`. The modelled expressions are literals, variables, property and string-index reads of
//! `tx`/`env` (through [`super::fields`]) and of JSON attribute maps, `==`, `!=`, `!`, `&&`, `||`,
//! `type_of(x)`, and the `contains` / `contains_all` methods on lists of strings — none of which has
//! a side effect. [`Guard::skips`] evaluates the prefix with Rhai's semantics (short-circuiting,
//! comparison of unlike types, `()` for a missing map key) and answers `true` only when a guard
//! certainly returns an empty array and every statement before it certainly succeeds; whenever a
//! value falls outside what is modelled (a float compared with an integer, a non-boolean condition
//! that Rhai would reject, …) it answers `false` and the module is called. A module is never
//! skipped for a result other than `[]`, which adds nothing to a decision.

use super::fields::{Field, Leaf, ENV, TX};
use super::limits;
use crate::cedar::RequestFacts;
use crate::transaction::AccessRequest;
use rhai::{ASTFlags, Dynamic, Engine, Expr, ImmutableString, Position, Stmt, AST};
use serde_json::Value;
use std::borrow::Cow;

/// Statements past this many are not analysed: the guard stays a short, cheap prefix.
const MAX_STEPS: usize = 32;
/// Nor are expressions past this many nodes in all: far below the operation budget a guard would
/// spend in Rhai, so it cannot be what exhausts it.
const MAX_NODES: usize = 512;

/// Functions a module could define to change what a modelled call means.
const MODELLED_FUNCTIONS: &[&str] = &["contains", "contains_all", "type_of"];

/// The decidable prefix of one module's `evaluate`.
pub(super) struct Guard {
    steps: Vec<Step>,
    names: TypeNames,
}

enum Step {
    /// `let` (or `const`) binding: the value goes to the next slot.
    Let(Term),
    /// `if cond { return value; }`: the module returns `value` when `cond` is true.
    ReturnIf(Term, Term),
}

enum Term {
    Root(&'static Field),
    Slot(usize),
    Lit(Lit),
    /// `base.name` or `base["name"]` (identical for maps).
    Get(Box<Term>, ImmutableString),
    Eq(Box<Term>, Box<Term>, bool),
    Not(Box<Term>),
    And(Vec<Term>),
    Or(Vec<Term>),
    Contains(Box<Term>, Box<Term>),
    ContainsAll(Box<Term>, Box<Term>),
    TypeOf(Box<Term>),
}

impl Term {
    fn nodes(&self) -> usize {
        1 + match self {
            Term::Root(_) | Term::Slot(_) | Term::Lit(_) => 0,
            Term::Get(x, _) | Term::Not(x) | Term::TypeOf(x) => x.nodes(),
            Term::Eq(a, b, _) | Term::Contains(a, b) | Term::ContainsAll(a, b) => {
                a.nodes() + b.nodes()
            }
            Term::And(items) | Term::Or(items) => items.iter().map(Term::nodes).sum(),
        }
    }
}

enum Lit {
    Str(ImmutableString),
    Bool(bool),
    Int(i64),
    Unit,
    EmptyArray,
}

/// Rhai's `type_of` names, read from the engine rather than assumed.
struct TypeNames {
    string: String,
    boolean: String,
    int: String,
    float: String,
    unit: String,
    array: String,
    map: String,
}

impl TypeNames {
    fn of(engine: &Engine) -> TypeNames {
        let name = |d: Dynamic| engine.map_type_name(d.type_name()).to_owned();
        TypeNames {
            string: name(Dynamic::from(ImmutableString::new())),
            boolean: name(Dynamic::from_bool(false)),
            int: name(Dynamic::from_int(0)),
            float: name(Dynamic::from_float(0.0)),
            unit: name(Dynamic::UNIT),
            array: name(Dynamic::from_array(Vec::new())),
            map: name(Dynamic::from_map(rhai::Map::new())),
        }
    }
}

/// A value during guard evaluation; `None` wherever one is not modelled.
#[derive(Clone)]
enum Val<'a> {
    Str(Cow<'a, str>),
    Bool(bool),
    Int(i64),
    Float,
    Unit,
    Strings(Vec<&'a str>),
    JsonArray(&'a [Value]),
    EmptyArray,
    Object(&'a serde_json::Map<String, Value>),
    Record(&'static Field),
}

/// What a comparison sees of a value's type.
#[derive(PartialEq, Clone, Copy)]
enum Kind {
    Str,
    Bool,
    Int,
    Float,
    Unit,
    Array,
    Map,
}

impl Val<'_> {
    fn kind(&self) -> Kind {
        match self {
            Val::Str(_) => Kind::Str,
            Val::Bool(_) => Kind::Bool,
            Val::Int(_) => Kind::Int,
            Val::Float => Kind::Float,
            Val::Unit => Kind::Unit,
            Val::Strings(_) | Val::JsonArray(_) | Val::EmptyArray => Kind::Array,
            Val::Object(_) | Val::Record(_) => Kind::Map,
        }
    }

    /// The strings of a list whose elements are all strings.
    fn strings(&self) -> Option<Vec<&str>> {
        match self {
            Val::Strings(items) => Some(items.clone()),
            Val::EmptyArray => Some(Vec::new()),
            Val::JsonArray(items) => items.iter().map(Value::as_str).collect(),
            _ => None,
        }
    }
}

fn json(value: &Value) -> Val<'_> {
    match value {
        Value::Null => Val::Unit,
        Value::Bool(b) => Val::Bool(*b),
        // As `json_to_dynamic` converts numbers: integers when they fit, floats otherwise.
        Value::Number(n) => n.as_i64().map_or(Val::Float, Val::Int),
        Value::String(s) => Val::Str(Cow::Borrowed(s)),
        Value::Array(items) => Val::JsonArray(items),
        Value::Object(map) => Val::Object(map),
    }
}

fn leaf(value: Leaf<'_>) -> Val<'_> {
    match value {
        Leaf::Str(s) => Val::Str(s),
        Leaf::Bool(b) => Val::Bool(b),
        Leaf::Int(i) => Val::Int(i),
        Leaf::Unit => Val::Unit,
        Leaf::Strings(items) => Val::Strings(items),
        Leaf::Object(map) => Val::Object(map),
    }
}

/// Rhai's `==` for the values modelled: like types compare, unlike non-numeric types are never
/// equal. Two lists, two maps or two numbers of different types are not modelled.
fn equal(a: &Val<'_>, b: &Val<'_>) -> Option<bool> {
    match (a, b) {
        (Val::Str(x), Val::Str(y)) => Some(x == y),
        (Val::Bool(x), Val::Bool(y)) => Some(x == y),
        (Val::Int(x), Val::Int(y)) => Some(x == y),
        (Val::Unit, Val::Unit) => Some(true),
        _ => {
            let (ka, kb) = (a.kind(), b.kind());
            let numeric = |k: Kind| matches!(k, Kind::Int | Kind::Float);
            if ka == kb || (numeric(ka) && numeric(kb)) {
                None
            } else {
                Some(false)
            }
        }
    }
}

impl Guard {
    /// The guard of `ast`'s `evaluate`; `None` when nothing at its start can be decided natively.
    pub(super) fn of(engine: &Engine, ast: &AST) -> Option<Guard> {
        if ast
            .iter_fn_def()
            .any(|f| MODELLED_FUNCTIONS.contains(&f.name.as_str()))
        {
            return None;
        }
        let (params, statements) = entry_statements(ast)?;
        let mut scope: Vec<ImmutableString> = Vec::new();
        let mut steps = Vec::new();
        let mut nodes = 0;
        for stmt in statements.iter().take(MAX_STEPS) {
            let translator = Translator {
                params: &params,
                scope: &scope,
            };
            match stmt {
                Stmt::Noop(_) => {}
                Stmt::Var(x, flags, _) if (*flags & !ASTFlags::CONSTANT).is_empty() => {
                    let Some(term) = translator.term(&x.1) else {
                        break;
                    };
                    nodes += term.nodes();
                    if nodes > MAX_NODES {
                        break;
                    }
                    steps.push(Step::Let(term));
                    scope.push(x.0.name.clone());
                }
                Stmt::If(flow, _) if flow.branch.is_empty() => {
                    let [Stmt::Return(Some(value), flags, _)] = flow.body.statements() else {
                        break;
                    };
                    if !flags.is_empty() {
                        break; // `throw`
                    }
                    let (Some(cond), Some(value)) =
                        (translator.term(&flow.expr), translator.term(value))
                    else {
                        break;
                    };
                    nodes += cond.nodes() + value.nodes();
                    if nodes > MAX_NODES {
                        break;
                    }
                    steps.push(Step::ReturnIf(cond, value));
                }
                _ => break,
            }
        }
        // Trailing bindings decide nothing.
        while matches!(steps.last(), Some(Step::Let(_))) {
            steps.pop();
        }
        if steps.is_empty() {
            return None;
        }
        Some(Guard {
            steps,
            names: TypeNames::of(engine),
        })
    }

    /// Whether calling the module would certainly return an empty array.
    pub(super) fn skips<'a>(
        &'a self,
        request: &'a AccessRequest,
        facts: &RequestFacts<'a>,
    ) -> bool {
        let mut eval = Eval {
            request,
            facts: *facts,
            names: &self.names,
            slots: Vec::new(),
        };
        for step in &self.steps {
            match step {
                Step::Let(term) => match eval.term(term) {
                    Some(v) => eval.slots.push(v),
                    None => return false,
                },
                Step::ReturnIf(cond, value) => match eval.term(cond) {
                    Some(Val::Bool(false)) => {}
                    // Only a fresh `[]`: the one result known to add nothing to a decision.
                    Some(Val::Bool(true)) => {
                        return matches!(eval.term(value), Some(Val::EmptyArray))
                    }
                    _ => return false,
                },
            }
        }
        false
    }
}

/// The parameter names and top-level statements of `fn evaluate(tx, env)`. Rhai does not export
/// the type of a function body, so its statements are found by walking the AST: a top-level
/// statement belongs to `evaluate` when it lies within its body. A module with another function
/// (a closure) inside that body is not analysed.
pub(super) fn entry_statements(ast: &AST) -> Option<([ImmutableString; 2], Vec<Stmt>)> {
    let at = |p: Position| Some((p.line()?, p.position()?));
    let entry = ast
        .iter_fn_def()
        .find(|f| f.name == "evaluate" && f.params.len() == 2)?;
    let span = (
        at(entry.body.start_position())?,
        at(entry.body.end_position())?,
    );
    for f in ast.iter_fn_def() {
        if std::ptr::eq(&**f, &**entry) {
            continue;
        }
        let (Some(start), Some(end)) = (at(f.body.start_position()), at(f.body.end_position()))
        else {
            return None;
        };
        if start <= span.1 && end >= span.0 {
            return None;
        }
    }
    let mut statements = Vec::new();
    let mut unplaced = false;
    ast.walk(&mut |path| {
        if let [rhai::ASTNode::Stmt(stmt)] = path {
            match at(stmt.position()) {
                Some(p) if p >= span.0 && p <= span.1 => statements.push((*stmt).clone()),
                Some(_) => {}
                None => unplaced = !matches!(stmt, Stmt::Noop(_)),
            }
        }
        !unplaced
    });
    if unplaced {
        return None;
    }
    Some((
        [entry.params[0].clone(), entry.params[1].clone()],
        statements,
    ))
}

struct Translator<'s> {
    params: &'s [ImmutableString; 2],
    scope: &'s [ImmutableString],
}

impl Translator<'_> {
    fn term(&self, expr: &Expr) -> Option<Term> {
        match expr {
            Expr::Variable(x, _, _) => {
                if !x.2.is_empty() {
                    return None;
                }
                let name = &x.1;
                if let Some(slot) = self.scope.iter().rposition(|n| n == name) {
                    Some(Term::Slot(slot))
                } else if *name == self.params[0] {
                    Some(Term::Root(&TX))
                } else if *name == self.params[1] {
                    Some(Term::Root(&ENV))
                } else {
                    None
                }
            }
            Expr::StringConstant(s, _) => Some(Term::Lit(Lit::Str(s.clone()))),
            Expr::BoolConstant(b, _) => Some(Term::Lit(Lit::Bool(*b))),
            Expr::IntegerConstant(i, _) => Some(Term::Lit(Lit::Int(*i))),
            Expr::Unit(_) => Some(Term::Lit(Lit::Unit)),
            Expr::Array(items, _) if items.is_empty() => Some(Term::Lit(Lit::EmptyArray)),
            // The optimiser turns constant literals (`[]` among them) into constants.
            Expr::DynamicConstant(value, _) => {
                let value = (**value).clone();
                if value.is_array() {
                    let empty = value.into_array().is_ok_and(|a| a.is_empty());
                    empty.then_some(Term::Lit(Lit::EmptyArray))
                } else if value.is_string() {
                    value
                        .into_immutable_string()
                        .ok()
                        .map(|s| Term::Lit(Lit::Str(s)))
                } else if value.is_bool() {
                    value.as_bool().ok().map(|b| Term::Lit(Lit::Bool(b)))
                } else if value.is_int() {
                    value.as_int().ok().map(|i| Term::Lit(Lit::Int(i)))
                } else if value.is_unit() {
                    Some(Term::Lit(Lit::Unit))
                } else {
                    None
                }
            }
            Expr::Dot(bin, flags, _) if !flags.contains(ASTFlags::NEGATED) => {
                self.chain(self.term(&bin.lhs)?, &bin.rhs)
            }
            Expr::Index(bin, flags, _) if !flags.contains(ASTFlags::NEGATED) => {
                let Expr::StringConstant(key, _) = &bin.rhs else {
                    return None;
                };
                Some(Term::Get(Box::new(self.term(&bin.lhs)?), key.clone()))
            }
            Expr::FnCall(call, _) if call.namespace.is_empty() && !call.capture_parent_scope => {
                let args = &call.args;
                match (call.name.as_str(), args.len(), call.op_token.is_some()) {
                    ("==" | "!=", 2, true) => Some(Term::Eq(
                        Box::new(self.term(&args[0])?),
                        Box::new(self.term(&args[1])?),
                        call.name == "!=",
                    )),
                    ("!", 1, true) => Some(Term::Not(Box::new(self.term(&args[0])?))),
                    ("type_of", 1, false) => Some(Term::TypeOf(Box::new(self.term(&args[0])?))),
                    _ => None,
                }
            }
            Expr::And(items, _) => Some(Term::And(self.terms(items)?)),
            Expr::Or(items, _) => Some(Term::Or(self.terms(items)?)),
            _ => None,
        }
    }

    fn terms(&self, exprs: &[Expr]) -> Option<Vec<Term>> {
        exprs.iter().map(|e| self.term(e)).collect()
    }

    /// The rest of a dot chain after `base`: `.name`, `.name[“key”]`, `.method(arg)`, nested.
    fn chain(&self, base: Term, rhs: &Expr) -> Option<Term> {
        match rhs {
            Expr::Dot(bin, flags, _) if !flags.contains(ASTFlags::NEGATED) => {
                let next = self.step(base, &bin.lhs)?;
                self.chain(next, &bin.rhs)
            }
            other => self.step(base, other),
        }
    }

    fn step(&self, base: Term, expr: &Expr) -> Option<Term> {
        match expr {
            Expr::Property(p, _) => Some(Term::Get(Box::new(base), p.2.clone())),
            Expr::Index(bin, flags, _) if !flags.contains(ASTFlags::NEGATED) => {
                let (Expr::Property(p, _), Expr::StringConstant(key, _)) = (&bin.lhs, &bin.rhs)
                else {
                    return None;
                };
                let field = Term::Get(Box::new(base), p.2.clone());
                Some(Term::Get(Box::new(field), key.clone()))
            }
            Expr::MethodCall(call, _)
                if call.namespace.is_empty()
                    && call.args.len() == 1
                    && !call.capture_parent_scope =>
            {
                let arg = Box::new(self.term(&call.args[0])?);
                match call.name.as_str() {
                    "contains" => Some(Term::Contains(Box::new(base), arg)),
                    "contains_all" => Some(Term::ContainsAll(Box::new(base), arg)),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

/// A method's object is size-checked after the call, and Rhai throws when it is past the sandbox
/// limits: `None` (not modelled) unless it is certainly within them.
fn within_limits(items: Vec<&str>) -> Option<Vec<&str>> {
    let bytes: usize = items.iter().map(|s| s.len()).sum();
    (items.len() < limits::MAX_ARRAY_SIZE && bytes < limits::MAX_STRING_SIZE).then_some(items)
}

struct Eval<'a> {
    request: &'a AccessRequest,
    facts: RequestFacts<'a>,
    names: &'a TypeNames,
    slots: Vec<Val<'a>>,
}

impl<'a> Eval<'a> {
    fn term(&self, term: &'a Term) -> Option<Val<'a>> {
        match term {
            Term::Root(field) => Some(Val::Record(field)),
            Term::Slot(i) => self.slots.get(*i).cloned(),
            Term::Lit(lit) => Some(match lit {
                Lit::Str(s) => Val::Str(Cow::Borrowed(s.as_str())),
                Lit::Bool(b) => Val::Bool(*b),
                Lit::Int(i) => Val::Int(*i),
                Lit::Unit => Val::Unit,
                Lit::EmptyArray => Val::EmptyArray,
            }),
            Term::Get(base, name) => match self.term(base)? {
                Val::Record(field) => match field.child(name)? {
                    Field::Leaf(get) => Some(leaf(get(self.request, &self.facts))),
                    record => Some(Val::Record(record)),
                },
                // A missing key reads as `()` (the engine does not fail on invalid properties).
                Val::Object(map) => Some(map.get(name.as_str()).map_or(Val::Unit, json)),
                _ => None,
            },
            Term::Eq(a, b, negated) => {
                let (a, b) = (self.term(a)?, self.term(b)?);
                equal(&a, &b).map(|eq| Val::Bool(eq != *negated))
            }
            Term::Not(x) => match self.term(x)? {
                Val::Bool(b) => Some(Val::Bool(!b)),
                _ => None,
            },
            Term::And(items) => self.connective(items, false),
            Term::Or(items) => self.connective(items, true),
            Term::Contains(list, item) => {
                let (list, item) = (self.term(list)?, self.term(item)?);
                let Val::Str(item) = item else { return None };
                // The registered `contains(array, string)`: some element is that string.
                let have = within_limits(list.strings()?)?;
                Some(Val::Bool(have.contains(&item.as_ref())))
            }
            Term::ContainsAll(have, need) => {
                let (have, need) = (self.term(have)?, self.term(need)?);
                if have.kind() != Kind::Array || need.kind() != Kind::Array {
                    return None;
                }
                let (have, need) = (within_limits(have.strings()?)?, need.strings()?);
                Some(Val::Bool(need.iter().all(|n| have.contains(n))))
            }
            Term::TypeOf(x) => {
                let names = self.names;
                let name: &'a str = match self.term(x)?.kind() {
                    Kind::Str => &names.string,
                    Kind::Bool => &names.boolean,
                    Kind::Int => &names.int,
                    Kind::Float => &names.float,
                    Kind::Unit => &names.unit,
                    Kind::Array => &names.array,
                    Kind::Map => &names.map,
                };
                Some(Val::Str(Cow::Borrowed(name)))
            }
        }
    }

    /// `&&` (`stop_on` false) or `||` (`stop_on` true): left to right, stopping at the first
    /// operand equal to `stop_on`; every operand evaluated must be a boolean.
    fn connective(&self, items: &'a [Term], stop_on: bool) -> Option<Val<'a>> {
        for item in items {
            match self.term(item)? {
                Val::Bool(b) if b == stop_on => return Some(Val::Bool(stop_on)),
                Val::Bool(_) => {}
                _ => return None,
            }
        }
        Some(Val::Bool(!stop_on))
    }
}
