//! Argo Rollouts' success and failure conditions: the subset of expr-lang
//! (github.com/expr-lang/expr) that conditions over a Prometheus result use,
//! evaluated with Go expr's runtime semantics, and the functions Argo adds
//! (`utils/evaluate/evaluate.go` `EvalCondition`: `isNaN`, `isInf`, `asInt`,
//! `asFloat`, `isNil`, `default`).
//!
//! Why our own evaluator and not the `expr-lang` crate (2.1.0): that crate
//! returns `nil` for an out-of-range index where Go's expr fails
//! (`vm/runtime.Fetch` panics "index out of range"), so on an empty vector
//! `result[0] != 1` is true there (a Successful measurement) and an Error in
//! Argo; and Go's expr rejects unknown names at compile time, also in
//! branches never evaluated. An empty vector turning into an Error is the
//! rule that aborts low-traffic canaries, so it must be exact.
//!
//! Supported: number, string, bool and `nil` literals; `result`; arrays
//! `[a, b]`; unary `-`, `+`, `!`, `not`; `+ - * / % ** ^`; comparisons;
//! `== !=`; `&& and || or`; `in`, `not in`; `??`; `c ? a : b`; indexing
//! with negative indexes (`result[-1]`); functions `len`, `all`, `any`,
//! `none`, `one`, `filter`, `map`, `count`, `sum`, `mean`, `max`, `min`,
//! `abs`, `int`, `float`, `first`, `last` and Argo's six. Predicates take
//! `#` with or without braces: `all(result, # < 1)`, `all(result, {# < 1})`.
//! Not supported (refused when the condition is read): maps, member access
//! other than on `#`, string operators (`matches`, `contains`), `let`.

use std::fmt;

/// A value during evaluation.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `nil`
    Nil,
    /// `true` / `false`
    Bool(bool),
    /// Go `int`
    Int(i64),
    /// Go `float64`
    Float(f64),
    /// a string literal
    Str(String),
    /// an array (a Prometheus vector is an array of floats)
    Array(Vec<Value>),
}

impl Value {
    fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::Array(_) => "[]interface {}",
        }
    }
}

/// A condition that did not parse, or that failed while it ran (in Argo, a
/// measurement whose condition fails to run is an Error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprError(pub String);

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, ExprError> {
    Err(ExprError(msg.into()))
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64, bool), // value, is_int
    Str(String),
    Ident(String),
    Op(&'static str),
    Hash,
}

const OPS: [&str; 28] = [
    "**", "==", "!=", "<=", ">=", "&&", "||", "??", "?.", "<", ">", "+", "-", "*", "/", "%", "^",
    "!", "(", ")", "[", "]", "{", "}", ",", ".", "?", ":",
];

