/**
 * The HTML report: one self-contained file (inline CSS, no script at all, a Content-Security-Policy
 * that forbids scripts and every network load as a second line of defence). Every string that
 * came from the target or the spec is escaped: responses are hostile.
 */
import type { Exchange, Finding, ScanReport } from '../types.js'
import { OWASP_TITLES } from '../types.js'
import {
  checkById,
  countBySeverity,
  excerpt,
  opLabel,
  printable,
  requestLine,
  responseLine,
  SEVERITIES,
  sortFindings,
  summaryLine,
} from './shared.js'

/** Escapes text for HTML element content and quoted attribute values. */
export function htmlEscape(s: string): string {
  return printable(s)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;')
}

const CSP =
  "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:18px 28px}
header h1{margin:0 0 4px;font-size:20px}
header p{margin:2px 0;color:#c9cfdb}
main{padding:18px 28px;max-width:1100px}
.counts{display:flex;gap:8px;flex-wrap:wrap;margin:10px 0 18px}
.count{padding:6px 12px;border-radius:6px;background:#fff;border:1px solid #dde1e8}
.sev{display:inline-block;min-width:64px;text-align:center;border-radius:4px;padding:1px 6px;font-size:12px;font-weight:600;color:#fff;text-transform:uppercase}
.sev-critical{background:#7b1fa2}.sev-high{background:#c62828}.sev-medium{background:#ef6c00}.sev-low{background:#0277bd}.sev-info{background:#607d8b}
section.finding{background:#fff;border:1px solid #dde1e8;border-radius:8px;padding:12px 16px;margin:10px 0}
section.finding h3{margin:0 0 6px;font-size:16px}
.meta{color:#5a6272;font-size:13px}
details{margin:8px 0}
summary{cursor:pointer;font-weight:600}
pre{background:#f0f2f5;border-radius:6px;padding:8px 10px;white-space:pre-wrap;word-break:break-all;font:12px/1.4 ui-monospace,Menlo,Consolas,monospace;max-height:320px;overflow:auto}
h2{margin-top:26px;border-bottom:2px solid #dde1e8;padding-bottom:4px}
table{border-collapse:collapse}td,th{text-align:left;padding:3px 10px 3px 0}
`

export function renderHtml(report: ScanReport): string {
  const e = htmlEscape
  const checks = checkById(report)
  const counts = countBySeverity(report.findings)
  const sorted = sortFindings(report.findings)
  const parts: string[] = []
  parts.push(
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="${e(CSP)}">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${e(`Portcullis scan report: ${report.target}`)}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    '<body>',
    '<header>',
    `<h1>Portcullis scan report</h1>`,
    `<p>Target: <strong>${e(report.target)}</strong> · spec: ${e(report.spec)}</p>`,
    `<p>${e(report.startedAt)} → ${e(report.finishedAt)} · ${report.safe ? 'safe mode' : 'UNSAFE mode'} · identities: ${e(report.identities.join(', ') || '(none)')} · portcullis ${e(report.tool.version)}</p>`,
    '</header>',
    '<main>',
    `<p id="summary">${e(summaryLine(report))}</p>`,
    '<div class="counts">',
    ...SEVERITIES.map(
      (s) => `<span class="count"><span class="sev sev-${s}">${s}</span> ${counts[s]}</span>`,
    ),
    '</div>',
  )
  if (report.unreachable) parts.push(`<p><strong>No verdict:</strong> ${e(report.unreachable)}</p>`)
  if (sorted.length === 0) parts.push('<p>No findings.</p>')
  for (const sev of SEVERITIES) {
    const group = sorted.filter((f) => f.severity === sev)
    if (group.length === 0) continue
    parts.push(`<h2 id="sev-${sev}">${e(sev[0]?.toUpperCase() + sev.slice(1))} (${group.length})</h2>`)
    for (const f of group) parts.push(renderFinding(f))
  }
  if (report.skipped.length > 0) {
    parts.push('<h2>Skipped checks</h2>', '<table>')
    for (const s of report.skipped) parts.push(`<tr><th>${e(s.checkId)}</th><td>${e(s.reason)}</td></tr>`)
    parts.push('</table>')
  }
  if (report.blocked && report.blocked.length > 0) {
    parts.push('<h2>Not called in safe mode</h2>', '<table>')
    for (const b of report.blocked) parts.push(`<tr><th>${e(b.operation)}</th><td>${e(b.reason)}</td></tr>`)
    parts.push('</table>')
  }
  if (report.notes && report.notes.length > 0) {
    parts.push('<h2>Notes</h2>', '<ul>')
    for (const n of report.notes) parts.push(`<li>${e(n)}</li>`)
    parts.push('</ul>')
  }
  parts.push('<h2>Checks run</h2>', '<table>')
  for (const c of report.checks)
    parts.push(
      `<tr><th>${e(c.id)}</th><td>${e(c.owasp)}</td><td>${e(c.severity)}</td><td>${e(c.title)}</td></tr>`,
    )
  parts.push('</table>', '</main>', '</body>', '</html>')
  return `${parts.join('\n')}\n`

  function renderFinding(f: Finding): string {
    const check = checks.get(f.checkId)
    const op = opLabel(f)
    const meta = [
      `${e(f.owasp)} ${e(OWASP_TITLES[f.owasp] ?? '')}`,
      `check <code>${e(f.checkId)}</code>`,
      op
        ? `operation <code>${e(op)}</code>${f.operation?.operationId ? ` (${e(f.operation.operationId)})` : ''}`
        : '',
      f.identity ? `identity <strong>${e(f.identity)}</strong>` : '',
    ].filter(Boolean)
    const out = [
      `<section class="finding sev-border-${f.severity}">`,
      `<h3><span class="sev sev-${f.severity}">${f.severity}</span> <span class="title">${e(f.title)}</span></h3>`,
      `<div class="meta">${meta.join(' · ')}</div>`,
      `<p>${e(f.summary)}</p>`,
    ]
    for (const ev of f.evidence) {
      out.push(`<details><summary>Proof: ${e(ev.note)}</summary>`)
      for (const x of ev.exchanges) out.push(renderExchange(x))
      out.push('</details>')
    }
    if (check) {
      out.push(
        '<details><summary>Why it matters and how to fix it</summary>',
        `<p>${e(check.description)}</p>`,
        `<p><strong>Why it matters.</strong> ${e(check.why)}</p>`,
        `<p><strong>How to fix.</strong> ${e(check.fix)}</p>`,
        check.fixExample ? `<pre>${e(check.fixExample)}</pre>` : '',
        '</details>',
      )
    }
    out.push('</section>')
    return out.join('\n')
  }

  function renderExchange(x: Exchange): string {
    const req = [requestLine(x), ...Object.entries(x.request.headers).map(([k, v]) => `${k}: ${v}`)]
    if (x.request.body) req.push('', excerpt(x.request.body, 2000))
    const res = [responseLine(x)]
    if (x.response) {
      res.push(...Object.entries(x.response.headers).map(([k, v]) => `${k}: ${v}`))
      if (x.response.body) res.push('', excerpt(x.response.body, 4000))
    }
    return `<pre class="request">${e(req.join('\n'))}</pre>\n<pre class="response">${e(res.join('\n'))}</pre>`
  }
}
