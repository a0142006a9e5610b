//! `PkTableOptions`: what a primary-key table's definition says about keys and merging,
//! parsed and validated once when the table is created.
//!
//! Property names are Apache Fluss's, so its users feel at home:
//!
//! | property | values | default |
//! |---|---|---|
//! | `table.merge-engine` | `first_row`, `versioned`, `aggregation` | last row wins |
//! | `table.merge-engine.versioned.ver-column` | INT, BIGINT, TIMESTAMP or TIMESTAMP_LTZ column | |
//! | `table.delete.behavior` | `allow`, `ignore`, `disable` (any case) | see below |
//! | `table.changelog.image` | `full`, `wal` (any case) | `full` |
//! | `fields.<column>.agg` | an [`AggFunction`] name | `last_value_ignore_nulls` |
//! | `fields.<column>.listagg.delimiter` | a string | `,` |
//!
//! `last_row` is accepted as the explicit name of the default engine. Deletes default to
//! `allow` with last row and to `ignore` with the other engines; the version column is
//! required with `versioned`.
//!
//! Invariants of a built value: key columns exist, are distinct and have a key encoding; the
//! bucket key is a non-empty subset of the primary key; `first_row` and `versioned` never
//! have `allow` deletes (they cannot retract a kept row, as in Fluss); aggregate functions fit
//! their column types and key columns have none.

use arrow_schema::{DataType, Schema};

use super::key::has_key_encoding;
use super::value::is_int_like;

/// `table.merge-engine`.
pub const MERGE_ENGINE_PROPERTY: &str = "table.merge-engine";
/// `table.merge-engine.versioned.ver-column`.
pub const VERSION_COLUMN_PROPERTY: &str = "table.merge-engine.versioned.ver-column";
/// `table.delete.behavior`.
pub const DELETE_BEHAVIOR_PROPERTY: &str = "table.delete.behavior";
/// `table.changelog.image`.
pub const CHANGELOG_IMAGE_PROPERTY: &str = "table.changelog.image";
/// Default `listagg` delimiter.
pub const LISTAGG_DELIMITER_DEFAULT: &str = ",";

/// The fixed property names, and the two per-column patterns, for messages.
pub const PK_PROPERTY_NAMES: [&str; 6] = [
    MERGE_ENGINE_PROPERTY,
    VERSION_COLUMN_PROPERTY,
    DELETE_BEHAVIOR_PROPERTY,
    CHANGELOG_IMAGE_PROPERTY,
    "fields.<column>.agg",
    "fields.<column>.listagg.delimiter",
];

/// Whether `key` is a primary-key table property (so a catalog accepts it).
pub fn is_pk_property(key: &str) -> bool {
    PK_PROPERTY_NAMES[..4].contains(&key) || field_property(key).is_some()
}

/// `fields.<column>.agg` → `(column, Agg)`, `fields.<column>.listagg.delimiter` → Delimiter.
fn field_property(key: &str) -> Option<(&str, FieldProperty)> {
    let rest = key.strip_prefix("fields.")?;
    if let Some(column) = rest.strip_suffix(".listagg.delimiter") {
        return (!column.is_empty()).then_some((column, FieldProperty::Delimiter));
    }
    let column = rest.strip_suffix(".agg")?;
    (!column.is_empty()).then_some((column, FieldProperty::Agg))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FieldProperty {
    Agg,
    Delimiter,
}

/// How a new row for an existing key combines with the stored one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeEngine {
    /// The newest row replaces the stored one (Fluss's default).
    LastRow,
    /// The first row of a key is kept; later rows of that key are ignored.
    FirstRow,
    /// The row with the highest version is kept; a row whose version is lower than the
    /// stored one is ignored, an equal or higher one replaces it (Fluss: "greater than or
    /// equal"). Rows must carry a version (null → `PkError::VersionMissing`).
    Versioned {
        /// Index of the version column.
        column: usize,
    },
    /// Each non-key column is combined by its aggregate function.
    Aggregate {
        /// One per table column; `None` for key columns.
        functions: Vec<Option<AggFunction>>,
    },
}

