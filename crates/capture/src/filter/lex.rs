//! Tokens of the filter language: the command-line words split into words
//! (`host`, `10.0.0.1`, `::1`, `tcp-syn`, `0x12`) and operators (`(`, `[`,
//! `&&`, `!=`, `<<`, `&`, ...), as libpcap's scanner splits them.
//!
//! A `-` inside a word belongs to it (`tcp-syn`, `8000-8100`, `len-1` is one
//! word, as in libpcap); on its own it is the minus operator. A `:` belongs
//! to the word outside brackets (IPv6 and MAC addresses) and separates the
//! size inside them (`ip[2:2]`). A leading backslash is dropped (`\tcp`).

const TWO: [&str; 8] = ["&&", "||", "!=", "==", "<=", ">=", "<<", ">>"];
const ONE: &str = "()[]!=<>+*/%&|^";

/// Split the command-line words into tokens.
pub fn tokenize(words: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    for w in words {
        let chars: Vec<char> = w.chars().collect();
        let mut cur = String::new();
        let mut i = 0;
        let flush = |cur: &mut String, out: &mut Vec<String>| {
            if !cur.is_empty() {
                let t = std::mem::take(cur);
                out.push(t.strip_prefix('\\').map(str::to_string).unwrap_or(t));
            }
        };
        while i < chars.len() {
            let c = chars[i];
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            if TWO.contains(&two.as_str()) {
                flush(&mut cur, &mut out);
                out.push(two);
                i += 2;
                continue;
            }
            // `10.0.0.0/8` and `fd00::/8` are one word.
            let prefix_len = c == '/'
                && (cur.contains('.') || cur.contains(':'))
                && chars.get(i + 1).is_some_and(char::is_ascii_digit);
            let op = (ONE.contains(c) && !prefix_len)
                || (c == ':' && depth > 0)
                || (c == '-' && cur.is_empty());
            if op {
                flush(&mut cur, &mut out);
                match c {
                    '[' => depth += 1,
                    ']' => depth = depth.saturating_sub(1),
                    _ => {}
                }
                out.push(c.to_string());
            } else if c.is_whitespace() {
                flush(&mut cur, &mut out);
            } else {
                cur.push(c);
            }
            i += 1;
        }
        flush(&mut cur, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::tokenize;

    fn t(s: &str) -> Vec<String> {
        tokenize(&[s.to_string()])
    }

    #[test]
    fn splits_like_libpcap() {
        assert_eq!(
            t("tcp[13:1]&tcp-syn!=0"),
            ["tcp", "[", "13", ":", "1", "]", "&", "tcp-syn", "!=", "0"]
        );
        assert_eq!(
            t("!(host ::1||ip6)"),
            ["!", "(", "host", "::1", "||", "ip6", ")"]
        );
        assert_eq!(
            t("ether host 0:1:2:3:4:5"),
            ["ether", "host", "0:1:2:3:4:5"]
        );
        assert_eq!(t("len - 1 >= 0x10"), ["len", "-", "1", ">=", "0x10"]);
        assert_eq!(t("portrange 80-90"), ["portrange", "80-90"]);
        assert_eq!(t("net 10.0.0.0/8"), ["net", "10.0.0.0/8"]);
        assert_eq!(t("net fd00::/8"), ["net", "fd00::/8"]);
        assert_eq!(t("ip[2:2]/4"), ["ip", "[", "2", ":", "2", "]", "/", "4"]);
        assert_eq!(t("ip proto \\tcp"), ["ip", "proto", "tcp"]);
        assert_eq!(
            t("ip[0]<<2>>1"),
            ["ip", "[", "0", "]", "<<", "2", ">>", "1"]
        );
    }
}
