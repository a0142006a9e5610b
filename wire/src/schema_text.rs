//! Table schemas as text, in the SQL type names Apache Fluss and Flink users know:
//! `id BIGINT NOT NULL, name STRING, ts TIMESTAMP(3), tags ARRAY<STRING>`.
//!
//! This is the schema's form in the protocol (create and describe table) and in the CLI:
//! one parser, written here, that refuses anything else with a message saying where.
//!
//! | text | Arrow |
//! |---|---|
//! | `BOOLEAN` | Boolean |
//! | `TINYINT` `SMALLINT` `INT`/`INTEGER` `BIGINT` | Int8 Int16 Int32 Int64 |
//! | `FLOAT` `DOUBLE` | Float32 Float64 |
//! | `DECIMAL(p, s)` (default 10, 0; p ≤ 38) | Decimal128(p, s) |
//! | `STRING` | Utf8 |
//! | `BYTES` | Binary |
//! | `BINARY(n)` | FixedSizeBinary(n) |
//! | `DATE` | Date32 |
//! | `TIME(p)` (default 0) | Time32(s/ms) for p ≤ 3, Time64(µs/ns) above |
//! | `TIMESTAMP(p)` (default 6) | Timestamp(unit for p), no time zone |
//! | `TIMESTAMP_LTZ(p)` (default 6) | Timestamp(unit for p, "UTC") |
//! | `ARRAY<T>` | List(item: T) |
//! | `MAP<K, V>` | Map(entries: Struct(key: K not null, value: V)) |
//! | `ROW<name T, ...>` | Struct |
//!
//! Columns and nested types are nullable unless followed by `NOT NULL`. Keywords are case
//! insensitive; names keep their case and may be quoted with backticks.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, Schema, TimeUnit};

use crate::limits::TYPE_NESTING_DEPTH_MAX;

/// Most columns a schema may have.
pub const SCHEMA_COLUMN_COUNT_MAX: usize = 4096;
/// Longest column name.
pub const COLUMN_NAME_SIZE_MAX_BYTES: usize = 255;

/// A schema text that does not parse, or an Arrow type with no text form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at byte {position} of the schema)")]
pub struct SchemaTextError {
    /// What is wrong.
    pub message: String,
    /// Byte position in the text (0 for printing errors).
    pub position: usize,
}

/// Parses a schema text into an Arrow schema.
pub fn parse_schema(text: &str) -> Result<Schema, SchemaTextError> {
    let mut parser = Parser { text, at: 0 };
    let fields = parser.columns(0, None)?;
    parser.skip_space();
    if parser.at != text.len() {
        return Err(parser.error("unexpected text after the last column"));
    }
    Ok(Schema::new(fields))
}

/// Prints an Arrow schema as schema text; fails for types the text cannot express.
pub fn format_schema(schema: &Schema) -> Result<String, SchemaTextError> {
    let columns: Result<Vec<String>, SchemaTextError> =
        schema.fields().iter().map(|field| format_column(field)).collect();
    Ok(columns?.join(", "))
}

fn format_column(field: &Field) -> Result<String, SchemaTextError> {
    Ok(format!(
        "{} {}",
        format_name(field.name()),
        format_type(field.data_type(), field.is_nullable())?
    ))
}

fn format_name(name: &str) -> String {
    let plain = !name.is_empty()
        && name.chars().next().is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && name.chars().all(|character| character.is_ascii_alphanumeric() || character == '_')
        && keyword_of(name).is_none();
    if plain {
        name.to_string()
    } else {
        format!("`{name}`")
    }
}

fn precision_of(unit: TimeUnit) -> u8 {
    match unit {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 3,
        TimeUnit::Microsecond => 6,
        TimeUnit::Nanosecond => 9,
    }
}

