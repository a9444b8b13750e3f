-- recover worker: Dramatiq's own maintenance (dispatch.lua) for one dead worker: its fetched
-- but unacked messages go back on their queues (voicecall.store.workers). Dramatiq does this
-- only after a 60 s heartbeat timeout and a 1-in-1,000 chance per command; voicecall's
-- workers beat every second. ARGV[1]: the worker's id. Returns how many messages moved.
local K = {
  workers = KEYS[1],     -- voicecall's worker liveness
  heartbeats = KEYS[2],  -- Dramatiq's heartbeats
  queues = {},           -- then, per queue: the worker's acks of it, its list, its bodies
}
for i = 3, #KEYS, 3 do
  K.queues[#K.queues + 1] = {acks = KEYS[i], list = KEYS[i + 1], bodies = KEYS[i + 2]}
end
local moved = 0
for _, queue in ipairs(K.queues) do
  local ids = redis.call('SMEMBERS', queue.acks)
  for _, id in ipairs(ids) do
    if redis.call('HEXISTS', queue.bodies, id) == 1 then
      redis.call('RPUSH', queue.list, id)
      moved = moved + 1
    end
  end
  redis.call('DEL', queue.acks)
end
redis.call('ZREM', K.workers, ARGV[1])
redis.call('ZREM', K.heartbeats, ARGV[1])
return moved
