-- poll pending: a status poll learned nothing final; count it and plan the next one.
own_keys({}, {})
local job = load_job()
if not job then return {'absent', '', ''} end
if job.state ~= 'submitted' then return {'noop', job.state, ''} end
-- Sent again after its reply was lost: the poll is counted once.
local planned = redis.call('ZSCORE', K.due, job.id)
if planned and tonumber(planned) == tonumber(P.next_at) then return {'planned', job.state, ''} end
job.polls = (job.polls or 0) + 1
redis.call('ZADD', K.due, P.next_at, job.id)
redis.call('SET', K.job, cjson.encode(job))
return {'planned', job.state, ''}
