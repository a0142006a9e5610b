//! What a table's definition resolves to: its batch schema, its log limits with the
//! table's properties applied, its primary-key options and its lake options — checked,
//! so that every mistake in a definition is an `INVALID_TABLE_DEFINITION` naming it.
//!
//! Resolving depends only on the definition and the node's log defaults (not on the
//! catalog), so a table is resolved the same way when it is created, when a shard opens
//! it and when the tiering thread reads it.

use std::time::Duration;

use ufer_shard::LogConfig;
use ufer_shard::{is_pk_property, PkTableOptions};
use ufer_wire::protocol::error_code::{ErrorBody, ErrorCode};
use ufer_wire::protocol::messages::{TableDefinition, TableInfo};
use ufer_wire::schema_text::parse_schema;
use ufer_wire::BatchSchema;

use crate::limits::BUCKET_COUNT_MAX;
use crate::table::lake_schema::LakeSchema;

/// Table properties a table may set: the first four override the node's log default, the
/// rest make it a lake table (Apache Fluss's names are accepted too:
/// `table.datalake.enabled`, `table.datalake.freshness` with a unit, e.g. `30s`).
pub const TABLE_PROPERTIES: [&str; 6] = [
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.ms",
    "lake.enabled",
    "lake.freshness.ms",
];

/// The properties that turn tiering on (ours, and Apache Fluss's name).
pub const LAKE_ENABLED_PROPERTIES: [&str; 2] = ["lake.enabled", "table.datalake.enabled"];

/// Whether a table's properties (as stored: already validated) make it a lake table.
pub fn is_lake_table(properties: &[(String, String)]) -> bool {
    properties
        .iter()
        .any(|(key, value)| LAKE_ENABLED_PROPERTIES.contains(&key.as_str()) && value == "true")
}

/// How long a lake table's records wait at most to be tiered, unless the table says
/// otherwise (Apache Fluss's `table.datalake.freshness` default).
pub const LAKE_FRESHNESS_DEFAULT: Duration = Duration::from_secs(3 * 60);

/// Shortest freshness a table may ask for: each round is an Iceberg commit.
pub const LAKE_FRESHNESS_MIN: Duration = Duration::from_millis(100);

/// How a lake-enabled table is tiered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LakeTableOptions {
    /// A tiering round starts at most this long after the previous one started, and takes
    /// every record durable when it starts.
    pub freshness: Duration,
}

/// A table ready to serve: its catalog entry, batch schema and log limits.
#[derive(Clone, Debug)]
pub struct ResolvedTable {
    /// The catalog entry.
    pub info: TableInfo,
    /// The schema batches are checked against.
    pub schema: BatchSchema,
    /// The node's log limits with the table's properties applied.
    pub log: LogConfig,
    /// For a primary-key table: its key, bucket key, merge engine and changelog options.
    pub primary_key: Option<PkTableOptions>,
    /// For a lake-enabled table: how it is tiered.
    pub lake: Option<LakeTableOptions>,
}

impl ResolvedTable {
    /// Fails with `BUCKET_NOT_FOUND` unless the table has `bucket`.
    pub fn check_bucket(&self, bucket: u32) -> Result<(), ErrorBody> {
        let count = self.info.definition.bucket_count;
        if bucket < count {
            return Ok(());
        }
        Err(ErrorBody::new(
            ErrorCode::BucketNotFound,
            format!("table {} has {count} buckets, not bucket {bucket}", self.info.path),
        ))
    }
}

fn invalid(message: impl Into<String>) -> ErrorBody {
    ErrorBody::new(ErrorCode::InvalidTableDefinition, message)
}

/// Resolves a table definition against the node's log defaults; every mistake is an
/// `INVALID_TABLE_DEFINITION` naming it.
pub fn resolve(info: &TableInfo, base: &LogConfig) -> Result<ResolvedTable, ErrorBody> {
    let definition = &info.definition;
    let arrow =
        parse_schema(&definition.schema).map_err(|error| invalid(format!("schema: {error}")))?;
    let schema = BatchSchema::new(info.schema_id, std::sync::Arc::new(arrow))
        .map_err(|error| invalid(format!("schema: {error}")))?;
    if definition.bucket_count == 0 || definition.bucket_count > BUCKET_COUNT_MAX {
        return Err(invalid(format!(
            "bucket count must be 1 to {BUCKET_COUNT_MAX}, not {}",
            definition.bucket_count
        )));
    }
    let primary_key = resolve_primary_key(definition, &schema)?;
    if definition.partition_by.is_some() {
        return Err(invalid("partitioned tables are not supported yet"));
    }
    check_bucket_key(&definition.bucket_key, &schema)?;
    let properties = apply_properties(&definition.properties, base, primary_key.is_some())?;
    let log = properties.log;
    log.validate().map_err(|reason| invalid(format!("properties: {reason}")))?;
    let lake = if properties.lake_enabled {
        Some(lake_options(properties.freshness, &schema, primary_key.is_some())?)
    } else {
        None
    };
    Ok(ResolvedTable { info: info.clone(), schema, log, primary_key, lake })
}

