-- end a job without a result: reject, fail, expire or cancel (P.to), from P.allowed states.
-- Own keys: dead_letters (those the job joins, when it joins any), activity.
own_keys({}, {'dead_letters', 'activity'})
local job = load_job()
if not job then return {'absent', '', ''} end
if is_final(job.state) then return {'noop', job.state, ''} end
local allowed = false
for _, s in ipairs(P.allowed) do
  if s == job.state then allowed = true end
end
if allowed and P.unattempted and (job.attempts or 0) > 0 then allowed = false end
if not allowed then return {'noop', job.state, ''} end
if P.error then job.error = P.error end
if P.reason then job.reason = P.reason end
redis.call('ZREM', K.schedule, job.id)
local raw = finish(job, P.to, P.note)
if K.dead_letters then redis.call('ZADD', K.dead_letters, NOW, job.id) end
return {'ended', job.state, raw}
