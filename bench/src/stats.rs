//! Samples per (metric, runtime) and their summaries.

use std::collections::BTreeMap;

/// Median, min and max of a set of samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

/// `None` for no samples; the median of an even count is the mean of the
/// two middle values.
pub fn summarize(v: &[f64]) -> Option<Summary> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let median = if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 };
    Some(Summary { n, median, min: s[0], max: s[n - 1] })
}

/// `a / b` of two medians, if both exist and `b` is not zero.
pub fn ratio(a: Option<Summary>, b: Option<Summary>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b.median > 0.0 => Some(a.median / b.median),
        _ => None,
    }
}

/// Every sample of a benchmark run (with the round it was taken in), and
/// the failures.
#[derive(Debug, Default)]
pub struct Samples {
    /// The round the next samples belong to.
    pub round: usize,
    values: BTreeMap<(String, String), Vec<(usize, f64)>>,
    values_only: BTreeMap<(String, String), Vec<f64>>,
    /// (count, first message) per (metric, runtime).
    failures: BTreeMap<(String, String), (usize, String)>,
}

impl Samples {
    pub fn push(&mut self, metric: &str, rt: &str, v: f64) {
        let key = (metric.to_string(), rt.to_string());
        self.values.entry(key.clone()).or_default().push((self.round, v));
        self.values_only.entry(key).or_default().push(v);
    }

    /// The median over rounds of `a / b` for the rounds that have both:
    /// each round measured the two back to back, so the ratio of a pair
    /// is what a slow patch of the machine disturbs least.
    pub fn paired_ratio(&self, metric: &str, a: &str, b: &str) -> Option<f64> {
        let get = |rt: &str| self.values.get(&(metric.to_string(), rt.to_string()));
        let (xa, xb) = (get(a)?, get(b)?);
        let ratios: Vec<f64> = xa
            .iter()
            .filter_map(|(r, va)| xb.iter().find(|(rb, _)| rb == r).map(|(_, vb)| (va, vb)))
            .filter(|(_, vb)| **vb > 0.0)
            .map(|(va, vb)| va / vb)
            .collect();
        summarize(&ratios).map(|s| s.median)
    }

    pub fn fail(&mut self, metric: &str, rt: &str, msg: String) {
        let e = self.failures.entry((metric.to_string(), rt.to_string())).or_insert((0, msg));
        e.0 += 1;
    }

    pub fn get(&self, metric: &str, rt: &str) -> &[f64] {
        self.values_only.get(&(metric.to_string(), rt.to_string())).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn summary(&self, metric: &str, rt: &str) -> Option<Summary> {
        summarize(self.get(metric, rt))
    }

    pub fn failures(&self) -> impl Iterator<Item = (&str, &str, usize, &str)> {
        self.failures.iter().map(|((m, r), (n, msg))| (m.as_str(), r.as_str(), *n, msg.as_str()))
    }

    /// All samples as CSV lines `metric,runtime,round,value`.
    pub fn csv(&self) -> String {
        let mut s = String::from("metric,runtime,round,value\n");
        for ((m, r), v) in &self.values {
            for (round, x) in v {
                s.push_str(&format!("{m},{r},{round},{x}\n"));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_min_max() {
        let s = summarize(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!(s, Summary { n: 3, median: 3.0, min: 1.0, max: 5.0 });
        let s = summarize(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!(s.median, 2.5);
        assert!(summarize(&[]).is_none());
    }

    #[test]
    fn ratio_of_medians() {
        let a = summarize(&[2.0, 3.0, 100.0]);
        let b = summarize(&[6.0]);
        assert_eq!(ratio(a, b), Some(0.5));
        assert_eq!(ratio(a, None), None);
        assert_eq!(ratio(a, summarize(&[0.0])), None);
    }

    #[test]
    fn samples_and_failures() {
        let mut s = Samples::default();
        s.push("run", "crun", 1.5);
        s.push("run", "crun", 2.5);
        s.fail("exec", "fdbox", "first".into());
        s.fail("exec", "fdbox", "second".into());
        assert_eq!(s.get("run", "crun"), &[1.5, 2.5]);
        assert!(s.get("run", "runc").is_empty());
        let f: Vec<_> = s.failures().collect();
        assert_eq!(f, vec![("exec", "fdbox", 2, "first")]);
        assert_eq!(s.csv(), "metric,runtime,round,value\nrun,crun,0,1.5\nrun,crun,0,2.5\n");
    }

    #[test]
    fn paired_ratio_pairs_by_round() {
        let mut s = Samples::default();
        // Round 0: a=2, b=4; round 1: only a (b failed); round 2: a=9, b=3;
        // round 3: a=1, b=2.
        for (round, a, b) in [(0, 2.0, Some(4.0)), (1, 50.0, None), (2, 9.0, Some(3.0)), (3, 1.0, Some(2.0))] {
            s.round = round;
            s.push("run", "a", a);
            if let Some(b) = b {
                s.push("run", "b", b);
            }
        }
        // Ratios 0.5, 3, 0.5: the unpaired 50 is left out.
        assert_eq!(s.paired_ratio("run", "a", "b"), Some(0.5));
        assert_eq!(s.paired_ratio("run", "a", "c"), None);
        assert_eq!(s.paired_ratio("exec", "a", "b"), None);
    }
}
