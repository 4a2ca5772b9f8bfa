/**
 * The Lua scripts of the Redis store. Each multi-step operation is one script: Redis runs a script
 * atomically, and ioredis sends it as EVALSHA (falling back to EVAL after a restart emptied the
 * script cache). Keys are passed in KEYS (never spliced into the source) and the keys of one call
 * share one Cluster slot (one key, a map's hash-tagged keys, or a GCRA batch grouped by slot), so
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
 * GCRA, in integer µs (see gcra.ts, which this mirrors), for a batch of decisions: the decisions
 * a gateway made in one event-loop turn travel in one script call and are applied in order, each
 * exactly as if alone (a key that appears twice sees its first decision's write). KEYS: the n
 * GCRA keys (one Cluster slot: the store batches per slot). ARGV: four per decision, intervalUs,
 * burst, cost, nowUs ('' = the server's clock, read once per batch). Returns 4n integers: per
 * decision allowed 0/1, retryAfterMs, remaining, resetMs.
 */
export const GCRA = `
${REPLICATE}
local out = {}
local serverNow
for i = 1, #KEYS do
  local key = KEYS[i]
  local a = 4 * (i - 1)
  local interval = tonumber(ARGV[a + 1])
  local burst = tonumber(ARGV[a + 2])
  local cost = tonumber(ARGV[a + 3])
  local now
  if ARGV[a + 4] ~= '' then
    now = tonumber(ARGV[a + 4])
  else
    if not serverNow then
      local t = redis.call('TIME')
      serverNow = tonumber(t[1]) * 1000000 + tonumber(t[2])
    end
    now = serverNow
  end
  local stored = redis.call('GET', key)
  local tat = now
  if stored then tat = math.max(tonumber(stored), now) end
  local span = interval * burst
  local newTat = tat + interval * cost
  local allowAt = newTat - span
  local o = 4 * (i - 1)
  if allowAt > now then
    local remaining = math.floor((now - (tat - span)) / interval)
    if remaining < 0 then remaining = 0 end
    out[o + 1] = 0
    out[o + 2] = math.ceil((allowAt - now) / 1000)
    out[o + 3] = remaining
    out[o + 4] = math.ceil((tat - now) / 1000)
  else
    if cost > 0 then
      local ttl = math.max(1, math.ceil((newTat - now) / 1000))
      redis.call('SET', key, string.format('%.0f', newTat), 'PX', string.format('%.0f', ttl))
    end
    out[o + 1] = 1
    out[o + 2] = 0
    out[o + 3] = math.floor((now - allowAt) / interval)
    out[o + 4] = math.ceil((newTat - now) / 1000)
  end
end
return out
`

/*
 * Replicated maps. KEYS[1] is the map's hash (field: escaped key → `<expiresAt ms or 0><tail>`,
 * tail `|<value>` or `%<escaped value>`), KEYS[2] its stream (one entry `k <escaped key>` per set
 * or delete). Both share one hash tag, so every script runs on Cluster.
 */

/** The expiry (ms, 0 = none) at the start of a stored map value. */
const MAP_EXP = `local function expOf(v) return tonumber(string.match(v, '^%d+')) end`

/**
 * Map set. KEYS: data, log, meta (a string: no field of the hash expires before this time, in ms;
 * absent = unknown). ARGV: field, ttlMs (0 = none), tail, maxEntries, logLength. A new field into a
 * full map first drops the expired fields, with one full HSCAN, and only when meta says some may
 * have expired: a full map of live entries refuses in O(1) instead of rescanning on every attempt
 * (and rescans are spaced by at least entries/20 ms). Returns 1, or 0 when full.
 */
