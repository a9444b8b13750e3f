-- poll pending: a status poll learned nothing final; count it and plan the next one.
local job = load_job()
if not job then return {'absent', '', ''} end
if job.state ~= 'submitted' then return {'noop', job.state, ''} end
-- Sent again after its reply was lost: the poll is counted once.
local planned = redis.call('ZSCORE', KEYS[3], job.id)
if planned and tonumber(planned) == tonumber(P.next_at) then return {'planned', job.state, ''} end
job.polls = (job.polls or 0) + 1
redis.call('ZADD', KEYS[3], P.next_at, job.id)
redis.call('SET', KEYS[1], cjson.encode(job))
return {'planned', job.state, ''}
