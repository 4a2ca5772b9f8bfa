import assert from 'node:assert/strict'
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { withRetry, writeAll } from './retry.js'

test('withRetry: tries again after each reported failure until it succeeds; gives up or throws when told', async () => {
  let calls = 0
  const seen: string[] = []
  const ok = await withRetry(
    async () => {
      calls++
      if (calls < 3) throw Object.assign(new Error('disk full'), { code: 'ENOSPC' })
    },
    (err) => {
      seen.push(err.code ?? '')
      return true
    },
  )
  assert.equal(ok, true)
  assert.equal(calls, 3)
  assert.deepEqual(seen, ['ENOSPC', 'ENOSPC'])

  let tries = 0
  const gaveUp = await withRetry(
    async () => {
      tries++
      throw new Error('nope')
    },
    () => false,
  )
  assert.equal(gaveUp, false)
  assert.equal(tries, 1)

  const boom = new Error('closed')
  await assert.rejects(
    withRetry(
      async () => {
        throw boom
      },
      (err) => {
        throw err
      },
    ),
    boom,
  )
})

test('writeAll: writes every byte through a real file handle; a failing handle is reported until stopped', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pc-retry-'))
  try {
    const path = join(dir, 'a.log')
    const h = await open(path, 'a')
    let counted = 0
    const data = Buffer.alloc(256 * 1024, 'x')
    assert.equal(
      await writeAll(
        h,
        data,
        () => assert.fail('no error expected'),
        () => false,
        (n) => {
          counted += n
        },
      ),
      true,
    )
    await h.close()
    assert.equal(counted, data.length)
    assert.equal((await readFile(path)).length, data.length)

    // A handle opened read-only: every write fails (EBADF); the failures are reported, and the
    // write gives up once the sink says it is closed.
    await writeFile(join(dir, 'ro.log'), '')
    const ro = await open(join(dir, 'ro.log'), 'r')
    const errors: string[] = []
    const written = await writeAll(
      ro,
      Buffer.from('record\n'),
      (err) => errors.push(err.code ?? ''),
      () => errors.length >= 2,
      () => assert.fail('nothing is written'),
    )
    await ro.close()
    assert.equal(written, false)
    assert.deepEqual(errors, ['EBADF', 'EBADF'])
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
