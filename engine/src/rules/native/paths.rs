//! Fixed paths from `evaluate`'s parameters (`tx.context.purpose_of_use`) resolved to the fields
//! they name, once while translating, instead of looked up by name on every evaluation.

use super::{Stmt, Term};
use crate::rules::fields::{ENV, TX};

/// Rewrites every `tx.…` and `env.…` path in `evaluate`'s body to a [`Term::Field`]. Sound
/// because a path always means the same value there: Rhai holds `evaluate`'s parameters constant,
/// and the translation leaves any assignment to them to Rhai (which refuses it).
pub(super) fn resolve(body: &mut [Stmt]) {
    body.iter_mut().for_each(stmt);
}

fn stmt(s: &mut Stmt) {
    match s {
        Stmt::Let(t)
        | Stmt::Assign(_, t)
        | Stmt::AddAssign(_, t)
        | Stmt::SetProperty(_, _, t)
        | Stmt::Push(_, t)
        | Stmt::Return(t)
        | Stmt::Expr(t) => term(t),
        Stmt::If(c, then, otherwise) => {
            term(c);
            then.iter_mut().for_each(stmt);
            otherwise.iter_mut().for_each(stmt);
        }
        Stmt::For(list, body) => {
            term(list);
            body.iter_mut().for_each(stmt);
        }
        Stmt::Opaque => {}
    }
}

/// Resolves the paths inside `t`, then `t` itself when it extends one.
fn term(t: &mut Term) {
    match t {
        Term::Get(a, _) | Term::Not(a) | Term::TypeOf(a) | Term::IsEmpty(a) => term(a),
        Term::Index(a, b)
        | Term::Split(a, b)
        | Term::Eq(a, b, _)
        | Term::Compare(a, b, _)
        | Term::Add(a, b)
        | Term::Sub(a, b)
        | Term::Contains(a, b)
        | Term::ContainsAll(a, b) => {
            term(a);
            term(b);
        }
        Term::And(items) | Term::Or(items) | Term::Array(items) | Term::Call(_, items) => {
            items.iter_mut().for_each(term)
        }
        Term::Api(_, items) => items.iter_mut().for_each(term),
        Term::Map(entries) => entries.iter_mut().for_each(|(_, v)| term(v)),
        Term::Block(stmts) => stmts.iter_mut().for_each(stmt),
        Term::Slot(_)
        | Term::Bool(_)
        | Term::Int(_)
        | Term::Unit
        | Term::Const(_)
        | Term::Verdict(_)
        | Term::Str(_)
        | Term::Field(..) => {}
    }
    let Term::Get(base, name) = t else { return };
    let (field, steps) = match **base {
        Term::Slot(0) => (&TX, 1),
        Term::Slot(1) => (&ENV, 1),
        Term::Field(field, steps) => (field, steps),
        _ => return,
    };
    if let Some(child) = field.child(name) {
        *t = Term::Field(child, steps + 1);
    }
}
