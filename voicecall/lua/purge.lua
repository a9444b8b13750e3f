-- purge: a final job's retention is over: the job and every index entry leave together.
-- KEYS[6..8]: the dead letters of both send queues and of the webhooks.
local job = load_job()
if job and not is_final(job.state) then return {'noop', job.state, ''} end
if job and job.finished_at + P.retention_s > NOW + 1 then return {'noop', job.state, ''} end
purge(P.id, 6)
return {'purged', '', ''}
