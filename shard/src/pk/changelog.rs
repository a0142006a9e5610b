//! `ChangelogGenerator`: a write request and the stored rows of its keys in, the changelog
//! to append and the KV mutations to apply out (stream-table duality).
//!
//! Invariants:
//! - nothing is half-applied: a request is validated completely before any output is built,
//!   and `generate` returns either the whole output or an error;
//! - changelog rows are full rows after merging, so replaying `+I`/`+U` as puts and `-D` as
//!   deletes in log order rebuilds the KV exactly (`replay_mutations`);
//! - rows of one key inside one request see the effect of the earlier rows.
//!
//! Full image: new key → `+I new`; changed key → `-U old`, `+U new`; deleted key → `-D old`;
//! merged row equal to the stored one, or delete of a missing key → nothing. WAL image: the
//! same without `-U`; with the last-row engine and full-row upserts only, no stored row is
//! read and every upsert is `+U new` (Fluss's WAL optimisation).

use std::collections::{HashMap, HashSet};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use ufer_wire::ChangeType;

use super::error::PkError;
use super::key::KeyEncoder;
use super::merge::{self, Deleted, Upserted};
use super::options::{ChangelogImage, DeleteBehavior, MergeEngine, PkTableOptions};
use super::row::RowCodec;
use super::value::{value_at, Value};

/// A KV mutation: an encoded key and its new stored value (`None`: delete the key).
pub type Mutation = (Vec<u8>, Option<Vec<u8>>);

/// What a row of a write request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowOp {
    /// Insert or update the row of its key.
    Upsert,
    /// Delete the row of its key (only key columns, and target columns, are read).
    Delete,
}

/// One write to a primary-key table.
#[derive(Debug, Clone, Copy)]
pub struct WriteRequest<'a> {
    /// Rows in the table schema. For a partial update, non-target columns are ignored (send
    /// nulls).
    pub batch: &'a RecordBatch,
    /// One op per row; `None`: every row is an upsert.
    pub ops: Option<&'a [RowOp]>,
    /// Partial update: the columns written (must include every key column); `None`: all.
    pub target_columns: Option<&'a [usize]>,
}

/// The result of a write request.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangelogOutput {
    /// Changelog rows in the table schema; `None` when nothing changed.
    pub changelog: Option<RecordBatch>,
    /// One change type per changelog row.
    pub change_types: Vec<ChangeType>,
    /// The final stored value of each key the request changed (logged a row for), in the
    /// order keys first appear in the request; `None` deletes the key. Keys whose rows were
    /// all ignored or equal to the stored row have no mutation.
    pub mutations: Vec<Mutation>,
}

/// Turns write requests into changelogs and KV mutations for one table schema.
#[derive(Debug, Clone)]
pub struct ChangelogGenerator {
    schema: SchemaRef,
    options: PkTableOptions,
    keys: KeyEncoder,
    rows: RowCodec,
}

/// A request that passed validation: targets as a mask, ops per row.
struct Checked {
    ops: Vec<RowOp>,
    targets: Option<Vec<bool>>,
    keys: Vec<Vec<u8>>,
}

/// The changelog rows `generate` has produced so far.
#[derive(Default)]
struct Log {
    rows: Vec<Vec<Value>>,
    change_types: Vec<ChangeType>,
}

impl Log {
    fn emit(&mut self, change: ChangeType, row: &[Value]) {
        self.change_types.push(change);
        self.rows.push(row.to_vec());
    }
}

/// The state of one key during `generate`.
struct Slot {
    key: Vec<u8>,
    row: Option<Vec<Value>>,
    changed: bool,
}

impl ChangelogGenerator {
    /// A generator for rows of `schema` (stamped `schema_id`) under `options`.
    pub fn new(schema_id: u16, schema: SchemaRef, options: PkTableOptions) -> Result<Self, String> {
        let keys = KeyEncoder::new(&schema, &options.primary_key)?;
        let rows = RowCodec::new(schema_id, schema.clone())?;
        if let MergeEngine::Aggregate { functions } = &options.merge_engine {
            if functions.len() != schema.fields().len() {
                return Err("aggregate functions do not match the schema's columns".into());
            }
        }
        Ok(Self { schema, options, keys, rows })
    }

    /// The table's options.
    pub fn options(&self) -> &PkTableOptions {
        &self.options
    }

    /// The key encoder of the table.
    pub fn key_encoder(&self) -> &KeyEncoder {
        &self.keys
    }

    /// The row codec of the table.
    pub fn row_codec(&self) -> &RowCodec {
        &self.rows
    }

    /// Whether this request needs no stored rows (WAL image, last-row, full-row upserts).
    fn skips_read(&self, checked: &Checked) -> bool {
        self.options.changelog_image == ChangelogImage::Wal
            && self.options.merge_engine == MergeEngine::LastRow
            && checked.targets.is_none()
            && checked.ops.iter().all(|op| *op == RowOp::Upsert)
    }

    /// Validates the request fully and returns the distinct encoded keys whose stored values
    /// `generate` needs, in first-touch order (empty when no read is needed).
    pub fn keys_to_read(&self, request: &WriteRequest<'_>) -> Result<Vec<Vec<u8>>, PkError> {
        let checked = self.check(request)?;
        if self.skips_read(&checked) {
            return Ok(Vec::new());
        }
        let mut seen = HashSet::new();
        let mut distinct = Vec::new();
        for key in checked.keys {
            if seen.insert(key.clone()) {
                distinct.push(key);
            }
        }
        Ok(distinct)
    }

