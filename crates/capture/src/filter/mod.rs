//! The pcap-filter(7) language of tcpdump, compiled to classic BPF: run by
//! the kernel on live capture (SO_ATTACH_FILTER) and by sockscope's own
//! interpreter on frames read from files ([`FileMatcher`]), as libpcap
//! does, so both modes share one meaning.
//!
//! - [`lex`]: command-line words to tokens.
//! - [`parse`]: tokens to an [`Expr`] tree.
//! - [`cbpf`]: the tree to a classic BPF program for a [`Linkage`].
//! - [`bpf`]: instruction encoding and an interpreter with the kernel's
//!   semantics.
//! - [`eval`]: file frames through the compiled program.
//! - [`scope`]: which conversations the filter can show a packet of (the
//!   others need no analysis when only packet lines are printed).
//!
//! Grammar (pcap-filter(7); what is not listed is refused with an error):
//!
//! ```text
//! expr    := and ( ("or" | "||") and )*
//! and     := not ( ("and" | "&&") not )*
//! not     := ("not" | "!") not | "(" expr ")" | relation | primitive
//! primitive := [proto] [dir] [type] ID | proto
//!            | vlan [ID] | mpls [LABEL] | pppoes [SESSION] | pppoed
//!            | geneve [VNI] | ether (host|src|dst) MAC | ether proto N
//!            | [ether|ip|ip6] broadcast/multicast | [ip|ip6] proto N
//!            | greater N | less N
//! relation  := arith (=|==|!=|<|<=|>|>=) arith
//! arith     := number | len | proto "[" arith [":" 1|2|4] "]"
//!            | arith (+ - * / % & | ^ << >>) arith | "(" arith ")" | - arith
//! proto   := ether | ip | ip6 | arp | tcp | udp | icmp | icmp6
//! dir     := src | dst | src or dst | src and dst
//! type    := host | net | port | portrange
//! ```
//!
//! `net` takes `10.0.0.0/8`, `10.0.0.0 mask 255.0.0.0` or a dotted prefix
//! (`net 10.1`), and refuses host bits (`net 10.0.0.1/8`) as tcpdump does.
//! An ID without qualifiers repeats the previous ones, as in tcpdump:
//! `port 80 or 443`, `host 10.0.0.1 or 10.0.0.2`. Numbers are decimal,
//! `0x` hex or `0` octal; libpcap's names (`tcpflags`, `tcp-syn`,
//! `icmptype`, `icmp-echo`, ...) work in comparisons.
//!
//! The meaning is libpcap's, so `sockscope capture -r F EXPR` selects the
//! packets `tcpdump -r F EXPR` selects: `host` also matches ARP sender and
//! target addresses; `port` matches TCP, UDP and SCTP, IPv4 non-first
//! fragments never match, and IPv6 ports are read only right after the
//! fixed header; `tcp` on IPv6 also matches a fragment header followed by
//! TCP; `tcp[N]` is IPv4 only. `vlan` moves every protocol test written
//! after it four bytes on (in the order of the text, whatever the
//! parentheses), so VLAN-tagged frames are selected with `vlan and tcp`.
//! `mpls` and `pppoes` move later tests past the label or the PPPoE and
//! PPP headers the same way (after a label, `ip`/`ip6` read the bottom of
//! stack bit and the version nibble; after PPPoE, the PPP protocol), as
//! libpcap does; after a label only IPv4 and IPv6 can follow, so `arp`,
//! `ether proto` of anything else and `pppoed` are refused there with
//! tcpdump's "unsupported protocol over mpls", and a bare `host` leaves ARP
//! out.
//!
//! `geneve [VNI]` tests the outer UDP (port 6081, IPv4 not a later
//! fragment, or IPv6 right after the fixed header) and Geneve (version 0,
//! the VNI) headers, and every test after it in the text reads the packet
//! inside the tunnel, as in libpcap: the program computes where it starts
//! from the Geneve option length (scratch slots hold the inner link, type
//! and network offsets), reading an inner Ethernet header when the Geneve
//! protocol type is 0x6558, else taking the protocol type as the ethertype
//! of a network header right after the options. Link-layer tests there
//! (`ether host`, `broadcast`) fail when the tunnel carries no Ethernet.
//! `vlan`, `mpls`, `pppoes` or a second `geneve` after `geneve` are
//! refused. `proto` takes libpcap's names (`gre`, `esp`, `ah`, ...);
//! tcpdump 4.99 (libpcap 1.10) has no `gre` or `vxlan` keyword, and neither
//! has sockscope (the error names `proto gre` and `udp port 4789`).
//! On a live Ethernet capture the kernel has already taken the outer tag
//! out of the frame: the first `vlan` then reads it from the socket
//! buffer's metadata (as libpcap does on Linux) and moves nothing; later
//! ones look at inner tags in the bytes.
//!
//! Why not link libpcap: sockscope ships as one static binary (container
//! images without libpcap), and libpcap's compiler is a C parser of
//! untrusted text; the subset here is small, and the tests compare it with
//! tcpdump packet by packet (counts on files, verdicts of the programs), so
//! it stays correct without the upkeep of a C dependency.

pub mod bpf;
pub mod cbpf;
pub mod eval;
pub mod lex;
pub mod parse;
pub mod scope;

pub use cbpf::Linkage;
pub use eval::FileMatcher;
pub use parse::{Arith, BinOp, Dir, Expr, Prim, Proto, RelOp};
use sockscope::view::escape::Escaped;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad filter at {}: {}", Escaped(at), Escaped(message))]
pub struct FilterError {
    /// The word where the problem is ("end of filter" at the end).
    pub at: String,
    pub message: String,
}

/// A filter: empty (everything matches) or an expression.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub expr: Option<Expr>,
}

/// Parse filter words (as given on the command line). The expression is
/// also compiled once for Ethernet, so errors a compiler would find there
/// (too long, too deep) show now.
pub fn parse(words: &[String]) -> Result<Filter, FilterError> {
    let f = Filter {
        expr: parse::parse_words(words)?,
    };
    f.compile(Linkage::Ethernet, 1)?;
    Ok(f)
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.expr.is_none()
    }

    /// Can any frame of the conversation of `p` (decoded, after
    /// reassembly) pass the filter? False for packets outside any
    /// conversation. See [`scope`].
    pub fn may_show_conversation_of(&self, p: &crate::decode::Packet) -> bool {
        let Some(e) = &self.expr else {
            return true;
        };
        scope::key_of(p).is_some_and(|k| scope::may_show(e, &k))
    }

    /// Compile to classic BPF for packets that begin as `link` says. The
    /// program returns `snaplen` for a match (the kernel keeps that many
    /// bytes) and 0 otherwise. An empty filter accepts everything.
    pub fn compile(&self, link: Linkage, snaplen: u32) -> Result<Vec<bpf::Insn>, FilterError> {
        cbpf::compile(self.expr.as_ref(), link, snaplen)
    }
}

#[cfg(test)]
mod tests;
