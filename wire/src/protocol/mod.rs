//! The ufer protocol over QUIC: frames, the primitive body encoding, error codes, and the
//! request and response messages (`docs/protocol.md` has every byte).
//!
//! Pure like the rest of this crate: encoding and decoding only; the node and the client
//! SDK do the I/O.

pub mod codec;
pub mod error_code;
pub mod frame;
pub mod messages;
