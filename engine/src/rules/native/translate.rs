//! Rhai's AST to the evaluator's tree. Whatever is not in the subset becomes `Stmt::Opaque`, at
//! the smallest statement that holds it.

use super::{paths, Api, Function, Ordering, Stmt, Term, Verdict, MAX_CALL_DEPTH};
use rhai::{ASTFlags, Expr, ImmutableString, Position, ScriptFuncDef, Stmt as RStmt, AST};
use std::collections::BTreeMap;

/// One script function of the module, before and after translation.
struct Source {
    name: ImmutableString,
    params: Vec<ImmutableString>,
    statements: Vec<RStmt>,
}

enum State {
    Pending,
    InProgress,
    Done(Function),
}

struct Module {
    sources: Vec<Source>,
    states: Vec<State>,
    /// (name, arity) → index of the script function.
    by_name: BTreeMap<(ImmutableString, usize), usize>,
    /// How many of the first slots of the function being translated Rhai holds constant: the
    /// parameters of `evaluate`, which it refuses to assign ("Cannot modify constant tx").
    constant_slots: usize,
}

/// Every script function the module's `evaluate(tx, env)` reaches, translated, and its index.
pub(super) fn module(ast: &AST) -> Option<(Vec<Function>, usize)> {
    let defs: Vec<&ScriptFuncDef> = ast.iter_fn_def().map(|f| &**f).collect();
    let bodies = statements_of(ast, &defs)?;
    let sources: Vec<Source> = defs
        .iter()
        .zip(bodies)
        .map(|(f, statements)| Source {
            name: f.name.clone(),
            params: f.params.iter().cloned().collect(),
            statements,
        })
        .collect();
    let by_name = sources
        .iter()
        .enumerate()
        .map(|(i, s)| ((s.name.clone(), s.params.len()), i))
        .collect::<BTreeMap<_, _>>();
    let entry = *by_name.get(&(ImmutableString::from("evaluate"), 2))?;
    let mut module = Module {
        states: sources.iter().map(|_| State::Pending).collect(),
        sources,
        by_name,
        constant_slots: 0,
    };
    module.translate(entry, 0);
    let mut functions: Vec<Function> = module
        .states
        .into_iter()
        .map(|s| match s {
            State::Done(f) => f,
            _ => Function {
                body: vec![Stmt::Opaque],
            },
        })
        .collect();
    paths::resolve(&mut functions[entry].body);
    Some((functions, entry))
}

/// The top-level statements of each function's body. Rhai does not export the type of a body, so
/// they are found by walking the AST: a top-level statement belongs to the function whose body
/// spans its position. `None` when bodies overlap or a statement cannot be placed.
fn statements_of(ast: &AST, defs: &[&ScriptFuncDef]) -> Option<Vec<Vec<RStmt>>> {
    let at = |p: Position| Some((p.line()?, p.position()?));
    let spans = defs
        .iter()
        .map(|f| Some((at(f.body.start_position())?, at(f.body.end_position())?)))
        .collect::<Option<Vec<_>>>()?;
    for (i, a) in spans.iter().enumerate() {
        if spans[i + 1..].iter().any(|b| a.0 <= b.1 && b.0 <= a.1) {
            return None;
        }
    }
    let mut bodies = vec![Vec::new(); defs.len()];
    let mut unplaced = false;
    ast.walk(&mut |path| {
        if let [rhai::ASTNode::Stmt(stmt)] = path {
            match at(stmt.position()) {
                Some(p) => {
                    if let Some(i) = spans.iter().position(|s| p >= s.0 && p <= s.1) {
                        bodies[i].push((*stmt).clone());
                    }
                }
                None => unplaced = !matches!(stmt, RStmt::Noop(_)),
            }
        }
        !unplaced
    });
    (!unplaced).then_some(bodies)
}

impl Module {
    /// Translates function `index` (once); whether it can be called natively.
    fn translate(&mut self, index: usize, depth: usize) -> bool {
        match self.states[index] {
            State::Done(_) => return true,
            State::InProgress => return false,
            State::Pending => {}
        }
        if depth > MAX_CALL_DEPTH {
            return false;
        }
        self.states[index] = State::InProgress;
        let statements = std::mem::take(&mut self.sources[index].statements);
        let mut scope = self.sources[index].params.clone();
        let outer = std::mem::replace(&mut self.constant_slots, if depth == 0 { 2 } else { 0 });
        let body = self.block(&statements, &mut scope, depth);
        self.constant_slots = outer;
        self.sources[index].statements = statements;
        self.states[index] = State::Done(Function { body });
        true
    }

