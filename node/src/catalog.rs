//! The table catalog: databases and tables, persisted crash-safely in the data directory
//! and loaded at start.
//!
//! Shard 0 owns the catalog and is the only one to change it (DDL requests are forwarded
//! there); after each change it writes the file (`catalog`, replaced atomically) and sends
//! a copy to every other shard, which keep it for routing and validating requests. Table ids
//! are never reused. Writer ids are reserved in blocks, so a restart never hands out an id
//! twice.
//!
//! File: `UFCT`, `u16` version 1, the databases (`list<(string name, i64 created_at_ms)>`),
//! the tables (`list<TableInfo>` as in the protocol), `u64` next table id, `i64` writer ids
//! reserved up to, then a CRC-32C of everything before it.

use std::collections::BTreeMap;
use std::time::Duration;

use ufer_shard::LogConfig;
use ufer_shard::{is_pk_property, PkTableOptions};
use ufer_wire::protocol::codec::{Decoder, Encoder, ProtocolError};
use ufer_wire::protocol::error_code::{ErrorBody, ErrorCode};
use ufer_wire::protocol::messages::{TableDefinition, TableInfo, TablePath};
use ufer_wire::schema_text::parse_schema;
use ufer_wire::BatchSchema;

use crate::limits::{BUCKET_COUNT_MAX, NAME_SIZE_MAX_BYTES};

/// The database every node starts with.
pub const DEFAULT_DATABASE: &str = "default";

const CATALOG_MAGIC: &[u8; 4] = b"UFCT";
const CATALOG_VERSION: u16 = 1;

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

/// Databases and tables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Catalog {
    databases: BTreeMap<String, i64>,
    tables: BTreeMap<TablePath, TableInfo>,
    next_table_id: u64,
    writer_ids_reserved_to: i64,
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

