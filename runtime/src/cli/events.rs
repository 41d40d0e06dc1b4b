use std::time::Duration;

use clap::Args;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Args)]
pub struct EventsArgs {
    /// Interval between stats events (e.g. 5s, 500ms, 1m).
    #[arg(long, default_value = "5s", allow_hyphen_values = true)]
    pub interval: String,
    /// Print one stats event and exit.
    #[arg(long)]
    pub stats: bool,
    /// Container id.
    pub id: String,
}

impl EventsArgs {
    pub fn interval(&self) -> Result<Duration> {
        parse_duration(&self.interval)
    }
}

/// A Go duration (`time.ParseDuration`, as runc's `--interval`): an
/// optional sign, then one or more `<number><unit>` (`1h30m`, `1.5s`,
/// `250ms`), units ns, us (µs), ms, s, m, h. Computed in integer
/// nanoseconds with checked arithmetic: more than Go's largest duration
/// (2^63-1 ns, ~292 years) is refused, as are zero and negative intervals.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let bad = |why: &str| Error::Config(format!("invalid duration {s:?}: {why}"));
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest.is_empty() {
        return Err(bad("empty"));
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let (int, after) = rest.split_at(int_end);
        let (frac, after) = match after.strip_prefix('.') {
            Some(a) => a.split_at(a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len())),
            None => ("", after),
        };
        if int.is_empty() && frac.is_empty() {
            return Err(bad("expected a number"));
        }
        let unit_end = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_end);
        let nanos_per: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(bad("missing unit (ns, us, ms, s, m or h)")),
            _ => return Err(bad("unknown unit")),
        };
        let too_large = || bad("too large (at most 2562047h47m16.854775807s)");
        // Digits past what fits are already too large: no overflow below.
        let int: u128 = if int.is_empty() { 0 } else if int.len() > 20 { return Err(too_large()) } else { int.parse().map_err(|_| too_large())? };
        let mut part = int.checked_mul(nanos_per).ok_or_else(too_large)?;
        // The fraction, to the nanosecond (extra digits are cut, as Go does
        // past its precision).
        let mut scale = nanos_per;
        for d in frac.bytes().take(30) {
            scale /= 10;
            part += u128::from(d - b'0') * scale;
        }
        total = total.checked_add(part).filter(|t| *t <= i64::MAX as u128).ok_or_else(too_large)?;
        rest = after;
    }
    if negative && total > 0 {
        return Err(bad("must be greater than zero"));
    }
    if total == 0 {
        return Err(bad("must be greater than zero"));
    }
    Ok(Duration::from_nanos(total as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("xs").is_err());
        assert_eq!(parse_duration("1h2m3.5s").unwrap(), Duration::from_millis(3_723_500));
        assert_eq!(parse_duration("1.5us").unwrap(), Duration::from_nanos(1500));
        assert_eq!(parse_duration(".5s").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("+2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1.000000000000000000000000000000000000001s").unwrap(), Duration::from_secs(1));
        assert_eq!(parse_duration("2562047h47m16.854775807s").unwrap(), Duration::from_nanos(i64::MAX as u64));
        for bad in [
            "", "-", "0", "0s", "-1s", "-0s", "1", "1.s.", "s", ".s", "1x", "1h-1m", "1e3s",
            "99999999999999999999999h", "2562047h47m16.854775808s", "2562048h", "9223372036854775808ns",
            "100000000000000000000000000000000000000000ns",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