    fn block(
        &mut self,
        statements: &[RStmt],
        scope: &mut Vec<ImmutableString>,
        depth: usize,
    ) -> Vec<Stmt> {
        let mark = scope.len();
        let mut out = Vec::with_capacity(statements.len());
        for stmt in statements {
            if matches!(stmt, RStmt::Noop(_)) {
                continue;
            }
            let translated = self.stmt(stmt, scope, depth).unwrap_or(Stmt::Opaque);
            let opaque = matches!(translated, Stmt::Opaque);
            out.push(translated);
            if opaque {
                // Nothing after it is reached natively, and its scope is unknown.
                break;
            }
        }
        scope.truncate(mark);
        out
    }

    fn stmt(
        &mut self,
        stmt: &RStmt,
        scope: &mut Vec<ImmutableString>,
        depth: usize,
    ) -> Option<Stmt> {
        match stmt {
            RStmt::Var(x, flags, _) if (*flags & !ASTFlags::CONSTANT).is_empty() => {
                let term = self.term(&x.1, scope, depth)?;
                scope.push(x.0.name.clone());
                Some(Stmt::Let(term))
            }
            RStmt::Assignment(x) => {
                let (op, bin) = &**x;
                if let Expr::Dot(dot, flags, _) = &bin.lhs {
                    // `map.name = value`.
                    let (Expr::Variable(v, _, _), Expr::Property(p, _)) = (&dot.lhs, &dot.rhs)
                    else {
                        return None;
                    };
                    if !v.2.is_empty() || op.is_op_assignment() || !flags.is_empty() {
                        return None;
                    }
                    let slot = self.writable(scope, &v.1)?;
                    let value = self.term(&bin.rhs, scope, depth)?;
                    return Some(Stmt::SetProperty(slot, p.2.clone(), value));
                }
                let Expr::Variable(v, _, _) = &bin.lhs else {
                    return None;
                };
                if !v.2.is_empty() {
                    return None;
                }
                let slot = self.writable(scope, &v.1)?;
                let value = self.term(&bin.rhs, scope, depth)?;
                match op.get_op_assignment_info() {
                    None => Some(Stmt::Assign(slot, value)),
                    Some((.., "+")) => Some(Stmt::AddAssign(slot, value)),
                    Some(_) => None,
                }
            }
            RStmt::If(flow, _) => {
                let cond = self.term(&flow.expr, scope, depth)?;
                let then = self.block(flow.body.statements(), scope, depth);
                let otherwise = self.block(flow.branch.statements(), scope, depth);
                Some(Stmt::If(cond, then, otherwise))
            }
            RStmt::For(x, _) => {
                let (var, counter, flow) = &**x;
                if counter.is_some() {
                    return None;
                }
                let list = self.term(&flow.expr, scope, depth)?;
                scope.push(var.name.clone());
                let body = self.block(flow.body.statements(), scope, depth);
                scope.pop();
                Some(Stmt::For(list, body))
            }
            // `throw` is left to Rhai, which makes its error.
            RStmt::Return(value, flags, _) if flags.is_empty() => Some(Stmt::Return(match value {
                Some(v) => self.term(v, scope, depth)?,
                None => Term::Unit,
            })),
            RStmt::Block(block) => Some(Stmt::Expr(Term::Block(self.block(
                block.statements(),
                scope,
                depth,
            )))),
            RStmt::Expr(expr) => match &**expr {
                Expr::Dot(bin, flags, _) if !flags.contains(ASTFlags::NEGATED) => {
                    match (&bin.lhs, &bin.rhs) {
                        (Expr::Variable(v, _, _), Expr::MethodCall(call, _))
                            if v.2.is_empty()
                                && call.name == "push"
                                && call.args.len() == 1
                                && self.plain_method(call) =>
                        {
                            let slot = self.writable(scope, &v.1)?;
                            Some(Stmt::Push(slot, self.term(&call.args[0], scope, depth)?))
                        }
                        _ => Some(Stmt::Expr(self.term(expr, scope, depth)?)),
                    }
                }
                _ => Some(Stmt::Expr(self.term(expr, scope, depth)?)),
            },
            RStmt::FnCall(call, pos) => Some(Stmt::Expr(self.term(
                &Expr::FnCall(call.clone(), *pos),
                scope,
                depth,
            )?)),
            _ => None,
        }
    }

