/**
 * `serve`'s signal handling: a stop that arrives while the gateway is still starting is carried
 * out once it is up (as PID 1 in a container, a signal without a handler would be dropped).
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { serve } from './serve.js'

test('SIGTERM during startup: the gateway starts, then stops cleanly (exit 0)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-serve-'))
  try {
    const file = join(dir, 'portcullis.yaml')
    writeFileSync(
      file,
      `listeners: [{ name: public, host: 127.0.0.1, port: 0 }]
admin: { enabled: false }
upstreams: { api: { targets: [{ url: "http://127.0.0.1:9" }] } }
routes: [{ name: api, upstream: api }]
accessLog: { enabled: false }
reload: { watch: false }
shutdown: { idleGrace: 0 }
log: { level: silent }
`,
    )
    const before = process.listenerCount('SIGTERM')
    const done = serve({ config: file })
    // The handlers are installed before the first await: the signal is not lost.
    assert.equal(process.listenerCount('SIGTERM'), before + 1)
    process.emit('SIGTERM')
    const code = await Promise.race([
      done,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error('serve did not stop in 30 s')), 30000).unref(),
      ),
    ])
    assert.equal(code, 0)
    assert.equal(process.listenerCount('SIGTERM'), before)
    assert.equal(process.listenerCount('SIGHUP'), 0, 'the reload handler is gone with the gateway')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a config that does not load: serve rejects and leaves no signal handler behind', async () => {
  const before = [
    process.listenerCount('SIGTERM'),
    process.listenerCount('SIGINT'),
    process.listenerCount('SIGHUP'),
  ]
  await assert.rejects(serve({ config: join(tmpdir(), 'pc-no-such-config.yaml') }), /invalid config/)
  assert.deepEqual(
    [process.listenerCount('SIGTERM'), process.listenerCount('SIGINT'), process.listenerCount('SIGHUP')],
    before,
  )
})
