//! Byte counts for humans, in IEC units ("1.5 KiB"), one formatter for
//! every crate: trace's timelines and diagrams write the spaced form,
//! capture's tables the compact one ("1.5KiB") so that a column stays one
//! word.

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn format(b: u64, sep: &str) -> String {
    if b < KIB {
        format!("{b}{sep}B")
    } else if b < MIB {
        format!("{:.1}{sep}KiB", b as f64 / KIB as f64)
    } else if b < GIB {
        format!("{:.1}{sep}MiB", b as f64 / MIB as f64)
    } else {
        format!("{:.2}{sep}GiB", b as f64 / GIB as f64)
    }
}

/// "6 B", "1.5 KiB", "3.2 MiB", "1.25 GiB".
pub fn bytes(b: u64) -> String {
    format(b, " ")
}

/// [`bytes`] without the space, for table cells: "630B", "2.0KiB".
pub fn bytes_compact(b: u64) -> String {
    format(b, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iec_units() {
        assert_eq!(bytes(6), "6 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * MIB + MIB / 5), "3.2 MiB");
        assert_eq!(bytes(5 * GIB / 4), "1.25 GiB");
        assert_eq!(bytes_compact(630), "630B");
        assert_eq!(bytes_compact(2048), "2.0KiB");
    }
}
