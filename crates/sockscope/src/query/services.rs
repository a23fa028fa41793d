//! Service names from /etc/services: name → port and port → name, per protocol.
//!
//! The filter language resolves `:ssh` or `:http` through this table, and the
//! views use it to print port names (without `-n`). The file format is
//! `name port/proto [alias ...] [# comment]`, one service a line.
//!
//! [`Services::parse`] is a pure function over the file's text (tests feed it a
//! fixture). [`Services::system`] reads /etc/services once, on first use, and
//! falls back to a small built-in table when the file cannot be read (minimal
//! container images often ship without it).

use std::collections::HashMap;
use std::sync::OnceLock;

/// Where [`Services::system`] reads from.
pub const SERVICES_PATH: &str = "/etc/services";

/// Used when /etc/services is missing or unreadable: the names people type most.
const BUILTIN: &str = "\
ftp-data 20/tcp
ftp 21/tcp
ssh 22/tcp
telnet 23/tcp
smtp 25/tcp mail
domain 53/tcp
domain 53/udp
bootps 67/udp
bootpc 68/udp
tftp 69/udp
http 80/tcp www
kerberos 88/tcp
kerberos 88/udp
pop3 110/tcp
sunrpc 111/tcp portmapper
sunrpc 111/udp portmapper
ntp 123/udp
imap2 143/tcp imap
snmp 161/udp
ldap 389/tcp
https 443/tcp
https 443/udp
microsoft-ds 445/tcp
syslog 514/udp
submission 587/tcp
ldaps 636/tcp
imaps 993/tcp
pop3s 995/tcp
mysql 3306/tcp
postgresql 5432/tcp
";

/// A parsed services table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Services {
    /// (lower-case name or alias, protocol) → port.
    by_name_proto: HashMap<(String, String), u16>,
    /// lower-case name or alias → port of its first line, whatever the protocol.
    by_name_any: HashMap<String, u16>,
    /// (port, protocol) → official name of the first line for that pair.
    by_port: HashMap<(u16, String), String>,
}

impl Services {
    /// Parses the text of an /etc/services file. Lines that do not fit the
    /// format are skipped, as libc does.
    pub fn parse(text: &str) -> Services {
        let mut s = Services::default();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut fields = line.split_whitespace();
            let (Some(name), Some(port_proto)) = (fields.next(), fields.next()) else {
                continue;
            };
            let Some((port, proto)) = port_proto.split_once('/') else {
                continue;
            };
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            if proto.is_empty() {
                continue;
            }
            let proto = proto.to_ascii_lowercase();
            s.by_port
                .entry((port, proto.clone()))
                .or_insert_with(|| name.to_string());
            for n in std::iter::once(name).chain(fields) {
                let n = n.to_ascii_lowercase();
                s.by_name_proto
                    .entry((n.clone(), proto.clone()))
                    .or_insert(port);
                s.by_name_any.entry(n).or_insert(port);
            }
        }
        s
    }

    /// The machine's table: /etc/services, read on first use and kept; the
    /// built-in table when the file cannot be read.
    pub fn system() -> &'static Services {
        static SYSTEM: OnceLock<Services> = OnceLock::new();
        SYSTEM.get_or_init(|| match std::fs::read_to_string(SERVICES_PATH) {
            Ok(text) => Services::parse(&text),
            Err(_) => Services::builtin(),
        })
    }

    /// The small built-in table used when /etc/services is missing.
    pub fn builtin() -> Services {
        Services::parse(BUILTIN)
    }

    /// Port of a service name or alias (case-insensitive). With `proto`
    /// (`"tcp"`, `"udp"`, ...) only that protocol's entry; without, the tcp
    /// entry, else the udp one, else the first line that names it.
    pub fn port(&self, name: &str, proto: Option<&str>) -> Option<u16> {
        let name = name.to_ascii_lowercase();
        let get = |p: &str| {
            self.by_name_proto
                .get(&(name.clone(), p.to_string()))
                .copied()
        };
        match proto {
            Some(p) => get(&p.to_ascii_lowercase()),
            None => get("tcp")
                .or_else(|| get("udp"))
                .or_else(|| self.by_name_any.get(&name).copied()),
        }
    }

    /// Official name of `port` for `proto` (`"tcp"`, `"udp"`, ...).
    pub fn name(&self, port: u16, proto: &str) -> Option<&str> {
        self.by_port
            .get(&(port, proto.to_ascii_lowercase()))
            .map(String::as_str)
    }

    /// True when the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.by_port.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = "\
# comment line
tcpmux\t\t1/tcp\t\t\t\t# TCP port service multiplexer
ssh\t\t22/tcp\t\t\t\t# SSH Remote Login Protocol
domain\t\t53/tcp
domain\t\t53/udp
http\t\t80/tcp\t\twww\t\t# WorldWideWeb HTTP
syslog\t\t514/udp
shell\t\t514/tcp\t\tcmd
odd\t\t600/udp
odd\t\t601/tcp
broken line
nope\t\t99999/tcp
noproto\t\t7/
   
";

    #[test]
    fn name_to_port() {
        let s = Services::parse(FIXTURE);
        assert_eq!(s.port("ssh", None), Some(22));
        assert_eq!(s.port("SSH", None), Some(22));
        assert_eq!(s.port("www", None), Some(80));
        assert_eq!(s.port("http", Some("tcp")), Some(80));
        assert_eq!(s.port("http", Some("udp")), None);
        assert_eq!(s.port("domain", Some("udp")), Some(53));
        assert_eq!(s.port("syslog", None), Some(514));
        assert_eq!(s.port("cmd", None), Some(514));
        // tcp wins over the earlier udp line when no protocol is given.
        assert_eq!(s.port("odd", None), Some(601));
        assert_eq!(s.port("odd", Some("udp")), Some(600));
        assert_eq!(s.port("nope", None), None);
        assert_eq!(s.port("noproto", None), None);
        assert_eq!(s.port("broken", None), None);
    }

    #[test]
    fn port_to_name() {
        let s = Services::parse(FIXTURE);
        assert_eq!(s.name(22, "tcp"), Some("ssh"));
        assert_eq!(s.name(22, "udp"), None);
        assert_eq!(s.name(514, "udp"), Some("syslog"));
        assert_eq!(s.name(514, "tcp"), Some("shell"));
        assert_eq!(s.name(80, "TCP"), Some("http"));
        assert_eq!(s.name(1, "tcp"), Some("tcpmux"));
        assert_eq!(s.name(9, "tcp"), None);
    }

    #[test]
    fn empty_and_builtin() {
        assert!(Services::parse("# nothing\n\n").is_empty());
        let b = Services::builtin();
        assert_eq!(b.port("ssh", None), Some(22));
        assert_eq!(b.port("https", Some("udp")), Some(443));
        assert_eq!(b.name(5432, "tcp"), Some("postgresql"));
    }
}