fn format_type(data_type: &DataType, nullable: bool) -> Result<String, SchemaTextError> {
    let text = match data_type {
        DataType::Boolean => "BOOLEAN".to_string(),
        DataType::Int8 => "TINYINT".to_string(),
        DataType::Int16 => "SMALLINT".to_string(),
        DataType::Int32 => "INT".to_string(),
        DataType::Int64 => "BIGINT".to_string(),
        DataType::Float32 => "FLOAT".to_string(),
        DataType::Float64 => "DOUBLE".to_string(),
        DataType::Decimal128(precision, scale) if *scale >= 0 => {
            format!("DECIMAL({precision}, {scale})")
        }
        DataType::Utf8 => "STRING".to_string(),
        DataType::Binary => "BYTES".to_string(),
        DataType::FixedSizeBinary(size) => format!("BINARY({size})"),
        DataType::Date32 => "DATE".to_string(),
        DataType::Time32(unit) | DataType::Time64(unit) => format!("TIME({})", precision_of(*unit)),
        DataType::Timestamp(unit, None) => format!("TIMESTAMP({})", precision_of(*unit)),
        DataType::Timestamp(unit, Some(zone)) if zone.as_ref() == "UTC" => {
            format!("TIMESTAMP_LTZ({})", precision_of(*unit))
        }
        DataType::List(item) if item.name() == "item" => {
            format!("ARRAY<{}>", format_type(item.data_type(), item.is_nullable())?)
        }
        DataType::Map(entries, false) => match entries.data_type() {
            DataType::Struct(children) if children.len() == 2 && !children[0].is_nullable() => {
                format!(
                    "MAP<{}, {}>",
                    format_type(children[0].data_type(), false)?.trim_end_matches(" NOT NULL"),
                    format_type(children[1].data_type(), children[1].is_nullable())?
                )
            }
            _ => return Err(unprintable(data_type)),
        },
        DataType::Struct(children) => {
            let columns: Result<Vec<String>, SchemaTextError> =
                children.iter().map(|child| format_column(child)).collect();
            format!("ROW<{}>", columns?.join(", "))
        }
        other => return Err(unprintable(other)),
    };
    Ok(if nullable { text } else { format!("{text} NOT NULL") })
}

