//! Which keys an upsert or lookup workload touches: uniform over the key space, or zipfian
//! (a few hot keys take most requests, as YCSB's default), from a seeded generator so runs
//! are repeatable.
//!
//! The zipfian generator is Gray et al.'s ("Quickly generating billion-record synthetic
//! databases", SIGMOD 1994) with exponent 0.99: its constants (`zeta`) are summed once per
//! key space, then every draw is O(1). Ranks are scattered over the key space with a
//! multiplication by a prime (a permutation of the keys), so the hot keys are not neighbours (and not in one bucket).

/// The zipfian exponent (YCSB's).
pub const ZIPFIAN_EXPONENT: f64 = 0.99;

/// Multiplier that scatters zipfian ranks over the key space (a prime).
const SCATTER_PRIME: u64 = 2_654_435_761;

/// How keys are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distribution {
    /// Every key equally likely.
    Uniform,
    /// Rank r drawn with probability ∝ 1 / r^0.99.
    Zipfian,
}

impl Distribution {
    /// `uniform` or `zipfian`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "uniform" => Ok(Self::Uniform),
            "zipfian" => Ok(Self::Zipfian),
            other => Err(format!("key distribution {other:?}: use uniform or zipfian")),
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Uniform => "uniform",
            Self::Zipfian => "zipfian",
        }
    }
}

/// A seeded generator of keys in `0..key_count`.
#[derive(Clone, Debug)]
pub struct KeyGenerator {
    key_count: u64,
    distribution: Distribution,
    state: u64,
    zipf: Option<Zipf>,
}

#[derive(Clone, Debug)]
struct Zipf {
    alpha: f64,
    zeta_n: f64,
    eta: f64,
    half_pow_theta: f64,
}

fn zeta(count: u64, theta: f64) -> f64 {
    (1..=count).map(|rank| 1.0 / (rank as f64).powf(theta)).sum()
}

impl KeyGenerator {
    /// Keys in `0..key_count` (at least 1) drawn per `distribution`, from `seed`.
    pub fn new(key_count: u64, distribution: Distribution, seed: u64) -> Self {
        let key_count = key_count.max(1);
        let zipf = (distribution == Distribution::Zipfian).then(|| {
            let theta = ZIPFIAN_EXPONENT;
            let zeta_n = zeta(key_count, theta);
            let zeta_2 = zeta(2, theta);
            Zipf {
                alpha: 1.0 / (1.0 - theta),
                zeta_n,
                eta: (1.0 - (2.0 / key_count as f64).powf(1.0 - theta)) / (1.0 - zeta_2 / zeta_n),
                half_pow_theta: 0.5f64.powf(theta),
            }
        });
        Self { key_count, distribution, state: seed | 1, zipf }
    }

    fn next_u64(&mut self) -> u64 {
        // xorshift64*: fast, good enough to pick keys.
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The next key.
    pub fn next_key(&mut self) -> u64 {
        match self.distribution {
            Distribution::Uniform => self.next_u64() % self.key_count,
            Distribution::Zipfian => {
                let rank = self.zipf_rank();
                // Scatter ranks over the key space: multiplying by a prime that does not
                // divide the key count permutes 0..key_count, so no two ranks share a key.
                if self.key_count.is_multiple_of(SCATTER_PRIME) {
                    return rank;
                }
                (u128::from(rank) * u128::from(SCATTER_PRIME) % u128::from(self.key_count)) as u64
            }
        }
    }

    fn zipf_rank(&mut self) -> u64 {
        let Some(zipf) = self.zipf.clone() else { return 0 };
        let u = self.unit();
        let uz = u * zipf.zeta_n;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + zipf.half_pow_theta {
            return 1.min(self.key_count - 1);
        }
        let rank =
            (self.key_count as f64 * (zipf.eta * u - zipf.eta + 1.0).powf(zipf.alpha)) as u64;
        rank.min(self.key_count - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(distribution: Distribution) -> Vec<u64> {
        let mut generator = KeyGenerator::new(1000, distribution, 7);
        let mut counts = vec![0u64; 1000];
        for _ in 0..200_000 {
            counts[generator.next_key() as usize] += 1;
        }
        counts
    }

    #[test]
    fn uniform_keys_cover_the_space_evenly() {
        let counts = counts(Distribution::Uniform);
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(*min > 120 && *max < 290, "min {min} max {max} around 200");
    }

    #[test]
    fn zipfian_keys_are_skewed_like_zipf() {
        let mut counts = counts(Distribution::Zipfian);
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let total: u64 = counts.iter().sum();
        // With exponent 0.99 over 1 000 keys the hottest key takes ~13% and the hottest
        // 10% of keys about two thirds.
        let hottest = counts[0] as f64 / total as f64;
        let top_tenth = counts[..100].iter().sum::<u64>() as f64 / total as f64;
        assert!((0.09..0.18).contains(&hottest), "hottest key {hottest}");
        assert!((0.55..0.8).contains(&top_tenth), "top 10% {top_tenth}");
    }

    #[test]
    fn the_same_seed_draws_the_same_keys() {
        let mut a = KeyGenerator::new(1 << 20, Distribution::Zipfian, 3);
        let mut b = KeyGenerator::new(1 << 20, Distribution::Zipfian, 3);
        assert!((0..100).all(|_| a.next_key() == b.next_key()));
        assert!((0..1000).all(|_| a.next_key() < 1 << 20));
    }
}
