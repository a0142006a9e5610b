//! The reads of a [`PkBucket`]: lookups by key or by bucket-key prefix, and snapshot scans
//! of the whole bucket in parts — all of durable changes only.
//!
//! Invariants: every answer is consistent with one changelog offset at or below the high
//! watermark (the KV's applied offset, or a scan view's); pending writes are moved into
//! the KV before a lookup or a new scan, so an answer is as fresh as durability allows.

use std::rc::Rc;

use arrow_array::RecordBatch;
use ufer_wire::decode::aligned_copy;

use crate::pk_bucket::bucket::PkBucket;
use crate::pk_bucket::error::PkBucketError;
use crate::pk_bucket::limits::{
    LOOKUP_KEY_COUNT_MAX, PREFIX_LOOKUP_ROW_COUNT_MAX, SNAPSHOT_SCAN_COUNT_MAX,
    SNAPSHOT_SCAN_PART_SIZE_MAX_BYTES,
};
use crate::pk_bucket::scans::ScanPosition;

/// What the keys of a lookup are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LookupBy {
    /// Whole primary keys (the key columns): at most one row each.
    Key,
    /// Bucket-key prefixes (the bucket key columns): every row under each, in key order.
    Prefix,
}

/// The rows a lookup found.
#[derive(Debug)]
pub struct LookupResult {
    /// Found rows (table schema, or the projection), `None` if none was found.
    pub rows: Option<RecordBatch>,
    /// For each found row, the index of the key (or prefix) that found it.
    pub key_index: Vec<u32>,
    /// The changelog offset the answer is consistent with.
    pub log_offset: u64,
    /// True if a prefix lookup stopped at [`PREFIX_LOOKUP_ROW_COUNT_MAX`] rows.
    pub truncated: bool,
}

/// Which snapshot scan a request reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanCursor {
    /// A new scan of everything durable now.
    Start,
    /// The next part of the scan with this id.
    Resume(u64),
}

/// One part of a snapshot scan.
#[derive(Debug)]
pub struct ScanPart {
    /// The scan, to continue it.
    pub scan_id: u64,
    /// The changelog offset the snapshot is consistent with.
    pub log_offset: u64,
    /// Rows in key order (`None` if this part has none).
    pub rows: Option<RecordBatch>,
    /// True if more parts follow.
    pub more: bool,
}

/// Stored values found by a lookup, each with the index of the key that found it.
struct Found {
    values: Vec<Vec<u8>>,
    key_index: Vec<u32>,
    truncated: bool,
}

impl PkBucket {
    /// Looks up rows by key or by bucket-key prefix (`keys` is a batch of the key columns,
    /// or of the bucket key columns), reading only durable changes; `projection` picks the
    /// columns returned (all if `None`).
    pub async fn lookup(
        self: &Rc<Self>,
        keys: &[u8],
        by: LookupBy,
        projection: Option<&[usize]>,
    ) -> Result<LookupResult, PkBucketError> {
        self.check_maintenance()?;
        self.apply_durable();
        if by == LookupBy::Prefix && !self.spec.options.bucket_key_is_prefix {
            return Err(PkBucketError::PrefixLookupUnsupported);
        }
        let encoded = self.encode_keys(keys, by)?;
        let log_offset = self.kv.applied_log_offset();
        let found = match by {
            LookupBy::Prefix => self.find_prefixes(&encoded).await?,
            LookupBy::Key => self.find_keys(&encoded).await?,
        };
        let rows = self.decode_rows(&found.values, projection)?;
        self.assert_kv_durable();
        let Found { key_index, truncated, .. } = found;
        Ok(LookupResult { rows, key_index, log_offset, truncated })
    }

    /// The keys (or prefixes) of a lookup request, encoded as the KV stores them.
    fn encode_keys(&self, keys: &[u8], by: LookupBy) -> Result<Vec<Vec<u8>>, PkBucketError> {
        let (decoder, encoder) = match by {
            LookupBy::Prefix => (&self.prefix_decoder, &self.prefix_encoder),
            LookupBy::Key => (&self.key_decoder, &self.key_encoder),
        };
        let decoded = decoder.decode(&aligned_copy(keys))?;
        let rows = &decoded.record_batch;
        if rows.num_rows() > LOOKUP_KEY_COUNT_MAX {
            return Err(PkBucketError::TooManyKeys { count: rows.num_rows() });
        }
        let mut encoded = Vec::with_capacity(rows.num_rows());
        for row in 0..rows.num_rows() {
            let mut key = Vec::new();
            encoder.encode(rows, row, &mut key)?;
            encoded.push(key);
        }
        Ok(encoded)
    }

