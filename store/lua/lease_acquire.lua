#!lua
-- lease_acquire.lua grants a lease (store/redis_lease.go).
-- KEYS[1] the grant hash (holder, token), expiring with the grant
-- KEYS[2] the fencing token counter, which never expires
-- ARGV[1] holder, ARGV[2] TTL in milliseconds
-- Returns {1, holder, token, ttl} when granted (a new holder gets the next
-- token; the same holder renews and keeps its token), or {0, holder,
-- token, pttl} with the current holder's grant and time left.
local cur = redis.call('HMGET', KEYS[1], 'holder', 'token')
if cur[1] and cur[1] ~= ARGV[1] then
  return {0, cur[1], tonumber(cur[2]), redis.call('PTTL', KEYS[1])}
end
local token
if cur[1] then
  token = tonumber(cur[2])
else
  token = redis.call('INCR', KEYS[2])
  redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'token', token)
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, ARGV[1], token, tonumber(ARGV[2])}
