-- purge: a final job's retention is over: the job and every index entry leave together.
-- KEYS[6..8]: the dead letters of both send queues and of the webhooks.
local job = load_job()
if job and not is_final(job.state) then return {'noop', job.state, ''} end
if job and job.finished_at + P.retention_s > NOW + 1 then return {'noop', job.state, ''} end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], P.id)
redis.call('ZREM', KEYS[3], P.id)
redis.call('ZREM', KEYS[4], P.id)
redis.call('ZREM', KEYS[5], P.id)
redis.call('ZREM', KEYS[6], P.id)
redis.call('ZREM', KEYS[7], P.id)
redis.call('ZREM', KEYS[8], P.id)
return {'purged', '', ''}
