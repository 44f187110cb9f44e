// Spawns helia-peer.mjs and talks to it: `const p = await HeliaPeer.spawn('A')`,
// `await p.cmd({ cmd: 'add', path })`, `await p.stop()`. Used by selftest.mjs
// and helia-transfer-bench.mjs; a Rust test can speak the same protocol.
import { spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))

export class HeliaPeer {
  static async spawn (name, { args = [], readyTimeoutMs = 30000, quiet = true } = {}) {
    const child = spawn(process.execPath, ['--import', join(here, 'polyfill.mjs'), join(here, 'helia-peer.mjs'), ...args], {
      cwd: here,
      stdio: ['pipe', 'pipe', 'pipe']
    })
    const peer = new HeliaPeer(name, child, quiet)
    const ready = await peer.#next(readyTimeoutMs)
    if (ready.event !== 'ready') throw new Error(`${name}: expected ready, got ${JSON.stringify(ready)}`)
    peer.peerId = ready.peerId
    peer.addrs = ready.addrs
    return peer
  }

  #waiters = []
  #lines = []
  #exited = null

  constructor (name, child, quiet) {
    this.name = name
    this.child = child
    this.pid = child.pid
    createInterface({ input: child.stdout }).on('line', line => {
      let msg
      try { msg = JSON.parse(line) } catch { msg = { ok: false, error: `non-JSON stdout line: ${line}` } }
      const w = this.#waiters.shift()
      if (w != null) w.resolve(msg)
      else this.#lines.push(msg)
    })
    createInterface({ input: child.stderr }).on('line', line => {
      if (!quiet) process.stderr.write(`[${name}] ${line}\n`)
    })
    child.on('exit', (code, sig) => {
      this.#exited = { code, sig }
      for (const w of this.#waiters.splice(0)) w.reject(new Error(`${name} exited (code ${code}, signal ${sig})`))
    })
  }

  #next (timeoutMs) {
    if (this.#lines.length > 0) return Promise.resolve(this.#lines.shift())
    if (this.#exited != null) return Promise.reject(new Error(`${this.name} has exited`))
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`${this.name}: no answer within ${timeoutMs} ms`))
      }, timeoutMs)
      this.#waiters.push({
        resolve: v => { clearTimeout(timer); resolve(v) },
        reject: e => { clearTimeout(timer); reject(e) }
      })
    })
  }

  /** Send one command, wait for its answer (throws on {"ok":false} unless allowError). */
  async cmd (obj, { timeoutMs = 600000, allowError = false } = {}) {
    this.child.stdin.write(JSON.stringify(obj) + '\n')
    const answer = await this.#next(timeoutMs)
    if (!answer.ok && !allowError) throw new Error(`${this.name} ${obj.cmd}: ${answer.error}`)
    return answer
  }

  async stop () {
    if (this.#exited != null) return
    const exited = new Promise(resolve => this.child.once('exit', resolve))
    try { await this.cmd({ cmd: 'stop' }, { timeoutMs: 10000 }) } catch {}
    const t = setTimeout(() => this.child.kill('SIGKILL'), 10000)
    await exited
    clearTimeout(t)
  }
}

/** Write `bytes` pseudo-random bytes to `path` (deterministic per seed, fast). */
export async function writeRandomFile (path, bytes, seed = 1) {
  const { createWriteStream } = await import('node:fs')
  const { createCipheriv } = await import('node:crypto')
  const key = Buffer.alloc(32)
  key.writeUInt32BE(seed)
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16))
  const zeros = Buffer.alloc(1 << 20)
  const out = createWriteStream(path)
  let left = bytes
  while (left > 0) {
    const n = Math.min(left, zeros.length)
    if (!out.write(cipher.update(zeros.subarray(0, n)))) await new Promise(resolve => out.once('drain', resolve))
    left -= n
  }
  await new Promise((resolve, reject) => out.end(err => err ? reject(err) : resolve()))
}

/** `cmp` the two files; resolves true when identical. */
export async function sameBytes (a, b) {
  const { spawnSync } = await import('node:child_process')
  const r = spawnSync('cmp', [a, b], { stdio: ['ignore', 'pipe', 'pipe'] })
  if (r.error != null) throw r.error
  if (r.status !== 0) process.stderr.write(`cmp ${a} ${b}: ${r.stdout}${r.stderr}`)
  return r.status === 0
}

/**
 * Helia→Helia over loopback: add `src` on `from`, dial `from` from `to`, get it
 * on `to` into `out`, compare. Returns timings and the fetcher's memory.
 */
export async function transfer (from, to, src, out, { cidVersion = 0, rawLeaves, timeoutMs = 600000 } = {}) {
  const added = await from.cmd({ cmd: 'add', path: src, cidVersion, rawLeaves })
  await to.cmd({ cmd: 'dial', addr: from.addrs[0] })
  const got = await to.cmd({ cmd: 'get', cid: added.cid, out, timeoutMs }, { timeoutMs: timeoutMs + 10000 })
  const mem = await to.cmd({ cmd: 'mem' })
  const identical = await sameBytes(src, out)
  return {
    cid: added.cid,
    bytes: got.bytes,
    addMs: added.ms,
    getMs: got.ms,
    mbPerS: got.bytes / 1e6 / (got.ms / 1000),
    mibPerS: got.bytes / 1048576 / (got.ms / 1000),
    fetcherRss: mem.rss,
    fetcherPeakRss: mem.peakRss,
    identical
  }
}
