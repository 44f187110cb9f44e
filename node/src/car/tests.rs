//! CAR reader and writer tests: the gateway-conformance fixtures, round trips, corruption,
//! truncation, hostile lengths, CARv2 and mutated input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use cid::Cid;

use super::*;
use crate::content::cid::{CODEC_DAG_PB, CODEC_RAW, block_cid, parse_cid};
use crate::content::links::fuzzing::XorShift;
use crate::content::links::links;

/// The fixtures live in the shared folder beside the repository (a copy sits beside CI's clone);
/// `DISTRIBUTE_GATEWAY_FIXTURES` overrides.
fn fixtures_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DISTRIBUTE_GATEWAY_FIXTURES") {
        return dir.into();
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        manifest.join("../../shared/gateway-fixtures"),
        PathBuf::from("/work/shared/gateway-fixtures"),
    ];
    candidates
        .into_iter()
        .find(|d| d.join("INDEX.md").is_file())
        .expect("gateway fixtures not found: set DISTRIBUTE_GATEWAY_FIXTURES to the folder holding INDEX.md")
}

/// `(file, root, block count)` rows of the fixtures' INDEX.md table.
fn fixture_index() -> Vec<(PathBuf, Cid, usize)> {
    let dir = fixtures_dir();
    let index = std::fs::read_to_string(dir.join("INDEX.md")).unwrap();
    index
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line
                .trim()
                .trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect();
            let [file, root, count] = cells[..] else {
                return None;
            };
            let count = count.parse().ok()?;
            Some((dir.join(file), parse_cid(root).unwrap(), count))
        })
        .collect()
}

type Block = (Cid, Vec<u8>);

fn read_all(bytes: &[u8]) -> Result<(Vec<Cid>, Vec<Block>), CarError> {
    let reader = CarReader::new(bytes)?;
    let roots = reader.roots().to_vec();
    let blocks = reader.collect::<Result<Vec<_>, _>>()?;
    Ok((roots, blocks))
}

