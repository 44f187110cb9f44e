//! FrameReader over an in-memory stream that hands out a few bytes per read.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::AsyncRead;

use crate::content::cid::{CODEC_RAW, block_cid};
use crate::net::bitswap::frame::encode_framed;
use crate::net::bitswap::message::{
    Block, MAX_MESSAGE_SIZE, Message, MessageError, ProtocolVersion,
};
use crate::net::bitswap::streams::{FrameReader, ReadError};

/// Serves `data` at most `step` bytes per read.
struct Trickle {
    data: Vec<u8>,
    pos: usize,
    step: usize,
}

impl AsyncRead for Trickle {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        let n = buf.len().min(self.step).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Poll::Ready(Ok(n))
    }
}

fn message_of(sizes: &[usize], seed: usize) -> Message {
    Message {
        blocks: sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| {
                let data: Vec<u8> = (0..size)
                    .map(|j| ((j * 7 + i + seed) % 251) as u8)
                    .collect();
                Block {
                    cid: block_cid(CODEC_RAW, 1, &data),
                    data: data.into(),
                }
            })
            .collect(),
        ..Message::default()
    }
}

async fn read_all(data: Vec<u8>, step: usize) -> (Vec<Message>, Result<(), ReadError>) {
    let mut reader = FrameReader::new(Trickle { data, pos: 0, step });
    let mut got = Vec::new();
    loop {
        match reader.next_frame().await {
            Ok(Some(frame)) => got.push(Message::decode_shared(&frame).unwrap()),
            Ok(None) => return (got, Ok(())),
            Err(e) => return (got, Err(e)),
        }
    }
}

#[tokio::test]
async fn frames_come_out_whole_however_the_bytes_arrive() {
    let messages = vec![
        message_of(&[10], 0),
        message_of(&[262_158, 262_158], 1),
        Message::default(),
        message_of(&[1, 2, 3, 100_000], 2),
        message_of(&[70_000], 3),
        message_of(&[5], 4),
    ];
    let mut stream = Vec::new();
    for m in &messages {
        stream.extend_from_slice(&encode_framed(m, ProtocolVersion::V1_2_0).unwrap().to_vec());
    }
    for step in [1, 3, 4096, 65_536, 65_537, 300_000, stream.len()] {
        let (got, end) = read_all(stream.clone(), step).await;
        assert!(end.is_ok(), "step {step}: {end:?}");
        assert_eq!(got, messages, "step {step}");
    }
}

#[tokio::test]
async fn an_oversize_length_prefix_is_refused_before_its_body() {
    let mut stream = encode_framed(&message_of(&[10], 0), ProtocolVersion::V1_2_0)
        .unwrap()
        .to_vec();
    // A prefix announcing one byte over the limit, then a little of its body.
    crate::content::proto::put_varint(&mut stream, (MAX_MESSAGE_SIZE + 1) as u64);
    stream.extend_from_slice(&[0; 100]);
    let (got, end) = read_all(stream, 7).await;
    assert_eq!(got.len(), 1);
    assert!(
        matches!(end, Err(ReadError::Message(MessageError::TooLarge { .. }))),
        "{end:?}"
    );
}

#[tokio::test]
async fn a_stream_ending_inside_a_frame_ends_without_a_message() {
    let frame = encode_framed(&message_of(&[50_000], 9), ProtocolVersion::V1_2_0)
        .unwrap()
        .to_vec();
    let (got, end) = read_all(frame[..frame.len() - 1].to_vec(), 1000).await;
    assert!(got.is_empty() && end.is_ok(), "{got:?} {end:?}");
}
