//! The filter language: ss-compatible expressions over [`Socket`]s.
//!
//! `sockscope ls state established '( dport = :ssh or sport = :http )'` takes
//! the same filter words as `ss`. [`parse`] turns the command-line words into
//! a [`Filter`]; [`Filter::matches`] evaluates it on one socket (a pure
//! function: no kernel, no files, except /etc/services read once when a
//! service name is used); [`Filter::states`] tells a source which states to
//! ask the kernel for.
//!
//! # Grammar
//!
//! ```text
//! filter     = { state-sel } [ expr ] ;   (* the run is ss's, unless and/or follows it *)
//! state-sel  = ( "state" | "exclude" | "excl" ) STATE ;
//! expr       = and-expr { ( "or" | "|" | "||" ) and-expr } ;
//! and-expr   = unary { [ "and" | "&" | "&&" ] unary } ;     (* adjacent = and *)
//! unary      = ( "not" | "!" ) unary | "(" expr ")" | predicate ;
//! predicate  = "state" STATE
//!            | ( "exclude" | "excl" ) STATE                  (* = not state STATE *)
//!            | ( "sport" | "dport" ) [ cmp ] PORT
//!            | ( "src" | "dst" ) [ eq-ne ] HOST
//!            | ( "pid" | "uid" | "inode" ) [ cmp ] NUMBER
//!            | "comm" [ eq-ne ] NAME ;
//! cmp        = eq-ne | "<" | "lt" | ">" | "gt" | "<=" | "le" | ">=" | "ge" ;
//! eq-ne      = "=" | "==" | "eq" | "!=" | "ne" ;             (* omitted: = *)
//! PORT       = [ ":" ] ( DIGITS | SERVICE-NAME ) ;           (* :22, 22, :ssh *)
//! PORT-OR-STAR = ( DIGITS | SERVICE-NAME | "*" ) ;
//! HOST       = ADDR [ "/" LEN ] [ ":" PORT-OR-STAR ]         (* 10.0.0.0/8, 127.0.0.1:8080 *)
//!            | "[" ADDR6 [ "/" LEN ] "]" [ ":" PORT-OR-STAR ] (* [::1]:80 *)
//!            | ADDR6 [ "/" LEN ]                             (* ::1, fe80::/10; no port *)
//!            | ( "*" | "" ) ":" PORT-OR-STAR | "*"           (* *:8080, :8080 *)
//!            | PATH ;                                        (* /x, ./x, @abstract, unix:x *)
//! STATE      = established | syn-sent | syn-recv | fin-wait-1 | fin-wait-2
//!            | time-wait | closed | close-wait | last-ack | listening | closing
//!            | new-syn-recv | bound-inactive
//!            | all | connected | synchronized | bucket | big
//!            | listen | close | estab | unconn ;            (* aliases *)
//! ```
//!
//! Tokens are split on whitespace, and `(`, `)` and the operator characters
//! `= ! < > & |` split words too (`dport>=1024` works). Keywords, operator
//! words and state names are case-insensitive. A value in single or double
//! quotes (inside the shell's quotes) may contain anything, e.g.
//! `"comm = '(sd-pam)'"`. Precedence: `not` binds tightest, then `and`, then
//! `or`.
//!
//! A run of `state` / `exclude` words at the start (not followed by `and` /
//! `or`) selects states as ss does: the `state` words union, `exclude`
//! subtracts (from all states when it comes first). Elsewhere `state NAME` is
//! an ordinary predicate, so `state a state b` inside parentheses means both
//! at once (nothing); write `state a or state b`.
//!
//! State groups: `all` every state; `connected` all but listening and closed;
//! `synchronized` connected but not syn-sent; `bucket` syn-recv and time-wait
//! (the minisocks); `big` all but bucket.
//!
//! Matching: see the rules in the `expr` module. In short: a comparison on a
//! field the socket does not have is false (`dport != 22` is false for a UNIX
//! socket; use `not dport = 22` for the complement); `pid` and `comm` are
//! true when any owner matches, and their `!=` when no owner does; IPv4
//! addresses and prefixes also match their IPv4-mapped IPv6 forms; `src PATH`
//! matches a UNIX socket's own path (`*` is a wildcard, as in `comm`), and
//! `dst PATH` matches nothing, because the kernel does not report the peer's
//! path. Host names are not resolved.

mod expr;
mod lexer;
mod parser;
pub mod services;
pub mod sort;

use crate::escape::escape_str;
use crate::model::{Socket, State, StateSet};
use expr::{Expr, Pred};
use parser::ServiceSource;
use services::Services;
use std::fmt;

/// A parsed filter. `Filter::default()` matches every socket.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    /// ss's leading `state` / `exclude` selection.
    front: Option<StateSet>,
    expr: Option<Expr>,
}

/// A filter that does not parse, with the place it went wrong.
///
/// `offset` and `len` are byte positions in `input` (the words joined with
/// single spaces). At the end of the input `offset == input.len()` and
/// `len == 1`. Display prints the message, the input, a caret line under the
/// offending text and the hint.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct FilterError {
    pub message: String,
    pub input: String,
    pub offset: usize,
    pub len: usize,
    /// What would have been valid there.
    pub hint: String,
}

impl FilterError {
    pub(crate) fn new(
        message: impl Into<String>,
        input: &str,
        offset: usize,
        len: usize,
        hint: impl Into<String>,
    ) -> FilterError {
        FilterError {
            message: message.into(),
            input: input.to_string(),
            offset,
            len,
            hint: hint.into(),
        }
    }

    fn render(&self) -> String {
        use unicode_width::UnicodeWidthStr;
        // The input is shown escaped (it may hold ESC or other controls a
        // user pasted), and the caret is placed by display columns, so
        // wide (CJK) and combining characters do not shift it.
        let shown = |s: &str| -> String {
            let flat: String = s
                .chars()
                .map(|c| if c.is_whitespace() { ' ' } else { c })
                .collect();
            escape_str(&flat).into_owned()
        };
        let end = (self.offset + self.len).min(self.input.len());
        let (before, bad) = match (
            self.input.get(..self.offset),
            self.input.get(self.offset..end),
        ) {
            (Some(b), Some(m)) => (b, m),
            _ => (self.input.as_str(), ""),
        };
        let col = shown(before).width();
        let width = shown(bad).width().max(1);
        let mut out = format!(
            "{}\n  {}\n  {}{}",
            escape_str(&self.message),
            shown(&self.input),
            " ".repeat(col),
            "^".repeat(width)
        );
        if !self.hint.is_empty() {
            out.push_str("\nhint: ");
            out.push_str(&escape_str(&self.hint));
        }
        out
    }
}

