/**
 * Verifies an audit chain: files in chain order, each line a record in canonical form whose MAC
 * verifies with the keyring, whose seq is one more than the previous record's and whose prev is
 * the previous record's hash (the genesis hash for seq 0). Stops at the first problem and says
 * where (file, line, seq) and what: missing, altered, reordered, truncated or foreign.
 *
 * What is accepted without complaint, because the writer (which holds the key) vouches for it:
 * - an unterminated last line (a crash cut the write) that the next file's `audit.start` record
 *   lists in `data.torn` (same file, byte offset and length): a note;
 * - `audit.gap` records (events dropped because the queue was full): a note each;
 * - a chain whose last record is not a `close` checkpoint (the writer is running, or stopped
 *   without closing): a note, or a problem with `requireClosed`.
 */
import { readFileSync, statSync } from 'node:fs'
import { basename } from 'node:path'
import type { Anchor } from './anchor.js'
import { EncHeaderError, FileDecryptor, isEncrypted } from './encryption.js'
import { MAX_LINE_BYTES } from './files.js'
import type { Keyring } from './keyring.js'
import { checkRecord, genesisHash, type ParsedRecord, recordHash } from './record.js'

export type ProblemKind =
  | 'missing'
  | 'altered'
  | 'reordered'
  | 'truncated'
  | 'foreign'
  | 'unknown-key'
  | 'unanchored'

export interface VerifyProblem {
  kind: ProblemKind
  file: string
  /** 1-based line number ('' file-level problems: 0). */
  line: number
  seq?: number
  message: string
}

export interface VerifyReport {
  ok: boolean
  files: number
  /** Records verified (checkpoints included), before the problem when there is one. */
  records: number
  checkpoints: number
  instance?: string
  firstSeq?: number
  lastSeq?: number
  lastTime?: string
  /** The last record is a `close` checkpoint. */
  closed: boolean
  /** Events the writer recorded as dropped (`audit.gap`). */
  dropped: number
  notes: string[]
  problem?: VerifyProblem
  /** The anchor the chain was checked against (the newest given), when there was one. */
  anchor?: { seq: number; time: string; source: string }
  /** The chain was cut at its end, or records a cut (problem kind `truncated`). */
  truncated: boolean
}

export interface VerifyOptions {
  /** The first file may start after seq 0 (older files removed by retention): its prev is trusted. */
  partial?: boolean
  /** A chain that does not end with a `close` checkpoint is a problem (truncated). */
  requireClosed?: boolean
  /** The keyring of encrypted files (`….jsonl.enc`); without it an encrypted file is a usage error. */
  encryption?: Keyring | undefined
  /**
   * The last file is being written (the admin API's check of the current file): bytes after its
   * last newline are a write in progress, not a torn record, and an open end is not noted.
   */
  live?: boolean
  /** Called for every record that verified, in chain order (the access report reads them so). */
  onRecord?: (record: ParsedRecord, file: string, line: number) => void
  /**
   * The newest verified anchor of the chain (anchor.ts): a chain that ends before it, or whose
   * record at its seq has another hash, is a problem. `undefined`: no anchor (truncation at the
   * end cannot be told).
   */
  anchor?: Anchor | undefined
  /** Anchors were asked for (given a source): without one, a note says none was found. */
  anchorsChecked?: boolean
  /** No anchor (none given, or none found) is a problem (`unanchored`): the end cannot be vouched for. */
  requireAnchor?: boolean
}

/** A file that cannot be read, or an encrypted file whose key is not in the keyring: exit 2. */
export class VerifyUsageError extends Error {
  override name = 'VerifyUsageError'
}

const MAX_FILE_BYTES = 1024 * 1024 * 1024
const MAX_NOTES = 100

interface Torn {
  file: string
  offset: number
  bytes: number
  line: number
}

function sameTorn(listed: unknown, pending: readonly Torn[]): boolean {
  if (!Array.isArray(listed) || listed.length !== pending.length) return false
  return pending.every((p, i) => {
    const t = listed[i] as Record<string, unknown> | null
    return (
      t !== null && typeof t === 'object' && t.file === p.file && t.offset === p.offset && t.bytes === p.bytes
    )
  })
}

