/**
 * The SSRF corpus (issue 19): URL forms aimed at loopback, private, link-local, CGNAT, metadata
 * and other special addresses must all be refused; legitimate public URLs must all pass. Names
 * resolve through a test DNS server on 127.0.0.1 (test/helpers/dns-server.ts), never real DNS.
 * The expected reason of every entry is written down with it (ground truth before the code ran).
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { HostResolver } from '../src/ssrf/resolver.js'
import { UrlGuard, type UrlReason } from '../src/ssrf/url-guard.js'
import { CidrSet } from '../src/util/cidr.js'
import { type DnsAnswer, startDnsServer, type TestDnsServer } from './helpers/dns-server.js'

/** The test zone: what each name resolves to. */
const ZONE: Record<string, DnsAnswer> = {
  // private / special answers
  'internal-api.example.com': { a: ['10.0.0.5'] },
  'loopback.example.net': { a: ['127.0.0.1'] },
  'meta.example.org': { a: ['169.254.169.254'] },
  'v6loop.example.com': { aaaa: ['::1'] },
  'mixed.example.com': { a: ['93.184.216.34', '10.1.1.1'] },
  'mixed6.example.com': { a: ['93.184.216.34'], aaaa: ['fd00::1'] },
  'ula.example.com': { aaaa: ['fd12:3456::1'] },
  'cgnat.example.net': { a: ['100.64.0.1'] },
  'mapped.example.com': { aaaa: ['::ffff:127.0.0.1'] },
  'nat64.example.com': { aaaa: ['64:ff9b::a00:1'] },
  '10.0.0.1.nip.io': { a: ['10.0.0.1'] },
  'localtest.me': { a: ['127.0.0.1'] },
  '127.0.0.1.sslip.io': { a: ['127.0.0.1'] },
  'linklocal.example.com': { a: ['169.254.1.1'] },
  'zero.example.com': { a: ['0.0.0.0'] },
  'azure-wire.example.com': { a: ['168.63.129.16'] },
  'ec2v6.example.com': { aaaa: ['fd00:ec2::254'] },
  '6to4.example.com': { aaaa: ['2002:7f00:1::1'] },
  'teredo.example.com': { aaaa: ['2001:0:4136:e378:8000:63bf:3fff:fdd2'] },
  'xn--bcher-intern-dlb.example.com': { a: ['192.168.7.7'] },
  'servfail.example.com': 'servfail',
  'multicast.example.com': { a: ['239.1.2.3'] },
  // public answers
  'example.com': { a: ['93.184.216.34'], aaaa: ['2606:2800:220:1:248:1893:25c8:1946'] },
  'www.example.com': { a: ['93.184.216.34'] },
  'images.example-cdn.com': { a: ['151.101.1.69'] },
  'static.example.org': { a: ['104.16.132.229'] },
  'cdn.example.net': { a: ['104.16.133.229'] },
  'sub.domain.example.co.uk': { aaaa: ['2a00:1450:4001:82b::200e'] },
  'dual.example.com': { a: ['140.82.112.3'], aaaa: ['2606:4700::6810:84e5'] },
  'xn--bcher-kva.example': { a: ['185.199.108.153'] },
  'a-b.example.com': { a: ['13.107.42.14'] },
  '123.example.com': { a: ['52.84.150.11'] },
  'xn--80ak6aa92e.com': { a: ['95.213.11.180'] },
  'api.github-like.example': { a: ['20.201.28.151'] },
  'my.cdn.example.com': { a: ['199.232.40.193'] },
}