    /// The slot of a variable the function may change; `None` for a constant parameter.
    fn writable(&self, scope: &[ImmutableString], name: &ImmutableString) -> Option<usize> {
        scope
            .iter()
            .rposition(|n| n == name)
            .filter(|slot| *slot >= self.constant_slots)
    }

    /// A method call that cannot mean one of the module's own functions (bound to `this`, or
    /// with the object as the first argument).
    fn plain_method(&self, call: &rhai::FnCallExpr) -> bool {
        let defined = |arity| self.by_name.contains_key(&(call.name.clone(), arity));
        call.namespace.is_empty()
            && !call.capture_parent_scope
            && !defined(call.args.len())
            && !defined(call.args.len() + 1)
    }

    fn terms(
        &mut self,
        exprs: &[Expr],
        scope: &mut Vec<ImmutableString>,
        depth: usize,
    ) -> Option<Vec<Term>> {
        exprs.iter().map(|e| self.term(e, scope, depth)).collect()
    }

    fn boxed(
        &mut self,
        expr: &Expr,
        scope: &mut Vec<ImmutableString>,
        depth: usize,
    ) -> Option<Box<Term>> {
        self.term(expr, scope, depth).map(Box::new)
    }

    fn term(
        &mut self,
        expr: &Expr,
        scope: &mut Vec<ImmutableString>,
        depth: usize,
    ) -> Option<Term> {
        match expr {
            Expr::Variable(x, _, _) => {
                if !x.2.is_empty() {
                    return None;
                }
                scope.iter().rposition(|n| *n == x.1).map(Term::Slot)
            }
            Expr::StringConstant(s, _) => Some(Term::Str(s.clone())),
            Expr::BoolConstant(b, _) => Some(Term::Bool(*b)),
            Expr::IntegerConstant(i, _) => Some(Term::Int(*i)),
            Expr::Unit(_) => Some(Term::Unit),
            Expr::DynamicConstant(value, _) => Some(match value.read_lock::<ImmutableString>() {
                Some(s) => Term::Str(s.clone()),
                // `[]` is built without a copy of the constant.
                None if value
                    .read_lock::<rhai::Array>()
                    .is_some_and(|a| a.is_empty()) =>
                {
                    Term::Array(Vec::new())
                }
                None => match Verdict::of_constant(value) {
                    Some(verdict) => Term::Verdict(verdict),
                    None => Term::Const((**value).clone()),
                },
            }),
            Expr::Array(items, _) => Some(Term::Array(self.terms(items, scope, depth)?)),
            Expr::Map(x, _) => {
                let (entries, _) = &**x;
                let mut out = Vec::with_capacity(entries.len());
                for (key, value) in entries.iter() {
                    out.push((key.name.clone(), self.term(value, scope, depth)?));
                }
                Some(Term::Map(out))
            }
            Expr::Stmt(block) => Some(Term::Block(self.block(block.statements(), scope, depth))),
            Expr::Dot(bin, flags, _) if !flags.contains(ASTFlags::NEGATED) => {
                let base = self.term(&bin.lhs, scope, depth)?;
                self.chain(base, &bin.rhs, scope, depth)
            }
            Expr::Index(bin, flags, _) if !flags.contains(ASTFlags::NEGATED) => {
                let base = self.term(&bin.lhs, scope, depth)?;
                self.index(base, &bin.rhs, scope, depth)
            }
            Expr::And(items, _) => Some(Term::And(self.terms(items, scope, depth)?)),
            Expr::Or(items, _) => Some(Term::Or(self.terms(items, scope, depth)?)),
            Expr::FnCall(call, _) if call.namespace.is_empty() && !call.capture_parent_scope => {
                self.call(call, scope, depth)
            }
            _ => None,
        }
    }

