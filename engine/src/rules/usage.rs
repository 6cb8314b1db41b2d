//! Which fields of `tx` and `env` a module can read, found in its AST.
//!
//! The analysis over-approximates, so a field it leaves out is one the module never reads. It
//! follows `evaluate`'s parameters and the variables bound to them or to records inside them
//! (`let ctx = tx.context;`), or passed to a function the module defines (`target(tx.resource)`
//! binds its parameter), flow-insensitively: a variable stands for every path it is bound to
//! anywhere in the module. Reading a property chain (`ctx.recipient.id`) reads that field; any other
//! use of a path — an argument of any other function, a method call's object, an index that is not
//! a string literal, a comparison, a loop over it, an assignment — reads the whole subtree under
//! it. (A function the script defines is called in preference to a registered one of the same name
//! and arity, so its parameters are where such an argument goes.)

use super::fields::Field;
use rhai::{ASTNode, Expr, ImmutableString, Stmt, AST};
use std::collections::{BTreeMap, BTreeSet};

/// A path from a root (`tx` or `env`) down the field tree.
pub(super) type Path = Vec<&'static str>;

/// Subtrees some module reads whole.
#[derive(Default)]
pub(super) struct Usage {
    whole: BTreeSet<Path>,
    /// Paths a variable is bound to (`let attrs = tx.context.attributes;`): evaluating the binding
    /// reads every record on the way to it, even when the variable is never used.
    bound: BTreeSet<Path>,
}

impl Usage {
    /// Everything under both roots: what a module that cannot be analysed gets.
    pub(super) fn everything(roots: &[(&'static str, &'static Field); 2]) -> Usage {
        Usage {
            whole: roots.iter().map(|(name, _)| vec![*name]).collect(),
            bound: BTreeSet::new(),
        }
    }

    /// Whether the subtree at `path` is read whole.
    pub(super) fn wanted(&self, path: &[&'static str]) -> bool {
        (1..=path.len()).any(|n| self.whole.contains(&path[..n]))
    }

    /// Whether something strictly below `path` is read, or `path` is on the way to (or is) a
    /// path a variable is bound to.
    pub(super) fn on_route(&self, path: &[&'static str]) -> bool {
        self.whole
            .iter()
            .any(|u| u.len() > path.len() && u.starts_with(path))
            || self
                .bound
                .iter()
                .any(|b| b.len() >= path.len() && b.starts_with(path))
    }

    /// What `ast` reads; `roots` names the field trees of `evaluate`'s two parameters.
    pub(super) fn of(ast: &AST, roots: &[(&'static str, &'static Field); 2]) -> Usage {
        let Some(entry) = ast
            .iter_fn_def()
            .find(|f| f.name == "evaluate" && f.params.len() == 2)
        else {
            return Usage::everything(roots);
        };
        let mut resolved: BTreeMap<ImmutableString, BTreeSet<Path>> = BTreeMap::new();
        for (param, (root, _)) in entry.params.iter().zip(roots) {
            resolved
                .entry(param.clone())
                .or_default()
                .insert(vec![*root]);
        }
        let functions = script_functions(ast);
        let bindings = aliases(ast, &functions);
        // Paths are bounded by the field tree, so this reaches a fixpoint.
        loop {
            let mut changed = false;
            for (name, base, props) in &bindings {
                let Some(bases) = resolved.get(base) else {
                    continue;
                };
                let paths: Vec<Path> = bases
                    .iter()
                    .filter_map(|b| normalise(roots, b, props.iter().map(|p| p.as_str())))
                    .collect();
                let entry = resolved.entry(name.clone()).or_default();
                for p in paths {
                    changed |= entry.insert(p);
                }
            }
            if !changed {
                break;
            }
        }
        let mut usage = Usage {
            bound: resolved.values().flatten().cloned().collect(),
            ..Usage::default()
        };
        ast.walk(&mut |path: &[ASTNode]| {
            let Some((ASTNode::Expr(expr), ancestors)) = path.split_last() else {
                return true;
            };
            let parent = ancestors.last();
            let read = |usage: &mut Usage, name: &ImmutableString, props: &[&str]| {
                for base in resolved.get(name).into_iter().flatten() {
                    if let Some(p) = normalise(roots, base, props.iter().copied()) {
                        usage.whole.insert(p);
                    }
                }
            };
            match expr {
                Expr::Variable(x, _, _) if x.2.is_empty() && resolved.contains_key(&x.1) => {
                    let handled_by_parent = match parent {
                        Some(ASTNode::Expr(Expr::Dot(bin, _, _) | Expr::Index(bin, _, _))) => {
                            std::ptr::eq(&bin.lhs, *expr)
                        }
                        Some(ASTNode::Stmt(Stmt::Var(v, _, _))) => std::ptr::eq(&v.1, *expr),
                        Some(ASTNode::Expr(call)) => {
                            bound_parameter(call, expr, &functions).is_some()
                        }
                        _ => false,
                    };
                    if !handled_by_parent {
                        read(&mut usage, &x.1, &[]);
                    }
                }
                Expr::Dot(bin, _, _) | Expr::Index(bin, _, _) => {
                    let Expr::Variable(x, _, _) = &bin.lhs else {
                        return true;
                    };
                    if !x.2.is_empty() || !resolved.contains_key(&x.1) {
                        return true;
                    }
                    let alias = pure_chain(expr).is_some()
                        && match parent {
                            Some(ASTNode::Stmt(Stmt::Var(v, _, _))) => std::ptr::eq(&v.1, *expr),
                            Some(ASTNode::Expr(call)) => {
                                bound_parameter(call, expr, &functions).is_some()
                            }
                            _ => false,
                        };
                    if alias {
                        return true;
                    }
                    let props = match expr {
                        Expr::Dot(..) => followed(&bin.rhs),
                        _ => Vec::new(),
                    };
                    read(&mut usage, &x.1, &props);
                }
                _ => {}
            }
            true
        });
        usage
    }
}

/// The module's own functions: name → parameter lists.
type Functions = BTreeMap<ImmutableString, Vec<Vec<ImmutableString>>>;

fn script_functions(ast: &AST) -> Functions {
    let mut functions = Functions::new();
    for f in ast.iter_fn_def() {
        functions
            .entry(f.name.clone())
            .or_default()
            .push(f.params.iter().cloned().collect());
    }
    functions
}

/// When `call` calls a function of the module with `arg` as an argument, the parameter it binds.
fn bound_parameter<'f>(
    call: &Expr,
    arg: &Expr,
    functions: &'f Functions,
) -> Option<&'f ImmutableString> {
    let Expr::FnCall(call, _) = call else {
        return None;
    };
    if !call.namespace.is_empty() || call.op_token.is_some() || call.capture_parent_scope {
        return None;
    }
    let position = call.args.iter().position(|a| std::ptr::eq(a, arg))?;
    let params = functions
        .get(&call.name)?
        .iter()
        .find(|p| p.len() == call.args.len())?;
    params.get(position)
}

