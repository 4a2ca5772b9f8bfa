/**
 * Git history: the lines every commit added (`git log -p -U0`), streamed from the `git` binary
 * line by line, so memory holds one file's added lines of one commit at a time (at most 8 MiB;
 * a larger patch is scanned in parts). All refs by default (`--all`), or one `branch`; `since`
 * is passed to git. Each finding names the commit, its author and date, the file and the line.
 */
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import type { SecretScanner } from '../engine.js'
import { type CommitInfo, type Finding, placeMatches } from '../findings.js'
import { emptyStats, type ScanStats } from '../types.js'
import { addStats } from './files.js'

export interface GitOptions {
  repo: string
  branch?: string
  since?: string
  redact?: boolean
  /** Called for each commit seen (progress). */
  onCommit?: () => void
}

const MAX_PATCH = 8 * 1024 * 1024

/** Unquotes a path git printed in C-style quotes (with core.quotepath=off only odd bytes are). */
function unquote(p: string): string {
  if (!p.startsWith('"')) return p
  const inner = p.slice(1, -1)
  const bytes: number[] = []
  for (let i = 0; i < inner.length; i++) {
    const c = inner[i] as string
    if (c !== '\\') {
      bytes.push(...Buffer.from(c, 'utf8'))
      continue
    }
    const n = inner[++i] ?? ''
    if (/[0-7]/.test(n)) {
      bytes.push(Number.parseInt(inner.slice(i, i + 3), 8))
      i += 2
    } else
      bytes.push(({ n: 10, t: 9, r: 13, '"': 34, '\\': 92 } as Record<string, number>)[n] ?? n.charCodeAt(0))
  }
  return Buffer.from(bytes).toString('utf8')
}

/** Scans the history; rejects when git fails (not a repository, bad ref). */
export async function scanGit(
  scanner: SecretScanner,
  o: GitOptions,
): Promise<{ findings: Finding[]; stats: ScanStats; commits: number }> {
  const args = [
    '-C',
    o.repo,
    '-c',
    'core.quotepath=off',
    'log',
    '-p',
    '-U0',
    '--no-color',
    '--no-ext-diff',
    '--no-textconv',
    '--full-history',
    '--format=%x00%H%x00%aI%x00%an <%ae>',
  ]
  if (o.since) args.push(`--since=${o.since}`)
  args.push(o.branch ?? '--all')
  args.push('--')
  const child = spawn('git', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < 4096) stderr += d
  })
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code) => resolve(code ?? 1))
  })
  const findings: Finding[] = []
  const stats = emptyStats()
  let commit: CommitInfo | undefined
  let commits = 0
  let file: string | undefined
  let newLine = 0
  let lines: string[] = []
  let lineNos: number[] = []
  let bytes = 0
  const flush = () => {
    if (lines.length === 0 || file === undefined || commit === undefined) {
      lines = []
      lineNos = []
      bytes = 0
      return
    }
    const buf = Buffer.from(lines.join('\n'), 'latin1')
    const r = scanner.scan(buf)
    addStats(stats, r.stats)
    if (r.matches.length > 0)
      findings.push(
        ...placeMatches(buf, r.matches, { file, lineMap: lineNos, commit, redact: o.redact ?? false }),
      )
    lines = []
    lineNos = []
    bytes = 0
  }
  // latin1: bytes in, bytes out (file contents need not be UTF-8); paths are re-decoded.
  child.stdout.setEncoding('latin1')
  const rl = createInterface({ input: child.stdout, crlfDelay: Number.POSITIVE_INFINITY })
  for await (const line of rl) {
    if (line.charCodeAt(0) === 0) {
      flush()
      const [, sha = '', date = '', author = ''] = line.split('\0')
      commit = { sha, date, author: Buffer.from(author, 'latin1').toString('utf8') }
      commits++
      o.onCommit?.()
      file = undefined
      continue
    }
    const c = line.charCodeAt(0)
    if (c === 43 /* + */) {
      if (line.startsWith('+++ ')) {
        flush()
        const p = line.slice(4)
        file =
          p === '/dev/null'
            ? undefined
            : unquote(Buffer.from(p, 'latin1').toString('utf8')).replace(/^b\//, '')
        continue
      }
      if (file === undefined) continue
      lines.push(line.slice(1))
      lineNos.push(newLine++)
      bytes += line.length
      if (bytes > MAX_PATCH) flush()
      continue
    }
    if (c === 64 /* @ */ && line.startsWith('@@ ')) {
      const m = /^@@ -\d+(?:,\d+)? \+(\d+)/.exec(line)
      if (m) {
        // A hunk of added lines is a separate region: scan what came before on its own lines.
        if (lines.length > 0) {
          lines.push('')
          lineNos.push(newLine)
        }
        newLine = Number(m[1])
      }
      continue
    }
    if (line.startsWith('diff --git ')) flush()
  }
  flush()
  const code = await exited
  if (code !== 0) throw new Error(`git log failed (exit ${code}): ${stderr.trim().split('\n')[0] ?? ''}`)
  return { findings, stats, commits }
}