/// Parses the filter words of a command line (joined with single spaces),
/// resolving service names through /etc/services.
pub fn parse(words: &[String]) -> Result<Filter, FilterError> {
    parse_input(&words.join(" "), ServiceSource::System)
}

/// Like [`parse`], with service names looked up in `services`.
pub fn parse_with(words: &[String], services: &Services) -> Result<Filter, FilterError> {
    parse_input(&words.join(" "), ServiceSource::Given(services))
}

fn parse_input(input: &str, services: ServiceSource<'_>) -> Result<Filter, FilterError> {
    let p = parser::parse(input, services)?;
    Ok(Filter {
        front: p.front,
        expr: p.expr,
    })
}

impl Filter {
    /// True if the socket passes the filter.
    pub fn matches(&self, s: &Socket) -> bool {
        self.front.is_none_or(|f| f.contains(s.state))
            && self.expr.as_ref().is_none_or(|e| e.eval(s))
    }

    /// States that can possibly match; used to ask the kernel only for those.
    /// `state` words at the front and any `state` predicate constrain it
    /// conservatively (and = intersect, or = union, not = all states, except
    /// that the negation of a pure state expression is its complement).
    /// `None` when the filter says nothing about states.
    pub fn states(&self) -> Option<StateSet> {
        let info = self
            .expr
            .as_ref()
            .map(Expr::state_info)
            .filter(|i| i.mentioned)
            .map(|i| i.set);
        match (self.front, info) {
            (Some(f), Some(e)) => Some(f.intersect(e)),
            (f, e) => f.or(e),
        }
    }

    /// The one local port every socket the filter matches is bound to,
    /// when the filter says so (`sport = :443`, `src 10.0.0.1:443 and
    /// dport = :5000`): the kernel can then be asked for that port's
    /// sockets alone, as ss does. Sockets without a port (UNIX) match no
    /// such filter. The filter still decides every row.
    pub fn local_port(&self) -> Option<u16> {
        match self.expr.as_ref()?.local_ports()?.as_slice() {
            [p] => Some(*p),
            _ => None,
        }
    }

    /// A program for the kernel's inet socket dump (inet_diag bytecode)
    /// that passes every socket the filter matches and, where the filter
    /// says so in ports and addresses, few others: the kernel then sends
    /// only those, as with ss's filters. `None`: nothing to ask.
    pub fn kernel_bytecode(&self) -> Option<Vec<u8>> {
        self.expr.as_ref()?.kernel_bytecode()
    }

    /// True if evaluating needs owners (pid or comm predicates).
    pub fn needs_owners(&self) -> bool {
        self.expr
            .as_ref()
            .is_some_and(|e| e.any_pred(&|p| matches!(p, Pred::Pid { .. } | Pred::Comm { .. })))
    }

    /// True if the filter has neither a state selection nor an expression.
    pub fn is_empty(&self) -> bool {
        self.front.is_none() && self.expr.is_none()
    }
}

/// The filter in canonical form (every `and` / `or` in parentheses, ports as
/// numbers); parsing it again gives the same filter.
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if let Some(front) = self.front {
            if front.is_empty() {
                f.write_str("exclude all")?;
            } else if front == StateSet::ALL {
                f.write_str("state all")?;
            } else {
                for s in front.iter() {
                    write!(f, "{sep}state {}", s.name())?;
                    sep = " ";
                }
            }
            sep = " ";
        }
        match &self.expr {
            // A bare `state X` after the leading run would join the run.
            Some(e @ Expr::Pred(Pred::State { .. })) if self.front.is_some() => {
                write!(f, "{sep}({e})")?
            }
            Some(e) => write!(f, "{sep}{e}")?,
            None => {}
        }
        Ok(())
    }
}

const fn bits(states: &[State]) -> StateSet {
    let mut m = 0;
    let mut i = 0;
    while i < states.len() {
        m |= 1 << (states[i] as u32);
        i += 1;
    }
    StateSet(m)
}

const BUCKET: StateSet = bits(&[State::SynRecv, State::TimeWait]);
const CONNECTED: StateSet = StateSet(StateSet::ALL.0 & !bits(&[State::Listen, State::Close]).0);
const SYNCHRONIZED: StateSet = StateSet(CONNECTED.0 & !bits(&[State::SynSent]).0);
const BIG: StateSet = StateSet(StateSet::ALL.0 & !BUCKET.0);

/// State names and groups, as ss spells them.
pub(crate) const STATE_NAMES: [(&str, StateSet); 18] = [
    ("established", bits(&[State::Established])),
    ("syn-sent", bits(&[State::SynSent])),
    ("syn-recv", bits(&[State::SynRecv])),
    ("fin-wait-1", bits(&[State::FinWait1])),
    ("fin-wait-2", bits(&[State::FinWait2])),
    ("time-wait", bits(&[State::TimeWait])),
    ("closed", bits(&[State::Close])),
    ("close-wait", bits(&[State::CloseWait])),
    ("last-ack", bits(&[State::LastAck])),
    ("listening", bits(&[State::Listen])),
    ("closing", bits(&[State::Closing])),
    ("new-syn-recv", bits(&[State::NewSynRecv])),
    ("bound-inactive", bits(&[State::BoundInactive])),
    ("all", StateSet::ALL),
    ("connected", CONNECTED),
    ("synchronized", SYNCHRONIZED),
    ("bucket", BUCKET),
    ("big", BIG),
];

/// Other spellings: ss's `listen` and `close`, and the labels of ss's State
/// column (`estab`, `unconn`).
pub(crate) const STATE_ALIASES: [(&str, &str); 4] = [
    ("listen", "listening"),
    ("close", "closed"),
    ("estab", "established"),
    ("unconn", "closed"),
];

