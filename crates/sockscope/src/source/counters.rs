//! Kernel counters and settings of a network namespace:
//! /proc/net/netstat and /proc/net/snmp (`TcpExt.ListenOverflows`, ...),
//! /proc/net/sockstat and sockstat6 (sockets in use, memory), and sysctls
//! under /proc/sys/net (per namespace for most net.* keys).
//!
//! Every reader takes the directory to read from, so that a thread inside
//! another namespace reads `/proc/thread-self/net` and tests read fixtures.

use std::collections::BTreeMap;

pub use crate::model::counters::Counters;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum CounterError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: line {line}: {what}")]
    Parse {
        path: String,
        line: usize,
        what: String,
    },
    #[error(
        "no sysctl {name} ({path} does not exist on this kernel; see `sysctl -a | grep {short}`)"
    )]
    NoSysctl {
        name: String,
        path: String,
        short: String,
    },
}

/// Parse the header/value line pairs of /proc/net/netstat and /proc/net/snmp:
/// `TcpExt: SyncookiesSent ...` followed by `TcpExt: 0 ...`.
pub fn parse_pairs(text: &str, path: &str) -> Result<Counters, CounterError> {
    let mut out = BTreeMap::new();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let err = |line: usize, what: String| CounterError::Parse {
        path: path.into(),
        line,
        what,
    };
    let mut i = 0;
    while i < lines.len() {
        let (Some((g1, names)), Some((g2, values))) = (
            lines[i].split_once(':'),
            lines.get(i + 1).and_then(|l| l.split_once(':')),
        ) else {
            return Err(err(i + 1, "expected a header line and a value line".into()));
        };
        if g1 != g2 {
            return Err(err(
                i + 2,
                format!("value line is for '{g2}', header was for '{g1}'"),
            ));
        }
        let names: Vec<&str> = names.split_whitespace().collect();
        let values: Vec<&str> = values.split_whitespace().collect();
        if names.len() != values.len() {
            return Err(err(
                i + 2,
                format!("{} names but {} values", names.len(), values.len()),
            ));
        }
        for (n, v) in names.iter().zip(&values) {
            let v: i64 = v
                .parse()
                .map_err(|_| err(i + 2, format!("'{v}' for {g1}.{n} is not a number")))?;
            out.insert(format!("{g1}.{n}"), v);
        }
        i += 2;
    }
    Ok(Counters(out))
}

