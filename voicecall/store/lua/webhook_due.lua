-- webhook due: a final job's webhook delivery (or its retry) is due: send its message.
own_keys({}, {})
local job = load_job()
local state = job and job.webhook and job.webhook.state
if not job or not job.webhook_url or state == 'delivered' or state == 'gave_up' then
  redis.call('ZREM', K.webhooks_due, P.id)
  return {'absent', '', ''}
end
redis.call('ZADD', K.webhooks_due, NOW + P.webhook_redrive_s, job.id)
enqueue(C.queue_webhooks, job.id)
return {'sent', job.state, ''}