/// The states a state name or group stands for (case-insensitive), as in
/// `state NAME`. `None` for an unknown name.
pub fn state_group(name: &str) -> Option<StateSet> {
    let lower = name.to_ascii_lowercase();
    let canonical = STATE_ALIASES
        .iter()
        .find(|(a, _)| *a == lower)
        .map_or(lower.as_str(), |(_, c)| c);
    STATE_NAMES
        .iter()
        .find(|(n, _)| *n == canonical)
        .map(|(_, s)| *s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Endpoint, Family, Owner, Proto, SourceKind};
    use std::net::SocketAddr;

    const SERVICES: &str = "\
ssh\t\t22/tcp
domain\t\t53/tcp
domain\t\t53/udp
http\t\t80/tcp\t\twww
https\t\t443/tcp
";

    fn words(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    fn f(s: &str) -> Filter {
        let sv = Services::parse(SERVICES);
        match parse_with(&[s.to_string()], &sv) {
            Ok(f) => f,
            Err(e) => panic!("{s:?} did not parse:\n{e}"),
        }
    }

    fn err(s: &str) -> FilterError {
        let sv = Services::parse(SERVICES);
        match parse_with(&[s.to_string()], &sv) {
            Ok(f) => panic!("{s:?} parsed as {f}"),
            Err(e) => e,
        }
    }

    fn inet(a: &str) -> Endpoint {
        let sa: SocketAddr = a.parse().unwrap();
        Endpoint::Inet {
            addr: sa.ip(),
            port: sa.port(),
        }
    }

    /// A TCP socket between two `addr:port` strings (`[v6]:port` for IPv6).
    fn tcp(state: State, local: &str, peer: &str) -> Socket {
        let local = inet(local);
        let family = match local.ip() {
            Some(std::net::IpAddr::V6(_)) => Family::Inet6,
            _ => Family::Inet,
        };
        let mut s = Socket::new(
            Proto::Tcp,
            family,
            state,
            local,
            inet(peer),
            SourceKind::Netlink,
        );
        s.recv_q = Some(0);
        s.send_q = Some(0);
        s.inode = 1000;
        s.uid = Some(1000);
        s
    }

    fn unix(state: State, path: Option<&str>) -> Socket {
        Socket {
            proto: Proto::UnixStream,
            family: Family::Unix,
            local: Endpoint::Unix {
                path: path.map(str::to_string),
                inode: 2000,
            },
            peer: Endpoint::Unix {
                path: None,
                inode: 2001,
            },
            inode: 2000,
            ..tcp(state, "0.0.0.0:0", "0.0.0.0:0")
        }
    }

    fn owned(mut s: Socket, owners: &[(u32, &str)]) -> Socket {
        s.owners = owners
            .iter()
            .enumerate()
            .map(|(i, (pid, comm))| Owner {
                pid: *pid,
                fd: i as u32 + 3,
                comm: comm.to_string(),
                uid: Some(0),
                tid: None,
            })
            .collect();
        s
    }

    fn est(local: &str, peer: &str) -> Socket {
        tcp(State::Established, local, peer)
    }

    fn set(states: &[State]) -> StateSet {
        StateSet::of(states)
    }

    use State::*;

    #[test]
    fn state_groups_exact() {
        let every = [
            Established,
            SynSent,
            SynRecv,
            FinWait1,
            FinWait2,
            TimeWait,
            Close,
            CloseWait,
            LastAck,
            Listen,
            Closing,
            NewSynRecv,
            BoundInactive,
        ];
        assert_eq!(state_group("all"), Some(set(&every)));
        assert_eq!(state_group("all"), Some(StateSet::ALL));
        assert_eq!(
            state_group("connected"),
            Some(set(&[
                Established,
                SynSent,
                SynRecv,
                FinWait1,
                FinWait2,
                TimeWait,
                CloseWait,
                LastAck,
                Closing,
                NewSynRecv,
                BoundInactive,
            ]))
        );
        assert_eq!(
            state_group("synchronized"),
            Some(set(&[
                Established,
                SynRecv,
                FinWait1,
                FinWait2,
                TimeWait,
                CloseWait,
                LastAck,
                Closing,
                NewSynRecv,
                BoundInactive,
            ]))
        );
        assert_eq!(state_group("bucket"), Some(set(&[SynRecv, TimeWait])));
        assert_eq!(
            state_group("big"),
            Some(set(&[
                Established,
                SynSent,
                FinWait1,
                FinWait2,
                Close,
                CloseWait,
                LastAck,
                Listen,
                Closing,
                NewSynRecv,
                BoundInactive,
            ]))
        );
        // Every single state by its name, and the aliases.
        for s in every {
            assert_eq!(state_group(s.name()), Some(set(&[s])), "{}", s.name());
        }
        assert_eq!(state_group("listen"), Some(set(&[Listen])));
        assert_eq!(state_group("LISTEN"), Some(set(&[Listen])));
        assert_eq!(state_group("close"), Some(set(&[Close])));
        assert_eq!(state_group("unconn"), Some(set(&[Close])));
        assert_eq!(state_group("estab"), Some(set(&[Established])));
        assert_eq!(state_group("establised"), None);
    }

    #[test]
    fn front_state_selection() {
        assert_eq!(f("state established").states(), Some(set(&[Established])));
        assert_eq!(
            f("state established state time-wait").states(),
            Some(set(&[Established, TimeWait]))
        );
        assert_eq!(
            f("exclude listening").states(),
            Some(StateSet::ALL.without(set(&[Listen])))
        );
        assert_eq!(
            f("excl bucket exclude closed").states(),
            Some(StateSet::ALL.without(set(&[SynRecv, TimeWait, Close])))
        );
        assert_eq!(
            f("state connected exclude established").states(),
            Some(CONNECTED.without(set(&[Established])))
        );
        // ss order: exclude first starts from all, a later state adds back.
        assert_eq!(f("exclude all state listen").states(), Some(set(&[Listen])));
        let flt = f("state established state time-wait");
        assert!(flt.matches(&est("1.1.1.1:1", "2.2.2.2:2")));
        assert!(flt.matches(&tcp(TimeWait, "1.1.1.1:1", "2.2.2.2:2")));
        assert!(!flt.matches(&tcp(Listen, "1.1.1.1:1", "0.0.0.0:0")));
        assert!(!flt.matches(&tcp(SynSent, "1.1.1.1:1", "2.2.2.2:2")));
        let flt = f("exclude listening");
        assert!(!flt.matches(&tcp(Listen, "1.1.1.1:1", "0.0.0.0:0")));
        assert!(flt.matches(&tcp(Close, "1.1.1.1:1", "0.0.0.0:0")));
    }

    #[test]
    fn front_and_expression_from_separate_words() {
        let sv = Services::parse(SERVICES);
        let w = vec![
            "state".to_string(),
            "established".to_string(),
            "( dport = :ssh or sport = :http )".to_string(),
        ];
        let flt = parse_with(&w, &sv).unwrap();
        assert_eq!(
            flt.to_string(),
            "state established (dport = :22 or sport = :80)"
        );
        assert!(flt.matches(&est("10.0.0.1:5000", "10.0.0.2:22")));
        assert!(flt.matches(&est("10.0.0.1:80", "10.0.0.2:6000")));
        assert!(!flt.matches(&est("10.0.0.1:81", "10.0.0.2:6000")));
        assert!(!flt.matches(&tcp(TimeWait, "10.0.0.1:80", "10.0.0.2:6000")));
        assert_eq!(flt.states(), Some(set(&[Established])));
    }

    #[test]
    fn port_ops() {
        let at = |p: u16| est(&format!("10.0.0.1:{p}"), "10.0.0.2:40000");
        let cases: [(&str, [bool; 3]); 12] = [
            ("=", [false, true, false]),
            ("==", [false, true, false]),
            ("eq", [false, true, false]),
            ("!=", [true, false, true]),
            ("ne", [true, false, true]),
            ("<", [true, false, false]),
            ("lt", [true, false, false]),
            (">", [false, false, true]),
            ("gt", [false, false, true]),
            ("<=", [true, true, false]),
            ("le", [true, true, false]),
            (">=", [false, true, true]),
        ];
        for (op, want) in cases {
            let flt = f(&format!("sport {op} :22"));
            let got = [
                flt.matches(&at(21)),
                flt.matches(&at(22)),
                flt.matches(&at(23)),
            ];
            assert_eq!(got, want, "sport {op} :22");
        }
        let ge = f("sport ge 22");
        assert_eq!([ge.matches(&at(21)), ge.matches(&at(22))], [false, true]);
        // Without spaces, and without an operator (= is implied).
        assert_eq!(f("sport>=1024").to_string(), "sport >= :1024");
        assert_eq!(f("sport :22").to_string(), "sport = :22");
        // dport looks at the peer.
        let s = est("10.0.0.1:22", "10.0.0.2:40000");
        assert!(f("dport = 40000").matches(&s));
        assert!(!f("dport = 22").matches(&s));
        assert!(f("dport > :1024").matches(&s));
    }

    #[test]
    fn port_names() {
        let s = est("10.0.0.1:22", "10.0.0.2:443");
        assert!(f("sport = :ssh").matches(&s));
        assert!(f("sport = ssh").matches(&s));
        assert!(f("dport = :https").matches(&s));
        assert!(!f("dport = :http").matches(&s));
        assert_eq!(f("dport = :www").to_string(), "dport = :80");
        assert_eq!(f("dport = :domain").to_string(), "dport = :53");
    }

    #[test]
    fn ports_on_unix_are_false() {
        let u = unix(Established, Some("/run/x.sock"));
        for q in ["sport = 0", "dport != 22", "dport < 100", "sport >= 0"] {
            assert!(!f(q).matches(&u), "{q}");
        }
        assert!(f("not dport = 22").matches(&u));
    }

    #[test]
    fn addresses_v4() {
        let s = est("127.0.0.1:8080", "10.1.2.3:40000");
        let yes = [
            "src 127.0.0.1",
            "src = 127.0.0.1",
            "src == 127.0.0.1",
            "src eq 127.0.0.1:8080",
            "src 127.0.0.0/8",
            "src 127/8",
            "src *:8080",
            "src :8080",
            "src *",
            "src 127.0.0.1:*",
            "dst 10.0.0.0/8",
            "dst 10.1.2.3:40000",
            "dst != 10.1.2.4",
            "dst ne 11.0.0.0/8",
            "src 0.0.0.0/0",
            "src ::ffff:127.0.0.1",
            "src ::ffff:127.0.0.0/104",
        ];
        for q in yes {
            assert!(f(q).matches(&s), "{q} should match");
        }
        let no = [
            "src 127.0.0.2",
            "src 127.0.0.1:8081",
            "src *:8081",
            "src != 127.0.0.1",
            "dst 10.1.2.3:40001",
            "dst 11.0.0.0/8",
            "src ::1",
            "src ::/0",
            "dst 192.168.0.0/16",
        ];
        for q in no {
            assert!(!f(q).matches(&s), "{q} should not match");
        }
    }

    #[test]
    fn addresses_v6_and_mapped() {
        let v6 = tcp(Established, "[::1]:80", "[fe80::1]:5555");
        let yes = [
            "src ::1",
            "src [::1]",
            "src [::1]:80",
            "src [::1]:http",
            "src ::/0",
            "dst fe80::/10",
            "dst [fe80::/10]:5555",
            "dst != fe80::2",
            "src *:80",
        ];
        for q in yes {
            assert!(f(q).matches(&v6), "{q} should match");
        }
        for q in [
            "src [::1]:81",
            "src ::2",
            "dst fec0::/10",
            "src 127.0.0.1",
            "src 0.0.0.0/0",
        ] {
            assert!(!f(q).matches(&v6), "{q} should not match");
        }
        // A dual-stack socket: IPv4 filters match the mapped form.
        let mapped = tcp(
            Established,
            "[::ffff:10.0.0.5]:443",
            "[::ffff:192.168.1.9]:50000",
        );
        for q in [
            "src 10.0.0.0/8",
            "src 10.0.0.5",
            "src 10.0.0.5:443",
            "dst 192.168.1.0/24",
            "dst != 10.0.0.0/8",
            "src ::ffff:10.0.0.5",
            "src ::ffff:0:0/96",
        ] {
            assert!(f(q).matches(&mapped), "{q} should match");
        }
        for q in [
            "src 11.0.0.0/8",
            "dst 10.0.0.0/8",
            "src 10.0.0.5:80",
            "src ::1",
        ] {
            assert!(!f(q).matches(&mapped), "{q} should not match");
        }
    }

    #[test]
    fn unix_paths() {
        let named = unix(Listen, Some("/run/dbus/system_bus_socket"));
        let abs = unix(Established, Some("@/tmp/.X11-unix/X0"));
        let unnamed = unix(Established, None);
        let flt = f("src /run/*");
        assert_eq!(
            [
                flt.matches(&named),
                flt.matches(&abs),
                flt.matches(&unnamed)
            ],
            [true, false, false]
        );
        let flt = f("src @*X11*");
        assert_eq!(
            [
                flt.matches(&named),
                flt.matches(&abs),
                flt.matches(&unnamed)
            ],
            [false, true, false]
        );
        let flt = f("src unix:*");
        assert_eq!(
            [
                flt.matches(&named),
                flt.matches(&abs),
                flt.matches(&unnamed)
            ],
            [true, true, false]
        );
        // != needs a path to compare; unnamed sockets have none.
        let flt = f("src != /run/*");
        assert_eq!(
            [
                flt.matches(&named),
                flt.matches(&abs),
                flt.matches(&unnamed)
            ],
            [false, true, false]
        );
        // The peer's path is unknown: dst PATH matches nothing, either way.
        for q in ["dst /run/*", "dst unix:*", "dst != /nowhere"] {
            assert!(!f(q).matches(&named) && !f(q).matches(&abs), "{q}");
        }
        // INET addresses never match UNIX sockets and paths never match INET.
        assert!(!f("src 0.0.0.0/0").matches(&named));
        assert!(!f("src *").matches(&named));
        assert!(!f("src != 1.2.3.4").matches(&named));
        assert!(!f("src /*").matches(&est("1.1.1.1:1", "2.2.2.2:2")));
        // Exact path.
        assert!(f("src /run/dbus/system_bus_socket").matches(&named));
        assert!(!f("src /run/dbus").matches(&named));
    }

    #[test]
    fn owners_uid_inode() {
        let s = owned(
            est("1.1.1.1:1", "2.2.2.2:2"),
            &[(100, "nginx"), (101, "nginx-worker")],
        );
        let none = est("1.1.1.1:1", "2.2.2.2:2");
        let cases: [(&str, bool, bool); 18] = [
            ("pid = 100", true, false),
            ("pid = 101", true, false),
            ("pid = 102", false, false),
            ("pid != 100", false, true),
            ("pid != 102", true, true),
            ("pid < 101", true, false),
            ("pid > 101", false, false),
            ("pid >= 101", true, false),
            ("comm = nginx", true, false),
            ("comm nginx-worker", true, false),
            ("comm = ngin", false, false),
            ("comm = ngin*", true, false),
            ("comm != nginx", false, true),
            ("comm != apache", true, true),
            ("uid = 1000", true, true),
            ("uid != 0", true, true),
            ("inode = 1000", true, true),
            ("inode gt 1000", false, false),
        ];
        for (q, with, without) in cases {
            assert_eq!(f(q).matches(&s), with, "{q} with owners");
            assert_eq!(f(q).matches(&none), without, "{q} without owners");
        }
        let mut nouid = none.clone();
        nouid.uid = None;
        assert!(!f("uid = 1000").matches(&nouid));
        assert!(!f("uid != 1000").matches(&nouid));
        let quoted = owned(none, &[(1, "(sd-pam)")]);
        assert!(f("comm = '(sd-pam)'").matches(&quoted));
        assert!(f("comm = \"(sd-*\"").matches(&quoted));
        assert_eq!(f("comm = '(sd-pam)'").to_string(), "comm = \"(sd-pam)\"");
    }

    #[test]
    fn implicit_and_precedence_parens() {
        assert_eq!(
            f("sport = 1 dport = 2").to_string(),
            "(sport = :1 and dport = :2)"
        );
        assert_eq!(
            f("sport = 1 or sport = 2 and sport = 3").to_string(),
            "(sport = :1 or (sport = :2 and sport = :3))"
        );
        assert_eq!(
            f("sport = 1 and sport = 2 or sport = 3").to_string(),
            "((sport = :1 and sport = :2) or sport = :3)"
        );
        assert_eq!(
            f("not sport = 1 and sport = 2").to_string(),
            "(not sport = :1 and sport = :2)"
        );
        assert_eq!(
            f("! ( sport = 1 || sport = 2 ) && ! ! dport = 3").to_string(),
            "(not (sport = :1 or sport = :2) and not not dport = :3)"
        );
        assert_eq!(
            f("sport = 1 | sport = 2 & dport = 3 dport = 4").to_string(),
            "(sport = :1 or ((sport = :2 and dport = :3) and dport = :4))"
        );
        assert_eq!(
            f("(sport = 1 or sport = 2) dport = 3").to_string(),
            "((sport = :1 or sport = :2) and dport = :3)"
        );
        assert_eq!(f("((sport = 1))").to_string(), "sport = :1");
        // Evaluation agrees with the structure.
        let s = est("1.1.1.1:1", "2.2.2.2:9");
        assert!(f("sport = 1 or sport = 2 and dport = 3").matches(&s));
        assert!(!f("(sport = 1 or sport = 2) and dport = 3").matches(&s));
        assert!(f("sport = 5 or sport = 1 dport = 9").matches(&s));
        assert!(!f("sport = 1 dport = 8").matches(&s));
        assert!(!f("not sport = 1 or dport = 8").matches(&s));
        assert!(f("not (sport = 2 or dport = 8)").matches(&s));
    }

    #[test]
    fn display_keeps_a_lone_state_predicate_apart() {
        let flt = f("state established ( state listening )");
        assert_eq!(flt.to_string(), "state established (state listening)");
        assert_eq!(flt.states(), Some(StateSet::EMPTY));
        assert_eq!(f("state listening").to_string(), "state listening");
    }

    #[test]
    fn display_round_trips() {
        for q in [
            "state established state time-wait (dport = :22 or not src 10.0.0.0/8)",
            "exclude all",
            "state all sport = :1",
            "(comm = \"a b\" or comm != 'x\"y')",
            "(state listening or exclude bucket)",
            "(src [::1]:80 and dst = /x)",
            "state established ( state listening )",
            "state time-wait state established ( exclude established )",
        ] {
            let once = f(q);
            let twice = f(&once.to_string());
            assert_eq!(once, twice, "{q} -> {once}");
            assert_eq!(once.states(), twice.states(), "{q} -> {once}");
        }
    }

    #[test]
    fn states_results() {
        let all_but = |s: &[State]| StateSet::ALL.without(set(s));
        let cases: Vec<(&str, Option<StateSet>)> = vec![
            ("", None),
            ("sport = :22", None),
            ("not sport = :22 or dst ::1", None),
            ("state established", Some(set(&[Established]))),
            ("state connected", Some(CONNECTED)),
            (
                "state listening or state established",
                Some(set(&[Listen, Established])),
            ),
            ("state listening and sport = 22", Some(set(&[Listen]))),
            (
                "(state listening and sport = 22) or state closed",
                Some(set(&[Listen, Close])),
            ),
            ("state listening or sport = 22", Some(StateSet::ALL)),
            ("not state listening", Some(all_but(&[Listen]))),
            ("sport = 22 exclude listening", Some(all_but(&[Listen]))),
            ("not (state listening and sport = 22)", Some(StateSet::ALL)),
            (
                "not (state listening or state closed)",
                Some(all_but(&[Listen, Close])),
            ),
            ("( state bucket state time-wait )", Some(set(&[TimeWait]))),
            (
                "state established state syn-sent ( state syn-sent or sport = 1 )",
                Some(set(&[Established, SynSent])),
            ),
            (
                "state established ( state syn-sent sport = 1 )",
                Some(StateSet::EMPTY),
            ),
            ("state established sport = 1", Some(set(&[Established]))),
            ("exclude listening", Some(all_but(&[Listen]))),
        ];
        for (q, want) in cases {
            assert_eq!(f(q).states(), want, "{q:?}");
        }
    }

    #[test]
    fn state_predicate_after_expression_and_or_at_front() {
        // `state a or state b` at the start is one expression, not ss's run.
        let flt = f("state listening or state established");
        assert_eq!(flt.to_string(), "(state listening or state established)");
        assert!(flt.matches(&tcp(Listen, "1.1.1.1:1", "0.0.0.0:0")));
        assert!(!flt.matches(&tcp(TimeWait, "1.1.1.1:1", "2.2.2.2:2")));
        let flt = f("sport = 22 state established");
        assert!(flt.matches(&est("1.1.1.1:22", "2.2.2.2:2")));
        assert!(!flt.matches(&tcp(CloseWait, "1.1.1.1:22", "2.2.2.2:2")));
        let flt = f("sport = 22 exclude established");
        assert_eq!(flt.to_string(), "(sport = :22 and not state established)");
        assert!(flt.matches(&tcp(CloseWait, "1.1.1.1:22", "2.2.2.2:2")));
        assert!(!flt.matches(&est("1.1.1.1:22", "2.2.2.2:2")));
    }

    #[test]
    fn owners_needed_and_empty() {
        assert!(Filter::default().is_empty());
        assert!(!Filter::default().needs_owners());
        assert_eq!(Filter::default().states(), None);
        assert!(Filter::default().matches(&unix(Close, None)));
        assert!(f("").is_empty());
        assert!(f("   ").is_empty());
        assert_eq!(parse_with(&[], &Services::default()), Ok(Filter::default()));
        assert!(!f("state listening").is_empty());
        assert!(!f("sport = 1").is_empty());
        assert!(!f("sport = 1 or uid = 0 or inode = 3").needs_owners());
        assert!(f("sport = 1 or not pid = 3").needs_owners());
        assert!(f("(comm = x)").needs_owners());
        assert!(!f("state listening").needs_owners());
    }

    /// (offset, len, message) of the error for `q`.
    fn at(q: &str) -> (usize, usize, String) {
        let e = err(q);
        assert_eq!(e.input, q);
        (e.offset, e.len, e.message)
    }

    #[test]
    fn error_positions() {
        let cases: Vec<(&str, usize, usize, &str)> = vec![
            // Unknown keyword, with suggestion.
            (
                "sprot = :22",
                0,
                5,
                "unknown keyword 'sprot'; did you mean 'sport'?",
            ),
            ("sport = :22 bogus", 12, 5, "unknown keyword 'bogus'"),
            (
                "state listening dev = eth0",
                16,
                3,
                "'dev' filters are not supported by sockscope",
            ),
            (
                ":22",
                0,
                3,
                "a port needs a keyword: sport = :22 or dport = :22",
            ),
            (
                "10.0.0.1",
                0,
                8,
                "an address needs a keyword: src 10.0.0.1 or dst 10.0.0.1",
            ),
            (
                "established",
                0,
                11,
                "a state needs a keyword: state established",
            ),
            // Unknown state, with suggestion.
            (
                "state establised",
                6,
                10,
                "unknown state 'establised'; did you mean 'established'?",
            ),
            (
                "sport = 1 exclude lisen",
                18,
                5,
                "unknown state 'lisen'; did you mean 'listen'?",
            ),
            ("state frobbed", 6, 7, "unknown state 'frobbed'"),
            // Missing value: the caret sits just past the end.
            ("sport =", 7, 1, "missing port after 'sport ='"),
            ("src", 3, 1, "missing address after 'src'"),
            ("state", 5, 1, "missing state name after 'state'"),
            ("pid >", 5, 1, "missing number after 'pid >'"),
            (
                "sport = )",
                8,
                1,
                "expected a port after 'sport =', found ')'",
            ),
            (
                "state (",
                6,
                1,
                "expected a state name after 'state', found '('",
            ),
            // Unbalanced parentheses.
            ("( sport = 1", 0, 1, "unclosed '('"),
            ("( ( sport = 1 )", 0, 1, "unclosed '('"),
            ("sport = 1 )", 10, 1, "unmatched ')'"),
            ("( sport = 1 ) )", 14, 1, "unmatched ')'"),
            (")", 0, 1, "unmatched ')'"),
            // Bad port.
            ("sport = :abc", 8, 4, "unknown service name 'abc'"),
            (
                "dport > :70000",
                8,
                6,
                "port 70000 is out of range (0-65535)",
            ),
            ("dport = :", 8, 1, "empty port"),
            // Bad address.
            ("src 300.1.1.1", 4, 9, "'300.1.1.1' is not an IP address"),
            (
                "dst != 10.0.0.0/40",
                7,
                11,
                "prefix length 40 is too long for IPv4 (at most 32)",
            ),
            (
                "src example.com",
                4,
                11,
                "'example.com' is not an IP address (host names are not resolved)",
            ),
            ("dst [::1", 4, 4, "missing ']' in '[::1'"),
            ("src < 1.2.3.4", 4, 1, "'<' cannot be used with 'src'"),
            ("comm >= x", 5, 2, "'>=' cannot be used with 'comm'"),
            // Bad number.
            ("pid = x1", 6, 2, "'x1' is not a pid"),
            ("uid = 4294967296", 6, 10, "'4294967296' is not a uid"),
            // Trailing operators: the caret is under the operator.
            (
                "sport = 1 and",
                10,
                3,
                "'and' must be followed by an expression",
            ),
            (
                "sport = 1 ||",
                10,
                2,
                "'||' must be followed by an expression",
            ),
            ("not", 0, 3, "'not' must be followed by an expression"),
            (
                "( sport = 1 or )",
                12,
                2,
                "'or' must be followed by an expression",
            ),
            (
                "sport = 1 and or dport = 2",
                14,
                2,
                "expected an expression before 'or'",
            ),
            ("or sport = 1", 0, 2, "expected an expression before 'or'"),
            ("= 1", 0, 1, "expected a predicate, found operator '='"),
            // Empty parentheses: the caret spans both.
            ("sport = 1 or ( )", 13, 3, "empty parentheses"),
            ("()", 0, 2, "empty parentheses"),
            // Quotes.
            ("comm = 'x", 7, 1, "unterminated quote '"),
            (
                "'sport'",
                0,
                7,
                "expected a predicate, found the value 'sport'",
            ),
        ];
        for (q, off, len, msg) in cases {
            assert_eq!(at(q), (off, len, msg.to_string()), "{q:?}");
        }
    }

    #[test]
    fn error_display() {
        let e = err("state established ( dport = :sshh or sport = :http )");
        assert_eq!(
            e.to_string(),
            "unknown service name 'sshh'\n  \
             state established ( dport = :sshh or sport = :http )\n  \
             \x20                           ^^^^^\n\
             hint: expected a port like :8080 or :http (names from /etc/services)"
        );
        // Offsets count bytes; the caret line counts characters.
        let e = err("comm = 'é' sprt = 1");
        assert_eq!((e.offset, e.len), (12, 4));
        let shown = e.to_string();
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines[0], "unknown keyword 'sprt'; did you mean 'sport'?");
        assert_eq!(lines[2], "             ^^^^");
        assert!(lines[3].starts_with("hint: a predicate is one of: state NAME"));
        // End-of-input caret.
        let e = err("src");
        assert_eq!(e.to_string().lines().nth(2), Some("     ^"));
        // Wide characters take two columns, combining marks none: the
        // caret stays under the bad word.
        for (input, col) in [
            ("comm = '名前' sprt = 1", 14),
            ("comm = 'e\u{301}' sprt = 1", 11),
        ] {
            let e = err(input);
            let shown = e.to_string();
            let lines: Vec<&str> = shown.lines().collect();
            assert_eq!(lines[2], format!("  {}^^^^", " ".repeat(col)), "{input}");
        }
        // Control characters typed into a filter are shown escaped, in the
        // echoed input and in the message, and the caret follows them.
        let e = err("comm = \x1b[2J sprt = 1");
        let shown = e.to_string();
        assert!(!shown.contains('\x1b'), "{shown:?}");
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines[1], "  comm = \\e[2J sprt = 1");
        assert_eq!(lines[2], format!("  {}^^^^", " ".repeat(13)));
    }

    #[test]
    fn limits_instead_of_deep_recursion() {
        let deep = format!("{}sport = 1{}", "( ".repeat(100), " )".repeat(100));
        assert_eq!(f(&deep).to_string(), "sport = :1");
        let too_deep = format!("{}sport = 1{}", "( ".repeat(101), " )".repeat(101));
        let e = err(&too_deep);
        assert_eq!((e.offset, e.len), (200, 1));
        assert_eq!(e.message, "filter nested too deeply (more than 100 levels)");
        let nots = format!("{}sport = 1", "not ".repeat(101));
        assert_eq!(err(&nots).offset, 400);
        let long = vec!["sport = 1"; 1001].join(" or ");
        let e = err(&long);
        assert_eq!((e.offset, e.len), (1000 * 13, 5));
        assert_eq!(e.message, "filter too long (more than 1000 predicates)");
        // No hint line when there is no hint.
        assert_eq!(e.to_string().lines().count(), 3);
        let ok = vec!["sport = 1"; 1000].join(" ");
        assert!(f(&ok).matches(&est("1.1.1.1:1", "2.2.2.2:2")));
    }

    #[test]
    fn system_services_not_needed_for_numbers() {
        let flt = parse(&words(
            "state established ( dport = :22 or src [::1]:8080 )",
        ))
        .unwrap();
        assert!(flt.matches(&est("10.0.0.1:5000", "10.0.0.2:22")));
        assert!(flt.matches(&tcp(Established, "[::1]:8080", "[::1]:5000")));
        assert!(!flt.matches(&est("10.0.0.1:5000", "10.0.0.2:23")));
    }

    #[test]
    fn words_are_joined_with_spaces() {
        let sv = Services::parse(SERVICES);
        let e = parse_with(&words("sport = :22 and"), &sv).unwrap_err();
        assert_eq!(e.input, "sport = :22 and");
        assert_eq!((e.offset, e.len), (12, 3));
        let e = parse_with(
            &["dport".to_string(), "=".to_string(), ":nope".to_string()],
            &sv,
        )
        .unwrap_err();
        assert_eq!(e.input, "dport = :nope");
        assert_eq!((e.offset, e.len), (8, 5));
    }

    #[test]
    fn the_one_local_port_a_filter_implies() {
        let port = |s: &str| f(s).local_port();
        assert_eq!(port("sport = :443"), Some(443));
        assert_eq!(port("sport = :ssh"), Some(22));
        assert_eq!(port("src 10.0.0.1:443 and dport = :5000"), Some(443));
        assert_eq!(port("state established and ( sport = :22 )"), Some(22));
        assert_eq!(port("sport = :80 or src 127.0.0.1:80"), Some(80));
        assert_eq!(
            port("( sport = :22 or dport = :22 ) and sport = :22"),
            Some(22)
        );
        // Anything else: every port may match.
        for s in [
            "sport = :80 or sport = :443",
            "sport = :80 or dport = :80",
            "not sport = :80",
            "sport != :80",
            "sport > :80",
            "dport = :443",
            "src 10.0.0.1",
            "src != 10.0.0.1:80",
            "sport = :1 and sport = :2",
            "state listening",
        ] {
            assert_eq!(port(s), None, "{s}");
        }
        assert_eq!(Filter::default().local_port(), None);
        // Whatever the kernel is asked for, the filter decides each row.
        let s = tcp(State::Established, "10.0.0.1:443", "10.0.0.2:5000");
        assert!(f("src 10.0.0.1:443 and dport = :5000").matches(&s));
        assert!(!f("src 10.0.0.9:443 and dport = :5000").matches(&s));
    }

    /// The kernel's run of an inet_diag filter program on a socket
    /// (net/ipv4/inet_diag.c, inet_diag_bc_run), for the ops sockscope
    /// writes; and its audit (inet_diag_bc_audit): every `yes` walks to
    /// the next op, every `no` lands on an op or four bytes past the end.
    fn kernel_runs(code: &[u8], s: &Socket) -> bool {
        use crate::abi::inet_diag::*;
        let (Endpoint::Inet { addr: la, port: lp }, Endpoint::Inet { addr: pa, port: pp }) =
            (&s.local, &s.peer)
        else {
            panic!("inet sockets only")
        };
        let bytes = |a: &std::net::IpAddr| -> Vec<u8> {
            match a {
                std::net::IpAddr::V4(a) => a.octets().to_vec(),
                std::net::IpAddr::V6(a) => a.octets().to_vec(),
            }
        };
        let v6 = la.is_ipv6();
        let prefix_match = |a: &[u8], b: &[u8], bits: usize| {
            (0..bits).all(|i| (a[i / 8] >> (7 - i % 8)) & 1 == (b[i / 8] >> (7 - i % 8)) & 1)
        };
        let mut at = 0usize;
        let len = code.len() as isize;
        let mut left = len;
        while left > 0 {
            let o = &code[at..];
            let (op, yes_len, no_len) = (
                o[0],
                o[1] as usize,
                u16::from_ne_bytes([o[2], o[3]]) as usize,
            );
            let operand = || u16::from_ne_bytes([o[6], o[7]]);
            let yes = match op {
                INET_DIAG_BC_JMP => false,
                INET_DIAG_BC_S_EQ => *lp == operand(),
                INET_DIAG_BC_S_GE => *lp >= operand(),
                INET_DIAG_BC_S_LE => *lp <= operand(),
                INET_DIAG_BC_D_EQ => *pp == operand(),
                INET_DIAG_BC_D_GE => *pp >= operand(),
                INET_DIAG_BC_D_LE => *pp <= operand(),
                INET_DIAG_BC_S_COND | INET_DIAG_BC_D_COND => {
                    let (addr, port) = if op == INET_DIAG_BC_S_COND {
                        (la, lp)
                    } else {
                        (pa, pp)
                    };
                    let (family, plen) = (o[4], o[5] as usize);
                    let cport = i32::from_ne_bytes([o[8], o[9], o[10], o[11]]);
                    let caddr = &o[12..];
                    let a = bytes(addr);
                    let efam = if v6 { 10 } else { 2 };
                    if cport != -1 && cport != i32::from(*port) {
                        false
                    } else if family != 0 && family != efam {
                        efam == 10
                            && family == 2
                            && a[..10].iter().all(|&b| b == 0)
                            && a[10..12] == [0xff, 0xff]
                            && prefix_match(&a[12..], caddr, plen)
                    } else {
                        plen == 0 || prefix_match(&a, caddr, plen)
                    }
                }
                other => panic!("op {other} not written by sockscope"),
            };
            let step = if yes { yes_len } else { no_len };
            at += step;
            left -= step as isize;
        }
        left == 0
    }

    fn audit(code: &[u8]) {
        let mut starts = vec![];
        let mut at = 0;
        while at < code.len() {
            starts.push(at);
            let yes = code[at + 1] as usize;
            assert!(
                yes >= 4 && yes.is_multiple_of(4),
                "yes {yes} at {at}: {code:?}"
            );
            at += yes;
        }
        assert_eq!(at, code.len(), "the yes chain ends at the end: {code:?}");
        for &at in &starts {
            if code[at] == 0 {
                continue;
            }
            let no = u16::from_ne_bytes([code[at + 2], code[at + 3]]) as usize;
            let to = at + no;
            assert!(no >= 4 && no.is_multiple_of(4), "no {no} at {at}: {code:?}");
            assert!(
                to == code.len() + 4 || to == code.len() || starts.contains(&to),
                "no at {at} lands at {to}, not on an op: {code:?}"
            );
        }
    }

    #[test]
    fn the_kernel_program_passes_every_socket_the_filter_matches() {
        let addrs = [
            "127.0.0.1",
            "10.0.0.1",
            "0.0.0.0",
            "[::1]",
            "[::ffff:127.0.0.1]",
            "[::ffff:10.0.0.1]",
            "[2001:db8::1]",
            "[::]",
        ];
        let ports = [0u16, 22, 80, 443, 5000, 65535];
        let mut sockets = Vec::new();
        for la in addrs {
            for pa in addrs {
                // One family per socket, as the kernel has it.
                if la.starts_with('[') != pa.starts_with('[') {
                    continue;
                }
                for lp in ports {
                    for pp in ports {
                        sockets.push(tcp(
                            State::Established,
                            &format!("{la}:{lp}"),
                            &format!("{pa}:{pp}"),
                        ));
                    }
                }
            }
        }
        // (filter, exact: the program passes exactly what it matches)
        let cases = [
            ("sport = :80", true),
            ("dport = :443", true),
            ("sport > :5000", true),
            ("sport >= :5000", true),
            ("dport < :80", true),
            ("dport <= :80", true),
            ("dport < :0", false),
            ("sport > :65535", false),
            ("src 127.0.0.1", true),
            ("src 127.0.0.1:80", true),
            ("dst 10.0.0.0/8", true),
            ("dst [::ffff:10.0.0.1]", true),
            ("src [::1]", true),
            ("src [::/0]", true),
            ("src 0.0.0.0/0", true),
            ("dst [2001:db8::/32]:443", true),
            ("src *:22", true),
            ("sport = :80 and dport = :443", true),
            ("sport = :80 or dport = :443", true),
            (
                "( sport = :22 or sport = :80 ) and ( dst 10.0.0.1 or dst [::1] )",
                true,
            ),
            ("sport = :22 or ( dport >= :5000 and src 127.0.0.1 )", true),
            ("sport = :80 and not dport = :443", false),
            ("not sport = :80", false),
            ("sport != :80", false),
            ("sport = :80 or state listening", false),
            ("sport = :80 and uid = 0", false),
            ("src != 127.0.0.1 and sport = :22", false),
            ("( sport = :22 or uid = 0 ) and dport = :80", false),
        ];
        for (text, exact) in cases {
            let flt = f(text);
            let Some(code) = flt.kernel_bytecode() else {
                assert!(!exact, "{text}: no program");
                continue;
            };
            audit(&code);
            for s in &sockets {
                let (want, got) = (flt.matches(s), kernel_runs(&code, s));
                assert!(
                    got || !want,
                    "{text}: the kernel would drop {:?} -> {:?}",
                    s.local,
                    s.peer
                );
                if exact {
                    assert_eq!(got, want, "{text}: {:?} -> {:?}", s.local, s.peer);
                }
            }
        }
        // Nothing the kernel could test: no program.
        for text in [
            "state listening",
            "not sport = :22",
            "uid = 0",
            "src /run/*",
        ] {
            assert_eq!(f(text).kernel_bytecode(), None, "{text}");
        }
    }
}
