/**
 * `portcullis keys` end to end: the real CLI (bin/portcullis.js, after the build) in child
 * processes, so output streams, files and exit codes are what an operator sees.
 */
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'

const root = new URL('../../../../../', import.meta.url).pathname
const bin = join(root, 'bin/portcullis.js')
const KEY_RE = /pcl_[0-9A-Za-z]{36}/g

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [bin, 'keys', ...args], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { PATH: process.env.PATH },
  })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

function cliAsync(args: string[]): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [bin, 'keys', ...args], { stdio: ['ignore', 'pipe', 'ignore'] })
    let stdout = ''
    c.stdout.on('data', (d: Buffer) => {
      stdout += d.toString()
    })
    c.on('exit', (code) => resolve({ code, stdout }))
  })
}

interface Listed {
  id: string
  owner: string
  name?: string
  scopes: string[]
  status: string
  createdAt: string
  expiresAt?: string
  rotatedFrom?: string
  rotatedTo?: string
}

let dir: string
let store: string
/** Every key the CLI ever printed. */
const printed: string[] = []

function create(args: string[] = []): { key: string; id: string; stderr: string } {
  const r = cli(['create', '--store', store, '--owner', 'svc-a', ...args])
  assert.equal(r.code, 0, r.stderr)
  const keys = r.stdout.match(KEY_RE) ?? []
  assert.equal(keys.length, 1, 'exactly one key on stdout')
  assert.equal(r.stdout, `${keys[0]}\n`, 'stdout is the key alone (scriptable)')
  const key = keys[0] as string
  printed.push(key)
  const id = key.slice(4, 12)
  assert.match(r.stderr, new RegExp(`created key ${id} for owner svc-a`))
  assert.match(r.stderr, /shown only this once/)
  assert.equal(r.stderr.includes(key), false)
  return { key, id, stderr: r.stderr }
}

function list(): Listed[] {
  const r = cli(['list', '--store', store, '--format', 'json'])
  assert.equal(r.code, 0, r.stderr)
  return JSON.parse(r.stdout) as Listed[]
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'pc-keys-cli-'))
  store = join(dir, 'keys.json')
})
after(() => rmSync(dir, { recursive: true, force: true }))

