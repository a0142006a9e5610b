//! [`AppendWriter`]: appends rows to a log table, batching them per bucket.
//!
//! Rows go to the bucket their bucket-key hash picks (or, without a bucket key, each
//! appended record batch to the next bucket in turn). Each bucket accumulates rows until
//! `batch_size_bytes` or `linger`, then one `LogBatch` is built and sent straight to the
//! shard that owns the bucket. One batch per bucket is in flight at a time, so a bucket's
//! batches arrive in order; batches sealed meanwhile are sent as one when it is answered
//! (up to a size limit), so batches grow with the load instead of queueing. Retriable failures are retried with the same writer id and
//! sequence number, so the node stores a retried batch once. Every `append` returns a
//! handle that resolves with the offsets its rows got, per bucket.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arrow_array::{RecordBatch, UInt32Array};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use crate::bucketing::buckets_of_rows;
use crate::builder::{BatchOptions, LogBatchBuilder, WriterStamp};
use crate::client::connection::Connection;
use crate::client::error::ClientError;
use crate::client::table::Table;
use crate::header::Compression;
use crate::protocol::messages::{Acks, InitWriterRequest, ProduceRequest, TablePath};

/// Batches a bucket may have sealed and waiting to be sent (the bytes they hold are
/// bounded by `AppendOptions::unsent_bytes_max`; this only bounds the queue's bookkeeping).
const SEALED_BATCH_COUNT_MAX: usize = 1024;
/// Default of [`AppendOptions::unsent_bytes_max`].
const UNSENT_BYTES_MAX_DEFAULT: usize = 64 * 1024 * 1024;
/// Most permits a tokio semaphore holds.
const SEMAPHORE_PERMITS_MAX: usize = u32::MAX as usize >> 3;
/// Default of [`AppendOptions::merged_batch_size_max_bytes`].
const MERGED_BATCH_SIZE_MAX_BYTES_DEFAULT: usize = 4 * 1024 * 1024;

/// How an [`AppendWriter`] batches and sends.
#[derive(Clone, Debug)]
pub struct AppendOptions {
    /// A bucket's rows are sent once they take about this many bytes.
    pub batch_size_bytes: usize,
    /// ... or once the oldest has waited this long.
    pub linger: Duration,
    /// Column buffer compression.
    pub compression: Compression,
    /// When the node answers.
    pub acks: Acks,
    /// Use a writer id so retries are stored once.
    pub idempotent: bool,
    /// Attempts after the first for retriable failures.
    pub retries: u32,
    /// Wait before the first retry (doubling after each).
    pub retry_backoff: Duration,
    /// Arrow memory of sealed rows not yet answered, over all buckets; `append` waits
    /// while more is outstanding (Kafka's `buffer.memory`).
    pub unsent_bytes_max: usize,
    /// Batches of a bucket sealed while its previous batch was in flight are sent as one,
    /// up to about this many bytes of rows; 0 sends every sealed batch on its own.
    pub merged_batch_size_max_bytes: usize,
}

impl Default for AppendOptions {
    fn default() -> Self {
        Self {
            batch_size_bytes: 1024 * 1024,
            linger: Duration::from_millis(5),
            compression: Compression::None,
            acks: Acks::All,
            idempotent: true,
            retries: 5,
            retry_backoff: Duration::from_millis(50),
            unsent_bytes_max: UNSENT_BYTES_MAX_DEFAULT,
            merged_batch_size_max_bytes: MERGED_BATCH_SIZE_MAX_BYTES_DEFAULT,
        }
    }
}

/// Where some appended rows went: offsets `base_offset..=last_offset` of `bucket`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendAck {
    /// Bucket.
    pub bucket: u32,
    /// Offset of the first of the rows.
    pub base_offset: u64,
    /// Offset of the last of the rows.
    pub last_offset: u64,
}

/// Resolves once every row of one `append` is stored.
#[derive(Debug)]
pub struct AppendHandle {
    parts: Vec<oneshot::Receiver<Result<AppendAck, ClientError>>>,
}

impl AppendHandle {
    /// Waits for every part; returns where the rows went (one entry per bucket touched).
    pub async fn wait(self) -> Result<Vec<AppendAck>, ClientError> {
        let mut acks = Vec::with_capacity(self.parts.len());
        for part in self.parts {
            let ack = part.await.map_err(|_| {
                ClientError::Invalid("the writer was dropped before the rows were sent".into())
            })?;
            acks.push(ack?);
        }
        Ok(acks)
    }

