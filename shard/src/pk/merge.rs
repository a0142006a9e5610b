//! Merge engines: the row a key holds after an upsert or a delete meets its stored row.
//!
//! Pure functions over decoded rows (one [`Value`] per column). A partial update arrives as a
//! full-width row whose non-target columns are ignored: they keep the stored value (null for
//! a new key). Invariant: key columns of a merged row equal the key columns of the input.

use std::cmp::Ordering;

use arrow_schema::{DataType, Fields};

use super::error::PkError;
use super::options::{AggFunction, DeleteBehavior, MergeEngine, PkTableOptions};
use super::value::Value;

/// What an upsert does to a key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Upserted {
    /// The stored row stays as it is (first_row, an older version).
    Keep,
    /// The key now holds this row.
    Row(Vec<Value>),
}

/// What a delete does to a key that holds a row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Deleted {
    /// Nothing (delete behavior `ignore`).
    Ignore,
    /// The row is removed.
    Remove,
    /// A partial delete nulled the target columns; the key now holds this row.
    Row(Vec<Value>),
}

/// Merges the upsert `new` into the stored row `old` (`None`: a new key). `targets[i]` says
/// whether column `i` is written (`None`: all are).
pub(crate) fn upsert(
    options: &PkTableOptions,
    fields: &Fields,
    old: Option<&[Value]>,
    new: Vec<Value>,
    targets: Option<&[bool]>,
) -> Result<Upserted, PkError> {
    // Per row of a request, so the copy of the input's key is made in debug builds only.
    let input_key = if cfg!(debug_assertions) { key_of(options, &new) } else { Vec::new() };
    let upserted = merge_upsert(options, fields, old, new, targets)?;
    if let Upserted::Row(row) = &upserted {
        debug_assert!(
            same_values(&key_of(options, row), &input_key),
            "key columns of a merged row equal the key columns of the input"
        );
    }
    Ok(upserted)
}

/// The values of the key columns of `row`.
fn key_of(options: &PkTableOptions, row: &[Value]) -> Vec<Value> {
    options.primary_key.iter().map(|column| row[*column].clone()).collect()
}

/// Identical value by value (a NaN key is identical to itself).
fn same_values(left: &[Value], right: &[Value]) -> bool {
    left.len() == right.len() && left.iter().zip(right).all(|(a, b)| a.identical(b))
}

fn merge_upsert(
    options: &PkTableOptions,
    fields: &Fields,
    old: Option<&[Value]>,
    new: Vec<Value>,
    targets: Option<&[bool]>,
) -> Result<Upserted, PkError> {
    let targeted = |column: usize| targets.is_none_or(|targets| targets[column]);
    match &options.merge_engine {
        MergeEngine::FirstRow if old.is_some() => Ok(Upserted::Keep),
        MergeEngine::Versioned { column } => match (old.map(|old| &old[*column]), &new[*column]) {
            (Some(Value::Int(stored)), Value::Int(incoming)) if incoming < stored => {
                Ok(Upserted::Keep)
            }
            _ => Ok(Upserted::Row(new)),
        },
        MergeEngine::Aggregate { functions } => {
            let mut merged = Vec::with_capacity(new.len());
            for (column, input) in new.into_iter().enumerate() {
                let stored = old.map(|old| &old[column]);
                merged.push(match &functions[column] {
                    _ if !targeted(column) => stored.cloned().unwrap_or(Value::Null),
                    None => input,
                    Some(function) => {
                        let field = &fields[column];
                        aggregate(function, field.data_type(), stored, input).ok_or_else(|| {
                            PkError::AggregateOverflow { column: field.name().clone() }
                        })?
                    }
                });
            }
            Ok(Upserted::Row(merged))
        }
        MergeEngine::LastRow | MergeEngine::FirstRow => match targets {
            None => Ok(Upserted::Row(new)),
            Some(_) => Ok(Upserted::Row(
                new.into_iter()
                    .enumerate()
                    .map(|(column, input)| match old {
                        _ if targeted(column) => input,
                        Some(old) => old[column].clone(),
                        None => Value::Null,
                    })
                    .collect(),
            )),
        },
    }
}

/// What a delete does to the stored row `old`. A partial delete (`targets` given) nulls the
/// target non-key columns and removes the row only when all its non-key columns are then null
/// (Fluss's partial-delete rule).
pub(crate) fn delete(options: &PkTableOptions, old: &[Value], targets: Option<&[bool]>) -> Deleted {
    if options.delete_behavior != DeleteBehavior::Allow {
        return Deleted::Ignore;
    }
    let Some(targets) = targets else { return Deleted::Remove };
    let is_key = |column: usize| options.primary_key.contains(&column);
    let row: Vec<Value> = old
        .iter()
        .enumerate()
        .map(
            |(column, value)| {
                if targets[column] && !is_key(column) {
                    Value::Null
                } else {
                    value.clone()
                }
            },
        )
        .collect();
    if row.iter().enumerate().all(|(column, value)| is_key(column) || value.is_null()) {
        Deleted::Remove
    } else {
        debug_assert!(
            same_values(&key_of(options, &row), &key_of(options, old)),
            "a partial delete keeps the key columns of the stored row"
        );
        Deleted::Row(row)
    }
}