fn lex(src: &str) -> Result<Vec<Tok>, ExprError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            let mut is_int = true;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '_') {
                i += 1;
            }
            if i < chars.len() && chars[i] == '.' && chars.get(i + 1).is_none_or(|d| *d != '.') {
                is_int = false;
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                is_int = false;
                i += 1;
                if i < chars.len() && (chars[i] == '+' || chars[i] == '-') {
                    i += 1;
                }
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            let text: String = chars[start..i].iter().filter(|c| **c != '_').collect();
            let v: f64 = text
                .parse()
                .map_err(|_| ExprError(format!("invalid number {text}")))?;
            if is_int && text.parse::<i64>().is_err() {
                return err(format!("integer literal {text} is out of range"));
            }
            out.push(Tok::Num(v, is_int));
            continue;
        }
        if c == '"' || c == '\'' || c == '`' {
            let quote = c;
            i += 1;
            let mut s = String::new();
            loop {
                let Some(&ch) = chars.get(i) else {
                    return err("literal not terminated");
                };
                i += 1;
                if ch == quote {
                    break;
                }
                if ch == '\\' && quote != '`' {
                    let Some(&e) = chars.get(i) else {
                        return err("literal not terminated");
                    };
                    i += 1;
                    s.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        other => other,
                    });
                } else {
                    s.push(ch);
                }
            }
            out.push(Tok::Str(s));
            continue;
        }
        if c.is_alphabetic() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
            continue;
        }
        if c == '#' {
            out.push(Tok::Hash);
            i += 1;
            continue;
        }
        let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
        match OPS.iter().find(|op| rest.starts_with(**op)) {
            Some(op) => {
                out.push(Tok::Op(op));
                i += op.len();
            }
            None => return err(format!("unexpected token {c:?}")),
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Lit(Value),
    Result,
    Pointer,
    Array(Vec<Node>),
    Unary(&'static str, Box<Node>),
    Binary(&'static str, Box<Node>, Box<Node>),
    Ternary(Box<Node>, Box<Node>, Box<Node>),
    Index(Box<Node>, Box<Node>),
    Call(String, Vec<Node>),
}

const PREDICATE_FUNCS: [&str; 7] = ["all", "any", "none", "one", "filter", "map", "count"];
const FUNCS: [&str; 20] = [
    "len", "sum", "mean", "max", "min", "abs", "int", "float", "first", "last", "isNaN", "isInf",
    "asInt", "asFloat", "isNil", "default", "ceil", "floor", "round", "median",
];

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    in_predicate: usize,
}

fn binary_prec(tok: &Tok) -> Option<(&'static str, u8, bool)> {
    // (canonical op, precedence, right associative), from expr's parser/operator table
    Some(match tok {
        Tok::Op("||") => ("||", 10, false),
        Tok::Ident(s) if s == "or" => ("||", 10, false),
        Tok::Op("&&") => ("&&", 15, false),
        Tok::Ident(s) if s == "and" => ("&&", 15, false),
        Tok::Op("==") => ("==", 20, false),
        Tok::Op("!=") => ("!=", 20, false),
        Tok::Op("<") => ("<", 20, false),
        Tok::Op(">") => (">", 20, false),
        Tok::Op("<=") => ("<=", 20, false),
        Tok::Op(">=") => (">=", 20, false),
        Tok::Ident(s) if s == "in" => ("in", 20, false),
        Tok::Op("+") => ("+", 30, false),
        Tok::Op("-") => ("-", 30, false),
        Tok::Op("*") => ("*", 60, false),
        Tok::Op("/") => ("/", 60, false),
        Tok::Op("%") => ("%", 60, false),
        Tok::Op("**") | Tok::Op("^") => ("**", 100, true),
        Tok::Op("??") => ("??", 250, false),
        _ => return None,
    })
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn expect(&mut self, op: &'static str) -> Result<(), ExprError> {
        match self.next() {
            Some(Tok::Op(o)) if o == op => Ok(()),
            other => err(format!("expected {op}, found {}", show(other.as_ref()))),
        }
    }

    fn expression(&mut self, min_prec: u8) -> Result<Node, ExprError> {
        let mut lhs = self.unary()?;
        loop {
            // `not in`
            if matches!(self.peek(), Some(Tok::Ident(s)) if s == "not")
                && matches!(self.toks.get(self.pos + 1), Some(Tok::Ident(s)) if s == "in")
            {
                if 20 < min_prec {
                    break;
                }
                self.pos += 2;
                let rhs = self.expression(21)?;
                lhs = Node::Unary(
                    "!",
                    Box::new(Node::Binary("in", Box::new(lhs), Box::new(rhs))),
                );
                continue;
            }
            let Some((op, prec, right)) = self.peek().and_then(binary_prec) else {
                break;
            };
            if prec < min_prec {
                break;
            }
            self.pos += 1;
            let rhs = self.expression(if right { prec } else { prec + 1 })?;
            lhs = Node::Binary(op, Box::new(lhs), Box::new(rhs));
        }
        if min_prec == 0 && matches!(self.peek(), Some(Tok::Op("?"))) {
            self.pos += 1;
            let a = self.expression(0)?;
            self.expect(":")?;
            let b = self.expression(0)?;
            lhs = Node::Ternary(Box::new(lhs), Box::new(a), Box::new(b));
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Node, ExprError> {
        match self.peek() {
            Some(Tok::Op("!")) => {
                self.pos += 1;
                Ok(Node::Unary("!", Box::new(self.expression(50)?)))
            }
            Some(Tok::Ident(s)) if s == "not" => {
                self.pos += 1;
                Ok(Node::Unary("!", Box::new(self.expression(50)?)))
            }
            Some(Tok::Op("-")) => {
                self.pos += 1;
                Ok(Node::Unary("-", Box::new(self.expression(90)?)))
            }
            Some(Tok::Op("+")) => {
                self.pos += 1;
                Ok(Node::Unary("+", Box::new(self.expression(90)?)))
            }
            _ => self.postfix(),
        }
    }

    fn postfix(&mut self) -> Result<Node, ExprError> {
        let mut node = self.primary()?;
        loop {
            match self.peek() {
                Some(Tok::Op("[")) => {
                    self.pos += 1;
                    let idx = self.expression(0)?;
                    self.expect("]")?;
                    node = Node::Index(Box::new(node), Box::new(idx));
                }
                Some(Tok::Op(".")) | Some(Tok::Op("?.")) => {
                    return err(
                        "member access (result.x) is not supported: a Prometheus result is a number or a list of numbers",
                    );
                }
                _ => return Ok(node),
            }
        }
    }

    fn primary(&mut self) -> Result<Node, ExprError> {
        match self.next() {
            Some(Tok::Num(v, true)) => Ok(Node::Lit(Value::Int(v as i64))),
            Some(Tok::Num(v, false)) => Ok(Node::Lit(Value::Float(v))),
            Some(Tok::Str(s)) => Ok(Node::Lit(Value::Str(s))),
            Some(Tok::Hash) => {
                if self.in_predicate == 0 {
                    return err("# used outside a predicate");
                }
                Ok(Node::Pointer)
            }
            Some(Tok::Op("(")) => {
                let e = self.expression(0)?;
                self.expect(")")?;
                Ok(e)
            }
            Some(Tok::Op("[")) => {
                let mut items = Vec::new();
                if !matches!(self.peek(), Some(Tok::Op("]"))) {
                    loop {
                        items.push(self.expression(0)?);
                        if matches!(self.peek(), Some(Tok::Op(","))) {
                            self.pos += 1;
                            continue;
                        }
                        break;
                    }
                }
                self.expect("]")?;
                Ok(Node::Array(items))
            }
            Some(Tok::Ident(name)) => {
                if matches!(self.peek(), Some(Tok::Op("("))) {
                    self.pos += 1;
                    return self.call(name);
                }
                match name.as_str() {
                    "true" => Ok(Node::Lit(Value::Bool(true))),
                    "false" => Ok(Node::Lit(Value::Bool(false))),
                    "nil" => Ok(Node::Lit(Value::Nil)),
                    "result" => Ok(Node::Result),
                    "NaN" => Ok(Node::Lit(Value::Float(f64::NAN))),
                    _ => err(format!("unknown name {name}")),
                }
            }
            other => err(format!("unexpected {}", show(other.as_ref()))),
        }
    }

    fn call(&mut self, name: String) -> Result<Node, ExprError> {
        let predicate = PREDICATE_FUNCS.contains(&name.as_str());
        if !predicate && !FUNCS.contains(&name.as_str()) {
            return err(format!("unknown func {name}"));
        }
        let mut args = Vec::new();
        if !matches!(self.peek(), Some(Tok::Op(")"))) {
            loop {
                if predicate && args.len() == 1 {
                    self.in_predicate += 1;
                    let braced = matches!(self.peek(), Some(Tok::Op("{")));
                    if braced {
                        self.pos += 1;
                    }
                    let body = self.expression(0)?;
                    if braced {
                        self.expect("}")?;
                    }
                    self.in_predicate -= 1;
                    args.push(body);
                } else {
                    args.push(self.expression(0)?);
                }
                if matches!(self.peek(), Some(Tok::Op(","))) {
                    self.pos += 1;
                    continue;
                }
                break;
            }
        }
        self.expect(")")?;
        if predicate && args.len() != 2 {
            return err(format!("{name} takes an array and a predicate"));
        }
        Ok(Node::Call(name, args))
    }
}

fn show(t: Option<&Tok>) -> String {
    match t {
        None => "end of expression".into(),
        Some(Tok::Num(v, _)) => format!("{v}"),
        Some(Tok::Str(s)) => format!("{s:?}"),
        Some(Tok::Ident(s)) => s.clone(),
        Some(Tok::Op(o)) => (*o).into(),
        Some(Tok::Hash) => "#".into(),
    }
}

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    source: String,
    root: Node,
}

impl Condition {
    /// Parse a condition; unknown names and functions are refused here, as
    /// Go's expr refuses them when it compiles.
    pub fn parse(source: &str) -> Result<Self, ExprError> {
        let toks = lex(source)?;
        let mut p = Parser {
            toks,
            pos: 0,
            in_predicate: 0,
        };
        let root = p.expression(0)?;
        if p.pos < p.toks.len() {
            return err(format!("unexpected {}", show(p.peek())));
        }
        Ok(Self {
            source: source.to_string(),
            root,
        })
    }

    /// The text of the condition.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluate with `result` bound; Argo requires a bool.
    pub fn eval(&self, result: &Value) -> Result<bool, ExprError> {
        let mut ev = Eval {
            result,
            pointer: Vec::new(),
        };
        match ev.eval(&self.root)? {
            Value::Bool(b) => Ok(b),
            other => err(format!("expected bool, but got {}", other.type_name())),
        }
    }
}

struct Eval<'a> {
    result: &'a Value,
    pointer: Vec<Value>,
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x == y,
        (x, y) if num(x).is_some() && num(y).is_some() => num(x) == num(y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| equal(a, b))
        }
        _ => a == b,
    }
}

