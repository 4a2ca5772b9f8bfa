/**
 * The SARIF 2.1.0 report (one run). Rules come from `report.checks` (with help text and markdown),
 * results from the findings. A finding's location is the spec file (physical) and the operation
 * (logical, `GET /orders/{id}`); findings about the whole target point at the target URL.
 */
import { createHash } from 'node:crypto'
import { SARIF_LEVEL, SARIF_SCHEMA_URI, SECURITY_SEVERITY, toUriReference } from '../../util/sarif.js'
import type { CheckInfo, Finding, ScanReport } from '../types.js'
import { OWASP_TITLES } from '../types.js'
import { opLabel, requestLine, responseLine, sortFindings, summaryLine } from './shared.js'

export function renderSarif(report: ScanReport): string {
  const rules: CheckInfo[] = [...report.checks]
  const index = new Map(rules.map((c, i) => [c.id, i]))
  // A finding whose check is not listed (should not happen) still gets a rule, so ruleIndex is valid.
  for (const f of report.findings) {
    if (index.has(f.checkId)) continue
    index.set(f.checkId, rules.length)
    rules.push({
      id: f.checkId,
      title: f.title,
      owasp: f.owasp,
      severity: f.severity,
      description: f.title,
      why: '',
      fix: '',
      fixExample: '',
    })
  }
  const specUri = toUriReference(report.spec)
  const log = {
    $schema: SARIF_SCHEMA_URI,
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'portcullis',
            semanticVersion: /^\d+\.\d+\.\d+/.test(report.tool.version) ? report.tool.version : undefined,
            version: report.tool.version,
            rules: rules.map(rule),
          },
        },
        invocations: [
          {
            executionSuccessful: true,
            startTimeUtc: report.startedAt,
            endTimeUtc: report.finishedAt,
            properties: {
              target: report.target,
              safe: report.safe,
              identities: report.identities,
              skipped: report.skipped,
              stats: report.stats,
              summary: summaryLine(report),
            },
          },
        ],
        results: sortFindings(report.findings).map((f) =>
          result(f, index.get(f.checkId) as number, specUri, report),
        ),
        properties: { target: report.target },
      },
    ],
  }
  return `${JSON.stringify(log, null, 2)}\n`
}

function rule(c: CheckInfo) {
  const owaspTitle = OWASP_TITLES[c.owasp] ?? ''
  const text = [
    c.description,
    `Why it matters: ${c.why}`,
    `How to fix: ${c.fix}`,
    c.fixExample ? `Example:\n${c.fixExample}` : '',
  ]
    .filter((s) => s.trim() !== '' && !s.endsWith(': '))
    .join('\n\n')
  const markdown = [
    `**${c.owasp} ${owaspTitle}**`,
    c.description,
    `### Why it matters\n\n${c.why}`,
    `### How to fix\n\n${c.fix}`,
    c.fixExample ? `\`\`\`\n${c.fixExample.replaceAll('```', '` ` `')}\n\`\`\`` : '',
  ]
    .filter((s) => s.trim() !== '')
    .join('\n\n')
  return {
    id: c.id,
    name: pascal(c.id),
    shortDescription: { text: c.title },
    fullDescription: { text: c.description || c.title },
    help: { text, markdown },
    defaultConfiguration: { level: SARIF_LEVEL[c.severity] },
    properties: {
      owasp: c.owasp,
      severity: c.severity,
      'security-severity': SECURITY_SEVERITY[c.severity],
      tags: ['security', c.owasp, `OWASP API Top 10 ${owaspTitle}`],
      ...(c.destructive ? { destructive: true } : {}),
    },
  }
}

function result(f: Finding, ruleIndex: number, specUri: string, report: ScanReport) {
  const op = opLabel(f)
  const logical = op
    ? { name: f.operation?.operationId ?? op, fullyQualifiedName: op, kind: 'function' }
    : { name: report.target, fullyQualifiedName: report.target, kind: 'module' }
  const evidence = f.evidence.map((ev) => ({
    note: ev.note,
    exchanges: ev.exchanges.map((x) => `${requestLine(x)} ${responseLine(x)}`),
  }))
  const proof = f.evidence[0]?.exchanges[0]
  const message = proof ? `${f.summary} Proof: ${requestLine(proof)} ${responseLine(proof)}.` : f.summary
  return {
    ruleId: f.checkId,
    ruleIndex,
    level: SARIF_LEVEL[f.severity],
    message: { text: message },
    locations: [
      {
        physicalLocation: {
          artifactLocation: { uri: specUri },
          // Where the operation is written in the spec, when the engine could tell.
          ...(f.operation?.line !== undefined
            ? {
                region: {
                  startLine: f.operation.line,
                  ...(f.operation.column ? { startColumn: f.operation.column } : {}),
                },
              }
            : {}),
        },
        logicalLocations: [logical],
      },
    ],
    partialFingerprints: {
      'portcullisFinding/v1': createHash('sha256')
        .update(`${f.checkId}\n${op}\n${f.identity ?? ''}\n${f.title}`)
        .digest('hex'),
      ...(f.fingerprint ? { 'portcullisFinding/v2': f.fingerprint } : {}),
    },
    ...(f.baselineState ? { baselineState: f.baselineState } : {}),
    properties: {
      owasp: f.owasp,
      severity: f.severity,
      title: f.title,
      ...(f.identity !== undefined ? { identity: f.identity } : {}),
      evidence,
      exchanges: f.evidence.flatMap((ev) => ev.exchanges),
    },
  }
}

function pascal(id: string): string {
  return id
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w[0]?.toUpperCase() + w.slice(1))
    .join('')
}

export { SARIF_SCHEMA_URI, toUriReference } from '../../util/sarif.js'