/** Aimed at internal addresses; the reason each must be refused for. */
const HOSTILE: [string, UrlReason][] = [
  // loopback, in every IPv4 notation WHATWG accepts
  ['http://127.0.0.1/', 'loopback'],
  ['http://127.0.0.1:8080/admin', 'loopback'],
  ['http://127.1/', 'loopback'],
  ['http://127.0.1/', 'loopback'],
  ['http://2130706433/', 'loopback'],
  ['http://0x7f000001/', 'loopback'],
  ['http://0x7f.0x0.0x0.0x1/', 'loopback'],
  ['http://0177.0.0.1/', 'loopback'],
  ['http://017700000001/', 'loopback'],
  ['http://127.000.000.001/', 'loopback'],
  ['http://0/', 'unspecified'],
  ['http://0.0.0.0/', 'unspecified'],
  ['http://127.0.0.1./', 'loopback'],
  ['http://127.255.255.254/', 'loopback'],
  ['https://127.0.0.1:443/', 'loopback'],
  ['HTTP://127.0.0.1/', 'loopback'],
  ['http://%31%32%37.0.0.1/', 'ambiguous'],
  ['http://１２７.０.０.１/', 'loopback'],
  ['http://127。0。0。1/', 'ambiguous'],
  ['http://127．0．0．1/', 'ambiguous'],
  ['http://127｡0｡0｡1/', 'ambiguous'],
  ['http://⑫⑦.0.0.1/', 'loopback'],
  ['http://localhost/', 'single-label'],
  ['http://localhost./', 'single-label'],
  ['http://LOCALHOST:3000/', 'single-label'],
  ['http://app.localhost/', 'internal-name'],
  ['http://localhost.localdomain/', 'internal-name'],
  ['http://ｌｏｃａｌｈｏｓｔ/', 'ambiguous'],
  // IPv6 loopback and IPv4-carrying forms
  ['http://[::1]/', 'loopback'],
  ['http://[0:0:0:0:0:0:0:1]/', 'loopback'],
  ['http://[::ffff:127.0.0.1]/', 'loopback'],
  ['http://[::ffff:7f00:1]/', 'loopback'],
  ['http://[0:0:0:0:0:ffff:127.0.0.1]/', 'loopback'],
  ['http://[::127.0.0.1]/', 'transition'],
  ['http://[64:ff9b::127.0.0.1]/', 'loopback'],
  ['http://[2002:7f00:1::]/', 'loopback'],
  ['http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/', 'transition'],
  ['http://[::]/', 'unspecified'],
  // private, CGNAT, ULA, link-local
  ['http://10.0.0.1/', 'private'],
  ['http://10.255.255.255/', 'private'],
  ['http://172.16.0.1/', 'private'],
  ['http://172.31.255.254/', 'private'],
  ['http://192.168.1.1/', 'private'],
  ['http://192.168.0.1:8443/', 'private'],
  ['http://012.0.0.1/', 'private'],
  ['http://0xa.0.0.1/', 'private'],
  ['http://167772161/', 'private'],
  ['http://[::ffff:10.0.0.1]/', 'private'],
  ['http://[::ffff:192.168.0.1]/', 'private'],
  ['http://[64:ff9b::10.0.0.1]/', 'private'],
  ['http://[64:ff9b:1::a00:1]/', 'private'],
  ['http://[fd00::1]/', 'unique-local'],
  ['http://[fc00::1]/', 'unique-local'],
  ['http://[fe80::1]/', 'link-local'],
  ['http://[fec0::1]/', 'site-local'],
  ['http://100.64.0.1/', 'cgnat'],
  ['http://100.127.255.254/', 'cgnat'],
  ['http://169.254.1.1/', 'link-local'],
  // cloud metadata
  ['http://169.254.169.254/latest/meta-data/', 'metadata'],
  ['http://169.254.169.254./latest/meta-data/', 'metadata'],
  ['http://2852039166/', 'metadata'],
  ['http://0xa9fea9fe/', 'metadata'],
  ['http://0251.0376.0251.0376/', 'metadata'],
  ['http://169.254.170.2/v2/credentials', 'metadata'],
  ['http://[fd00:ec2::254]/latest/meta-data/', 'metadata'],
  ['http://[::ffff:169.254.169.254]/', 'metadata'],
  ['http://metadata.google.internal/computeMetadata/v1/', 'internal-name'],
  ['http://metadata/', 'single-label'],
  ['http://168.63.129.16/', 'metadata'],
  ['http://100.100.100.200/latest/meta-data/', 'metadata'],
  ['http://instance-data/latest/', 'single-label'],
  // userinfo and parser confusion
  ['http://example.com@127.0.0.1/', 'userinfo'],
  ['http://user:pass@10.0.0.1/', 'userinfo'],
  ['http://127.0.0.1@example.com/', 'userinfo'],
  ['http://a@b@127.0.0.1/', 'userinfo'],
  ['http://example.com\\@127.0.0.1/', 'ambiguous'],
  ['http://127.0.0.1\\.example.com/', 'ambiguous'],
  ['http:/\\127.0.0.1/', 'ambiguous'],
  ['http:127.0.0.1/', 'ambiguous'],
  ['http:///127.0.0.1/', 'ambiguous'],
  ['http://example.com#@127.0.0.1/', 'ambiguous'],
  ['http://example.com?@127.0.0.1/', 'ambiguous'],
  ['http://1.1.1.1 &@127.0.0.1# @3.3.3.3/', 'ambiguous'],
  [' http://127.0.0.1/', 'ambiguous'],
  ['http://127.0.0.1/ ', 'ambiguous'],
  ['http://127.0.0.1\t/', 'ambiguous'],
  ['http://127.0.0.1\n.example.com/', 'ambiguous'],
  ['http://127.0.0.1\u0000.example.com/', 'ambiguous'],
  // other schemes, relative and scheme-less forms
  ['file:///etc/passwd', 'scheme'],
  ['gopher://127.0.0.1:6379/_SET%20x', 'scheme'],
  ['dict://127.0.0.1:11211/stat', 'scheme'],
  ['ftp://10.0.0.1/', 'scheme'],
  ['ldap://127.0.0.1/', 'scheme'],
  ['jar:http://127.0.0.1!/', 'scheme'],
  ['//127.0.0.1/', 'not-absolute'],
  ['127.0.0.1/admin', 'not-absolute'],
  ['localhost:8080/admin', 'scheme'],
  // multicast, reserved, documentation, benchmarking
  ['http://224.0.0.1/', 'multicast'],
  ['http://239.255.255.250:1900/', 'multicast'],
  ['http://255.255.255.255/', 'reserved'],
  ['http://240.0.0.1/', 'reserved'],
  ['http://192.0.2.1/', 'documentation'],
  ['http://198.18.0.1/', 'benchmarking'],
  ['http://192.0.0.8/', 'reserved'],
  ['http://[ff02::1]/', 'multicast'],
  ['http://[2001:db8::1]/', 'documentation'],
  ['http://[100::1]/', 'reserved'],
  // internal names
  ['http://intranet/', 'single-label'],
  ['http://printer.local/', 'internal-name'],
  ['http://db.svc.cluster.local/', 'internal-name'],
  ['http://kubernetes.default.svc/', 'internal-name'],
  ['http://router.home.arpa/', 'internal-name'],
  ['http://1.0.0.127.in-addr.arpa/', 'internal-name'],
  ['http://vault.corp/', 'internal-name'],
  // names that resolve inside (the test DNS server)
  ['http://internal-api.example.com/', 'private'],
  ['http://INTERNAL-API.EXAMPLE.COM./', 'private'],
  ['http://internal-api.example.com:8443/path', 'private'],
  ['http://loopback.example.net/', 'loopback'],
  ['http://meta.example.org/', 'metadata'],
  ['http://v6loop.example.com/', 'loopback'],
  ['http://mixed.example.com/', 'private'],
  ['http://mixed6.example.com/', 'unique-local'],
  ['http://ula.example.com/', 'unique-local'],
  ['http://cgnat.example.net/', 'cgnat'],
  ['http://mapped.example.com/', 'loopback'],
  ['http://nat64.example.com/', 'private'],
  ['http://10.0.0.1.nip.io/', 'private'],
  ['http://localtest.me/', 'loopback'],
  ['http://127.0.0.1.sslip.io/', 'loopback'],
  ['http://linklocal.example.com/', 'link-local'],
  ['http://zero.example.com/', 'unspecified'],
  ['http://azure-wire.example.com/', 'metadata'],
  ['http://ec2v6.example.com/', 'metadata'],
  ['http://6to4.example.com/', 'loopback'],
  ['http://teredo.example.com/', 'transition'],
  ['http://bücher-intern.example.com/', 'private'],
  ['http://multicast.example.com/', 'multicast'],
  ['http://nxdomain.example.com/', 'unresolvable'],
  ['http://servfail.example.com/', 'dns-error'],
  [`http://127.0.0.1/${'a'.repeat(3000)}`, 'too-long'],
]

