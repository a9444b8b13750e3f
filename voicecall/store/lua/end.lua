-- end a job without a result: reject, fail, expire or cancel (P.to), from P.allowed states.
-- KEYS[7]: the dead letters the job joins when P.dead (else the job key).
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
redis.call('ZREM', KEYS[5], job.id)
local raw = finish(job, P.to, P.note)
if P.dead then redis.call('ZADD', KEYS[7], NOW, job.id) end
return {'ended', job.state, raw}
