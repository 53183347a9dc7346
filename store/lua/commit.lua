#!lua
-- commit.lua applies one state.Tx atomically (store/redis_commit.go builds
-- the call). The "#!lua" line without flags makes Redis treat it as a write
-- script: it refuses it up front under OOM instead of failing half-way.
--
-- KEYS[1]      the event stream
-- KEYS[2]      the fencing token counter of the Tx's fence lease (when
--              there is no fence, any key of the prefix: it is not read)
-- KEYS[3..]    for each Put: the record hash of its kind, then the kind's
--              change index; for each Delete: the record hash, the change
--              index, then the kind's deletion index;
--              for each Append: its series sorted set, then its sequence key;
--              for each Incr: its counter hash;
--              for each Schedule: its due index sorted set
-- ARGV[1]      stream retention (MAXLEN)
-- ARGV[2]      trim operator: "~" (approximate, cheap) or "=" (exact)
-- ARGV[3..8]   number of puts, deletes, appends, incrs, schedules, events
-- ARGV[9]      the fence token, 0 for no fence
-- ARGV[10]     maxdel: the deletions a kind remembers
-- ARGV[11..]   then, in this order:
--                per Put:      id, ifVersion, data
--                per Delete:   id, ifVersion
--                per Append:   entry count n, then n times score, data
--                per Incr:     field, delta
--                per Schedule: member, at (Unix ms), remove (1 or 0)
--                per Event:    type, scope (JSON), data
--
-- A record hash holds "v:<id>" (version) and "d:<id>" (data) per record,
-- and the kind's change feed (store/redis_changes.go): "#seq", the last
-- write number of the kind, and "#drop", the newest deletion forgotten.
-- Every put takes the next number and files its id under it in the change
-- index (zset id -> number); every delete of an existing record takes one
-- too, leaves the change index and files the id in the deletion index,
-- which keeps the newest ARGV "maxdel" at most (trimmed by half, as the
-- memory store does).
-- A series member is "<20-digit sequence>:<data>": unique, and for equal
-- scores Redis orders members bytewise, so the sequence keeps insertion
-- order. Event n of the stream (counting every event ever added) gets the
-- explicit ID "n-0", so positions are dense and trimming is detectable.
-- The fence admits the Tx only while the lease's token counter (INCRed on
-- every change of owner by lua/lease_acquire.lua) still equals its token.
--
-- Returns {0, 0} when the fence refuses the Tx and {0, i} when
-- precondition i (1-based over puts, then deletes) fails; nothing has been
-- written then. Otherwise {1, at, id1, id2, ...}: at is the server clock
-- in Unix microseconds, ids the events' stream IDs.

local stream = KEYS[1]
local maxlen, trim = ARGV[1], ARGV[2]
local np, nd, na, ni, ns, ne =
  tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local fence = tonumber(ARGV[9])
local maxdel = tonumber(ARGV[10])
local first = 11 -- first ARGV of the per-item sections
-- KEYS[pk(i)] is the record hash of the i-th put, KEYS[dk(i)] of the i-th
-- delete (each followed by its change keys).
local function pk(i) return 1 + 2 * i end
local function dk(i) return 3 + 2 * np + 3 * (i - 1) end

local function version_ok(key, id, ifv)
  ifv = tonumber(ifv)
  if ifv == -1 then
    return true
  end
  local cur = tonumber(redis.call('HGET', key, 'v:' .. id) or '0')
  if ifv == 0 then
    return cur == 0
  end
  return cur == ifv
end

-- 1. Every precondition, before anything is written.
if fence ~= 0 and tonumber(redis.call('GET', KEYS[2]) or '0') ~= fence then
  return {0, 0}
end
local a = first
for i = 1, np do
  if not version_ok(KEYS[pk(i)], ARGV[a], ARGV[a + 1]) then
    return {0, i}
  end
  a = a + 3
end
for i = 1, nd do
  if not version_ok(KEYS[dk(i)], ARGV[a], ARGV[a + 1]) then
    return {0, np + i}
  end
  a = a + 2
end

-- 2. Events first: XADD is the write most likely to be refused (a foreign
-- key of the wrong type), and nothing else is written yet if it is.
local t = redis.call('TIME')
local at = t[1] .. string.format('%06d', tonumber(t[2]))
local out = {1, at}
if ne > 0 then
  -- The newest entry carries the last ID: trimming keeps it (MAXLEN >=
  -- 1), and reading it is far cheaper than XINFO STREAM, which also
  -- copies the oldest entry out (docs/performance.md, Ingest).
  local seq = 0
  local newest = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
  if #newest > 0 then
    seq = tonumber(string.match(newest[1][1], '^(%d+)-'))
  elseif redis.call('EXISTS', stream) == 1 then
    local info = redis.call('XINFO', 'STREAM', stream)
    for j = 1, #info, 2 do
      if info[j] == 'last-generated-id' then
        seq = tonumber(string.match(info[j + 1], '^(%d+)-'))
        break
      end
    end
  end
  -- Events are the last ARGV section: 3 values each.
  local e = #ARGV - 3 * ne + 1
  for i = 1, ne do
    seq = seq + 1
    local id = string.format('%d-0', seq)
    redis.call('XADD', stream, 'MAXLEN', trim, maxlen, id,
      'type', ARGV[e], 'scope', ARGV[e + 1], 'data', ARGV[e + 2], 'at', at)
    out[#out + 1] = id
    e = e + 3
  end
end

-- 3. Records, series, counters, due indexes.
a = first
for i = 1, np do
  local key, id = KEYS[pk(i)], ARGV[a]
  redis.call('HSET', key, 'd:' .. id, ARGV[a + 2])
  redis.call('HINCRBY', key, 'v:' .. id, 1)
  redis.call('ZADD', KEYS[pk(i) + 1], redis.call('HINCRBY', key, '#seq', 1), id)
  a = a + 3
end
for i = 1, nd do
  local key, id = KEYS[dk(i)], ARGV[a]
  if redis.call('HDEL', key, 'v:' .. id, 'd:' .. id) > 0 then
    local del = KEYS[dk(i) + 2]
    redis.call('ZREM', KEYS[dk(i) + 1], id)
    redis.call('ZADD', del, redis.call('HINCRBY', key, '#seq', 1), id)
    local n = redis.call('ZCARD', del)
    if n > maxdel then
      local half = math.floor(n / 2)
      local last = redis.call('ZRANGE', del, half - 1, half - 1, 'WITHSCORES')
      redis.call('HSET', key, '#drop', last[2])
      redis.call('ZREMRANGEBYRANK', del, 0, half - 1)
    end
  end
  a = a + 2
end
local k = 3 + 2 * np + 3 * nd
for i = 1, na do
  local zkey, seqkey, n = KEYS[k], KEYS[k + 1], tonumber(ARGV[a])
  a = a + 1
  if n > 0 then
    local last = redis.call('INCRBY', seqkey, n)
    for j = 1, n do
      local member = string.format('%020d', last - n + j) .. ':' .. ARGV[a + 1]
      redis.call('ZADD', zkey, ARGV[a], member)
      a = a + 2
    end
  end
  k = k + 2
end
for i = 1, ni do
  redis.call('HINCRBY', KEYS[k], ARGV[a], ARGV[a + 1])
  k = k + 1
  a = a + 2
end
for i = 1, ns do
  if ARGV[a + 2] == '1' then
    redis.call('ZREM', KEYS[k], ARGV[a])
  else
    redis.call('ZADD', KEYS[k], ARGV[a + 1], ARGV[a])
  end
  k = k + 1
  a = a + 3
end
return out