/** Legitimate public URLs, resolved by the test DNS server to public addresses. */
const PUBLIC: string[] = [
  'https://example.com/avatar.png',
  'https://images.example-cdn.com/u/42.jpg',
  'http://static.example.org/img/a.gif',
  'https://cdn.example.net:443/x.webp',
  'https://example.com:8443/avatar',
  'https://www.example.com/path/to/img.png?size=64&fmt=png',
  'https://example.com/a%20b.png',
  'https://sub.domain.example.co.uk/img.png',
  'https://dual.example.com/',
  'https://8.8.8.8/',
  'https://1.1.1.1/avatar.png',
  'https://[2606:4700:4700::1111]/',
  'https://[2001:4860:4860::8888]:443/x',
  'https://bücher.example/',
  'https://example.com./avatar.png',
  'HTTPS://EXAMPLE.COM/Avatar.PNG',
  'https://example.com/path#fragment',
  'https://example.com/users/@alice/avatar.png',
  'https://example.com/p?email=a%40b.com',
  'https://example.com/p/?q=x@y',
  'https://a-b.example.com/',
  'https://123.example.com/',
  'https://xn--80ak6aa92e.com/',
  'https://example.com/very/long/path/?a=1&b=2&c=3',
  'http://93.184.216.34/',
  'https://172.32.0.1/',
  'https://100.128.0.1/',
  'https://169.255.0.1/',
  'https://192.169.0.1/',
  'https://11.0.0.1/',
  'https://[::ffff:8.8.8.8]/',
  'https://[64:ff9b::8.8.8.8]/',
  'https://api.github-like.example/avatar',
  'https://my.cdn.example.com/a.png',
  'https://example.com:443',
]

