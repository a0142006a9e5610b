//! The change type of one record of a primary-key table's changelog.
//!
//! A batch with change types carries one byte per record (attribute bit 2); a batch without
//! them is append-only and every record is [`ChangeType::AppendOnly`]. The byte values are part
//! of the format (`docs/format.md`) and never change.

/// What a changelog record means for the row of its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ChangeType {
    /// `+A`: a row of an append-only (log) table.
    AppendOnly = 0,
    /// `+I`: a new key was inserted.
    Insert = 1,
    /// `-U`: the old row of an updated key (only with the `full` changelog image).
    UpdateBefore = 2,
    /// `+U`: the new row of an updated key.
    UpdateAfter = 3,
    /// `-D`: the key was deleted; the row is the last value.
    Delete = 4,
}

impl ChangeType {
    /// All change types, in byte order.
    pub const ALL: [ChangeType; 5] = [
        ChangeType::AppendOnly,
        ChangeType::Insert,
        ChangeType::UpdateBefore,
        ChangeType::UpdateAfter,
        ChangeType::Delete,
    ];

    /// The change type stored as `byte`, or `None` for an invalid byte.
    pub fn from_byte(byte: u8) -> Option<Self> {
        Self::ALL.get(usize::from(byte)).copied()
    }

    /// The byte stored for this change type.
    pub fn to_byte(self) -> u8 {
        self as u8
    }

    /// The short form used in logs and the CLI: `+A`, `+I`, `-U`, `+U`, `-D`.
    pub fn short_name(self) -> &'static str {
        match self {
            ChangeType::AppendOnly => "+A",
            ChangeType::Insert => "+I",
            ChangeType::UpdateBefore => "-U",
            ChangeType::UpdateAfter => "+U",
            ChangeType::Delete => "-D",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_and_invalid_bytes_are_rejected() {
        for change_type in ChangeType::ALL {
            assert_eq!(ChangeType::from_byte(change_type.to_byte()), Some(change_type));
        }
        for byte in 5..=u8::MAX {
            assert_eq!(ChangeType::from_byte(byte), None);
        }
        assert_eq!(ChangeType::UpdateBefore.short_name(), "-U");
    }
}
