//! A module's functions evaluated natively, without the interpreter, wherever they stay within a
//! subset whose meaning this evaluator mirrors exactly; anywhere else the module is called in Rhai.
//!
//! [`Program::of`] translates `evaluate` and the script functions it calls into a small tree
//! ([`Stmt`], [`Term`]). What it cannot translate becomes [`Stmt::Opaque`]; a program is only
//! half-translated where a module uses something outside the subset. [`Program::run`] evaluates
//! the tree against the request itself (no `tx`/`env` maps are built) and answers one of two
//! things: the module's result, exactly what Rhai would return (verdicts the module did not read
//! as maps kept as their parts: [`Verdict`]), or `None` — "not modelled" —
//! whenever it reaches an opaque statement or meets a value or operation outside the subset (an
//! unlike-typed comparison Rhai would reject, a float, a shared list put into a container, a
//! `throw`, more steps than [`MAX_STEPS`], …). Evaluation has no side effect, so `None` simply
//! means the module is called in Rhai, which gives the result, or the error, itself.
//!
//! The subset: `let`/`const`, assignment and `+=` to locals, `if`/`else` (also as an expression),
//! `return`, `for x in list`, `out.push(x)` on a local array; literals, array and map literals,
//! property and index reads of `tx`, `env`, JSON attribute maps and map values; `==`, `!=`, `!`,
//! `&&`, `||`, `<`, `<=`, `>`, `>=`, `+` and `-` on integers, `+` on strings (and a string with
//! an integer); `type_of`, `in`, the methods `contains`, `contains_all`, `is_empty` and `split`;
//! setting a property of a map the module built; the rule API's `deny`, `permit`,
//! `obligation`, `param`, `has_param`, `regime_param`, `regime_param_at`, `in_regime`, `parent`,
//! `hours_after` and `years_since`; and calls of the module's own functions (not recursive). A call by a name the
//! module defines itself is never taken for a built-in.
//!
//! Tests (`tests.rs` here, and the reference comparison over every case of the default bundle)
//! assert that a program's answer, when it gives one, is the interpreter's.

mod eval;
mod paths;
mod size_bound;
mod translate;
mod value;
mod verdict;

#[cfg(test)]
mod prop_tests;
#[cfg(test)]
mod tests;

use super::api::ParameterTable;
use super::fields::Field;
use crate::cedar::RequestFacts;
use crate::transaction::AccessRequest;
use rhai::{Dynamic, Engine, ImmutableString, AST};

pub(super) use size_bound::within_limits;
pub(super) use verdict::Verdict;

/// Evaluation steps past this many are left to Rhai. A step is one statement or expression, and
/// Rhai counts an operation for each statement and expression it evaluates (a loop's iterations and
/// calls included, never per element inside a built-in), so a module the evaluator finishes in a
/// tenth of Rhai's operation budget is far from exhausting it.
const MAX_STEPS: usize = 10_000;

/// Calls nested deeper than this are not inlined (Rhai's own limit is far above).
const MAX_CALL_DEPTH: usize = 8;

/// What a module returned, natively evaluated.
pub(super) enum Answer<'a> {
    /// An empty array: nothing to add to the decision (most modules, most of the time).
    Nothing,
    /// An array of verdicts, none of them read as a map.
    Verdicts(Vec<Verdict<'a>>),
    /// Anything else, as Rhai's value.
    Value(Dynamic),
}

impl Answer<'_> {
    /// The value as Rhai would have returned it.
    pub(super) fn into_dynamic(self) -> Dynamic {
        match self {
            Answer::Nothing => Dynamic::from_array(Vec::new()),
            Answer::Verdicts(verdicts) => Dynamic::from_array(
                verdicts
                    .into_iter()
                    .map(|v| Dynamic::from_map(v.into_map()))
                    .collect(),
            ),
            Answer::Value(value) => value,
        }
    }
}

/// The translated functions of one module; `functions[entry]` is `evaluate`.
pub(super) struct Program {
    functions: Vec<Function>,
    entry: usize,
    names: TypeNames,
}

struct Function {
    /// Parameters occupy the first slots of the function's frame.
    body: Vec<Stmt>,
}

