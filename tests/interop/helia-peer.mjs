// A long-running Helia peer driven by line-delimited JSON on stdin; one JSON
// line is answered on stdout per command, in order (commands run one at a
// time). Everything else (logs, warnings) goes to stderr.
//
// Run: node --import ./polyfill.mjs helia-peer.mjs [--port N] [--repo DIR] [--transport T]
//   --port N       TCP or UDP port on 127.0.0.1 (default 0: any free port)
//   --repo DIR     keep blocks on disk in DIR (default: in memory)
//   --transport T  tcp (Noise + Yamux, the default) or quic (QUIC v1)
//
// On start: {"event":"ready","peerId":"…","addrs":["/ip4/127.0.0.1/tcp/…/p2p/…"]}
// Commands (an optional "id" field is echoed back in the answer):
//   {"cmd":"add","path":"/abs/file","rawLeaves":false,"cidVersion":0}
//       -> {"ok":true,"cid":"…","bytes":N,"ms":T}   (Kubo `ipfs add` defaults)
//   {"cmd":"dial","addr":"/ip4/…/tcp/…/p2p/…"}  -> {"ok":true,"peerId":"…"}
//   {"cmd":"get","cid":"…","out":"/abs/outfile","timeoutMs":60000}
//       -> {"ok":true,"bytes":N,"ms":T}           (UnixFS cat over bitswap)
//   {"cmd":"peers"}  -> {"ok":true,"peers":["12D3…", …]}
//   {"cmd":"id"}     -> {"ok":true,"peerId":"…","addrs":[…]}
//   {"cmd":"mem"}    -> {"ok":true,"rss":N,"peakRss":N,"heapUsed":N,…} (bytes)
//   {"cmd":"stop"}   -> {"ok":true}, then the process exits 0
// Any failure: {"ok":false,"error":"…"}; the process keeps running.
import './polyfill.mjs' // also loaded via --import; kept here so a plain `node file.mjs` works too
import { createReadStream, createWriteStream, readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { parseArgs } from 'node:util'
import { unixfs } from '@helia/unixfs'
import { multiaddr } from '@multiformats/multiaddr'
import { CID } from 'multiformats/cid'
import { kuboImportOptions, listenAddrs, startHelia } from './helia-node.mjs'

// stdout carries only protocol lines: send stray console output to stderr.
for (const k of ['log', 'info', 'debug']) console[k] = console.error
process.on('uncaughtException', err => { console.error('uncaughtException:', err) })
process.on('unhandledRejection', err => { console.error('unhandledRejection:', err) })

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    repo: { type: 'string' },
    transport: { type: 'string', default: 'tcp' }
  }
})

function reply (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

const helia = await startHelia({ repo: args.repo, port: Number(args.port), transport: args.transport })
const fs = unixfs(helia)
const peerId = helia.libp2p.peerId.toString()
reply({ event: 'ready', peerId, addrs: listenAddrs(helia) })
console.error(`helia-peer ${peerId} listening on ${listenAddrs(helia).join(' ')}`)

let stopping = false
async function stop (code) {
  if (stopping) return
  stopping = true
  try { await helia.stop() } catch (err) { console.error('stop:', err) }
  process.exit(code)
}

const handlers = {
  async add ({ path, rawLeaves, cidVersion }) {
    if (typeof path !== 'string') throw new Error('add: "path" (string) required')
    const started = performance.now()
    let bytes = 0
    const stream = createReadStream(path, { highWaterMark: 262144 })
    stream.on('data', b => { bytes += b.length })
    const cid = await fs.addByteStream(stream, kuboImportOptions({ cidVersion: cidVersion ?? 0, rawLeaves }))
    return { cid: cid.toString(), bytes, ms: Math.round(performance.now() - started) }
  },
  async dial ({ addr }) {
    if (typeof addr !== 'string') throw new Error('dial: "addr" (string) required')
    const conn = await helia.libp2p.dial(multiaddr(addr), { signal: AbortSignal.timeout(30000) })
    return { peerId: conn.remotePeer.toString() }
  },
  async get ({ cid, out, timeoutMs }) {
    if (typeof cid !== 'string') throw new Error('get: "cid" (string) required')
    if (typeof out !== 'string') throw new Error('get: "out" (string) required')
    const signal = AbortSignal.timeout(timeoutMs ?? 60000)
    const started = performance.now()
    let bytes = 0
    const source = fs.cat(CID.parse(cid), { signal })
    async function * counted () {
      for await (const chunk of source) {
        bytes += chunk.length
        yield chunk
      }
    }
    try {
      await pipeline(Readable.from(counted()), createWriteStream(out), { signal })
    } catch (err) {
      if (signal.aborted) throw new Error(`timeout after ${timeoutMs ?? 60000} ms (${bytes} bytes received): ${err.message}`)
      throw err
    }
    return { bytes, ms: Math.round(performance.now() - started) }
  },
  async peers () {
    return { peers: helia.libp2p.getPeers().map(p => p.toString()) }
  },
  async id () {
    return { peerId, addrs: listenAddrs(helia) }
  },
  async mem () {
    return memory()
  },
  async stop () {
    return {}
  }
}

/** Current and peak memory of this process, in bytes (peak from /proc where available). */
function memory () {
  const m = process.memoryUsage()
  let peakRss = null
  try {
    const hwm = readFileSync('/proc/self/status', 'utf8').match(/^VmHWM:\s+(\d+) kB/m)
    if (hwm != null) peakRss = Number(hwm[1]) * 1024
  } catch {}
  return { rss: m.rss, peakRss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers }
}

async function handle (line) {
  let msg
  try {
    msg = JSON.parse(line)
  } catch (err) {
    return { ok: false, error: `bad JSON: ${err.message}` }
  }
  const idField = msg != null && msg.id !== undefined ? { id: msg.id } : {}
  try {
    const h = msg != null && typeof msg.cmd === 'string' && Object.hasOwn(handlers, msg.cmd) ? handlers[msg.cmd] : null
    if (h == null) throw new Error(`unknown cmd: ${JSON.stringify(msg?.cmd)}`)
    return { ...idField, ok: true, ...(await h(msg)) }
  } catch (err) {
    const error = err?.name != null && err.name !== 'Error' ? `${err.name}: ${err.message}` : String(err?.message ?? err)
    return { ...idField, ok: false, error }
  }
}

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity })
for await (const line of rl) {
  if (line.trim() === '') continue
  const answer = await handle(line)
  reply(answer)
  if (answer.ok && JSON.parse(line).cmd === 'stop') break
}
// "stop" or end of stdin
await stop(0)