/// An aggregate function of the `aggregation` merge engine. Null inputs leave the stored
/// value unchanged except for `last_value` and `first_value` (which keep nulls as values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AggFunction {
    /// `sum`: numeric columns (integers wrap like Java's; a decimal past its precision fails).
    Sum,
    /// `product`: integers and floats.
    Product,
    /// `min`: numbers, decimals, strings, dates, times, timestamps.
    Min,
    /// `max`: as `min`.
    Max,
    /// `last_value`: the newest value, null included.
    LastValue,
    /// `last_value_ignore_nulls`: the newest non-null value (the default).
    LastValueIgnoreNulls,
    /// `first_value`: the value of the first row of the key, null included.
    FirstValue,
    /// `first_value_ignore_nulls`: the first non-null value.
    FirstValueIgnoreNulls,
    /// `bool_and`: booleans.
    BoolAnd,
    /// `bool_or`: booleans.
    BoolOr,
    /// `listagg`: strings joined by `delimiter`.
    ListAgg {
        /// Text between values.
        delimiter: String,
    },
}

impl AggFunction {
    /// The names `fields.<column>.agg` accepts.
    pub const NAMES: [&'static str; 11] = [
        "sum",
        "product",
        "min",
        "max",
        "last_value",
        "last_value_ignore_nulls",
        "first_value",
        "first_value_ignore_nulls",
        "bool_and",
        "bool_or",
        "listagg",
    ];

    fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "sum" => Self::Sum,
            "product" => Self::Product,
            "min" => Self::Min,
            "max" => Self::Max,
            "last_value" => Self::LastValue,
            "last_value_ignore_nulls" => Self::LastValueIgnoreNulls,
            "first_value" => Self::FirstValue,
            "first_value_ignore_nulls" => Self::FirstValueIgnoreNulls,
            "bool_and" => Self::BoolAnd,
            "bool_or" => Self::BoolOr,
            "listagg" => Self::ListAgg { delimiter: LISTAGG_DELIMITER_DEFAULT.to_string() },
            _ => return None,
        })
    }

    fn fits(&self, data_type: &DataType) -> bool {
        let integer = matches!(
            data_type,
            DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64
        );
        let float = matches!(data_type, DataType::Float32 | DataType::Float64);
        match self {
            Self::Sum => integer || float || matches!(data_type, DataType::Decimal128(_, _)),
            Self::Product => integer || float,
            Self::Min | Self::Max => {
                is_int_like(data_type)
                    || float
                    || matches!(data_type, DataType::Decimal128(_, _) | DataType::Utf8)
            }
            Self::BoolAnd | Self::BoolOr => data_type == &DataType::Boolean,
            Self::ListAgg { .. } => data_type == &DataType::Utf8,
            _ => true,
        }
    }
}

/// What a delete does (`table.delete.behavior`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteBehavior {
    /// Deletes remove the row (`-D`).
    Allow,
    /// Deletes are dropped silently.
    Ignore,
    /// A request holding a delete is refused.
    Disable,
}

/// What the changelog holds for updates (`table.changelog.image`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangelogImage {
    /// `-U old` before `+U new`.
    Full,
    /// Only `+U new` (no before image). With the last-row engine and full-row upserts the
    /// stored value is not read at all and every upsert is a `+U` (as Fluss does).
    Wal,
}

/// A primary-key table's keys and merge rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkTableOptions {
    /// Primary-key columns, indexes into the schema, in key order.
    pub primary_key: Vec<usize>,
    /// Bucket-key columns (default: the primary key); a subset of the primary key.
    pub bucket_key: Vec<usize>,
    /// Whether the bucket key is the leading columns of the primary key, in order: then a
    /// lookup by bucket key is a byte-prefix scan of the encoded keys.
    pub bucket_key_is_prefix: bool,
    /// How rows of one key merge.
    pub merge_engine: MergeEngine,
    /// What deletes do.
    pub delete_behavior: DeleteBehavior,
    /// What the changelog holds for updates.
    pub changelog_image: ChangelogImage,
}

fn column_index(schema: &Schema, name: &str, what: &str) -> Result<usize, String> {
    schema.index_of(name).map_err(|_| format!("{what} {name:?} is not a column of the table"))
}

fn columns(schema: &Schema, names: &[String], what: &str) -> Result<Vec<usize>, String> {
    let mut indexes = Vec::with_capacity(names.len());
    for name in names {
        let index = column_index(schema, name, what)?;
        if indexes.contains(&index) {
            return Err(format!("{what} {name:?} is listed twice"));
        }
        indexes.push(index);
    }
    Ok(indexes)
}

