-- record a webhook delivery attempt (P.delivery) and what follows: delivered, retry at
-- P.next_at, or gave_up (the job joins the webhooks' dead letters: own key dead_letters).
own_keys({'dead_letters'}, {})
local job = load_job()
if not job then return {'absent', '', ''} end
job.webhook = job.webhook or {}
job.webhook.deliveries = job.webhook.deliveries or {}
local last = job.webhook.deliveries[#job.webhook.deliveries]
if last and last.at and P.delivery.at and math.abs(last.at - P.delivery.at) < 0.001 then
  return {job.webhook.state, job.state, ''}
end
table.insert(job.webhook.deliveries, P.delivery)
if P.result == 'delivered' then
  redis.call('ZREM', K.webhooks_due, job.id)
elseif P.result == 'retry' then
  redis.call('ZADD', K.webhooks_due, P.next_at, job.id)
else
  redis.call('ZREM', K.webhooks_due, job.id)
  redis.call('ZADD', K.dead_letters, NOW, job.id)
end
job.webhook.state = P.result
redis.call('SET', K.job, cjson.encode(job), 'KEEPTTL')
return {P.result, job.state, ''}