/// The primary-key options of a table with a primary key; for a table without one, a
/// primary-key property is a mistake.
fn resolve_primary_key(
    definition: &TableDefinition,
    schema: &BatchSchema,
) -> Result<Option<PkTableOptions>, ErrorBody> {
    if definition.primary_key.is_empty() {
        if let Some((key, _)) = definition.properties.iter().find(|(key, _)| is_pk_property(key)) {
            return Err(invalid(format!(
                "property {key} is for primary-key tables; this table has no primary key"
            )));
        }
        return Ok(None);
    }
    let pk_properties: Vec<(String, String)> =
        definition.properties.iter().filter(|(key, _)| is_pk_property(key)).cloned().collect();
    let options = PkTableOptions::from_definition(
        schema.arrow(),
        &definition.primary_key,
        &definition.bucket_key,
        &pk_properties,
    )
    .map_err(|reason| invalid(format!("primary key: {reason}")))?;
    Ok(Some(options))
}

/// Every bucket key column is in the schema and has a type that hashes to a bucket.
fn check_bucket_key(bucket_key: &[String], schema: &BatchSchema) -> Result<(), ErrorBody> {
    for column in bucket_key {
        let Some(field) = schema.arrow().fields().iter().find(|field| field.name() == column)
        else {
            return Err(invalid(format!("bucket key column {column:?} is not in the schema")));
        };
        if !ufer_wire::bucketing::is_hashable(field.data_type()) {
            return Err(invalid(format!(
                "bucket key column {column:?} has type {}, which cannot be hashed to a bucket",
                field.data_type()
            )));
        }
    }
    Ok(())
}

/// What a table's properties (other than its primary-key ones) set.
struct TableProperties {
    /// The node's log limits with the table's applied, not yet validated.
    log: LogConfig,
    lake_enabled: bool,
    freshness: Duration,
}

/// Applies `properties` to the node's log defaults `base`; a primary-key table's
/// primary-key properties are left to [`resolve_primary_key`].
/// Smallest `segment.bytes` and `retention.bytes` a table may set: four direct-I/O blocks.
/// (A segment of one byte would be a file per batch: open files and index entries without
/// end.)
pub const TABLE_SIZE_MIN_BYTES: u64 = 16 * 1024;

/// Shortest `segment.ms` and `retention.ms` a table may set (a segment rolled at every
/// append; data deleted as it arrives).
pub const TABLE_AGE_MIN_MS: u64 = 1_000;

/// Longest `segment.ms` and `retention.ms`: 100 years (beyond is no limit, and overflows
/// the clock's arithmetic).
pub const TABLE_AGE_MAX_MS: u64 = 100 * 365 * 24 * 3600 * 1000;

fn apply_properties(
    properties: &[(String, String)],
    base: &LogConfig,
    has_primary_key: bool,
) -> Result<TableProperties, ErrorBody> {
    let mut log = base.clone();
    let mut lake_enabled = false;
    let mut freshness = LAKE_FRESHNESS_DEFAULT;
    for (key, value) in properties {
        if has_primary_key && is_pk_property(key) {
            continue;
        }
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| invalid(format!("property {key} needs a whole number, not {value:?}")))
        };
        let within = |range: std::ops::RangeInclusive<u64>| {
            let value = number()?;
            if range.contains(&value) {
                return Ok(value);
            }
            Err(invalid(format!(
                "property {key} must be {} to {}, not {value}",
                range.start(),
                range.end()
            )))
        };
        match key.as_str() {
            "retention.bytes" => {
                log.retention_size_max_bytes = Some(within(TABLE_SIZE_MIN_BYTES..=u64::MAX)?)
            }
            "retention.ms" => {
                let ms = within(TABLE_AGE_MIN_MS..=TABLE_AGE_MAX_MS)?;
                log.retention_age_max = Some(Duration::from_millis(ms));
            }
            "segment.bytes" => {
                let max = ufer_shard::log::config::SEGMENT_SIZE_MAX_BYTES;
                log.segment_size_max_bytes = within(TABLE_SIZE_MIN_BYTES..=max)?;
            }
            "segment.ms" => {
                let ms = within(TABLE_AGE_MIN_MS..=TABLE_AGE_MAX_MS)?;
                log.segment_age_max = Duration::from_millis(ms);
            }
            "lake.enabled" | "table.datalake.enabled" => {
                lake_enabled = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(invalid(format!(
                            "property {key} is true or false, not {value:?}"
                        )))
                    }
                }
            }
            "lake.freshness.ms" => freshness = Duration::from_millis(number()?),
            "table.datalake.freshness" => {
                freshness = parse_duration(value).ok_or_else(|| {
                    invalid(format!(
                        "property {key} needs a duration such as 30s or 3min, not {value:?}"
                    ))
                })?
            }
            other => {
                return Err(invalid(format!(
                    "unknown property {other:?}; known: {}",
                    TABLE_PROPERTIES.join(", ")
                )))
            }
        }
    }
    Ok(TableProperties { log, lake_enabled, freshness })
}

