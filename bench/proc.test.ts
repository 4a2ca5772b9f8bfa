import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { describe, it } from 'node:test'
import { parseCpuLine, parseProcStat, readProcStat, withDescendants } from './proc.js'

// fields 3..52 of a real /proc/PID/stat line (kernel 6.x), after "pid (comm) "
const TAIL =
  'S 1 1234 1234 0 -1 4194560 2769 0 0 0 1510 263 7 3 20 0 11 0 4242 1130000384 14000 ' +
  '18446744073709551615 1 1 0 0 0 0 0 16781312 17922 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0'

describe('parseProcStat', () => {
  it('reads pid, ppid, utime, stime and starttime', () => {
    const s = parseProcStat(`1234 (node) ${TAIL}\n`)
    assert.equal(s.pid, 1234)
    assert.equal(s.comm, 'node')
    assert.equal(s.state, 'S')
    assert.equal(s.ppid, 1)
    assert.equal(s.utime, 1510)
    assert.equal(s.stime, 263)
    assert.equal(s.starttime, 4242)
  })

  it('handles a comm with spaces and parentheses', () => {
    const s = parseProcStat(`1234 (a (b) c) ${TAIL}`)
    assert.equal(s.comm, 'a (b) c')
    assert.equal(s.ppid, 1)
    assert.equal(s.utime, 1510)
    assert.equal(s.stime, 263)
  })

  it('handles a comm that looks like stat fields', () => {
    const s = parseProcStat(`77 () S 9 9 9) ${TAIL}`)
    assert.equal(s.pid, 77)
    assert.equal(s.comm, ') S 9 9 9')
    assert.equal(s.utime, 1510)
  })

  it('rejects malformed input', () => {
    assert.throws(() => parseProcStat('garbage'))
    assert.throws(() => parseProcStat('12 (x) S 1'))
  })

  it('reads this process from /proc when there is one', { skip: !existsSync('/proc/self/stat') }, () => {
    const s = readProcStat(process.pid)
    assert.ok(s)
    assert.equal(s.pid, process.pid)
    assert.ok(s.utime + s.stime >= 0)
  })
})

describe('parseCpuLine', () => {
  it('sums the first eight columns and picks steal', () => {
    const t = parseCpuLine('cpu  3800 0 2122 42745 225 0 40 271 5 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n')
    assert.equal(t.total, 3800 + 2122 + 42745 + 225 + 40 + 271)
    assert.equal(t.steal, 271)
  })
})

describe('withDescendants', () => {
  it('follows ppid links transitively', () => {
    const p = (pid: number, ppid: number) => ({
      pid,
      ppid,
      comm: 'x',
      state: 'S',
      utime: 0,
      stime: 0,
      starttime: 0,
    })
    const tree = withDescendants([10], [p(10, 1), p(11, 10), p(12, 11), p(13, 1)])
    assert.deepEqual([...tree].sort(), [10, 11, 12])
  })
})