impl PkTableOptions {
    /// Parses and validates a table definition. `properties` may hold other (log) properties;
    /// only keys for which [`is_pk_property`] holds are read. The error names the mistake.
    pub fn from_definition(
        schema: &Schema,
        primary_key: &[String],
        bucket_key: &[String],
        properties: &[(String, String)],
    ) -> Result<PkTableOptions, String> {
        if primary_key.is_empty() {
            return Err("a primary-key table needs at least one primary-key column".into());
        }
        let primary = columns(schema, primary_key, "primary-key column")?;
        for &index in &primary {
            let field = schema.field(index);
            if !has_key_encoding(field.data_type()) {
                return Err(format!(
                    "primary-key column {:?} has type {}, which cannot be a key (use a \
                     non-nested type)",
                    field.name(),
                    field.data_type()
                ));
            }
        }
        let bucket = if bucket_key.is_empty() {
            primary.clone()
        } else {
            columns(schema, bucket_key, "bucket-key column")?
        };
        if let Some(&outside) = bucket.iter().find(|index| !primary.contains(index)) {
            return Err(format!(
                "bucket-key column {:?} is not a primary-key column; the bucket key must be \
                 a subset of the primary key",
                schema.field(outside).name()
            ));
        }
        let bucket_key_is_prefix = primary.starts_with(&bucket);
        let property = |name: &str| {
            properties.iter().rev().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
        };
        let merge_engine = parse_merge_engine(schema, &primary, properties, property)?;
        let delete_behavior =
            parse_delete_behavior(&merge_engine, property(DELETE_BEHAVIOR_PROPERTY))?;
        let changelog_image = match property(CHANGELOG_IMAGE_PROPERTY) {
            None => ChangelogImage::Full,
            Some(value) if value.eq_ignore_ascii_case("full") => ChangelogImage::Full,
            Some(value) if value.eq_ignore_ascii_case("wal") => ChangelogImage::Wal,
            Some(value) => {
                return Err(format!("{CHANGELOG_IMAGE_PROPERTY} is {value:?}; use full or wal"))
            }
        };
        Ok(PkTableOptions {
            primary_key: primary,
            bucket_key: bucket,
            bucket_key_is_prefix,
            merge_engine,
            delete_behavior,
            changelog_image,
        })
    }
}

fn parse_merge_engine<'a>(
    schema: &Schema,
    primary: &[usize],
    properties: &'a [(String, String)],
    property: impl Fn(&str) -> Option<&'a str>,
) -> Result<MergeEngine, String> {
    let engine = property(MERGE_ENGINE_PROPERTY).map(str::to_ascii_lowercase);
    let version = property(VERSION_COLUMN_PROPERTY);
    let has_field_properties = properties.iter().any(|(key, _)| field_property(key).is_some());
    if version.is_some() && engine.as_deref() != Some("versioned") {
        return Err(format!("{VERSION_COLUMN_PROPERTY} needs {MERGE_ENGINE_PROPERTY} = versioned"));
    }
    if has_field_properties && engine.as_deref() != Some("aggregation") {
        return Err(format!(
            "fields.<column>.* properties need {MERGE_ENGINE_PROPERTY} = aggregation"
        ));
    }
    match engine.as_deref() {
        None | Some("last_row") => Ok(MergeEngine::LastRow),
        Some("first_row") => Ok(MergeEngine::FirstRow),
        Some("versioned") => {
            let name = version.ok_or_else(|| {
                format!("{MERGE_ENGINE_PROPERTY} = versioned needs {VERSION_COLUMN_PROPERTY}")
            })?;
            let column = column_index(schema, name, "version column")?;
            let data_type = schema.field(column).data_type();
            if !matches!(data_type, DataType::Int32 | DataType::Int64 | DataType::Timestamp(_, _)) {
                return Err(format!(
                    "version column {name:?} has type {data_type}; it must be INT, BIGINT, \
                     TIMESTAMP or TIMESTAMP_LTZ"
                ));
            }
            Ok(MergeEngine::Versioned { column })
        }
        Some("aggregation") => parse_aggregate(schema, primary, properties),
        Some(other) => Err(format!(
            "{MERGE_ENGINE_PROPERTY} is {other:?}; use first_row, versioned or aggregation \
             (or leave it out for last-row)"
        )),
    }
}

