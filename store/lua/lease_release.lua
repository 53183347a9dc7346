#!lua
-- lease_release.lua ends a grant that is still the caller's and leaves one
-- wake-up in the hand-over list, which a waiting replica pops (BLPOP) to
-- take over at once. The wake-up expires so a stale one does not linger.
-- KEYS[1] the grant hash, KEYS[2] the hand-over list
-- ARGV[1] holder, ARGV[2] token
-- Returns 1 when released, 0 when the grant was already gone or another's.
local cur = redis.call('HMGET', KEYS[1], 'holder', 'token')
if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] then
  return 0
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[2], 30000)
return 1
