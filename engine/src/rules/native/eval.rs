//! Evaluation of a [`Program`] with Rhai's semantics for the subset it models. Every function here
//! returns `None` for "not modelled"; none of them has an effect outside the evaluation.

use super::{Answer, Api, Function, Ordering, Program, Stmt, Term, TypeNames, MAX_STEPS};
use crate::cedar::RequestFacts;
use crate::rules::api::{self, ParameterTable};
use crate::rules::fields::{Field, Leaf, Strs, ENV, TX};
use crate::rules::limits;
use crate::transaction::AccessRequest;
use rhai::{Array, Dynamic, ImmutableString, Map};
use serde_json::Value;
use smallvec::SmallVec;
use std::borrow::Cow;

/// A value during evaluation.
#[derive(Clone)]
enum Val<'a> {
    Str(Cow<'a, str>),
    Bool(bool),
    Int(i64),
    /// A float: its value is never needed, since nothing involving one is modelled.
    Float,
    Unit,
    /// A list of strings read from the request (a shared, read-only array in Rhai).
    Strings(Strs<'a>),
    /// A JSON array of an attribute map (shared, read-only in Rhai).
    JsonArray(&'a [Value]),
    /// A JSON attribute map (shared, read-only in Rhai).
    Object(&'a serde_json::Map<String, Value>),
    /// A record of `tx` or `env` (a shared, read-only map in Rhai).
    Record(&'static Field),
    /// An array the module built.
    Array(Vec<Val<'a>>),
    /// A map or array from a constant, the rule API or a parameter.
    Dyn(Dynamic),
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
    Other,
}

impl Val<'_> {
    fn kind(&self) -> Kind {
        match self {
            Val::Str(_) => Kind::Str,
            Val::Bool(_) => Kind::Bool,
            Val::Int(_) => Kind::Int,
            Val::Float => Kind::Float,
            Val::Unit => Kind::Unit,
            Val::Strings(_) | Val::JsonArray(_) | Val::Array(_) => Kind::Array,
            Val::Object(_) | Val::Record(_) => Kind::Map,
            Val::Dyn(d) if d.is_array() => Kind::Array,
            Val::Dyn(d) if d.is_map() => Kind::Map,
            Val::Dyn(_) => Kind::Other,
        }
    }
}

/// A Rhai value as an evaluation value: scalars become themselves, anything else stays a
/// [`Val::Dyn`].
fn from_dynamic<'a>(value: Dynamic) -> Val<'a> {
    if value.is_unit() {
        Val::Unit
    } else if let Ok(b) = value.as_bool() {
        Val::Bool(b)
    } else if let Ok(i) = value.as_int() {
        Val::Int(i)
    } else if value.is_float() {
        Val::Float
    } else if value.is_string() {
        let s = value.read_lock::<ImmutableString>().map(|s| s.to_string());
        Val::Str(Cow::Owned(s.unwrap_or_default()))
    } else if value.is_array() && !value.is_shared() {
        // A plain array (a constant, say) is the module's own: it can grow.
        let items = value.into_array().unwrap_or_default();
        Val::Array(items.into_iter().map(from_dynamic).collect())
    } else {
        Val::Dyn(value)
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

/// The value as a plain Rhai value, for the module's result or a container. Values that are shared
/// in Rhai (read from the request or a parameter) are not converted: Rhai treats them apart inside
/// containers (its data-size check may even panic), so they are left to Rhai.
fn to_dynamic(value: Val<'_>) -> Option<Dynamic> {
    match value {
        Val::Str(s) => Some(Dynamic::from(ImmutableString::from(s.as_ref()))),
        Val::Bool(b) => Some(Dynamic::from_bool(b)),
        Val::Int(i) => Some(Dynamic::from_int(i)),
        Val::Unit => Some(Dynamic::UNIT),
        Val::Array(items) => {
            let items = items
                .into_iter()
                .map(to_dynamic)
                .collect::<Option<Array>>()?;
            Some(Dynamic::from_array(items))
        }
        Val::Dyn(d) if !d.is_shared() => Some(d),
        Val::Float
        | Val::Strings(_)
        | Val::JsonArray(_)
        | Val::Object(_)
        | Val::Record(_)
        | Val::Dyn(_) => None,
    }
}

/// A value's weight in Rhai's data-size check: one per element or entry, plus string bytes.
fn size(value: &Val<'_>) -> usize {
    match value {
        Val::Str(s) => s.len(),
        Val::Array(items) => items.iter().map(|v| 1 + size(v)).sum(),
        Val::Dyn(d) => {
            if let Some(items) = d.read_lock::<Array>() {
                items.iter().map(|v| 1 + dynamic_size(v)).sum()
            } else if let Some(map) = d.read_lock::<Map>() {
                map.values().map(|v| 1 + dynamic_size(v)).sum()
            } else {
                0
            }
        }
        _ => 0,
    }
}

fn dynamic_size(value: &Dynamic) -> usize {
    if let Some(s) = value.read_lock::<ImmutableString>() {
        s.len()
    } else {
        size(&Val::Dyn(value.clone()))
    }
}

/// Whether [`to_dynamic`] converts the value.
fn plain(value: &Val<'_>) -> bool {
    match value {
        Val::Str(_) | Val::Bool(_) | Val::Int(_) | Val::Unit => true,
        Val::Array(items) => items.iter().all(plain),
        Val::Dyn(d) => !d.is_shared(),
        Val::Float | Val::Strings(_) | Val::JsonArray(_) | Val::Object(_) | Val::Record(_) => false,
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
            if ka == kb || (numeric(ka) && numeric(kb)) || ka == Kind::Other || kb == Kind::Other {
                None
            } else {
                Some(false)
            }
        }
    }
}

/// The elements of a list, each as a value; `None` for anything else.
fn elements<'a>(list: &Val<'a>) -> Option<Vec<Val<'a>>> {
    match list {
        Val::Strings(items) => Some(items.iter().map(|s| Val::Str(Cow::Borrowed(s))).collect()),
        Val::JsonArray(items) => Some(items.iter().map(json).collect()),
        Val::Array(items) => Some(items.clone()),
        Val::Dyn(d) => {
            let items = d.read_lock::<Array>()?;
            Some(items.iter().map(|v| from_dynamic(v.clone())).collect())
        }
        _ => None,
    }
}

/// The strings of a list whose elements are all strings, if it is within the sandbox limits (a
/// method's object is size-checked after the call, and Rhai throws past them).
fn strings<'v>(list: &'v Val<'_>) -> Option<SmallVec<[Cow<'v, str>; 8]>> {
    let items: SmallVec<[Cow<'v, str>; 8]> = match list {
        Val::Strings(items) => items.iter().map(Cow::Borrowed).collect(),
        Val::JsonArray(items) => items
            .iter()
            .map(|v| v.as_str().map(Cow::Borrowed))
            .collect::<Option<_>>()?,
        Val::Array(items) => items
            .iter()
            .map(|v| match v {
                Val::Str(s) => Some(Cow::Borrowed(s.as_ref())),
                _ => None,
            })
            .collect::<Option<_>>()?,
        Val::Dyn(d) => {
            let items = d.read_lock::<Array>()?;
            items
                .iter()
                .map(|v| {
                    v.read_lock::<ImmutableString>()
                        .map(|s| Cow::Owned(s.as_str().to_owned()))
                })
                .collect::<Option<_>>()?
        }
        _ => return None,
    };
    let bytes: usize = items.iter().map(|s| s.len()).sum();
    (items.len() < limits::MAX_ARRAY_SIZE && bytes < limits::MAX_STRING_SIZE).then_some(items)
}

/// How a block ended.
enum Flow<'a> {
    /// Ran to its end: the value of its last statement.
    Normal(Val<'a>),
    Return(Val<'a>),
}

struct Eval<'a> {
    program: &'a Program,
    request: &'a AccessRequest,
    facts: RequestFacts<'a>,
    params: &'a ParameterTable,
    slots: SmallVec<[Val<'a>; 16]>,
    /// Where the current function's frame starts in `slots`.
    base: usize,
    steps: usize,
    /// Size of everything put into containers or concatenated so far (see [`size`]).
    built: usize,
}

pub(super) fn run(
    program: &Program,
    request: &AccessRequest,
    facts: &RequestFacts<'_>,
    params: &ParameterTable,
) -> Option<Answer> {
    let mut eval = Eval {
        program,
        request,
        facts: *facts,
        params,
        slots: SmallVec::from_iter([Val::Record(&TX), Val::Record(&ENV)]),
        base: 0,
        steps: 0,
        built: 0,
    };
    let value = match eval.block(&program.functions[program.entry].body)? {
        Flow::Normal(v) | Flow::Return(v) => v,
    };
    match value {
        Val::Array(items) if items.is_empty() => Some(Answer::Nothing),
        value => to_dynamic(value).map(Answer::Value),
    }
}

impl<'a> Eval<'a> {
    fn tick(&mut self) -> Option<()> {
        self.steps += 1;
        (self.steps <= MAX_STEPS).then_some(())
    }

    /// Counts `value` into what the module built. Rhai checks the total size of a container
    /// (elements, and string bytes, nested included) against the sandbox limits; no container can
    /// hold more than everything built, so past a fraction of the smallest limit it is left to Rhai.
    fn build(&mut self, value: &Val<'_>) -> Option<()> {
        self.built += size(value);
        let limit = limits::MAX_STRING_SIZE
            .min(limits::MAX_ARRAY_SIZE)
            .min(limits::MAX_MAP_SIZE);
        (self.built <= limit / 2).then_some(())
    }

    fn block(&mut self, block: &'a [Stmt]) -> Option<Flow<'a>> {
        let mark = self.slots.len();
        let mut last = Val::Unit;
        for stmt in block {
            match self.stmt(stmt)? {
                Flow::Normal(v) => last = v,
                flow @ Flow::Return(_) => {
                    self.slots.truncate(mark);
                    return Some(flow);
                }
            }
        }
        self.slots.truncate(mark);
        Some(Flow::Normal(last))
    }

    fn slot(&mut self, slot: usize) -> Option<&mut Val<'a>> {
        self.slots.get_mut(self.base + slot)
    }

    fn stmt(&mut self, stmt: &'a Stmt) -> Option<Flow<'a>> {
        self.tick()?;
        match stmt {
            Stmt::Let(term) => {
                let value = self.term(term)?;
                self.slots.push(value);
            }
            Stmt::Assign(slot, term) => {
                let value = self.term(term)?;
                *self.slot(*slot)? = value;
            }
            Stmt::AddAssign(slot, term) => {
                let value = self.term(term)?;
                let current = std::mem::replace(self.slot(*slot)?, Val::Unit);
                let sum = add(current, value)?;
                self.build(&sum)?;
                *self.slot(*slot)? = sum;
            }
            Stmt::SetProperty(slot, name, term) => {
                let value = self.term(term)?;
                self.build(&value)?;
                let value = to_dynamic(value)?;
                let Val::Dyn(map) = self.slot(*slot)? else {
                    return None;
                };
                if map.is_shared() {
                    return None;
                }
                let mut map = map.write_lock::<Map>()?;
                if map.len() + 1 >= limits::MAX_MAP_SIZE {
                    return None;
                }
                map.insert(name.as_str().into(), value);
            }
            Stmt::Push(slot, term) => {
                let value = self.term(term)?;
                // Only into an array the module built, and only what stays a plain value there.
                if !plain(&value) {
                    return None;
                }
                self.build(&value)?;
                match self.slot(*slot)? {
                    Val::Array(items) if items.len() + 1 < limits::MAX_ARRAY_SIZE => {
                        items.push(value)
                    }
                    _ => return None,
                }
            }
            Stmt::If(cond, then, otherwise) => {
                let Val::Bool(taken) = self.term(cond)? else {
                    return None;
                };
                return self.block(if taken { then } else { otherwise });
            }
            Stmt::For(list, body) => {
                let items = elements(&self.term(list)?)?;
                for item in items {
                    self.tick()?;
                    let mark = self.slots.len();
                    self.slots.push(item);
                    let flow = self.block(body);
                    self.slots.truncate(mark);
                    if let Flow::Return(v) = flow? {
                        return Some(Flow::Return(v));
                    }
                }
            }
            Stmt::Return(Term::Slot(slot)) => {
                // The frame ends here: the value is moved out, not copied.
                let value = std::mem::replace(self.slot(*slot)?, Val::Unit);
                return Some(Flow::Return(value));
            }
            Stmt::Return(term) => return Some(Flow::Return(self.term(term)?)),
            Stmt::Expr(term) => return Some(Flow::Normal(self.term(term)?)),
            Stmt::Opaque => return None,
        }
        Some(Flow::Normal(Val::Unit))
    }

    fn term(&mut self, term: &'a Term) -> Option<Val<'a>> {
        self.tick()?;
        match term {
            Term::Slot(i) => self.slots.get(self.base + i).cloned(),
            Term::Const(value) => Some(from_dynamic(value.clone())),
            Term::Str(s) => Some(Val::Str(Cow::Borrowed(s.as_str()))),
            Term::Get(base, name) => {
                let base = self.term(base)?;
                self.get(base, name)
            }
            Term::Index(base, key) => {
                let base = self.term(base)?;
                match self.term(key)? {
                    Val::Str(key) => self.get(base, &key),
                    // A position from the start; one from the end, or past it, is Rhai's.
                    Val::Int(i) if base.kind() == Kind::Array => {
                        let i = usize::try_from(i).ok()?;
                        match &base {
                            Val::Array(items) => items.get(i).cloned(),
                            Val::Strings(items) => items.get(i).map(|s| Val::Str(Cow::Borrowed(s))),
                            Val::JsonArray(items) => items.get(i).map(json),
                            _ => None,
                        }
                    }
                    _ => None,
                }
            }
            Term::Split(text, separator) => match (self.term(text)?, self.term(separator)?) {
                (Val::Str(text), Val::Str(separator)) => {
                    let parts = text
                        .split(separator.as_ref())
                        .map(|s| Val::Str(Cow::Owned(s.to_owned())))
                        .collect::<Vec<_>>();
                    (parts.len() < limits::MAX_ARRAY_SIZE).then_some(Val::Array(parts))
                }
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
            Term::Compare(a, b, ordering) => {
                let (Val::Int(a), Val::Int(b)) = (self.term(a)?, self.term(b)?) else {
                    return None;
                };
                Some(Val::Bool(match ordering {
                    Ordering::Less => a < b,
                    Ordering::LessEq => a <= b,
                    Ordering::Greater => a > b,
                    Ordering::GreaterEq => a >= b,
                }))
            }
            Term::Add(a, b) => {
                let (a, b) = (self.term(a)?, self.term(b)?);
                let sum = add(a, b)?;
                self.build(&sum)?;
                Some(sum)
            }
            Term::Sub(a, b) => match (self.term(a)?, self.term(b)?) {
                (Val::Int(a), Val::Int(b)) => a.checked_sub(b).map(Val::Int),
                _ => None,
            },
            Term::TypeOf(x) => {
                let value = self.term(x)?;
                let names: &'a TypeNames = &self.program.names;
                let name: &'a str = match value.kind() {
                    Kind::Str => &names.string,
                    Kind::Bool => &names.boolean,
                    Kind::Int => &names.int,
                    Kind::Float => &names.float,
                    Kind::Unit => &names.unit,
                    Kind::Array => &names.array,
                    Kind::Map => &names.map,
                    Kind::Other => return None,
                };
                Some(Val::Str(Cow::Borrowed(name)))
            }
            Term::Contains(container, item) => {
                let (container, item) = (self.term(container)?, self.term(item)?);
                let Val::Str(item) = item else { return None };
                match &container {
                    // The registered `contains(array, string)`: some element is that string.
                    list if list.kind() == Kind::Array => {
                        Some(Val::Bool(strings(list)?.contains(&item)))
                    }
                    // `key in map`.
                    Val::Dyn(d) if d.is_map() => {
                        let map = d.read_lock::<Map>()?;
                        Some(Val::Bool(map.contains_key(item.as_ref())))
                    }
                    Val::Object(map) => Some(Val::Bool(map.contains_key(item.as_ref()))),
                    _ => None,
                }
            }
            Term::ContainsAll(have, need) => {
                let (have, need) = (self.term(have)?, self.term(need)?);
                if have.kind() != Kind::Array || need.kind() != Kind::Array {
                    return None;
                }
                let (have, need) = (strings(&have)?, strings(&need)?);
                Some(Val::Bool(need.iter().all(|n| have.contains(n))))
            }
            Term::IsEmpty(x) => match self.term(x)? {
                Val::Str(s) => Some(Val::Bool(s.is_empty())),
                Val::Strings(items) => Some(Val::Bool(items.len() == 0)),
                Val::JsonArray(items) => Some(Val::Bool(items.is_empty())),
                Val::Array(items) => Some(Val::Bool(items.is_empty())),
                Val::Object(map) => Some(Val::Bool(map.is_empty())),
                _ => None,
            },
            Term::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    let value = self.term(item)?;
                    if !plain(&value) {
                        return None;
                    }
                    self.build(&value)?;
                    out.push(value);
                }
                Some(Val::Array(out))
            }
            Term::Map(entries) => {
                let mut map = Map::new();
                for (key, value) in entries {
                    let value = self.term(value)?;
                    self.build(&value)?;
                    let value = to_dynamic(value)?;
                    map.insert(key.as_str().into(), value);
                }
                Some(Val::Dyn(Dynamic::from_map(map)))
            }
            Term::Block(block) => match self.block(block)? {
                Flow::Normal(v) => Some(v),
                // A `return` inside an expression: not modelled.
                Flow::Return(_) => None,
            },
            Term::Call(index, args) => self.call(&self.program.functions[*index], args),
            Term::Api(api, args) => {
                let args = args
                    .iter()
                    .map(|a| self.term(a))
                    .collect::<Option<Vec<_>>>()?;
                self.api(*api, args)
            }
        }
    }

    /// `base.name`: a field of a record, a key of a JSON or Rhai map (`()` when missing, since
    /// the engine does not fail on invalid properties).
    fn get(&self, base: Val<'a>, name: &str) -> Option<Val<'a>> {
        match base {
            Val::Record(field) => match field.child(name)? {
                Field::Leaf(get) => Some(leaf(get(self.request, &self.facts))),
                record => Some(Val::Record(record)),
            },
            Val::Object(map) => Some(map.get(name).map_or(Val::Unit, json)),
            Val::Dyn(d) => {
                let map = d.read_lock::<Map>()?;
                Some(map.get(name).map_or(Val::Unit, |v| from_dynamic(v.clone())))
            }
            _ => None,
        }
    }

    /// `&&` (`stop_on` false) or `||` (`stop_on` true): left to right, stopping at the first
    /// operand equal to `stop_on`; every operand evaluated must be a boolean.
    fn connective(&mut self, items: &'a [Term], stop_on: bool) -> Option<Val<'a>> {
        for item in items {
            match self.term(item)? {
                Val::Bool(b) if b == stop_on => return Some(Val::Bool(stop_on)),
                Val::Bool(_) => {}
                _ => return None,
            }
        }
        Some(Val::Bool(!stop_on))
    }

    /// A call of one of the module's functions, in a frame of its own (Rhai passes arguments by
    /// value, and a function sees none of its caller's variables).
    fn call(&mut self, function: &'a Function, args: &'a [Term]) -> Option<Val<'a>> {
        let mut values = Vec::with_capacity(args.len());
        for arg in args {
            values.push(self.term(arg)?);
        }
        let (base, mark) = (self.base, self.slots.len());
        self.base = mark;
        self.slots.extend(values);
        let flow = self.block(&function.body);
        self.slots.truncate(mark);
        self.base = base;
        match flow? {
            Flow::Normal(v) | Flow::Return(v) => Some(v),
        }
    }

    fn api(&self, api: Api, args: Vec<Val<'a>>) -> Option<Val<'a>> {
        let text = |i: usize| match args.get(i) {
            Some(Val::Str(s)) => Some(s.as_ref()),
            _ => None,
        };
        let jurisdictions = &self.facts.applicable.jurisdictions;
        let param = |found: Option<&Dynamic>| from_dynamic(found.cloned().unwrap_or(Dynamic::UNIT));
        Some(match api {
            Api::Deny | Api::Permit => {
                let effect = if matches!(api, Api::Deny) {
                    "deny"
                } else {
                    "permit"
                };
                let verdict = api::verdict(effect, text(0)?, text(1)?, text(2)?);
                Val::Dyn(Dynamic::from_map(verdict))
            }
            Api::Obligation => {
                let Some(Val::Dyn(details)) = args.get(2) else {
                    return None;
                };
                let details = details.clone().try_cast::<Map>()?;
                Val::Dyn(Dynamic::from_map(api::obligation(
                    text(0)?,
                    text(1)?,
                    details,
                )))
            }
            Api::ObligationBare => Val::Dyn(Dynamic::from_map(api::obligation(
                text(0)?,
                text(1)?,
                Map::new(),
            ))),
            Api::Param => param(self.params.get(text(0)?, text(1)?)),
            Api::HasParam => Val::Bool(self.params.get(text(0)?, text(1)?).is_some()),
            Api::RegimeParam => param(self.params.for_regime(jurisdictions, text(0)?, text(1)?)),
            Api::RegimeParamAt => {
                let name = text(1)?;
                let root = self.params.for_regime(jurisdictions, text(0)?, name)?;
                let path = match args.get(2)? {
                    Val::Array(items) => items
                        .iter()
                        .map(|v| to_dynamic(v.clone()))
                        .collect::<Option<Array>>()?,
                    _ => return None,
                };
                from_dynamic(api::descend(root, name, &path).ok()?)
            }
            Api::InRegime => Val::Bool(self.params.in_regime(text(0)?, text(1)?)),
            Api::Parent => Val::Str(Cow::Owned(self.params.parent(text(0)?))),
            Api::HoursAfter => {
                let (Some(Val::Int(seconds)), Some(Val::Int(hours))) = (args.first(), args.get(1))
                else {
                    return None;
                };
                from_dynamic(api::hours_after(*seconds, *hours))
            }
        })
    }
}

/// `+` on two strings, two integers, or a string and an integer (which Rhai writes in decimal);
/// anything else is not modelled.
fn add<'a>(a: Val<'a>, b: Val<'a>) -> Option<Val<'a>> {
    match (a, b) {
        (Val::Str(a), Val::Int(b)) => add(Val::Str(a), Val::Str(Cow::Owned(b.to_string()))),
        (Val::Int(a), Val::Str(b)) => add(Val::Str(Cow::Owned(a.to_string())), Val::Str(b)),
        (Val::Str(a), Val::Str(b)) => {
            if a.len() + b.len() >= limits::MAX_STRING_SIZE {
                return None;
            }
            let mut s = a.into_owned();
            s.push_str(&b);
            Some(Val::Str(Cow::Owned(s)))
        }
        (Val::Int(a), Val::Int(b)) => a.checked_add(b).map(Val::Int),
        _ => None,
    }
}