/// `function` over the stored value (`None`: no stored row) and the input; `None` when the
/// result leaves the column's range.
fn aggregate(
    function: &AggFunction,
    data_type: &DataType,
    stored: Option<&Value>,
    input: Value,
) -> Option<Value> {
    let stored_or_null = || stored.cloned().unwrap_or(Value::Null);
    match function {
        AggFunction::LastValue => return Some(input),
        AggFunction::LastValueIgnoreNulls if input.is_null() => return Some(stored_or_null()),
        AggFunction::LastValueIgnoreNulls => return Some(input),
        AggFunction::FirstValue => return Some(stored.cloned().unwrap_or(input)),
        AggFunction::FirstValueIgnoreNulls => {
            return Some(match stored {
                Some(value) if !value.is_null() => value.clone(),
                _ => input,
            })
        }
        _ => {}
    }
    let accumulator = match stored {
        _ if input.is_null() => return Some(stored_or_null()),
        None | Some(Value::Null) => return Some(input),
        Some(value) => value,
    };
    Some(match (function, accumulator, input) {
        (AggFunction::Sum, Value::Int(a), Value::Int(b)) => {
            Value::Int(wrap(data_type, a.wrapping_add(b)))
        }
        (AggFunction::Sum, Value::F32(a), Value::F32(b)) => Value::F32(a + b),
        (AggFunction::Sum, Value::F64(a), Value::F64(b)) => Value::F64(a + b),
        (AggFunction::Sum, Value::Decimal(a), Value::Decimal(b)) => {
            let sum = a.checked_add(b)?;
            let DataType::Decimal128(precision, _) = data_type else { return None };
            (sum.unsigned_abs() < 10_u128.checked_pow(u32::from(*precision))?)
                .then_some(Value::Decimal(sum))?
        }
        (AggFunction::Product, Value::Int(a), Value::Int(b)) => {
            Value::Int(wrap(data_type, a.wrapping_mul(b)))
        }
        (AggFunction::Product, Value::F32(a), Value::F32(b)) => Value::F32(a * b),
        (AggFunction::Product, Value::F64(a), Value::F64(b)) => Value::F64(a * b),
        (AggFunction::Min, a, b) => {
            if compare(a, &b)? == Ordering::Greater {
                b
            } else {
                a.clone()
            }
        }
        (AggFunction::Max, a, b) => {
            if compare(a, &b)? == Ordering::Less {
                b
            } else {
                a.clone()
            }
        }
        (AggFunction::BoolAnd, Value::Bool(a), Value::Bool(b)) => Value::Bool(*a && b),
        (AggFunction::BoolOr, Value::Bool(a), Value::Bool(b)) => Value::Bool(*a || b),
        (AggFunction::ListAgg { delimiter }, Value::Str(a), Value::Str(b)) => {
            Value::Str(format!("{a}{delimiter}{b}"))
        }
        _ => return None,
    })
}

/// Wraps an integer to the column's width, as Java's integer arithmetic does.
fn wrap(data_type: &DataType, int: i64) -> i64 {
    match data_type {
        DataType::Int8 => i64::from(int as i8),
        DataType::Int16 => i64::from(int as i16),
        DataType::Int32 => i64::from(int as i32),
        _ => int,
    }
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    Some(match (a, b) {
        (Value::Int(a), Value::Int(b)) => a.cmp(b),
        (Value::F32(a), Value::F32(b)) => a.total_cmp(b),
        (Value::F64(a), Value::F64(b)) => a.total_cmp(b),
        (Value::Decimal(a), Value::Decimal(b)) => a.cmp(b),
        (Value::Str(a), Value::Str(b)) => a.cmp(b),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_sums_past_their_precision_fail_and_integers_wrap_at_their_width() {
        let decimal = DataType::Decimal128(3, 0);
        let sum = |stored: i128, input: i128| {
            aggregate(
                &AggFunction::Sum,
                &decimal,
                Some(&Value::Decimal(stored)),
                Value::Decimal(input),
            )
        };
        assert_eq!(sum(500, 499), Some(Value::Decimal(999)));
        assert_eq!(sum(500, 500), None);
        assert_eq!(sum(-500, -500), None);
        let int8 = |function: &AggFunction, stored: i64, input: i64| {
            aggregate(function, &DataType::Int8, Some(&Value::Int(stored)), Value::Int(input))
        };
        assert_eq!(int8(&AggFunction::Sum, 127, 1), Some(Value::Int(-128)));
        assert_eq!(int8(&AggFunction::Product, 64, 2), Some(Value::Int(-128)));
    }

    #[test]
    fn null_inputs_keep_the_accumulator_except_for_value_functions() {
        let stored = Value::Int(4);
        let run = |function: &AggFunction| {
            aggregate(function, &DataType::Int64, Some(&stored), Value::Null).unwrap()
        };
        assert_eq!(run(&AggFunction::Sum), Value::Int(4));
        assert_eq!(run(&AggFunction::Max), Value::Int(4));
        assert_eq!(run(&AggFunction::LastValueIgnoreNulls), Value::Int(4));
        assert_eq!(run(&AggFunction::LastValue), Value::Null);
        assert_eq!(run(&AggFunction::FirstValue), Value::Int(4));
        let first = aggregate(&AggFunction::FirstValue, &DataType::Int64, None, Value::Null);
        assert_eq!(first, Some(Value::Null));
        let floats = aggregate(
            &AggFunction::Min,
            &DataType::Float64,
            Some(&Value::F64(1.5)),
            Value::F64(-2.0),
        );
        assert_eq!(floats, Some(Value::F64(-2.0)));
    }
}