fn as_array<'v>(v: &'v Value, func: &str) -> Result<&'v [Value], ExprError> {
    match v {
        Value::Array(a) => Ok(a),
        other => err(format!(
            "{func}: cannot use {} as an array",
            other.type_name()
        )),
    }
}

fn go_float_to_int(f: f64) -> i64 {
    // Go's float64 -> int64 conversion on amd64 (CVTTSD2SI): out of range and NaN give i64::MIN.
    if f.is_nan() || !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) {
        i64::MIN
    } else {
        f as i64
    }
}

impl Eval<'_> {
    fn eval(&mut self, node: &Node) -> Result<Value, ExprError> {
        match node {
            Node::Lit(v) => Ok(v.clone()),
            Node::Result => Ok(self.result.clone()),
            Node::Pointer => Ok(self.pointer.last().cloned().unwrap_or(Value::Nil)),
            Node::Array(items) => Ok(Value::Array(
                items
                    .iter()
                    .map(|n| self.eval(n))
                    .collect::<Result<_, _>>()?,
            )),
            Node::Unary(op, e) => {
                let v = self.eval(e)?;
                match (*op, v) {
                    ("!", Value::Bool(b)) => Ok(Value::Bool(!b)),
                    ("-", Value::Int(i)) => Ok(Value::Int(i.wrapping_neg())),
                    ("-", Value::Float(f)) => Ok(Value::Float(-f)),
                    ("+", v @ (Value::Int(_) | Value::Float(_))) => Ok(v),
                    (op, v) => err(format!("invalid operation: {op}{}", v.type_name())),
                }
            }
            Node::Binary(op, a, b) => self.binary(op, a, b),
            Node::Ternary(c, a, b) => match self.eval(c)? {
                Value::Bool(true) => self.eval(a),
                Value::Bool(false) => self.eval(b),
                other => err(format!("non-bool {} used as condition", other.type_name())),
            },
            Node::Index(a, i) => {
                let arr = self.eval(a)?;
                let idx = self.eval(i)?;
                let Value::Array(items) = arr else {
                    return err(format!(
                        "cannot fetch {} from {}",
                        show_value(&idx),
                        arr.type_name()
                    ));
                };
                let Value::Int(mut k) = idx else {
                    return err(format!("invalid index type {}", idx.type_name()));
                };
                let len = items.len() as i64;
                if k < 0 {
                    k += len;
                }
                if k < 0 || k >= len {
                    return err(format!("index out of range: {k} (array length is {len})"));
                }
                Ok(items[k as usize].clone())
            }
            Node::Call(name, args) => self.call(name, args),
        }
    }

    fn binary(&mut self, op: &str, a: &Node, b: &Node) -> Result<Value, ExprError> {
        if op == "&&" || op == "||" {
            let l = self.eval(a)?;
            let Value::Bool(l) = l else {
                return err(format!("invalid operation: {op} on {}", l.type_name()));
            };
            if (op == "&&" && !l) || (op == "||" && l) {
                return Ok(Value::Bool(l));
            }
            let r = self.eval(b)?;
            return match r {
                Value::Bool(r) => Ok(Value::Bool(r)),
                other => err(format!("invalid operation: {op} on {}", other.type_name())),
            };
        }
        if op == "??" {
            let l = self.eval(a)?;
            return if l == Value::Nil { self.eval(b) } else { Ok(l) };
        }
        let l = self.eval(a)?;
        let r = self.eval(b)?;
        let mismatch = |l: &Value, r: &Value| {
            err(format!(
                "invalid operation: {op} (mismatched types {} and {})",
                l.type_name(),
                r.type_name()
            ))
        };
        match op {
            "==" => Ok(Value::Bool(equal(&l, &r))),
            "!=" => Ok(Value::Bool(!equal(&l, &r))),
            "in" => match &r {
                Value::Array(items) => Ok(Value::Bool(items.iter().any(|x| equal(&l, x)))),
                _ => err(format!("operator in not defined on {}", r.type_name())),
            },
            "<" | ">" | "<=" | ">=" => {
                let ord = match (&l, &r) {
                    (Value::Int(x), Value::Int(y)) => x.partial_cmp(y),
                    (Value::Str(x), Value::Str(y)) => x.partial_cmp(y),
                    _ => match (num(&l), num(&r)) {
                        (Some(x), Some(y)) => x.partial_cmp(&y),
                        _ => return mismatch(&l, &r),
                    },
                };
                use std::cmp::Ordering::*;
                Ok(Value::Bool(match (op, ord) {
                    (_, None) => false, // NaN compares false, as in Go
                    ("<", Some(o)) => o == Less,
                    (">", Some(o)) => o == Greater,
                    ("<=", Some(o)) => o != Greater,
                    (_, Some(o)) => o != Less,
                }))
            }
            "+" | "-" | "*" | "%" => match (&l, &r) {
                (Value::Int(x), Value::Int(y)) => Ok(Value::Int(match op {
                    "+" => x.wrapping_add(*y),
                    "-" => x.wrapping_sub(*y),
                    "*" => x.wrapping_mul(*y),
                    _ => {
                        if *y == 0 {
                            return err("integer divide by zero");
                        }
                        x.wrapping_rem(*y)
                    }
                })),
                (Value::Str(x), Value::Str(y)) if op == "+" => Ok(Value::Str(format!("{x}{y}"))),
                _ => match (num(&l), num(&r)) {
                    (Some(_), Some(_)) if op == "%" => mismatch(&l, &r),
                    (Some(x), Some(y)) => Ok(Value::Float(match op {
                        "+" => x + y,
                        "-" => x - y,
                        _ => x * y,
                    })),
                    _ => mismatch(&l, &r),
                },
            },
            "/" => match (num(&l), num(&r)) {
                (Some(x), Some(y)) => Ok(Value::Float(x / y)),
                _ => mismatch(&l, &r),
            },
            "**" => match (num(&l), num(&r)) {
                (Some(x), Some(y)) => Ok(Value::Float(x.powf(y))),
                _ => mismatch(&l, &r),
            },
            _ => err(format!("unknown operator {op}")),
        }
    }

    fn call(&mut self, name: &str, args: &[Node]) -> Result<Value, ExprError> {
        if PREDICATE_FUNCS.contains(&name) {
            let arr = self.eval(&args[0])?;
            let items = as_array(&arr, name)?.to_vec();
            let mut passed = Vec::new();
            let mut mapped = Vec::new();
            for item in items {
                self.pointer.push(item.clone());
                let out = self.eval(&args[1]);
                self.pointer.pop();
                let out = out?;
                if name == "map" {
                    mapped.push(out);
                    continue;
                }
                match out {
                    Value::Bool(true) => passed.push(item),
                    Value::Bool(false) => {
                        if name == "all" {
                            return Ok(Value::Bool(false));
                        }
                    }
                    other => {
                        return err(format!(
                            "predicate should return boolean, got {}",
                            other.type_name()
                        ));
                    }
                }
            }
            return Ok(match name {
                "all" => Value::Bool(true),
                "any" => Value::Bool(!passed.is_empty()),
                "none" => Value::Bool(passed.is_empty()),
                "one" => Value::Bool(passed.len() == 1),
                "count" => Value::Int(passed.len() as i64),
                "map" => Value::Array(mapped),
                _ => Value::Array(passed),
            });
        }
        let vals: Vec<Value> = args
            .iter()
            .map(|n| self.eval(n))
            .collect::<Result<_, _>>()?;
        let arity = |n: usize| -> Result<(), ExprError> {
            if vals.len() == n {
                Ok(())
            } else {
                err(format!(
                    "{name}: expected {n} arguments, got {}",
                    vals.len()
                ))
            }
        };
        let float_arg = |v: &Value| -> Result<f64, ExprError> {
            num(v).ok_or_else(|| {
                ExprError(format!("{name}: cannot use {} as float64", v.type_name()))
            })
        };
        match name {
            "len" => {
                arity(1)?;
                match &vals[0] {
                    Value::Array(a) => Ok(Value::Int(a.len() as i64)),
                    Value::Str(s) => Ok(Value::Int(s.chars().count() as i64)),
                    other => err(format!(
                        "invalid argument for len (type {})",
                        other.type_name()
                    )),
                }
            }
            "isNaN" => {
                arity(1)?;
                Ok(Value::Bool(float_arg(&vals[0])?.is_nan()))
            }
            "isInf" => {
                arity(1)?;
                Ok(Value::Bool(float_arg(&vals[0])?.is_infinite()))
            }
            "asInt" => {
                arity(1)?;
                match &vals[0] {
                    Value::Int(i) => Ok(Value::Int(*i)),
                    Value::Float(f) => Ok(Value::Int(go_float_to_int(*f))),
                    Value::Str(s) => s.parse::<i64>().map(Value::Int).map_err(|_| {
                        ExprError(format!("strconv.ParseInt: parsing {s:?}: invalid syntax"))
                    }),
                    other => err(format!("asInt() not supported on {}", other.type_name())),
                }
            }
            "asFloat" => {
                arity(1)?;
                match &vals[0] {
                    Value::Str(s) => s.parse::<f64>().map(Value::Float).map_err(|_| {
                        ExprError(format!("strconv.ParseFloat: parsing {s:?}: invalid syntax"))
                    }),
                    v => Ok(Value::Float(float_arg(v)?)),
                }
            }
            // Argo's isNil and default look at the measurement's result, whatever
            // their first argument (evaluate.go isNilFunc, defaultFunc).
            "isNil" => {
                arity(1)?;
                Ok(Value::Bool(*self.result == Value::Nil))
            }
            "default" => {
                arity(2)?;
                Ok(if *self.result == Value::Nil {
                    vals[1].clone()
                } else {
                    self.result.clone()
                })
            }
            "abs" | "int" | "float" | "ceil" | "floor" | "round" => {
                arity(1)?;
                let v = &vals[0];
                match (name, v) {
                    ("abs", Value::Int(i)) => Ok(Value::Int(i.wrapping_abs())),
                    ("int", Value::Int(i)) => Ok(Value::Int(*i)),
                    ("int", Value::Float(f)) => Ok(Value::Int(go_float_to_int(*f))),
                    ("float", v) => Ok(Value::Float(float_arg(v)?)),
                    ("abs", v) => Ok(Value::Float(float_arg(v)?.abs())),
                    ("ceil", v) => Ok(Value::Float(float_arg(v)?.ceil())),
                    ("floor", v) => Ok(Value::Float(float_arg(v)?.floor())),
                    ("round", v) => Ok(Value::Float(float_arg(v)?.round())),
                    _ => err(format!(
                        "invalid argument for {name} (type {})",
                        v.type_name()
                    )),
                }
            }
            "first" | "last" => {
                arity(1)?;
                let a = as_array(&vals[0], name)?;
                Ok(if name == "first" { a.first() } else { a.last() }
                    .cloned()
                    .unwrap_or(Value::Nil))
            }
            "sum" | "mean" | "median" | "max" | "min" => {
                let items: Vec<Value> = if vals.len() == 1 {
                    match &vals[0] {
                        Value::Array(a) => a.clone(),
                        v => vec![v.clone()],
                    }
                } else {
                    vals.clone()
                };
                let all_int = items.iter().all(|v| matches!(v, Value::Int(_)));
                let nums: Vec<f64> = items.iter().map(&float_arg).collect::<Result<_, _>>()?;
                match name {
                    "sum" if all_int => Ok(Value::Int(nums.iter().map(|x| *x as i64).sum())),
                    "sum" => Ok(Value::Float(nums.iter().sum())),
                    "mean" if nums.is_empty() => Ok(Value::Float(0.0)),
                    "mean" => Ok(Value::Float(nums.iter().sum::<f64>() / nums.len() as f64)),
                    "median" => {
                        let mut s = nums.clone();
                        s.sort_by(f64::total_cmp);
                        let n = s.len();
                        Ok(Value::Float(match n {
                            0 => 0.0,
                            _ if n % 2 == 1 => s[n / 2],
                            _ => (s[n / 2 - 1] + s[n / 2]) / 2.0,
                        }))
                    }
                    _ => {
                        if items.is_empty() {
                            return Ok(Value::Nil);
                        }
                        let mut best = 0;
                        for (k, x) in nums.iter().enumerate() {
                            // Go's expr compares with < / >, so NaN never replaces a value
                            if (name == "max" && *x > nums[best])
                                || (name == "min" && *x < nums[best])
                            {
                                best = k;
                            }
                        }
                        Ok(items[best].clone())
                    }
                }
            }
            _ => err(format!("unknown func {name}")),
        }
    }
}

