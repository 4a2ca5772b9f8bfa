/**
 * Baselines: a JSON file of known findings (fingerprints and value hashes, never values), so
 * that CI fails only on new ones. A finding is known when its fingerprint is in the baseline, or
 * when the same detector found the same value in the same file (it moved to another line).
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { ConfigError } from '../cli/command.js'
import type { Finding } from './findings.js'

export interface BaselineEntry {
  fingerprint: string
  detector: string
  file: string
  line: number
  valueHash: string
  commit?: string
}

export interface Baseline {
  version: 1
  findings: BaselineEntry[]
}

export function readBaseline(file: string): Baseline {
  let b: Baseline
  try {
    b = JSON.parse(readFileSync(file, 'utf8')) as Baseline
  } catch (err) {
    throw new ConfigError(`${file}: not a baseline file: ${(err as Error).message.split('\n')[0]}`)
  }
  if (b?.version !== 1 || !Array.isArray(b.findings))
    throw new ConfigError(`${file}: not a baseline file (version 1 expected)`)
  return b
}

export function writeBaseline(file: string, findings: readonly Finding[]): void {
  const b: Baseline = {
    version: 1,
    findings: findings.map((f) => ({
      fingerprint: f.fingerprint,
      detector: f.detector,
      file: f.file,
      line: f.line,
      valueHash: f.valueHash,
      ...(f.commit ? { commit: f.commit.sha } : {}),
    })),
  }
  writeFileSync(file, `${JSON.stringify(b, null, 2)}\n`)
}

/** The findings that are not in the baseline. */
export function newFindings(findings: readonly Finding[], b: Baseline): Finding[] {
  const fps = new Set(b.findings.map((e) => e.fingerprint))
  const moved = new Set(b.findings.map((e) => `${e.detector}\0${e.file}\0${e.valueHash}`))
  return findings.filter(
    (f) => !fps.has(f.fingerprint) && !moved.has(`${f.detector}\0${f.file}\0${f.valueHash}`),
  )
}
