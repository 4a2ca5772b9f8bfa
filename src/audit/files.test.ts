import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { chainFileName, listChainFiles, MAX_LINE_BYTES, readTail } from './files.js'

const dir = mkdtempSync(join(tmpdir(), 'pc-files-'))
let n = 0
function tailOf(content: string | Buffer) {
  const f = join(dir, `t${n++}`)
  writeFileSync(f, content)
  return readTail(f)
}

describe('audit files', () => {
  test('readTail: the last complete line and the unterminated bytes after it', () => {
    assert.deepEqual(tailOf(''), { lastLine: undefined, tornBytes: 0, tornOffset: 0, size: 0 })
    assert.deepEqual(tailOf('{"a":1}'), { lastLine: undefined, tornBytes: 7, tornOffset: 0, size: 7 })
    assert.deepEqual(tailOf('one\ntwo\n'), { lastLine: 'two', tornBytes: 0, tornOffset: 8, size: 8 })
    assert.deepEqual(tailOf('one\ntwo\nthr'), { lastLine: 'two', tornBytes: 3, tornOffset: 8, size: 11 })
    assert.deepEqual(tailOf('\n'), { lastLine: '', tornBytes: 0, tornOffset: 1, size: 1 })
    assert.deepEqual(tailOf('only\n'), { lastLine: 'only', tornBytes: 0, tornOffset: 5, size: 5 })
    // Lines longer than the first chunk read (64 KiB): the window grows.
    const long = 'x'.repeat(200 * 1024)
    const t = tailOf(`a\n${long}\n${'y'.repeat(100)}`)
    assert.equal(t.lastLine, long)
    assert.equal(t.tornBytes, 100)
    // Megabytes without a newline: not a record, all torn, read in bounded steps.
    const huge = tailOf(Buffer.alloc(MAX_LINE_BYTES * 3, 0x41))
    assert.equal(huge.lastLine, undefined)
    assert.equal(huge.tornBytes, MAX_LINE_BYTES * 3)
  })

  test('names and listing: chains grouped, files in number order, other files ignored', () => {
    const d = mkdtempSync(join(tmpdir(), 'pc-list-'))
    for (const name of [
      chainFileName('audit', 'gw-a', 10),
      chainFileName('audit', 'gw-a', 2),
      chainFileName('audit', 'gw-b', 1),
      'audit-gw-a.lock',
      'notes.txt',
      'audit-gw-a-12.jsonl',
    ]) {
      writeFileSync(join(d, name), '')
    }
    const chains = listChainFiles(d)
    assert.deepEqual([...chains.keys()].sort(), ['audit-gw-a', 'audit-gw-b'])
    assert.deepEqual(
      chains.get('audit-gw-a')?.map((f) => f.name),
      ['audit-gw-a-000002.jsonl', 'audit-gw-a-000010.jsonl'],
    )
    assert.equal(chainFileName('audit', 'x', 1234567), 'audit-x-1234567.jsonl')
  })
})
