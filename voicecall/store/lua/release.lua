-- release: a scheduled job's time is near (the scheduler's horizon): scheduled → queued, and
-- its send message. The worker holds it until it is due; the due set is the backstop.
own_keys({}, {})
local job = load_job()
if not job then
  redis.call('ZREM', K.schedule, P.id)
  return {'absent', '', ''}
end
if job.state ~= 'scheduled' then
  redis.call('ZREM', K.schedule, job.id)
  return {'noop', job.state, ''}
end
move(job, 'queued', 'released by scheduler')
redis.call('ZREM', K.schedule, job.id)
redis.call('ZADD', K.due, math.max(job.due_at, NOW) + P.grace_s, job.id)
enqueue_send(job)
index(job)
save(job)
return {'released', 'queued', ''}
