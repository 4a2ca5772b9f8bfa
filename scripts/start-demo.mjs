#!/usr/bin/env node
// `npm start`: builds if needed, then runs the demo API and the gateway in front of it with
// examples/demo/portcullis.yaml, and prints what to try. `npm run start:jwt` (this script with
// `--jwt`) also runs the demo token issuer and uses the JWT variant, examples/demo/portcullis-jwt.yaml.
// Ctrl-C stops everything.
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'

const root = new URL('..', import.meta.url).pathname
const args = process.argv.slice(2)
const unknown = args.filter((a) => a !== '--jwt')
if (unknown.length > 0) {
  console.error(`unknown argument ${unknown[0]}; usage: node scripts/start-demo.mjs [--jwt]`)
  process.exit(2)
}
const jwt = args.includes('--jwt')
const configName = jwt ? 'examples/demo/portcullis-jwt.yaml' : 'examples/demo/portcullis.yaml'

const tsc = spawnSync(
  process.execPath,
  [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.json')],
  { stdio: 'inherit' },
)
if (tsc.status !== 0) {
  console.error('build failed')
  process.exit(tsc.status ?? 1)
}

const { startDemoApi, demoCredentials } = await import(join(root, 'dist/examples/demo/api.js'))
const { startGateway } = await import(join(root, 'dist/src/gateway/serve.js'))
const { startIssuer, DEMO_CLIENT } = await import(join(root, 'examples/token-issuer/issuer.mjs'))

const fail = (what, err) => {
  const hint =
    err.code === 'EADDRINUSE'
      ? ` (is another copy running? ports 8080, 8081${jwt ? ', 8082' : ''} and 9901 must be free)`
      : ''
  console.error(`cannot start the ${what}: ${err.message}${hint}`)
  process.exit(2)
}
const api = await startDemoApi({ host: '127.0.0.1', port: 8081 }).catch((err) => fail('demo API', err))
// The issuer starts before the gateway, so that jwt-auth finds its discovery document at once.
const issuer = jwt
  ? await startIssuer({
      port: 8082,
      log: (line) => process.stderr.write(`issuer: ${line}\n`),
    }).catch(async (err) => {
      await api.close()
      fail('token issuer', err)
    })
  : undefined
const gw = await startGateway(join(root, configName)).catch(async (err) => {
  await issuer?.close()
  await api.close()
  fail('gateway', err)
})
const url = gw.listeners[0].url
const [user, password] = Object.entries(demoCredentials)[0]
const login = `curl -s -X POST ${url}/api/v2/login -H 'content-type: application/json' -d '{"username":"${user}","password":"${password}"}'`
const tryLines = jwt
  ? `  curl -i ${url}/api/v1/users/1                          # 401: this route needs a token
  TOKEN=$(node examples/token-issuer/issuer.mjs mint --sub alice)   # or with curl: see the README
  curl -i ${url}/api/v1/users/1 -H "Authorization: Bearer $TOKEN"   # 200`
  : `  ${login}
  curl -i ${url}/api/v2/accounts/2 -H "Authorization: Bearer <alice's token>"   # 404: bob's account (BOLA closed)
  curl -i ${url}/api/v1/users/1                          # 404: not in the API's contract
  (the README's tour has the full walk-through)`
process.stderr.write(`
Portcullis is running.
  gateway:   ${url}         (config: ${configName})
  admin:     ${gw.admin?.url}  (/healthz /readyz /metrics)
  demo API:  ${api.url}   (deliberately vulnerable, see docs/demo.md)
${issuer ? `  issuer:    ${issuer.url}   (demo tokens: client ${DEMO_CLIENT.id} / ${DEMO_CLIENT.secret})\n` : ''}
Try:
  curl -i ${url}/healthz
  curl -i --path-as-is '${url}/api/v2/../../admin'      # rejected: path hygiene, never reaches the API
${tryLines}

Access log lines (JSON) follow. Ctrl-C stops.
`)
let stopping = false
const stop = async () => {
  if (stopping) return
  stopping = true
  await gw.close()
  await issuer?.close()
  await api.close()
  process.exit(0)
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
process.on('SIGHUP', () => void gw.reload())
