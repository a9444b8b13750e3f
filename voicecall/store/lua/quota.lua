-- quota: take COST calls from one API client's allowance of CALLS per WINDOW, exactly: a
-- sliding-window log (a sorted set of the calls accepted in the last window, scored by when,
-- in ms), so no WINDOW ms ever hold more than CALLS accepted calls, whatever their timing (a
-- GCRA allows about 2 CALLS - 1 across an edge). Not a job state change, so not a lifecycle
-- operation. ARGV: now (ms), cost, calls, window (ms).
-- Returns {1, 0} when taken, else {0, ms until COST calls fit}: a refused request takes
-- nothing, and a cost above CALLS never fits ({0, -1}).
local K = {log = KEYS[1]}  -- the client's log
local now, cost = tonumber(ARGV[1]), tonumber(ARGV[2])
local calls, window = tonumber(ARGV[3]), tonumber(ARGV[4])
if cost > calls then return {0, -1} end
-- A call accepted at t counts while now < t + window: the window is (now - window, now].
redis.call('ZREMRANGEBYSCORE', K.log, '-inf', now - window)
local held = redis.call('ZCARD', K.log)
if held + cost > calls then
  -- The (held + cost - calls)-th oldest call must leave the window first.
  local oldest = redis.call('ZRANGE', K.log, held + cost - calls - 1, held + cost - calls - 1,
                            'WITHSCORES')
  return {0, tonumber(oldest[2]) + window - now}
end
-- Members are unique: "{now}-{n}", n counting on from the calls already logged at this ms.
local same_ms = redis.call('ZCOUNT', K.log, now, now)
local args = {}
for i = 1, cost do
  args[#args + 1] = now
  args[#args + 1] = now .. '-' .. (same_ms + i)
  if #args >= 1000 or i == cost then
    redis.call('ZADD', K.log, unpack(args))
    args = {}
  end
end
redis.call('PEXPIRE', K.log, window)
return {1, 0}
