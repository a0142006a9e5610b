//! File names in a bucket's directory: `{base_offset:020}.{extension}`, so that names sort
//! by offset and a directory listing is the segment order.

/// What a file in a bucket directory holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileKind {
    /// A log segment: batches back to back.
    Segment,
    /// The sparse offset index of a sealed segment.
    OffsetIndex,
    /// The sparse time index of a sealed segment.
    TimeIndex,
    /// The idempotent writers' state at the end of a sealed segment.
    WriterSnapshot,
    /// The damaged ranges recovery found in a sealed segment (kept, reported, unreadable).
    Damage,
}

impl FileKind {
    /// Every kind.
    pub const ALL: [FileKind; 5] = [
        FileKind::Segment,
        FileKind::OffsetIndex,
        FileKind::TimeIndex,
        FileKind::WriterSnapshot,
        FileKind::Damage,
    ];
}

impl FileKind {
    /// The file name extension.
    pub fn extension(self) -> &'static str {
        match self {
            FileKind::Segment => "log",
            FileKind::OffsetIndex => "index",
            FileKind::TimeIndex => "timeindex",
            FileKind::WriterSnapshot => "writers",
            FileKind::Damage => "damaged",
        }
    }
}

/// Digits of a name's offset: enough for every `u64`, so zero-padded names sort by offset.
const OFFSET_DIGIT_COUNT: usize = 20;
const _: () = assert!(u64::MAX.ilog10() as usize + 1 == OFFSET_DIGIT_COUNT);

/// The name of the `kind` file of the segment starting at `base_offset`.
pub fn file_name(base_offset: u64, kind: FileKind) -> String {
    let name = format!("{base_offset:0OFFSET_DIGIT_COUNT$}.{}", kind.extension());
    assert_eq!(name.len(), OFFSET_DIGIT_COUNT + 1 + kind.extension().len(), "fixed-width names");
    name
}

/// The base offset and kind of a file name made by [`file_name`], or `None` for any other
/// name (temporary files, sentinels, foreign files).
pub fn parse_file_name(name: &str) -> Option<(u64, FileKind)> {
    let (stem, extension) = name.split_once('.')?;
    let kind = FileKind::ALL.into_iter().find(|kind| kind.extension() == extension)?;
    if stem.len() != OFFSET_DIGIT_COUNT || !stem.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    Some((stem.parse().ok()?, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_by_offset() {
        for offset in [0, 7, 1 << 40, u64::MAX] {
            for kind in FileKind::ALL {
                assert_eq!(parse_file_name(&file_name(offset, kind)), Some((offset, kind)));
            }
        }
        assert!(file_name(9, FileKind::Segment) < file_name(10, FileKind::Segment));
        for foreign in ["x.log", "00000000000000000001.tmp", "0000000000000000000a.log", ".ufer"] {
            assert_eq!(parse_file_name(foreign), None, "{foreign}");
        }
    }
}
