#!lua flags=no-writes
-- changes.lua reads one kind's change feed (store/redis_changes.go) in one
-- atomic step, so the write number it returns covers exactly the records
-- it returns. lua/commit.lua describes the keys it maintains.
-- KEYS[1] the record hash, KEYS[2] the change index, KEYS[3] the deletion
-- index; ARGV[1] the caller's mark.
-- Returns {seq, 1, HGETALL of the record hash} when the caller must take
-- the whole kind (mark 0, older than the deletions remembered, or ahead of
-- this store's numbering), else {seq, 0, {id, version, data, ...},
-- {deleted id, ...}} with what changed since mark.
local rec, chg, del = KEYS[1], KEYS[2], KEYS[3]
local mark = tonumber(ARGV[1])
local seq = tonumber(redis.call('HGET', rec, '#seq') or '0')
local drop = tonumber(redis.call('HGET', rec, '#drop') or '0')
if mark == 0 or mark < drop or mark > seq then
  return {seq, 1, redis.call('HGETALL', rec)}
end
local changed, deleted = {}, {}
if mark == seq then
  return {seq, 0, changed, deleted}
end
for _, id in ipairs(redis.call('ZRANGE', chg, '(' .. mark, '+inf', 'BYSCORE')) do
  local vd = redis.call('HMGET', rec, 'v:' .. id, 'd:' .. id)
  if vd[1] then
    changed[#changed + 1] = id
    changed[#changed + 1] = vd[1]
    changed[#changed + 1] = vd[2]
  end
end
for _, id in ipairs(redis.call('ZRANGE', del, '(' .. mark, '+inf', 'BYSCORE')) do
  if redis.call('HEXISTS', rec, 'v:' .. id) == 0 then
    deleted[#deleted + 1] = id
  end
end
return {seq, 0, changed, deleted}
