// The queue's atomic steps, as Lua. Keys (all under `<REDIS_PREFIX>jobs:`):
//   stream:db, stream:any   streams of job ids waiting or being run (entries are XDEL'd once finished, so
//                           XLEN is the live depth and no MAXLEN trimming can drop a pending entry)
//   job:<id>                the job's record (hash); given a TTL (the retention) once it is finished
//   idem:<key>              idempotency key -> job id; expires with the job's record
//   delayed                 zset of job ids by the time (Redis clock, ms) they may run again
//   failed                  zset of failed job ids by failure time, kept for inspection, trimmed by retention
//   completed_total         counter
//   finished                zset of finished jobs the outbox waits for (enqueued `tracked`), by finish time: a
//                           marker that outlives the record's retention, removed by the outbox's reconciler
//                           once it has deleted the job's row (and trimmed after a long maximum age)
// Scripts build key names from the prefix they are given, so they need a standalone Redis (or one shard).
import { LuaScript } from "./script.ts";

const PRELUDE = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- A job reached its final state: its record (and idempotency key) expire after the retention; if the outbox
-- waits for it, a finished marker stays until the outbox's reconciler has seen it.
local function expire_job(base, jk, jid, ttl, now)
  redis.call('PEXPIRE', jk, ttl)
  local f = redis.call('HMGET', jk, 'idem', 'ob')
  if f[1] and f[1] ~= '' then redis.call('PEXPIRE', base .. 'idem:' .. f[1], ttl) end
  if f[2] == '1' then redis.call('ZADD', base .. 'finished', now, jid) end
end

-- The outbox waits for an existing job: mark it so, and leave its finished marker now if it has finished already.
local function track(base, jk, jid, now)
  if redis.call('EXISTS', jk) == 0 then return end
  redis.call('HSET', jk, 'ob', '1')
  local st = redis.call('HGET', jk, 'status')
  if st == 'completed' or st == 'failed' then redis.call('ZADD', base .. 'finished', 'NX', now, jid) end
end

-- True when this consumer still holds the delivery: the entry is pending for it and the job's delivery
-- number is still the one it started (the same consumer may have taken the same entry over again since).
local function owned(sk, group, consumer, eid, jk, dlv)
  if redis.call('HGET', jk, 'dlv') ~= dlv then return false end
  local p = redis.pcall('XPENDING', sk, group, eid, eid, 1, consumer)
  return type(p) == 'table' and p.err == nil and #p == 1
end

-- A command on the group that fails because the group is missing (first use, or Redis lost its data)
-- creates the group and runs once more, so a script never stops half-way on NOGROUP.
local function on_group(sk, group, ...)
  local res = redis.pcall(...)
  if type(res) == 'table' and res.err then
    if not string.find(res.err, 'NOGROUP') then return redis.call(...) end
    redis.pcall('XGROUP', 'CREATE', sk, group, '0', 'MKSTREAM')
    res = redis.call(...)
  end
  return res
end

local LOST = 'the worker running this job stopped answering (no acknowledgement within the visibility timeout)'