/// A statement. Slots are numbered within the frame of the function they belong to.
enum Stmt {
    /// `let` (or `const`): the value goes to the next slot.
    Let(Term),
    /// `slot = value`.
    Assign(usize, Term),
    /// `slot += value`.
    AddAssign(usize, Term),
    /// `slot.name = value`, on a map the module built.
    SetProperty(usize, ImmutableString, Term),
    /// `slot.push(value)`.
    Push(usize, Term),
    If(Term, Vec<Stmt>, Vec<Stmt>),
    /// `for` over a list: the element goes to the next slot for each run of the body.
    For(Term, Vec<Stmt>),
    Return(Term),
    /// An expression statement: its value is the block's when it is the last.
    Expr(Term),
    /// Anything else: evaluation stops with "not modelled".
    Opaque,
}

enum Term {
    /// A local or a parameter (in `evaluate`, `tx` is slot 0 and `env` slot 1).
    Slot(usize),
    Bool(bool),
    Int(i64),
    Unit,
    /// Any other constant (a folded map or array, say).
    Const(Dynamic),
    /// A constant map that is a verdict (a folded call of the rule API's).
    Verdict(Verdict<'static>),
    Str(ImmutableString),
    /// `base.name`, `base["name"]`.
    Get(Box<Term>, ImmutableString),
    /// A field of `tx` or `env` named by a fixed path (`tx.context.purpose_of_use`), resolved
    /// while translating; stands for that many [`Term::Get`] and [`Term::Slot`] steps.
    Field(&'static Field, usize),
    /// `base[key]` with a computed key: a map's by a string, a list's by a position.
    Index(Box<Term>, Box<Term>),
    /// `text.split(separator)`.
    Split(Box<Term>, Box<Term>),
    Eq(Box<Term>, Box<Term>, bool),
    Not(Box<Term>),
    And(Vec<Term>),
    Or(Vec<Term>),
    Compare(Box<Term>, Box<Term>, Ordering),
    Add(Box<Term>, Box<Term>),
    Sub(Box<Term>, Box<Term>),
    TypeOf(Box<Term>),
    /// `list.contains(item)`, and `item in container`.
    Contains(Box<Term>, Box<Term>),
    ContainsAll(Box<Term>, Box<Term>),
    IsEmpty(Box<Term>),
    Array(Vec<Term>),
    Map(Vec<(ImmutableString, Term)>),
    /// An `if` used as an expression, or a block in braces.
    Block(Vec<Stmt>),
    Call(usize, Vec<Term>),
    Api(Api, Vec<Term>),
}

/// `<`, `<=`, `>`, `>=`.
#[derive(Clone, Copy)]
enum Ordering {
    Less,
    LessEq,
    Greater,
    GreaterEq,
}

/// A function of the rule API (api.rs), by arity.
#[derive(Clone, Copy)]
enum Api {
    Deny,
    Permit,
    Obligation,
    ObligationBare,
    Param,
    HasParam,
    RegimeParam,
    RegimeParamAt,
    InRegime,
    Parent,
    HoursAfter,
    YearsSince,
}

impl Api {
    fn of(name: &str, arity: usize) -> Option<Api> {
        Some(match (name, arity) {
            ("deny", 3) => Api::Deny,
            ("permit", 3) => Api::Permit,
            ("obligation", 3) => Api::Obligation,
            ("obligation", 2) => Api::ObligationBare,
            ("param", 2) => Api::Param,
            ("has_param", 2) => Api::HasParam,
            ("regime_param", 2) => Api::RegimeParam,
            ("regime_param_at", 3) => Api::RegimeParamAt,
            ("in_regime", 2) => Api::InRegime,
            ("parent", 1) => Api::Parent,
            ("hours_after", 2) => Api::HoursAfter,
            ("years_since", 2) => Api::YearsSince,
            _ => return None,
        })
    }
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

impl Program {
    /// The program of `ast`'s `evaluate(tx, env)`; `None` when nothing of it can be translated.
    pub(super) fn of(engine: &Engine, ast: &AST) -> Option<Program> {
        let (functions, entry) = translate::module(ast)?;
        let program = Program {
            functions,
            entry,
            names: TypeNames::of(engine),
        };
        let opens_opaque = matches!(program.functions[entry].body.first(), Some(Stmt::Opaque));
        (!opens_opaque).then_some(program)
    }

    /// What `evaluate` returns for this request, or `None` when that is not modelled (the module
    /// must then be called in Rhai). The caller first asks [`within_limits`]: on a request
    /// past it, no program runs.
    pub(super) fn run<'a>(
        &'a self,
        request: &'a AccessRequest,
        facts: &RequestFacts<'a>,
        params: &'a ParameterTable,
    ) -> Option<Answer<'a>> {
        eval::run(self, request, facts, params)
    }
}
