//! Reading a whole table back through the client SDK and checking what the log promises:
//! per bucket, offsets dense and in order; every row once.

use std::collections::BTreeMap;

use arrow_array::{Array, Int64Array};
use ufer_wire::client::{Connection, LogScanner, ScanOptions, StartFrom};
use ufer_wire::protocol::messages::TablePath;

/// Where a row was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowPlace {
    /// Bucket.
    pub bucket: u32,
    /// Offset in the bucket.
    pub offset: u64,
}

/// Scans every bucket from the earliest offset until `expected_rows` rows were read (or 20
/// polls in a row found nothing) and returns each row's `id` column with its place. With
/// `columns`, the scan is projected on the node and the answer must hold exactly those
/// columns in that order (they must include `id`). Panics on a row read twice, or on
/// offsets that skip or go back within a bucket.
pub async fn read_ids(
    connection: &Connection,
    path: &TablePath,
    columns: Option<Vec<String>>,
    expected_rows: usize,
) -> BTreeMap<i64, RowPlace> {
    let options = ScanOptions { columns: columns.clone(), ..ScanOptions::default() };
    let mut scanner = LogScanner::new(connection.clone(), path, options).await.unwrap();
    scanner.subscribe_all(StartFrom::Earliest).await.unwrap();
    let mut seen = BTreeMap::new();
    let mut last_offset: BTreeMap<u32, u64> = BTreeMap::new();
    let mut idle_polls = 0;
    while seen.len() < expected_rows && idle_polls < 20 {
        let polled = scanner.poll().await.unwrap();
        if polled.is_empty() {
            idle_polls += 1;
        }
        for scanned in polled {
            let names: Vec<String> =
                scanned.rows.schema().fields().iter().map(|field| field.name().clone()).collect();
            if let Some(columns) = &columns {
                assert_eq!(&names, columns, "the projected columns, in the order asked for");
            }
            let id_at = names.iter().position(|name| name == "id").expect("an id column");
            let ids = scanned.rows.column(id_at).as_any().downcast_ref::<Int64Array>().unwrap();
            for row in 0..scanned.rows.num_rows() {
                let offset = scanned.base_offset + row as u64;
                if let Some(previous) = last_offset.insert(scanned.bucket, offset) {
                    assert_eq!(
                        offset,
                        previous + 1,
                        "offsets are dense and in order in bucket {}",
                        scanned.bucket
                    );
                }
                let place = RowPlace { bucket: scanned.bucket, offset };
                assert!(
                    seen.insert(ids.value(row), place).is_none(),
                    "row {} read twice",
                    ids.value(row)
                );
            }
        }
    }
    seen
}