    /// Waits for every part and returns each part's own outcome, so a caller can say
    /// exactly which buckets stored their rows when another part failed.
    pub async fn wait_parts(self) -> Vec<Result<AppendAck, ClientError>> {
        let mut outcomes = Vec::with_capacity(self.parts.len());
        for part in self.parts {
            outcomes.push(part.await.unwrap_or_else(|_| {
                Err(ClientError::Invalid("the writer was dropped before the rows were sent".into()))
            }));
        }
        outcomes
    }
}

type Waiter = (usize, usize, oneshot::Sender<Result<AppendAck, ClientError>>);

#[derive(Default)]
struct Accumulator {
    rows: Vec<RecordBatch>,
    row_count: usize,
    bytes: usize,
    waiters: Vec<Waiter>,
    started: Option<Instant>,
}

/// A bucket's rows sealed into one batch-to-be, with their counts from the accumulator.
struct Sealed {
    rows: Vec<RecordBatch>,
    row_count: usize,
    /// Arrow memory of `rows`.
    bytes: usize,
    waiters: Vec<Waiter>,
}

impl Sealed {
    /// Appends `other`'s rows after these (its waiters' rows move along).
    fn absorb(&mut self, other: Sealed) {
        for (first_row, count, waiter) in other.waiters {
            self.waiters.push((self.row_count + first_row, count, waiter));
        }
        self.row_count += other.row_count;
        self.bytes += other.bytes;
        self.rows.extend(other.rows);
    }
}

enum Command {
    /// Rows to send, and (once queued) the unsent-bytes permit they hold.
    Send {
        sealed: Sealed,
        memory: Option<OwnedSemaphorePermit>,
    },
    Barrier(oneshot::Sender<()>),
}

struct Shared {
    connection: Connection,
    table: Table,
    options: AppendOptions,
    key_columns: Vec<usize>,
    next_bucket: AtomicU32,
    accumulators: Vec<Mutex<Accumulator>>,
    senders: Vec<mpsc::Sender<Command>>,
    writer_id: Mutex<i64>,
    retries: AtomicU64,
    /// Each bucket's shard endpoint, as last learned from the node.
    addresses: Mutex<Vec<SocketAddr>>,
    /// Permits for `unsent_bytes_max` bytes of sealed, unanswered rows.
    memory: Arc<Semaphore>,
    /// How many permits `memory` has in all.
    memory_permits: usize,
}

/// Appends rows to one log table.
pub struct AppendWriter {
    shared: Arc<Shared>,
    linger: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for AppendWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppendWriter")
            .field("table", &self.shared.table.info.path)
            .finish_non_exhaustive()
    }
}

impl AppendWriter {
    /// A writer for the table at `path`.
    pub async fn new(
        connection: Connection,
        path: &TablePath,
        options: AppendOptions,
    ) -> Result<Self, ClientError> {
        let table = Table::open(&connection, path).await?;
        let key_columns = table.bucket_key_columns()?;
        let writer_id = if options.idempotent { init_writer(&connection).await? } else { -1 };
        let bucket_count = table.bucket_count() as usize;
        let mut senders = Vec::with_capacity(bucket_count);
        let mut receivers = Vec::with_capacity(bucket_count);
        for _ in 0..bucket_count {
            let (sender, receiver) = mpsc::channel(SEALED_BATCH_COUNT_MAX);
            senders.push(sender);
            receivers.push(receiver);
        }
        let addresses = Mutex::new(table.bucket_addresses.clone());
        let memory_permits = options.unsent_bytes_max.clamp(1, SEMAPHORE_PERMITS_MAX);
        let shared = Arc::new(Shared {
            connection,
            table,
            addresses,
            memory: Arc::new(Semaphore::new(memory_permits)),
            memory_permits,
            options,
            key_columns,
            next_bucket: AtomicU32::new(0),
            accumulators: (0..bucket_count).map(|_| Mutex::new(Accumulator::default())).collect(),
            senders,
            writer_id: Mutex::new(writer_id),
            retries: AtomicU64::new(0),
        });
        for (bucket, receiver) in receivers.into_iter().enumerate() {
            tokio::spawn(send_loop(Arc::downgrade(&shared), bucket as u32, receiver));
        }
        let linger = tokio::spawn(linger_loop(Arc::downgrade(&shared)));
        Ok(Self { shared, linger })
    }