    fn check(&self, request: &WriteRequest<'_>) -> Result<Checked, PkError> {
        let batch = request.batch;
        let fields = self.schema.fields();
        self.check_columns(batch)?;
        let row_count = batch.num_rows();
        let ops = match request.ops {
            None => vec![RowOp::Upsert; row_count],
            Some(ops) if ops.len() == row_count => ops.to_vec(),
            Some(ops) => {
                return Err(PkError::SchemaMismatch(format!(
                    "{} ops for {row_count} rows",
                    ops.len()
                )))
            }
        };
        let targets =
            request.target_columns.map(|targets| self.check_targets(targets)).transpose()?;
        if self.options.delete_behavior == DeleteBehavior::Disable && ops.contains(&RowOp::Delete) {
            return Err(PkError::DeleteDisabled);
        }
        self.check_not_null(batch, &ops, targets.as_deref())?;
        let mut keys = Vec::with_capacity(row_count);
        for (row, op) in ops.iter().enumerate() {
            let mut key = Vec::new();
            self.keys.encode(batch, row, &mut key)?;
            keys.push(key);
            if let (MergeEngine::Versioned { column }, RowOp::Upsert) =
                (&self.options.merge_engine, op)
            {
                if batch.column(*column).is_null(row) {
                    return Err(PkError::VersionMissing {
                        row,
                        column: fields[*column].name().clone(),
                    });
                }
            }
        }
        Ok(Checked { ops, targets, keys })
    }

    /// The batch has the table's column names and types (nullability and metadata aside).
    fn check_columns(&self, batch: &RecordBatch) -> Result<(), PkError> {
        let fields = self.schema.fields();
        let batch_fields = batch.schema_ref().fields().clone();
        if batch_fields.len() != fields.len() {
            return Err(PkError::SchemaMismatch(format!(
                "the batch has {} columns, the table {}",
                batch_fields.len(),
                fields.len()
            )));
        }
        for (table, given) in fields.iter().zip(batch_fields.iter()) {
            if table.name() != given.name() || table.data_type() != given.data_type() {
                return Err(PkError::SchemaMismatch(format!(
                    "column {:?} {} was sent as {:?} {}",
                    table.name(),
                    table.data_type(),
                    given.name(),
                    given.data_type()
                )));
            }
        }
        Ok(())
    }

    /// Upserted rows hold values in every NOT NULL column they write; the batch's own
    /// schema may have declared such a column nullable.
    fn check_not_null(
        &self,
        batch: &RecordBatch,
        ops: &[RowOp],
        targets: Option<&[bool]>,
    ) -> Result<(), PkError> {
        for (column, field) in self.schema.fields().iter().enumerate() {
            let array = batch.column(column);
            if field.is_nullable()
                || array.null_count() == 0
                || targets.is_some_and(|targets| !targets[column])
            {
                continue;
            }
            let is_key = self.options.primary_key.contains(&column);
            for (row, op) in ops.iter().enumerate() {
                if array.is_null(row) && (*op == RowOp::Upsert || is_key) {
                    return Err(PkError::NullInNotNullColumn { column: field.name().clone(), row });
                }
            }
        }
        Ok(())
    }

    fn check_targets(&self, targets: &[usize]) -> Result<Vec<bool>, PkError> {
        let fields = self.schema.fields();
        if matches!(
            self.options.merge_engine,
            MergeEngine::FirstRow | MergeEngine::Versioned { .. }
        ) {
            return Err(PkError::PartialUpdateRefused(
                "the first_row and versioned merge engines take full rows only".into(),
            ));
        }
        let mut mask = vec![false; fields.len()];
        for &column in targets {
            let Some(slot) = mask.get_mut(column) else {
                return Err(PkError::PartialUpdateRefused(format!(
                    "target column {column} is not in the table ({} columns)",
                    fields.len()
                )));
            };
            if *slot {
                return Err(PkError::PartialUpdateRefused(format!(
                    "target column {column} is listed twice"
                )));
            }
            *slot = true;
        }
        let missing: Vec<String> = self
            .options
            .primary_key
            .iter()
            .filter(|column| !mask[**column])
            .map(|column| fields[*column].name().clone())
            .collect();
        if !missing.is_empty() {
            return Err(PkError::PartialUpdateWithoutKey { missing });
        }
        if let Some(field) =
            fields.iter().zip(&mask).find(|(field, target)| !**target && !field.is_nullable())
        {
            return Err(PkError::PartialUpdateRefused(format!(
                "column {:?} is NOT NULL, so every partial update must target it",
                field.0.name()
            )));
        }
        Ok(mask)
    }

    /// The changelog and mutations of `request`, given the stored values of the keys
    /// `keys_to_read` returned, in the same order (`None`: the key holds nothing).
    pub fn generate(
        &self,
        request: &WriteRequest<'_>,
        current: &[Option<Vec<u8>>],
    ) -> Result<ChangelogOutput, PkError> {
        let checked = self.check(request)?;
        let skip_read = self.skips_read(&checked);
        let (mut slots, slot_of_row) = self.slots(&checked, skip_read, current)?;
        let full = self.options.changelog_image == ChangelogImage::Full;
        let fields = self.schema.fields();
        let targets = checked.targets.as_deref();
        let mut log = Log::default();
        for (row, op) in checked.ops.iter().enumerate() {
            let slot = &mut slots[slot_of_row[row]];
            let input = self.input_row(request.batch, row, targets)?;
            let next = match op {
                RowOp::Upsert if skip_read => {
                    log.emit(ChangeType::UpdateAfter, &input);
                    slot.changed = true;
                    slot.row = Some(input);
                    continue;
                }
                RowOp::Upsert => {
                    match merge::upsert(&self.options, fields, slot.row.as_deref(), input, targets)?
                    {
                        Upserted::Keep => continue,
                        Upserted::Row(merged) => Some(merged),
                    }
                }
                RowOp::Delete => match slot.row.as_deref() {
                    None => continue,
                    Some(old) => match merge::delete(&self.options, old, targets) {
                        Deleted::Ignore => continue,
                        Deleted::Remove => None,
                        Deleted::Row(row) => Some(row),
                    },
                },
            };
            self.record(slot, next, full, &mut log)?;
        }
        let output = self.output(slots, &log.rows, log.change_types)?;
        debug_assert_eq!(
            self.check_changelog(&log.rows, &output.change_types, &output.mutations, full),
            Ok(()),
            "the changelog of a request replays to its mutations"
        );
        Ok(output)
    }

