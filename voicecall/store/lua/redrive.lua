-- redrive: a job's time in the due set has passed and nothing moved it: send the message
-- that moves it on again (send, or poll), or, for a job claimed by a worker that is alive,
-- look again later. A final job's time is the end of its retention: the sweeper purges it
-- (voicecall.job.upkeep.purge). Own key: workers (liveness).
own_keys({'workers'}, {})
local job = load_job()
if not job or is_final(job.state) then return {'final', job and job.state or '', ''} end
local state = job.state
local due = redis.call('ZSCORE', K.due, job.id)
if due and tonumber(due) > NOW and not P.force then  -- another sweeper took it
  return {'noop', state, ''}
end
if state == 'sending' and job.lease then
  local beat = redis.call('ZSCORE', K.workers, job.lease.owner)
  local alive = beat ~= false and tonumber(beat) >= NOW * 1000 - P.liveness_ms
  if alive and job.lease['until'] > NOW then
    redis.call('ZADD', K.due, NOW + P.lease_check_s, job.id)
    return {'leased', state, ''}
  end
end
if state == 'queued' and job.msg then
  -- Its message still exists and other messages wait on its queue: it is waiting its turn.
  -- (Gone, or taken off the queue without the job being claimed: it is lost; send again.)
  local queue = QUEUE_KEYS[send_queue(job)]
  if redis.call('HEXISTS', queue.bodies, job.msg) == 1 and redis.call('LLEN', queue.list) > 0 then
    redis.call('ZADD', K.due, NOW + P.redrive_s, job.id)
    return {'waiting', state, ''}
  end
end
if state == 'queued' or state == 'retrying' or state == 'sending' then
  redis.call('ZADD', K.due, NOW + P.redrive_s, job.id)
  enqueue_send(job)
  redis.call('SET', K.job, cjson.encode(job), 'KEEPTTL')
  return {'redriven', state, ''}
end
if state == 'submitted' then
  redis.call('ZADD', K.due, NOW + P.redrive_s, job.id)
  enqueue(C.queue_status, job.id)
  return {'polled', state, ''}
end
return {'noop', state, ''}