/// Checks a database or table name: 1 to 255 bytes of letters, digits, `_` and `-`.
pub fn check_name(kind: &str, name: &str) -> Result<(), ErrorBody> {
    let valid = !name.is_empty()
        && name.len() <= NAME_SIZE_MAX_BYTES
        && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-');
    if valid {
        Ok(())
    } else {
        Err(ErrorBody::new(
            ErrorCode::InvalidRequest,
            format!("{kind} name {name:?} must have 1 to {NAME_SIZE_MAX_BYTES} letters, digits, '_' or '-'"),
        ))
    }
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
    let primary_key = if definition.primary_key.is_empty() {
        if let Some((key, _)) = definition.properties.iter().find(|(key, _)| is_pk_property(key)) {
            return Err(invalid(format!(
                "property {key} is for primary-key tables; this table has no primary key"
            )));
        }
        None
    } else {
        let pk_properties: Vec<(String, String)> =
            definition.properties.iter().filter(|(key, _)| is_pk_property(key)).cloned().collect();
        Some(
            PkTableOptions::from_definition(
                schema.arrow(),
                &definition.primary_key,
                &definition.bucket_key,
                &pk_properties,
            )
            .map_err(|reason| invalid(format!("primary key: {reason}")))?,
        )
    };
    if definition.partition_by.is_some() {
        return Err(invalid("partitioned tables are not supported yet"));
    }
    for column in &definition.bucket_key {
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
    let mut log = base.clone();
    let mut lake_enabled = false;
    let mut freshness = LAKE_FRESHNESS_DEFAULT;
    for (key, value) in &definition.properties {
        if primary_key.is_some() && is_pk_property(key) {
            continue;
        }
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| invalid(format!("property {key} needs a whole number, not {value:?}")))
        };
        match key.as_str() {
            "retention.bytes" => log.retention_size_max_bytes = Some(number()?),
            "retention.ms" => log.retention_age_max = Some(Duration::from_millis(number()?)),
            "segment.bytes" => log.segment_size_max_bytes = number()?,
            "segment.ms" => log.segment_age_max = Duration::from_millis(number()?),
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
    log.validate().map_err(|reason| invalid(format!("properties: {reason}")))?;
    let lake = if lake_enabled {
        if freshness < LAKE_FRESHNESS_MIN {
            return Err(invalid(format!(
                "lake freshness must be at least {} ms",
                LAKE_FRESHNESS_MIN.as_millis()
            )));
        }
        // Every column must have an Iceberg type.
        crate::lake::LakeSchema::new(schema.arrow(), primary_key.is_some())
            .map_err(|error| invalid(format!("lake table: {error}")))?;
        Some(LakeTableOptions { freshness })
    } else {
        None
    };
    Ok(ResolvedTable { info: info.clone(), schema, log, primary_key, lake })
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

impl Default for Catalog {
    fn default() -> Self {
        Self::new(0)
    }
}

impl Catalog {
    /// A new catalog with the default database.
    pub fn new(now_ms: i64) -> Self {
        let mut databases = BTreeMap::new();
        databases.insert(DEFAULT_DATABASE.to_string(), now_ms);
        Self { databases, tables: BTreeMap::new(), next_table_id: 1, writer_ids_reserved_to: 0 }
    }

    /// Database names, sorted.
    pub fn databases(&self) -> Vec<String> {
        self.databases.keys().cloned().collect()
    }

    /// Table names of `database`, sorted.
    pub fn tables_of(&self, database: &str) -> Result<Vec<String>, ErrorBody> {
        if !self.databases.contains_key(database) {
            return Err(ErrorBody::new(
                ErrorCode::DatabaseNotFound,
                format!("no database {database:?}"),
            ));
        }
        Ok(self
            .tables
            .keys()
            .filter(|path| path.database == database)
            .map(|path| path.table.clone())
            .collect())
    }

    /// Every table.
    pub fn all_tables(&self) -> impl Iterator<Item = &TableInfo> {
        self.tables.values()
    }

    /// The table at `path`.
    pub fn table(&self, path: &TablePath) -> Result<&TableInfo, ErrorBody> {
        self.tables
            .get(path)
            .ok_or_else(|| ErrorBody::new(ErrorCode::TableNotFound, format!("no table {path}")))
    }

    /// The table with `table_id`.
    pub fn table_by_id(&self, table_id: u64) -> Result<&TableInfo, ErrorBody> {
        self.tables.values().find(|info| info.table_id == table_id).ok_or_else(|| {
            ErrorBody::new(ErrorCode::TableNotFound, format!("no table with id {table_id}"))
        })
    }

    /// Creates a database; `Ok(false)` if it existed and `if_not_exists`.
    pub fn create_database(
        &mut self,
        name: &str,
        if_not_exists: bool,
        now_ms: i64,
    ) -> Result<bool, ErrorBody> {
        check_name("database", name)?;
        if self.databases.contains_key(name) {
            return if if_not_exists {
                Ok(false)
            } else {
                Err(ErrorBody::new(
                    ErrorCode::DatabaseAlreadyExists,
                    format!("database {name:?} exists"),
                ))
            };
        }
        self.databases.insert(name.to_string(), now_ms);
        Ok(true)
    }

    /// Drops a database (and with `cascade` its tables, which are returned).
    pub fn drop_database(
        &mut self,
        name: &str,
        if_exists: bool,
        cascade: bool,
    ) -> Result<Vec<TableInfo>, ErrorBody> {
        if !self.databases.contains_key(name) {
            return if if_exists {
                Ok(Vec::new())
            } else {
                Err(ErrorBody::new(ErrorCode::DatabaseNotFound, format!("no database {name:?}")))
            };
        }
        let tables: Vec<TablePath> =
            self.tables.keys().filter(|path| path.database == name).cloned().collect();
        if !tables.is_empty() && !cascade {
            return Err(ErrorBody::new(
                ErrorCode::DatabaseNotEmpty,
                format!("database {name:?} has {} tables; drop them or use cascade", tables.len()),
            ));
        }
        self.databases.remove(name);
        Ok(tables.iter().filter_map(|path| self.tables.remove(path)).collect())
    }

    /// Creates a table; returns it and whether it is new.
    pub fn create_table(
        &mut self,
        path: &TablePath,
        definition: TableDefinition,
        if_not_exists: bool,
        base: &LogConfig,
        now_ms: i64,
    ) -> Result<(TableInfo, bool), ErrorBody> {
        check_name("database", &path.database)?;
        check_name("table", &path.table)?;
        if !self.databases.contains_key(&path.database) {
            return Err(ErrorBody::new(
                ErrorCode::DatabaseNotFound,
                format!("no database {:?}", path.database),
            ));
        }
        if let Some(existing) = self.tables.get(path) {
            return if if_not_exists {
                Ok((existing.clone(), false))
            } else {
                Err(ErrorBody::new(ErrorCode::TableAlreadyExists, format!("table {path} exists")))
            };
        }
        let mut definition = definition;
        definition.properties.sort();
        let info = TableInfo {
            table_id: self.next_table_id,
            path: path.clone(),
            schema_id: 1,
            definition,
            created_at_ms: now_ms,
        };
        resolve(&info, base)?;
        self.next_table_id += 1;
        self.tables.insert(path.clone(), info.clone());
        Ok((info, true))
    }

    /// Drops a table; returns it (`None` if it did not exist and `if_exists`).
    pub fn drop_table(
        &mut self,
        path: &TablePath,
        if_exists: bool,
    ) -> Result<Option<TableInfo>, ErrorBody> {
        match self.tables.remove(path) {
            Some(info) => Ok(Some(info)),
            None if if_exists => Ok(None),
            None => Err(ErrorBody::new(ErrorCode::TableNotFound, format!("no table {path}"))),
        }
    }

    /// Writer ids below this may have been handed out.
    pub fn writer_ids_reserved_to(&self) -> i64 {
        self.writer_ids_reserved_to
    }

    /// Reserves writer ids up to (not including) `to`.
    pub fn reserve_writer_ids(&mut self, to: i64) {
        assert!(to >= self.writer_ids_reserved_to);
        self.writer_ids_reserved_to = to;
    }

    /// Encodes the catalog file.
    pub fn encode(&self) -> Vec<u8> {
        let mut encoder = Encoder::default();
        encoder.raw(CATALOG_MAGIC);
        encoder.u16(CATALOG_VERSION);
        let databases: Vec<(&String, &i64)> = self.databases.iter().collect();
        encoder.list(&databases, |encoder, (name, created)| {
            encoder.string(name);
            encoder.i64(**created);
        });
        let tables: Vec<&TableInfo> = self.tables.values().collect();
        encoder.list(&tables, |encoder, info| info.encode(encoder));
        encoder.u64(self.next_table_id);
        encoder.i64(self.writer_ids_reserved_to);
        let mut bytes = encoder.finish();
        let crc = crc32c::crc32c(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        bytes
    }

    /// Decodes a catalog file.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let (body, crc) = bytes.split_last_chunk::<4>().ok_or("catalog file too short")?;
        if crc32c::crc32c(body) != u32::from_le_bytes(*crc) {
            return Err("catalog file CRC mismatch".into());
        }
        let decode = || -> Result<Self, ProtocolError> {
            let mut decoder = Decoder::new(body);
            let magic = [
                decoder.u8("magic")?,
                decoder.u8("magic")?,
                decoder.u8("magic")?,
                decoder.u8("magic")?,
            ];
            if &magic != CATALOG_MAGIC || decoder.u16("version")? != CATALOG_VERSION {
                return Err(ProtocolError::Invalid {
                    what: "catalog",
                    reason: "bad magic or version".into(),
                });
            }
            let databases = decoder.list("databases", 10, |decoder| {
                Ok((decoder.string("name")?, decoder.i64("created")?))
            })?;
            let tables = decoder.list("tables", 40, TableInfo::decode)?;
            let next_table_id = decoder.u64("next_table_id")?;
            let writer_ids_reserved_to = decoder.i64("writer_ids_reserved_to")?;
            decoder.finish()?;
            Ok(Self {
                databases: databases.into_iter().collect(),
                tables: tables.into_iter().map(|info| (info.path.clone(), info)).collect(),
                next_table_id,
                writer_ids_reserved_to,
            })
        };
        decode().map_err(|error| format!("catalog file: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definition(schema: &str) -> TableDefinition {
        TableDefinition { schema: schema.into(), bucket_count: 4, ..TableDefinition::default() }
    }

    #[test]
    fn tables_are_created_validated_dropped_and_survive_encoding() {
        let base = LogConfig::test_min();
        let mut catalog = Catalog::new(5);
        let path = TablePath::new("default", "orders");
        let (info, created) = catalog
            .create_table(&path, definition("id BIGINT NOT NULL, name STRING"), false, &base, 9)
            .unwrap();
        assert!(created && info.table_id == 1);
        assert!(!catalog.create_table(&path, definition("x INT"), true, &base, 9).unwrap().1);
        assert_eq!(
            catalog.create_table(&path, definition("x INT"), false, &base, 9).unwrap_err().code,
            ErrorCode::TableAlreadyExists
        );
        for (schema, buckets, key, property, expected) in [
            ("id BIGIN", 4, vec![], vec![], "schema"),
            ("id INT", 0, vec![], vec![], "bucket count"),
            ("id INT", 4, vec!["nope".to_string()], vec![], "not in the schema"),
            (
                "id INT",
                4,
                vec![],
                vec![("retention.ms".to_string(), "soon".to_string())],
                "whole number",
            ),
            (
                "id INT",
                4,
                vec![],
                vec![("colour".to_string(), "red".to_string())],
                "unknown property",
            ),
        ] {
            let definition = TableDefinition {
                schema: schema.into(),
                bucket_count: buckets,
                bucket_key: key,
                properties: property,
                ..TableDefinition::default()
            };
            let error = catalog
                .create_table(&TablePath::new("default", "bad"), definition, false, &base, 1)
                .unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidTableDefinition);
            assert!(error.message.contains(expected), "{}", error.message);
        }
        catalog.create_database("other", false, 1).unwrap();
        catalog.reserve_writer_ids(2048);
        let decoded = Catalog::decode(&catalog.encode()).unwrap();
        assert_eq!(decoded, catalog);
        assert_eq!(
            catalog.drop_database("default", false, false).unwrap_err().code,
            ErrorCode::DatabaseNotEmpty
        );
        assert_eq!(catalog.drop_table(&path, false).unwrap().unwrap().table_id, 1);
        let (again, _) =
            catalog.create_table(&path, definition("id INT"), false, &base, 10).unwrap();
        assert_eq!(again.table_id, 2, "table ids are never reused");
        let mut damaged = catalog.encode();
        damaged[6] ^= 1;
        assert!(Catalog::decode(&damaged).is_err());
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
