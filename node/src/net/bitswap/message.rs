//! The Bitswap wire format: the protobuf `Message` (ipfs/specs `bitswap-protocol.md`), one per
//! frame ([`super::frame`]).
//!
//! ```text
//! Message { wantlist = 1 { entries = 1 { block = 1 (CID bytes), priority = 2 (int32),
//!                                         cancel = 3, wantType = 4 (Block 0 | Have 1),
//!                                         sendDontHave = 5 },
//!                          full = 2 },
//!           blocks = 2 (1.0.0: raw data, CIDv0 implied),
//!           payload = 3 (1.1.0+: { prefix = 1, data = 2 }),
//!           blockPresences = 4 { cid = 1, type = 2 (Have 0 | DontHave 1) },
//!           pendingBytes = 5 (int32) }
//! ```
//!
//! [`Message::encode`] writes for the version negotiated with the peer: 1.0.0 gets `blocks`
//! and CIDv0 wants only, 1.1.0 gets `payload`, only 1.2.0 gets want-have, DONT_HAVE-requests,
//! presences and pending bytes. [`Message::decode`] accepts any version. It refuses what is
//! structurally broken with a [`MessageError`], but an item that is merely unusable (a CID
//! that does not parse, an unsupported hash, an oversize block) is dropped and reported in
//! [`Message::rejected`], so one bad block does not cost the peer its whole message. Decoding
//! never panics, and allocation is bounded by [`MAX_MESSAGE_SIZE`] and [`MAX_ITEMS`].

use bytes::Bytes;
use cid::Cid;
use thiserror::Error;

use super::prefix::{CidPrefix, PrefixError};
use crate::content::cid::{CODEC_DAG_PB, block_cid};
use crate::content::proto::{
    self, Field, ProtoError, Reader, put_bytes_field, put_tag, put_varint, put_varint_field,
    varint_len,
};

/// Protocol id of Bitswap 1.2.0 (want-have, DONT_HAVE, pending bytes).
pub const PROTOCOL_1_2_0: &str = "/ipfs/bitswap/1.2.0";
/// Protocol id of Bitswap 1.1.0 (CIDv1, blocks sent with a CID prefix).
pub const PROTOCOL_1_1_0: &str = "/ipfs/bitswap/1.1.0";
/// Protocol id of Bitswap 1.0.0 (CIDv0 only, bare blocks).
pub const PROTOCOL_1_0_0: &str = "/ipfs/bitswap/1.0.0";

/// Largest message, without its length prefix, that we send or accept (the spec's limit).
pub const MAX_MESSAGE_SIZE: usize = 4 << 20;
/// Largest block we send or accept (the spec's interoperable maximum).
pub const MAX_BLOCK_SIZE: usize = 2 << 20;
/// Most wantlist entries, blocks or presences kept from one message; the rest are rejected.
/// Keeps a message of tiny items from inflating into far more memory than its bytes.
pub const MAX_ITEMS: usize = 16_384;
/// Most rejected items described in [`Message::rejected`]; the rest are only counted.
pub const MAX_REPORTED_REJECTIONS: usize = 16;

/// A Bitswap protocol version, as negotiated by multistream-select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProtocolVersion {
    V1_0_0,
    V1_1_0,
    V1_2_0,
}

impl ProtocolVersion {
    /// Newest first: the order to offer protocols in.
    pub const ALL: [ProtocolVersion; 3] = [Self::V1_2_0, Self::V1_1_0, Self::V1_0_0];

    pub fn protocol_id(self) -> &'static str {
        match self {
            Self::V1_0_0 => PROTOCOL_1_0_0,
            Self::V1_1_0 => PROTOCOL_1_1_0,
            Self::V1_2_0 => PROTOCOL_1_2_0,
        }
    }

    pub fn from_protocol_id(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.protocol_id() == id)
    }

    /// Whether want-have, `sendDontHave`, block presences and pending bytes exist (1.2.0).
    pub fn supports_have(self) -> bool {
        self >= Self::V1_2_0
    }

    /// Whether blocks travel as `payload` with a CID prefix, allowing CIDv1 (1.1.0+).
    pub fn supports_payload(self) -> bool {
        self >= Self::V1_1_0
    }

    /// Whether a CID can be named to a peer of this version: 1.0.0 knows only CIDv0.
    pub fn can_express(self, cid: &Cid) -> bool {
        self.supports_payload() || cid.version() == cid::Version::V0
    }
}

