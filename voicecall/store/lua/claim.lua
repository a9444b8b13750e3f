-- claim: the send step's one look at the job before calling eSMS, holds and limits included.
-- Own keys: workers (liveness), global_limit (the global rate window), dead_letters (the send
-- queue's), and when they apply: phone_window (the phone's window, with the phone limit on),
-- acks (this worker's Dramatiq acks of the queue, with P.ack), activity.
-- Returns {verdict, state, detail}: absent | noop | busy (claimed by a live worker) | final
-- (ended here: expired, failed or rejected; detail = the job) | wait (detail = seconds: not
-- due yet, or the global rate) | held (back to scheduled; detail = the job) | claimed (detail =
-- the job, now `sending` with this worker's lease).
-- P.ack: the message being handled; it is acknowledged here, whatever the verdict, as
-- Dramatiq's "ack" would (dispatch.lua: SREM from the acks, then HDEL of its body), and the
-- worker's broker skips its own ack (worker.broker).
own_keys({'workers', 'global_limit', 'dead_letters'}, {'phone_window', 'acks', 'activity'})
if K.acks and redis.call('SREM', K.acks, P.ack) == 1 then
  redis.call('HDEL', QUEUE_KEYS[P.queue].bodies, P.ack)
end
local job = load_job()
if not job then return {'absent', '', ''} end
local state = job.state

local function live_lease()
  if not job.lease then return false end
  if job.lease['until'] <= NOW then return false end
  local beat = redis.call('ZSCORE', K.workers, job.lease.owner)
  return beat ~= false and tonumber(beat) >= NOW * 1000 - P.liveness_ms
end

if state == 'sending' then
  if live_lease() then return {'busy', state, ''} end
elseif state ~= 'queued' and state ~= 'retrying' then
  return {'noop', state, ''}
end

-- An OTP that can no longer arrive in time is not placed.
if job.kind == 'voice_otp' and job.expires_at and NOW > job.expires_at then
  job.reason = 'ttl'
  return {'final', 'expired', finish(job, 'expired', 'OTP past its time to live; not placed')}
end

-- Attempts that keep dying without an answer (a crash, a time limit) are bounded, and no
-- send happens 24 h after the first: eSMS forgets a RequestId then.
if job.first_attempt_at then
  local started = job.window_started_at or job.first_attempt_at
  local window_end = math.min(started + P.retry_window_s, job.first_attempt_at + P.max_window_s)
  if (job.window_attempts or 0) > P.max_retries or NOW > window_end then
    job.reason = 'attempts_exhausted'
    local raw = finish(job, 'failed', (job.window_attempts or 0) .. ' attempts without an answer')
    redis.call('ZADD', K.dead_letters, NOW, job.id)
    return {'final', 'failed', raw}
  end
end

local function hold(until_at, reason, note)
  job.reason = reason
  move(job, 'scheduled', note)
  redis.call('ZREM', K.due, job.id)
  redis.call('ZADD', K.schedule, until_at, job.id)
  index(job)
  return {'held', 'scheduled', save(job)}
end

-- Worker mode: a job released ahead of its time waits in the worker until it is due; the
-- due set brings it back if that worker dies meanwhile.
if state == 'queued' and job.schedule == 'worker' and job.due_at > NOW + P.early_s then
  redis.call('ZADD', K.due, job.due_at + P.grace_s, job.id)
  return {'wait', state, tostring(job.due_at - NOW)}
end

if state ~= 'sending' and job.kind ~= 'voice_otp' and P.quiet_until > 0 then
  return hold(P.quiet_until, 'quiet_hours', 'held back: quiet_hours')
end

-- The global send rate: a sliding one-second window shared by every worker.
if P.global_rate > 0 then
  redis.call('ZREMRANGEBYSCORE', K.global_limit, '-inf', NOW - 1)
  if redis.call('ZCARD', K.global_limit) >= P.global_rate then
    local oldest = redis.call('ZRANGE', K.global_limit, 0, 0, 'WITHSCORES')
    local wait = math.max(0.001, tonumber(oldest[2]) + 1 - NOW)
    redis.call('ZADD', K.due, NOW + wait + P.grace_s, job.id)
    return {'wait', state, tostring(wait)}
  end
end

-- The per-phone limit: a true sliding window, counted once per job (its first attempt).
if P.phone_limit > 0 and (job.attempts or 0) == 0 then
  redis.call('ZREMRANGEBYSCORE', K.phone_window, '-inf', NOW - P.phone_window_s)
  if redis.call('ZCARD', K.phone_window) >= P.phone_limit then
    if job.kind == 'voice_otp' then
      job.reason = 'rate_limited'
      local note = 'over ' .. P.phone_limit .. ' calls per ' .. P.phone_window_s .. ' s to this phone'
      return {'final', 'rejected', finish(job, 'rejected', note)}
    end
    local oldest = redis.call('ZRANGE', K.phone_window, 0, 0, 'WITHSCORES')
    return hold(tonumber(oldest[2]) + P.phone_window_s, 'phone_rate_limit',
                'held back: phone_rate_limit')
  end
  redis.call('ZADD', K.phone_window, NOW, job.id)
  redis.call('EXPIRE', K.phone_window, math.ceil(P.phone_window_s))
end

if P.global_rate > 0 then
  redis.call('ZADD', K.global_limit, NOW, job.id .. ':' .. ((job.attempts or 0) + 1))
  redis.call('EXPIRE', K.global_limit, 2)
end

job.attempts = (job.attempts or 0) + 1
job.window_attempts = (job.window_attempts or 0) + 1
job.first_attempt_at = job.first_attempt_at or NOW
job.window_started_at = job.window_started_at or NOW
job.lease = {owner = P.owner, ['until'] = NOW + P.lease_s}
job.reason = nil
-- No new time in the due set: the one it has (its message's backstop) still comes, and a
-- worker found dead has its claimed jobs re-driven at once (worker.scheduler).
move(job, 'sending', 'attempt ' .. job.attempts)
index(job)
return {'claimed', 'sending', save(job)}
