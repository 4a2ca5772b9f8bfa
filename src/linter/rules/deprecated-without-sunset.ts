import { defineRule, perOperation } from './util.js'

function hasSunset(raw: Record<string, unknown>, headers: string[][]): boolean {
  if (Object.keys(raw).some((k) => /^x-.*(sunset|removal|deprecat\w*-(at|on|date))/i.test(k))) return true
  if (headers.some((h) => h.includes('sunset') || h.includes('deprecation'))) return true
  const text = `${String(raw.description ?? '')} ${String(raw.summary ?? '')}`
  return /\b(sunset|removed?|retire[sd]?)\b[^.]*\b(20\d\d|\d{4}-\d\d-\d\d)/i.test(text)
}

export const deprecatedWithoutSunset = defineRule({
  id: 'deprecated-without-sunset',
  title: 'Deprecated operation with no sunset',
  category: 'API9',
  severity: 'low',
  why: 'A deprecated operation with no removal date stays deployed forever: unmaintained, unmonitored, often with older and weaker checks (OWASP API9). Announce the date (`Sunset` header, RFC 8594, or `x-sunset`) and remove it then.',
  before: `paths:
  /v1/profile:
    get:
      deprecated: true
      responses:
        "200": { description: Profile }`,
  after: `paths:
  /v1/profile:
    get:
      deprecated: true
      x-sunset: "2026-06-30"
      responses:
        "200":
          description: Profile
          headers:
            Sunset: { schema: { type: string } }`,
  check: (ctx) =>
    perOperation(ctx, (o) =>
      o.op.deprecated &&
      !hasSunset(
        o.op.raw,
        o.op.responses.map((r) => r.headers),
      )
        ? `${o.label} is deprecated with no sunset date`
        : undefined,
    ),
})
