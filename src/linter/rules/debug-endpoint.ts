import { defineRule, perOperation } from './util.js'

const DEBUG =
  /^(debug|_debug|__debug__|actuator|heapdump|threaddump|phpinfo|_profiler|profiler|pprof|jolokia|server-status|server-info|_internal)$/i

export const debugEndpoint = defineRule({
  id: 'debug-endpoint',
  title: 'Debug, diagnostics or internal endpoint in the contract',
  category: 'API8',
  severity: 'high',
  why: 'Paths such as `/debug`, `/actuator/env`, `/heapdump` or `/pprof` expose configuration, secrets in memory and internals. If they are in the contract they are deployed; they belong on an admin listener that is not reachable from the internet.',
  before: `paths:
  /debug/config:
    get:
      responses:
        "200": { description: Configuration }`,
  after: `paths:
  /orders:
    get:
      responses:
        "200": { description: Orders }`,
  check: (ctx) =>
    perOperation(ctx, (o) => {
      const seg = o.op.path.split('/').find((s) => DEBUG.test(s))
      return seg !== undefined
        ? `${o.label} looks like a debug or diagnostics endpoint ("${seg}")`
        : undefined
    }),
})
