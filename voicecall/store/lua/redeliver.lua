-- redeliver: an operator requeues a webhook that gave up (a dead letter of the webhooks).
-- Own key: dead_letters, the webhooks'.
own_keys({'dead_letters'}, {})
local job = load_job()
redis.call('ZREM', K.dead_letters, P.id)
if not job or not job.webhook_url then return {'absent', '', ''} end
job.webhook = job.webhook or {}
job.webhook.state = 'retry'
redis.call('ZADD', K.webhooks_due, NOW + P.webhook_redrive_s, job.id)
redis.call('SET', K.job, cjson.encode(job), 'KEEPTTL')
enqueue(C.queue_webhooks, job.id)
return {'redelivering', job.state, ''}