fn parse_aggregate(
    schema: &Schema,
    primary: &[usize],
    properties: &[(String, String)],
) -> Result<MergeEngine, String> {
    let mut functions: Vec<Option<AggFunction>> = (0..schema.fields().len())
        .map(|index| (!primary.contains(&index)).then_some(AggFunction::LastValueIgnoreNulls))
        .collect();
    let mut delimiters = Vec::new();
    for (key, value) in properties {
        let Some((name, kind)) = field_property(key) else { continue };
        let column = column_index(schema, name, &format!("{key}: column"))?;
        if primary.contains(&column) {
            return Err(format!("{key}: primary-key column {name:?} cannot have an aggregate"));
        }
        match kind {
            FieldProperty::Delimiter => delimiters.push((column, key, value)),
            FieldProperty::Agg => {
                let function = AggFunction::parse(value).ok_or_else(|| {
                    format!("{key} is {value:?}; use one of {}", AggFunction::NAMES.join(", "))
                })?;
                let data_type = schema.field(column).data_type();
                if !function.fits(data_type) {
                    return Err(format!(
                        "{key} = {value} does not apply to column {name:?} of type {data_type}"
                    ));
                }
                functions[column] = Some(function);
            }
        }
    }
    for (column, key, value) in delimiters {
        match &mut functions[column] {
            Some(AggFunction::ListAgg { delimiter }) => *delimiter = value.clone(),
            _ => return Err(format!("{key} needs fields.<column>.agg = listagg")),
        }
    }
    Ok(MergeEngine::Aggregate { functions })
}