describe('portcullis keys', () => {
  it('create makes the store (0600) and prints the key once; list never shows it', () => {
    const { id } = create(['--scopes', 'read,write,read', '--expires', '30d', '--name', 'billing job'])
    assert.equal(statSync(store).mode & 0o777, 0o600)
    const [k] = list()
    assert.equal(k?.id, id)
    assert.equal(k?.owner, 'svc-a')
    assert.equal(k?.name, 'billing job')
    assert.deepEqual(k?.scopes, ['read', 'write'])
    assert.equal(k?.status, 'active')
    const ttl = Date.parse(k?.expiresAt as string) - Date.parse(k?.createdAt as string)
    assert.equal(ttl, 30 * 86_400_000)
    const text = cli(['list', '--store', store])
    assert.equal(text.code, 0)
    assert.match(text.stdout, /^ID\s+OWNER\s+NAME\s+SCOPES\s+STATUS\s+CREATED\s+EXPIRES\s+LAST USED\n/)
    assert.match(text.stdout, new RegExp(`${id}\\s+svc-a\\s+billing job\\s+read,write\\s+active`))
    for (const out of [text.stdout, JSON.stringify(list())]) {
      assert.equal(out.match(KEY_RE), null, 'no key in list output')
      assert.equal(/hash|salt/.test(out), false, 'no hash or salt in list output')
    }
  })

  it('create --format json gives the key and the public fields, no hash', () => {
    const r = cli(['create', '--store', store, '--owner', 'svc-b', '--format', 'json'])
    assert.equal(r.code, 0, r.stderr)
    const o = JSON.parse(r.stdout) as Record<string, unknown>
    assert.match(o.key as string, /^pcl_[0-9A-Za-z]{36}$/)
    printed.push(o.key as string)
    assert.equal(o.id, (o.key as string).slice(4, 12))
    assert.equal(o.owner, 'svc-b')
    assert.equal(o.expiresAt, undefined)
    assert.equal('hash' in o || 'salt' in o, false)
  })

  it('revoke: revoked in the store, idempotent; unknown or malformed ids exit 2', () => {
    const { id } = create()
    const r = cli(['revoke', '--store', store, id])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, new RegExp(`revoked key ${id}`))
    const k = list().find((x) => x.id === id)
    assert.equal(k?.status, 'revoked')
    assert.equal(cli(['revoke', '--store', store, id]).stdout.includes('already revoked'), true)
    const unknown = cli(['revoke', '--store', store, 'ZZZZ9999'])
    assert.equal(unknown.code, 2)
    assert.match(unknown.stderr, /no key with id ZZZZ9999/)
    assert.equal(cli(['revoke', '--store', store, '../etc']).code, 2)
    assert.equal(cli(['revoke', '--store', store]).code, 2)
  })

  it('rotate: a new key for the same owner and scopes, the old one expires after the overlap', () => {
    const { id } = create(['--scopes', 'read', '--expires', '7d', '--name', 'rotating'])
    const before = Date.now()
    const r = cli(['rotate', '--store', store, id, '--overlap', '1h'])
    assert.equal(r.code, 0, r.stderr)
    const keys = r.stdout.match(KEY_RE) ?? []
    assert.equal(keys.length, 1)
    printed.push(keys[0] as string)
    const newId = (keys[0] as string).slice(4, 12)
    assert.match(r.stderr, new RegExp(`rotated key ${id}: it stays valid until`))
    const all = list()
    const old = all.find((x) => x.id === id)
    const fresh = all.find((x) => x.id === newId)
    assert.equal(old?.rotatedTo, newId)
    assert.equal(old?.status, 'active')
    const until = Date.parse(old?.expiresAt as string)
    assert.ok(until >= before + 3_600_000 - 1000 && until <= Date.now() + 3_600_000)
    assert.equal(fresh?.rotatedFrom, id)
    assert.equal(fresh?.owner, 'svc-a')
    assert.equal(fresh?.name, 'rotating')
    assert.deepEqual(fresh?.scopes, ['read'])
    const lifetime = Date.parse(fresh?.expiresAt as string) - Date.parse(fresh?.createdAt as string)
    assert.equal(lifetime, 7 * 86_400_000, 'the same lifetime as the old key')

    const zero = cli(['rotate', '--store', store, newId, '--overlap', '0', '--format', 'json'])
    assert.equal(zero.code, 0, zero.stderr)
    const o = JSON.parse(zero.stdout) as { key: string }
    printed.push(o.key)
    assert.equal(list().find((x) => x.id === newId)?.status, 'expired')

    cli(['revoke', '--store', store, id])
    const revoked = cli(['rotate', '--store', store, id])
    assert.equal(revoked.code, 2)
    assert.match(revoked.stderr, /is revoked/)
    assert.equal(cli(['rotate', '--store', store, 'ZZZZ9999']).code, 2)
  })

  it('usage errors and missing or broken stores exit 2, and a broken store is not overwritten', () => {
    const missing = join(dir, 'missing.json')
    const cases: string[][] = [
      [],
      ['frobnicate'],
      ['create', '--store', store],
      ['create', '--owner', 'x'],
      ['create', '--store', store, '--owner', 'has space'],
      ['create', '--store', store, '--owner', 'x', '--expires', 'soon'],
      ['create', '--store', store, '--owner', 'x', '--expires', '0'],
      ['create', '--store', store, '--owner', 'x', '--scopes', 'a"b'],
      ['create', '--store', store, '--owner', 'x', '--format', 'yaml'],
      ['create', '--store', store, '--owner', 'x', '--bogus'],
      ['create', '--store', join(dir, 'no-such-dir', 'k.json'), '--owner', 'x'],
      ['list'],
      ['list', '--store', missing],
      ['revoke', '--store', missing, 'AbCd0123'],
      ['rotate', '--store', missing, 'AbCd0123'],
      ['rotate', '--store', store, 'AbCd0123', '--overlap', '-1s'],
    ]
    for (const args of cases) {
      const r = cli(args)
      assert.equal(r.code, 2, `${args.join(' ')} → ${r.code}: ${r.stderr}`)
      assert.equal(r.stdout.match(KEY_RE), null)
    }
    assert.equal(cli(['--help']).code, 0)
    const broken = join(dir, 'broken.json')
    writeFileSync(broken, '{"version":1,')
    const r = cli(['create', '--store', broken, '--owner', 'x'])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /not valid JSON/)
    assert.equal(readFileSync(broken, 'utf8'), '{"version":1,')
    assert.equal(cli(['list', '--store', broken]).code, 2)
  })

  it('concurrent creates are serialized by the lock: none is lost', async () => {
    const before = list().length
    const results = await Promise.all(
      Array.from({ length: 8 }, () => cliAsync(['create', '--store', store, '--owner', 'svc-c'])),
    )
    for (const r of results) {
      assert.equal(r.code, 0)
      printed.push(...(r.stdout.match(KEY_RE) ?? []))
    }
    assert.equal(list().length, before + 8)
  })

  it('no file the CLI wrote contains any key it printed', () => {
    assert.ok(printed.length >= 14)
    const files = readdirSync(dir)
    assert.deepEqual(
      files.filter((f) => !f.endsWith('.json')),
      [],
      'no temp or lock files left',
    )
    for (const f of files) {
      const text = readFileSync(join(dir, f), 'utf8')
      for (const k of printed) {
        assert.equal(text.includes(k), false, `${f} contains a key`)
        assert.equal(text.includes(k.slice(12, 34)), false, `${f} contains a key's secret part`)
      }
    }
  })
})
