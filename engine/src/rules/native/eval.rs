//! Evaluation of a [`Program`] with Rhai's semantics for the subset it models. Every function here
//! returns `None` for "not modelled"; none of them has an effect outside the evaluation.

use super::value::{
    add, contains, elements, equal, equal_text, from_dynamic, json, leaf, plain, size, strings,
    to_dynamic, Kind, Val,
};
use super::verdict::Verdict;
use super::{Answer, Api, Function, Ordering, Program, Stmt, Term, TypeNames, MAX_STEPS};
use crate::cedar::RequestFacts;
use crate::rules::api::{self, ParameterTable};
use crate::rules::fields::{Field, ENV, TX};
use crate::rules::limits;
use crate::transaction::AccessRequest;
use rhai::{Dynamic, Map};
use smallvec::SmallVec;
use std::borrow::Cow;

/// The arguments of a call, evaluated (no function of the rule API takes more than three).
type Args<'a> = SmallVec<[Val<'a>; 3]>;

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

pub(super) fn run<'a>(
    program: &'a Program,
    request: &'a AccessRequest,
    facts: &RequestFacts<'a>,
    params: &'a ParameterTable,
) -> Option<Answer<'a>> {
    let mut eval = Eval {
        program,
        request,
        facts: *facts,
        params,
        slots: SmallVec::new(),
        base: 0,
        steps: 0,
        built: 0,
    };
    eval.slots.push(Val::Record(&TX));
    eval.slots.push(Val::Record(&ENV));
    let value = match eval.block(&program.functions[program.entry].body)? {
        Flow::Normal(v) | Flow::Return(v) => v,
    };
    match value {
        Val::Array(items) if items.is_empty() => Some(Answer::Nothing),
        // Verdicts alone (what a module returns whenever it says something) reach the decision as
        // they are; anything else as the Rhai value.
        Val::Array(items) if items.iter().all(|v| matches!(v, Val::Verdict(_))) => {
            let verdicts = items
                .into_iter()
                .filter_map(|v| match v {
                    Val::Verdict(verdict) => Some(*verdict),
                    _ => None,
                })
                .collect();
            Some(Answer::Verdicts(verdicts))
        }
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
                let target = self.slot(*slot)?;
                if let Val::Verdict(_) = target {
                    // Set on a verdict: from here on it is the map.
                    if let Val::Verdict(verdict) = std::mem::replace(target, Val::Unit) {
                        *target = Val::Dyn(Dynamic::from_map(verdict.into_map()));
                    }
                }
                let Val::Dyn(map) = target else {
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

    /// A term's value. Leaves (constants, locals and fields), the most frequent terms, are
    /// evaluated here, inline; everything else in [`Eval::compound`], whose larger frame they do
    /// not pay for.
    #[inline]
    fn term(&mut self, term: &'a Term) -> Option<Val<'a>> {
        self.tick()?;
        match term {
            Term::Str(s) => Some(Val::Str(Cow::Borrowed(s.as_str()))),
            Term::Bool(b) => Some(Val::Bool(*b)),
            Term::Int(i) => Some(Val::Int(*i)),
            Term::Unit => Some(Val::Unit),
            Term::Slot(i) => self.slots.get(self.base + i).cloned(),
            Term::Field(field, steps) => {
                // The steps of the path it stands for, this term's own already counted.
                self.steps += steps - 1;
                (self.steps <= MAX_STEPS).then_some(())?;
                Some(self.field(field))
            }
            compound => self.compound(compound),
        }
    }

    #[inline(never)]
    fn compound(&mut self, term: &'a Term) -> Option<Val<'a>> {
        match term {
            // Leaves are `term`'s; were one to arrive here, Rhai would evaluate the module.
            Term::Str(_)
            | Term::Bool(_)
            | Term::Int(_)
            | Term::Unit
            | Term::Slot(_)
            | Term::Field(..) => None,
            Term::Const(value) => Some(from_dynamic(value.clone())),
            Term::Verdict(verdict) => Some(Val::Verdict(Box::new(verdict.borrowed()))),
            Term::Get(base, name) => match &**base {
                // A local's property (`attrs["flag"]`): the local read in place, not copied.
                Term::Slot(slot) => {
                    self.tick()?;
                    self.get(self.slots.get(self.base + slot)?, name)
                }
                base => {
                    let base = self.term(base)?;
                    self.get(&base, name)
                }
            },
            Term::Index(base, key) => {
                let base = self.term(base)?;
                match self.term(key)? {
                    Val::Str(key) => self.get(&base, &key),
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
                if let (Term::Slot(slot), Term::Str(text)) = (&**a, &**b) {
                    // `local == "text"`, the most frequent comparison: the local read in place.
                    self.tick()?;
                    self.tick()?;
                    let value = self.slots.get(self.base + slot)?;
                    return equal_text(value, text).map(|eq| Val::Bool(eq != *negated));
                }
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
                    list if list.kind() == Kind::Array => contains(list, &item).map(Val::Bool),
                    // `key in map`.
                    Val::Dyn(d) if d.is_map() => {
                        let map = d.read_lock::<Map>()?;
                        Some(Val::Bool(map.contains_key(item.as_ref())))
                    }
                    Val::Object(map) => Some(Val::Bool(map.contains_key(item.as_ref()))),
                    Val::Verdict(verdict) => Some(Val::Bool(verdict.has_key(&item))),
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
                    .collect::<Option<Args<'a>>>()?;
                self.api(*api, args)
            }
        }
    }

    /// `base.name`: a field of a record, a key of a JSON or Rhai map (`()` when missing, since
    /// the engine does not fail on invalid properties).
    fn get(&self, base: &Val<'a>, name: &str) -> Option<Val<'a>> {
        match base {
            Val::Record(field) => Some(self.field(field.child(name)?)),
            Val::Object(map) => Some(map.get(name).map_or(Val::Unit, json)),
            Val::Dyn(d) => {
                let map = d.read_lock::<Map>()?;
                Some(map.get(name).map_or(Val::Unit, |v| from_dynamic(v.clone())))
            }
            Val::Verdict(verdict) => {
                let map = (**verdict).clone().into_map();
                Some(map.get(name).map_or(Val::Unit, |v| from_dynamic(v.clone())))
            }
            _ => None,
        }
    }

    /// A field's value: a leaf read from the request, or the record itself.
    fn field(&self, field: &'static Field) -> Val<'a> {
        match field {
            Field::Leaf(get) => leaf(get(self.request, &self.facts)),
            record => Val::Record(record),
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
        let mut values = Args::new();
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

    fn api(&self, api: Api, args: Args<'a>) -> Option<Val<'a>> {
        if matches!(
            api,
            Api::Deny | Api::Permit | Api::Obligation | Api::ObligationBare
        ) {
            return verdict(api, args);
        }
        let text = |i: usize| match args.get(i) {
            Some(Val::Str(s)) => Some(s.as_ref()),
            _ => None,
        };
        let jurisdictions = &self.facts.applicable.jurisdictions;
        // Parameters are shared and read-only in Rhai, like a JSON attribute map: read in place.
        let params: &'a ParameterTable = self.params;
        let param = |found: Option<&'a serde_json::Value>| found.map_or(Val::Unit, json);
        Some(match api {
            // Answered by `verdict`, above.
            Api::Deny | Api::Permit | Api::Obligation | Api::ObligationBare => return None,
            Api::Param => param(params.json(text(0)?, text(1)?)),
            Api::HasParam => Val::Bool(self.params.get(text(0)?, text(1)?).is_some()),
            Api::RegimeParam => param(params.json_for_regime(jurisdictions, text(0)?, text(1)?)),
            Api::RegimeParamAt => {
                // `api::descend` on the parameter in place. A key that is neither a string nor an
                // integer (which Rhai writes in decimal), a missing parameter, or a key looked up
                // in something other than a map (an error in Rhai) is left to Rhai.
                let name = text(1)?;
                let root = params.json_for_regime(jurisdictions, text(0)?, name)?;
                let Some(Val::Array(path)) = args.get(2) else {
                    return None;
                };
                let keys = path
                    .iter()
                    .map(|key| match key {
                        Val::Str(s) => Some(Cow::Borrowed(s.as_ref())),
                        Val::Int(i) => Some(Cow::Owned(i.to_string())),
                        _ => None,
                    })
                    .collect::<Option<SmallVec<[Cow<'_, str>; 4]>>>()?;
                api::descend(root, name, keys).ok()?.map_or(Val::Unit, json)
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
            Api::YearsSince => {
                let (Some(date), Some(Val::Int(seconds))) = (text(0), args.get(1)) else {
                    return None;
                };
                from_dynamic(api::years_since(date, *seconds))
            }
        })
    }
}

/// `deny`, `permit` and `obligation`: the verdict, its strings and details moved out of the
/// arguments (this call's own), not copied.
fn verdict(api: Api, args: Args<'_>) -> Option<Val<'_>> {
    let mut args = args.into_iter();
    let mut text = || match args.next() {
        Some(Val::Str(s)) => Some(s),
        _ => None,
    };
    let verdict = match api {
        Api::Deny | Api::Permit => Verdict::Rule {
            deny: matches!(api, Api::Deny),
            rule: text()?,
            citation: text()?,
            message: text()?,
        },
        Api::Obligation | Api::ObligationBare => {
            let (kind, citation) = (text()?, text()?);
            let details = match (api, args.next()) {
                (Api::ObligationBare, _) => Map::new(),
                (_, Some(Val::Dyn(details))) => details.try_cast::<Map>()?,
                (_, Some(Val::Verdict(details))) => details.into_map(),
                _ => return None,
            };
            Verdict::Obligation {
                kind,
                citation,
                details: Cow::Owned(details),
            }
        }
        _ => return None,
    };
    Some(Val::Verdict(Box::new(verdict)))
}
