//! Little-endian encoding helpers of the KV formats: a bounds-checked reader that turns
//! every short or malformed input into an error message, never a panic.

/// Reads little-endian integers and byte strings from a slice, failing on overrun.
pub(crate) struct ByteReader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> ByteReader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, position: 0 }
    }

    pub(crate) fn position(&self) -> usize {
        self.position
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.position
    }

    pub(crate) fn bytes(&mut self, len: usize) -> Result<&'a [u8], String> {
        if len > self.remaining() {
            return Err(format!(
                "{len} bytes needed at position {}, {} left",
                self.position,
                self.remaining()
            ));
        }
        let slice = &self.bytes[self.position..self.position + len];
        self.position += len;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.bytes(N)?);
        Ok(array)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, String> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }
}

/// Splits `bytes` into the body and its trailing CRC32C and checks it.
pub(crate) fn check_trailing_crc(bytes: &[u8]) -> Result<&[u8], String> {
    if bytes.len() < 4 {
        return Err(format!("{} bytes: too short for a checksum", bytes.len()));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    let computed = crc32c::crc32c(body);
    if stored != computed {
        return Err(format!("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"));
    }
    Ok(body)
}

/// Appends the CRC32C of `bytes` to it.
pub(crate) fn push_crc(bytes: &mut Vec<u8>) {
    let crc = crc32c::crc32c(bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_fails_on_overrun_and_crc_catches_a_flip() {
        let mut reader = ByteReader::new(&[1, 0, 2]);
        assert_eq!(reader.u16(), Ok(1));
        assert!(reader.u16().is_err());
        let mut bytes = vec![1, 2, 3];
        push_crc(&mut bytes);
        assert_eq!(check_trailing_crc(&bytes), Ok(&[1u8, 2, 3][..]));
        bytes[1] ^= 1;
        assert!(check_trailing_crc(&bytes).is_err());
        assert!(check_trailing_crc(&[1]).is_err());
    }
}
