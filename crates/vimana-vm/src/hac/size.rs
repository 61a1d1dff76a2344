//! Size strings such as `"512MB"` or `"1 GiB"`.
//!
//! Every unit is a power of 1024: `MB` means MiB, as `hac.toml` authors
//! mean it for VM memory and disks. Units are case-insensitive and may be
//! separated from the number by spaces. Only whole numbers are accepted.

use std::fmt;

/// The accepted units, for error messages.
pub(crate) const UNITS: &str = "B, K/KB/KiB, M/MB/MiB, G/GB/GiB (powers of 1024, case-insensitive)";

pub(crate) const MIB: u64 = 1 << 20;

/// Why a size string was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SizeError {
    Empty,
    Negative,
    Fraction,
    NoNumber,
    NoUnit,
    BadUnit(String),
    Overflow,
}

impl fmt::Display for SizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeError::Empty => f.write_str("the size is empty"),
            SizeError::Negative => f.write_str("a size cannot be negative"),
            SizeError::Fraction => f.write_str("a size must be a whole number"),
            SizeError::NoNumber => f.write_str("a size starts with a whole number"),
            SizeError::NoUnit => f.write_str("a size string needs a unit"),
            SizeError::BadUnit(u) => write!(f, "unknown unit {u:?}"),
            SizeError::Overflow => f.write_str("the size is too large"),
        }
    }
}

/// Multiplier of a unit (case-insensitive), `None` when unknown.
fn unit_factor(unit: &str) -> Option<u64> {
    match unit.to_ascii_lowercase().as_str() {
        "b" => Some(1),
        "k" | "kb" | "kib" => Some(1 << 10),
        "m" | "mb" | "mib" => Some(1 << 20),
        "g" | "gb" | "gib" => Some(1 << 30),
        _ => None,
    }
}

/// Parses `"<digits>[ ]<unit>"` into bytes.
pub(crate) fn parse_size(text: &str) -> Result<u64, SizeError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(SizeError::Empty);
    }
    if s.starts_with('-') {
        return Err(SizeError::Negative);
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, rest) = s.split_at(digits_end);
    if digits.is_empty() {
        return Err(SizeError::NoNumber);
    }
    if rest.starts_with(['.', ',']) {
        return Err(SizeError::Fraction);
    }
    let unit = rest.trim_start();
    if unit.is_empty() {
        return Err(SizeError::NoUnit);
    }
    let factor = unit_factor(unit).ok_or_else(|| SizeError::BadUnit(unit.to_string()))?;
    let number: u64 = digits.parse().map_err(|_| SizeError::Overflow)?;
    number.checked_mul(factor).ok_or(SizeError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_powers_of_1024() {
        assert_eq!(parse_size("512MB"), Ok(512 * MIB));
        assert_eq!(parse_size("512 mib"), Ok(512 * MIB));
        assert_eq!(parse_size("512M"), Ok(512 * MIB));
        assert_eq!(parse_size("1GB"), Ok(1 << 30));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("10B"), Ok(10));
        assert_eq!(parse_size(" +2G "), Ok(2 << 30));
    }

    #[test]
    fn bad_sizes() {
        assert_eq!(parse_size(""), Err(SizeError::Empty));
        assert_eq!(parse_size("-1GB"), Err(SizeError::Negative));
        assert_eq!(parse_size("1.5GB"), Err(SizeError::Fraction));
        assert_eq!(parse_size("GB"), Err(SizeError::NoNumber));
        assert_eq!(parse_size("512"), Err(SizeError::NoUnit));
        assert_eq!(parse_size("512XB"), Err(SizeError::BadUnit("XB".into())));
        assert_eq!(
            parse_size("99999999999999999999GB"),
            Err(SizeError::Overflow)
        );
        assert_eq!(parse_size("17179869184GB"), Err(SizeError::Overflow));
        assert_eq!(parse_size("5é"), Err(SizeError::BadUnit("é".into())));
    }
}
