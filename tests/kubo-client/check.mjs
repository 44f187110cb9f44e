// Drives a running distribute node's RPC API with the real kubo-rpc-client and prints one
// JSON object with what each call returned; tests/kubo_client.rs checks it.
// Usage: node --import ../interop/polyfill.mjs check.mjs <api base url> [bearer token]
import { create } from 'kubo-rpc-client'

const [url, token] = process.argv.slice(2)
const client = create({
  url: `${url}/api/v0`,
  headers: token ? { authorization: `Bearer ${token}` } : {}
})
const text = (s) => new TextEncoder().encode(s)

async function collect (iterable) {
  const out = []
  for await (const x of iterable) out.push(x)
  return out
}

async function catString (cid, options) {
  const chunks = await collect(client.cat(cid, options))
  return Buffer.concat(chunks.map((c) => Buffer.from(c))).toString('utf8')
}

const result = {}

const id = await client.id()
result.id = { id: id.id.toString(), addresses: id.addresses.map(String), agentVersion: id.agentVersion }

const file = await client.add({ path: 'hello.txt', content: text('hello from kubo-rpc-client\n') })
result.file = { cid: file.cid.toString(), path: file.path, size: file.size }

const dir = await collect(client.addAll([
  { path: 'tree/a.txt', content: text('first\n') },
  { path: 'tree/sub/b.txt', content: text('second\n') }
]))
result.dir = dir.map((e) => ({ cid: e.cid.toString(), path: e.path, size: e.size }))

result.cat = await catString(file.cid)
result.catRange = await catString(file.cid, { offset: 6, length: 4 })
const root = dir[dir.length - 1].cid
result.catPath = await catString(`/ipfs/${root}/sub/b.txt`)

const unpinned = await client.add(text('pin me later\n'), { pin: false })
result.unpinned = unpinned.cid.toString()
result.pinAdd = (await client.pin.add(unpinned.cid)).toString()
result.pinLs = (await collect(client.pin.ls())).map((p) => ({ cid: p.cid.toString(), type: p.type }))
result.pinLsOne = (await collect(client.pin.ls({ paths: [unpinned.cid] }))).map((p) => ({ cid: p.cid.toString(), type: p.type }))
result.pinRm = (await client.pin.rm(unpinned.cid)).toString()
result.pinLsAfterRm = (await collect(client.pin.ls({ type: 'recursive' }))).map((p) => p.cid.toString())

try {
  await client.pin.rm(unpinned.cid)
  result.pinRmAgain = 'succeeded'
} catch (e) {
  result.pinRmAgain = String(e.message)
}

console.log(JSON.stringify(result))
