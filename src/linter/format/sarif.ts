/**
 * SARIF 2.1.0: one run; `tool.driver.rules` lists every rule that ran (help text with why and the
 * before/after fix); each finding is one result whose first location is `locations[0]` (with a
 * `region`: startLine, startColumn) and whose other locations are `relatedLocations`.
 */
import { createHash } from 'node:crypto'
import { SARIF_LEVEL, SARIF_SCHEMA_URI, SECURITY_SEVERITY, toUriReference } from '../../util/sarif.js'
import type { LintReport, RuleMeta, SpecLocation } from '../types.js'
import { CATEGORY_TITLES } from '../types.js'
import { displayFile, summary } from './shared.js'

export function renderSarif(report: LintReport): string {
  const index = new Map(report.rules.map((r, i) => [r.id, i]))
  const log = {
    $schema: SARIF_SCHEMA_URI,
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'portcullis-lint',
            version: report.tool.version,
            semanticVersion: /^\d+\.\d+\.\d+/.test(report.tool.version) ? report.tool.version : undefined,
            informationUri: 'https://github.com/portcullis-security/portcullis/tree/main/docs/lint',
            rules: report.rules.map(rule),
          },
        },
        invocations: [
          { executionSuccessful: true, properties: { score: report.score, summary: summary(report) } },
        ],
        results: report.findings.map((f) => {
          const [first, ...rest] = f.locations
          return {
            ruleId: f.rule,
            ruleIndex: index.get(f.rule) ?? 0,
            level: SARIF_LEVEL[f.severity],
            message: { text: f.message },
            locations: first ? [location(first)] : [],
            ...(rest.length > 0
              ? {
                  relatedLocations: rest.map((l, i) => ({
                    id: i + 1,
                    ...location(l),
                    message: { text: l.note ?? l.operation ?? f.message },
                  })),
                }
              : {}),
            partialFingerprints: {
              'portcullisLint/v1': createHash('sha256')
                .update(`${f.rule}\n${first ? `${displayFile(first.file)}#${first.pointer}` : ''}`)
                .digest('hex'),
            },
            properties: { severity: f.severity, category: f.category, locations: f.locations.length },
          }
        }),
        properties: {
          spec: report.spec,
          score: report.score,
          ...(report.gateway ? { gatewayGaps: report.gateway.gaps } : {}),
        },
      },
    ],
  }
  return `${JSON.stringify(log, null, 2)}\n`
}

function location(l: SpecLocation) {
  return {
    physicalLocation: {
      artifactLocation: { uri: toUriReference(displayFile(l.file)) },
      ...(l.line ? { region: { startLine: l.line, startColumn: l.column ?? 1 } } : {}),
    },
    ...(l.operation
      ? { logicalLocations: [{ name: l.operation, fullyQualifiedName: `${l.operation}`, kind: 'function' }] }
      : {}),
  }
}

function rule(r: RuleMeta) {
  const markdown = [
    `**${CATEGORY_TITLES[r.category]}**`,
    r.why,
    '### Before',
    `\`\`\`yaml\n${r.before}\n\`\`\``,
    '### After',
    `\`\`\`yaml\n${r.after}\n\`\`\``,
  ].join('\n\n')
  return {
    id: r.id,
    name: r.id.replace(/(^|-)([a-z0-9])/g, (_m, _d, c: string) => c.toUpperCase()),
    shortDescription: { text: r.title },
    fullDescription: { text: r.why },
    help: { text: `${r.why}\n\nFix (after):\n${r.after}`, markdown },
    helpUri: `https://github.com/portcullis-security/portcullis/blob/main/docs/lint/rules/${r.id}.md`,
    defaultConfiguration: { level: SARIF_LEVEL[r.severity] },
    properties: {
      category: r.category,
      severity: r.severity,
      'security-severity': SECURITY_SEVERITY[r.severity],
      tags: r.category === 'hygiene' ? ['openapi'] : ['security', 'openapi', CATEGORY_TITLES[r.category]],
    },
  }
}

export { SARIF_SCHEMA_URI } from '../../util/sarif.js'