/// What a wantlist entry asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WantType {
    /// Send the block.
    #[default]
    Block,
    /// Say whether you have it (1.2.0).
    Have,
}

/// One wantlist entry: a want, or with `cancel` the withdrawal of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantlistEntry {
    pub cid: Cid,
    /// Higher is more urgent.
    pub priority: i32,
    pub cancel: bool,
    pub want_type: WantType,
    /// Ask for an explicit DONT_HAVE instead of silence (1.2.0).
    pub send_dont_have: bool,
}

impl WantlistEntry {
    pub fn want(cid: Cid, want_type: WantType, priority: i32, send_dont_have: bool) -> Self {
        Self {
            cid,
            priority,
            cancel: false,
            want_type,
            send_dont_have,
        }
    }

    pub fn cancel(cid: Cid) -> Self {
        Self {
            cid,
            priority: 0,
            cancel: true,
            want_type: WantType::Block,
            send_dont_have: false,
        }
    }
}

/// The answer to a want-have (or a DONT_HAVE for a want-block).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PresenceType {
    Have,
    DontHave,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockPresence {
    pub cid: Cid,
    pub presence: PresenceType,
}

/// A block and the CID it was sent or received under. Decoded blocks carry the CID rebuilt
/// from the data's hash, never one the sender asserted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub cid: Cid,
    /// Shared, so a decoded block can be a slice of the frame it arrived in.
    pub data: Bytes,
}

