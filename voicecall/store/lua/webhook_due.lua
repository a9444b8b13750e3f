-- webhook due: a final job's webhook delivery (or its retry) is due: send its message.
local job = load_job()
local state = job and job.webhook and job.webhook.state
if not job or not job.webhook_url or state == 'delivered' or state == 'gave_up' then
  redis.call('ZREM', KEYS[4], P.id)
  return {'absent', '', ''}
end
redis.call('ZADD', KEYS[4], NOW + P.webhook_redrive_s, job.id)
enqueue(C.queue_webhooks, job)
return {'sent', job.state, ''}
