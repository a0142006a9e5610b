//! `PkError`: why a write to a primary-key table, or a stored row of one, was refused.
//!
//! Every variant is an expected operating error (a bad client request or bytes that do not
//! decode); the caller refuses the request and nothing of it is applied.

/// A refused primary-key write, or a stored row that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PkError {
    /// A key column is null in a row; send a value for every key column.
    #[error("key column {column:?} is null in row {row}; primary-key values may not be null")]
    NullKey {
        /// Name of the key column.
        column: String,
        /// Row of the request.
        row: usize,
    },
    /// The request's batch does not have the table's schema (or the ops vector its length).
    #[error("the request does not match the table: {0}")]
    SchemaMismatch(String),
    /// An upserted row with null in a NOT NULL column (the batch declared it nullable).
    #[error("column {column:?} is NOT NULL but row {row} holds null")]
    NullInNotNullColumn {
        /// Name of the column.
        column: String,
        /// Row of the request.
        row: usize,
    },
    /// A partial update whose target columns leave out key columns.
    #[error("a partial update must target every primary-key column; missing {missing:?}")]
    PartialUpdateWithoutKey {
        /// Names of the key columns left out.
        missing: Vec<String>,
    },
    /// A partial update that the table cannot take (merge engine, column list).
    #[error("partial update refused: {0}")]
    PartialUpdateRefused(String),
    /// A row of a `versioned` table without a value in its version column.
    #[error("row {row} has no value in the version column {column:?} of this versioned table")]
    VersionMissing {
        /// Row of the request.
        row: usize,
        /// Name of the version column.
        column: String,
    },
    /// A delete sent to a table with `table.delete.behavior` = `disable`.
    #[error("this table refuses deletes (table.delete.behavior = disable)")]
    DeleteDisabled,
    /// A column type the encoding cannot hold.
    #[error("unsupported type: {0}")]
    UnsupportedType(String),
    /// Stored row bytes that do not decode: short, trailing or invalid bytes.
    #[error("corrupt stored row: {0}")]
    CorruptRow(String),
    /// A stored row written under another schema than this table's.
    #[error("stored row has schema id {found}, expected {expected}")]
    SchemaIdMismatch {
        /// Schema id of the table.
        expected: u16,
        /// Schema id found in the row.
        found: u16,
    },
    /// `generate` was given a different number of current values than `keys_to_read` asked.
    #[error("{given} current values given for {expected} keys read")]
    CurrentValuesMismatch {
        /// Keys `keys_to_read` returned.
        expected: usize,
        /// Values given.
        given: usize,
    },
    /// An aggregate that left its column's range (a decimal sum past its precision).
    #[error("aggregate overflow in column {column:?}")]
    AggregateOverflow {
        /// Name of the column.
        column: String,
    },
    /// A change type a primary-key changelog cannot hold (`+A`), or a length mismatch.
    #[error("invalid changelog: {0}")]
    InvalidChangelog(String),
}
