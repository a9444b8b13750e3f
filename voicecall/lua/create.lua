-- create: a new job (intake). KEYS[6]: its idempotency key (the job key when it has none).
-- ARGV[3]: the job as JSON, written as it is. Refuses a known idempotency key (returns the
-- existing id) or an existing id before writing anything; then the record, its index entry,
-- and either its place in the schedule (scheduled) or its send message (queued).
if P.idem then
  local existing = redis.call('GET', KEYS[6])
  if existing then return {'replay', existing, ''} end
end
if not redis.call('SET', KEYS[1], ARGV[3], 'NX') then return {'exists', '', ''} end
local job = {id = P.id, kind = P.kind, state = P.state, created_at = P.created_at,
             limit_key = P.limit_key}
index(job)
if P.idem then  -- it outlives any job: its due time, then the longest life after it, retention
  local ttl = math.ceil(math.max(P.due_at - NOW, 0) + P.after_due_s + P.retention_s)
  redis.call('SET', KEYS[6], P.id, 'EX', ttl)
end
if P.state == 'scheduled' then
  redis.call('ZADD', KEYS[5], P.due_at, P.id)
else
  -- The backstop of every job not yet final: should its message be lost, the sweeper sends
  -- another once this time has passed (the message id is in the job: P.msg).
  redis.call('ZADD', KEYS[3], math.max(P.due_at, NOW) + P.grace_s, P.id)
  enqueue_send(job, P.msg)
end
return {'created', P.state, ''}