/** Verifies the chain in `files` (in chain order). Throws VerifyUsageError for exit-2 problems. */
export function verifyChain(
  files: readonly string[],
  keyring: Keyring,
  opts: VerifyOptions = {},
): VerifyReport {
  const report: VerifyReport = {
    ok: false,
    files: files.length,
    records: 0,
    checkpoints: 0,
    closed: false,
    dropped: 0,
    notes: [],
    truncated: false,
  }
  let notesLeftOut = 0
  const note = (s: string) => {
    if (report.notes.length < MAX_NOTES) report.notes.push(s)
    else notesLeftOut++
  }
  const anchor = opts.anchor
  if (anchor !== undefined) report.anchor = { seq: anchor.seq, time: anchor.time, source: anchor.source }
  else if (opts.anchorsChecked) note('no anchor found for the chain: a cut at its end cannot be told')
  /** A truncation the writer recorded at a restart: a problem, but verification goes on past it. */
  let recordedCut: VerifyProblem | undefined
  /** The writer's record of a cut (see open.ts), when `r` is one that fits where it stands. */
  const recordedTruncation = (r: ParsedRecord, expected: number | undefined) => {
    if (r.type !== 'audit.start') return undefined
    const t = r.data?.truncated as Record<string, unknown> | undefined
    if (t === null || typeof t !== 'object') return undefined
    const { after, anchoredSeq, anchoredHash } = t
    if (
      typeof after !== 'number' ||
      typeof anchoredSeq !== 'number' ||
      typeof anchoredHash !== 'string' ||
      r.seq !== anchoredSeq + 1 ||
      r.prev !== anchoredHash ||
      anchoredSeq <= after
    )
      return undefined
    if (expected === undefined ? after !== -1 && !opts.partial : after !== expected - 1) return undefined
    return {
      after,
      anchoredSeq,
      source: typeof t.source === 'string' ? t.source.slice(0, 200) : 'an anchor',
      anchoredAt: typeof t.anchoredAt === 'string' ? t.anchoredAt.slice(0, 40) : '?',
    }
  }
  const fail = (p: VerifyProblem): VerifyReport => {
    report.problem = p
    if (p.kind === 'truncated') report.truncated = true
    if (notesLeftOut > 0) report.notes.push(`… and ${notesLeftOut} more notes`)
    return report
  }
  let expected: number | undefined
  let prevHash: string | undefined
  let prevWhere = ''
  let instance: string | undefined
  let last: ParsedRecord | undefined
  let pendingTorn: Torn[] = []
  let pendingNext: { name: string; where: string } | undefined

  for (const path of files) {
    const name = basename(path)
    let data: Buffer
    try {
      if (statSync(path).size > MAX_FILE_BYTES) throw new VerifyUsageError(`${path}: larger than 1 GiB`)
      data = readFileSync(path)
    } catch (err) {
      if (err instanceof VerifyUsageError) throw err
      throw new VerifyUsageError(`${path}: ${(err as NodeJS.ErrnoException).code ?? 'cannot be read'}`)
    }
    if (pendingNext !== undefined && pendingNext.name !== name) {
      note(`${pendingNext.where} names the next file ${pendingNext.name}; the next file given is ${name}`)
    }
    const nextAfterRotate = pendingNext
    pendingNext = undefined
    if (data.length === 0) {
      note(`${name}: empty`)
      pendingNext = nextAfterRotate
      continue
    }
    let start = 0
    let lineNo = 0
    let inFile = 0
    // An encrypted file: line 1 is its header, every further line one record's frame.
    let decryptor: FileDecryptor | undefined
    const encrypted = isEncrypted(data)
    if (encrypted) {
      const nl = data.indexOf(10)
      if (nl !== -1) {
        if (opts.encryption === undefined) {
          throw new VerifyUsageError(`${name} is encrypted: give the encryption keyring`)
        }
        try {
          decryptor = new FileDecryptor(data.toString('utf8', 0, nl), opts.encryption)
        } catch (err) {
          if (!(err instanceof EncHeaderError)) throw err
          if (err.kind === 'unknown-key') throw new VerifyUsageError(`${name}:1: ${err.message}`)
          return fail({ kind: 'altered', file: name, line: 1, message: err.message })
        }
        start = nl + 1
        lineNo = 1
      }
    }
    const plainAt = (from: number, to: number): string | undefined =>
      decryptor ? decryptor.decrypt(data.toString('latin1', from, to)) : data.toString('utf8', from, to)
    for (;;) {
      const nl = data.indexOf(10, start)
      if (nl === -1) break
      lineNo++
      const where = `${name}:${lineNo}`
      if (nl - start > MAX_LINE_BYTES) {
        return fail({ kind: 'altered', file: name, line: lineNo, message: 'a line longer than any record' })
      }
      const lineStart = start
      start = nl + 1
      let line: string
      if (decryptor) {
        const plain = plainAt(lineStart, nl)
        if (plain === undefined) {
          return fail({
            kind: 'altered',
            file: name,
            line: lineNo,
            message: `frame ${lineNo - 1} does not decrypt: its ciphertext was altered, or it was moved from another file`,
          })
        }
        line = plain
      } else {
        line = data.toString('utf8', lineStart, nl)
        // Invalid UTF-8 decodes to U+FFFD: two different byte strings must not pass as one record.
        if (!Buffer.from(line, 'utf8').equals(data.subarray(lineStart, nl))) {
          return fail({ kind: 'altered', file: name, line: lineNo, message: 'not valid UTF-8' })
        }
      }
      const c = checkRecord(line, keyring)
      const rec = c.record
      if (rec !== undefined && instance !== undefined && rec.instance !== instance) {
        return fail({
          kind: 'foreign',
          file: name,
          line: lineNo,
          seq: rec.seq,
          message: `a record of instance "${rec.instance.slice(0, 64)}" in the chain of "${instance}"`,
        })
      }
      if (!c.ok) {
        if (c.kind === 'unknown-key') {
          // A forged record, or a keyring that lacks a key the chain was signed with: either way
          // the record cannot be vouched for (exit 1, not a usage error).
          return fail({
            kind: 'unknown-key',
            file: name,
            line: lineNo,
            ...(rec ? { seq: rec.seq } : {}),
            message: `${c.message}: a forged record, or verify with the keyring the chain was written with`,
          })
        }
        return fail({
          kind: 'altered',
          file: name,
          line: lineNo,
          ...(rec ? { seq: rec.seq } : {}),
          message: c.kind === 'malformed' ? `not a record: ${c.message}` : c.message,
        })
      }
      const r = c.record
      if (instance === undefined) instance = r.instance
      const cut = recordedTruncation(r, expected)
      if (cut !== undefined) {
        // The writer found its files ending before the anchor and continued after it (open.ts):
        // records cut.after+1 .. cut.anchoredSeq are gone. Verification goes on from here.
        if (expected === undefined) report.firstSeq = r.seq
        recordedCut ??= {
          kind: 'truncated',
          file: name,
          line: lineNo,
          seq: r.seq,
          message: `records ${cut.after + 1} to ${cut.anchoredSeq} were removed: the files ended at seq ${cut.after}${expected !== undefined ? ` (${prevWhere})` : ''}, before the anchor (${cut.source}, ${cut.anchoredAt}) of seq ${cut.anchoredSeq}; the restart at ${where} recorded the cut`,
        }
      } else if (expected === undefined) {
        report.firstSeq = r.seq
        if (r.seq === 0) {
          if (r.prev !== genesisHash(instance)) {
            return fail({
              kind: 'foreign',
              file: name,
              line: lineNo,
              seq: 0,
              message: `the first record's prev is not the genesis hash of instance "${instance}"`,
            })
          }
        } else if (!opts.partial) {
          return fail({
            kind: 'missing',
            file: name,
            line: lineNo,
            seq: r.seq,
            message: `the chain starts at seq ${r.seq}: records 0 to ${r.seq - 1} are missing (pass --partial when older files were removed on purpose)`,
          })
        } else {
          note(`the chain is verified from seq ${r.seq} (${where}); what came before is not checked`)
        }
      } else if (r.seq !== expected) {
        let laterLine = -1
        for (let i = 0, from = lineStart; from < data.length; i++) {
          const e = data.indexOf(10, from)
          const to = e === -1 ? data.length : e
          if (plainAt(from, to)?.includes(`"seq":${expected},`)) {
            laterLine = i
            break
          }
          from = to + 1
        }
        if (laterLine > 0) {
          return fail({
            kind: 'reordered',
            file: name,
            line: lineNo,
            seq: r.seq,
            message: `seq ${r.seq} comes where seq ${expected} belongs; seq ${expected} is at line ${lineNo + laterLine}`,
          })
        }
        if (r.seq > expected) {
          return fail({
            kind: 'missing',
            file: name,
            line: lineNo,
            seq: r.seq,
            message: `seq ${expected}${r.seq - 1 > expected ? ` to ${r.seq - 1}` : ''} missing between ${prevWhere} and ${where}`,
          })
        }
        return fail({
          kind: 'reordered',
          file: name,
          line: lineNo,
          seq: r.seq,
          message: `seq ${r.seq} after seq ${expected - 1} (${prevWhere}): out of order or repeated`,
        })
      } else if (r.prev !== prevHash) {
        return fail({
          kind: 'altered',
          file: name,
          line: lineNo,
          seq: r.seq,
          message: `its prev is not the hash of the record before it (${prevWhere}): a record was replaced`,
        })
      }
      if (pendingTorn.length > 0) {
        if (r.type !== 'audit.start' || !sameTorn(r.data?.torn, pendingTorn)) {
          const t = pendingTorn[0] as Torn
          return fail({
            kind: 'truncated',
            file: t.file,
            line: t.line,
            message: `unterminated record at line ${t.line} (byte ${t.offset}, ${t.bytes} bytes): the file was cut, and the next record (${where}) does not record it as a crash`,
          })
        }
        for (const t of pendingTorn) {
          note(
            `${t.file}:${t.line}: unterminated record (${t.bytes} bytes, a crash), recorded by the restart at ${where}`,
          )
        }
        pendingTorn = []
      }
      if (r.type === 'audit.start' && r.seq > 0) {
        const p = r.data?.previous as { closed?: unknown } | undefined
        if (p?.closed === false)
          note(`${where}: restart after the chain was left open (the writer stopped uncleanly)`)
      }
      if (r.type === 'audit.checkpoint') report.checkpoints++
      if (r.type === 'audit.gap') {
        const n = Number(r.data?.dropped ?? 0)
        report.dropped += Number.isFinite(n) ? n : 0
        note(`${where}: ${n} events were dropped (audit queue full) before this record`)
      }
      const hash = recordHash(line)
      if (anchor !== undefined && r.seq === anchor.seq && hash !== anchor.hash) {
        return fail({
          kind: 'altered',
          file: name,
          line: lineNo,
          seq: r.seq,
          message: `the record at seq ${r.seq} is not the one anchored (${anchor.source}, ${anchor.time}): the chain from here back was replaced`,
        })
      }
      opts.onRecord?.(r, name, lineNo)
      report.records++
      inFile++
      prevHash = hash
      prevWhere = where
      expected = r.seq + 1
      last = r
    }
    const lastFile = path === files[files.length - 1]
    if (start < data.length && !(opts.live && lastFile)) {
      pendingTorn.push({ file: name, offset: start, bytes: data.length - start, line: lineNo + 1 })
    }
    if (inFile === 0 && start >= data.length) note(`${name}: no records`)
    if (
      last?.type === 'audit.checkpoint' &&
      last.data?.reason === 'rotate' &&
      prevWhere.startsWith(`${name}:`)
    ) {
      const next = last.data?.next
      pendingNext = { name: typeof next === 'string' ? next : '(unnamed)', where: prevWhere }
    }
  }
  if (pendingTorn.length > 0) {
    const t = pendingTorn[0] as Torn
    return fail({
      kind: 'truncated',
      file: t.file,
      line: t.line,
      message: `unterminated record at line ${t.line} (byte ${t.offset}, ${t.bytes} bytes): the file was cut (a crash the writer has not restarted from yet, or tampering)`,
    })
  }
  if (last === undefined) {
    return fail({
      kind: 'missing',
      file: files.length > 0 ? basename(files[0] as string) : '',
      line: 0,
      message: 'no records',
    })
  }
  report.instance = instance
  report.lastSeq = last.seq
  report.lastTime = last.time
  if (pendingNext !== undefined) {
    return fail({
      kind: 'truncated',
      file: pendingNext.name,
      line: 0,
      seq: last.seq + 1,
      message: `the chain continues in ${pendingNext.name} (rotation at ${pendingNext.where}), which was not given or holds no records`,
    })
  }
  if (anchor !== undefined && last.seq < anchor.seq) {
    return fail({
      kind: 'truncated',
      file: prevWhere.split(':')[0] as string,
      line: Number(prevWhere.split(':')[1]),
      seq: last.seq,
      message: `the chain ends at seq ${last.seq} (${prevWhere}), but its anchor (${anchor.source}, ${anchor.time}) says it reached seq ${anchor.seq}: records ${last.seq + 1} to ${anchor.seq} were removed (lines or files cut from the end, or the log replaced by an older copy of itself)`,
    })
  }
  report.closed = last.type === 'audit.checkpoint' && last.data?.reason === 'close'
  if (recordedCut !== undefined) return fail(recordedCut)
  if (anchor === undefined && opts.requireAnchor) {
    return fail({
      kind: 'unanchored',
      file: prevWhere.split(':')[0] as string,
      line: Number(prevWhere.split(':')[1]),
      seq: last.seq,
      message: `no anchor of the chain was found${opts.anchorsChecked ? '' : ' (none given)'}: whether records were cut from its end cannot be told`,
    })
  }
  if (!report.closed && !opts.live) {
    if (opts.requireClosed) {
      return fail({
        kind: 'truncated',
        file: prevWhere.split(':')[0] as string,
        line: Number(prevWhere.split(':')[1]),
        seq: last.seq,
        message:
          'the chain does not end with a close checkpoint: records after it may have been removed, or the writer is still running',
      })
    }
    note(
      anchor !== undefined
        ? `the chain ends at seq ${last.seq} (${prevWhere}) without a close checkpoint: the writer is running or stopped uncleanly; its anchor (seq ${anchor.seq}) covers the chain up to ${anchor.time}`
        : `the chain ends at seq ${last.seq} (${prevWhere}) without a close checkpoint: the writer is running or stopped uncleanly; records removed from the end since then cannot be detected from the files alone (anchors: docs/audit.md#anchors)`,
    )
  }
  if (notesLeftOut > 0) report.notes.push(`… and ${notesLeftOut} more notes`)
  report.ok = true
  return report
}
