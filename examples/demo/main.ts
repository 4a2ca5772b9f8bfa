// Runs the deliberately vulnerable demo API on its own:
//   node dist/examples/demo/main.js [--port N] [--host H]
// Defaults: 127.0.0.1:8081. Stops on SIGINT / SIGTERM.

import { demoCredentials, demoOpenApiPath, startDemoApi } from './api.js'

const DEFAULT_PORT = 8081
const usage = 'usage: node dist/examples/demo/main.js [--port N] [--host H]'

function parseArgs(argv: string[]): { host: string; port: number } {
  let host = '127.0.0.1'
  let port = DEFAULT_PORT
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? ''
    const [flag, inline] =
      arg.startsWith('--') && arg.includes('=') ? arg.split(/=(.*)/s, 2) : [arg, undefined]
    const value = () => {
      const v = inline ?? argv[++i]
      if (v === undefined || v === '') fail(`${flag} needs a value`)
      return v
    }
    if (flag === '--port' || flag === '-p') {
      const raw = value()
      const n = Number(raw)
      if (!/^\d+$/.test(raw) || n > 65535) fail(`invalid port: ${raw}`)
      port = n
    } else if (flag === '--host') {
      host = value()
    } else if (flag === '--help' || flag === '-h') {
      console.log(usage)
      process.exit(0)
    } else {
      fail(`unknown argument: ${arg}`)
    }
  }
  return { host, port }
}

function fail(message: string): never {
  console.error(`${message}\n${usage}`)
  process.exit(2)
}

const { host, port } = parseArgs(process.argv.slice(2))
const api = await startDemoApi({ host, port })

console.log(`Portcullis demo API (DELIBERATELY VULNERABLE, local use only) listening on ${api.url}`)
console.log(`  health:  ${api.url}/healthz`)
console.log(`  OpenAPI: ${demoOpenApiPath()}`)
console.log(
  `  logins:  ${Object.entries(demoCredentials)
    .map(([user, password]) => `${user} / ${password}`)
    .join(', ')}`,
)

let stopping = false
function stop(signal: NodeJS.Signals) {
  if (stopping) return
  stopping = true
  console.log(`${signal} received, closing the demo API`)
  api.close().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err)
      process.exit(1)
    },
  )
}
process.once('SIGINT', stop)
process.once('SIGTERM', stop)
