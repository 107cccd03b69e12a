//! The codec every `household.v1` server and client uses: prost messages, with tonic's
//! buffers sized for a hub that holds a thousand long-lived streams.
//!
//! tonic encodes a stream's messages into one buffer per stream and keeps that buffer
//! for the stream's life; with its defaults the buffer starts at 8 KiB and grows by
//! doubling to the largest batch of messages it ever encoded together (up to 32 KiB
//! before it yields), so a Watch that opened with a 17 KiB snapshot held 32 KiB until it
//! closed. Here the buffer starts small, yields after 4 KiB, and grows to exactly the
//! message it must hold.

use std::marker::PhantomData;

use prost::Message;
use tonic::Status;
use tonic::codec::{BufferSettings, EncodeBuf, Encoder};
use tonic_prost::{ProstCodec, ProstDecoder};

/// Where a stream's encode buffer starts, and where its decode buffer starts.
const BUFFER_BYTES: usize = 1024;
/// Encoded bytes gathered before they are handed to HTTP/2.
const YIELD_BYTES: usize = 4096;

fn settings() -> BufferSettings {
    BufferSettings::new(BUFFER_BYTES, YIELD_BYTES)
}

/// The codec named in the generated servers and clients (`codec_path`).
#[derive(Debug)]
pub struct Codec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for Codec<T, U> {
    fn default() -> Self {
        Codec(PhantomData)
    }
}

impl<T, U> tonic::codec::Codec for Codec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ExactEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ExactEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::raw_decoder(settings())
    }
}

/// Encodes a message after reserving exactly its length, so the buffer grows to the
/// message and not to the next power of two above it.
#[derive(Debug)]
pub struct ExactEncoder<T>(PhantomData<T>);

impl<T: Message> Encoder for ExactEncoder<T> {
    type Item = T;
    type Error = Status;

    fn encode(&mut self, item: T, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.reserve(item.encoded_len());
        item.encode(buf)
            .map_err(|err| Status::internal(format!("encoding a message: {err}")))
    }

    fn buffer_settings(&self) -> BufferSettings {
        settings()
    }
}
