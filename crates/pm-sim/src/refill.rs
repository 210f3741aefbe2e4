//! Continuous work (the demo): a pair whose work runs out gets more, and each run's length is drawn from a
//! range with a seeded generator, so a demo keeps going for as long as it is watched and a seed replays it.

use rand::{rngs::StdRng, Rng, SeedableRng};

/// How work is refilled and how long runs last.
#[derive(Debug, Clone, PartialEq)]
pub struct Refill {
    /// Items added to a pair when its last one is completed.
    pub items: usize,
    /// A run works between these many milliseconds (inclusive), drawn per session.
    pub run_ms: (u64, u64),
    pub seed: u64,
    /// The first `n` runs draw from this shorter range instead, so a fresh demo has finished runs to show
    /// within seconds: (n, (min, max)).
    pub warmup: Option<(usize, (u64, u64))>,
}

impl Refill {
    /// The demo's: one item at a time, runs of 20-60 s.
    pub fn demo(seed: u64) -> Refill {
        Refill {
            items: 1,
            run_ms: (20_000, 60_000),
            seed,
            warmup: None,
        }
    }
}

pub(crate) struct RefillState {
    pub cfg: Refill,
    rng: StdRng,
    /// Items added so far.
    pub added: usize,
    drawn: usize,
}

impl RefillState {
    pub fn new(cfg: Refill) -> RefillState {
        RefillState {
            rng: StdRng::seed_from_u64(cfg.seed),
            cfg,
            added: 0,
            drawn: 0,
        }
    }

    /// How long the next run works.
    pub fn draw_run_ms(&mut self) -> u64 {
        self.drawn += 1;
        let (lo, hi) = match self.cfg.warmup {
            Some((n, range)) if self.drawn <= n => range,
            _ => self.cfg.run_ms,
        };
        if hi <= lo {
            return lo;
        }
        self.rng.random_range(lo..=hi)
    }

    /// Items to add to a pair that has `remaining` items left after a completion.
    pub fn top_up(&mut self, remaining: usize) -> usize {
        if remaining > 0 {
            return 0;
        }
        self.added += self.cfg.items;
        self.cfg.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_runs_are_short_then_the_range_applies() {
        let mut s = RefillState::new(Refill {
            items: 1,
            run_ms: (20_000, 60_000),
            seed: 3,
            warmup: Some((4, (5_000, 10_000))),
        });
        let xs: Vec<u64> = (0..20).map(|_| s.draw_run_ms()).collect();
        assert!(xs[..4].iter().all(|x| (5_000..=10_000).contains(x)), "{xs:?}");
        assert!(xs[4..].iter().all(|x| (20_000..=60_000).contains(x)), "{xs:?}");
    }

    #[test]
    fn runs_stay_in_range_and_a_seed_replays_them() {
        let cfg = Refill {
            items: 2,
            run_ms: (20_000, 60_000),
            seed: 7,
            warmup: None,
        };
        let (mut a, mut b) = (RefillState::new(cfg.clone()), RefillState::new(cfg));
        let xs: Vec<u64> = (0..200).map(|_| a.draw_run_ms()).collect();
        let ys: Vec<u64> = (0..200).map(|_| b.draw_run_ms()).collect();
        assert_eq!(xs, ys);
        assert!(xs.iter().all(|x| (20_000..=60_000).contains(x)), "{xs:?}");
        // Spread over the range, not one value.
        assert!(xs.iter().any(|x| *x < 30_000) && xs.iter().any(|x| *x > 50_000));
        let mut c = RefillState::new(Refill {
            items: 2,
            run_ms: (20_000, 60_000),
            seed: 8,
            warmup: None,
        });
        assert_ne!(xs, (0..200).map(|_| c.draw_run_ms()).collect::<Vec<_>>());
    }

    #[test]
    fn only_an_empty_pair_is_topped_up() {
        let mut s = RefillState::new(Refill {
            items: 3,
            run_ms: (5, 5),
            seed: 1,
            warmup: None,
        });
        assert_eq!(s.top_up(1), 0);
        assert_eq!(s.top_up(0), 3);
        assert_eq!(s.added, 3);
        assert_eq!(s.draw_run_ms(), 5);
    }
}
