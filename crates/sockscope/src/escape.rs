//! Escaping of strings that came from the kernel or from other users
//! (process names, command lines, UNIX socket paths, interface names) before
//! they reach a terminal.
//!
//! A process may name itself `\e]0;PWNED\a` and any user may bind a UNIX
//! socket whose path holds a newline; printed raw, such bytes retitle the
//! terminal, move the cursor or forge a whole row of a table. Every text view
//! passes foreign strings through [`escape_bytes`] or [`escape_str`]; JSON
//! keeps them exact (serde escapes control characters itself).
//!
//! What is escaped, and how it is shown:
//! - C0 controls and DEL: `\n`, `\t`, `\r`, `\e` (ESC), `\0`, else `\xNN`;
//! - C1 controls (U+0080..U+009F, which some terminals obey like ESC
//!   sequences) and Unicode direction overrides/isolates (U+202A..U+202E,
//!   U+2066..U+2069, which reorder what the eye reads): `\u{NNNN}`;
//! - bytes that are not valid UTF-8: `\xNN`;
//! - the backslash itself: `\\`, so that the escaped form is unambiguous
//!   (a name cannot pretend to contain an escape it does not have).
//!
//! Everything else, including printable non-ASCII text, passes unchanged.

use std::borrow::Cow;
use std::fmt;

/// Does this character need escaping before it reaches a terminal?
fn needs_escape(c: char) -> bool {
    matches!(c, '\0'..='\x1f' | '\x7f' | '\u{80}'..='\u{9f}' | '\\')
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn push_escaped_char(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        '\x1b' => out.push_str("\\e"),
        '\0' => out.push_str("\\0"),
        c if (c as u32) < 0x80 => {
            use fmt::Write;
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            use fmt::Write;
            let _ = write!(out, "\\u{{{:04x}}}", c as u32);
        }
    }
}

/// Escape a string for a terminal. Borrows when nothing needs escaping (the
/// common case), so calling it on every cell costs one scan.
pub fn escape_str(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_escape(c) {
            push_escaped_char(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Escape bytes that are meant to be text but may not be valid UTF-8
/// (process names are bytes to the kernel; so are socket paths).
pub fn escape_bytes(b: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => escape_str(s),
        Err(_) => {
            let mut out = String::with_capacity(b.len() + 8);
            for chunk in b.utf8_chunks() {
                for c in chunk.valid().chars() {
                    if needs_escape(c) {
                        push_escaped_char(&mut out, c);
                    } else {
                        out.push(c);
                    }
                }
                for byte in chunk.invalid() {
                    use fmt::Write;
                    let _ = write!(out, "\\x{byte:02x}");
                }
            }
            Cow::Owned(out)
        }
    }
}

/// `Display` adapter: `format!("{}", Escaped(name))`.
#[derive(Clone, Copy, Debug)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&escape_str(self.0))
    }
}

/// `Display` adapter over bytes: `format!("{}", EscapedBytes(path))`.
#[derive(Clone, Copy, Debug)]
pub struct EscapedBytes<'a>(pub &'a [u8]);

impl fmt::Display for EscapedBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&escape_bytes(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        assert!(matches!(escape_str("nginx: worker"), Cow::Borrowed(_)));
        assert_eq!(escape_str("café ☕ 名前"), "café ☕ 名前");
    }

    #[test]
    fn terminal_sequences_are_made_visible() {
        assert_eq!(escape_str("\x1b]0;PWNED\x07"), "\\e]0;PWNED\\x07");
        assert_eq!(escape_str("a\nb\tc\rd\0"), "a\\nb\\tc\\rd\\0");
        assert_eq!(escape_str("\x7f"), "\\x7f");
        assert_eq!(escape_str("\u{9b}31m"), "\\u{009b}31m");
        assert_eq!(escape_str("ab\u{202e}cd"), "ab\\u{202e}cd");
    }

    #[test]
    fn backslash_is_doubled_so_escapes_cannot_be_forged() {
        assert_eq!(escape_str("\\e"), "\\\\e");
        assert_ne!(escape_str("\\e"), escape_str("\x1b"));
    }

    #[test]
    fn invalid_utf8_bytes_are_shown_as_hex() {
        assert_eq!(escape_bytes(b"nginx\xff"), "nginx\\xff");
        assert_eq!(escape_bytes(b"\xc3(\x1b"), "\\xc3(\\e");
        assert_eq!(escape_bytes("é".as_bytes()), "é");
    }

    #[test]
    fn output_never_contains_a_control_character() {
        let all: Vec<u8> = (0u8..=255).collect();
        let out = escape_bytes(&all);
        assert!(!out.chars().any(|c| c.is_control()), "{out:?}");
    }

    #[test]
    fn display_adapters_pad() {
        assert_eq!(format!("[{:<6}]", Escaped("a\n")), "[a\\n   ]");
        assert_eq!(format!("{}", EscapedBytes(b"\xfe")), "\\xfe");
    }
}
