-- purge: a final job's retention is over: the job and every index entry leave together.
-- KEYS[7..9]: the dead letters of both send queues and of the webhooks; KEYS[10]: its phone's
-- bucket; KEYS[11]: its campaign's chunk (the job key when it has none); KEYS[12]: its
-- SMSID's bucket of the lookup (the job key when it has none).
local job = load_job()
if job and not is_final(job.state) then return {'noop', job.state, ''} end
if job and job.finished_at + P.retention_s > NOW + 1 then return {'noop', job.state, ''} end
purge(P.id, 7)
if P.phone_entry then redis.call('ZREM', KEYS[10], P.phone_entry) end
redis.call('ZREM', KEYS[11], P.id)
if P.smsid and redis.call('HGET', KEYS[12], P.smsid_field) == P.id then
  redis.call('HDEL', KEYS[12], P.smsid_field)
end
return {'purged', '', ''}
