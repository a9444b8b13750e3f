-- reopen: an operator requeues a failed job (a dead letter): failed → queued, with a fresh
-- retry budget, while eSMS still remembers its RequestId (P.max_age_s after the first try).
-- Own key: dead_letters, the send queue's.
own_keys({'dead_letters'}, {})
local job = load_job()
if not job then
  redis.call('ZREM', K.dead_letters, P.id)
  return {'absent', '', ''}
end
if job.state ~= 'failed' then return {'not_failed', job.state, ''} end
if job.first_attempt_at and NOW - job.first_attempt_at > P.max_age_s then
  return {'too_old', job.state, ''}
end
job.reason = nil
job.window_attempts = 0
job.window_started_at = nil
job.finished_at = nil
move(job, 'queued', P.note)
redis.call('ZREM', K.dead_letters, job.id)
redis.call('ZADD', K.due, NOW + P.redrive_s, job.id)
enqueue_send(job)
index(job)
save(job)
return {'reopened', 'queued', ''}
