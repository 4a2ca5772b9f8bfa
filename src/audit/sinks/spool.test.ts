import assert from 'node:assert/strict'
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { chainFileName } from '../files.js'
import { backoffDelay, lineSeq, Spool, type SpoolOptions } from './spool.js'

const line = (seq: number, pad = '') => `{"data":{"seq":999},"pad":"${pad}","seq":${seq},"type":"x"}`
const batch = (from: number, n: number, pad = '') =>
  Buffer.from(Array.from({ length: n }, (_, i) => `${line(from + i, pad)}\n`).join(''))

function options(dir: string, over: Partial<SpoolOptions> = {}): SpoolOptions & { errors: string[] } {
  const errors: string[] = []
  return {
    dir,
    prefix: 'audit',
    instance: 'gw-test',
    firstFile: 1,
    fsync: 'always',
    fsyncIntervalMs: 1000,
    maxBytes: 1024 * 1024,
    onError: (err, op) => errors.push(`${op}:${err.code}`),
    errors,
    ...over,
  }
}

const segments = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .sort()

describe('spool', () => {
  test('batches by records and bytes, in order; seq from the top-level member', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pc-spool-'))
    const s = await Spool.open(options(dir))
    await s.append(batch(0, 10))
    await s.append(batch(10, 5))
    const a = await s.next(4, 1 << 20)
    assert.deepEqual([a?.firstSeq, a?.lastSeq, a?.lines.length], [0, 3, 4])
    assert.equal(a?.data.toString(), batch(0, 4).toString())
    const oneLine = Buffer.byteLength(`${line(0)}\n`)
    const b = await s.next(100, oneLine * 2 + 5)
    assert.deepEqual([b?.firstSeq, b?.lastSeq], [4, 5])
    const c = await s.next(100, 1 << 20)
    assert.deepEqual([c?.firstSeq, c?.lastSeq], [6, 14])
    assert.equal(await s.next(100, 1 << 20), undefined)
    assert.equal(s.pending, batch(0, 15).length)
    await s.ack(c?.end as NonNullable<typeof c>['end'])
    assert.equal(s.pending, 0)
    await s.close()
  })

  test('a line longer than maxBytes goes alone; lineSeq of a non-record is -1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pc-spool-'))
    const s = await Spool.open(options(dir))
    await s.append(Buffer.from(`${line(0, 'x'.repeat(5000))}\n${line(1)}\n`))
    const a = await s.next(100, 1000)
    assert.deepEqual([a?.firstSeq, a?.lastSeq, a?.lines.length], [0, 0, 1])
    const b = await s.next(100, 1000)
    assert.deepEqual([b?.firstSeq, b?.lastSeq], [1, 1])
    assert.equal(lineSeq('not json'), -1)
    assert.equal(lineSeq('{"seq":"1"}'), -1)
    assert.equal(lineSeq('{"data":{"seq":5}}'), -1)
    await s.close()
  })

  test('rewind sends again from the last acknowledged batch', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pc-spool-'))
    const s = await Spool.open(options(dir))
    await s.append(batch(0, 6))
    const a = await s.next(2, 1 << 20)
    await s.ack(a?.end as NonNullable<typeof a>['end'])
    await s.next(2, 1 << 20)
    await s.next(2, 1 << 20)
    s.rewind()
    const again = await s.next(2, 1 << 20)
    assert.deepEqual([again?.firstSeq, again?.lastSeq], [2, 3])
    await s.close()
  })

  test('with fsync: interval only synced bytes are readable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pc-spool-'))
    const s = await Spool.open(options(dir, { fsync: 'interval', fsyncIntervalMs: 60_000 }))
    await s.append(batch(0, 3))
    assert.equal(s.unsent, 0)
    assert.equal(await s.next(10, 1 << 20), undefined)
    await s.flush()
    assert.equal(s.unsent, batch(0, 3).length)
    assert.equal((await s.next(10, 1 << 20))?.lastSeq, 2)
    await s.close()
  })

  test('segments roll; acknowledged ones are deleted except the newest with records; a restart resumes at the cursor', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pc-spool-'))
    const o = options(dir, { segmentBytes: 200 })
    const s = await Spool.open(o)
    for (let i = 0; i < 10; i++) await s.append(batch(i * 3, 3))
    assert.ok(segments(dir).length >= 5, segments(dir).join())
    let last: Awaited<ReturnType<Spool['next']>>
    for (let i = 0; i < 4; i++) {
      last = await s.next(3, 1 << 20)
      await s.ack((last as NonNullable<typeof last>).end)
    }
    assert.equal(last?.lastSeq, 11)
    const before = segments(dir).length
    await s.close()
    // Restart: a new segment; delivery resumes after seq 11.
    const newest = Number(/-(\d+)\.jsonl$/.exec(segments(dir).at(-1) as string)?.[1])
    const s2 = await Spool.open({ ...o, firstFile: newest + 1 })
    assert.equal(segments(dir).length, before + 1)
    assert.equal(s2.pending, batch(12, 18).length)
    const seqs: number[] = []
    for (let b = await s2.next(100, 1 << 20); b; b = await s2.next(100, 1 << 20)) {
      seqs.push(...b.lines.map(lineSeq))
      await s2.ack(b.end)
    }
    assert.deepEqual(
      seqs,
      Array.from({ length: 18 }, (_, i) => 12 + i),
    )
    // Everything delivered: only the newest segment holding records is left (the chain's tail);
    // the new, empty one of this run is kept as the one being written.
    const left = segments(dir)
    assert.equal(left.length, 2, left.join())
    assert.match(readFileSync(join(dir, left[0] as string), 'utf8'), /"seq":29,/)
    await s2.close()
  })

  test('a torn tail in an old segment is skipped; an overlong line goes alone; an unreadable cursor sends everything again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pc-spool-'))
    writeFileSync(join(dir, chainFileName('audit', 'gw-test', 1)), `${batch(0, 2)}{"seq":2,"ty`)
    writeFileSync(join(dir, chainFileName('audit', 'gw-test', 2)), '{"seq":3')
    writeFileSync(
      join(dir, chainFileName('audit', 'gw-test', 3)),
      Buffer.concat([batch(2, 1), Buffer.from(`${line(3, 'z'.repeat(3 * 1024 * 1024))}\n`), batch(4, 1)]),
    )
    writeFileSync(join(dir, 'audit-gw-test.sent'), '{"file":"x","offset":-1}')
    const s = await Spool.open(options(dir, { firstFile: 4 }))
    const seqs: number[] = []
    for (let b = await s.next(100, 1 << 20); b; b = await s.next(100, 1 << 20)) {
      seqs.push(...b.lines.map(lineSeq))
      await s.ack(b.end)
    }
    // A 3 MiB line (longer than a batch) goes alone, and what follows it is not lost.
    assert.deepEqual(seqs, [0, 1, 2, 3, 4])
    await s.close()
  })

  test('bounded: a full spool makes append wait (reported once as ESPOOLFULL) until an ack frees space', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pc-spool-'))
    const o = options(dir, { maxBytes: 65536 })
    const s = await Spool.open(o)
    const big = batch(0, 100, 'y'.repeat(500))
    assert.ok(big.length > 40_000)
    await s.append(big) // an empty spool takes one batch whatever its size
    let done = false
    const p = s.append(batch(100, 100, 'y'.repeat(500))).then(() => {
      done = true
    })
    await new Promise((r) => setImmediate(r))
    await s.wait(50)
    assert.equal(done, false)
    assert.deepEqual(o.errors, ['spool:ESPOOLFULL'])
    const b = await s.next(1000, 1 << 20)
    await s.ack((b as NonNullable<typeof b>).end)
    await p
    assert.equal(done, true)
    assert.equal(s.pending, batch(100, 100, 'y'.repeat(500)).length)
    await s.close()
  })
})

describe('backoff', () => {
  test('capped exponential with jitter in [cap/2, cap]', () => {
    const lo = (a: number) => backoffDelay(a, 200, 30_000, () => 0)
    const hi = (a: number) => backoffDelay(a, 200, 30_000, () => 1)
    assert.deepEqual([0, 1, 2, 3, 4].map(hi), [200, 400, 800, 1600, 3200])
    assert.deepEqual([0, 1, 2].map(lo), [100, 200, 400])
    assert.equal(hi(20), 30_000)
    assert.equal(lo(1000), 15_000)
    assert.equal(hi(1e9), 30_000)
  })
})