fn show_value(v: &Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Str(s) => s.clone(),
        other => other.type_name().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(src: &str, result: Value) -> Result<bool, ExprError> {
        Condition::parse(src)?.eval(&result)
    }
    fn vec(xs: &[f64]) -> Value {
        Value::Array(xs.iter().map(|x| Value::Float(*x)).collect())
    }

    #[test]
    fn forms_from_argo_docs() {
        assert_eq!(ev("result[0] >= 0.95", vec(&[0.97])), Ok(true));
        assert_eq!(ev("result[0] >= 0.95", vec(&[0.9])), Ok(false));
        assert_eq!(ev("result >= 0.95", Value::Float(0.96)), Ok(true));
        assert_eq!(ev("result[0] <= 0.01", vec(&[0.02])), Ok(false));
        assert_eq!(
            ev("len(result) == 0 || result[0] >= 0.95", vec(&[])),
            Ok(true)
        );
        assert_eq!(
            ev("len(result) > 0 && result[0] >= 0.95", vec(&[])),
            Ok(false)
        );
        assert_eq!(
            ev("isNaN(result) || result >= 0.95", Value::Float(f64::NAN)),
            Ok(true)
        );
        assert_eq!(ev("isInf(result)", Value::Float(f64::INFINITY)), Ok(true));
        assert_eq!(ev("all(result, # < 1000)", vec(&[1.0, 999.0])), Ok(true));
        assert_eq!(
            ev("all(result, {# <= 0.01})", vec(&[0.001, 0.02])),
            Ok(false)
        );
        assert_eq!(ev("all(result, # < 1)", vec(&[])), Ok(true));
        assert_eq!(ev("max(result) < 0.05", vec(&[0.01, 0.02])), Ok(true));
        assert_eq!(ev("default(result, 0) < 5", Value::Float(3.0)), Ok(true));
        assert_eq!(ev("default(result, 0) < 5", Value::Nil), Ok(true));
        assert_eq!(ev("2 in result", vec(&[2.0, 2.0])), Ok(true));
        assert_eq!(ev("result > 1", Value::Float(5.0)), Ok(true));
        assert_eq!(ev("asInt(result) == 1", Value::Float(1.123)), Ok(true));
        assert_eq!(ev("asFloat(result) >= 1", Value::Int(1)), Ok(true));
        assert_eq!(
            ev("result[0] >= 0.9 and not (result[0] > 1)", vec(&[0.95])),
            Ok(true)
        );
        assert_eq!(ev("result[-1] > 0", vec(&[1.0, -1.0])), Ok(false));
        assert_eq!(
            ev("2 ** 3 == 8 && 7 / 2 == 3.5 && 7 % 2 == 1", Value::Nil),
            Ok(true)
        );
        assert_eq!(
            ev("result >= 0.95 ? true : false", Value::Float(0.96)),
            Ok(true)
        );
        assert_eq!(ev("result not in [1, 2]", Value::Float(3.0)), Ok(true));
        assert_eq!(
            ev("count(result, # > 0.5) == 1", vec(&[0.4, 0.6])),
            Ok(true)
        );
        assert_eq!(
            ev("any(result, # > 1) || none(result, # > 1)", vec(&[0.5])),
            Ok(true)
        );
    }

    #[test]
    fn empty_vector_index_is_an_error_like_go_expr() {
        // vm/runtime.Fetch: "index out of range: 0 (array length is 0)"
        for src in [
            "result[0] >= 0.95",
            "result[0] != 1",
            "result[0] == 1",
            "isNaN(result[0])",
        ] {
            let e = ev(src, vec(&[])).expect_err(src);
            assert!(e.0.contains("index out of range"), "{src}: {e}");
        }
        // short-circuit evaluation still applies
        assert_eq!(ev("true || result[0] > 1", vec(&[])), Ok(true));
    }

    #[test]
    fn nan_compares_false() {
        assert_eq!(ev("result >= 0.95", Value::Float(f64::NAN)), Ok(false));
        assert_eq!(ev("result < 0.95", Value::Float(f64::NAN)), Ok(false));
        assert_eq!(ev("result != result", Value::Float(f64::NAN)), Ok(true));
    }

    #[test]
    fn errors_as_argo_reports_them() {
        assert_eq!(
            ev("1", Value::Nil),
            Err(ExprError("expected bool, but got int".into()))
        );
        assert_eq!(
            Condition::parse("invalidVariable").map(|_| ()),
            Err(ExprError("unknown name invalidVariable".into()))
        );
        // compile-time: also in a branch never run
        assert!(Condition::parse("true || foo > 1").is_err());
        assert!(Condition::parse("nosuch(result)").is_err());
        assert!(ev("result > 1", vec(&[2.0])).is_err());
        assert!(ev("isNaN(result)", vec(&[1.0])).is_err());
        assert!(ev("asInt(\"1.1\") == 1", Value::Nil).is_err());
        assert!(Condition::parse("result.major == '1'").is_err());
        assert!(Condition::parse("result[0] >=").is_err());
    }
}