/// Parse /proc/net/sockstat{,6}: `TCP: inuse 5 orphan 0 tw 2 alloc 7 mem 1`.
pub fn parse_sockstat(text: &str, path: &str) -> Result<Counters, CounterError> {
    let mut out = BTreeMap::new();
    for (ln, line) in text.lines().enumerate() {
        let Some((group, rest)) = line.split_once(':') else {
            continue;
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        if !words.len().is_multiple_of(2) {
            return Err(CounterError::Parse {
                path: path.into(),
                line: ln + 1,
                what: "expected name value pairs".into(),
            });
        }
        for pair in words.chunks(2) {
            let v: i64 = pair[1].parse().map_err(|_| CounterError::Parse {
                path: path.into(),
                line: ln + 1,
                what: format!("'{}' is not a number", pair[1]),
            })?;
            out.insert(format!("{}.{}", group.trim(), pair[0]), v);
        }
    }
    Ok(Counters(out))
}

fn read(path: &Path) -> Result<String, CounterError> {
    std::fs::read_to_string(path).map_err(|e| CounterError::Io {
        path: path.display().to_string(),
        source: e,
    })
}

/// netstat + snmp counters of the namespace whose /proc/net is `dir`.
pub fn read_netstat(dir: &Path) -> Result<Counters, CounterError> {
    let mut c = Counters::default();
    for f in ["netstat", "snmp"] {
        let p = dir.join(f);
        c.extend(parse_pairs(&read(&p)?, &p.display().to_string())?);
    }
    Ok(c)
}

/// sockstat (IPv4 and totals) and sockstat6 (keys prefixed `6.`, e.g.
/// `6.TCP6.inuse`; missing without IPv6).
pub fn read_sockstat(dir: &Path) -> Result<Counters, CounterError> {
    let p = dir.join("sockstat");
    let mut c = parse_sockstat(&read(&p)?, &p.display().to_string())?;
    let p6 = dir.join("sockstat6");
    if let Ok(t) = std::fs::read_to_string(&p6) {
        c.extend(parse_sockstat(&t, &p6.display().to_string())?);
    }
    Ok(c)
}

/// Read a sysctl by its dotted name (`net.core.somaxconn`) from `root`
/// (normally /proc/sys), trimmed.
pub fn read_sysctl(root: &Path, name: &str) -> Result<String, CounterError> {
    let rel = name.replace('.', "/");
    let path = root.join(&rel);
    match std::fs::read_to_string(&path) {
        Ok(s) => Ok(s.split_whitespace().collect::<Vec<_>>().join(" ")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(CounterError::NoSysctl {
            name: name.into(),
            path: path.display().to_string(),
            short: name.rsplit('.').next().unwrap_or(name).into(),
        }),
        Err(e) => Err(CounterError::Io {
            path: path.display().to_string(),
            source: e,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NETSTAT: &str = "TcpExt: SyncookiesSent SyncookiesRecv ListenOverflows ListenDrops\n\
TcpExt: 0 0 12 14\n\
IpExt: InNoRoutes InTruncatedPkts\n\
IpExt: 0 3\n";

    #[test]
    fn netstat_pairs() {
        let c = parse_pairs(NETSTAT, "netstat").unwrap();
        assert_eq!(c.get("TcpExt.ListenOverflows"), Some(12));
        assert_eq!(c.get("TcpExt.ListenDrops"), Some(14));
        assert_eq!(c.get("IpExt.InTruncatedPkts"), Some(3));
        assert_eq!(c.0.len(), 6);
        let snmp = "Tcp: RtoAlgorithm MaxConn\nTcp: 1 -1\n";
        assert_eq!(
            parse_pairs(snmp, "snmp").unwrap().get("Tcp.MaxConn"),
            Some(-1)
        );
    }

    #[test]
    fn netstat_errors_name_the_line() {
        let e = parse_pairs("TcpExt: A B\nTcpExt: 1\n", "/proc/net/netstat").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/proc/net/netstat: line 2: 2 names but 1 values"
        );
        let e = parse_pairs("TcpExt: A\nIpExt: 1\n", "x").unwrap_err();
        assert!(e.to_string().contains("'IpExt'"), "{e}");
        let e = parse_pairs("TcpExt: A\n", "x").unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        let e = parse_pairs("TcpExt: A\nTcpExt: z\n", "x").unwrap_err();
        assert!(e.to_string().contains("'z'"), "{e}");
    }

    #[test]
    fn sockstat_and_delta() {
        let t = "sockets: used 130\nTCP: inuse 5 orphan 1 tw 2 alloc 7 mem 3\nUDP: inuse 2 mem 0\nFRAG: inuse 0 memory 0\n";
        let c = parse_sockstat(t, "sockstat").unwrap();
        assert_eq!(c.get("sockets.used"), Some(130));
        assert_eq!(c.get("TCP.tw"), Some(2));
        assert_eq!(c.get("FRAG.memory"), Some(0));
        let mut later = c.clone();
        later.0.insert("TCP.tw".into(), 9);
        assert_eq!(later.delta(&c).get("TCP.tw"), Some(7));
        assert!(parse_sockstat("TCP: inuse\n", "s").is_err());
    }

    #[test]
    fn live_namespace_counters_and_sysctl() {
        let c = read_netstat(Path::new("/proc/self/net")).unwrap();
        assert!(c.get("TcpExt.ListenOverflows").is_some());
        let s = read_sysctl(Path::new("/proc/sys"), "net.core.somaxconn").unwrap();
        assert!(s.parse::<u32>().unwrap() > 0);
        let e = read_sysctl(Path::new("/proc/sys"), "net.core.no_such_thing").unwrap_err();
        assert!(
            e.to_string().contains("/proc/sys/net/core/no_such_thing"),
            "{e}"
        );
    }
}