-- Marks a delivered entry's job as running and appends what the worker needs to out; drops stale entries.
-- claimed: the entry was taken over from another worker; if that worker had started it, the lost run counts
-- as a failed attempt (so a job that kills its worker does not circulate for ever).
local function start_one(base, group, sname, sk, eid, jid, claimed, now, failttl, out)
  local jk = jid and (base .. 'job:' .. jid)
  local h = {}
  if jk then h = redis.call('HMGET', jk, 'status', 'entry', 'type', 'payload', 'retry_count', 'max_retries') end
  if (not h[1]) or h[2] ~= eid or h[1] == 'completed' or h[1] == 'failed' then
    redis.call('XACK', sk, group, eid)
    redis.call('XDEL', sk, eid)
    return
  end
  local retry = tonumber(h[5]) or 0
  local maxr = tonumber(h[6]) or 0
  if claimed and h[1] == 'running' then
    retry = retry + 1
    if retry > maxr then
      redis.call('XACK', sk, group, eid)
      redis.call('XDEL', sk, eid)
      redis.call('HSET', jk, 'status', 'failed', 'completed_at', now, 'error_message', LOST, 'entry', '')
      redis.call('ZADD', base .. 'failed', now, jid)
      expire_job(base, jk, jid, failttl, now)
      return
    end
    redis.call('HSET', jk, 'retry_count', retry, 'error_message', LOST)
  end
  redis.call('HSET', jk, 'status', 'running', 'started_at', now)
  local dlv = redis.call('HINCRBY', jk, 'dlv', 1)
  out[#out + 1] = { sname, eid, jid, h[3], h[4], retry, maxr, tostring(dlv) }
end
`;

/** ARGV: base, now, n, then per job: id, type, payload, max_retries, idempotency key or "", stream, delay ms, tracked ("1" or ""). */
export const ENQUEUE = new LuaScript(`${PRELUDE}
local base, now, n = ARGV[1], ARGV[2], tonumber(ARGV[3])
local out = {}
local rnow = nil
for i = 0, n - 1 do
  local o = 4 + i * 8
  local id, jtype, payload, maxr, idem, sname, delay, tracked = ARGV[o], ARGV[o + 1], ARGV[o + 2], ARGV[o + 3], ARGV[o + 4], ARGV[o + 5], tonumber(ARGV[o + 6]), ARGV[o + 7] == '1'
  local found = nil
  if tracked and redis.call('ZSCORE', base .. 'finished', id) then
    -- Relayed again after it finished (its record may have expired since): the same job, not a new run.
    found = id
  elseif idem ~= '' then
    found = redis.call('GET', base .. 'idem:' .. idem)
    if found and tracked then track(base, base .. 'job:' .. found, found, now) end
  end
  if found then
    out[#out + 1] = found
  else
    local jk = base .. 'job:' .. id
    if redis.call('EXISTS', jk) == 1 then
      -- An explicit id that is already known: the same job, enqueued again.
      if tracked then track(base, jk, id, now) end
      if idem ~= '' then
        local ttl = redis.call('PTTL', jk)
        if ttl > 0 then redis.call('SET', base .. 'idem:' .. idem, id, 'PX', ttl) else redis.call('SET', base .. 'idem:' .. idem, id) end
      end
    else
      redis.call('HSET', jk, 'id', id, 'type', jtype, 'payload', payload, 'status', 'pending', 'created_at', now,
        'retry_count', 0, 'max_retries', maxr, 'idem', idem, 'stream', sname, 'entry', '', 'ob', tracked and '1' or '')
      if idem ~= '' then redis.call('SET', base .. 'idem:' .. idem, id) end
      if delay > 0 then
        if not rnow then rnow = now_ms() end
        redis.call('ZADD', base .. 'delayed', rnow + delay, id)
      else
        local e = redis.call('XADD', base .. 'stream:' .. sname, '*', 'j', id)
        redis.call('HSET', jk, 'entry', e)
      end
    end
    out[#out + 1] = id
  end
end
return out
`);

/** Reads up to `count` new entries (streams in the order given) and starts them. ARGV: base, group, consumer, now, failed ttl, count, streams… */
export const FETCH = new LuaScript(`${PRELUDE}
local base, group, consumer, now, failttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local want = tonumber(ARGV[6])
local out = {}
for i = 7, #ARGV do
  if want <= 0 then break end
  local sname = ARGV[i]
  local sk = base .. 'stream:' .. sname
  local res = on_group(sk, group, 'XREADGROUP', 'GROUP', group, consumer, 'COUNT', want, 'STREAMS', sk, '>')
  if res then
    for _, e in ipairs(res[1][2]) do
      want = want - 1
      local f = e[2]
      start_one(base, group, sname, sk, e[1], f and f[2], false, now, failttl, out)
    end
  end
end
return out
`);

/** Starts entries already delivered to this consumer (by a blocking XREADGROUP). ARGV: base, group, now, failed ttl, then (stream, entry id, job id)… */
export const START = new LuaScript(`${PRELUDE}
local base, group, now, failttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local out = {}
for i = 5, #ARGV, 3 do
  local sname = ARGV[i]
  local jid = ARGV[i + 2]
  if jid == '' then jid = nil end
  start_one(base, group, sname, base .. 'stream:' .. sname, ARGV[i + 1], jid, false, now, failttl, out)
end
return out
`);

/**
 * Takes over entries idle longer than the visibility timeout (their worker died or stalled) and starts them.
 * ARGV: base, group, consumer, now, failed ttl, min idle ms, count, then (stream, cursor)… Returns {cursors, rows}.
 */
export const RECLAIM = new LuaScript(`${PRELUDE}
local base, group, consumer, now, failttl, minidle = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local want = tonumber(ARGV[7])
local out = {}
local cursors = {}
for i = 8, #ARGV, 2 do
  local sname, cursor = ARGV[i], ARGV[i + 1]
  if want > 0 then
    local sk = base .. 'stream:' .. sname
    local res = on_group(sk, group, 'XAUTOCLAIM', sk, group, consumer, minidle, cursor, 'COUNT', want)
    cursors[#cursors + 1] = res[1]
    for _, e in ipairs(res[2]) do
      if e then
        want = want - 1
        local f = e[2]
        start_one(base, group, sname, sk, e[1], f and f[2], true, now, failttl, out)
      end
    end
  else
    cursors[#cursors + 1] = cursor
  end
end
return { cursors, out }
`);

/**
 * Resets the idle time of deliveries this consumer still holds. ARGV: base, group, consumer, then
 * (stream, entry id, job id, delivery number)…; returns the 1-based positions of those it no longer holds.
 */
export const EXTEND = new LuaScript(`${PRELUDE}
local base, group, consumer = ARGV[1], ARGV[2], ARGV[3]
local lost = {}
local n = 0
for i = 4, #ARGV, 4 do
  n = n + 1
  local sk = base .. 'stream:' .. ARGV[i]
  local eid = ARGV[i + 1]
  if owned(sk, group, consumer, eid, base .. 'job:' .. ARGV[i + 2], ARGV[i + 3]) then
    redis.call('XCLAIM', sk, group, consumer, 0, eid, 'JUSTID')
  else
    lost[#lost + 1] = n
  end
end
return lost
`);

/**
 * Records outcomes, only for deliveries this consumer still owns (a worker that lost its hold changes nothing).
 * ARGV: base, group, consumer, now, completed ttl, failed ttl, then per item: stream, entry id, job id,
 * delivery number, outcome (ok | retry | fail), retry_count, delay ms, error. Returns 1 (recorded) or 0 (stale) per item.
 */
export const FINISH = new LuaScript(`${PRELUDE}
local base, group, consumer, now, cttl, fttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local res = {}
local rnow = nil
for i = 7, #ARGV, 8 do
  local sname, eid, jid, dlv, outcome, retry, delay, err = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7]
  local sk = base .. 'stream:' .. sname
  local jk = base .. 'job:' .. jid
  if not owned(sk, group, consumer, eid, jk, dlv) then
    res[#res + 1] = 0
  else
    redis.call('XACK', sk, group, eid)
    redis.call('XDEL', sk, eid)
    if outcome == 'ok' then
      redis.call('HSET', jk, 'status', 'completed', 'completed_at', now, 'error_message', '', 'entry', '')
      expire_job(base, jk, jid, cttl, now)
      redis.call('INCR', base .. 'completed_total')
      res[#res + 1] = 1
    elseif outcome == 'retry' then
      if not rnow then rnow = now_ms() end
      redis.call('HSET', jk, 'status', 'retrying', 'retry_count', retry, 'error_message', err, 'entry', '')
      redis.call('ZADD', base .. 'delayed', rnow + tonumber(delay), jid)
      res[#res + 1] = 1
    else
      redis.call('HSET', jk, 'status', 'failed', 'completed_at', now, 'retry_count', retry, 'error_message', err, 'entry', '')
      redis.call('ZADD', base .. 'failed', now, jid)
      expire_job(base, jk, jid, fttl, now)
      res[#res + 1] = 1
    end
  end
end
return res
`);

/** Hands held deliveries back to the stream at once (shutdown). ARGV: base, group, consumer, then (stream, entry id, job id, delivery number)… */
export const RELEASE = new LuaScript(`${PRELUDE}
local base, group, consumer = ARGV[1], ARGV[2], ARGV[3]
local n = 0
for i = 4, #ARGV, 4 do
  local sname, eid, jid, dlv = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local sk = base .. 'stream:' .. sname
  local jk = base .. 'job:' .. jid
  if owned(sk, group, consumer, eid, jk, dlv) then
    redis.call('XACK', sk, group, eid)
    redis.call('XDEL', sk, eid)
    local st = redis.call('HGET', jk, 'status')
    if st and st ~= 'completed' and st ~= 'failed' then
      local e = redis.call('XADD', sk, '*', 'j', jid)
      redis.call('HSET', jk, 'status', 'pending', 'entry', e)
      n = n + 1
    end
  end
end
return n
`);

/** Moves due delayed jobs back to their stream. ARGV: base, limit. Returns ms until the next is due, 0 for "more now", -1 for none. */
export const PROMOTE = new LuaScript(`${PRELUDE}
local base, limit = ARGV[1], tonumber(ARGV[2])
local rnow = now_ms()
local ids = redis.call('ZRANGEBYSCORE', base .. 'delayed', '-inf', rnow, 'LIMIT', 0, limit)
for _, id in ipairs(ids) do
  redis.call('ZREM', base .. 'delayed', id)
  local jk = base .. 'job:' .. id
  local sname = redis.call('HGET', jk, 'stream')
  if sname then
    local e = redis.call('XADD', base .. 'stream:' .. sname, '*', 'j', id)
    redis.call('HSET', jk, 'entry', e)
  end
end
if #ids >= limit then return 0 end
local first = redis.call('ZRANGE', base .. 'delayed', 0, 0, 'WITHSCORES')
if first[2] then return math.max(1, tonumber(first[2]) - rnow) end
return -1
`);

/**
 * Removes a consumer from the group only if nothing is pending for it and it has been idle at least min idle
 * ms, checked and done in one step: XGROUP DELCONSUMER discards the consumer's pending entries, so a consumer
 * that took an entry between a separate check and the delete would lose it.
 * ARGV: stream key, group, consumer, min idle ms. Returns 1 when removed, 0 otherwise.
 */
export const DELETE_IDLE_CONSUMER = new LuaScript(`
local sk, group, name, minidle = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local p = redis.pcall('XPENDING', sk, group, '-', '+', 1, name)
if type(p) ~= 'table' or p.err or #p > 0 then return 0 end
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', sk, group)) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if f['name'] == name then
    if tonumber(f['idle']) < minidle then return 0 end
    redis.call('XGROUP', 'DELCONSUMER', sk, group, name)
    return 1
  end
end
return 0
`);

/**
 * Counts jobs by type, read when asked (the enqueue path keeps no counter): up to `bound` entries of each stream
 * (status running or not), of the delayed set and of the failed set, oldest first. ARGV: base, bound, streams…
 * Returns {complete (1 or 0), then per type: type, waiting, delayed, running, failed}.
 */
export const COUNT_BY_TYPE = new LuaScript(`
local base, bound = ARGV[1], tonumber(ARGV[2])
local complete = 1
local rows, order = {}, {}
-- col: 1 waiting, 2 delayed, 3 running, 4 failed. A stream entry whose job has finished or vanished is stale.
local function add(jid, col, inStream)
  local f = redis.call('HMGET', base .. 'job:' .. jid, 'type', 'status')
  if not f[1] then return end
  if inStream then
    if f[2] == 'completed' or f[2] == 'failed' then return end
    if f[2] == 'running' then col = 3 end
  end
  local r = rows[f[1]]
  if not r then
    r = { 0, 0, 0, 0 }
    rows[f[1]] = r
    order[#order + 1] = f[1]
  end
  r[col] = r[col] + 1
end
for i = 3, #ARGV do
  local entries = redis.call('XRANGE', base .. 'stream:' .. ARGV[i], '-', '+', 'COUNT', bound + 1)
  if #entries > bound then complete = 0 end
  for k = 1, math.min(#entries, bound) do
    local f = entries[k][2]
    if f and f[2] then add(f[2], 1, true) end
  end
end
for col, set in pairs({ [2] = 'delayed', [4] = 'failed' }) do
  local ids = redis.call('ZRANGE', base .. set, 0, bound)
  if #ids > bound then complete = 0 end
  for k = 1, math.min(#ids, bound) do add(ids[k], col, false) end
end
local out = { complete }
for _, t in ipairs(order) do
  local r = rows[t]
  out[#out + 1] = t
  for c = 1, 4 do out[#out + 1] = r[c] end
end
return out
`);
