/**
 * Fetching a spec's remote `$ref` documents, before the (synchronous) load. Only hosts in
 * `allowRemoteHosts`; https only (http to a loopback address, for tests and sidecars); no
 * credentials in URLs; redirects followed by hand, at most 5, each hop checked against the same
 * rules (a redirect off the allowlist fails the load); each document at most `maxFileBytes`
 * (refused while it streams), all of them within `timeoutMs`, at most `maxFiles` documents in all.
 * Every document is fetched once per load (the result is the cache for that load); what is
 * fetched then goes through the same parsing and hostile-content checks as a local file.
 */
import { Agent, request } from 'undici'
import { DEFAULT_SPEC_LIMITS, type DocumentOptions, remoteRefusal, SpecDocuments } from './documents.js'
import { SpecError, specFail } from './errors.js'

export interface RemoteFetchOptions extends DocumentOptions {
  /** Time for all remote documents together, in ms (default 10 s). */
  timeoutMs?: number
}

const MAX_REDIRECTS = 5

/**
 * The remote documents a spec references (URL → text), fetched; hand the result to loadOpenApi
 * or compileApi as `remote`. Resolves an empty map when the spec has no remote `$ref` (nothing is
 * fetched); rejects with SpecError (file = the URL) when a document cannot be fetched.
 *
 * @example
 * const remote = await fetchRemoteRefs('api.yaml', { allowRemoteHosts: ['schemas.example.com'] })
 * const spec = loadOpenApi('api.yaml', { allowRemoteHosts: ['schemas.example.com'], remote })
 */
export async function fetchRemoteRefs(
  file: string,
  options: RemoteFetchOptions = {},
): Promise<Map<string, string>> {
  const remote = new Map<string, string>()
  if ((options.allowRemoteHosts ?? []).length === 0) return remote
  const limits = { ...DEFAULT_SPEC_LIMITS, ...options.limits }
  const allowed = new Set((options.allowRemoteHosts ?? []).map((h) => h.toLowerCase()))
  const deadline = AbortSignal.timeout(options.timeoutMs ?? 10_000)
  let agent: Agent | undefined
  try {
    for (let round = 0; round <= limits.maxFiles; round++) {
      let docs: SpecDocuments
      try {
        docs = new SpecDocuments(file, { ...options, remote })
      } catch (err) {
        if (err instanceof SpecError) return remote // the real load reports it
        throw err
      }
      docs.resolveAllRefs()
      const missing = [...docs.missingRemote].filter((u) => !remote.has(u))
      if (missing.length === 0) return remote
      if (remote.size + missing.length >= limits.maxFiles)
        specFail(file, '', `the spec references more than ${limits.maxFiles} files`)
      agent ??= new Agent({ connect: { timeout: 5000 }, headersTimeout: 5000, bodyTimeout: 5000 })
      const got = await Promise.all(
        missing.map((u) => fetchOne(u, allowed, limits.maxFileBytes, agent as Agent, deadline)),
      )
      for (const [i, u] of missing.entries()) remote.set(u, got[i] as string)
    }
    throw new SpecError([{ file, pointer: '', message: 'remote $refs nest too deeply' }])
  } finally {
    await agent?.close().catch(() => undefined)
  }
}

async function fetchOne(
  url: string,
  allowed: ReadonlySet<string>,
  maxBytes: number,
  agent: Agent,
  signal: AbortSignal,
): Promise<string> {
  let u = new URL(url)
  for (let hop = 0; ; hop++) {
    const refused = remoteRefusal(u, allowed)
    if (refused !== undefined) specFail(url, '', hop === 0 ? refused : `redirected: ${refused}`)
    let res: Awaited<ReturnType<typeof request>>
    try {
      res = await request(u, {
        method: 'GET',
        dispatcher: agent,
        signal,
        headers: { accept: 'application/yaml, application/json;q=0.9, */*;q=0.1' },
      })
    } catch (err) {
      const e = err as Error & { code?: string }
      const why = signal.aborted ? 'timed out' : (e.code ?? e.name)
      specFail(url, '', `cannot fetch the remote document (${why})`)
    }
    if (res.statusCode >= 300 && res.statusCode < 400) {
      await res.body.dump().catch(() => undefined)
      const location = res.headers.location
      if (typeof location !== 'string') specFail(url, '', `HTTP ${res.statusCode} without a Location`)
      if (hop >= MAX_REDIRECTS) specFail(url, '', `more than ${MAX_REDIRECTS} redirects`)
      try {
        u = new URL(location, u)
      } catch {
        specFail(url, '', 'redirected to an invalid URL')
      }
      continue
    }
    if (res.statusCode !== 200) {
      await res.body.dump().catch(() => undefined)
      specFail(url, '', `cannot fetch the remote document (HTTP ${res.statusCode})`)
    }
    const declared = Number(res.headers['content-length'])
    if (Number.isFinite(declared) && declared > maxBytes) {
      discard(res.body)
      specFail(url, '', `document is over the limit of ${maxBytes} bytes`)
    }
    const chunks: Buffer[] = []
    let size = 0
    try {
      for await (const c of res.body) {
        size += (c as Buffer).length
        if (size > maxBytes) {
          discard(res.body)
          specFail(url, '', `document is over the limit of ${maxBytes} bytes`)
        }
        chunks.push(c as Buffer)
      }
    } catch (err) {
      if (err instanceof SpecError) throw err
      specFail(url, '', `cannot fetch the remote document (${signal.aborted ? 'timed out' : 'read error'})`)
    }
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks, size))
    } catch {
      specFail(url, '', 'the remote document is not UTF-8')
    }
  }
}

/** Drops a response body without reading it (its abort error has a listener, so it is not thrown). */
function discard(body: NodeJS.ReadableStream & { destroy(): void }): void {
  body.on('error', () => undefined)
  body.destroy()
}
