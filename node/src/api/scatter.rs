//! Scattering a request over the shards that own its buckets: the buckets it names are
//! grouped by owning shard; this shard's part is done here while every other part is
//! forwarded, all at once; the answers come back in the request's order.
//!
//! Invariant: every bucket of the request gets exactly one answer, from its owner, or the
//! whole request fails (a part answered with an error, or with a different number of
//! buckets than it asked for).

use std::collections::BTreeMap;
use std::future::Future;

use futures_util::future::{join, join_all};
use ufer_wire::protocol::codec::Decoder;
use ufer_wire::protocol::error_code::{ErrorBody, ErrorCode};
use ufer_wire::protocol::frame::{ApiKey, FrameFlags, FrameHeader, FRAME_HEADER_SIZE_BYTES};
use ufer_wire::protocol::messages::{decode_body, encode_frame, Body};

use crate::api::response::malformed;
use crate::shard::Shard;

/// Answers one entry per bucket of `buckets` (of table `table_id`): `local` answers the
/// positions this shard owns, `remote` the positions another shard owns (given that
/// shard), all concurrently.
pub async fn scatter<T, Local, LocalAnswer, Remote, RemoteAnswer>(
    shard: &Shard,
    table_id: u64,
    buckets: &[u32],
    local: Local,
    remote: Remote,
) -> Result<Vec<T>, ErrorBody>
where
    Local: FnOnce(Vec<usize>) -> LocalAnswer,
    LocalAnswer: Future<Output = Vec<T>>,
    Remote: Fn(usize, Vec<usize>) -> RemoteAnswer,
    RemoteAnswer: Future<Output = Result<Vec<T>, ErrorBody>>,
{
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (position, bucket) in buckets.iter().enumerate() {
        groups.entry(shard.owner_of(table_id, *bucket)).or_default().push(position);
    }
    let here = groups.remove(&shard.id).unwrap_or_default();
    let parts = groups.into_iter().map(|(owner, positions)| {
        let answer = remote(owner, positions.clone());
        async move { (positions, answer.await) }
    });
    let (remote_answers, local_answers) = join(join_all(parts), local(here.clone())).await;
    let mut answers: Vec<Option<T>> = (0..buckets.len()).map(|_| None).collect();
    place(&mut answers, here, local_answers)?;
    for (positions, part) in remote_answers {
        place(&mut answers, positions, part?)?;
    }
    answers
        .into_iter()
        .map(|answer| answer.ok_or_else(|| internal("a bucket went unanswered".into())))
        .collect()
}

fn place<T>(
    answers: &mut [Option<T>],
    positions: Vec<usize>,
    values: Vec<T>,
) -> Result<(), ErrorBody> {
    if values.len() != positions.len() {
        return Err(internal(format!(
            "{} answers for {} buckets from one shard",
            values.len(),
            positions.len()
        )));
    }
    for (position, value) in positions.into_iter().zip(values) {
        assert!(answers[position].is_none(), "bucket position {position} answered twice");
        answers[position] = Some(value);
    }
    Ok(())
}

fn internal(message: String) -> ErrorBody {
    ErrorBody::new(ErrorCode::Internal, message)
}

/// Sends `part` (a request of `api`) to shard `owner` and decodes its answer: the response
/// body and its records section, or the error it answered with.
pub async fn forward_part<Request: Body, Answer: Body>(
    shard: &Shard,
    owner: usize,
    api: ApiKey,
    request_id: u32,
    part: &Request,
) -> Result<(Answer, Vec<u8>), ErrorBody> {
    let frame = encode_frame(api, FrameFlags::request(), request_id, part, &[]);
    let response = shard.forward(owner, frame).await?;
    let header = FrameHeader::parse(&response, u32::MAX).map_err(malformed)?;
    let body = &response[FRAME_HEADER_SIZE_BYTES..];
    if header.frame_flags().is_error() {
        return Err(ErrorBody::decode(&mut Decoder::new(body)).map_err(malformed)?);
    }
    let (answer, records) = decode_body::<Answer>(body).map_err(malformed)?;
    Ok((answer, records.to_vec()))
}
