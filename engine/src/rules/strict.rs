//! Strict typing for rule modules: an operator applied to operands of unlike types is an error, so
//! the decision is a deny listing it, never a silently false comparison.
//!
//! Rhai's own operators answer `false` for a comparison of unlike types (`"5000" > 1000`), and `+`
//! of a string and `()` drops the `()`: in a deny rule either is a silent allow. This module
//! registers, for every such pair of types, an operator function that fails naming both types.
//! Rhai looks for a registered operator before its built-in one only when its fast-operator mode
//! is off ([`super::engine_with`] turns it off); operators on like types, which register nothing
//! here, still resolve to the built-ins.
//!
//! What stays allowed: like types; an integer with a float (compared as numbers); a string with a
//! character; `==` and `!=` with `()` on either side, which is how a module asks whether a fact is
//! absent (`attrs.flag == true` is false when `flag` is absent, "not established"); and `+` of a
//! string with an integer, float, boolean or character (written in decimal), which modules use to
//! build messages. What is refused: `<`, `<=`, `>`, `>=` between unlike types, or with `()` on
//! either side; `==` and `!=` between unlike types neither of which is `()`; `+` (and `+=`) with
//! `()`, or of a string with a list, map, blob or function pointer.

use rhai::{Array, Blob, Engine, EvalAltResult, FnPtr, ImmutableString, Map, INT};

/// The operand types (as Rhai names them to modules).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ty {
    Int,
    Float,
    Bool,
    Str,
    Char,
    Unit,
    Array,
    Map,
    Blob,
    FnPtr,
}

const TYPES: [Ty; 10] = [
    Ty::Int,
    Ty::Float,
    Ty::Bool,
    Ty::Str,
    Ty::Char,
    Ty::Unit,
    Ty::Array,
    Ty::Map,
    Ty::Blob,
    Ty::FnPtr,
];

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::Int => "integer",
            Ty::Float => "float",
            Ty::Bool => "boolean",
            Ty::Str => "string",
            Ty::Char => "character",
            Ty::Unit => "() (no value: an absent field, attribute or parameter)",
            Ty::Array => "array",
            Ty::Map => "map",
            Ty::Blob => "blob",
            Ty::FnPtr => "function pointer",
        }
    }

    fn numeric(self) -> bool {
        matches!(self, Ty::Int | Ty::Float)
    }

    fn text(self) -> bool {
        matches!(self, Ty::Str | Ty::Char)
    }
}

/// Whether `op` on `(a, b)` is refused.
fn refused(op: &str, a: Ty, b: Ty) -> bool {
    let alike = a == b || (a.numeric() && b.numeric()) || (a.text() && b.text());
    match op {
        "==" | "!=" => !alike && a != Ty::Unit && b != Ty::Unit,
        "<" | "<=" | ">" | ">=" => !alike || a == Ty::Unit,
        "+" => {
            let printable = |t: Ty| matches!(t, Ty::Int | Ty::Float | Ty::Bool | Ty::Char);
            let concat = (a == Ty::Str && printable(b)) || (b == Ty::Str && printable(a));
            a == Ty::Unit || b == Ty::Unit || (!alike && !concat && (a == Ty::Str || b == Ty::Str))
        }
        _ => false,
    }
}

/// The error a refused operator raises.
fn mismatch(op: &str, a: Ty, b: Ty) -> Box<EvalAltResult> {
    format!(
        "type error: `{op}` between {} and {}: rule modules compare and combine values of one type \
         only (check `type_of(x)` first, or compare with `== true` for a flag)",
        a.name(),
        b.name()
    )
    .into()
}

/// Registers the failing operator for one pair of types.
fn register_pair<A: rhai::Variant + Clone, B: rhai::Variant + Clone>(
    engine: &mut Engine,
    a: Ty,
    b: Ty,
) {
    for op in ["==", "!=", "<", "<=", ">", ">=", "+"] {
        if !refused(op, a, b) {
            continue;
        }
        engine.register_fn(op, move |_: A, _: B| -> Result<bool, Box<EvalAltResult>> {
            Err(mismatch(op, a, b))
        });
        // Rhai's string `+=` takes any value (`s += ()` appends nothing): refused alike. For other
        // types `+=` falls back to the `+` registered above.
        if op == "+" && a == Ty::Str {
            engine.register_fn(
                "+=",
                move |_: &mut A, _: B| -> Result<(), Box<EvalAltResult>> {
                    Err(mismatch("+=", a, b))
                },
            );
        }
    }
}

macro_rules! with_rust_type {
    ($ty:expr, $k:ident => $body:expr) => {
        match $ty {
            Ty::Int => {
                type $k = INT;
                $body
            }
            Ty::Float => {
                type $k = rhai::FLOAT;
                $body
            }
            Ty::Bool => {
                type $k = bool;
                $body
            }
            Ty::Str => {
                type $k = ImmutableString;
                $body
            }
            Ty::Char => {
                type $k = char;
                $body
            }
            Ty::Unit => {
                type $k = ();
                $body
            }
            Ty::Array => {
                type $k = Array;
                $body
            }
            Ty::Map => {
                type $k = Map;
                $body
            }
            Ty::Blob => {
                type $k = Blob;
                $body
            }
            Ty::FnPtr => {
                type $k = FnPtr;
                $body
            }
        }
    };
}

/// Registers every refused operator; see the module documentation.
pub(super) fn register(engine: &mut Engine) {
    engine.set_fast_operators(false);
    for a in TYPES {
        for b in TYPES {
            with_rust_type!(a, A => with_rust_type!(b, B => register_pair::<A, B>(engine, a, b)));
        }
    }
}
