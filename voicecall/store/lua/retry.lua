-- retry later: an attempt failed in a way that may succeed later; the due set brings it back.
own_keys({}, {})
local job = load_job()
if not job then return {'absent', '', ''} end
if job.state ~= 'sending' then return {'noop', job.state, ''} end
job.error = P.error
job.lease = nil
move(job, 'retrying', P.note)
redis.call('ZADD', K.due, P.next_at, job.id)
index(job)
return {'retrying', 'retrying', save(job)}
