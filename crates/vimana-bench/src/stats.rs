//! Summary statistics, computed as benches/go-host computes them.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub median_ms: f64,
    pub p90_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

/// Median (mean of the middle two for even counts), nearest-rank p90,
/// min, max, mean; rounded to microseconds. `None` for no samples.
pub fn summarize(samples_ms: &[f64]) -> Option<Summary> {
    if samples_ms.is_empty() {
        return None;
    }
    let mut s = samples_ms.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    let rank = ((0.9 * n as f64).ceil() as usize).saturating_sub(1);
    let mean = s.iter().sum::<f64>() / n as f64;
    Some(Summary {
        median_ms: round3(median),
        p90_ms: round3(s[rank.min(n - 1)]),
        min_ms: round3(s[0]),
        max_ms: round3(s[n - 1]),
        mean_ms: round3(mean),
    })
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_and_even() {
        let odd = summarize(&[3.0, 1.0, 2.0]).unwrap_or_else(|| panic!("no summary"));
        assert_eq!(odd.median_ms, 2.0);
        assert_eq!(odd.p90_ms, 3.0);
        assert_eq!(odd.min_ms, 1.0);
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        let even = summarize(&ten).unwrap_or_else(|| panic!("no summary"));
        assert_eq!(even.median_ms, 5.5);
        assert_eq!(even.p90_ms, 9.0);
        assert_eq!(even.max_ms, 10.0);
        assert_eq!(even.mean_ms, 5.5);
        assert!(summarize(&[]).is_none());
    }
}
