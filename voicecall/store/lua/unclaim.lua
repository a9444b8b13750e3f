-- unclaim: the worker holding a claimed job gives it back before calling eSMS (it stops while
-- the call waited for its place at eSMS): back to 'retrying', due now, and the claim's attempt
-- no longer counts, since no call was made. Only that claim's own worker and attempt may.
own_keys({}, {})
local job = load_job()
if not job then return {'absent', '', ''} end
if not holds_claim(job) then return {'lost', job.state, ''} end
job.attempts = job.attempts - 1
job.window_attempts = math.max(0, (job.window_attempts or 1) - 1)
job.lease = nil
move(job, 'retrying', P.note)
redis.call('ZADD', K.due, NOW, job.id)
index(job)
return {'unclaimed', 'retrying', save(job)}
