import type { Hit } from '../types.js'
import { defineRule, serversOf } from './util.js'

function internal(host: string): string | undefined {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '')
  if (h === 'localhost' || h.endsWith('.localhost') || h === '::1' || h === '0.0.0.0') return 'loopback'
  if (/^127\./.test(h)) return 'loopback'
  if (/^10\.|^192\.168\.|^172\.(1[6-9]|2\d|3[01])\./.test(h)) return 'private network'
  if (/^169\.254\./.test(h) || /^fe80:/.test(h) || /^f[cd][0-9a-f]{2}:/.test(h))
    return 'link-local or private IPv6'
  if (/\.(local|internal|intranet|corp|lan|home|private)$/.test(h)) return 'internal domain'
  if (
    h
      .split('.')
      .some((l) =>
        /^(dev|development|staging|stage|test|testing|qa|uat|sandbox-internal|internal|intranet)$/.test(l),
      )
  )
    return 'non-production host'
  return undefined
}

export const serverInternalAddress = defineRule({
  id: 'server-internal-address',
  title: 'Internal or non-production server in the contract',
  category: 'API8',
  severity: 'low',
  why: 'A published contract that lists `localhost`, private addresses, `*.internal` hosts or `staging`/`dev` servers maps your internal network for attackers, and generated clients default to them. Publish only the public servers; keep others in a private variant.',
  before: `servers:
  - url: https://api.example.com
  - url: https://api.staging.example.com`,
  after: `servers:
  - url: https://api.example.com`,
  check(ctx) {
    const out: Hit[] = []
    for (const s of serversOf(ctx)) {
      for (const u of s.expanded) {
        let host: string
        try {
          host = new URL(u).hostname
        } catch {
          continue
        }
        const why = internal(host)
        if (why !== undefined) {
          out.push({ message: `server ${u} is a ${why} address`, locations: [ctx.loc(s.at)] })
          break
        }
      }
    }
    return out
  },
})
