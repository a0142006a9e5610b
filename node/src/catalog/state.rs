//! [`Catalog`]: the databases and tables, the next table id and the writer ids reserved so
//! far; its changes (each one validated, tables by [`resolve`]) and its file encoding.
//!
//! Table ids are never reused. Writer ids are reserved in blocks, so a restart never hands
//! out an id twice.
//!
//! File: `UFCT`, `u16` version 1, the databases (`list<(string name, i64 created_at_ms)>`),
//! the tables (`list<TableInfo>` as in the protocol), `u64` next table id, `i64` writer ids
//! reserved up to, then a CRC-32C of everything before it.

use std::collections::BTreeMap;

use ufer_shard::LogConfig;
use ufer_wire::protocol::codec::{Decoder, Encoder, ProtocolError};
use ufer_wire::protocol::error_code::{ErrorBody, ErrorCode};
use ufer_wire::protocol::messages::{TableDefinition, TableInfo, TablePath};

use crate::limits::NAME_SIZE_MAX_BYTES;
use crate::table::resolve;

/// The database every node starts with.
pub const DEFAULT_DATABASE: &str = "default";

const CATALOG_MAGIC: &[u8; 4] = b"UFCT";
const CATALOG_VERSION: u16 = 1;

/// Databases and tables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Catalog {
    databases: BTreeMap<String, i64>,
    tables: BTreeMap<TablePath, TableInfo>,
    next_table_id: u64,
    writer_ids_reserved_to: i64,
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

    /// The id the next table gets.
    pub fn next_table_id(&self) -> u64 {
        self.next_table_id
    }

    /// Gives the next table id to no table (files of an unknown table already use it).
    pub fn skip_table_id(&mut self) {
        self.next_table_id += 1;
    }

    /// Whether this catalog dropped table `table_id`: it gave the id out (ids are given in
    /// order and never reused) and no longer has the table. A table's files are created
    /// only after the catalog that names it is durable, so the files of such an id are
    /// provably orphaned; the files of any other unknown id are not.
    pub fn dropped(&self, table_id: u64) -> bool {
        table_id < self.next_table_id && self.table_by_id(table_id).is_err()
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
}