#[test]
fn every_gateway_fixture_parses_with_its_roots_and_block_count() {
    let index = fixture_index();
    assert_eq!(index.len(), 26, "INDEX.md rows");
    for (path, root, count) in index {
        let file = std::fs::File::open(&path).unwrap();
        let mut reader = CarReader::new(file).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(reader.version(), 1);
        assert_eq!(reader.roots(), [root], "{}", path.display());
        let mut seen = 0;
        while let Some((cid, data)) = reader
            .next_block()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        {
            seen += 1;
            // Every codec in the fixtures is either understood or a leaf.
            links(&cid, &data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        assert_eq!(seen, count, "{}", path.display());
    }
}

#[test]
fn dag_cbor_fixture_links_are_followed() {
    let path = fixtures_dir().join("path_gateway_dag/dag-cbor-traversal.car");
    let (roots, blocks) = read_all(&std::fs::read(path).unwrap()).unwrap();
    let root = blocks.iter().find(|(c, _)| *c == roots[0]).unwrap();
    let found = links(&root.0, &root.1).unwrap();
    assert!(!found.is_empty(), "the traversal root links onwards");
    for cid in found {
        assert!(
            blocks.iter().any(|(c, _)| *c == cid),
            "linked {cid} is in the CAR"
        );
    }
}

fn sample_blocks() -> Vec<Block> {
    let raw = b"hello world".to_vec();
    let pb = vec![0x0a, 0x02, 0x08, 0x01];
    let identity = Cid::new_v1(CODEC_RAW, multihash::Multihash::wrap(0, b"inline").unwrap());
    let big = vec![0xabu8; 1024 * 1024];
    vec![
        (block_cid(CODEC_RAW, 1, &raw), raw),
        (block_cid(CODEC_DAG_PB, 0, &pb), pb),
        (identity, b"inline".to_vec()),
        (block_cid(CODEC_RAW, 1, &big), big),
    ]
}

fn sample_car() -> (Vec<Cid>, Vec<Block>, Vec<u8>) {
    let blocks = sample_blocks();
    let roots = vec![blocks[1].0, blocks[0].0];
    let mut writer = CarWriter::new(Vec::new(), &roots).unwrap();
    for (cid, data) in &blocks {
        writer.write_block(cid, data).unwrap();
    }
    (roots, blocks, writer.finish().unwrap())
}

#[test]
fn round_trips_roots_and_blocks() {
    let (roots, blocks, bytes) = sample_car();
    assert_eq!(read_all(&bytes).unwrap(), (roots, blocks));
    let empty = CarWriter::new(Vec::new(), &[]).unwrap().finish().unwrap();
    assert_eq!(read_all(&empty).unwrap(), (vec![], vec![]));
}

#[test]
fn flipped_byte_is_reported_naming_the_cid() {
    let (_, blocks, mut bytes) = sample_car();
    let needle = b"hello world";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    bytes[at + 3] ^= 0x01;
    let mut reader = CarReader::new(&bytes[..]).unwrap();
    let err = reader.next_block().unwrap_err();
    assert!(
        matches!(&err, CarError::HashMismatch { cid, .. } if *cid == blocks[0].0),
        "{err:?}"
    );
    assert!(err.to_string().contains(&blocks[0].0.to_string()), "{err}");
    assert!(
        reader.next_block().unwrap().is_none(),
        "the reader stops after an error"
    );
}

#[test]
fn truncation_anywhere_is_a_clean_error() {
    let (_, blocks, bytes) = sample_car();
    // Section boundaries: where a shorter file would still be a valid CAR.
    let sections: Vec<usize> = blocks
        .iter()
        .map(|(cid, data)| {
            let len = cid.encoded_len() + data.len();
            let mut prefix = Vec::new();
            put_varint(&mut prefix, len as u64);
            prefix.len() + len
        })
        .collect();
    let mut pos = bytes.len() - sections.iter().sum::<usize>();
    let mut boundaries = vec![pos];
    for len in sections {
        pos += len;
        boundaries.push(pos);
    }
    assert_eq!(pos, bytes.len());
    let step = 997; // every cut in the small blocks, a sample of the 1 MiB one
    for cut in (0..bytes.len()).filter(|&c| c < 4096 || c % step == 0) {
        match read_all(&bytes[..cut]) {
            Ok((_, got)) => assert!(
                boundaries.contains(&cut) && got.len() < blocks.len(),
                "cut {cut}"
            ),
            Err(CarError::Truncated { .. }) => {}
            Err(e) => panic!("cut {cut}: {e}"),
        }
    }
}

#[test]
fn hostile_lengths_are_refused_before_allocating() {
    let header = {
        let mut w = CarWriter::new(Vec::new(), &[]).unwrap();
        w.write_block(&sample_blocks()[0].0, &sample_blocks()[0].1)
            .unwrap();
        w.finish().unwrap()
    };
    let body_start = header.len() - (sample_blocks()[0].0.encoded_len() + 11 + 1);
    let mut huge = header[..body_start].to_vec();
    put_varint(&mut huge, u64::MAX >> 1);
    assert!(matches!(
        read_all(&huge),
        Err(CarError::SectionTooLarge { .. })
    ));
    let mut over = header[..body_start].to_vec();
    put_varint(&mut over, MAX_SECTION_LEN + 1);
    assert!(
        matches!(read_all(&over), Err(CarError::SectionTooLarge { len, .. }) if len == MAX_SECTION_LEN + 1)
    );

    let mut big_header = Vec::new();
    put_varint(&mut big_header, MAX_HEADER_LEN + 1);
    assert!(matches!(
        read_all(&big_header),
        Err(CarError::HeaderTooLarge { .. })
    ));
    assert!(matches!(
        read_all(&[0xff; 12]),
        Err(CarError::BadVarint { offset: 0 })
    ));
    assert!(matches!(
        read_all(&[]),
        Err(CarError::Truncated { what: "header", .. })
    ));

    let too_big = vec![0u8; MAX_SECTION_LEN as usize];
    let cid = block_cid(CODEC_RAW, 1, &too_big);
    let mut w = CarWriter::new(Vec::new(), &[]).unwrap();
    assert!(matches!(
        w.write_block(&cid, &too_big),
        Err(CarError::BlockTooLarge { .. })
    ));
}

#[test]
fn bad_headers_are_refused() {
    use crate::content::cbor::{Value, encode};
    let with = |value: Value| {
        let body = encode(&value).unwrap();
        let mut out = Vec::new();
        put_varint(&mut out, body.len() as u64);
        out.extend_from_slice(&body);
        read_all(&out).map(|_| ())
    };
    let map = |entries: Vec<(&str, Value)>| {
        Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        )
    };
    assert!(matches!(
        with(map(vec![("version", Value::Integer(3))])),
        Err(CarError::UnsupportedVersion(3))
    ));
    assert!(matches!(
        with(map(vec![("version", Value::Integer(1))])),
        Err(CarError::BadHeader { .. })
    ));
    let not_links = map(vec![
        ("version", Value::Integer(1)),
        ("roots", Value::Array(vec![Value::Integer(1)])),
    ]);
    assert!(matches!(with(not_links), Err(CarError::BadHeader { .. })));
    assert!(matches!(
        with(Value::Array(vec![])),
        Err(CarError::BadHeader { .. })
    ));
}

/// A CARv2 as go-car writes it: pragma, header, padding, v1 payload, then an index we skip.
fn wrap_v2(v1: &[u8], padding: usize) -> Vec<u8> {
    let mut out = vec![
        0x0a, 0xa1, 0x67, b'v', b'e', b'r', b's', b'i', b'o', b'n', 0x02,
    ];
    let data_offset = (11 + 40 + padding) as u64;
    out.extend_from_slice(&[0u8; 16]);
    out.extend_from_slice(&data_offset.to_le_bytes());
    out.extend_from_slice(&(v1.len() as u64).to_le_bytes());
    out.extend_from_slice(&(data_offset + v1.len() as u64).to_le_bytes());
    out.resize(data_offset as usize, 0);
    out.extend_from_slice(v1);
    out.extend_from_slice(b"\x80\x80\x04 an index that is not blocks");
    out
}

#[test]
fn reads_carv2_payload_and_stops_at_its_end() {
    let (roots, blocks, v1) = sample_car();
    let v2 = wrap_v2(&v1, 13);
    let reader = CarReader::new(&v2[..]).unwrap();
    assert_eq!(reader.version(), 2);
    assert_eq!(read_all(&v2).unwrap(), (roots, blocks));

    let fixture = std::fs::read(fixtures_dir().join("path_gateway_dag/dag-pb.car")).unwrap();
    let (roots, blocks) = read_all(&wrap_v2(&fixture, 0)).unwrap();
    assert_eq!((roots.len(), blocks.len()), (1, 4));

    let cut = wrap_v2(&v1, 0);
    assert!(matches!(
        read_all(&cut[..cut.len() - 40 - v1.len() / 2]),
        Err(CarError::Truncated { .. })
    ));
    let mut lying = wrap_v2(&v1, 0);
    lying[11 + 24..11 + 32].copy_from_slice(&((v1.len() - 5) as u64).to_le_bytes());
    assert!(matches!(
        read_all(&lying),
        Err(CarError::PastPayload { .. })
    ));
}

/// The reader on thousands of mutated CARs: never a panic, and whatever it returns is verified.
#[test]
fn mutated_cars_never_panic_and_never_yield_unverified_blocks() {
    let small: Vec<Block> = sample_blocks().into_iter().take(3).collect();
    let mut w = CarWriter::new(Vec::new(), &[small[0].0]).unwrap();
    for (cid, data) in &small {
        w.write_block(cid, data).unwrap();
    }
    let v1 = w.finish().unwrap();
    let fixture =
        std::fs::read(fixtures_dir().join("path_gateway_dag/dag-cbor-traversal.car")).unwrap();
    let seeds = vec![wrap_v2(&v1, 3), v1, fixture];
    let mut rng = XorShift::new(42);
    let mut yielded = 0;
    for _ in 0..3000 {
        let input = rng.mutate(&seeds);
        let Ok(reader) = CarReader::new(&input[..]) else {
            continue;
        };
        for block in reader {
            let Ok((cid, data)) = block else { break };
            crate::content::cid::verify(&cid, &data).unwrap();
            yielded += 1;
        }
    }
    assert!(
        yielded > 100,
        "mutations should often leave blocks readable ({yielded})"
    );
}

#[test]
fn sha2_512_blocks_are_verified() {
    use sha2::{Digest, Sha512};
    let data = b"sha2-512 block".to_vec();
    let mh = multihash::Multihash::wrap(0x13, &Sha512::digest(&data)).unwrap();
    let cid = Cid::new_v1(CODEC_RAW, mh);
    let mut w = CarWriter::new(Vec::new(), &[cid]).unwrap();
    w.write_block(&cid, &data).unwrap();
    let mut bytes = w.finish().unwrap();
    assert_eq!(read_all(&bytes).unwrap().1, vec![(cid, data)]);
    let last = bytes.len() - 1;
    bytes[last] ^= 0x80;
    assert!(matches!(read_all(&bytes), Err(CarError::HashMismatch { cid: c, .. }) if c == cid));

    let blake3 = Cid::new_v1(
        CODEC_RAW,
        multihash::Multihash::wrap(0x1e, &[0; 32]).unwrap(),
    );
    let mut w = CarWriter::new(Vec::new(), &[]).unwrap();
    w.write_block(&blake3, b"x").unwrap();
    let bytes = w.finish().unwrap();
    assert!(matches!(
        read_all(&bytes),
        Err(CarError::UnsupportedHash { code: 0x1e, .. })
    ));
}
