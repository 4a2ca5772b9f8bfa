import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'

const ROOT = new URL('../../../', import.meta.url).pathname

test('the committed dashboard bundle is what scripts/build-dashboard.mjs makes from src/dashboard/client', async () => {
  const { bundleDashboard, GENERATED } = (await import(`${ROOT}scripts/build-dashboard.mjs`)) as {
    bundleDashboard(): Promise<string>
    GENERATED: string
  }
  const fresh = await bundleDashboard()
  const committed = readFileSync(GENERATED, 'utf8')
  assert.ok(
    fresh === committed,
    'src/dashboard/assets.generated.ts is stale: run `npm run dashboard:build` and commit it',
  )
  // No external resource and no inline-handler patterns in what the page loads.
  assert.doesNotMatch(
    committed,
    /https?:\/\/(?!www\.w3\.org\/)[a-z0-9.-]+\.[a-z]{2,}\/[^"'\s]*\.(?:js|css|woff2?)/i,
  )
})
