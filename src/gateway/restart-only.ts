/**
 * Settings bound at start (sockets, stores, sinks, exporters): a reload that changes one of them
 * applies the rest and logs that these take effect on restart (serve.ts).
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { GatewayConfig } from '../config/schema.js'

/** The config file's content hash ('' when unreadable): a reload with the same bytes is skipped. */
/** The config's fingerprint: of `text` when the document was given, else of the file (empty when unreadable). */
export function configHash(file: string, text: string | undefined): string {
  return text !== undefined ? createHash('sha256').update(text).digest('hex') : hashFile(file)
}

export function hashFile(file: string): string {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex')
  } catch {
    return ''
  }
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b)

/** Whether `next` changes a setting that only a restart applies (TLS files excepted: they reload). */
export function restartOnlyChanged(config: GatewayConfig, next: GatewayConfig): boolean {
  return (
    !same(
      next.listeners.map((l) => ({ ...l, tls: undefined })),
      config.listeners.map((l) => ({ ...l, tls: undefined })),
    ) ||
    !same(next.admin, config.admin) ||
    !same(next.accessLog, config.accessLog) ||
    !same(next.stores, config.stores) ||
    !same(next.audit, config.audit) ||
    !same(next.detect, config.detect) ||
    !same(next.inventory, config.inventory) ||
    !same(next.tracing, config.tracing) ||
    // egress: the proxy's listener (enabled, host, port) is bound at start
    !same(
      [next.egress.enabled, next.egress.host, next.egress.port],
      [config.egress.enabled, config.egress.host, config.egress.port],
    )
  )
}
