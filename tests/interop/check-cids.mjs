// Offline check that helia-node.mjs's importer options give Kubo's CIDs:
// "hello world\n" -> QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o, plus every
// `kind: file` vector in shared/vectors/unixfs.jsonl when that file is found
// (argument 1, or ../../../shared/vectors/unixfs.jsonl from this folder).
// Run: node --import ./polyfill.mjs check-cids.mjs [path/to/unixfs.jsonl]
import './polyfill.mjs' // also loaded via --import; kept here so a plain `node file.mjs` works too
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { unixfs } from '@helia/unixfs'
import { MemoryBlockstore } from 'blockstore-core'
import { createHeliaLight } from 'helia'
import { kuboImportOptions } from './helia-node.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const helia = createHeliaLight({ blockstore: new MemoryBlockstore() })
await helia.start()
const fs = unixfs(helia)

/** gen(seed, size) from shared/vectors/README.md */
function gen (seed, size) {
  const out = Buffer.alloc(size + 32)
  let off = 0
  let counter = BigInt(seed)
  const b = Buffer.alloc(8)
  while (off < size) {
    b.writeBigUInt64BE(counter)
    createHash('sha256').update(b).digest().copy(out, off)
    off += 32
    counter++
  }
  return out.subarray(0, size)
}

let passed = 0
let failed = 0
async function check (name, bytes, opts, want) {
  const cid = (await fs.addBytes(bytes, kuboImportOptions(opts))).toString()
  if (cid === want) {
    passed++
    console.log(`ok   ${name} ${cid}`)
  } else {
    failed++
    console.log(`FAIL ${name}: got ${cid}, want ${want}`)
  }
}

await check('hello-world-v0', new TextEncoder().encode('hello world\n'), {}, 'QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o')

const vectors = process.argv[2] ?? join(here, '../../../shared/vectors/unixfs.jsonl')
if (existsSync(vectors)) {
  for (const line of readFileSync(vectors, 'utf8').split('\n')) {
    if (line.trim() === '') continue
    const v = JSON.parse(line)
    if (v.kind !== 'file') continue
    const opts = v.profile === 'v0' ? { cidVersion: 0 } : { cidVersion: 1 }
    await check(`file seed=${v.seed} size=${v.size} ${v.profile}`, gen(v.seed, v.size), opts, v.cid)
  }
} else {
  console.log(`(no vectors file at ${vectors}; checked hello world only)`)
}
await helia.stop()
console.log(`${passed} passed, ${failed} failed`)
process.exit(failed === 0 ? 0 : 1)