/// A lake table's options: its freshness is not below [`LAKE_FRESHNESS_MIN`] and every
/// column has an Iceberg type.
fn lake_options(
    freshness: Duration,
    schema: &BatchSchema,
    has_primary_key: bool,
) -> Result<LakeTableOptions, ErrorBody> {
    if freshness < LAKE_FRESHNESS_MIN {
        return Err(invalid(format!(
            "lake freshness must be at least {} ms",
            LAKE_FRESHNESS_MIN.as_millis()
        )));
    }
    LakeSchema::new(schema.arrow(), has_primary_key)
        .map_err(|error| invalid(format!("lake table: {error}")))?;
    Ok(LakeTableOptions { freshness })
}

/// `30s`, `3min`, `500ms`, `1h`, `2d` (Apache Fluss's duration text); a bare number is ms.
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let unit_ms: u64 = match unit.trim() {
        "" | "ms" => 1,
        "s" | "sec" => 1_000,
        "min" | "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    Some(Duration::from_millis(number.checked_mul(unit_ms)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ufer_wire::protocol::messages::TableDefinition;

    fn definition(schema: &str) -> TableDefinition {
        TableDefinition { schema: schema.into(), bucket_count: 4, ..TableDefinition::default() }
    }

    #[test]
    fn lake_properties_resolve_and_are_checked() {
        let base = LogConfig::test_min();
        let with = |properties: &[(&str, &str)]| {
            let info = TableInfo {
                definition: TableDefinition {
                    properties: properties
                        .iter()
                        .map(|(key, value)| (key.to_string(), value.to_string()))
                        .collect(),
                    ..definition("id BIGINT NOT NULL, at TIMESTAMP(9)")
                },
                ..TableInfo::default()
            };
            resolve(&info, &base)
        };
        assert_eq!(with(&[]).unwrap().lake, None);
        assert_eq!(
            with(&[("lake.enabled", "true")]).unwrap().lake,
            Some(LakeTableOptions { freshness: LAKE_FRESHNESS_DEFAULT })
        );
        let fluss =
            with(&[("table.datalake.enabled", "true"), ("table.datalake.freshness", "30s")]);
        assert_eq!(fluss.unwrap().lake.unwrap().freshness, Duration::from_secs(30));
        let ms = with(&[("lake.enabled", "true"), ("lake.freshness.ms", "500")]);
        assert_eq!(ms.unwrap().lake.unwrap().freshness, Duration::from_millis(500));
        assert_eq!(with(&[("lake.enabled", "false")]).unwrap().lake, None);
        for (properties, expected) in [
            (vec![("lake.enabled", "yes")], "true or false"),
            (vec![("lake.enabled", "true"), ("lake.freshness.ms", "5")], "at least"),
            (vec![("table.datalake.freshness", "soon")], "duration"),
            // Limits that hold: no segment per batch, no data deleted as it arrives.
            (vec![("segment.bytes", "1")], "must be 16384 to"),
            (vec![("segment.bytes", "99999999999")], "must be 16384 to"),
            (vec![("retention.bytes", "0")], "must be 16384 to"),
            (vec![("segment.ms", "0")], "must be 1000 to"),
            (vec![("retention.ms", "999")], "must be 1000 to"),
        ] {
            let error = with(&properties).unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidTableDefinition);
            assert!(error.message.contains(expected), "{}", error.message);
        }
        let reserved = TableInfo {
            definition: TableDefinition {
                properties: vec![("lake.enabled".into(), "true".into())],
                ..definition("__offset BIGINT")
            },
            ..TableInfo::default()
        };
        assert!(resolve(&reserved, &base).unwrap_err().message.contains("reserved"));
        assert_eq!(parse_duration("3min"), Some(Duration::from_secs(180)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2x"), None);
    }
}
