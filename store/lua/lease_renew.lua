#!lua
-- lease_renew.lua extends a grant that is still the caller's.
-- KEYS[1] the grant hash; ARGV[1] holder, ARGV[2] token, ARGV[3] TTL (ms)
-- Returns 1 when renewed, 0 when the grant is gone or another's.
local cur = redis.call('HMGET', KEYS[1], 'holder', 'token')
if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] then
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
