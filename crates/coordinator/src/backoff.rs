//! The one exponential backoff used for agent cooldowns, pair holds and server retries: a base delay
//! doubled per consecutive failure, with an optional ±20 % jitter so that many failures together do not
//! retry together.

/// `base` doubled for every failure after the first (`failures` = 1 gives `base`), at most `max_doublings`
/// times so the power never overflows; the caller caps the result.
pub fn doubling(base: f64, failures: u32, max_doublings: u32) -> f64 {
    base * 2f64.powi(failures.saturating_sub(1).min(max_doublings) as i32)
}

/// `secs` scaled by a random factor in [0.8, 1.2).
pub fn jitter(secs: f64) -> f64 {
    secs * (1.0 + (rand::random::<f64>() - 0.5) * 0.4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_per_failure_from_the_base() {
        assert_eq!(doubling(30.0, 0, 20), 30.0);
        assert_eq!(doubling(30.0, 1, 20), 30.0);
        assert_eq!(doubling(30.0, 2, 20), 60.0);
        assert_eq!(doubling(30.0, 5, 20), 480.0);
        assert_eq!(doubling(0.5, 4, 10), 4.0);
    }

    #[test]
    fn doublings_stop_at_the_limit_and_never_overflow() {
        assert_eq!(doubling(0.5, 11, 10), 512.0);
        assert_eq!(doubling(0.5, 12, 10), 512.0);
        assert!(doubling(30.0, u32::MAX, 20).is_finite());
        assert_eq!(doubling(1.0, u32::MAX, 20), 1_048_576.0);
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        for _ in 0..1000 {
            let j = jitter(100.0);
            assert!((80.0..120.0).contains(&j), "{j}");
        }
    }
}
