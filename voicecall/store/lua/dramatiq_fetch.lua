-- Dramatiq's "fetch" (dramatiq/brokers/redis/dispatch.lua) in a few commands however many
-- messages it takes: one LPOP with a count (Redis 6.2+) and one SADD to the worker's acks,
-- where Dramatiq's loop pops and adds one message at a time, and the worker's heartbeat at
-- most once a second (ARGV[4] = 1) rather than on every fetch: an idle consumer polls many
-- times a second, and Dramatiq counts a worker dead only after a minute without one. Same
-- keys, same result: the bodies of up to ARGV[3] messages, in queue order.
-- ARGV: now (ms), the worker's id, how many messages at most, whether to beat.
local K = {
  heartbeats = KEYS[1],  -- Dramatiq's heartbeats
  list = KEYS[2],        -- the queue's list
  bodies = KEYS[3],      -- its bodies
  acks = KEYS[4],        -- this worker's acks of the queue
}
if ARGV[4] == '1' then redis.call('ZADD', K.heartbeats, ARGV[1], ARGV[2]) end
local ids = redis.call('LPOP', K.list, tonumber(ARGV[3]))
if not ids then return {} end
redis.call('SADD', K.acks, unpack(ids))
return redis.call('HMGET', K.bodies, unpack(ids))
