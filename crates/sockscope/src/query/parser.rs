//! Recursive-descent parser from tokens to [`Expr`], with positioned errors.
//!
//! Precedence, loosest first: `or`, `and` (also implicit between adjacent
//! predicates), `not`. A run of `state NAME` / `exclude NAME` words at the
//! very start that is not followed by `and` / `or` is ss's state selection
//! (the words union, `exclude` subtracts); anywhere else `state NAME` is a
//! predicate and `exclude NAME` means `not state NAME`.

use super::expr::{self, Expr, Pred, Side};
use super::lexer::{CmpOp, TokKind, Token, tokenize};
use super::services::Services;
use super::{FilterError, STATE_ALIASES, STATE_NAMES, state_group};
use crate::model::StateSet;

pub(crate) const PREDICATE_HINT: &str = "a predicate is one of: state NAME, exclude NAME, \
sport|dport OP PORT, src|dst [=|!=] ADDRESS, pid|uid|inode OP NUMBER, comm [=|!=] NAME, \
not EXPR, ( EXPR ); OP is = == eq != ne < lt > gt <= le >= ge";
const PORT_HINT: &str = "expected a port like :8080 or :http (names from /etc/services)";
const ADDR_HINT: &str = "expected an address like 127.0.0.1, 10.0.0.0/8, ::1, [::1]:80, \
127.0.0.1:8080, *:8080, fe80::/10, or a UNIX path like /run/*.sock or @name";
const EQ_NE_HINT: &str = "only = (or ==, eq) and != (or ne) apply here";

const KEYWORDS: [&str; 13] = [
    "state", "exclude", "src", "dst", "sport", "dport", "pid", "uid", "inode", "comm", "not",
    "and", "or",
];

/// ss filter keywords sockscope does not implement.
const UNSUPPORTED: [&str; 6] = ["dev", "fwmark", "mark", "cgroup", "autobound", "excl-all"];

/// Where service names are looked up: the machine's table, loaded only when a
/// name needs resolving, or a given one (tests).
#[derive(Clone, Copy)]
pub(crate) enum ServiceSource<'a> {
    System,
    Given(&'a Services),
}

impl ServiceSource<'_> {
    fn get(&self) -> &Services {
        match self {
            ServiceSource::System => Services::system(),
            ServiceSource::Given(s) => s,
        }
    }
}

/// The parts of a parsed filter.
pub(crate) struct Parsed {
    pub(crate) front: Option<StateSet>,
    pub(crate) expr: Option<Expr>,
}

pub(crate) fn parse(input: &str, services: ServiceSource<'_>) -> Result<Parsed, FilterError> {
    let toks = tokenize(input)?;
    let mut p = Parser {
        input,
        toks,
        pos: 0,
        services,
        depth: 0,
        preds: 0,
    };
    let front = p.front()?;
    let expr = if p.peek().is_some() {
        let e = p.or_expr()?;
        if let Some(t) = p.peek() {
            // or_expr stops only at ')' or the end.
            return Err(p.err_at(t, "unmatched ')'", "remove it or add a '(' before"));
        }
        Some(e)
    } else {
        None
    };
    Ok(Parsed { front, expr })
}

struct Parser<'a> {
    input: &'a str,
    toks: Vec<Token>,
    pos: usize,
    services: ServiceSource<'a>,
    /// Current nesting of `(` and `not`.
    depth: usize,
    /// Predicates parsed so far.
    preds: usize,
}

/// Limits that keep evaluation's recursion shallow whatever the input.
const MAX_DEPTH: usize = 100;
const MAX_PREDICATES: usize = 1000;

fn keyword(t: &Token) -> Option<String> {
    match &t.kind {
        TokKind::Word(w) => Some(w.to_ascii_lowercase()),
        _ => None,
    }
}

