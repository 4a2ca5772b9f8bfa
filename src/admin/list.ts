/**
 * What the admin API's list endpoints (bans, revocations) share: field errors, `limit`/`cursor`
 * query parsing, opaque cursors, and turning a store failure into the client's answer.
 */
import { GatewayError } from '../gateway/errors.js'
import { isStoreError } from '../stores/types.js'

export const DEFAULT_PAGE_SIZE = 100
export const MAX_PAGE_SIZE = 1000

/** A 400 naming the field. The field's value is never repeated. */
export function invalid(field: string, detail: string): GatewayError {
  const name = field.length > 64 ? `${field.slice(0, 64)}…` : field
  return new GatewayError('GW_ERR_VALIDATION', {
    detail: `${JSON.stringify(name)}: ${detail}`,
    extensions: { field: name },
  })
}

/** An opaque list cursor: the last id of the page, base64url. */
export function encodeCursor(id: string): string {
  return Buffer.from(id, 'utf8').toString('base64url')
}

/** `?limit=&cursor=` of a list request; anything else, or either given twice, is a 400. */
export function parseListQuery(
  query: URLSearchParams,
  maxCursorLength: number,
): { limit: number; after: string | undefined } {
  const seen = new Set<string>()
  for (const k of query.keys()) {
    if (k !== 'limit' && k !== 'cursor') throw invalid(k, 'unknown query parameter')
    if (seen.has(k)) throw invalid(k, 'given twice')
    seen.add(k)
  }
  let limit = DEFAULT_PAGE_SIZE
  const l = query.get('limit')
  if (l !== null) {
    if (!/^[0-9]{1,5}$/.test(l) || Number(l) < 1 || Number(l) > MAX_PAGE_SIZE) {
      throw invalid('limit', `expected an integer from 1 to ${MAX_PAGE_SIZE}`)
    }
    limit = Number(l)
  }
  const c = query.get('cursor')
  if (c === null) return { limit, after: undefined }
  if (c.length === 0 || c.length > maxCursorLength || !/^[A-Za-z0-9_-]+$/.test(c)) {
    throw invalid('cursor', 'not a cursor returned by this API')
  }
  return { limit, after: Buffer.from(c, 'base64url').toString('utf8') }
}

/** Turns a store failure into the client's answer (503); anything else is passed on. */
export function storeFailure(err: unknown, list: string): unknown {
  if (isStoreError(err)) {
    return new GatewayError('GW_ERR_STATE_UNAVAILABLE', {
      detail: 'the store cannot be reached; try again',
      headers: { 'retry-after': '5' },
      cause: err,
    })
  }
  // A set of a new key into a full map (the store's maxEntries per map).
  if (err instanceof RangeError) {
    return new GatewayError('GW_ERR_STATE_UNAVAILABLE', {
      detail: `the ${list} is full; delete entries or wait for some to expire`,
      cause: err,
    })
  }
  return err
}
