// Bench scenarios. A scenario names the proxies it runs, the request the load generator sends, and how it
// changes the base Portcullis config (e.g. adding a policy to the route). Add new scenarios to SCENARIOS.
import type { BenchRequest } from './loadgen.js'

export const PROXY_KINDS = ['direct', 'bare-node', 'fastify', 'nginx', 'portcullis'] as const
export type ProxyKind = (typeof PROXY_KINDS)[number]

/** The subset of the Portcullis config the bench writes; scenarios may add any further keys. */
export interface PortcullisBenchConfig {
  listeners: { name: string; host: string; port: number }[]
  admin: { host: string; port: number }
  upstreams: Record<string, { targets: { url: string }[] }>
  routes: { name: string; match: { pathPrefix: string }; upstream: string; [key: string]: unknown }[]
  accessLog: { destination: string }
  [key: string]: unknown
}

export interface Scenario {
  name: string
  proxies: readonly ProxyKind[]
  request: BenchRequest
  /** returns the config to run Portcullis with for this scenario (the base is a fresh object, free to mutate) */
  portcullisConfig?: (base: PortcullisBenchConfig) => PortcullisBenchConfig
}

export interface PortcullisPorts {
  listenerPort: number
  adminPort: number
  upstreamOrigin: string
  accessLogPath: string
}

export function basePortcullisConfig(p: PortcullisPorts): PortcullisBenchConfig {
  return {
    listeners: [{ name: 'public', host: '127.0.0.1', port: p.listenerPort }],
    admin: { host: '127.0.0.1', port: p.adminPort },
    upstreams: { bench: { targets: [{ url: p.upstreamOrigin }] } },
    routes: [{ name: 'plain', match: { pathPrefix: '/' }, upstream: 'bench' }],
    accessLog: { destination: p.accessLogPath },
  }
}

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'plain',
    proxies: PROXY_KINDS,
    request: { method: 'GET', path: '/api/orders/42', headers: { accept: 'application/json' } },
  },
]