export const MAP_SET = `
${REPLICATE}
${MAP_EXP}
local data, log, meta = KEYS[1], KEYS[2], KEYS[3]
local ttl = tonumber(ARGV[2])
local max = tonumber(ARGV[4])
${NOW_MS}
if redis.call('HEXISTS', data, ARGV[1]) == 0 and redis.call('HLEN', data) >= max then
  local floor = tonumber(redis.call('GET', meta) or '0')
  if now < floor then return 0 end
  local nextExp = ${NO_TTL_SCORE}
  local cursor = '0'
  repeat
    local r = redis.call('HSCAN', data, cursor, 'COUNT', 1000)
    cursor = r[1]
    local kv = r[2]
    for i = 1, #kv, 2 do
      local e = expOf(kv[i + 1])
      if e and e > 0 then
        if e <= now then
          redis.call('HDEL', data, kv[i])
        elseif e < nextExp then
          nextExp = e
        end
      end
    end
  until cursor == '0'
  -- Not again before the next expiry, nor within len/20 ms (5 s for 100,000 entries; a scan costs
  -- about 2 µs per entry): a full map with steady expiries cannot keep Redis busy scanning.
  local len = redis.call('HLEN', data)
  redis.call('SET', meta, string.format('%.0f', math.max(nextExp, now + math.ceil(len / 20))))
  if len >= max then return 0 end
end
local exp = 0
if ttl > 0 then
  exp = now + ttl
  local floor = redis.call('GET', meta)
  if floor and exp < tonumber(floor) then redis.call('SET', meta, string.format('%.0f', exp)) end
end
redis.call('HSET', data, ARGV[1], string.format('%.0f', exp) .. ARGV[3])
redis.call('XADD', log, 'MAXLEN', '~', ARGV[5], '*', 'k', ARGV[1])
return 1
`

/** Map get. ARGV: field. Returns the stored value, or nil when absent or expired. */
export const MAP_GET = `
${MAP_EXP}
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return false end
local e = expOf(v)
if e and e > 0 then
  ${NOW_MS}
  if e <= now then return false end
end
return v
`

/** Map delete. ARGV: field, logLength. Returns 1 when the entry existed and had not expired. */
export const MAP_DELETE = `
${REPLICATE}
${MAP_EXP}
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'k', ARGV[1])
local e = expOf(v)
if e and e > 0 then
  ${NOW_MS}
  if e <= now then return 0 end
end
return 1
`

/**
 * The position a snapshot starts from: {id of the stream's last entry, server time in ms}. A map
 * without a stream gets one, holding one marker entry (`i 1`, skipped by MAP_CHANGES), so that a
 * cursor always names an entry that exists: when Redis later loses the stream (restart, FLUSHALL,
 * eviction), that entry is gone and the reader re-snapshots. KEYS[3] holds the map's epoch: a
 * random id (ARGV[2], from the client) set when it is missing, so a Redis flushed or restarted empty,
 * or another Redis altogether, has another epoch; stream ids alone can coincide across servers (they
 * are millisecond timestamps). ARGV: logLength, a fresh epoch. Returns {cursor id, now, epoch}.
 */
export const MAP_HEAD = `
${REPLICATE}
${NOW_MS}
local epoch = redis.call('GET', KEYS[3])
if not epoch then
  epoch = ARGV[2]
  redis.call('SET', KEYS[3], epoch)
end
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
if #last > 0 then return {last[1][1], now, epoch} end
return {redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', 'i', '1'), now, epoch}
`

/**
 * Map changes after a cursor. KEYS[3]: the epoch (see MAP_HEAD). ARGV: cursor (a stream id), limit,
 * the cursor's epoch. The feed continues only while the
 * cursor's own entry is still in the stream; else it was trimmed, or Redis lost or flushed its data
 * and the stream is another one. Returns {0} (reset) or {1, new cursor, now, field1, stored1 or
 * nil, …}: each changed field once, with its current stored value.
 */
