import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type CpuProfile, summarizeProfile, under } from './profile-summary.js'

const f = (functionName: string, url = '', lineNumber = 0) => ({ functionName, url, lineNumber })
// (root) → handle (src) → parse (src) → JSON.parse (builtin); handle → write (npm:pino); (idle)
const profile: CpuProfile = {
  nodes: [
    { id: 1, callFrame: f('(root)'), children: [2, 6] },
    { id: 2, callFrame: f('handle', 'file:///x/dist/src/gateway/gateway.js', 9), children: [3, 5] },
    { id: 3, callFrame: f('parse', 'file:///x/dist/src/openapi/json-guard.js', 39), children: [4] },
    { id: 4, callFrame: f('JSON.parse') },
    { id: 5, callFrame: f('write', 'file:///x/node_modules/pino/lib/proto.js', 205) },
    { id: 6, callFrame: f('(idle)') },
  ],
  // 2 in handle itself, 3 in parse, 1 in JSON.parse, 4 in pino, 10 idle
  samples: [2, 2, 3, 3, 3, 4, 5, 5, 5, 5, ...Array<number>(10).fill(6)],
}

test('summarizeProfile: shares of the busy samples, self, inclusive (project code) and by package', () => {
  const s = summarizeProfile(profile)
  assert.equal(s.samples, 20)
  assert.equal(s.busy, 10)
  assert.deepEqual(s.self[0], { name: 'write node_modules/pino/lib/proto.js:206', pct: 40 })
  const incl = Object.fromEntries(s.inclusive.map((x) => [x.name, x.pct]))
  assert.deepEqual(incl, {
    'handle dist/src/gateway/gateway.js:10': 100,
    'parse dist/src/openapi/json-guard.js:40': 40,
  })
  const pk = Object.fromEntries(s.packages.map((x) => [x.name, x.pct]))
  assert.equal(pk['npm:pino'], 40)
  assert.equal(pk['src/openapi/json-guard.js'], 30)
  assert.equal(pk['(idle)'], undefined)
})

test('under: the callees of a function with their inclusive shares', () => {
  assert.deepEqual(under(profile, 'json-guard'), [
    { name: 'parse dist/src/openapi/json-guard.js:40', pct: 40 },
    { name: '  JSON.parse', pct: 10 },
  ])
})