    fn call(
        &mut self,
        call: &rhai::FnCallExpr,
        scope: &mut Vec<ImmutableString>,
        depth: usize,
    ) -> Option<Term> {
        let args = &call.args;
        let name = call.name.as_str();
        if call.op_token.is_some() {
            let binary = |this: &mut Self, scope: &mut Vec<ImmutableString>| {
                Some((
                    this.boxed(&args[0], scope, depth)?,
                    this.boxed(&args[1], scope, depth)?,
                ))
            };
            return match (name, args.len()) {
                ("==" | "!=", 2) => {
                    let (a, b) = binary(self, scope)?;
                    Some(Term::Eq(a, b, name == "!="))
                }
                ("!", 1) => Some(Term::Not(self.boxed(&args[0], scope, depth)?)),
                ("<" | "<=" | ">" | ">=", 2) => {
                    let (a, b) = binary(self, scope)?;
                    let ordering = match name {
                        "<" => Ordering::Less,
                        "<=" => Ordering::LessEq,
                        ">" => Ordering::Greater,
                        _ => Ordering::GreaterEq,
                    };
                    Some(Term::Compare(a, b, ordering))
                }
                ("+", 2) => {
                    let (a, b) = binary(self, scope)?;
                    Some(Term::Add(a, b))
                }
                ("-", 2) => {
                    let (a, b) = binary(self, scope)?;
                    Some(Term::Sub(a, b))
                }
                // `item in container`, which the parser turns into `contains(container, item)`.
                ("contains", 2) => {
                    let (a, b) = binary(self, scope)?;
                    Some(Term::Contains(a, b))
                }
                _ => None,
            };
        }
        // The module's own function of that name and arity comes first, as in Rhai.
        if let Some(&index) = self.by_name.get(&(call.name.clone(), args.len())) {
            let args = self.terms(args, scope, depth)?;
            return self
                .translate(index, depth + 1)
                .then_some(Term::Call(index, args));
        }
        match (name, args.len()) {
            ("type_of", 1) => Some(Term::TypeOf(self.boxed(&args[0], scope, depth)?)),
            ("contains", 2) => Some(Term::Contains(
                self.boxed(&args[0], scope, depth)?,
                self.boxed(&args[1], scope, depth)?,
            )),
            _ => {
                let api = Api::of(name, args.len())?;
                Some(Term::Api(api, self.terms(args, scope, depth)?))
            }
        }
    }

    /// The rest of a dot chain after `base`: `.name`, `.name[key]`, `.method(args)`, nested.
    fn chain(
        &mut self,
        base: Term,
        rhs: &Expr,
        scope: &mut Vec<ImmutableString>,
        depth: usize,
    ) -> Option<Term> {
        match rhs {
            Expr::Dot(bin, flags, _) if !flags.contains(ASTFlags::NEGATED) => {
                let next = self.step(base, &bin.lhs, scope, depth)?;
                self.chain(next, &bin.rhs, scope, depth)
            }
            other => self.step(base, other, scope, depth),
        }
    }

    fn step(
        &mut self,
        base: Term,
        expr: &Expr,
        scope: &mut Vec<ImmutableString>,
        depth: usize,
    ) -> Option<Term> {
        match expr {
            Expr::Property(p, _) => Some(Term::Get(Box::new(base), p.2.clone())),
            Expr::Index(bin, flags, _) if !flags.contains(ASTFlags::NEGATED) => {
                let indexed = self.step(base, &bin.lhs, scope, depth)?;
                self.index(indexed, &bin.rhs, scope, depth)
            }
            Expr::MethodCall(call, _) if self.plain_method(call) => {
                let base = Box::new(base);
                match (call.name.as_str(), call.args.len()) {
                    ("contains", 1) => Some(Term::Contains(
                        base,
                        self.boxed(&call.args[0], scope, depth)?,
                    )),
                    ("contains_all", 1) => Some(Term::ContainsAll(
                        base,
                        self.boxed(&call.args[0], scope, depth)?,
                    )),
                    ("is_empty", 0) => Some(Term::IsEmpty(base)),
                    ("split", 1) => {
                        Some(Term::Split(base, self.boxed(&call.args[0], scope, depth)?))
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// `base[key]`: one index (a chain of them is not modelled).
    fn index(
        &mut self,
        base: Term,
        key: &Expr,
        scope: &mut Vec<ImmutableString>,
        depth: usize,
    ) -> Option<Term> {
        match key {
            Expr::StringConstant(s, _) => Some(Term::Get(Box::new(base), s.clone())),
            Expr::Variable(..) | Expr::IntegerConstant(..) => {
                Some(Term::Index(Box::new(base), self.boxed(key, scope, depth)?))
            }
            _ => None,
        }
    }
}
