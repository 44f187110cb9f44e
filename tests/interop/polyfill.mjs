// Loaded with `node --import ./polyfill.mjs`: Helia 7 / libp2p 3 call
// Promise.withResolvers, which Node.js only ships from v22.
if (typeof Promise.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers () {
      let resolve
      let reject
      const promise = new this((res, rej) => { resolve = res; reject = rej })
      return { promise, resolve, reject }
    }
  })
}
