/** API8: headers that name the server software and its version (Server, X-Powered-By, …). */
import type { Check } from '../types.js'
import { SkipCheck } from '../types.js'
import type { Exchange } from '../types.js'
import { finding, randomName, sampleResponse } from './probe.js'

const ALWAYS = ['x-powered-by', 'x-aspnet-version', 'x-aspnetmvc-version', 'x-generator', 'x-runtime-version']

export const techDisclosure: Check = {
  id: 'tech-disclosure',
  title: 'Technology disclosure in headers',
  owasp: 'API8:2023',
  severity: 'low',
  description:
    'Looks for X-Powered-By and similar headers, and a Server header with a version number, on every answer ' +
    'the scan received (errors included), not on one sample.',
  why:
    'Product and version names let attackers pick known exploits for exactly that version without probing; ' +
    'they help nobody else. Error pages often carry them when ordinary answers do not.',
  fix: 'Remove X-Powered-By and friends, and send a Server header without versions (or none), on error answers too.',
  fixExample: "app.disable('x-powered-by')   // Express\nserver_tokens off;          # nginx",
  async run(ctx) {
    // Make sure there is an error answer and an ordinary one among those seen.
    const sample = await sampleResponse(ctx)
    await ctx.send(undefined, { method: 'GET', path: `/${randomName('pcl-nothing-')}` })
    const answers = ctx.observed
      ? ctx.observed()
      : sample
        ? [{ headers: sample.res.headers, exchange: sample.res.exchange, status: sample.res.status }]
        : []
    if (answers.length === 0) throw new SkipCheck('no answer to look at')
    const shown = new Map<string, Exchange>()
    let errors = 0
    for (const a of answers) {
      const h = a.headers
      const lines: string[] = []
      for (const name of ALWAYS) if (h[name] !== undefined) lines.push(`${name}: ${h[name]}`)
      if (h.server !== undefined && /\d/.test(h.server)) lines.push(`server: ${h.server}`)
      for (const l of lines) {
        if (!shown.has(l) && shown.size < 6) {
          shown.set(l, a.exchange)
          if (a.status >= 400) errors++
        }
      }
    }
    if (shown.size === 0) return []
    const list = [...shown.keys()]
    return [
      finding(this, {
        summary: `The API names its software: ${list.join('; ')}${errors > 0 && errors === shown.size ? ' (on error answers)' : ''}.`,
        evidence: [...shown].slice(0, 3).map(([line, x]) => ({ note: line, exchanges: [x] })),
      }),
    ]
  },
}
