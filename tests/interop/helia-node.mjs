// Shared by helia-peer.mjs, check-cids.mjs and helia-transfer-bench.mjs:
// a minimal Helia node (TCP + Noise + Yamux, or QUIC v1 through
// @chainsafe/libp2p-quic; identify; bitswap only, no bootstrap, no DHT, no
// delegated routing, no HTTP gateways) listening on 127.0.0.1 only, and the
// UnixFS importer options that give Kubo's CIDs.
import './polyfill.mjs' // also loaded via --import; kept here so a plain `node file.mjs` works too
import { noise } from '@chainsafe/libp2p-noise'
import { quic } from '@chainsafe/libp2p-quic'
import { yamux } from '@chainsafe/libp2p-yamux'
import { withBitswap } from '@helia/bitswap'
import { withLibp2pLight } from '@helia/libp2p'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { FsBlockstore } from 'blockstore-fs'
import { createHeliaLight } from 'helia'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'

/**
 * Importer options equal to Kubo's `ipfs add` defaults (CIDv0, dag-pb leaves
 * holding UnixFS `File` data, 256 KiB fixed chunks, balanced layout with 174
 * links per node, a single-chunk file is its own root). With cidVersion 1,
 * rawLeaves defaults to true, like `ipfs add --cid-version=1`.
 *
 * @helia/unixfs has its own defaults (CIDv1, raw leaves, 1 MiB chunks, 1024
 * links) that it spreads *over* the importer's, so every one of these must
 * be passed explicitly; `profile: 'unixfs-v0-2015'` alone is not enough.
 */
export function kuboImportOptions ({ cidVersion = 0, rawLeaves } = {}) {
  if (cidVersion !== 0 && cidVersion !== 1) throw new Error(`bad cidVersion ${cidVersion}`)
  if (rawLeaves == null) rawLeaves = cidVersion === 1
  if (cidVersion === 0 && rawLeaves) throw new Error('rawLeaves needs cidVersion 1 (CIDv0 is dag-pb only)')
  return {
    cidVersion,
    rawLeaves,
    leafType: 'file',
    reduceSingleLeafToSelf: true,
    chunker: fixedSize({ chunkSize: 262144 }),
    layout: balanced({ maxChildrenPerNode: 174 }),
    profile: cidVersion === 0 ? 'unixfs-v0-2015' : undefined,
    wrapWithDirectory: false
  }
}

/** The libp2p transport options of one transport: 'tcp' or 'quic'. */
function transportOptions (transport, port) {
  if (transport === 'tcp') {
    return {
      addresses: { listen: [`/ip4/127.0.0.1/tcp/${port}`] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()]
    }
  }
  if (transport === 'quic') {
    // QUIC brings its own encryption (TLS 1.3) and stream multiplexing.
    return {
      addresses: { listen: [`/ip4/127.0.0.1/udp/${port}/quic-v1`] },
      transports: [quic()]
    }
  }
  throw new Error(`unknown transport ${transport}; use tcp or quic`)
}

/**
 * Create and start a Helia node. `repo`: a folder for an on-disk blockstore
 * (blocks otherwise live in memory). `port`: TCP or UDP port on 127.0.0.1
 * (0 = any). `transport`: 'tcp' (Noise, Yamux) or 'quic' (QUIC v1), the only
 * one it listens on and dials with.
 */
export async function startHelia ({ repo, port = 0, bitswap = {}, transport = 'tcp' } = {}) {
  const init = {}
  if (repo != null && repo !== '') {
    const store = new FsBlockstore(repo)
    await store.open()
    init.blockstore = store
  }
  const helia = withBitswap(withLibp2pLight(createHeliaLight(init), {
    ...transportOptions(transport, port),
    peerDiscovery: [],
    services: { identify: identify() }
  }), bitswap)
  await helia.start()
  return helia
}

/** Multiaddrs of this node, each ending in /p2p/<peerId>. */
export function listenAddrs (helia) {
  const id = helia.libp2p.peerId.toString()
  return helia.libp2p.getMultiaddrs().map(ma => {
    const s = ma.toString()
    return s.includes('/p2p/') ? s : `${s}/p2p/${id}`
  })
}