/// `let name = base.p1.p2;` (or `let name = base;`) anywhere in the module, and each argument
/// `base.p1.p2` of a call to one of its functions, which binds that function's parameter.
fn aliases(
    ast: &AST,
    functions: &Functions,
) -> Vec<(ImmutableString, ImmutableString, Vec<ImmutableString>)> {
    let mut out = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        match path.last() {
            Some(ASTNode::Stmt(Stmt::Var(v, _, _))) => {
                if let Some((base, props)) = pure_chain(&v.1) {
                    out.push((v.0.name.clone(), base, props));
                }
            }
            Some(ASTNode::Expr(call @ Expr::FnCall(fc, _))) => {
                for arg in &fc.args {
                    if let (Some(param), Some((base, props))) =
                        (bound_parameter(call, arg, functions), pure_chain(arg))
                    {
                        out.push((param.clone(), base, props));
                    }
                }
            }
            _ => {}
        }
        true
    });
    out
}

/// A variable followed only by property reads: its name and the properties.
fn pure_chain(expr: &Expr) -> Option<(ImmutableString, Vec<ImmutableString>)> {
    match expr {
        Expr::Variable(x, _, _) if x.2.is_empty() => Some((x.1.clone(), Vec::new())),
        Expr::Dot(bin, _, _) => {
            let Expr::Variable(x, _, _) = &bin.lhs else {
                return None;
            };
            if !x.2.is_empty() {
                return None;
            }
            let mut props = Vec::new();
            let mut rest = &bin.rhs;
            loop {
                match rest {
                    Expr::Property(p, _) => {
                        props.push(p.2.clone());
                        return Some((x.1.clone(), props));
                    }
                    Expr::Dot(inner, _, _) => {
                        let Expr::Property(p, _) = &inner.lhs else {
                            return None;
                        };
                        props.push(p.2.clone());
                        rest = &inner.rhs;
                    }
                    _ => return None,
                }
            }
        }
        _ => None,
    }
}

/// The properties a dot chain reads before anything else (a method call, an index) uses the value.
fn followed(rhs: &Expr) -> Vec<&str> {
    let mut props = Vec::new();
    let mut rest = rhs;
    loop {
        let (head, next) = match rest {
            Expr::Dot(inner, _, _) => (&inner.lhs, Some(&inner.rhs)),
            other => (other, None),
        };
        match head {
            Expr::Property(p, _) => props.push(p.2.as_str()),
            Expr::Index(inner, _, _) => {
                if let Expr::Property(p, _) = &inner.lhs {
                    props.push(p.2.as_str());
                }
                return props;
            }
            _ => return props,
        }
        match next {
            Some(n) => rest = n,
            None => return props,
        }
    }
}

/// `base` extended by `props`, as far as the field tree goes: a read below a leaf reads the leaf,
/// and a name the tree does not have reads nothing of it (`None`).
fn normalise<'p>(
    roots: &[(&'static str, &'static Field); 2],
    base: &Path,
    props: impl Iterator<Item = &'p str>,
) -> Option<Path> {
    let (_, mut field) = roots.iter().find(|(name, _)| Some(name) == base.first())?;
    for name in &base[1..] {
        field = field.child(name)?;
    }
    let mut path = base.clone();
    for prop in props {
        if matches!(field, Field::Leaf(_)) {
            break;
        }
        let Field::Record(fields) = field else {
            break;
        };
        let (name, child) = fields.iter().find(|(n, _)| *n == prop)?;
        path.push(name);
        field = child;
    }
    Some(path)
}