/// An item dropped while decoding; the rest of the message is still used.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ItemError {
    #[error("{field} is not a valid CID: {reason}")]
    BadCid { field: &'static str, reason: String },
    #[error("payload block has a bad CID prefix: {0}")]
    BadPrefix(#[from] PrefixError),
    #[error("block of {len} bytes exceeds the {MAX_BLOCK_SIZE}-byte limit")]
    BlockTooLarge { len: usize },
    #[error("unknown want type {0}")]
    UnknownWantType(u64),
    #[error("unknown block presence type {0}")]
    UnknownPresenceType(u64),
    #[error("more than {MAX_ITEMS} {0} in one message")]
    TooMany(&'static str),
}

/// A message that cannot be used at all.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageError {
    #[error("bitswap message of {len} bytes exceeds the {MAX_MESSAGE_SIZE}-byte limit")]
    TooLarge { len: usize },
    #[error("malformed bitswap message length prefix")]
    BadLengthPrefix,
    #[error("malformed bitswap {part}: {source}")]
    Proto {
        part: &'static str,
        source: ProtoError,
    },
    #[error("malformed bitswap {part}: field {field} has the wrong wire type")]
    WireType { part: &'static str, field: u32 },
    #[error("malformed bitswap payload block: missing {0}")]
    MissingField(&'static str),
}

/// One Bitswap message. Empty lists and zero values are simply not sent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    pub wantlist: Vec<WantlistEntry>,
    /// The wantlist replaces the previous one rather than updating it.
    pub full: bool,
    pub blocks: Vec<Block>,
    pub presences: Vec<BlockPresence>,
    /// Bytes the sender still has queued for us (1.2.0; informational).
    pub pending_bytes: i32,
    /// Items dropped while decoding, at most [`MAX_REPORTED_REJECTIONS`] of them.
    pub rejected: Vec<ItemError>,
    /// How many items were dropped in all (may exceed `rejected.len()`).
    pub rejected_count: usize,
}

impl Message {
    pub fn is_empty(&self) -> bool {
        self.wantlist.is_empty()
            && !self.full
            && self.blocks.is_empty()
            && self.presences.is_empty()
            && self.pending_bytes == 0
    }

    /// Protobuf bytes for a peer speaking `version`. What that version cannot carry is left
    /// out: presences, want-have entries and `sendDontHave` before 1.2.0 (a want-have would be
    /// read as a want-block), and wants or blocks whose CID is not v0 for 1.0.0. Callers that
    /// care check [`ProtocolVersion::supports_have`] and [`ProtocolVersion::can_express`]
    /// first.
    pub fn encode(&self, version: ProtocolVersion) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size_hint());
        self.encode_into(&mut out, version);
        out
    }

    /// Roughly the encoded size (at least it for blocks), so one allocation holds a message of
    /// blocks: growing a buffer to 256 KiB and beyond copies everything written so far again.
    pub(super) fn size_hint(&self) -> usize {
        const ITEM_OVERHEAD: usize = 96;
        let blocks: usize = self
            .blocks
            .iter()
            .map(|b| b.data.len() + ITEM_OVERHEAD)
            .sum();
        blocks + (self.wantlist.len() + self.presences.len() + 1) * ITEM_OVERHEAD
    }

    /// Encode into `out`: the fields into its buffer, each block's bytes through
    /// [`EncodeSink::data`] (appended to a plain buffer, or kept apart by a
    /// [`Pieces`](super::frame) sink that writes them without copying).
    pub(super) fn encode_into(&self, out: &mut impl EncodeSink, version: ProtocolVersion) {
        let wantlist = self.encode_wantlist(version);
        if !wantlist.is_empty() {
            put_bytes_field(out.buf(), 1, &wantlist);
        }
        for block in &self.blocks {
            if !version.supports_payload() {
                if version.can_express(&block.cid) {
                    put_data_field(out, 2, &block.data);
                }
                continue;
            }
            let prefix = CidPrefix::of(&block.cid).to_bytes();
            let len = proto::bytes_field_len(prefix.len()) + bytes_len(block.data.len());
            let buf = out.buf();
            put_tag(buf, 3, proto::WIRE_LEN);
            put_varint(buf, len as u64);
            put_bytes_field(buf, 1, &prefix);
            put_data_field(out, 2, &block.data);
        }
        let out = out.buf();
        if version.supports_have() {
            for p in &self.presences {
                let mut inner = Vec::new();
                put_bytes_field(&mut inner, 1, &p.cid.to_bytes());
                if p.presence == PresenceType::DontHave {
                    put_varint_field(&mut inner, 2, 1);
                }
                put_bytes_field(out, 4, &inner);
            }
            if self.pending_bytes != 0 {
                put_varint_field(out, 5, int32_to_wire(self.pending_bytes));
            }
        }
    }

    fn encode_wantlist(&self, version: ProtocolVersion) -> Vec<u8> {
        let mut out = Vec::new();
        for e in &self.wantlist {
            if !version.can_express(&e.cid) {
                continue;
            }
            if !version.supports_have() && e.want_type == WantType::Have && !e.cancel {
                continue;
            }
            let mut inner = Vec::new();
            put_bytes_field(&mut inner, 1, &e.cid.to_bytes());
            if e.priority != 0 {
                put_varint_field(&mut inner, 2, int32_to_wire(e.priority));
            }
            if e.cancel {
                put_varint_field(&mut inner, 3, 1);
            }
            if version.supports_have() {
                if e.want_type == WantType::Have {
                    put_varint_field(&mut inner, 4, 1);
                }
                if e.send_dont_have {
                    put_varint_field(&mut inner, 5, 1);
                }
            }
            put_bytes_field(&mut out, 1, &inner);
        }
        if self.full {
            put_varint_field(&mut out, 2, 1);
        }
        out
    }

    /// Decode one message (without its length prefix) from any protocol version.
    pub fn decode(bytes: &[u8]) -> Result<Self, MessageError> {
        Self::decode_with(bytes, &|data| Bytes::copy_from_slice(data))
    }

    /// [`Message::decode`] of a frame body already in a shared buffer: block data are slices of
    /// `frame`, not copies.
    pub fn decode_shared(frame: &Bytes) -> Result<Self, MessageError> {
        Self::decode_with(frame, &|data| frame.slice_ref(data))
    }

    /// Decoding, with `own` turning a block's bytes (borrowed from `bytes`) into block data.
    fn decode_with(bytes: &[u8], own: &dyn Fn(&[u8]) -> Bytes) -> Result<Self, MessageError> {
        if bytes.len() > MAX_MESSAGE_SIZE {
            return Err(MessageError::TooLarge { len: bytes.len() });
        }
        let mut msg = Message::default();
        let mut reader = Reader::new(bytes);
        while let Some(field) = next(&mut reader, "message")? {
            match field {
                Field::Bytes(1, wantlist) => msg.decode_wantlist(wantlist)?,
                Field::Bytes(2, data) => {
                    let block = if data.len() > MAX_BLOCK_SIZE {
                        Err(ItemError::BlockTooLarge { len: data.len() })
                    } else {
                        Ok(Block {
                            cid: block_cid(CODEC_DAG_PB, 0, data),
                            data: own(data),
                        })
                    };
                    msg.keep_block(block);
                }
                Field::Bytes(3, payload) => {
                    let block = decode_payload(payload, own)?;
                    msg.keep_block(block);
                }
                Field::Bytes(4, presence) => {
                    let presence = decode_presence(presence)?;
                    if msg.presences.len() >= MAX_ITEMS {
                        msg.reject(ItemError::TooMany("block presences"));
                    } else {
                        match presence {
                            Ok(p) => msg.presences.push(p),
                            Err(e) => msg.reject(e),
                        }
                    }
                }
                Field::Varint(5, v) => msg.pending_bytes = int32_from_wire(v),
                Field::Varint(n @ 1..=4, _) => return Err(wire_type("message", n)),
                Field::Bytes(5, _) => return Err(wire_type("message", 5)),
                // Unknown fields are skipped, as protobuf requires.
                _ => {}
            }
        }
        Ok(msg)
    }

    fn decode_wantlist(&mut self, bytes: &[u8]) -> Result<(), MessageError> {
        let mut reader = Reader::new(bytes);
        while let Some(field) = next(&mut reader, "wantlist")? {
            match field {
                Field::Bytes(1, entry) => {
                    let entry = decode_entry(entry)?;
                    if self.wantlist.len() >= MAX_ITEMS {
                        self.reject(ItemError::TooMany("wantlist entries"));
                        continue;
                    }
                    match entry {
                        Ok(e) => self.wantlist.push(e),
                        Err(e) => self.reject(e),
                    }
                }
                Field::Varint(2, full) => self.full = full != 0,
                Field::Varint(1, _) => return Err(wire_type("wantlist", 1)),
                Field::Bytes(2, _) => return Err(wire_type("wantlist", 2)),
                _ => {}
            }
        }
        Ok(())
    }

    fn keep_block(&mut self, block: Result<Block, ItemError>) {
        if self.blocks.len() >= MAX_ITEMS {
            self.reject(ItemError::TooMany("blocks"));
            return;
        }
        match block {
            Ok(b) => self.blocks.push(b),
            Err(e) => self.reject(e),
        }
    }

    fn reject(&mut self, error: ItemError) {
        self.rejected_count += 1;
        if self.rejected.len() < MAX_REPORTED_REJECTIONS {
            self.rejected.push(error);
        }
    }
}

