//! Tokenizer for the filter language.
//!
//! The command-line words are joined with single spaces into one line first,
//! so a quoted shell word like `'( dport = :ssh )'` is split again here, as ss
//! does. Tokens carry their byte span in that line for error carets.
//!
//! Rules: whitespace separates tokens; `(` and `)` are always tokens of their
//! own; the operator characters `= ! < > & |` end a word and form operators
//! (`=`, `==`, `!=`, `<`, `<=`, `>`, `>=`, `!`, `&`, `&&`, `|`, `||`); the
//! words `and or not eq ne lt le gt ge` (any case) are operators too. A token
//! that starts with `"` or `'` runs to the matching quote and is always a
//! plain value, which is how a value containing spaces, parentheses or
//! operator characters (a comm like `(sd-pam)`) is written.

use super::FilterError;

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

impl CmpOp {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Gt => ">",
            CmpOp::Le => "<=",
            CmpOp::Ge => ">=",
        }
    }

    /// Applies the operator to `left OP right`.
    pub(crate) fn apply<T: Ord>(self, left: T, right: T) -> bool {
        match self {
            CmpOp::Eq => left == right,
            CmpOp::Ne => left != right,
            CmpOp::Lt => left < right,
            CmpOp::Gt => left > right,
            CmpOp::Le => left <= right,
            CmpOp::Ge => left >= right,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TokKind {
    /// A bare word: keyword, state name or value.
    Word(String),
    /// A quoted value, quotes removed.
    Quoted(String),
    LParen,
    RParen,
    Cmp(CmpOp),
    And,
    Or,
    Not,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) kind: TokKind,
    /// Byte offset in the joined input.
    pub(crate) offset: usize,
    /// Byte length in the joined input.
    pub(crate) len: usize,
}

fn is_op_char(c: char) -> bool {
    matches!(c, '=' | '!' | '<' | '>' | '&' | '|')
}

fn word_kind(w: &str) -> TokKind {
    match w.to_ascii_lowercase().as_str() {
        "and" => TokKind::And,
        "or" => TokKind::Or,
        "not" => TokKind::Not,
        "eq" => TokKind::Cmp(CmpOp::Eq),
        "ne" => TokKind::Cmp(CmpOp::Ne),
        "lt" => TokKind::Cmp(CmpOp::Lt),
        "le" => TokKind::Cmp(CmpOp::Le),
        "gt" => TokKind::Cmp(CmpOp::Gt),
        "ge" => TokKind::Cmp(CmpOp::Ge),
        _ => TokKind::Word(w.to_string()),
    }
}

/// Splits `input` into tokens.
pub(crate) fn tokenize(input: &str) -> Result<Vec<Token>, FilterError> {
    let mut out = Vec::new();
    let mut chars = input.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let tok = |kind, end: usize| Token {
            kind,
            offset: start,
            len: end - start,
        };
        match c {
            '(' | ')' => {
                chars.next();
                let kind = if c == '(' {
                    TokKind::LParen
                } else {
                    TokKind::RParen
                };
                out.push(tok(kind, start + 1));
            }
            '"' | '\'' => {
                chars.next();
                let mut value = String::new();
                let mut end = None;
                for (i, ch) in chars.by_ref() {
                    if ch == c {
                        end = Some(i + 1);
                        break;
                    }
                    value.push(ch);
                }
                let Some(end) = end else {
                    return Err(FilterError::new(
                        format!("unterminated quote {c}"),
                        input,
                        start,
                        1,
                        format!("close the value with a matching {c}"),
                    ));
                };
                out.push(tok(TokKind::Quoted(value), end));
            }
            c if is_op_char(c) => {
                chars.next();
                let next = chars.peek().map(|&(_, n)| n);
                let (kind, two) = match (c, next) {
                    ('=', Some('=')) => (TokKind::Cmp(CmpOp::Eq), true),
                    ('=', _) => (TokKind::Cmp(CmpOp::Eq), false),
                    ('!', Some('=')) => (TokKind::Cmp(CmpOp::Ne), true),
                    ('!', _) => (TokKind::Not, false),
                    ('<', Some('=')) => (TokKind::Cmp(CmpOp::Le), true),
                    ('<', _) => (TokKind::Cmp(CmpOp::Lt), false),
                    ('>', Some('=')) => (TokKind::Cmp(CmpOp::Ge), true),
                    ('>', _) => (TokKind::Cmp(CmpOp::Gt), false),
                    ('&', Some('&')) => (TokKind::And, true),
                    ('&', _) => (TokKind::And, false),
                    ('|', Some('|')) => (TokKind::Or, true),
                    (_, _) => (TokKind::Or, false),
                };
                if two {
                    chars.next();
                }
                out.push(tok(kind, start + c.len_utf8() + usize::from(two)));
            }
            _ => {
                let mut end = start;
                while let Some(&(i, ch)) = chars.peek() {
                    if ch.is_whitespace() || ch == '(' || ch == ')' || is_op_char(ch) {
                        break;
                    }
                    end = i + ch.len_utf8();
                    chars.next();
                }
                out.push(tok(word_kind(&input[start..end]), end));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<TokKind> {
        tokenize(s).unwrap().into_iter().map(|t| t.kind).collect()
    }

    fn w(s: &str) -> TokKind {
        TokKind::Word(s.to_string())
    }

    #[test]
    fn splits_operators_and_parens() {
        assert_eq!(
            kinds("(dport>=:1024||!sport==22)&&src!=::1"),
            vec![
                TokKind::LParen,
                w("dport"),
                TokKind::Cmp(CmpOp::Ge),
                w(":1024"),
                TokKind::Or,
                TokKind::Not,
                w("sport"),
                TokKind::Cmp(CmpOp::Eq),
                w("22"),
                TokKind::RParen,
                TokKind::And,
                w("src"),
                TokKind::Cmp(CmpOp::Ne),
                w("::1"),
            ]
        );
    }

    #[test]
    fn word_operators() {
        assert_eq!(
            kinds("AND or Not eq ne lt le gt ge & | = < >"),
            vec![
                TokKind::And,
                TokKind::Or,
                TokKind::Not,
                TokKind::Cmp(CmpOp::Eq),
                TokKind::Cmp(CmpOp::Ne),
                TokKind::Cmp(CmpOp::Lt),
                TokKind::Cmp(CmpOp::Le),
                TokKind::Cmp(CmpOp::Gt),
                TokKind::Cmp(CmpOp::Ge),
                TokKind::And,
                TokKind::Or,
                TokKind::Cmp(CmpOp::Eq),
                TokKind::Cmp(CmpOp::Lt),
                TokKind::Cmp(CmpOp::Gt),
            ]
        );
    }

    #[test]
    fn spans_and_quotes() {
        let toks = tokenize("comm = '(sd-pam)' src [::1]:80").unwrap();
        let spans: Vec<(usize, usize)> = toks.iter().map(|t| (t.offset, t.len)).collect();
        assert_eq!(spans, vec![(0, 4), (5, 1), (7, 10), (18, 3), (22, 8)]);
        assert_eq!(toks[2].kind, TokKind::Quoted("(sd-pam)".to_string()));
        assert_eq!(toks[4].kind, w("[::1]:80"));
    }

    #[test]
    fn unterminated_quote() {
        let e = tokenize("comm = \"nginx").unwrap_err();
        assert_eq!((e.offset, e.len), (7, 1));
        assert_eq!(e.message, "unterminated quote \"");
    }
}
