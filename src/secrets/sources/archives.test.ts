import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { deflateRawSync, gzipSync } from 'node:zlib'
import { type ArchiveEntry, type ArchiveProblem, readArchive, safeEntryName } from './archives.js'

const dir = mkdtempSync(join(tmpdir(), 'pcl-arch-'))
after(() => rmSync(dir, { recursive: true, force: true }))
const LIMITS = { maxEntries: 10, maxEntryBytes: 1 << 20, maxTotalBytes: 4 << 20 }

function tarEntry(name: string, data: Buffer, type = '0'): Buffer {
  const h = Buffer.alloc(512)
  h.write(name.slice(0, 100), 0, 'utf8')
  h.write('0000644\0', 100)
  h.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124)
  h.write(type, 156)
  h.write('ustar\0', 257)
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512)
  return Buffer.concat([h, data, pad])
}

function zip(entries: { name: string; data: Buffer; declared?: number }[]): Buffer {
  const locals: Buffer[] = []
  const central: Buffer[] = []
  let off = 0
  for (const e of entries) {
    const comp = deflateRawSync(e.data)
    const name = Buffer.from(e.name)
    const lh = Buffer.alloc(30)
    lh.writeUInt32LE(0x04034b50, 0)
    lh.writeUInt16LE(8, 8)
    lh.writeUInt32LE(comp.length, 18)
    lh.writeUInt32LE(e.declared ?? e.data.length, 22)
    lh.writeUInt16LE(name.length, 26)
    const ch = Buffer.alloc(46)
    ch.writeUInt32LE(0x02014b50, 0)
    ch.writeUInt16LE(8, 10)
    ch.writeUInt32LE(comp.length, 20)
    ch.writeUInt32LE(e.declared ?? e.data.length, 24)
    ch.writeUInt16LE(name.length, 28)
    ch.writeUInt32LE(off, 42)
    locals.push(lh, name, comp)
    central.push(ch, name)
    off += 30 + name.length + comp.length
  }
  const cd = Buffer.concat(central)
  const end = Buffer.alloc(22)
  end.writeUInt32LE(0x06054b50, 0)
  end.writeUInt16LE(entries.length, 8)
  end.writeUInt16LE(entries.length, 10)
  end.writeUInt32LE(cd.length, 12)
  end.writeUInt32LE(off, 16)
  return Buffer.concat([...locals, cd, end])
}

async function read(file: string, kind: 'zip' | 'tar' | 'tar.gz') {
  const entries: ArchiveEntry[] = []
  const problems: ArchiveProblem[] = []
  await readArchive(file, kind, LIMITS, (e) => entries.push(e), problems)
  return { entries, problems }
}

test('entry names are normalized: no absolute paths, no ..', () => {
  assert.equal(safeEntryName('../../etc/passwd'), 'etc/passwd')
  assert.equal(safeEntryName('/abs/x'), 'abs/x')
  assert.equal(safeEntryName('a\\..\\..\\b'), 'a/b')
  assert.equal(safeEntryName('..'), '?')
})

test('tar and tar.gz: entries read, traversal names shown safely, oversized entries skipped', async () => {
  const t = Buffer.concat([
    tarEntry('../../evil.env', Buffer.from('KEY=1\n')),
    tarEntry('big.bin', Buffer.alloc(2 << 20, 97)),
    tarEntry('ok/app.js', Buffer.from('x')),
    Buffer.alloc(1024),
  ])
  writeFileSync(join(dir, 'a.tar'), t)
  writeFileSync(join(dir, 'a.tar.gz'), gzipSync(t))
  for (const [f, k] of [
    ['a.tar', 'tar'],
    ['a.tar.gz', 'tar.gz'],
  ] as const) {
    const r = await read(join(dir, f), k)
    assert.deepEqual(
      r.entries.map((e) => e.name),
      ['evil.env', 'ok/app.js'],
    )
    assert.ok(r.problems.some((p) => p.entry === 'big.bin'))
  }
})

test('tar.gz bomb: decompression stops at the total limit', async () => {
  const t = Buffer.concat([
    tarEntry('a', Buffer.alloc(900 << 10)),
    tarEntry('b', Buffer.alloc(900 << 10)),
    tarEntry('c', Buffer.alloc(900 << 10)),
    tarEntry('d', Buffer.alloc(900 << 10)),
    tarEntry('e', Buffer.alloc(900 << 10)),
  ])
  writeFileSync(join(dir, 'bomb.tgz'), gzipSync(t))
  const r = await read(join(dir, 'bomb.tgz'), 'tar.gz')
  assert.ok(r.entries.length < 5)
  assert.ok(r.problems.some((p) => /larger than/.test(p.reason)))
})

test('malformed tar headers and garbage stop cleanly', async () => {
  const h = tarEntry('x', Buffer.from('y'))
  h.write('zzzzzzzzzzz', 124) // not octal
  writeFileSync(join(dir, 'bad.tar'), h)
  const r = await read(join(dir, 'bad.tar'), 'tar')
  assert.deepEqual(r.entries, [])
  assert.ok(r.problems.length > 0)
  writeFileSync(join(dir, 'bad.tgz'), Buffer.from('not gzip at all'))
  assert.ok((await read(join(dir, 'bad.tgz'), 'tar.gz')).problems.length > 0)
})

test('zip: entries inflated; a bomb (inflates past its declared size) and oversize entries skipped', async () => {
  writeFileSync(
    join(dir, 'a.zip'),
    zip([
      { name: '../../../tmp/x.env', data: Buffer.from('A=1\n') },
      { name: 'bomb.txt', data: Buffer.alloc(900 << 10, 0), declared: 100 },
      { name: 'huge.txt', data: Buffer.alloc(10), declared: 5 << 20 },
    ]),
  )
  const r = await read(join(dir, 'a.zip'), 'zip')
  assert.deepEqual(
    r.entries.map((e) => e.name),
    ['tmp/x.env'],
  )
  assert.ok(r.problems.some((p) => p.entry === 'bomb.txt' && /zip bomb/.test(p.reason)))
  assert.ok(r.problems.some((p) => p.entry === 'huge.txt'))
})

test('zip: truncated or lying central directories are refused', async () => {
  const z = zip([{ name: 'a', data: Buffer.from('b') }])
  writeFileSync(join(dir, 'trunc.zip'), z.subarray(0, z.length - 30))
  assert.ok((await read(join(dir, 'trunc.zip'), 'zip')).problems.length > 0)
  const lie = Buffer.from(z)
  lie.writeUInt32LE(0x7fffffff, lie.length - 6) // central directory offset past the end
  writeFileSync(join(dir, 'lie.zip'), lie)
  assert.ok((await read(join(dir, 'lie.zip'), 'zip')).problems.length > 0)
  writeFileSync(
    join(dir, 'many.zip'),
    zip(Array.from({ length: 12 }, (_, i) => ({ name: `f${i}`, data: Buffer.from('x') }))),
  )
  const many = await read(join(dir, 'many.zip'), 'zip')
  assert.equal(many.entries.length, 10)
})
