-- purge: a final job's retention is over: the job and every index entry leave together.
-- Own keys: dead_otp, dead_bulk, dead_webhooks (the dead letters of both send queues and of
-- the webhooks), and those the job has, when its record is still there to name them:
-- phone_bucket (its phone's bucket), campaign_chunk (its campaign's chunk), smsid_bucket (its
-- SMSID's bucket of the lookup).
own_keys({'dead_otp', 'dead_bulk', 'dead_webhooks'},
         {'phone_bucket', 'campaign_chunk', 'smsid_bucket'})
local job = load_job()
if job and not is_final(job.state) then return {'noop', job.state, ''} end
if job and job.finished_at + P.retention_s > NOW + 1 then return {'noop', job.state, ''} end
redis.call('DEL', K.job)
for _, index in ipairs({K.state_index, K.due, K.webhooks_due, K.schedule,
                        K.dead_otp, K.dead_bulk, K.dead_webhooks}) do
  redis.call('ZREM', index, P.id)
end
if K.phone_bucket then redis.call('ZREM', K.phone_bucket, P.phone_entry) end
if K.campaign_chunk then redis.call('ZREM', K.campaign_chunk, P.id) end
if K.smsid_bucket and redis.call('HGET', K.smsid_bucket, P.smsid_field) == P.id then
  redis.call('HDEL', K.smsid_bucket, P.smsid_field)
end
return {'purged', '', ''}