fn unprintable(data_type: &DataType) -> SchemaTextError {
    SchemaTextError { message: format!("type {data_type} has no schema text form"), position: 0 }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keyword {
    Boolean,
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    Float,
    Double,
    Decimal,
    String,
    Bytes,
    Binary,
    Date,
    Time,
    Timestamp,
    TimestampLtz,
    Array,
    Map,
    Row,
    Not,
    Null,
}

fn keyword_of(word: &str) -> Option<Keyword> {
    Some(match word.to_ascii_uppercase().as_str() {
        "BOOLEAN" => Keyword::Boolean,
        "TINYINT" => Keyword::TinyInt,
        "SMALLINT" => Keyword::SmallInt,
        "INT" | "INTEGER" => Keyword::Int,
        "BIGINT" => Keyword::BigInt,
        "FLOAT" => Keyword::Float,
        "DOUBLE" => Keyword::Double,
        "DECIMAL" => Keyword::Decimal,
        "STRING" => Keyword::String,
        "BYTES" => Keyword::Bytes,
        "BINARY" => Keyword::Binary,
        "DATE" => Keyword::Date,
        "TIME" => Keyword::Time,
        "TIMESTAMP" => Keyword::Timestamp,
        "TIMESTAMP_LTZ" => Keyword::TimestampLtz,
        "ARRAY" => Keyword::Array,
        "MAP" => Keyword::Map,
        "ROW" => Keyword::Row,
        "NOT" => Keyword::Not,
        "NULL" => Keyword::Null,
        _ => return None,
    })
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
}

impl Parser<'_> {
    fn error(&self, message: impl Into<String>) -> SchemaTextError {
        SchemaTextError { message: message.into(), position: self.at }
    }

    fn skip_space(&mut self) {
        while self.text[self.at..].starts_with(|character: char| character.is_whitespace()) {
            self.at += self.text[self.at..].chars().next().map_or(1, char::len_utf8);
        }
    }

    fn eat(&mut self, symbol: char) -> bool {
        self.skip_space();
        if self.text[self.at..].starts_with(symbol) {
            self.at += symbol.len_utf8();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, symbol: char) -> Result<(), SchemaTextError> {
        if self.eat(symbol) {
            Ok(())
        } else {
            Err(self.error(format!("expected `{symbol}`")))
        }
    }

    /// A bare word (letters, digits, `_`) or a backtick-quoted name.
    fn word(&mut self) -> Result<(String, bool), SchemaTextError> {
        self.skip_space();
        let rest = &self.text[self.at..];
        if let Some(quoted) = rest.strip_prefix('`') {
            let Some(end) = quoted.find('`') else {
                return Err(self.error("unterminated quoted name"));
            };
            self.at += end + 2;
            return Ok((quoted[..end].to_string(), true));
        }
        let len = rest
            .find(|character: char| !(character.is_ascii_alphanumeric() || character == '_'))
            .unwrap_or(rest.len());
        if len == 0 {
            return Err(self.error("expected a name or a type"));
        }
        self.at += len;
        Ok((rest[..len].to_string(), false))
    }

    fn number(&mut self, what: &str) -> Result<u32, SchemaTextError> {
        self.skip_space();
        let rest = &self.text[self.at..];
        let len = rest.find(|character: char| !character.is_ascii_digit()).unwrap_or(rest.len());
        let value =
            rest[..len].parse::<u32>().map_err(|_| self.error(format!("expected the {what}")))?;
        self.at += len;
        Ok(value)
    }

    fn optional_number(&mut self, what: &str) -> Result<Option<u32>, SchemaTextError> {
        if !self.eat('(') {
            return Ok(None);
        }
        let value = self.number(what)?;
        self.expect(')')?;
        Ok(Some(value))
    }

    /// Columns up to the end of the text, or up to (not including) `until`.
    fn columns(
        &mut self,
        depth: usize,
        until: Option<char>,
    ) -> Result<Vec<Field>, SchemaTextError> {
        let mut fields: Vec<Field> = Vec::new();
        loop {
            let (name, _) = self.word()?;
            if name.is_empty() || name.len() > COLUMN_NAME_SIZE_MAX_BYTES {
                return Err(self
                    .error(format!("column names have 1 to {COLUMN_NAME_SIZE_MAX_BYTES} bytes")));
            }
            if fields.iter().any(|field| field.name() == &name) {
                return Err(self.error(format!("column {name:?} appears twice")));
            }
            if fields.len() == SCHEMA_COLUMN_COUNT_MAX {
                return Err(self.error(format!("more than {SCHEMA_COLUMN_COUNT_MAX} columns")));
            }
            let (data_type, nullable) = self.typed(depth)?;
            fields.push(Field::new(name, data_type, nullable));
            self.skip_space();
            let at_end = match until {
                Some(close) => self.text[self.at..].starts_with(close),
                None => self.at == self.text.len(),
            };
            if at_end {
                return Ok(fields);
            }
            self.expect(',')?;
        }
    }

    /// A type and its nullability.
    fn typed(&mut self, depth: usize) -> Result<(DataType, bool), SchemaTextError> {
        if depth > TYPE_NESTING_DEPTH_MAX {
            return Err(
                self.error(format!("types nest deeper than {TYPE_NESTING_DEPTH_MAX} levels"))
            );
        }
        let start = self.at;
        let (word, quoted) = self.word()?;
        let keyword = if quoted { None } else { keyword_of(&word) };
        let data_type = match keyword {
            Some(Keyword::Boolean) => DataType::Boolean,
            Some(Keyword::TinyInt) => DataType::Int8,
            Some(Keyword::SmallInt) => DataType::Int16,
            Some(Keyword::Int) => DataType::Int32,
            Some(Keyword::BigInt) => DataType::Int64,
            Some(Keyword::Float) => DataType::Float32,
            Some(Keyword::Double) => DataType::Float64,
            Some(Keyword::String) => DataType::Utf8,
            Some(Keyword::Bytes) => DataType::Binary,
            Some(Keyword::Date) => DataType::Date32,
            Some(Keyword::Decimal) => self.decimal()?,
            Some(Keyword::Binary) => self.fixed_size_binary()?,
            Some(Keyword::Time) => {
                let precision = self.precision(0)?;
                let unit = unit_of(precision);
                if precision <= 3 {
                    DataType::Time32(unit)
                } else {
                    DataType::Time64(unit)
                }
            }
            Some(Keyword::Timestamp) => DataType::Timestamp(unit_of(self.precision(6)?), None),
            Some(Keyword::TimestampLtz) => {
                DataType::Timestamp(unit_of(self.precision(6)?), Some("UTC".into()))
            }
            Some(Keyword::Array) => {
                self.expect('<')?;
                let (item, nullable) = self.typed(depth + 1)?;
                self.expect('>')?;
                DataType::List(Arc::new(Field::new("item", item, nullable)))
            }
            Some(Keyword::Map) => self.map(depth)?,
            Some(Keyword::Row) => {
                self.expect('<')?;
                let children = self.columns(depth + 1, Some('>'))?;
                self.expect('>')?;
                DataType::Struct(Fields::from(children))
            }
            Some(Keyword::Not | Keyword::Null) | None => {
                self.at = start;
                return Err(self.error(format!("unknown type {word:?}")));
            }
        };
        Ok((data_type, self.nullability()?))
    }

    /// `BINARY` and its optional size (1 if none).
    fn fixed_size_binary(&mut self) -> Result<DataType, SchemaTextError> {
        let size = self.optional_number("binary size")?.unwrap_or(1);
        let size = i32::try_from(size)
            .ok()
            .filter(|size| *size > 0)
            .ok_or_else(|| self.error("BINARY size must be positive"))?;
        Ok(DataType::FixedSizeBinary(size))
    }

    /// `MAP<key, value>` after the keyword, the map at nesting `depth`: keys are not null.
    fn map(&mut self, depth: usize) -> Result<DataType, SchemaTextError> {
        self.expect('<')?;
        let (key, _) = self.typed(depth + 1)?;
        self.expect(',')?;
        let (value, nullable) = self.typed(depth + 1)?;
        self.expect('>')?;
        let entries =
            Fields::from(vec![Field::new("key", key, false), Field::new("value", value, nullable)]);
        Ok(DataType::Map(Arc::new(Field::new("entries", DataType::Struct(entries), false)), false))
    }

    fn decimal(&mut self) -> Result<DataType, SchemaTextError> {
        let (precision, scale) = if self.eat('(') {
            let precision = self.number("decimal precision")?;
            let scale = if self.eat(',') { self.number("decimal scale")? } else { 0 };
            self.expect(')')?;
            (precision, scale)
        } else {
            (10, 0)
        };
        if !(1..=38).contains(&precision) || scale > precision {
            return Err(self.error(format!(
                "DECIMAL({precision}, {scale}) needs 1 <= precision <= 38 and scale <= precision"
            )));
        }
        Ok(DataType::Decimal128(precision as u8, scale as i8))
    }

    fn precision(&mut self, default: u32) -> Result<u32, SchemaTextError> {
        let precision = self.optional_number("precision")?.unwrap_or(default);
        if precision > 9 {
            return Err(self.error(format!("precision {precision} is over 9")));
        }
        Ok(precision)
    }

    /// `NOT NULL`, `NULL` or nothing (nullable).
    fn nullability(&mut self) -> Result<bool, SchemaTextError> {
        self.skip_space();
        let save = self.at;
        let Ok((word, false)) = self.word() else {
            self.at = save;
            return Ok(true);
        };
        match keyword_of(&word) {
            Some(Keyword::Not) => {
                let (next, _) = self.word()?;
                if keyword_of(&next) != Some(Keyword::Null) {
                    return Err(self.error("expected NULL after NOT"));
                }
                Ok(false)
            }
            Some(Keyword::Null) => Ok(true),
            _ => {
                self.at = save;
                Ok(true)
            }
        }
    }
}

fn unit_of(precision: u32) -> TimeUnit {
    match precision {
        0 => TimeUnit::Second,
        1..=3 => TimeUnit::Millisecond,
        4..=6 => TimeUnit::Microsecond,
        _ => TimeUnit::Nanosecond,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_example_parses_to_arrow() {
        let schema = parse_schema("id BIGINT NOT NULL, name STRING, ts TIMESTAMP(3)").unwrap();
        assert_eq!(schema.field(0), &Field::new("id", DataType::Int64, false));
        assert_eq!(schema.field(1), &Field::new("name", DataType::Utf8, true));
        assert_eq!(
            schema.field(2),
            &Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true)
        );
        assert_eq!(
            format_schema(&schema).unwrap(),
            "id BIGINT NOT NULL, name STRING, ts TIMESTAMP(3)"
        );
    }

    #[test]
    fn nested_types_round_trip() {
        let text = "`order id` BIGINT NOT NULL, tags ARRAY<STRING NOT NULL>, \
                    attrs MAP<STRING, DOUBLE>, who ROW<first STRING, age INT NOT NULL> NOT NULL, \
                    price DECIMAL(12, 2), at TIMESTAMP_LTZ(9), t TIME(3), d DATE, b BINARY(16), raw BYTES";
        let schema = parse_schema(text).unwrap();
        let printed = format_schema(&schema).unwrap();
        assert_eq!(parse_schema(&printed).unwrap(), schema);
        assert!(printed.starts_with("`order id` BIGINT NOT NULL"));
    }

    #[test]
    fn mistakes_are_errors_that_say_where() {
        for (text, expected) in [
            ("", "expected a name"),
            ("id", "expected a name or a type"),
            ("id BIGINTEGER", "unknown type"),
            ("id BIGINT NOT", "expected a name"),
            ("id BIGINT,", "expected a name"),
            ("id BIGINT, id INT", "appears twice"),
            ("d DECIMAL(40, 2)", "precision <= 38"),
            ("t TIMESTAMP(12)", "over 9"),
            ("a ARRAY<INT", "expected `>`"),
            ("a INT b INT", "expected `,`"),
            ("`open INT", "unterminated"),
        ] {
            let error = parse_schema(text).unwrap_err();
            assert!(error.message.contains(expected), "{text:?}: {error}");
        }
        let deep = format!("x {}INT{}", "ARRAY<".repeat(40), ">".repeat(40));
        assert!(parse_schema(&deep).unwrap_err().message.contains("nest deeper"));
    }
}
