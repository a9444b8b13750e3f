-- postpone: no worker slot was free for a queued job: the due set brings it back at P.at.
own_keys({}, {})
local job = load_job()
if not job then return {'absent', '', ''} end
if job.state ~= 'queued' and job.state ~= 'retrying' then return {'noop', job.state, ''} end
redis.call('ZADD', K.due, P.at, job.id)
return {'postponed', job.state, ''}
