//! [`BloomFilter`]: the per-file filter that lets a point read skip files that cannot hold
//! the key.
//!
//! Encoded as `hash_count u32` followed by the bit array (bit `i` is bit `i % 8` of byte
//! `i / 8`); the file adds a CRC32C. A key's 64-bit hash is FNV-1a finished by the
//! splitmix64 mixer; probe `i` sets bit `(h1 + i·h2) mod bit_count` (double hashing with the
//! two 32-bit halves, `h2` forced odd).

use crate::kv::codec::ByteReader;

/// Smallest bit array, so tiny files still filter.
const BLOOM_BIT_COUNT_MIN: u64 = 64;
/// Most probes per key.
const BLOOM_HASH_COUNT_MAX: u32 = 30;

/// The filter's 64-bit hash of a key.
pub(crate) fn key_hash(key: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash = (hash ^ (hash >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash = (hash ^ (hash >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

/// A bloom filter over the keys of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BloomFilter {
    hash_count: u32,
    bits: Vec<u8>,
}

impl BloomFilter {
    /// A filter for keys with these hashes.
    pub(crate) fn build(hashes: &[u64], bits_per_key: u32) -> Self {
        let bit_count = (hashes.len() as u64 * u64::from(bits_per_key)).max(BLOOM_BIT_COUNT_MIN);
        let byte_count = bit_count.div_ceil(8) as usize;
        // ln 2 · bits per key probes minimise false positives.
        let hash_count = ((bits_per_key * 69 + 50) / 100).clamp(1, BLOOM_HASH_COUNT_MAX);
        let mut filter = Self { hash_count, bits: vec![0; byte_count] };
        // The pair of `decode`'s range checks: a filter we write is one we read back.
        assert!(
            (1..=BLOOM_HASH_COUNT_MAX).contains(&hash_count)
                && byte_count as u64 * 8 >= bit_count.max(BLOOM_BIT_COUNT_MIN),
            "{hash_count} probes into {byte_count} bytes: out of decode's ranges"
        );
        for hash in hashes {
            for bit in filter.probes(*hash) {
                filter.bits[(bit / 8) as usize] |= 1 << (bit % 8);
            }
        }
        debug_assert!(
            hashes.iter().all(|hash| filter.may_contain(*hash)),
            "no false negatives: every added key may be contained"
        );
        filter
    }

    fn probes(&self, hash: u64) -> impl Iterator<Item = u64> {
        let bit_count = self.bits.len() as u64 * 8;
        let h1 = hash & 0xffff_ffff;
        let h2 = (hash >> 32) | 1;
        (0..u64::from(self.hash_count))
            .map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) % bit_count)
    }

    /// False only if no key with this hash was added.
    pub(crate) fn may_contain(&self, hash: u64) -> bool {
        self.probes(hash).all(|bit| self.bits[(bit / 8) as usize] & (1 << (bit % 8)) != 0)
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.hash_count.to_le_bytes());
        out.extend_from_slice(&self.bits);
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut reader = ByteReader::new(bytes);
        let hash_count = reader.u32()?;
        if !(1..=BLOOM_HASH_COUNT_MAX).contains(&hash_count) {
            return Err(format!("bloom hash count {hash_count} out of range"));
        }
        let bits = reader.bytes(reader.remaining())?.to_vec();
        if (bits.len() as u64) * 8 < BLOOM_BIT_COUNT_MIN {
            return Err(format!("bloom of {} bytes is too small", bits.len()));
        }
        Ok(Self { hash_count, bits })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_and_about_one_percent_false_positives() {
        let keys: Vec<Vec<u8>> = (0..10_000u32).map(|i| format!("key-{i}").into_bytes()).collect();
        let hashes: Vec<u64> = keys.iter().map(|key| key_hash(key)).collect();
        let filter = BloomFilter::build(&hashes, 10);
        assert!(hashes.iter().all(|hash| filter.may_contain(*hash)));
        let false_positives = (0..10_000u32)
            .filter(|i| filter.may_contain(key_hash(format!("other-{i}").as_bytes())))
            .count();
        // Theory says ~0.8% at 10 bits per key; 2% leaves room for an unlucky hash.
        assert!(false_positives < 200, "{false_positives} false positives in 10000");
    }

    #[test]
    fn round_trip_and_bad_input() {
        let filter = BloomFilter::build(&[1, 2, 3], 10);
        let mut bytes = Vec::new();
        filter.encode(&mut bytes);
        assert_eq!(BloomFilter::decode(&bytes), Ok(filter));
        assert!(BloomFilter::decode(&bytes[..3]).is_err());
        assert!(BloomFilter::decode(&bytes[..6]).is_err());
        bytes[0] = 0;
        assert!(BloomFilter::decode(&bytes).is_err());
    }
}
