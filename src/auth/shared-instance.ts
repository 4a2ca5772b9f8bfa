/**
 * One built authentication instance per config object, shared by the routes that hold it: a
 * global policy entry reaches every route as the same (frozen) config object, so its routes share
 * one cache, one single-flight map and one connection pool. Each route gets its own handle; the
 * instance is closed when the last handle is.
 */
import type { Principal, RequestContext } from '../gateway/pipeline/context.js'
import type { PolicyInstance } from '../gateway/pipeline/policy.js'

/** What an authentication policy builds once per config. */
export interface BuiltAuth {
  authenticate(ctx: RequestContext): Principal | undefined | Promise<Principal>
  challenge: string
  stripRequestHeaders: readonly string[] | undefined
  onRequest(ctx: RequestContext): void | Promise<void>
  close(): Promise<void>
}

export type SharedAuthInstances = WeakMap<object, { inst: BuiltAuth; refs: number }>

/** A route's handle on the instance for `config`, building it on first use. */
export function acquireAuthInstance(
  shared: SharedAuthInstances,
  config: object,
  build: () => BuiltAuth,
): PolicyInstance {
  let entry = shared.get(config)
  if (entry === undefined) {
    entry = { inst: build(), refs: 0 }
    shared.set(config, entry)
  }
  entry.refs++
  const held = entry
  const inst = held.inst
  let released = false
  return {
    authenticate: inst.authenticate,
    challenge: inst.challenge,
    ...(inst.stripRequestHeaders ? { stripRequestHeaders: inst.stripRequestHeaders } : {}),
    onRequest: inst.onRequest,
    async close() {
      if (released) return
      released = true
      held.refs--
      if (held.refs === 0) {
        if (shared.get(config) === held) shared.delete(config)
        await inst.close()
      }
    },
  }
}
