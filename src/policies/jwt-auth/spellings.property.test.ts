/**
 * Property: every equivalent encoding of a valid token — `Bearer` in any case with any number of
 * spaces, base64url segments with padding, with their unused bits set, in the standard alphabet,
 * the other ECDSA signature (r, n − s), and combinations — is either refused with
 * GW_ERR_AUTH_INVALID or treated as the very same token: the same cache entry (no new signature
 * check), the same identity, the same rate-limit key, and refused once the token is revoked. The
 * oracle for "canonical" is independent of the code under test: a segment is canonical when
 * re-encoding its decoded bytes gives it back. fast-check, fixed seed, bounded runs.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { Value } from '@sinclair/typebox/value'
import fc from 'fast-check'
import pino from 'pino'
import { type IssuerKey, JwksIssuer, TEST_AUDIENCE } from '../../../test/helpers/jwks-issuer.js'
import { CURVE_ORDER } from '../../../test/helpers/jws-spellings.js'
import { REVOCATIONS_MAP, SharedRevocations } from '../../auth/revocation.js'
import { tokenHash, verifiedTokenId } from '../../auth/token.js'
import type { GatewayError } from '../../gateway/errors.js'
import type { RequestContext } from '../../gateway/pipeline/context.js'
import { createMemoryStore } from '../../stores/memory/memory-store.js'
import { compileKey } from '../rate-limit/keys.js'
import { testContext } from '../testing/context.js'
import { JwtAuth } from './policy.js'
import { JwtAuthConfig } from './schema.js'

const logger = pino({ level: 'silent' })
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
const rateKey = compileKey([{ header: 'authorization' }], false)

/** The oracle: a base64url segment is canonical when its bytes re-encode to it. */
function canonicalSegment(s: string): boolean {
  return /^[A-Za-z0-9_-]*$/.test(s) && Buffer.from(s, 'base64url').toString('base64url') === s
}

/** One way of spelling a segment of the same bytes. */
type SegmentSpelling =
  | { kind: 'as-is' }
  | { kind: 'pad'; n: number }
  | { kind: 'unused-bits'; bits: number }
  | { kind: 'standard'; mask: number }

function spellSegment(seg: string, how: SegmentSpelling): string {
  switch (how.kind) {
    case 'as-is':
      return seg
    case 'pad':
      return seg + '='.repeat(how.n)
    case 'unused-bits': {
      const rem = seg.length % 4
      if (rem === 0) return seg
      const v = ALPHABET.indexOf(seg.at(-1) as string)
      const unused = rem === 2 ? 0x0f : 0x03
      return seg.slice(0, -1) + (ALPHABET[v | (how.bits & unused)] as string)
    }
    case 'standard': {
      // Replace some of the url-safe characters (those whose index bit is set in `mask`).
      let i = 0
      return seg.replace(/[-_]/g, (c) => {
        const on = ((how.mask >> (i++ % 31)) & 1) === 1
        return on ? (c === '-' ? '+' : '/') : c
      })
    }
  }
}

const segmentSpelling: fc.Arbitrary<SegmentSpelling> = fc.oneof(
  { arbitrary: fc.constant({ kind: 'as-is' as const }), weight: 3 },
  fc.record({ kind: fc.constant('pad' as const), n: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ kind: fc.constant('unused-bits' as const), bits: fc.integer({ min: 0, max: 15 }) }),
  fc.record({ kind: fc.constant('standard' as const), mask: fc.integer({ min: 0, max: 0x7fffffff }) }),
)

/** (r, n − s) of an ECDSA signature segment. */
function twin(sig: string, alg: 'ES256' | 'ES384'): string {
  const b = Buffer.from(sig, 'base64url')
  const size = b.length / 2
  const s = BigInt(`0x${b.subarray(size).toString('hex')}`)
  const flipped = Buffer.from((CURVE_ORDER[alg] - s).toString(16).padStart(size * 2, '0'), 'hex')
  return Buffer.concat([b.subarray(0, size), flipped]).toString('base64url')
}

interface Spelling {
  tokenIndex: number
  scheme: string
  spaces: number
  header: SegmentSpelling
  payload: SegmentSpelling
  signature: SegmentSpelling
  flipS: boolean
}

const spelling: fc.Arbitrary<Spelling> = fc.record({
  tokenIndex: fc.nat(),
  scheme: fc
    .array(fc.boolean(), { minLength: 6, maxLength: 6 })
    .map((up) => [...'bearer'].map((c, i) => (up[i] ? c.toUpperCase() : c)).join('')),
  spaces: fc.integer({ min: 1, max: 4 }),
  header: segmentSpelling,
  payload: segmentSpelling,
  signature: segmentSpelling,
  flipS: fc.boolean(),
})

