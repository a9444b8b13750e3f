-- quota: take COST calls from one API token's allowance (GCRA: one key, exact at any window
-- edge, no list of past requests). Not a job state change, so not a lifecycle operation.
-- KEYS[1]: the token's quota key (its theoretical arrival time, in ms). ARGV: now (ms), cost,
-- calls per window, window (ms). Returns {1, 0} when taken, else {0, ms to wait}: nothing is
-- taken from a refused request.
local now, cost = tonumber(ARGV[1]), tonumber(ARGV[2])
local calls, window = tonumber(ARGV[3]), tonumber(ARGV[4])
local interval = window / calls
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or 0), now)
local new_tat = tat + cost * interval
local wait = new_tat - now - window
if wait > 0 then
  return {0, math.ceil(wait)}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil(new_tat - now) + 1000)
return {1, 0}