describe('SSRF corpus', () => {
  let dns: TestDnsServer
  let guard: UrlGuard
  let resolver: HostResolver
  before(async () => {
    dns = await startDnsServer(ZONE)
    resolver = new HostResolver({ servers: [dns.server], timeoutMs: 1000, tries: 1 })
    guard = new UrlGuard({
      schemes: ['http', 'https'],
      allowHosts: [],
      denyHosts: [],
      addresses: {},
      ports: [],
      allowUserinfo: false,
      maxLength: 2048,
      onDnsError: 'refuse',
      resolver,
    })
  })
  after(async () => dns?.close())

  it(`refuses all ${HOSTILE.length} hostile forms, each for its reason`, async () => {
    assert.ok(HOSTILE.length >= 80)
    const accepted: string[] = []
    const wrongReason: string[] = []
    for (const [url, reason] of HOSTILE) {
      const v = await guard.check(url)
      if (v.ok) accepted.push(url)
      else if (v.reason !== reason)
        wrongReason.push(`${JSON.stringify(url)}: ${v.reason}, expected ${reason}`)
    }
    console.log(`hostile: ${HOSTILE.length} forms, ${accepted.length} accepted`)
    assert.deepEqual(accepted, [])
    assert.deepEqual(wrongReason, [])
  })

  it(`lets all ${PUBLIC.length} public URLs through`, async () => {
    assert.ok(PUBLIC.length >= 30)
    const refused: string[] = []
    for (const url of PUBLIC) {
      const v = await guard.check(url)
      if (!v.ok) refused.push(`${url}: ${v.reason}`)
    }
    console.log(`public: ${PUBLIC.length} URLs, ${refused.length} refused`)
    assert.deepEqual(refused, [])
  })

  it('answers cached names synchronously, one query per name and type', async () => {
    const before = resolver.queries
    await guard.check('https://www.example.com/x')
    const v = guard.check('https://www.example.com/y')
    assert.ok(!(v instanceof Promise), 'cached: synchronous')
    assert.deepEqual(v, { ok: true })
    assert.equal(resolver.queries, before, 'www.example.com was resolved by the public test already')
  })

  it('relative references pass only where the field is a reference, and only rooted at /', () => {
    assert.deepEqual(guard.check('/images/me.png', true), { ok: true })
    assert.deepEqual(guard.check('?size=2', true), { ok: true })
    assert.equal((guard.check('//127.0.0.1/x', true) as { ok: boolean }).ok, false)
    assert.equal((guard.check('/images/me.png') as { ok: boolean }).ok, false)
    assert.deepEqual(guard.check(''), { ok: true })
  })

  it('host allow list, ports, extra ranges and DNS failures by config', async () => {
    const g = (o: Partial<ConstructorParameters<typeof UrlGuard>[0]>) =>
      new UrlGuard({
        schemes: ['https'],
        allowHosts: [],
        denyHosts: [],
        addresses: {},
        ports: [],
        allowUserinfo: false,
        maxLength: 2048,
        onDnsError: 'refuse',
        resolver,
        ...o,
      })
    const only = g({ allowHosts: ['*.example-cdn.com', 'example.com'] })
    assert.deepEqual(await only.check('https://images.example-cdn.com/a'), { ok: true })
    assert.deepEqual(await only.check('https://example.com/a'), { ok: true })
    assert.equal(
      ((await only.check('https://www.example.com/a')) as { reason: string }).reason,
      'host-not-allowed',
    )
    assert.equal(((await only.check('http://example.com/a')) as { reason: string }).reason, 'scheme')
    const ports = g({ ports: [443] })
    assert.deepEqual(await ports.check('https://example.com/'), { ok: true })
    assert.equal(((await ports.check('https://example.com:8443/')) as { reason: string }).reason, 'port')
    const exempt = g({
      addresses: { allow: CidrSet.from(['10.0.0.5/32']), deny: CidrSet.from(['8.8.8.0/24']) },
    })
    assert.deepEqual(await exempt.check('https://internal-api.example.com/'), { ok: true })
    assert.equal(((await exempt.check('https://8.8.8.8/')) as { reason: string }).reason, 'denied')
    const denyName = g({ denyHosts: ['*.example.org'] })
    assert.equal(
      ((await denyName.check('https://static.example.org/')) as { reason: string }).reason,
      'denied',
    )
    const lenient = g({ onDnsError: 'allow' })
    assert.deepEqual(await lenient.check('https://servfail.example.com/'), { ok: true })
  })

  it('a silent DNS server is a dns-error within the timeout (fail closed)', async () => {
    const silent = await startDnsServer(() => 'drop')
    try {
      const r = new HostResolver({ servers: [silent.server], timeoutMs: 200, tries: 1 })
      const g = new UrlGuard({
        schemes: ['https'],
        allowHosts: [],
        denyHosts: [],
        addresses: {},
        ports: [],
        allowUserinfo: false,
        maxLength: 2048,
        onDnsError: 'refuse',
        resolver: r,
      })
      const t0 = performance.now()
      const v = await g.check('https://slow.example.com/')
      assert.equal((v as { reason: string }).reason, 'dns-error')
      assert.ok(performance.now() - t0 < 10_000)
    } finally {
      await silent.close()
    }
  })
})
