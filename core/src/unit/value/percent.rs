//! Shares written as percentages (`TasksMax=`, `MemoryMax=`, `CPUQuota=`),
//! as systemd's `parse_permyriad()` reads them: `N%` with up to two
//! decimals, `N‰` with up to one, `N‱` whole; the whole part is a C `int`.

use super::ValueError;
use super::int::parse_i32;

/// A share in permyriad (`12.5%` is 1250), unbounded: systemd's
/// `parse_permyriad_unbounded()` (`CPUQuota=` may exceed 100%).
pub fn parse_permyriad_unbounded(v: &str) -> Result<u64, ValueError> {
    let invalid = || ValueError::invalid(format_args!("not a percentage: '{v}'"));
    let (n, places, scale) = if let Some(n) = v.strip_suffix('%') {
        (n, 2, 100)
    } else if let Some(n) = v.strip_suffix('‰') {
        (n, 1, 10)
    } else if let Some(n) = v.strip_suffix('‱') {
        (n, 0, 1)
    } else {
        return Err(invalid());
    };
    let (whole, frac) = match n.split_once('.') {
        Some((w, f)) if places > 0 && !f.is_empty() && f.len() <= places => (w, f),
        Some(_) => return Err(invalid()),
        None => (n, ""),
    };
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    // "1.5%" is 150‱: the decimals padded to their places.
    let frac = format!("{frac:0<places$}").parse::<u64>().unwrap_or(0);
    let whole = u64::try_from(parse_i32(whole)?)
        .map_err(|_| ValueError::range(format_args!("negative share: '{v}'")))?;
    let p = whole * scale + frac;
    if p > i32::MAX as u64 {
        return Err(ValueError::range(format_args!("share out of range: '{v}'")));
    }
    Ok(p)
}

/// [`parse_permyriad_unbounded`] at most 10000 (100%): `parse_permyriad()`.
pub fn parse_permyriad(v: &str) -> Result<u64, ValueError> {
    let p = parse_permyriad_unbounded(v)?;
    if p > 10_000 {
        return Err(ValueError::range(format_args!("share above 100%: '{v}'")));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_percent_permille_and_permyriad() {
        assert_eq!(parse_permyriad("15%"), Ok(1500));
        assert_eq!(parse_permyriad("12.5%"), Ok(1250));
        assert_eq!(parse_permyriad("0.05%"), Ok(5));
        assert_eq!(parse_permyriad("5.5‰"), Ok(55));
        assert_eq!(parse_permyriad("42‱"), Ok(42));
        assert_eq!(parse_permyriad("0%"), Ok(0));
        assert_eq!(parse_permyriad_unbounded("250%"), Ok(25_000));
        for bad in [
            "101%",
            "1.234%",
            "1.%",
            "lots",
            "50",
            "-1%",
            "5.5‱",
            "99999999999%",
        ] {
            assert!(parse_permyriad(bad).is_err(), "{bad}");
        }
    }
}
