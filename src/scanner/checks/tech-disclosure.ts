/** API8: headers that name the server software and its version (Server, X-Powered-By, …). */
import type { Check } from '../types.js'
import { SkipCheck } from '../types.js'
import { finding, sampleResponse } from './probe.js'

const ALWAYS = ['x-powered-by', 'x-aspnet-version', 'x-aspnetmvc-version', 'x-generator', 'x-runtime-version']

export const techDisclosure: Check = {
  id: 'tech-disclosure',
  title: 'Technology disclosure in headers',
  owasp: 'API8:2023',
  severity: 'low',
  description: 'Looks for X-Powered-By and similar headers, and a Server header with a version number.',
  why:
    'Product and version names let attackers pick known exploits for exactly that version without probing; ' +
    'they help nobody else.',
  fix: 'Remove X-Powered-By and friends, and send a Server header without versions (or none).',
  fixExample: "app.disable('x-powered-by')   // Express\nserver_tokens off;          # nginx",
  async run(ctx) {
    const sample = await sampleResponse(ctx)
    if (!sample) throw new SkipCheck('no GET operation answered')
    const h = sample.res.headers
    const shown: string[] = []
    for (const name of ALWAYS) if (h[name] !== undefined) shown.push(`${name}: ${h[name]}`)
    const server = h.server
    if (server !== undefined && /\d/.test(server)) shown.push(`server: ${server}`)
    if (shown.length === 0) return []
    return [
      finding(this, {
        summary: `The API names its software: ${shown.join('; ')}.`,
        evidence: [{ note: shown.join('; '), exchanges: [sample.res.exchange] }],
      }),
    ]
  },
}
