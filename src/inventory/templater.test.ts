import assert from 'node:assert/strict'
import { test } from 'node:test'
import { hllAdd, hllCount, HLL_M, latencyBucket, quantile } from './sketch.js'
import { segmentKind, Templater } from './templater.js'

test('segments: identifiers by kind; words, versions and short codes stay literal', () => {
  const ids: [string, string][] = [
    ['42', 'id'],
    ['0007', 'id'],
    ['3f2504e0-4f89-11d3-9a0c-0305e82c3301', 'uuid'],
    ['2024-05-01', 'date'],
    ['alice@example.com', 'email'],
    ['deadbeef01', 'id'],
    ['5f1a2b3c4d5e6f708192a3b4', 'id'],
    ['3q2-7wFvR8nYb0xQm4pLk1sTz9uVaC6d', 'id'],
    ['01HGW2N7EHJ2A5T3Q9XK4B6C8D', 'id'],
    ['ord-2024-0042', 'id'],
  ]
  for (const [seg, kind] of ids) assert.equal(segmentKind(seg), kind, seg)
  for (const seg of [
    'users',
    'v1',
    'v2.1',
    'api',
    'me',
    'internationalization',
    'getUserProfileSettings',
    'deadbeef',
    'abc',
    'page1',
    'html5',
    'config',
    '',
  ])
    assert.equal(segmentKind(seg), undefined, seg)
})

test('templates: identifiers become numbered parameters; templates are stable', () => {
  const t = new Templater()
  assert.equal(t.template('/users/42'), '/users/{id}')
  assert.equal(t.template('/users/43'), '/users/{id}')
  assert.equal(t.template('/users/42/orders/7'), '/users/{id}/orders/{id2}')
  assert.equal(t.template('/files/3f2504e0-4f89-11d3-9a0c-0305e82c3301'), '/files/{uuid}')
  assert.equal(t.template('/api/v1/users/me'), '/api/v1/users/me')
  assert.equal(t.template('/'), '/')
  assert.equal(t.template('/users/'), '/users/')
  // A template run through again gives itself.
  assert.equal(t.template('/users/{id}/orders/{id2}'), '/users/{id}/orders/{id2}')
})

test('cardinality guard: a segment with too many literal values collapses; the trie stays bounded', () => {
  const collapsed: string[] = []
  const t = new Templater({ maxLiterals: 20, maxNodes: 500, maxDepth: 8 })
  t.onCollapse = (p) => collapsed.push(p)
  for (let i = 0; i < 20; i++)
    assert.equal(
      t.template(`/tags/word${String.fromCharCode(97 + i)}x`),
      `/tags/word${String.fromCharCode(97 + i)}x`,
    )
  assert.equal(t.template('/tags/another'), '/tags/{param}')
  assert.deepEqual(collapsed, ['/tags'])
  assert.equal(t.template('/tags/worda x'.replace(' ', '')), '/tags/{param}', 'learned literals fold too')
  // 10,000 random paths of random words: templates and nodes stay bounded.
  const templates = new Set<string>()
  let seed = 7
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed
  }
  const word = () =>
    Array.from({ length: 3 + (rnd() % 8) }, () => String.fromCharCode(97 + (rnd() % 26))).join('')
  for (let i = 0; i < 10_000; i++) {
    const depth = 1 + (rnd() % 12)
    templates.add(t.template(`/${Array.from({ length: depth }, word).join('/')}`))
  }
  assert.ok(t.size <= 500, `nodes ${t.size}`)
  assert.ok(templates.size <= 500, `templates ${templates.size}`)
  for (const x of templates) assert.ok(x.split('/').length <= 10, x)
})

test('a collapse learned elsewhere applies here', () => {
  const a = new Templater({ maxLiterals: 3 })
  const b = new Templater({ maxLiterals: 3 })
  for (const w of ['a', 'b', 'c', 'd']) a.template(`/docs/${w}/view`)
  assert.deepEqual(a.collapsedPrefixes(), ['/docs'])
  assert.equal(b.template('/docs/a/view'), '/docs/a/view')
  for (const p of a.collapsedPrefixes()) b.applyCollapse(p)
  assert.equal(b.template('/docs/a/view'), '/docs/{param}/view')
})

test('sketches: HyperLogLog within its error bound; latency quantiles within ±5%', () => {
  const r = new Uint8Array(HLL_M)
  for (let i = 0; i < 10; i++) hllAdd(r, `user-${i}`)
  assert.equal(hllCount(r), 10)
  for (let i = 10; i < 5000; i++) hllAdd(r, `user-${i}`)
  const est = hllCount(r)
  assert.ok(Math.abs(est - 5000) / 5000 < 0.2, `estimate ${est}`)
  const h = new Map<number, number>()
  for (let i = 1; i <= 1000; i++) {
    const b = latencyBucket(i)
    h.set(b, (h.get(b) ?? 0) + 1)
  }
  const p50 = quantile(h, 0.5) as number
  const p99 = quantile(h, 0.99) as number
  assert.ok(Math.abs(p50 - 500) / 500 < 0.05, `p50 ${p50}`)
  assert.ok(Math.abs(p99 - 990) / 990 < 0.05, `p99 ${p99}`)
  assert.equal(quantile(new Map(), 0.5), undefined)
})
