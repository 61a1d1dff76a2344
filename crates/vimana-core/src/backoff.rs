use std::time::Duration;

/// Exponential restart backoff: `base * 2^n`, capped at `max`, reset after
/// the workload stayed healthy for `reset_after`.
#[derive(Clone, Debug)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
    pub reset_after: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration, reset_after: Duration) -> Self {
        Self {
            base,
            max,
            reset_after,
            attempt: 0,
        }
    }

    /// The delay before the next relaunch; each call doubles the next one.
    pub fn next_delay(&mut self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(20)).unwrap_or(u32::MAX);
        self.attempt = self.attempt.saturating_add(1);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// Called when a run ended after `healthy_for`: a long healthy run
    /// resets the backoff to its base.
    pub fn observe_run(&mut self, healthy_for: Duration) {
        if healthy_for >= self.reset_after {
            self.attempt = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_caps_and_resets() {
        let mut b = Backoff::new(
            Duration::from_millis(100),
            Duration::from_secs(1),
            Duration::from_secs(10),
        );
        let d: Vec<_> = (0..6).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(d, vec![100, 200, 400, 800, 1000, 1000]);
        b.observe_run(Duration::from_secs(1));
        assert_eq!(b.next_delay().as_millis(), 1000);
        b.observe_run(Duration::from_secs(11));
        assert_eq!(b.next_delay().as_millis(), 100);
    }
}
