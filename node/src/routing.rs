//! Which shard owns a bucket: a fixed hash of (table id, bucket), so every shard and every
//! client computes the same answer without asking.

/// The shard of `shard_count` that owns `bucket` of table `table_id`.
pub fn shard_of(table_id: u64, bucket: u32, shard_count: usize) -> usize {
    assert!(shard_count > 0);
    // SplitMix64 finaliser: consecutive buckets of one table spread over the shards, and
    // different tables start on different shards.
    let mut z = table_id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(bucket);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z % shard_count as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_spread_over_shards() {
        let mut counts = [0usize; 4];
        for table in 1..50u64 {
            for bucket in 0..16 {
                counts[shard_of(table, bucket, 4)] += 1;
            }
        }
        assert!(counts.iter().all(|count| *count > 150), "{counts:?}");
        assert_eq!(shard_of(7, 3, 1), 0);
    }
}