export const MAP_CHANGES = `
local data, log = KEYS[1], KEYS[2]
local cursor = ARGV[1]
${NOW_MS}
if redis.call('GET', KEYS[3]) ~= ARGV[3] then return {0} end
if #redis.call('XRANGE', log, cursor, cursor) == 0 then return {0} end
local entries = redis.call('XRANGE', log, '(' .. cursor, '+', 'COUNT', ARGV[2])
if #entries == 0 then return {1, cursor, now} end
local fields, seen = {}, {}
for i = 1, #entries do
  local kv = entries[i][2]
  if kv[1] == 'k' and not seen[kv[2]] then
    seen[kv[2]] = true
    fields[#fields + 1] = kv[2]
  end
end
local out = {1, entries[#entries][1], now}
if #fields == 0 then return out end
local values = redis.call('HMGET', data, unpack(fields))
for i = 1, #fields do
  out[#out + 1] = fields[i]
  out[#out + 1] = values[i]
end
return out
`

/**
 * Drops fields that are (still) expired: the lazy cleanup after a snapshot saw them. ARGV: fields.
 * Not logged (an expiry is not a change). Returns how many went.
 */
export const MAP_PRUNE = `
${REPLICATE}
${MAP_EXP}
${NOW_MS}
local n = 0
for i = 1, #ARGV do
  local v = redis.call('HGET', KEYS[1], ARGV[i])
  if v then
    local e = expOf(v)
    if e and e > 0 and e <= now then
      redis.call('HDEL', KEYS[1], ARGV[i])
      n = n + 1
    end
  end
end
return n
`

/**
 * Numeric hash update. ARGV: ttlMs (0 = leave the TTL), maxFields, then triples of op (`i` add,
 * `x` raise to, `n` lower to), field, integer value. A new field past maxFields is dropped.
 * Returns the number of fields dropped.
 */
export const HASH_UPDATE = `
local key = KEYS[1]
local ttl = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local n = redis.call('HLEN', key)
local dropped = 0
for i = 3, #ARGV, 3 do
  local op = ARGV[i]
  local f = ARGV[i + 1]
  local v = ARGV[i + 2]
  local cur = redis.call('HGET', key, f)
  if not cur and n >= max then
    dropped = dropped + 1
  else
    if not cur then n = n + 1 end
    if op == 'i' then
      redis.call('HINCRBY', key, f, v)
    elseif op == 'x' then
      if not cur or tonumber(cur) < tonumber(v) then redis.call('HSET', key, f, v) end
    else
      if not cur or tonumber(cur) > tonumber(v) then redis.call('HSET', key, f, v) end
    end
  end
end
if ttl > 0 and n > 0 then redis.call('PEXPIRE', key, ttl) end
return dropped
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
  pcHashUpdate: HASH_UPDATE,
} as const

/** name → script of the replicated maps: the map's keys come first (data, log; set: also meta). */
export const MAP_SCRIPTS = {
  pcMapSet: { keys: 3, lua: MAP_SET },
  pcMapGet: { keys: 2, lua: MAP_GET },
  pcMapDelete: { keys: 2, lua: MAP_DELETE },
  pcMapHead: { keys: 3, lua: MAP_HEAD },
  pcMapChanges: { keys: 3, lua: MAP_CHANGES },
  pcMapPrune: { keys: 2, lua: MAP_PRUNE },
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
  /** ttlMs, maxFields, then op, field, value triples (see HASH_UPDATE). */
  pcHashUpdate(key: string, ...args: string[]): Promise<number>
  /** numKeys, then the keys, then four arguments per key (see GCRA). */
  pcGcra(numKeys: number, ...keysThenArgs: string[]): Promise<number[]>
  pcMapSet(
    data: string,
    log: string,
    meta: string,
    field: string,
    ttlMs: string,
    tail: string,
    maxEntries: string,
    logLength: string,
  ): Promise<number>
  pcMapGet(data: string, log: string, field: string): Promise<string | null>
  pcMapDelete(data: string, log: string, field: string, logLength: string): Promise<number>
  pcMapHead(
    data: string,
    log: string,
    epochKey: string,
    logLength: string,
    epoch: string,
  ): Promise<[string, number, string]>
  pcMapChanges(
    data: string,
    log: string,
    epochKey: string,
    cursor: string,
    limit: string,
    epoch: string,
  ): Promise<[0] | [1, string, number, ...(string | null)[]]>
  pcMapPrune(data: string, log: string, ...fields: string[]): Promise<number>
}
