-- create: a new job (intake). Own keys: phone_bucket (its phone's bucket of the phone index),
-- and when it has them: idempotency (its idempotency key), campaign_chunk (its campaign's chunk
-- of the campaign index). ARGV[3]: the job as JSON, written as it is. Refuses a known
-- idempotency key (returns the existing id) or an existing id before writing anything; then
-- the record, its index entries, its campaign's counters, and either its place in the
-- schedule (scheduled) or its send message (queued).
own_keys({'phone_bucket'}, {'idempotency', 'campaign_chunk'})
if K.idempotency then
  local existing = redis.call('GET', K.idempotency)
  if existing then return {'replay', existing, ''} end
end
if not redis.call('SET', K.job, ARGV[3], 'NX') then return {'exists', '', ''} end
local job = {id = P.id, kind = P.kind, state = P.state, created_at = P.created_at,
             limit_key = P.limit_key, cid = P.cid}
index(job)
redis.call('ZADD', K.phone_bucket, 0, P.phone_entry)
if P.cid then
  redis.call('ZADD', K.campaign_chunk, P.seq, P.id)
  campaign_add(job, 'total', 1)
  campaign_add(job, P.state, 1)
end
-- The idempotency key outlives any job: its due time, then the longest life after it, retention.
if K.idempotency then
  local ttl = math.ceil(math.max(P.due_at - NOW, 0) + P.after_due_s + P.retention_s)
  redis.call('SET', K.idempotency, P.id, 'EX', ttl)
end
if P.state == 'scheduled' then
  redis.call('ZADD', K.schedule, P.due_at, P.id)
else
  -- The backstop of every job not yet final: should its message be lost, the sweeper sends
  -- another once this time has passed (the message id is in the job: P.msg).
  redis.call('ZADD', K.due, math.max(P.due_at, NOW) + P.grace_s, P.id)
  enqueue_send(job, P.msg)
end
return {'created', P.state, ''}
