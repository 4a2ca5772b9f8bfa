import { SARIF_LEVEL } from '../util/sarif.js'
/** Renders findings: text for people, JSON, and SARIF 2.1.0 for code scanning. No secret in clear. */
import type { Finding } from './findings.js'
import type { Detector, Severity } from './types.js'

const ORDER: Record<Severity, number> = { critical: 0, high: 1, medium: 2, low: 3 }

export interface Summary {
  files: number
  commits: number
  bytes: number
  seconds: number
  skipped: number
  incomplete: number
}

export function renderText(findings: readonly Finding[], s: Summary): string {
  const lines: string[] = []
  const sorted = [...findings].sort(
    (a, b) => ORDER[a.severity] - ORDER[b.severity] || a.file.localeCompare(b.file) || a.line - b.line,
  )
  for (const f of sorted) {
    const where = `${f.file}:${f.line}:${f.column}`
    const enc = f.encodings.length ? ` (in ${f.encodings.join(' in ')})` : ''
    lines.push(`${f.severity.toUpperCase().padEnd(8)} ${f.detector}  ${where}  ${f.preview}${enc}`)
    if (f.commit)
      lines.push(`         commit ${f.commit.sha.slice(0, 12)} ${f.commit.date} ${f.commit.author}`)
  }
  const mb = s.bytes / 1e6
  lines.push(
    `${findings.length} finding${findings.length === 1 ? '' : 's'}; ${s.commits > 0 ? `${s.commits} commits, ` : ''}${s.files} files, ${mb.toFixed(1)} MB in ${s.seconds.toFixed(2)} s` +
      (s.skipped ? `; ${s.skipped} skipped (binary, size, links)` : '') +
      (s.incomplete ? `; ${s.incomplete} not fully scanned (work budget)` : ''),
  )
  return `${lines.join('\n')}\n`
}

export function renderJson(findings: readonly Finding[], s: Summary): string {
  return `${JSON.stringify({ findings, summary: s }, null, 2)}\n`
}

/** SARIF 2.1.0: one rule per detector that fired, results with regions and fingerprints. */
export function renderSarif(
  findings: readonly Finding[],
  detectors: readonly Detector[],
  version: string,
): string {
  const used = [...new Set(findings.map((f) => f.detector))]
  const byId = new Map(detectors.map((d) => [d.id, d]))
  const rules = used.map((id) => {
    const d = byId.get(id)
    return {
      id,
      name: d?.name ?? id,
      shortDescription: { text: d?.name ?? id },
      fullDescription: { text: d?.description ?? `${d?.name ?? id} (${d?.provider ?? ''})` },
      ...(d?.docs?.startsWith('http') ? { helpUri: d.docs } : {}),
      defaultConfiguration: { level: SARIF_LEVEL[d?.severity ?? 'high'] },
      properties: { tags: ['security', 'secret'], provider: d?.provider },
    }
  })
  const results = findings.map((f) => ({
    ruleId: f.detector,
    ruleIndex: used.indexOf(f.detector),
    level: SARIF_LEVEL[f.severity],
    message: { text: `${f.name}: ${f.preview}${f.commit ? ` (commit ${f.commit.sha.slice(0, 12)})` : ''}` },
    locations: [
      {
        physicalLocation: {
          artifactLocation: { uri: encodeURI(f.file) },
          region: { startLine: f.line, startColumn: f.column, endLine: f.endLine, endColumn: f.endColumn },
        },
      },
    ],
    partialFingerprints: { 'portcullisSecret/v1': f.fingerprint },
    properties: { valueHash: f.valueHash, ...(f.commit ? { commit: f.commit } : {}), encodings: f.encodings },
  }))
  return `${JSON.stringify(
    {
      $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
      version: '2.1.0',
      runs: [
        {
          tool: {
            driver: {
              name: 'portcullis-secrets',
              version,
              informationUri: 'https://github.com/portcullis-security/portcullis/blob/main/docs/secrets.md',
              rules,
            },
          },
          results,
        },
      ],
    },
    null,
    2,
  )}\n`
}