fn parse_delete_behavior(
    engine: &MergeEngine,
    value: Option<&str>,
) -> Result<DeleteBehavior, String> {
    let default = match engine {
        MergeEngine::LastRow => DeleteBehavior::Allow,
        _ => DeleteBehavior::Ignore,
    };
    let behavior = match value {
        None => return Ok(default),
        Some(value) if value.eq_ignore_ascii_case("allow") => DeleteBehavior::Allow,
        Some(value) if value.eq_ignore_ascii_case("ignore") => DeleteBehavior::Ignore,
        Some(value) if value.eq_ignore_ascii_case("disable") => DeleteBehavior::Disable,
        Some(value) => {
            return Err(format!(
                "{DELETE_BEHAVIOR_PROPERTY} is {value:?}; use allow, ignore or disable"
            ))
        }
    };
    if behavior == DeleteBehavior::Allow
        && matches!(engine, MergeEngine::FirstRow | MergeEngine::Versioned { .. })
    {
        return Err(format!(
            "{DELETE_BEHAVIOR_PROPERTY} = allow is not supported by the first_row and versioned \
             merge engines; use ignore or disable"
        ));
    }
    Ok(behavior)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_schema::{Field, TimeUnit};

    use super::*;

    fn schema() -> Schema {
        let list = DataType::List(Arc::new(Field::new("item", DataType::Int32, true)));
        Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("region", DataType::Utf8, false),
            Field::new("n", DataType::Int32, true),
            Field::new("name", DataType::Utf8, true),
            Field::new("ok", DataType::Boolean, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
            Field::new("tags", list, true),
        ])
    }

    fn parse(
        key: &[&str],
        bucket: &[&str],
        properties: &[(&str, &str)],
    ) -> Result<PkTableOptions, String> {
        let strings =
            |names: &[&str]| names.iter().map(|name| name.to_string()).collect::<Vec<_>>();
        let properties: Vec<(String, String)> =
            properties.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect();
        PkTableOptions::from_definition(&schema(), &strings(key), &strings(bucket), &properties)
    }

    #[test]
    fn defaults_are_last_row_allow_full_and_bucket_by_primary_key() {
        let options = parse(&["region", "id"], &[], &[("table.log.ttl", "1d")]).unwrap();
        assert_eq!(options.primary_key, vec![1, 0]);
        assert_eq!(options.bucket_key, vec![1, 0]);
        assert!(options.bucket_key_is_prefix);
        assert_eq!(options.merge_engine, MergeEngine::LastRow);
        assert_eq!(options.delete_behavior, DeleteBehavior::Allow);
        assert_eq!(options.changelog_image, ChangelogImage::Full);
        let by_region = parse(&["region", "id"], &["region"], &[]).unwrap();
        assert!(by_region.bucket_key_is_prefix);
        let by_id = parse(&["region", "id"], &["id"], &[]).unwrap();
        assert!(!by_id.bucket_key_is_prefix);
    }

    #[test]
    fn engines_parse_with_their_fluss_defaults() {
        let first = parse(&["id"], &[], &[("table.merge-engine", "first_row")]).unwrap();
        assert_eq!(
            (first.merge_engine, first.delete_behavior),
            (MergeEngine::FirstRow, DeleteBehavior::Ignore)
        );
        let versioned = parse(
            &["id"],
            &[],
            &[
                ("table.merge-engine", "versioned"),
                ("table.merge-engine.versioned.ver-column", "ts"),
            ],
        )
        .unwrap();
        assert_eq!(versioned.merge_engine, MergeEngine::Versioned { column: 5 });
        let aggregate = parse(
            &["id"],
            &[],
            &[
                ("table.merge-engine", "aggregation"),
                ("fields.n.agg", "sum"),
                ("fields.name.agg", "listagg"),
                ("fields.name.listagg.delimiter", "|"),
                ("table.delete.behavior", "ALLOW"),
                ("table.changelog.image", "wal"),
            ],
        )
        .unwrap();
        let MergeEngine::Aggregate { functions } = aggregate.merge_engine else { panic!() };
        assert_eq!(functions[0], None);
        assert_eq!(functions[2], Some(AggFunction::Sum));
        assert_eq!(functions[3], Some(AggFunction::ListAgg { delimiter: "|".into() }));
        assert_eq!(functions[4], Some(AggFunction::LastValueIgnoreNulls));
        assert_eq!(aggregate.delete_behavior, DeleteBehavior::Allow);
        assert_eq!(aggregate.changelog_image, ChangelogImage::Wal);
    }

    #[test]
    fn mistakes_are_named() {
        let engine = ("table.merge-engine", "aggregation");
        for (key, bucket, properties, expected) in [
            (&["tags"][..], &[][..], &[][..], "cannot be a key"),
            (&["nope"], &[], &[], "\"nope\" is not a column"),
            (&["id", "id"], &[], &[], "listed twice"),
            (&["id"], &["region"], &[], "subset of the primary key"),
            (&["id"], &[], &[("table.merge-engine", "deduplicate")], "use first_row"),
            (
                &["id"],
                &[],
                &[("table.merge-engine", "versioned")],
                "needs table.merge-engine.versioned",
            ),
            (
                &["id"],
                &[],
                &[
                    ("table.merge-engine", "versioned"),
                    ("table.merge-engine.versioned.ver-column", "name"),
                ],
                "must be INT, BIGINT",
            ),
            (
                &["id"],
                &[],
                &[("table.merge-engine.versioned.ver-column", "ts")],
                "needs table.merge-engine = versioned",
            ),
            (
                &["id"],
                &[],
                &[("table.merge-engine", "first_row"), ("table.delete.behavior", "allow")],
                "not supported",
            ),
            (&["id"], &[], &[("table.delete.behavior", "maybe")], "use allow, ignore or disable"),
            (&["id"], &[], &[("table.changelog.image", "half")], "use full or wal"),
            (&["id"], &[], &[("fields.n.agg", "sum")], "need table.merge-engine = aggregation"),
            (
                &["id"],
                &[],
                &[engine, ("fields.name.agg", "sum")],
                "does not apply to column \"name\"",
            ),
            (&["id"], &[], &[engine, ("fields.n.agg", "bool_and")], "does not apply"),
            (&["id"], &[], &[engine, ("fields.ok.agg", "listagg")], "does not apply"),
            (&["id"], &[], &[engine, ("fields.n.agg", "median")], "use one of sum"),
            (&["id"], &[], &[engine, ("fields.id.agg", "sum")], "cannot have an aggregate"),
            (&["id"], &[], &[engine, ("fields.zz.agg", "sum")], "not a column"),
            (
                &["id"],
                &[],
                &[engine, ("fields.name.listagg.delimiter", ";")],
                "needs fields.<column>.agg = listagg",
            ),
        ] {
            let error = parse(key, bucket, properties).unwrap_err();
            assert!(error.contains(expected), "{properties:?}: {error}");
        }
    }

    #[test]
    fn pk_properties_are_recognised() {
        for key in [
            "table.merge-engine",
            "table.delete.behavior",
            "table.changelog.image",
            "fields.a.agg",
            "fields.a.listagg.delimiter",
            "table.merge-engine.versioned.ver-column",
        ] {
            assert!(is_pk_property(key), "{key}");
        }
        for key in ["table.log.ttl", "fields..agg", "fields.a", "merge-engine"] {
            assert!(!is_pk_property(key), "{key}");
        }
    }
}