    /// The table written to.
    pub fn table(&self) -> &Table {
        &self.shared.table
    }

    /// Adds the rows of `batch` (which must have the table's schema). Waits only if the
    /// buckets' sealed batches are still being sent.
    pub async fn append(&self, batch: RecordBatch) -> Result<AppendHandle, ClientError> {
        check_schema(&self.shared.table, &batch)?;
        let parts = self.split(batch)?;
        let mut receivers = Vec::with_capacity(parts.len());
        for (bucket, rows) in parts {
            let (sender, receiver) = oneshot::channel();
            receivers.push(receiver);
            let (earlier, sealed) = {
                let mut accumulator = lock(&self.shared.accumulators[bucket as usize]);
                // Rows that fill a batch on their own go out alone: if they cannot be sent
                // (e.g. over the batch size limit), the rows appended before them still are.
                let alone = rows.get_array_memory_size() >= self.shared.options.batch_size_bytes;
                let earlier = (alone && accumulator.row_count > 0).then(|| take(&mut accumulator));
                let first_row = accumulator.row_count;
                accumulator.row_count += rows.num_rows();
                accumulator.bytes += rows.get_array_memory_size();
                accumulator.started.get_or_insert_with(Instant::now);
                accumulator.waiters.push((first_row, rows.num_rows(), sender));
                accumulator.rows.push(rows);
                let sealed = (accumulator.bytes >= self.shared.options.batch_size_bytes)
                    .then(|| take(&mut accumulator));
                (earlier, sealed)
            };
            for command in [earlier, sealed].into_iter().flatten() {
                send_command(&self.shared, bucket, command).await?;
            }
        }
        Ok(AppendHandle { parts: receivers })
    }

    /// Produce requests sent again after a retriable failure (a timeout, a lost connection,
    /// a retriable error code) since the writer was made.
    pub fn retry_count(&self) -> u64 {
        self.shared.retries.load(Ordering::Relaxed)
    }

    /// Sends everything accumulated and waits until every batch sent so far is answered.
    pub async fn flush(&self) -> Result<(), ClientError> {
        flush_all(&self.shared, true).await?;
        let mut barriers = Vec::new();
        for bucket in 0..self.shared.senders.len() {
            let (sender, receiver) = oneshot::channel();
            send_command(&self.shared, bucket as u32, Command::Barrier(sender)).await?;
            barriers.push(receiver);
        }
        for barrier in barriers {
            let _ = barrier.await;
        }
        Ok(())
    }

    /// Flushes and stops the writer.
    pub async fn close(self) -> Result<(), ClientError> {
        let flushed = self.flush().await;
        self.linger.abort();
        flushed
    }

    /// Splits `batch` into per-bucket parts.
    fn split(&self, batch: RecordBatch) -> Result<Vec<(u32, RecordBatch)>, ClientError> {
        let bucket_count = self.shared.table.bucket_count();
        if self.shared.key_columns.is_empty() {
            let bucket = self.shared.next_bucket.fetch_add(1, Ordering::Relaxed) % bucket_count;
            return Ok(vec![(bucket, batch)]);
        }
        let buckets = buckets_of_rows(&batch, &self.shared.key_columns, bucket_count)
            .map_err(ClientError::Invalid)?;
        let mut rows_by_bucket: Vec<Vec<u32>> = vec![Vec::new(); bucket_count as usize];
        for (row, bucket) in buckets.iter().enumerate() {
            rows_by_bucket[*bucket as usize].push(row as u32);
        }
        let mut parts = Vec::new();
        for (bucket, rows) in rows_by_bucket.into_iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            let indices = UInt32Array::from(rows);
            let columns = batch
                .columns()
                .iter()
                .map(|column| arrow_select::take::take(column.as_ref(), &indices, None))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|error| ClientError::Batch(error.to_string()))?;
            let part = RecordBatch::try_new(batch.schema(), columns)
                .map_err(|error| ClientError::Batch(error.to_string()))?;
            parts.push((bucket as u32, part));
        }
        Ok(parts)
    }
}