describe('equivalent encodings of valid tokens (property)', () => {
  let issuer: JwksIssuer
  const tokens: { token: string; alg: 'ES256' | 'ES384' | 'RS256' }[] = []
  let p: JwtAuth
  let shared: SharedRevocations
  const store = createMemoryStore({})

  before(async () => {
    issuer = await JwksIssuer.start(['ES256', 'RS256'])
    await issuer.down() // only its minting is used here
    const [es, rs] = issuer.keys as [IssuerKey, IssuerKey]
    for (let i = 0; i < 4; i++) tokens.push({ token: await issuer.mint({ key: es }), alg: 'ES256' })
    for (let i = 0; i < 2; i++) tokens.push({ token: await issuer.mint({ key: rs }), alg: 'RS256' })
    const c = Value.Default(JwtAuthConfig, {
      algorithms: ['ES256', 'RS256'],
      issuer: issuer.issuer,
      audience: TEST_AUDIENCE,
      keys: [
        { kid: es.kid, jwk: JSON.stringify(es.publicJwk) },
        { kid: rs.kid, pem: rs.spki },
      ],
    }) as JwtAuthConfig
    p = new JwtAuth(c, logger, Date.now, 'property', store)
    shared = new SharedRevocations(store, { logger })
    await shared.ready()
  })
  after(async () => {
    p.close()
    shared.close()
    await store.close()
  })

  async function send(value: string): Promise<{ code: string | undefined; ctx: RequestContext }> {
    const ctx = testContext({ headers: { authorization: value } })
    try {
      const r = p.onRequest(ctx)
      if (r !== undefined) await r
      return { code: undefined, ctx }
    } catch (err) {
      return { code: (err as GatewayError).code, ctx }
    }
  }

  function build(s: Spelling): { value: string; canonical: boolean; base: (typeof tokens)[number] } {
    const base = tokens[s.tokenIndex % tokens.length] as (typeof tokens)[number]
    const [h, pl, sig] = base.token.split('.') as [string, string, string]
    const sigSeg = s.flipS && base.alg !== 'RS256' ? twin(sig, base.alg) : sig
    const parts = [spellSegment(h, s.header), spellSegment(pl, s.payload), spellSegment(sigSeg, s.signature)]
    return {
      value: `${s.scheme}${' '.repeat(s.spaces)}${parts.join('.')}`,
      canonical: parts.every(canonicalSegment),
      base,
    }
  }

  test('each spelling is refused (GW_ERR_AUTH_INVALID) or is the same token for cache, identity and rate-limit key', async () => {
    // The canonical spellings first: their identities, principals and rate-limit keys.
    const reference = new Map<string, { id: string | undefined; key: string; principal: unknown }>()
    for (const t of tokens) {
      const r = await send(`Bearer ${t.token}`)
      assert.equal(r.code, undefined)
      const k = rateKey(r.ctx)
      assert.ok('key' in k)
      reference.set(t.token, {
        id: verifiedTokenId(r.ctx, 'authorization'),
        key: k.key,
        principal: r.ctx.principal,
      })
    }
    const verifiedBefore = p.stats.verifications
    let accepted = 0
    let refused = 0
    await fc.assert(
      fc.asyncProperty(spelling, async (s) => {
        const { value, canonical, base } = build(s)
        const r = await send(value)
        const ref = reference.get(base.token) as { id: string; key: string; principal: unknown }
        if (!canonical) {
          assert.equal(r.code, 'GW_ERR_AUTH_INVALID', value)
          refused++
          return
        }
        assert.equal(r.code, undefined, value)
        accepted++
        assert.equal(r.ctx.principal, ref.principal, 'the same cached principal')
        assert.equal(verifiedTokenId(r.ctx, 'authorization'), ref.id, 'the same identity')
        const k = rateKey(r.ctx)
        assert.ok('key' in k && k.key === ref.key, 'the same rate-limit key')
      }),
      { seed: 0x5eed, numRuns: 300, endOnFailure: true },
    )
    assert.equal(p.stats.verifications, verifiedBefore, 'no spelling needed a signature check of its own')
    assert.ok(accepted > 20 && refused > 100, `accepted ${accepted}, refused ${refused}`)
  })

  test('once revoked (by the hash of the token as issued), every spelling is refused', async () => {
    for (const t of tokens) {
      await store.maps.set(REVOCATIONS_MAP, `sha256:${tokenHash(t.token)}`, '{}', 60_000)
    }
    await shared.refresh()
    let runs = 0
    await fc.assert(
      fc.asyncProperty(spelling, async (s) => {
        const { value } = build(s)
        assert.equal((await send(value)).code, 'GW_ERR_AUTH_INVALID', value)
        runs++
      }),
      { seed: 0x5eed + 1, numRuns: 200, endOnFailure: true },
    )
    assert.equal(runs, 200)
  })
})
