-- redeliver: an operator requeues a webhook that gave up (a dead letter of the webhooks).
-- KEYS[7]: the webhooks' dead letters.
local job = load_job()
redis.call('ZREM', KEYS[7], P.id)
if not job or not job.webhook_url then return {'absent', '', ''} end
job.webhook = job.webhook or {}
job.webhook.state = 'retry'
redis.call('ZADD', KEYS[4], NOW + P.webhook_redrive_s, job.id)
redis.call('SET', KEYS[1], cjson.encode(job), 'KEEPTTL')
enqueue(C.queue_webhooks, job)
return {'redelivering', job.state, ''}