fn is_state_word(t: &Token) -> bool {
    matches!(keyword(t).as_deref(), Some("state" | "exclude" | "excl"))
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.toks.get(self.pos).cloned();
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    fn text(&self, t: &Token) -> &str {
        &self.input[t.offset..t.offset + t.len]
    }

    fn err_at(&self, t: &Token, message: impl Into<String>, hint: &str) -> FilterError {
        FilterError::new(message.into(), self.input, t.offset, t.len, hint)
    }

    fn err_span(&self, from: &Token, to: &Token, message: &str, hint: &str) -> FilterError {
        let end = to.offset + to.len;
        FilterError::new(message, self.input, from.offset, end - from.offset, hint)
    }

    fn err_end(&self, message: impl Into<String>, hint: &str) -> FilterError {
        FilterError::new(message.into(), self.input, self.input.len(), 1, hint)
    }

    /// ss's leading `state` / `exclude` words.
    fn front(&mut self) -> Result<Option<StateSet>, FilterError> {
        // Look ahead: a run of `state NAME` pairs followed by and/or is the
        // start of an expression, not ss's state selection.
        let mut i = 0;
        while i + 1 < self.toks.len()
            && is_state_word(&self.toks[i])
            && matches!(self.toks[i + 1].kind, TokKind::Word(_) | TokKind::Quoted(_))
        {
            i += 2;
        }
        if i > 0
            && matches!(
                self.toks.get(i).map(|t| &t.kind),
                Some(TokKind::And | TokKind::Or)
            )
        {
            return Ok(None);
        }
        let mut set: Option<StateSet> = None;
        while let Some(t) = self.peek() {
            if !is_state_word(t) {
                break;
            }
            let t = t.clone();
            self.pos += 1;
            let (states, _) = self.state_value(&t)?;
            set = Some(if keyword(&t).as_deref() == Some("state") {
                set.unwrap_or(StateSet::EMPTY).union(states)
            } else {
                set.unwrap_or(StateSet::ALL).without(states)
            });
        }
        Ok(set)
    }

    /// The state name after `kw` (`state` / `exclude`): its states and its
    /// lower-case spelling.
    fn state_value(&mut self, kw: &Token) -> Result<(StateSet, String), FilterError> {
        let kwtext = self.text(kw).to_string();
        let hint = state_hint();
        let Some(v) = self.next() else {
            return Err(self.err_end(format!("missing state name after '{kwtext}'"), &hint));
        };
        let name = match &v.kind {
            TokKind::Word(w) | TokKind::Quoted(w) => w.clone(),
            _ => {
                return Err(self.err_at(
                    &v,
                    format!(
                        "expected a state name after '{kwtext}', found '{}'",
                        self.text(&v)
                    ),
                    &hint,
                ));
            }
        };
        state_group(&name)
            .map(|set| (set, name.to_ascii_lowercase()))
            .ok_or_else(|| {
                let lower = name.to_ascii_lowercase();
                let names = STATE_NAMES
                    .iter()
                    .map(|(n, _)| *n)
                    .chain(STATE_ALIASES.iter().map(|(n, _)| *n));
                let msg = match suggest(&lower, names) {
                    Some(s) => format!("unknown state '{name}'; did you mean '{s}'?"),
                    None => format!("unknown state '{name}'"),
                };
                self.err_at(&v, msg, &hint)
            })
    }

    fn or_expr(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.and_expr()?;
        while let Some(t) = self.peek() {
            if t.kind != TokKind::Or {
                break;
            }
            let op = t.clone();
            self.pos += 1;
            self.operand_follows(&op)?;
            let right = self.and_expr()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.unary()?;
        while let Some(t) = self.peek() {
            match t.kind {
                TokKind::And => {
                    let op = t.clone();
                    self.pos += 1;
                    self.operand_follows(&op)?;
                }
                // Implicit `and`: anything that is not `or` or `)` starts the
                // next operand (or is reported as a bad one there).
                TokKind::Or | TokKind::RParen => break,
                _ => {}
            }
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// After a binary or `not` operator: the end of input or `)` is an error
    /// pointing at the operator.
    fn operand_follows(&self, op: &Token) -> Result<(), FilterError> {
        match self.peek().map(|t| &t.kind) {
            None | Some(TokKind::RParen) => Err(self.err_at(
                op,
                format!("'{}' must be followed by an expression", self.text(op)),
                PREDICATE_HINT,
            )),
            _ => Ok(()),
        }
    }

    fn unary(&mut self) -> Result<Expr, FilterError> {
        let Some(t) = self.next() else {
            return Err(self.err_end("expected an expression", PREDICATE_HINT));
        };
        match &t.kind {
            TokKind::Not | TokKind::LParen => {
                if self.depth >= MAX_DEPTH {
                    return Err(self.err_at(
                        &t,
                        format!("filter nested too deeply (more than {MAX_DEPTH} levels)"),
                        "",
                    ));
                }
                self.depth += 1;
                let e = self.nested(&t);
                self.depth -= 1;
                e
            }
            TokKind::RParen => {
                Err(self.err_at(&t, "unmatched ')'", "remove it or add a '(' before"))
            }
            TokKind::And | TokKind::Or => Err(self.err_at(
                &t,
                format!("expected an expression before '{}'", self.text(&t)),
                PREDICATE_HINT,
            )),
            TokKind::Cmp(_) => Err(self.err_at(
                &t,
                format!("expected a predicate, found operator '{}'", self.text(&t)),
                PREDICATE_HINT,
            )),
            TokKind::Quoted(_) => Err(self.err_at(
                &t,
                format!("expected a predicate, found the value {}", self.text(&t)),
                PREDICATE_HINT,
            )),
            TokKind::Word(w) => {
                let w = w.clone();
                self.predicate(&t, &w)
            }
        }
    }

    /// `not UNARY` or `( EXPR )`, after the `not` / `(` token `t`.
    fn nested(&mut self, t: &Token) -> Result<Expr, FilterError> {
        if t.kind == TokKind::Not {
            self.operand_follows(t)?;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if let Some(close) = self.peek().filter(|c| c.kind == TokKind::RParen) {
            return Err(self.err_span(
                t,
                close,
                "empty parentheses",
                "put an expression inside, e.g. ( sport = :22 or dport = :22 )",
            ));
        }
        let inner = self.or_expr()?;
        match self.next() {
            Some(c) if c.kind == TokKind::RParen => Ok(inner),
            _ => Err(self.err_at(t, "unclosed '('", "add a matching ')'")),
        }
    }

    /// The predicate that starts with the keyword `kw`.
    fn predicate(&mut self, kw: &Token, word: &str) -> Result<Expr, FilterError> {
        self.preds += 1;
        if self.preds > MAX_PREDICATES {
            return Err(self.err_at(
                kw,
                format!("filter too long (more than {MAX_PREDICATES} predicates)"),
                "",
            ));
        }
        let lower = word.to_ascii_lowercase();
        match lower.as_str() {
            "state" => {
                let (set, name) = self.state_value(kw)?;
                Ok(Expr::Pred(Pred::State { set, name }))
            }
            "exclude" | "excl" => {
                let (set, name) = self.state_value(kw)?;
                Ok(Expr::Not(Box::new(Expr::Pred(Pred::State { set, name }))))
            }
            "sport" | "dport" => {
                let side = if lower == "sport" {
                    Side::Src
                } else {
                    Side::Dst
                };
                let op = self.op(kw, false)?;
                let v = self.value(kw, op, PORT_HINT, "port")?;
                let port = expr::parse_port(&v.1, self.services.get())
                    .map_err(|m| self.err_at(&v.0, m, PORT_HINT))?;
                Ok(Expr::Pred(Pred::Port { side, op, port }))
            }
            "src" | "dst" => {
                let side = if lower == "src" { Side::Src } else { Side::Dst };
                let op = self.op(kw, true)?;
                let v = self.value(kw, op, ADDR_HINT, "address")?;
                let host = expr::parse_host(&v.1, self.services.get())
                    .map_err(|m| self.err_at(&v.0, m, ADDR_HINT))?;
                Ok(Expr::Pred(Pred::Host {
                    side,
                    ne: op == CmpOp::Ne,
                    host,
                    text: v.1,
                }))
            }
            "pid" | "uid" | "inode" => {
                let op = self.op(kw, false)?;
                let hint = format!("expected a number, e.g. {lower} = 1234");
                let v = self.value(kw, op, &hint, "number")?;
                let n = v.1.parse::<u64>().ok();
                let bad = || self.err_at(&v.0, format!("'{}' is not a {lower}", v.1), &hint);
                Ok(Expr::Pred(match lower.as_str() {
                    "pid" => Pred::Pid {
                        op,
                        value: n.and_then(|n| u32::try_from(n).ok()).ok_or_else(bad)?,
                    },
                    "uid" => Pred::Uid {
                        op,
                        value: n.and_then(|n| u32::try_from(n).ok()).ok_or_else(bad)?,
                    },
                    _ => Pred::Inode {
                        op,
                        value: n.ok_or_else(bad)?,
                    },
                }))
            }
            "comm" => {
                let op = self.op(kw, true)?;
                let hint = "expected a command name, e.g. comm = nginx or comm = 'kworker*'";
                let v = self.value(kw, op, hint, "command name")?;
                Ok(Expr::Pred(Pred::Comm {
                    ne: op == CmpOp::Ne,
                    pattern: v.1,
                }))
            }
            _ if UNSUPPORTED.contains(&lower.as_str()) => Err(self.err_at(
                kw,
                format!("'{word}' filters are not supported by sockscope"),
                PREDICATE_HINT,
            )),
            _ => Err(self.unknown_keyword(kw, word)),
        }
    }

    fn unknown_keyword(&self, kw: &Token, word: &str) -> FilterError {
        let lower = word.to_ascii_lowercase();
        let looks_port = word.starts_with(':');
        let looks_addr = word.starts_with(['/', '@', '[', '*'])
            || word.parse::<std::net::IpAddr>().is_ok()
            || word.contains('/')
                && word
                    .split('/')
                    .next()
                    .is_some_and(|a| a.parse::<std::net::IpAddr>().is_ok());
        let msg = if looks_port {
            format!("a port needs a keyword: sport = {word} or dport = {word}")
        } else if looks_addr {
            format!("an address needs a keyword: src {word} or dst {word}")
        } else if state_group(&lower).is_some() {
            format!("a state needs a keyword: state {word}")
        } else {
            match suggest(&lower, KEYWORDS.iter().copied()) {
                Some(s) => format!("unknown keyword '{word}'; did you mean '{s}'?"),
                None => format!("unknown keyword '{word}'"),
            }
        };
        self.err_at(kw, msg, PREDICATE_HINT)
    }

    /// An optional comparison operator after `kw`; `=` when omitted.
    fn op(&mut self, kw: &Token, eq_ne_only: bool) -> Result<CmpOp, FilterError> {
        let Some(TokKind::Cmp(op)) = self.peek().map(|t| t.kind.clone()) else {
            return Ok(CmpOp::Eq);
        };
        if eq_ne_only && !matches!(op, CmpOp::Eq | CmpOp::Ne) {
            let t = self.toks[self.pos].clone();
            return Err(self.err_at(
                &t,
                format!(
                    "'{}' cannot be used with '{}'",
                    self.text(&t),
                    self.text(kw)
                ),
                EQ_NE_HINT,
            ));
        }
        self.pos += 1;
        Ok(op)
    }

    /// The value token after `kw [op]`: its token and text.
    fn value(
        &mut self,
        kw: &Token,
        op: CmpOp,
        hint: &str,
        what: &str,
    ) -> Result<(Token, String), FilterError> {
        let after = if self.pos > 0 && matches!(self.toks[self.pos - 1].kind, TokKind::Cmp(_)) {
            format!("'{} {}'", self.text(kw), op.symbol())
        } else {
            format!("'{}'", self.text(kw))
        };
        let Some(v) = self.next() else {
            return Err(self.err_end(format!("missing {what} after {after}"), hint));
        };
        match &v.kind {
            TokKind::Word(w) | TokKind::Quoted(w) => {
                let w = w.clone();
                Ok((v, w))
            }
            _ => Err(self.err_at(
                &v,
                format!("expected a {what} after {after}, found '{}'", self.text(&v)),
                hint,
            )),
        }
    }
}

fn state_hint() -> String {
    let names: Vec<&str> = STATE_NAMES.iter().map(|(n, _)| *n).collect();
    format!("states: {}", names.join(", "))
}

/// Optimal-string-alignment distance (Levenshtein plus adjacent swaps).
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
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
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// The closest candidate, if it is close enough to be a likely typo.
pub(crate) fn suggest<'c>(
    word: &str,
    candidates: impl Iterator<Item = &'c str>,
) -> Option<&'c str> {
    let limit = if word.chars().count() <= 4 { 1 } else { 2 };
    candidates
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("sport", "sport"), 0);
        assert_eq!(edit_distance("sprot", "sport"), 1);
        assert_eq!(edit_distance("establised", "established"), 1);
        assert_eq!(edit_distance("lisen", "listen"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn suggestions() {
        let kw = || KEYWORDS.iter().copied();
        assert_eq!(suggest("sprot", kw()), Some("sport"));
        assert_eq!(suggest("dsp", kw()), Some("dst"));
        assert_eq!(suggest("stat", kw()), Some("state"));
        assert_eq!(suggest("cmm", kw()), Some("comm"));
        // Short words allow one edit only; long ones two.
        assert_eq!(suggest("xy", kw()), None);
        assert_eq!(suggest("dprot", kw()), Some("dport"));
        assert_eq!(suggest("inodexx", kw()), Some("inode"));
        assert_eq!(suggest("process", kw()), None);
    }
}
