import assert from 'node:assert/strict'
import { test } from 'node:test'
import { memoryAudit } from '../../audit/event.js'
import { BANS_MAP, encodeBan, noteLocalBan } from '../../detect/bans.js'
import type { GatewayError } from '../../gateway/errors.js'
import type { PolicyInstance } from '../../gateway/pipeline/policy.js'
import { acquireMapMirror } from '../../stores/mirror.js'
import { testContext, testDeps } from '../testing/context.js'
import { ban, banPrincipal } from './policy.js'

function run(p: PolicyInstance, ctx = testContext()): string | undefined {
  try {
    const r = p.onRequest?.(ctx)
    assert.equal(r, undefined, 'synchronous')
    return undefined
  } catch (e) {
    return (e as GatewayError).code
  }
}

test('ban: an IP in the map is refused with GW_ERR_BANNED and an audit event; others pass', async () => {
  const audit = memoryAudit()
  const deps = testDeps({ audit })
  const p = ban.create({}, deps)
  assert.equal(run(p), undefined)
  await deps.store.maps.set(
    BANS_MAP,
    'ip:127.0.0.1',
    encodeBan({ reason: 'r', by: 'x', until: Date.now() + 60_000 }),
    60_000,
  )
  const m = acquireMapMirror(deps.store, BANS_MAP, { logger: deps.logger })
  await m.refresh()
  assert.equal(run(p), 'GW_ERR_BANNED')
  assert.equal(audit.events.at(-1)?.type, 'ban.hit')
  assert.equal(audit.events.at(-1)?.code, 'GW_ERR_BANNED')
  const other = testContext()
  ;(other as { clientIp: string }).clientIp = '10.0.0.9'
  assert.equal(run(p, other), undefined)
  await deps.store.maps.delete(BANS_MAP, 'ip:127.0.0.1')
  await m.refresh()
  assert.equal(run(p), undefined, 'lifted')
  m.close()
  p.close?.()
  await deps.store.close()
})

test('ban: a local note applies at once, and only for a bounded time', async () => {
  let t = 1_700_000_000_000
  const deps = testDeps({ now: () => t })
  const p = ban.create({}, deps)
  noteLocalBan(deps.store, 'ip:127.0.0.1', t + 3_600_000, t)
  assert.equal(run(p), 'GW_ERR_BANNED')
  t += 10_000 // past the local trust period: the (empty) mirror decides
  assert.equal(run(p), undefined)
  p.close?.()
  await deps.store.close()
})

test('ban-principal: refuses a banned principal, ignores anonymous requests', async () => {
  const deps = testDeps()
  const p = banPrincipal.create({}, deps)
  noteLocalBan(deps.store, 'principal:eve', Date.now() + 60_000, Date.now())
  assert.equal(run(p), undefined, 'no principal')
  const ctx = testContext()
  ctx.principal = { id: 'eve', type: 'user', scopes: [], roles: [], claims: {}, authMethod: 'jwt' }
  assert.equal(run(p, ctx), 'GW_ERR_BANNED')
  ctx.principal = { ...ctx.principal, id: 'alice' }
  assert.equal(run(p, ctx), undefined)
  p.close?.()
  await deps.store.close()
})
