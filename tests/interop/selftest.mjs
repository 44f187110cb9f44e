// Helia→Helia self-test of helia-peer.mjs: two peers on 127.0.0.1, a generated
// file (default 5 MB) added on A, fetched on B over bitswap, compared with cmp.
// Also: Kubo's CID for "hello world\n", error answers, a missing CID times out.
// Run: ./selftest.sh  (or node --import ./polyfill.mjs selftest.mjs [--bytes N])
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { HeliaPeer, transfer, writeRandomFile } from './driver.mjs'

const { values: args } = parseArgs({
  options: { bytes: { type: 'string', default: String(5 * 1024 * 1024 + 12345) }, verbose: { type: 'boolean', default: false } }
})
const dir = mkdtempSync(join(tmpdir(), 'helia-selftest-'))
let passed = 0
let failed = 0
function check (name, ok, detail = '') {
  if (ok) passed++
  else failed++
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ' ' + detail : ''}`)
}

const t0 = performance.now()
const [a, b] = await Promise.all([
  HeliaPeer.spawn('A', { quiet: !args.verbose }),
  HeliaPeer.spawn('B', { quiet: !args.verbose })
])
console.log(`peers up in ${Math.round(performance.now() - t0)} ms: A=${a.peerId} B=${b.peerId}`)
try {
  check('A listens on 127.0.0.1 only', a.addrs.length > 0 && a.addrs.every(x => x.startsWith('/ip4/127.0.0.1/tcp/') && x.endsWith(`/p2p/${a.peerId}`)), a.addrs.join(' '))

  const hw = join(dir, 'hello.txt')
  writeFileSync(hw, 'hello world\n')
  const hwCid = (await a.cmd({ cmd: 'add', path: hw })).cid
  check('"hello world\\n" has Kubo\'s CIDv0', hwCid === 'QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o', hwCid)

  const bad = await a.cmd({ cmd: 'frobnicate' }, { allowError: true })
  check('unknown command answers ok:false', bad.ok === false && typeof bad.error === 'string', bad.error)

  const size = Number(args.bytes)
  const src = join(dir, 'src.bin')
  await writeRandomFile(src, size)
  const r = await transfer(a, b, src, join(dir, 'out.bin'), { timeoutMs: 120000 })
  check(`B fetched ${size} bytes from A, cmp identical`, r.identical && r.bytes === size, r.cid)
  console.log(`add on A: ${r.addMs} ms; get on B: ${r.getMs} ms = ${r.mbPerS.toFixed(1)} MB/s (${r.mibPerS.toFixed(1)} MiB/s); B rss ${(r.fetcherRss / 1048576).toFixed(0)} MiB, peak ${(r.fetcherPeakRss / 1048576).toFixed(0)} MiB`)

  const peers = (await b.cmd({ cmd: 'peers' })).peers
  check('B lists A as connected', peers.includes(a.peerId), JSON.stringify(peers))

  // a CID that nobody has (sha256 of "nobody has this") must fail by timeout, not hang or crash
  const missing = join(dir, 'missing.txt')
  writeFileSync(missing, `nobody has this ${Date.now()}\n`)
  const other = await HeliaPeer.spawn('C')
  let missingCid
  try {
    missingCid = (await other.cmd({ cmd: 'add', path: missing })).cid
  } finally {
    await other.stop()
  }
  const miss = await b.cmd({ cmd: 'get', cid: missingCid, out: join(dir, 'missing.out'), timeoutMs: 2000 }, { allowError: true, timeoutMs: 20000 })
  check('get of an unavailable CID times out with ok:false', miss.ok === false, miss.error)
  const still = await b.cmd({ cmd: 'peers' }, { allowError: true })
  check('B still answers after the failed get', still.ok === true)
} catch (err) {
  check('unexpected error', false, err.stack)
} finally {
  await Promise.all([a.stop(), b.stop()])
  rmSync(dir, { recursive: true, force: true })
}
console.log(`total ${Math.round(performance.now() - t0)} ms`)
console.log(`${passed} passed, ${failed} failed`)
process.exit(failed === 0 ? 0 : 1)
