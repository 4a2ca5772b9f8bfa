/**
 * The Lua scripts of the Redis store. Each multi-step operation is one script: Redis runs a script
 * atomically, and ioredis sends it as EVALSHA (falling back to EVAL after a restart emptied the
 * script cache). Every script touches one key, passed in KEYS (never spliced into the source), so
 * they run unchanged on Redis Cluster. Numbers going back into Redis are formatted with
 * `string.format('%.0f')`: Lua's default number formatting keeps 14 digits only.
 *
 * Time comes from the Redis server (`TIME`), so that gateways with skewed clocks agree.
 * `redis.replicate_commands()` (a no-op since Redis 5) lets a script write after reading the clock.
 */

/** Score offset of set members without a TTL: past any real expiry, still exact in a double. */
export const NO_TTL_SCORE = 1e15

const NOW_MS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`

const REPLICATE = 'if redis.replicate_commands then redis.replicate_commands() end'

/** Fixed-window increment. ARGV: by, windowMs. Returns {value, ttlMs}. */
export const INCR = `
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {v, ttl}
`

/** Counter read. Returns {value as string, ttlMs} or {'0', 0}. */
export const COUNT = `
local v = redis.call('GET', KEYS[1])
if not v then return {'0', 0} end
return {v, redis.call('PTTL', KEYS[1])}
`

/**
 * Set add (a sorted set scored by expiry in ms; no TTL: NO_TTL_SCORE + now). ARGV: member,
 * ttlMs (0 = none), maxMembers. Drops expired members, then the soonest-expiring ones beyond
 * maxMembers; the key expires with its last member. Returns 1 when the member is new.
 */
export const SET_ADD = `
${REPLICATE}
local key = KEYS[1]
local ttl = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
${NOW_MS}
redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%.0f', now))
local score
if ttl > 0 then score = now + ttl else score = ${NO_TTL_SCORE} + now end
local added = redis.call('ZADD', key, string.format('%.0f', score), ARGV[1])
local n = redis.call('ZCARD', key)
if n > max then redis.call('ZREMRANGEBYRANK', key, 0, n - max - 1) end
local top = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
local last = tonumber(top[2])
if last >= ${NO_TTL_SCORE} then
  redis.call('PERSIST', key)
else
  redis.call('PEXPIRE', key, string.format('%.0f', math.max(1, last - now)))
end
return added
`

/** Set membership. ARGV: member. Returns 1 when present and not expired. */
export const SET_HAS = `
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not s then return 0 end
${NOW_MS}
if tonumber(s) > now then return 1 end
return 0
`

/** Set remove. ARGV: member. Returns 1 when the member was present and not expired. */
export const SET_REMOVE = `
${REPLICATE}
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not s then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
${NOW_MS}
if tonumber(s) > now then return 1 end
return 0
`

/** Live members. ARGV: limit (> 0). */
export const SET_MEMBERS = `
${NOW_MS}
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. string.format('%.0f', now), '+inf', 'LIMIT', 0, ARGV[1])
`

/** Live member count. */
export const SET_SIZE = `
${NOW_MS}
return redis.call('ZCOUNT', KEYS[1], '(' .. string.format('%.0f', now), '+inf')
`

/**
 * GCRA, in integer µs (see gcra.ts, which this mirrors). ARGV: intervalUs, burst, cost, nowUs
 * ('' = the server's clock). Returns {allowed 0/1, retryAfterMs, remaining, resetMs}.
 */
export const GCRA = `
${REPLICATE}
local key = KEYS[1]
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now
if ARGV[4] ~= '' then
  now = tonumber(ARGV[4])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local stored = redis.call('GET', key)
local tat = now
if stored then tat = math.max(tonumber(stored), now) end
local span = interval * burst
local newTat = tat + interval * cost
local allowAt = newTat - span
if allowAt > now then
  local remaining = math.floor((now - (tat - span)) / interval)
  if remaining < 0 then remaining = 0 end
  return {0, math.ceil((allowAt - now) / 1000), remaining, math.ceil((tat - now) / 1000)}
end
if cost > 0 then
  local ttl = math.max(1, math.ceil((newTat - now) / 1000))
  redis.call('SET', key, string.format('%.0f', newTat), 'PX', string.format('%.0f', ttl))
end
return {1, 0, math.floor((now - allowAt) / interval), math.ceil((newTat - now) / 1000)}
`

/** name → script, for `defineCommand` (one key each). */
export const SCRIPTS = {
  pcIncr: INCR,
  pcCount: COUNT,
  pcSetAdd: SET_ADD,
  pcSetHas: SET_HAS,
  pcSetRemove: SET_REMOVE,
  pcSetMembers: SET_MEMBERS,
  pcSetSize: SET_SIZE,
  pcGcra: GCRA,
} as const

/** The typed methods `defineCommand` adds to a client. Arguments are strings (sent as-is). */
export interface ScriptCommands {
  pcIncr(key: string, by: string, windowMs: string): Promise<[number, number]>
  pcCount(key: string): Promise<[string, number]>
  pcSetAdd(key: string, member: string, ttlMs: string, maxMembers: string): Promise<number>
  pcSetHas(key: string, member: string): Promise<number>
  pcSetRemove(key: string, member: string): Promise<number>
  pcSetMembers(key: string, limit: string): Promise<string[]>
  pcSetSize(key: string): Promise<number>
  pcGcra(
    key: string,
    intervalUs: string,
    burst: string,
    cost: string,
    nowUs: string,
  ): Promise<[number, number, number, number]>
}