    /// The rows under each prefix, up to [`PREFIX_LOOKUP_ROW_COUNT_MAX`] in all.
    async fn find_prefixes(&self, prefixes: &[Vec<u8>]) -> Result<Found, PkBucketError> {
        let mut found = Found { values: Vec::new(), key_index: Vec::new(), truncated: false };
        for (index, prefix) in prefixes.iter().enumerate() {
            let room = PREFIX_LOOKUP_ROW_COUNT_MAX - found.values.len();
            let rows =
                self.kv.scan_prefix(prefix, room + 1).await.map_err(|error| self.noted(error))?;
            found.truncated |= rows.len() > room;
            for (_, value) in rows.into_iter().take(room) {
                found.values.push(value);
                found.key_index.push(index as u32);
            }
            if found.truncated {
                break;
            }
        }
        assert!(found.values.len() <= PREFIX_LOOKUP_ROW_COUNT_MAX, "a prefix lookup is bounded");
        Ok(found)
    }

    /// The row of each key that has one.
    async fn find_keys(&self, keys: &[Vec<u8>]) -> Result<Found, PkBucketError> {
        let mut found = Found { values: Vec::new(), key_index: Vec::new(), truncated: false };
        let values = self.kv.multi_get(keys).await.map_err(|error| self.noted(error))?;
        for (index, value) in values.into_iter().enumerate() {
            if let Some(value) = value {
                found.values.push(value);
                found.key_index.push(index as u32);
            }
        }
        Ok(found)
    }

    /// Stored row values as a record batch of the table (or of `projection`).
    pub(crate) fn decode_rows(
        &self,
        values: &[Vec<u8>],
        projection: Option<&[usize]>,
    ) -> Result<Option<RecordBatch>, PkBucketError> {
        if values.is_empty() {
            return Ok(None);
        }
        let slices: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
        let batch = self.generator.row_codec().decode_rows(&slices)?;
        Ok(Some(match projection {
            Some(columns) => batch.project(columns)?,
            None => batch,
        }))
    }

    /// Reads the next part of a snapshot scan, or starts a scan of everything durable now.
    /// At least one row is returned when there is one, then rows up to `max_bytes` of stored
    /// values; `projection` picks the columns returned (all if `None`).
    pub async fn snapshot_scan(
        self: &Rc<Self>,
        cursor: ScanCursor,
        max_bytes: usize,
        projection: Option<&[usize]>,
    ) -> Result<ScanPart, PkBucketError> {
        self.check_kv_usable()?;
        let (scan_id, position) = self.scan_position(cursor)?;
        let ScanPosition { view, resume_after } = position;
        assert!(view.log_offset() <= self.log.high_watermark(), "a snapshot is of durable data");
        let budget = max_bytes.clamp(1, SNAPSHOT_SCAN_PART_SIZE_MAX_BYTES);
        let (entries, more) = view
            .scan(resume_after.as_deref(), &[], budget)
            .await
            .map_err(|error| self.noted(error))?;
        let values: Vec<Vec<u8>> = entries.iter().map(|(_, value)| value.clone()).collect();
        let rows = self.decode_rows(&values, projection)?;
        let log_offset = view.log_offset();
        if more {
            let resume_after = entries.last().map(|(key, _)| key.clone()).or(resume_after);
            let now = self.clock.monotonic_now();
            let position = ScanPosition { view, resume_after };
            self.scans.borrow_mut().put_back(scan_id, position, now);
        }
        Ok(ScanPart { scan_id, log_offset, rows, more })
    }

    /// The scan `cursor` names, taken out of the open scans (idle ones expired first), or a
    /// new one over a view of everything durable now.
    fn scan_position(
        self: &Rc<Self>,
        cursor: ScanCursor,
    ) -> Result<(u64, ScanPosition), PkBucketError> {
        let now = self.clock.monotonic_now();
        let mut scans = self.scans.borrow_mut();
        scans.expire(now);
        match cursor {
            ScanCursor::Start => {
                if scans.is_full() {
                    return Err(PkBucketError::TooManyScans { max: SNAPSHOT_SCAN_COUNT_MAX });
                }
                drop(scans);
                self.apply_durable();
                let scan_id = self.scans.borrow_mut().new_id();
                let view = Rc::new(self.kv().read_view());
                Ok((scan_id, ScanPosition { view, resume_after: None }))
            }
            ScanCursor::Resume(scan_id) => {
                let position = scans.take(scan_id).ok_or(PkBucketError::ScanNotFound(scan_id))?;
                Ok((scan_id, position))
            }
        }
    }
}