    /// The module's invariants on one request's output, row by row (so `generate` checks
    /// them in debug builds only): every `-U` (full image only) is followed at once by the
    /// `+U` of the same key, and replaying the rows in order (`+I`/`+U` put, `-D` delete)
    /// leaves each key exactly its mutation, and every changed key has one.
    fn check_changelog(
        &self,
        rows: &[Vec<Value>],
        changes: &[ChangeType],
        mutations: &[Mutation],
        full: bool,
    ) -> Result<(), String> {
        let mut keys = Vec::with_capacity(rows.len());
        for (index, row) in rows.iter().enumerate() {
            let mut key = Vec::new();
            self.keys.encode_values(row, index, &mut key).map_err(|error| error.to_string())?;
            keys.push(key);
        }
        let mut last_row_of: HashMap<&[u8], usize> = HashMap::new();
        for (index, change) in changes.iter().enumerate() {
            match change {
                ChangeType::UpdateBefore => {
                    let paired = changes.get(index + 1) == Some(&ChangeType::UpdateAfter)
                        && keys.get(index + 1) == Some(&keys[index]);
                    if !full || !paired {
                        return Err(format!("row {index}: -U without its +U right after it"));
                    }
                }
                ChangeType::AppendOnly => return Err(format!("row {index} is +A")),
                _ => {
                    last_row_of.insert(&keys[index], index);
                }
            }
        }
        if last_row_of.len() != mutations.len() {
            let count = last_row_of.len();
            return Err(format!("{count} keys logged, {} mutations", mutations.len()));
        }
        for (key, value) in mutations {
            let Some(&index) = last_row_of.get(key.as_slice()) else {
                return Err(format!("a mutation of key {key:?}, which logged nothing"));
            };
            let replayed = match changes[index] {
                ChangeType::Delete => None,
                _ => {
                    let mut bytes = Vec::new();
                    self.rows.encode_values(&rows[index], &mut bytes).map_err(|e| e.to_string())?;
                    Some(bytes)
                }
            };
            if replayed != *value {
                return Err(format!("row {index} replays to another value than its mutation"));
            }
        }
        Ok(())
    }

    /// One slot per distinct key in first-touch order, holding its decoded stored row, and
    /// the slot of each request row.
    fn slots(
        &self,
        checked: &Checked,
        skip_read: bool,
        current: &[Option<Vec<u8>>],
    ) -> Result<(Vec<Slot>, Vec<usize>), PkError> {
        let mut slots: Vec<Slot> = Vec::new();
        let mut slot_of: HashMap<&[u8], usize> = HashMap::new();
        let mut slot_of_row = Vec::with_capacity(checked.keys.len());
        for key in &checked.keys {
            let slot = *slot_of.entry(key.as_slice()).or_insert_with(|| {
                slots.push(Slot { key: key.clone(), row: None, changed: false });
                slots.len() - 1
            });
            slot_of_row.push(slot);
        }
        let expected = if skip_read { 0 } else { slots.len() };
        if current.len() != expected {
            return Err(PkError::CurrentValuesMismatch { expected, given: current.len() });
        }
        for (slot, stored) in slots.iter_mut().zip(current) {
            slot.row = stored.as_deref().map(|bytes| self.rows.decode_values(bytes)).transpose()?;
        }
        Ok((slots, slot_of_row))
    }

    /// Moves `slot` to `next` (`None`: no row) and logs the change, if any.
    fn record(
        &self,
        slot: &mut Slot,
        next: Option<Vec<Value>>,
        full: bool,
        log: &mut Log,
    ) -> Result<(), PkError> {
        match (slot.row.take(), next) {
            (None, Some(new)) => {
                log.emit(ChangeType::Insert, &new);
                slot.row = Some(new);
                slot.changed = true;
            }
            (Some(old), None) => {
                log.emit(ChangeType::Delete, &old);
                slot.changed = true;
            }
            (Some(old), Some(new)) => {
                if !self.same_row(&old, &new)? {
                    if full {
                        log.emit(ChangeType::UpdateBefore, &old);
                    }
                    log.emit(ChangeType::UpdateAfter, &new);
                    slot.changed = true;
                }
                slot.row = Some(new);
            }
            (None, None) => {}
        }
        Ok(())
    }

    fn output(
        &self,
        slots: Vec<Slot>,
        out_rows: &[Vec<Value>],
        change_types: Vec<ChangeType>,
    ) -> Result<ChangelogOutput, PkError> {
        let mut mutations = Vec::new();
        for slot in slots.into_iter().filter(|slot| slot.changed) {
            let value = match &slot.row {
                None => None,
                Some(row) => {
                    let mut bytes = Vec::new();
                    self.rows.encode_values(row, &mut bytes)?;
                    Some(bytes)
                }
            };
            mutations.push((slot.key, value));
        }
        assert_eq!(out_rows.len(), change_types.len(), "one change type per changelog row");
        let changelog =
            if out_rows.is_empty() { None } else { Some(self.rows.build_batch(out_rows)?) };
        Ok(ChangelogOutput { changelog, change_types, mutations })
    }

