//! The unit of direct I/O: file positions, lengths and buffers of O_DIRECT operations are
//! multiples of [`BLOCK_SIZE_BYTES`].

/// Direct-I/O block size. 4 KiB is the logical block size of every device we target and
/// the page size; glommio's buffers are aligned to it.
pub const BLOCK_SIZE_BYTES: u64 = 4096;

/// Rounds `value` down to a block boundary.
pub const fn align_down(value: u64) -> u64 {
    value & !(BLOCK_SIZE_BYTES - 1)
}

/// Rounds `value` up to a block boundary.
pub const fn align_up(value: u64) -> u64 {
    align_down(value + BLOCK_SIZE_BYTES - 1)
}

const _: () = assert!(BLOCK_SIZE_BYTES.is_power_of_two());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment() {
        assert_eq!(align_down(4095), 0);
        assert_eq!(align_down(4096), 4096);
        assert_eq!(align_up(1), 4096);
        assert_eq!(align_up(4096), 4096);
        assert_eq!(align_up(0), 0);
    }
}
