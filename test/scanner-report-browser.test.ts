/**
 * The HTML report in headless Chromium (playwright-core, /usr/bin/chromium): the findings show,
 * a hostile response's `<script>` never runs and `</textarea>` breaks nothing, proof is
 * collapsible, a screenshot is a PNG. Also parses the JUnit report with Chromium's XML parser.
 * Skips (saying why) when playwright-core or Chromium is missing: `npm run test:deps` installs them.
 */
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { renderReport } from '../src/scanner/report/index.js'
import { sampleReport } from './helpers/scan-report.js'

// Used inside Chromium (page.evaluate); the project's lib has no DOM types.
interface XmlNode {
  textContent: string | null
  getAttribute(name: string): string | null
}
declare const DOMParser: new () => {
  parseFromString(text: string, type: string): { getElementsByTagName(name: string): ArrayLike<XmlNode> }
}

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

type Browser = import('playwright-core').Browser
let browser: Browser | undefined
let why = ''
const dir = mkdtempSync(join(tmpdir(), 'pcl-report-'))

before(async () => {
  if (!existsSync(CHROMIUM)) {
    why = `no Chromium at ${CHROMIUM}`
    return
  }
  let pw: typeof import('playwright-core')
  try {
    pw = await import('playwright-core')
  } catch {
    why = 'playwright-core is not installed'
    return
  }
  browser = await pw.chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
})

after(async () => {
  await browser?.close()
  rmSync(dir, { recursive: true, force: true })
})

test('html: opens in Chromium, shows the findings, runs no script, screenshot is a PNG', async (t) => {
  if (!browser) return t.skip(why)
  const html = renderReport(sampleReport(), 'html', { color: false })
  // Nothing loads from the network and nothing is a script.
  assert.doesNotMatch(html, /<script/i)
  assert.doesNotMatch(html, /\bsrc=["']?https?:/i)
  assert.doesNotMatch(html, /<link\b/i)
  const file = join(dir, 'report.html')
  writeFileSync(file, html)
  const page = await browser.newPage()
  const requests: string[] = []
  page.on('request', (r) => requests.push(r.url()))
  const consoleErrors: string[] = []
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text())
  })
  await page.goto(`file://${file}`)
  const titles = await page.locator('section.finding .title').allTextContents()
  assert.deepEqual(titles, [
    "Bob reads alice's order",
    'Stack trace in a 500 <b>answer</b>',
    'Missing X-Content-Type-Options',
  ])
  for (const title of titles) assert.ok(await page.getByText(title, { exact: true }).isVisible(), title)
  // The hostile body is shown as text, inside the proof, and no script of it ran.
  assert.equal(await page.evaluate(() => (globalThis as { __pwned?: unknown }).__pwned), undefined)
  assert.equal(await page.locator('script').count(), 0)
  assert.equal(await page.locator('img').count(), 0, 'the hostile <img onerror> is text, not an element')
  assert.equal(await page.locator('textarea').count(), 0)
  const proof = page.locator('section.finding').nth(1).locator('details').first()
  const response = proof.locator('pre.response')
  assert.equal(await response.isVisible(), false, 'proof is collapsed at first')
  await proof.locator('summary').click()
  assert.equal(await response.isVisible(), true, 'and opens on click')
  assert.match(
    (await response.textContent()) ?? '',
    /<script>window\.__pwned = 1<\/script><\/textarea><\/pre><img/,
  )
  assert.match(
    (await page.locator('#summary').textContent()) ?? '',
    /^3 findings \(0 critical, 1 high, 1 medium, 1 low/,
  )
  assert.deepEqual(
    requests.filter((u) => !u.startsWith('file:')),
    [],
    'no network request',
  )
  const png = join(dir, 'report.png')
  await page.screenshot({ path: png, fullPage: true })
  const bytes = readFileSync(png)
  assert.ok(bytes.length > 1000, `screenshot has ${bytes.length} bytes`)
  assert.deepEqual(
    [...bytes.subarray(0, 8)],
    [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
    'PNG signature',
  )
  await page.close()
})

test('html: a report whose every field is hostile still runs nothing', async (t) => {
  if (!browser) return t.skip(why)
  const x = '"><script>window.__pwned=9</script><svg onload="window.__pwned=8">'
  const r = sampleReport()
  r.target = x
  r.spec = x
  r.identities = [x]
  for (const f of r.findings) {
    f.title = x
    f.checkId = x
    if (f.operation) f.operation = { method: x, path: x, operationId: x }
  }
  for (const c of r.checks) Object.assign(c, { description: x, why: x, fix: x, fixExample: x, title: x })
  const page = await browser.newPage()
  await page.setContent(renderReport(r, 'html', { color: false }))
  assert.equal(await page.evaluate(() => (globalThis as { __pwned?: unknown }).__pwned), undefined)
  assert.equal(await page.locator('script, svg').count(), 0)
  assert.equal(await page.locator('section.finding .title').first().textContent(), x)
  await page.close()
})

test('junit: parses with Chromium’s XML parser (DOMParser, application/xml)', async (t) => {
  if (!browser) return t.skip(why)
  const xml = renderReport(sampleReport(), 'junit', { color: false })
  const page = await browser.newPage()
  const parsed = await page.evaluate((text) => {
    const doc = new DOMParser().parseFromString(text, 'application/xml')
    const err = doc.getElementsByTagName('parsererror')[0]
    return {
      error: err ? err.textContent : null,
      suites: Array.from(doc.getElementsByTagName('testsuite')).map((s) => s.getAttribute('name')),
      failures: doc.getElementsByTagName('failure').length,
      firstFailure: doc.getElementsByTagName('failure')[0]?.getAttribute('message') ?? '',
    }
  }, xml)
  assert.equal(parsed.error, null)
  assert.equal(parsed.suites.length, 3)
  assert.equal(parsed.failures, 3)
  assert.match(parsed.firstFailure, /^\[high\] GET \/orders\/\{id\}/)
  // The parser is strict: a broken document is reported.
  const broken = await page.evaluate(
    (text) =>
      new DOMParser().parseFromString(text, 'application/xml').getElementsByTagName('parsererror').length,
    xml.replace('</testsuites>', ''),
  )
  assert.ok(broken > 0)
  await page.close()
})
