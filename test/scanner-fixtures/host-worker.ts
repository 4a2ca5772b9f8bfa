/** The worker side of host.ts: starts one fixture's listener on 127.0.0.1:0 and answers state requests. */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { parentPort, workerData } from 'node:worker_threads'

/** What every fixture module exports. */
export interface FixtureModule {
  createApp(opts: { secure: boolean }): FixtureApp
}

export interface FixtureApp {
  listener(req: IncomingMessage, res: ServerResponse): void
  state(): unknown
  counters(): Record<string, number>
  spec: string
  specExt: 'yaml' | 'json'
  /** The path the API serves its own spec at, if it does. */
  specPath?: string
  authYaml: string
}

const { name, secure } = workerData as { name: string; secure: boolean }
const mod = (await import(`./${name}.js`)) as FixtureModule
const app = mod.createApp({ secure })
const server = createServer(app.listener)
server.keepAliveTimeout = 2000
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
const port = (server.address() as AddressInfo).port
parentPort?.on('message', (m: { type: string; id: number }) => {
  const value =
    m.type === 'state' ? structuredClone(app.state()) : m.type === 'counters' ? app.counters() : null
  parentPort?.postMessage({ type: 'reply', id: m.id, value })
})
parentPort?.postMessage({
  type: 'ready',
  port,
  spec: app.spec,
  specExt: app.specExt,
  ...(app.specPath ? { specPath: app.specPath } : {}),
  authYaml: app.authYaml,
})
