-- renew: the worker holding a claimed job that waits for a place at eSMS (a bulk call behind
-- BULK_SEND_CONCURRENCY) keeps its claim: its lease runs P.lease_s from now. Only that
-- claim's own worker and attempt may renew it: a job re-driven and claimed again meanwhile
-- (by any worker) is 'lost' to the waiting one, which then makes no call.
own_keys({}, {})
local job = load_job()
if not job then return {'absent', '', ''} end
if not holds_claim(job) then return {'lost', job.state, ''} end
job.lease['until'] = NOW + P.lease_s
redis.call('SET', K.job, cjson.encode(job), 'KEEPTTL')
return {'renewed', job.state, tostring(job.lease['until'])}
