// Helia→Helia transfer benchmark over loopback: for each size, a fresh pair of
// helia-peer.mjs processes; a random file added on A, fetched on B over bitswap,
// compared with cmp. Prints MB/s and the fetching process's (B's) peak RSS.
// Run: node --import ./polyfill.mjs helia-transfer-bench.mjs [--mib 16,256] [--disk] [--cid-version 1] [--json]
//   --disk   keep blocks in on-disk FsBlockstores (default: in memory)
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { HeliaPeer, transfer, writeRandomFile } from './driver.mjs'

const { values: args } = parseArgs({
  options: {
    mib: { type: 'string', default: '256' },
    disk: { type: 'boolean', default: false },
    'cid-version': { type: 'string', default: '0' },
    json: { type: 'boolean', default: false },
    tmp: { type: 'string', default: tmpdir() }
  }
})
const sizes = args.mib.split(',').map(Number)
const results = []
let failed = 0
for (const mib of sizes) {
  const dir = mkdtempSync(join(args.tmp, 'helia-bench-'))
  const peerArgs = name => {
    if (!args.disk) return []
    mkdirSync(join(dir, name))
    return ['--repo', join(dir, name)]
  }
  const [a, b] = await Promise.all([HeliaPeer.spawn('A', { args: peerArgs('A') }), HeliaPeer.spawn('B', { args: peerArgs('B') })])
  try {
    const src = join(dir, 'src.bin')
    await writeRandomFile(src, mib * 1048576, mib)
    const r = await transfer(a, b, src, join(dir, 'out.bin'), { cidVersion: Number(args['cid-version']), timeoutMs: 1800000 })
    results.push({ mib, blockstore: args.disk ? 'fs' : 'memory', ...r })
    if (!r.identical) failed++
    if (!args.json) {
      console.log(`${mib} MiB (${args.disk ? 'fs' : 'memory'} blockstore, CIDv${args['cid-version']}): ` +
        `get ${(r.getMs / 1000).toFixed(2)} s = ${r.mbPerS.toFixed(1)} MB/s (${r.mibPerS.toFixed(1)} MiB/s); ` +
        `add ${(r.addMs / 1000).toFixed(2)} s; fetcher RSS ${(r.fetcherRss / 1048576).toFixed(0)} MiB, ` +
        `peak ${(r.fetcherPeakRss / 1048576).toFixed(0)} MiB; ${r.identical ? 'identical' : 'MISMATCH'}`)
    }
  } catch (err) {
    failed++
    console.error(`${mib} MiB: ${err.stack}`)
  } finally {
    await Promise.all([a.stop(), b.stop()])
    rmSync(dir, { recursive: true, force: true })
  }
}
if (args.json) console.log(JSON.stringify(results))
process.exit(failed === 0 ? 0 : 1)