impl Drop for AppendWriter {
    fn drop(&mut self) {
        self.linger.abort();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn take(accumulator: &mut Accumulator) -> Command {
    let taken = std::mem::take(accumulator);
    let sealed = Sealed {
        rows: taken.rows,
        row_count: taken.row_count,
        bytes: taken.bytes,
        waiters: taken.waiters,
    };
    Command::Send { sealed, memory: None }
}

fn check_schema(table: &Table, batch: &RecordBatch) -> Result<(), ClientError> {
    let expected = table.schema.arrow().fields();
    let actual = batch.schema();
    let same = actual.fields().len() == expected.len()
        && actual.fields().iter().zip(expected.iter()).all(|(actual, expected)| {
            actual.name() == expected.name() && actual.data_type() == expected.data_type()
        });
    if same {
        Ok(())
    } else {
        Err(ClientError::Invalid(format!(
            "rows have schema {actual} but table {} has {}",
            table.info.path,
            table.schema.arrow()
        )))
    }
}

async fn send_command(shared: &Shared, bucket: u32, command: Command) -> Result<(), ClientError> {
    let command = match command {
        Command::Send { sealed, memory: None } => {
            // Waits while too many sealed bytes are unanswered; a batch larger than the
            // whole budget takes all of it.
            let permits = sealed.bytes.clamp(1, shared.memory_permits) as u32;
            let memory = shared
                .memory
                .clone()
                .acquire_many_owned(permits)
                .await
                .map_err(|_| ClientError::Invalid("the writer has stopped".into()))?;
            Command::Send { sealed, memory: Some(memory) }
        }
        other => other,
    };
    shared.senders[bucket as usize]
        .send(command)
        .await
        .map_err(|_| ClientError::Invalid("the writer has stopped".into()))
}

async fn flush_all(shared: &Shared, everything: bool) -> Result<(), ClientError> {
    for bucket in 0..shared.accumulators.len() {
        let command = {
            let mut accumulator = lock(&shared.accumulators[bucket]);
            let due = accumulator
                .started
                .is_some_and(|started| everything || started.elapsed() >= shared.options.linger);
            (due && accumulator.row_count > 0).then(|| take(&mut accumulator))
        };
        if let Some(command) = command {
            send_command(shared, bucket as u32, command).await?;
        }
    }
    Ok(())
}

async fn linger_loop(shared: Weak<Shared>) {
    loop {
        let Some(shared) = shared.upgrade() else { return };
        let tick = (shared.options.linger / 2).max(Duration::from_millis(1));
        if flush_all(&shared, false).await.is_err() {
            return;
        }
        drop(shared);
        tokio::time::sleep(tick).await;
    }
}

/// A new idempotent writer id from the node.
pub(crate) async fn init_writer(connection: &Connection) -> Result<i64, ClientError> {
    let address = connection.catalog_address().await?;
    Ok(connection.call(address, &InitWriterRequest, &[], Duration::ZERO).await?.body.writer_id)
}

/// Sends one bucket's batches, in order, one at a time.
async fn send_loop(shared: Weak<Shared>, bucket: u32, mut commands: mpsc::Receiver<Command>) {
    let mut sequence: i32 = 0;
    let mut builder: Option<LogBatchBuilder> = None;
    // A queued batch too large to merge into the one before it: sent next, on its own.
    let mut carried: Option<Command> = None;
    loop {
        let command = match carried.take() {
            Some(command) => command,
            None => match commands.recv().await {
                Some(command) => command,
                None => return,
            },
        };
        let Some(shared) = shared.upgrade() else { return };
        let (mut sealed, memory) = match command {
            Command::Barrier(done) => {
                let _ = done.send(());
                continue;
            }
            Command::Send { sealed, memory } => (sealed, memory),
        };
        // Batches sealed while the previous one was in flight go out as one: under load the
        // batches grow instead of queueing (up to a size limit), so a writer that seals
        // every append keeps up with rates that one request per append could not.
        let merge_limit = shared.options.merged_batch_size_max_bytes;
        // Released once the batch is answered: until then its rows count as unsent.
        let mut memory = vec![memory];
        let barrier =
            absorb_queued(&mut commands, &mut sealed, &mut memory, merge_limit, &mut carried);
        let builder = match batch_builder(&shared, &mut builder) {
            Ok(builder) => builder,
            Err(error) => {
                fail(sealed.waiters, &error);
                continue;
            }
        };
        let writer_id = *lock(&shared.writer_id);
        let stamp = if writer_id >= 0 {
            WriterStamp { writer_id, batch_sequence: sequence }
        } else {
            WriterStamp::NONE
        };
        let bytes = match builder.build_concat(&sealed.rows, None, stamp) {
            Ok(bytes) => bytes,
            Err(error) => {
                fail(sealed.waiters, &ClientError::Batch(error.to_string()));
                continue;
            }
        };
        match produce_with_retries(&shared, bucket, &bytes).await {
            Ok(base_offset) => {
                sequence = if sequence == i32::MAX { 0 } else { sequence + 1 };
                acknowledge(sealed.waiters, bucket, base_offset);
            }
            Err(error) => {
                // Maybe stored: continuing with this sequence could make the node take the
                // next batch for a retry of this one. Start over with a new writer id.
                if writer_id >= 0 && !error.surely_not_done() {
                    if let Ok(new_id) = init_writer(&shared.connection).await {
                        *lock(&shared.writer_id) = new_id;
                        sequence = 0;
                    }
                }
                fail(sealed.waiters, &error);
            }
        }
        drop(memory);
        if let Some(done) = barrier {
            let _ = done.send(());
        }
    }
}

/// The bucket's batch builder, made on first use.
fn batch_builder<'a>(
    shared: &Shared,
    builder: &'a mut Option<LogBatchBuilder>,
) -> Result<&'a mut LogBatchBuilder, ClientError> {
    if let Some(made) = builder {
        return Ok(made);
    }
    let options =
        BatchOptions { compression: shared.options.compression, statistics_columns: Vec::new() };
    let made = LogBatchBuilder::new(shared.table.schema.clone(), options)
        .map_err(|error| ClientError::Batch(error.to_string()))?;
    Ok(builder.insert(made))
}