    /// Whether two rows store identical bytes (so no change is logged).
    fn same_row(&self, old: &[Value], new: &[Value]) -> Result<bool, PkError> {
        let (mut old_bytes, mut new_bytes) = (Vec::new(), Vec::new());
        self.rows.encode_values(old, &mut old_bytes)?;
        self.rows.encode_values(new, &mut new_bytes)?;
        Ok(old_bytes == new_bytes)
    }

    /// Row `row` of the batch, with non-target columns null.
    fn input_row(
        &self,
        batch: &RecordBatch,
        row: usize,
        targets: Option<&[bool]>,
    ) -> Result<Vec<Value>, PkError> {
        batch
            .columns()
            .iter()
            .enumerate()
            .map(|(column, array)| match targets {
                Some(targets) if !targets[column] => Ok(Value::Null),
                _ => value_at(array, row),
            })
            .collect()
    }

    /// The KV mutations of a changelog read back from the log, in log order: `+I`/`+U` put the
    /// row, `-D` deletes its key, `-U` does nothing.
    pub fn replay_mutations(
        &self,
        changelog: &RecordBatch,
        change_types: &[ChangeType],
    ) -> Result<Vec<Mutation>, PkError> {
        if change_types.len() != changelog.num_rows() {
            return Err(PkError::InvalidChangelog(format!(
                "{} change types for {} rows",
                change_types.len(),
                changelog.num_rows()
            )));
        }
        self.check_columns(changelog)?;
        let mut mutations = Vec::new();
        for (row, change) in change_types.iter().enumerate() {
            let value = match change {
                ChangeType::UpdateBefore => continue,
                ChangeType::Insert | ChangeType::UpdateAfter => {
                    let mut bytes = Vec::new();
                    self.rows.encode(changelog, row, &mut bytes)?;
                    Some(bytes)
                }
                ChangeType::Delete => None,
                ChangeType::AppendOnly => {
                    return Err(PkError::InvalidChangelog(format!(
                        "row {row} is +A; a primary-key changelog has no append-only rows"
                    )))
                }
            };
            let mut key = Vec::new();
            self.keys.encode(changelog, row, &mut key)?;
            mutations.push((key, value));
        }
        Ok(mutations)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    use arrow_array::Array;
    use arrow_array::{BooleanArray, Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use proptest::prelude::*;

    use super::*;

    /// `k BIGINT NOT NULL` (the key), `a BIGINT`, `b STRING`, `c BOOLEAN`.
    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Utf8, true),
            Field::new("c", DataType::Boolean, true),
        ]))
    }

    /// One row of the model table.
    #[derive(Debug, Clone, PartialEq)]
    struct Row {
        k: i64,
        a: Option<i64>,
        b: Option<String>,
        c: Option<bool>,
    }

    fn batch(rows: &[Row]) -> RecordBatch {
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|row| row.k))),
                Arc::new(Int64Array::from_iter(rows.iter().map(|row| row.a))),
                Arc::new(StringArray::from_iter(rows.iter().map(|row| row.b.clone()))),
                Arc::new(BooleanArray::from_iter(rows.iter().map(|row| row.c))),
            ],
        )
        .unwrap()
    }

    fn rows_of(batch: &RecordBatch) -> Vec<Row> {
        let (k, a) = (
            batch.column(0).as_primitive::<Int64Type>(),
            batch.column(1).as_primitive::<Int64Type>(),
        );
        let (b, c) = (batch.column(2).as_string::<i32>(), batch.column(3).as_boolean());
        (0..batch.num_rows())
            .map(|row| Row {
                k: k.value(row),
                a: a.is_valid(row).then(|| a.value(row)),
                b: b.is_valid(row).then(|| b.value(row).to_string()),
                c: c.is_valid(row).then(|| c.value(row)),
            })
            .collect()
    }

    /// A table definition of the model: engine 0..4, aggregate function names, delete
    /// behavior and image.
    #[derive(Debug, Clone)]
    struct Table {
        engine: u8,
        functions: [&'static str; 3],
        delete: &'static str,
        image: &'static str,
    }

    impl Table {
        fn options(&self) -> PkTableOptions {
            let mut properties = vec![
                ("table.delete.behavior".to_string(), self.delete.to_string()),
                ("table.changelog.image".to_string(), self.image.to_string()),
            ];
            let engine =
                ["last_row", "first_row", "versioned", "aggregation"][usize::from(self.engine)];
            properties.push(("table.merge-engine".into(), engine.into()));
            if self.engine == 2 {
                properties.push(("table.merge-engine.versioned.ver-column".into(), "a".into()));
            }
            if self.engine == 3 {
                for (column, function) in ["a", "b", "c"].iter().zip(self.functions) {
                    properties.push((format!("fields.{column}.agg"), function.into()));
                }
                if self.functions[1] == "listagg" {
                    properties.push(("fields.b.listagg.delimiter".into(), "/".into()));
                }
            }
            PkTableOptions::from_definition(&schema(), &["k".into()], &[], &properties).unwrap()
        }
    }

    fn table() -> impl Strategy<Value = Table> {
        let a = prop::sample::select(vec![
            "sum",
            "product",
            "min",
            "max",
            "last_value",
            "last_value_ignore_nulls",
            "first_value",
            "first_value_ignore_nulls",
        ]);
        let b = prop::sample::select(vec![
            "listagg",
            "min",
            "max",
            "last_value",
            "first_value_ignore_nulls",
        ]);
        let c = prop::sample::select(vec!["bool_and", "bool_or", "last_value", "first_value"]);
        (0_u8..4, a, b, c, 0_usize..3, prop::bool::ANY).prop_map(
            |(engine, a, b, c, delete, wal)| {
                let deletes = if engine == 1 || engine == 2 {
                    &["ignore", "disable", "ignore"]
                } else {
                    &["allow", "ignore", "disable"]
                };
                Table {
                    engine,
                    functions: [a, b, c],
                    delete: deletes[delete],
                    image: if wal { "wal" } else { "full" },
                }
            },
        )
    }

    /// One request: rows, whether each is a delete, and partial-update target columns.
    #[derive(Debug, Clone)]
    struct Request {
        rows: Vec<Row>,
        deletes: Vec<bool>,
        targets: Option<Vec<usize>>,
    }

    fn request(versioned: bool, partial: bool) -> impl Strategy<Value = Request> {
        let row = (
            0_i64..4,
            prop::option::of(-3_i64..4),
            prop::option::of("[xy]{0,2}"),
            prop::option::of(any::<bool>()),
        )
            .prop_map(move |(k, a, b, c)| Row {
                k,
                a: if versioned { a.or(Some(0)) } else { a },
                b,
                c,
            });
        let targets = prop::collection::vec(any::<bool>(), 3).prop_map(|mask| {
            let mut targets = vec![0];
            targets.extend((1..4).filter(|column| mask[column - 1]));
            targets
        });
        (
            prop::collection::vec((row, prop::bool::weighted(0.25)), 0..6),
            prop::option::weighted(0.3, targets),
        )
            .prop_map(move |(rows, targets)| Request {
                deletes: rows.iter().map(|(_, delete)| *delete).collect(),
                rows: rows.into_iter().map(|(row, _)| row).collect(),
                targets: targets.filter(|_| partial),
            })
    }

    /// `function` of the model: `stored` is `None` for a new key.
    fn model_aggregate<T: Clone + Ord>(
        function: &str,
        stored: Option<&Option<T>>,
        input: Option<T>,
        combine: &dyn Fn(T, T) -> T,
    ) -> Option<T> {
        let accumulator = stored.cloned().flatten();
        match function {
            "last_value" => input,
            "last_value_ignore_nulls" => input.or(accumulator),
            "first_value" => stored.cloned().unwrap_or(input),
            "first_value_ignore_nulls" => accumulator.or(input),
            "min" => model_aggregate("sum", stored, input, &|a, b| a.min(b)),
            "max" => model_aggregate("sum", stored, input, &|a, b| a.max(b)),
            _ => match (accumulator, input) {
                (Some(a), Some(b)) => Some(combine(a, b)),
                (a, b) => b.or(a),
            },
        }
    }

    /// The model's merge of an upsert; `None` keeps the stored row.
    fn model_upsert(table: &Table, old: Option<&Row>, new: &Row, targets: &[usize]) -> Option<Row> {
        let hit = |column| targets.contains(&column);
        match table.engine {
            1 if old.is_some() => None,
            2 if old.is_some_and(|old| new.a < old.a) => None,
            3 => {
                let [fa, fb, fc] = table.functions;
                Some(Row {
                    k: new.k,
                    a: if hit(1) {
                        model_aggregate(fa, old.map(|old| &old.a), new.a, &|x, y| {
                            if fa == "sum" {
                                x.wrapping_add(y)
                            } else {
                                x.wrapping_mul(y)
                            }
                        })
                    } else {
                        old.and_then(|old| old.a)
                    },
                    b: if hit(2) {
                        model_aggregate(fb, old.map(|old| &old.b), new.b.clone(), &|x, y| {
                            format!("{x}/{y}")
                        })
                    } else {
                        old.and_then(|old| old.b.clone())
                    },
                    c: if hit(3) {
                        model_aggregate(fc, old.map(|old| &old.c), new.c, &|x, y| {
                            if fc == "bool_and" {
                                x && y
                            } else {
                                x || y
                            }
                        })
                    } else {
                        old.and_then(|old| old.c)
                    },
                })
            }
            _ => Some(Row {
                k: new.k,
                a: if hit(1) { new.a } else { old.and_then(|old| old.a) },
                b: if hit(2) { new.b.clone() } else { old.and_then(|old| old.b.clone()) },
                c: if hit(3) { new.c } else { old.and_then(|old| old.c) },
            }),
        }
    }

    /// Applies a request to the model table; the expected changelog, or the expected error.
    fn model_apply(
        table: &Table,
        state: &mut BTreeMap<i64, Row>,
        request: &Request,
    ) -> Result<Vec<(ChangeType, Row)>, PkError> {
        if table.delete == "disable" && request.deletes.contains(&true) {
            return Err(PkError::DeleteDisabled);
        }
        let full = table.image == "full";
        let skip_read = !full
            && table.engine == 0
            && request.targets.is_none()
            && !request.deletes.contains(&true);
        let targets = request.targets.clone().unwrap_or(vec![0, 1, 2, 3]);
        let mut log = Vec::new();
        for (row, delete) in request.rows.iter().zip(&request.deletes) {
            let old = state.get(&row.k).cloned();
            let new = match (delete, &old) {
                (false, _) if skip_read => {
                    log.push((ChangeType::UpdateAfter, row.clone()));
                    state.insert(row.k, row.clone());
                    continue;
                }
                (false, _) => match model_upsert(table, old.as_ref(), row, &targets) {
                    None => continue,
                    Some(new) => Some(new),
                },
                (true, None) => continue,
                (true, Some(_)) if table.delete != "allow" => continue,
                (true, Some(old)) if request.targets.is_some() => {
                    let mut new = old.clone();
                    if targets.contains(&1) {
                        new.a = None;
                    }
                    if targets.contains(&2) {
                        new.b = None;
                    }
                    if targets.contains(&3) {
                        new.c = None;
                    }
                    (new.a.is_some() || new.b.is_some() || new.c.is_some()).then_some(new)
                }
                (true, Some(_)) => None,
            };
            match &new {
                Some(new) => state.insert(row.k, new.clone()),
                None => state.remove(&row.k),
            };
            match (old, new) {
                (None, Some(new)) => log.push((ChangeType::Insert, new)),
                (Some(old), None) => log.push((ChangeType::Delete, old)),
                (Some(old), Some(new)) if old != new => {
                    if full {
                        log.push((ChangeType::UpdateBefore, old));
                    }
                    log.push((ChangeType::UpdateAfter, new));
                }
                _ => {}
            }
        }
        Ok(log)
    }

    fn apply(kv: &mut BTreeMap<Vec<u8>, Vec<u8>>, mutations: Vec<Mutation>) {
        for (key, value) in mutations {
            match value {
                Some(value) => kv.insert(key, value),
                None => kv.remove(&key),
            };
        }
    }

    fn proptest_cases() -> u32 {
        std::env::var("UFER_PROPTEST_CASES")
            .ok()
            .and_then(|cases| cases.parse().ok())
            .unwrap_or(256)
    }

    fn table_and_requests() -> impl Strategy<Value = (Table, Vec<Request>)> {
        table().prop_flat_map(|table| {
            let partial = table.engine == 0 || table.engine == 3;
            let requests = prop::collection::vec(request(table.engine == 2, partial), 1..8);
            (Just(table), requests)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(proptest_cases()))]

        /// Requests against the generator and against a model table agree on the changelog
        /// and the stored rows, and replaying the changelog rebuilds the KV byte for byte.
        #[test]
        fn generator_matches_the_model((table, requests) in table_and_requests()) {
            check_against_model(&table, &requests)?;
        }
    }

    fn check_against_model(table: &Table, requests: &[Request]) -> Result<(), TestCaseError> {
        let generator = ChangelogGenerator::new(3, schema(), table.options()).unwrap();
        let mut model: BTreeMap<i64, Row> = BTreeMap::new();
        let mut kv: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut replayed: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for request in requests {
            let rows = batch(&request.rows);
            let ops: Vec<RowOp> = request
                .deletes
                .iter()
                .map(|delete| if *delete { RowOp::Delete } else { RowOp::Upsert })
                .collect();
            let write = WriteRequest {
                batch: &rows,
                ops: Some(&ops),
                target_columns: request.targets.as_deref(),
            };
            let expected = model_apply(table, &mut model, request);
            let keys = match generator.keys_to_read(&write) {
                Ok(keys) => keys,
                Err(error) => {
                    prop_assert_eq!(Err(error), expected);
                    continue;
                }
            };
            let current: Vec<Option<Vec<u8>>> =
                keys.iter().map(|key| kv.get(key).cloned()).collect();
            let output = generator.generate(&write, &current).unwrap();
            let logged: Vec<(ChangeType, Row)> = match &output.changelog {
                None => Vec::new(),
                Some(changelog) => {
                    output.change_types.iter().copied().zip(rows_of(changelog)).collect()
                }
            };
            prop_assert_eq!(Ok(logged), expected);
            apply(&mut kv, output.mutations);
            if let Some(changelog) = &output.changelog {
                apply(
                    &mut replayed,
                    generator.replay_mutations(changelog, &output.change_types).unwrap(),
                );
            }
            prop_assert_eq!(&replayed, &kv);
            let stored: Vec<&[u8]> = kv.values().map(Vec::as_slice).collect();
            let stored = rows_of(&generator.row_codec().decode_rows(&stored).unwrap());
            prop_assert_eq!(stored, model.values().cloned().collect::<Vec<_>>());
        }
        Ok(())
    }

    fn generator(properties: &[(&str, &str)]) -> ChangelogGenerator {
        let properties: Vec<(String, String)> =
            properties.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect();
        let options =
            PkTableOptions::from_definition(&schema(), &["k".into()], &[], &properties).unwrap();
        ChangelogGenerator::new(3, schema(), options).unwrap()
    }

    fn row(k: i64, a: Option<i64>) -> Row {
        Row { k, a, b: Some("x".into()), c: None }
    }

    /// Both entry points refuse the request with `expected`.
    fn refused(generator: &ChangelogGenerator, request: &WriteRequest<'_>, expected: PkError) {
        assert_eq!(generator.keys_to_read(request).unwrap_err(), expected);
        assert_eq!(generator.generate(request, &[]).unwrap_err(), expected);
    }

    #[test]
    fn bad_requests_are_typed_errors_with_no_output() {
        let plain = generator(&[]);
        let rows = batch(&[row(1, Some(1)), row(2, None)]);
        let request = |ops, targets| WriteRequest { batch: &rows, ops, target_columns: targets };

        let other = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("k", DataType::Int32, false)])),
            vec![Arc::new(arrow_array::Int32Array::from(vec![1]))],
        )
        .unwrap();
        let wrong = WriteRequest { batch: &other, ops: None, target_columns: None };
        assert!(matches!(plain.keys_to_read(&wrong), Err(PkError::SchemaMismatch(_))));
        assert!(matches!(plain.generate(&wrong, &[]), Err(PkError::SchemaMismatch(_))));

        let short = [RowOp::Upsert];
        assert!(matches!(
            plain.keys_to_read(&request(Some(&short), None)),
            Err(PkError::SchemaMismatch(_))
        ));
        refused(
            &plain,
            &request(None, Some(&[1, 2])),
            PkError::PartialUpdateWithoutKey { missing: vec!["k".into()] },
        );
        assert!(matches!(
            plain.keys_to_read(&request(None, Some(&[0, 9]))),
            Err(PkError::PartialUpdateRefused(_))
        ));

        let versioned = generator(&[
            ("table.merge-engine", "versioned"),
            ("table.merge-engine.versioned.ver-column", "a"),
        ]);
        refused(
            &versioned,
            &request(None, None),
            PkError::VersionMissing { row: 1, column: "a".into() },
        );
        assert!(matches!(
            versioned.keys_to_read(&request(None, Some(&[0, 1]))),
            Err(PkError::PartialUpdateRefused(_))
        ));

        let disabled = generator(&[("table.delete.behavior", "disable")]);
        let deletes = [RowOp::Upsert, RowOp::Delete];
        refused(&disabled, &request(Some(&deletes), None), PkError::DeleteDisabled);
    }

    #[test]
    fn null_keys_are_refused_before_anything_is_output() {
        let schema = Arc::new(Schema::new(
            schema()
                .fields()
                .iter()
                .map(|field| field.as_ref().clone().with_nullable(true))
                .collect::<Vec<_>>(),
        ));
        let options = PkTableOptions::from_definition(&schema, &["k".into()], &[], &[]).unwrap();
        let nullable = ChangelogGenerator::new(3, schema.clone(), options).unwrap();
        let rows = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![Some(1), None])),
                Arc::new(Int64Array::from(vec![Some(1), Some(2)])),
                Arc::new(StringArray::from(vec![Some("x"), None])),
                Arc::new(BooleanArray::from(vec![None, None])),
            ],
        )
        .unwrap();
        let request = WriteRequest { batch: &rows, ops: None, target_columns: None };
        refused(&nullable, &request, PkError::NullKey { column: "k".into(), row: 1 });
    }

    #[test]
    fn nulls_in_not_null_columns_are_refused_even_if_the_batch_allows_them() {
        let plain = generator(&[]);
        let nullable = Arc::new(Schema::new(
            schema()
                .fields()
                .iter()
                .map(|field| field.as_ref().clone().with_nullable(true))
                .collect::<Vec<_>>(),
        ));
        let rows = RecordBatch::try_new(
            nullable,
            vec![
                Arc::new(Int64Array::from(vec![Some(1), None])),
                Arc::new(Int64Array::from(vec![Some(1), Some(2)])),
                Arc::new(StringArray::from(vec![Some("x"), None])),
                Arc::new(BooleanArray::from(vec![None, None])),
            ],
        )
        .unwrap();
        let request = WriteRequest { batch: &rows, ops: None, target_columns: None };
        let expected = PkError::NullInNotNullColumn { column: "k".into(), row: 1 };
        refused(&plain, &request, expected);
    }

    #[test]
    fn current_values_must_match_the_keys_read_and_decode() {
        let plain = generator(&[]);
        let rows = batch(&[row(1, Some(1)), row(1, Some(2))]);
        let request = WriteRequest { batch: &rows, ops: None, target_columns: None };
        assert_eq!(plain.keys_to_read(&request).unwrap().len(), 1);
        assert_eq!(
            plain.generate(&request, &[]).unwrap_err(),
            PkError::CurrentValuesMismatch { expected: 1, given: 0 }
        );
        assert!(matches!(
            plain.generate(&request, &[Some(vec![3, 0, 1])]),
            Err(PkError::CorruptRow(_))
        ));
        assert!(matches!(
            plain.generate(&request, &[Some(vec![4, 0])]),
            Err(PkError::SchemaIdMismatch { expected: 3, found: 4 })
        ));
    }

    #[test]
    fn wal_last_row_upserts_read_nothing_and_log_update_after() {
        let wal = generator(&[("table.changelog.image", "wal")]);
        let rows = batch(&[row(1, Some(1)), row(1, Some(2))]);
        let request = WriteRequest { batch: &rows, ops: None, target_columns: None };
        assert!(wal.keys_to_read(&request).unwrap().is_empty());
        let output = wal.generate(&request, &[]).unwrap();
        assert_eq!(output.change_types, vec![ChangeType::UpdateAfter; 2]);
        assert_eq!(output.mutations.len(), 1);
        // Same key twice: one mutation holding the last row.
        let stored = output.mutations[0].1.clone().unwrap();
        let decoded = rows_of(&wal.row_codec().decode_rows(&[&stored]).unwrap());
        assert_eq!(decoded, vec![row(1, Some(2))]);
    }

    #[test]
    fn full_image_update_logs_before_and_after_and_equal_rows_log_nothing() {
        let plain = generator(&[]);
        let first = batch(&[row(1, Some(1))]);
        let insert = WriteRequest { batch: &first, ops: None, target_columns: None };
        let stored = plain.generate(&insert, &[None]).unwrap();
        assert_eq!(stored.change_types, vec![ChangeType::Insert]);
        let value = stored.mutations[0].1.clone();
        let again = plain.generate(&insert, std::slice::from_ref(&value)).unwrap();
        assert_eq!((again.changelog, again.mutations.len()), (None, 0));
        let second = batch(&[row(1, Some(5))]);
        let update = WriteRequest { batch: &second, ops: None, target_columns: None };
        let updated = plain.generate(&update, &[value]).unwrap();
        assert_eq!(updated.change_types, vec![ChangeType::UpdateBefore, ChangeType::UpdateAfter]);
        let logged = rows_of(updated.changelog.as_ref().unwrap());
        assert_eq!(logged, vec![row(1, Some(1)), row(1, Some(5))]);
        let appended = vec![ChangeType::AppendOnly; 2];
        assert!(matches!(
            plain.replay_mutations(updated.changelog.as_ref().unwrap(), &appended),
            Err(PkError::InvalidChangelog(_))
        ));
    }

    fn every_type_request() -> impl Strategy<Value = EveryTypeRequest> {
        let schema = crate::pk::row::tests::every_type_schema();
        let row: Vec<BoxedStrategy<Value>> = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(column, field)| match column {
                0 => (0_i64..3).prop_map(Value::Int).boxed(),
                _ => crate::pk::row::tests::value_of(field.data_type(), field.is_nullable()),
            })
            .collect();
        prop::collection::vec((row, prop::bool::weighted(0.3)), 0..8)
            .prop_map(|rows| rows.into_iter().unzip())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(proptest_cases() / 4))]

        /// Last-row, full image, every column type: the changelog holds exactly the rows the
        /// byte-level model expects, mutations come in first-touch order with the final
        /// values, and replay rebuilds the same KV.
        #[test]
        fn every_type_changelog_matches_a_byte_model(
            requests in prop::collection::vec(every_type_request(), 1..4),
        ) {
            check_every_type(requests)?;
        }
    }

    type EveryTypeRequest = (Vec<Vec<Value>>, Vec<bool>);

    fn check_every_type(requests: Vec<EveryTypeRequest>) -> Result<(), TestCaseError> {
        let schema = crate::pk::row::tests::every_type_schema();
        let options = PkTableOptions::from_definition(&schema, &["id".into()], &[], &[]).unwrap();
        let generator = ChangelogGenerator::new(9, schema, options).unwrap();
        let (mut kv, mut replayed) = (BTreeMap::new(), BTreeMap::new());
        for (rows, deletes) in requests {
            let batch = generator.row_codec().build_batch(&rows).unwrap();
            let ops: Vec<RowOp> = deletes
                .iter()
                .map(|delete| if *delete { RowOp::Delete } else { RowOp::Upsert })
                .collect();
            let request = WriteRequest { batch: &batch, ops: Some(&ops), target_columns: None };
            let mut model: BTreeMap<Vec<u8>, Vec<u8>> = kv.clone();
            let (expected, touched) = model_changes(&generator, &batch, &ops, &mut model);
            let keys = generator.keys_to_read(&request).unwrap();
            let current: Vec<Option<Vec<u8>>> =
                keys.iter().map(|key| kv.get(key).cloned()).collect();
            let output = generator.generate(&request, &current).unwrap();
            let logged: Vec<(ChangeType, Vec<u8>)> = match &output.changelog {
                None => Vec::new(),
                Some(changelog) => encoded(&generator, changelog)
                    .into_iter()
                    .zip(&output.change_types)
                    .map(|(row, change)| (*change, row))
                    .collect(),
            };
            prop_assert_eq!(logged, expected);
            let mutation_keys: Vec<Vec<u8>> =
                output.mutations.iter().map(|(key, _)| key.clone()).collect();
            prop_assert_eq!(mutation_keys, touched);
            for (key, value) in &output.mutations {
                prop_assert_eq!(value.as_ref(), model.get(key));
            }
            apply(&mut kv, output.mutations);
            prop_assert_eq!(&kv, &model);
            if let Some(changelog) = &output.changelog {
                apply(
                    &mut replayed,
                    generator.replay_mutations(changelog, &output.change_types).unwrap(),
                );
            }
            prop_assert_eq!(&replayed, &kv);
        }
        Ok(())
    }

    /// Changelog rows: change type and encoded row.
    type ExpectedRows = Vec<(ChangeType, Vec<u8>)>;

    /// What the last-row engine does to `model` with `ops` on the rows of `batch`: the
    /// changelog rows expected, and the keys whose value changed (in first-touch order).
    fn model_changes(
        generator: &ChangelogGenerator,
        batch: &RecordBatch,
        ops: &[RowOp],
        model: &mut BTreeMap<Vec<u8>, Vec<u8>>,
    ) -> (ExpectedRows, Vec<Vec<u8>>) {
        let (mut expected, mut touched) = (Vec::new(), Vec::<(Vec<u8>, bool)>::new());
        for (row, op) in ops.iter().enumerate() {
            let (mut key, mut value) = (Vec::new(), Vec::new());
            generator.key_encoder().encode(batch, row, &mut key).unwrap();
            generator.row_codec().encode(batch, row, &mut value).unwrap();
            let before = expected.len();
            match (op, model.get(&key).cloned()) {
                (RowOp::Upsert, None) => expected.push((ChangeType::Insert, value.clone())),
                (RowOp::Upsert, Some(old)) if old != value => {
                    expected.push((ChangeType::UpdateBefore, old));
                    expected.push((ChangeType::UpdateAfter, value.clone()));
                }
                (RowOp::Delete, Some(old)) => expected.push((ChangeType::Delete, old)),
                _ => {}
            }
            match op {
                RowOp::Upsert => model.insert(key.clone(), value),
                RowOp::Delete => model.remove(&key),
            };
            if !touched.iter().any(|(touched, _)| touched == &key) {
                touched.push((key.clone(), false));
            }
            if expected.len() > before {
                touched
                    .iter_mut()
                    .filter(|(touched, _)| touched == &key)
                    .for_each(|(_, changed)| *changed = true);
            }
        }
        let touched =
            touched.into_iter().filter(|(_, changed)| *changed).map(|(key, _)| key).collect();
        (expected, touched)
    }

    fn encoded(generator: &ChangelogGenerator, batch: &RecordBatch) -> Vec<Vec<u8>> {
        (0..batch.num_rows())
            .map(|row| {
                let mut bytes = Vec::new();
                generator.row_codec().encode(batch, row, &mut bytes).unwrap();
                bytes
            })
            .collect()
    }
}
