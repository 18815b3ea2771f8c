//! Sizes as operators type them (`512M`, `10G`) and as herd prints them.

use crate::VirtError;

/// Parse a size: a number (decimals allowed with a unit) and an optional
/// unit. `K`, `M`, `G`, `T` and `KiB`..`TiB` are powers of 1024 (as virsh
/// and qemu-img read them); `KB`..`TB` are powers of 1000; `B` or no unit
/// is bytes.
pub fn parse_size(text: &str) -> Result<u64, VirtError> {
    let bad = || VirtError::BadSize(text.to_string());
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let multiplier: u64 = match unit.trim() {
        "" | "B" | "b" => 1,
        "K" | "k" | "KiB" => 1 << 10,
        "M" | "m" | "MiB" => 1 << 20,
        "G" | "g" | "GiB" => 1 << 30,
        "T" | "t" | "TiB" => 1 << 40,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        _ => return Err(bad()),
    };
    if number.is_empty() {
        return Err(bad());
    }
    if let Ok(n) = number.parse::<u64>() {
        return n.checked_mul(multiplier).ok_or_else(bad);
    }
    let n: f64 = number.parse().map_err(|_| bad())?;
    let bytes = (n * multiplier as f64).round();
    if !(0.0..=u64::MAX as f64).contains(&bytes) {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// Print bytes with a binary unit and one decimal: `3.1 GiB`, `512 MiB`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expect: Option<u64>) {
        assert_eq!(parse_size(input).ok(), expect, "{input}");
    }

    #[test]
    fn binary_units_like_virsh() {
        check("512M", Some(512 << 20));
        check("10G", Some(10 << 30));
        check("10GiB", Some(10 << 30));
        check("1.5G", Some(3 << 29));
        check("4096", Some(4096));
        check("1T", Some(1 << 40));
    }

    #[test]
    fn decimal_units_when_spelled_so() {
        check("2GB", Some(2_000_000_000));
        check("5 MB", Some(5_000_000));
    }

    #[test]
    fn garbage_is_refused() {
        check("", None);
        check("G", None);
        check("10X", None);
        check("-1G", None);
        check("1.2.3G", None);
        check("99999999999999999999T", None);
    }

    #[test]
    fn sizes_print_with_binary_units() {
        assert_eq!(format_size(10 << 30), "10 GiB");
        assert_eq!(format_size(3_328_599_654), "3.1 GiB");
        assert_eq!(format_size(512), "512 B");
    }
}