/// Moves the batches queued behind `sealed` into it, and their permits into `memory`, while
/// it is under `merge_limit` bytes; stops at a barrier and returns it, to be answered once
/// `sealed` is.
fn absorb_queued(
    commands: &mut mpsc::Receiver<Command>,
    sealed: &mut Sealed,
    memory: &mut Vec<Option<OwnedSemaphorePermit>>,
    merge_limit: usize,
    carried: &mut Option<Command>,
) -> Option<oneshot::Sender<()>> {
    while sealed.bytes < merge_limit {
        match commands.try_recv() {
            // Never merged past the limit: one large batch must not carry others' rows into
            // its fate (a batch over the size limit fails alone).
            Ok(Command::Send { sealed: more, memory: more_memory })
                if sealed.bytes + more.bytes > merge_limit =>
            {
                *carried = Some(Command::Send { sealed: more, memory: more_memory });
                return None;
            }
            Ok(Command::Send { sealed: more, memory: more_memory }) => {
                memory.push(more_memory);
                sealed.absorb(more);
            }
            // Answered once what was queued before it is sent.
            Ok(Command::Barrier(done)) => return Some(done),
            Err(_) => return None,
        }
    }
    None
}

/// Answers each waiter of a batch stored from `base_offset` with its rows' offsets.
fn acknowledge(waiters: Vec<Waiter>, bucket: u32, base_offset: u64) {
    for (first_row, count, waiter) in waiters {
        let ack = AppendAck {
            bucket,
            base_offset: base_offset + first_row as u64,
            last_offset: base_offset + (first_row + count) as u64 - 1,
        };
        let _ = waiter.send(Ok(ack));
    }
}

fn fail(waiters: Vec<Waiter>, error: &ClientError) {
    for (_, _, waiter) in waiters {
        let _ = waiter.send(Err(error.clone()));
    }
}

async fn produce_with_retries(
    shared: &Shared,
    bucket: u32,
    bytes: &[u8],
) -> Result<u64, ClientError> {
    let request = ProduceRequest {
        table_id: shared.table.info.table_id,
        bucket,
        acks: shared.options.acks,
        timeout_ms: shared.connection.config().request_timeout.as_millis() as u32,
    };
    let mut backoff = shared.options.retry_backoff;
    let mut attempt = 0;
    loop {
        let address = lock(&shared.addresses)[bucket as usize];
        match shared.connection.call(address, &request, bytes, Duration::ZERO).await {
            Ok(answer) => return Ok(answer.body.base_offset),
            Err(error) if error.is_retriable() && attempt < shared.options.retries => {
                attempt += 1;
                shared.retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                if matches!(error, ClientError::Transport { .. } | ClientError::Timeout { .. }) {
                    // The shard did not answer: the node may have restarted with its
                    // buckets elsewhere. Ask where they are before trying again.
                    if let Ok(addresses) = shared.table.locate_again(&shared.connection).await {
                        *lock(&shared.addresses) = addresses;
                    }
                }
            }
            Err(error) => return Err(error),
        }
    }
}