/// Bytes a block adds to a message for `version`: what a sender budgets per block.
pub fn block_wire_len(cid: &Cid, data_len: usize, version: ProtocolVersion) -> usize {
    if version.supports_payload() {
        let prefix = CidPrefix::of(cid).encoded_len();
        bytes_len(proto::bytes_field_len(prefix) + bytes_len(data_len))
    } else {
        bytes_len(data_len)
    }
}

/// Bytes a HAVE or DONT_HAVE adds to a message (upper bound).
pub fn presence_wire_len(cid: &Cid) -> usize {
    bytes_len(bytes_len(cid.encoded_len()) + 2)
}

/// Length of a length-delimited field with a one-byte tag and `len` bytes of content.
fn bytes_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

fn next<'a>(
    reader: &mut Reader<'a>,
    part: &'static str,
) -> Result<Option<Field<'a>>, MessageError> {
    reader
        .next_field()
        .map_err(|source| MessageError::Proto { part, source })
}

fn wire_type(part: &'static str, field: u32) -> MessageError {
    MessageError::WireType { part, field }
}

/// Where [`Message::encode_into`] writes: a buffer for the fields, and a place for block bytes.
pub(super) trait EncodeSink {
    /// The buffer fields are appended to.
    fn buf(&mut self) -> &mut Vec<u8>;
    /// Block bytes, placed right after what [`buf`](Self::buf) holds so far.
    fn data(&mut self, data: &Bytes);
}

impl EncodeSink for Vec<u8> {
    fn buf(&mut self) -> &mut Vec<u8> {
        self
    }

    fn data(&mut self, data: &Bytes) {
        self.extend_from_slice(data);
    }
}

