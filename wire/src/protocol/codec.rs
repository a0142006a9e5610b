//! The primitive encoding of protocol message bodies, and [`ProtocolError`].
//!
//! Little-endian fixed-width integers; `bool` as one byte 0/1; strings as `u16` length +
//! UTF-8; byte strings as `u32` length + bytes; lists as `u32` count + items; options as a
//! one-byte tag (0 none, 1 some) + value. A decoder never allocates more than the bytes it
//! was given can justify (a list's count is checked against what is left before any
//! allocation) and returns a typed error for any input.

/// A body could not be decoded (or a frame is malformed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The input ended inside a field.
    #[error("message truncated: {what} needs {needed} more bytes, {available} left")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Bytes it needs.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// A string is not UTF-8.
    #[error("{what} is not valid UTF-8")]
    BadUtf8 {
        /// The field.
        what: &'static str,
    },
    /// A value is outside what the field allows.
    #[error("{what} is invalid: {reason}")]
    Invalid {
        /// The field.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// A length field announces more than its limit allows.
    #[error("{what} of {size} bytes is over the limit of {limit}")]
    TooLarge {
        /// The length field.
        what: &'static str,
        /// What it announced.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Bytes were left after the last field of a message without a records section.
    #[error("{0} bytes left after the message")]
    TrailingBytes(usize),
}

/// Writes a message body. A value the format cannot hold (a string over 65 535 bytes) is
/// noted rather than written: [`Encoder::try_finish`] returns it as an error (what a client
/// does with what a user typed); [`Encoder::finish`] treats it as a bug (what a node does
/// with what it built).
#[derive(Debug, Default)]
pub struct Encoder {
    out: Vec<u8>,
    /// The first value the format could not hold.
    refused: Option<ProtocolError>,
}

impl Encoder {
    /// An encoder appending to `out`.
    pub fn new(out: Vec<u8>) -> Self {
        Self { out, refused: None }
    }

    /// The bytes written.
    ///
    /// # Panics
    /// If a value could not be encoded (a caller bug: see [`Encoder::try_finish`]).
    pub fn finish(self) -> Vec<u8> {
        match self.try_finish() {
            Ok(out) => out,
            Err(error) => panic!("a message this code built does not encode: {error}"),
        }
    }

    /// The bytes written, or the first value the format could not hold.
    pub fn try_finish(self) -> Result<Vec<u8>, ProtocolError> {
        match self.refused {
            None => Ok(self.out),
            Some(error) => Err(error),
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.out.len()
    }

    /// True if nothing was written.
    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// Writes a `u8`.
    pub fn u8(&mut self, value: u8) {
        self.out.push(value);
    }

    /// Writes a `bool` as 0 or 1.
    pub fn bool(&mut self, value: bool) {
        self.out.push(u8::from(value));
    }

    /// Writes a `u16`.
    pub fn u16(&mut self, value: u16) {
        self.out.extend_from_slice(&value.to_le_bytes());
    }

    /// Writes a `u32`.
    pub fn u32(&mut self, value: u32) {
        self.out.extend_from_slice(&value.to_le_bytes());
    }

    /// Writes a `u64`.
    pub fn u64(&mut self, value: u64) {
        self.out.extend_from_slice(&value.to_le_bytes());
    }

    /// Writes an `i64`.
    pub fn i64(&mut self, value: i64) {
        self.out.extend_from_slice(&value.to_le_bytes());
    }

    /// Writes a string of at most 65 535 bytes; a longer one is noted as refused (see
    /// [`Encoder::try_finish`]) and written as an empty string.
    pub fn string(&mut self, value: &str) {
        let Ok(len) = u16::try_from(value.len()) else {
            self.refused.get_or_insert(ProtocolError::TooLarge {
                what: "string",
                size: value.len() as u64,
                limit: u64::from(u16::MAX),
            });
            self.u16(0);
            return;
        };
        self.u16(len);
        self.out.extend_from_slice(value.as_bytes());
    }

    /// Writes a byte string.
    ///
    /// # Panics
    /// If it is longer than `u32::MAX` bytes.
    pub fn bytes(&mut self, value: &[u8]) {
        let len = u32::try_from(value.len())
            .unwrap_or_else(|_| panic!("byte string of {} bytes", value.len()));
        self.u32(len);
        self.out.extend_from_slice(value);
    }

    /// Writes raw bytes with no length (a trailing records section).
    pub fn raw(&mut self, value: &[u8]) {
        self.out.extend_from_slice(value);
    }

    /// Writes a list: its count, then each item with `item`.
    pub fn list<T>(&mut self, items: &[T], mut item: impl FnMut(&mut Self, &T)) {
        self.u32(items.len() as u32);
        for value in items {
            item(self, value);
        }
    }

    /// Writes an option: a tag, then the value with `item` if present.
    pub fn option<T>(&mut self, value: Option<&T>, item: impl FnOnce(&mut Self, &T)) {
        match value {
            None => self.u8(0),
            Some(value) => {
                self.u8(1);
                item(self, value);
            }
        }
    }
}

/// Reads a message body.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    input: &'a [u8],
    at: usize,
}

impl<'a> Decoder<'a> {
    /// A decoder over `input`.
    pub fn new(input: &'a [u8]) -> Self {
        Self { input, at: 0 }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.input.len() - self.at
    }

    /// Position of the next byte.
    pub fn position(&self) -> usize {
        self.at
    }

    /// Checks that everything was read.
    pub fn finish(&self) -> Result<(), ProtocolError> {
        match self.remaining() {
            0 => Ok(()),
            left => Err(ProtocolError::TrailingBytes(left)),
        }
    }

    /// The rest of the input (a trailing records section), consuming it.
    pub fn rest(&mut self) -> &'a [u8] {
        let rest = &self.input[self.at..];
        self.at = self.input.len();
        rest
    }

    fn take(&mut self, size: usize, what: &'static str) -> Result<&'a [u8], ProtocolError> {
        if self.remaining() < size {
            return Err(ProtocolError::Truncated {
                what,
                needed: size,
                available: self.remaining(),
            });
        }
        let taken = &self.input[self.at..self.at + size];
        self.at += size;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], ProtocolError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    /// Reads a `u8`.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, ProtocolError> {
        Ok(self.take(1, what)?[0])
    }

    /// Reads a `bool` (0 or 1).
    pub fn bool(&mut self, what: &'static str) -> Result<bool, ProtocolError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(ProtocolError::Invalid { what, reason: format!("boolean byte {other}") }),
        }
    }

    /// Reads a `u16`.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, ProtocolError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    /// Reads a `u32`.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, ProtocolError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    /// Reads a `u64`.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, ProtocolError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// Reads an `i64`.
    pub fn i64(&mut self, what: &'static str) -> Result<i64, ProtocolError> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }

    /// Reads a string.
    pub fn string(&mut self, what: &'static str) -> Result<String, ProtocolError> {
        let len = usize::from(self.u16(what)?);
        let bytes = self.take(len, what)?;
        std::str::from_utf8(bytes).map(str::to_string).map_err(|_| ProtocolError::BadUtf8 { what })
    }

    /// Reads a byte string (borrowed).
    pub fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], ProtocolError> {
        let len = self.u32(what)? as usize;
        self.take(len, what)
    }

    /// Reads a list whose items take at least `item_size_min_bytes` each.
    pub fn list<T>(
        &mut self,
        what: &'static str,
        item_size_min_bytes: usize,
        mut item: impl FnMut(&mut Self) -> Result<T, ProtocolError>,
    ) -> Result<Vec<T>, ProtocolError> {
        let count = self.u32(what)? as usize;
        // Refuse counts the input cannot hold before allocating for them.
        let needed = count.saturating_mul(item_size_min_bytes.max(1));
        if needed > self.remaining() {
            return Err(ProtocolError::Truncated { what, needed, available: self.remaining() });
        }
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(item(self)?);
        }
        Ok(items)
    }

    /// Reads an option.
    pub fn option<T>(
        &mut self,
        what: &'static str,
        item: impl FnOnce(&mut Self) -> Result<T, ProtocolError>,
    ) -> Result<Option<T>, ProtocolError> {
        match self.u8(what)? {
            0 => Ok(None),
            1 => Ok(Some(item(self)?)),
            other => Err(ProtocolError::Invalid { what, reason: format!("option tag {other}") }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_round_trip() {
        let mut encoder = Encoder::default();
        encoder.u8(7);
        encoder.bool(true);
        encoder.u16(65_000);
        encoder.u32(4_000_000_000);
        encoder.u64(u64::MAX - 1);
        encoder.i64(-5);
        encoder.string("tåble");
        encoder.bytes(b"\x00\x01");
        encoder.list(&[1u32, 2, 3], |encoder, value| encoder.u32(*value));
        encoder.option(Some(&9u16), |encoder, value| encoder.u16(*value));
        encoder.option(None::<&u16>, |encoder, value| encoder.u16(*value));
        encoder.raw(b"tail");
        let bytes = encoder.finish();
        let mut decoder = Decoder::new(&bytes);
        assert_eq!(decoder.u8("a").unwrap(), 7);
        assert!(decoder.bool("b").unwrap());
        assert_eq!(decoder.u16("c").unwrap(), 65_000);
        assert_eq!(decoder.u32("d").unwrap(), 4_000_000_000);
        assert_eq!(decoder.u64("e").unwrap(), u64::MAX - 1);
        assert_eq!(decoder.i64("f").unwrap(), -5);
        assert_eq!(decoder.string("g").unwrap(), "tåble");
        assert_eq!(decoder.bytes("h").unwrap(), b"\x00\x01");
        assert_eq!(decoder.list("i", 4, |decoder| decoder.u32("i")).unwrap(), vec![1, 2, 3]);
        assert_eq!(decoder.option("j", |decoder| decoder.u16("j")).unwrap(), Some(9));
        assert_eq!(decoder.option("k", |decoder| decoder.u16("k")).unwrap(), None);
        assert_eq!(decoder.rest(), b"tail");
        decoder.finish().unwrap();
    }

    #[test]
    fn hostile_counts_and_bytes_are_errors_not_allocations() {
        let mut encoder = Encoder::default();
        encoder.u32(u32::MAX);
        let bytes = encoder.finish();
        assert!(Decoder::new(&bytes).list("huge", 8, |decoder| decoder.u64("x")).is_err());
        assert!(Decoder::new(&bytes).bytes("huge").is_err());
        assert!(Decoder::new(&[2]).bool("flag").is_err());
        assert!(Decoder::new(&[1, 0, 0xFF]).string("name").is_err());
        assert!(Decoder::new(&[5]).option("maybe", |decoder| decoder.u8("x")).is_err());
    }
}
