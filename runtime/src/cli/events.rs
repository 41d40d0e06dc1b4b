use std::time::Duration;

use clap::Args;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Args)]
pub struct EventsArgs {
    /// Interval between stats events (e.g. 5s, 500ms, 1m).
    #[arg(long, default_value = "5s")]
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

/// A Go-style duration: a number with ns, us, ms, s, m or h.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let bad = || Error::Config(format!("invalid duration {s:?}"));
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').ok_or_else(bad)?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ns" => n / 1e9,
        "us" | "µs" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    if secs <= 0.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
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
    }
}