/// A length-delimited field whose value is block bytes.
fn put_data_field(out: &mut impl EncodeSink, field: u32, data: &Bytes) {
    put_tag(out.buf(), field, proto::WIRE_LEN);
    put_varint(out.buf(), data.len() as u64);
    out.data(data);
}

/// protobuf int32: negative values are sign-extended to ten bytes.
fn int32_to_wire(value: i32) -> u64 {
    i64::from(value) as u64
}

/// protobuf int32 readers keep the low 32 bits of whatever varint arrives.
fn int32_from_wire(value: u64) -> i32 {
    value as u32 as i32
}

fn parse_cid(bytes: &[u8], field: &'static str) -> Result<Cid, ItemError> {
    let bad = |reason: String| ItemError::BadCid { field, reason };
    let cid = Cid::try_from(bytes).map_err(|e| bad(e.to_string()))?;
    if cid.encoded_len() != bytes.len() {
        return Err(bad(format!(
            "{} trailing bytes",
            bytes.len().saturating_sub(cid.encoded_len())
        )));
    }
    Ok(cid)
}

fn decode_entry(bytes: &[u8]) -> Result<Result<WantlistEntry, ItemError>, MessageError> {
    let mut reader = Reader::new(bytes);
    let (mut cid, mut priority, mut cancel, mut want_type, mut send_dont_have) =
        (None, 0, false, 0, false);
    while let Some(field) = next(&mut reader, "wantlist entry")? {
        match field {
            Field::Bytes(1, c) => cid = Some(c),
            Field::Varint(2, p) => priority = int32_from_wire(p),
            Field::Varint(3, c) => cancel = c != 0,
            Field::Varint(4, t) => want_type = t,
            Field::Varint(5, d) => send_dont_have = d != 0,
            Field::Varint(1, _) => return Err(wire_type("wantlist entry", 1)),
            Field::Bytes(n @ 2..=5, _) => return Err(wire_type("wantlist entry", n)),
            _ => {}
        }
    }
    let want_type = match want_type {
        0 => WantType::Block,
        1 => WantType::Have,
        other => return Ok(Err(ItemError::UnknownWantType(other))),
    };
    Ok(
        parse_cid(cid.unwrap_or_default(), "wantlist entry block").map(|cid| WantlistEntry {
            cid,
            priority,
            cancel,
            want_type,
            send_dont_have,
        }),
    )
}

fn decode_payload(
    bytes: &[u8],
    own: &dyn Fn(&[u8]) -> Bytes,
) -> Result<Result<Block, ItemError>, MessageError> {
    let mut reader = Reader::new(bytes);
    let mut prefix = None;
    let mut data: &[u8] = &[];
    while let Some(field) = next(&mut reader, "payload block")? {
        match field {
            Field::Bytes(1, p) => prefix = Some(p),
            Field::Bytes(2, d) => data = d,
            Field::Varint(n @ 1..=2, _) => return Err(wire_type("payload block", n)),
            _ => {}
        }
    }
    let prefix = prefix.ok_or(MessageError::MissingField("prefix"))?;
    if data.len() > MAX_BLOCK_SIZE {
        return Ok(Err(ItemError::BlockTooLarge { len: data.len() }));
    }
    let cid = CidPrefix::parse(prefix).and_then(|p| p.cid_for(data));
    Ok(cid.map_err(ItemError::from).map(|cid| Block {
        cid,
        data: own(data),
    }))
}

fn decode_presence(bytes: &[u8]) -> Result<Result<BlockPresence, ItemError>, MessageError> {
    let mut reader = Reader::new(bytes);
    let mut cid = None;
    let mut kind = 0;
    while let Some(field) = next(&mut reader, "block presence")? {
        match field {
            Field::Bytes(1, c) => cid = Some(c),
            Field::Varint(2, t) => kind = t,
            Field::Varint(1, _) => return Err(wire_type("block presence", 1)),
            Field::Bytes(2, _) => return Err(wire_type("block presence", 2)),
            _ => {}
        }
    }
    let presence = match kind {
        0 => PresenceType::Have,
        1 => PresenceType::DontHave,
        other => return Ok(Err(ItemError::UnknownPresenceType(other))),
    };
    Ok(parse_cid(cid.unwrap_or_default(), "block presence cid")
        .map(|cid| BlockPresence { cid, presence }))
}
