"""Lua scripts behind every job transition (each runs atomically inside Redis).

A job's state changes only here, so a duplicate or late Dramatiq message finds the job already
moved and does nothing. Scripts touch the keys named in voicecall.keys; the idempotency and
SMSID keys of a finished job are derived from its own fields so retention can expire them.
"""

# KEYS: job, history, idem (or ""), counts, schedule, inflight
# ARGV: now, state, schedule_score ("" = none), inflight_score ("" = none), history_json,
#       body_hash, then field/value pairs
CREATE = """
if KEYS[3] ~= '' then
  local existing = redis.call('GET', KEYS[3])
  if existing then return {0, existing} end
end
if redis.call('EXISTS', KEYS[1]) == 1 then return {-1, ''} end
redis.call('HSET', KEYS[1], unpack(ARGV, 7))
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'created_at', ARGV[1], 'updated_at', ARGV[1],
           'body_hash', ARGV[6])
if KEYS[3] ~= '' then redis.call('SET', KEYS[3], redis.call('HGET', KEYS[1], 'id')) end
redis.call('RPUSH', KEYS[2], ARGV[5])
redis.call('HINCRBY', KEYS[4], ARGV[2], 1)
if ARGV[3] ~= '' then redis.call('ZADD', KEYS[5], ARGV[3], redis.call('HGET', KEYS[1], 'id')) end
if ARGV[4] ~= '' then redis.call('ZADD', KEYS[6], ARGV[4], redis.call('HGET', KEYS[1], 'id')) end
return {1, ''}
"""

# KEYS: job, history, counts, schedule, inflight, polls
# ARGV: 1 to_state, 2 allowed from-states (space separated), 3 now, 4 history_json,
#       5 final_ttl_s ("0" = not final), 6 schedule op, 7 inflight op, 8 polls op,
#       9 require_expired_lease ("1" lets `sending` through only once its lease has passed),
#       10 smsid index TTL ("0": none; else index the job's smsid for that many seconds),
#       11 require_unattempted ("1": only a job never handed to eSMS, attempts = 0),
#       then field/value pairs. An op is "" (leave), "-" (remove) or a score (add).
TRANSITION = """
local current = redis.call('HGET', KEYS[1], 'state')
if not current then return {0, ''} end
local allowed = false
for s in string.gmatch(ARGV[2], '%S+') do
  if s == current then allowed = true end
end
if allowed and current == 'sending' and ARGV[9] == '1' then
  local lease = tonumber(redis.call('HGET', KEYS[1], 'lease_until') or '0')
  if lease > tonumber(ARGV[3]) then allowed = false end
end
if allowed and ARGV[11] == '1' then
  if tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0') > 0 then allowed = false end
end
if not allowed then return {0, current} end
if #ARGV > 11 then redis.call('HSET', KEYS[1], unpack(ARGV, 12)) end
if ARGV[1] ~= current then
  redis.call('HSET', KEYS[1], 'state', ARGV[1])
  redis.call('HINCRBY', KEYS[3], current, -1)
  redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
end
redis.call('HSET', KEYS[1], 'updated_at', ARGV[3])
redis.call('RPUSH', KEYS[2], ARGV[4])
local id = redis.call('HGET', KEYS[1], 'id')
if tonumber(ARGV[10]) > 0 then
  local indexed = redis.call('HGET', KEYS[1], 'smsid')
  if indexed and indexed ~= '' then redis.call('SET', 'vc:smsid:' .. indexed, id, 'EX', ARGV[10]) end
end
local ops = {{KEYS[4], ARGV[6]}, {KEYS[5], ARGV[7]}, {KEYS[6], ARGV[8]}}
for _, op in ipairs(ops) do
  if op[2] == '-' then redis.call('ZREM', op[1], id)
  elseif op[2] ~= '' then redis.call('ZADD', op[1], op[2], id) end
end
local ttl = tonumber(ARGV[5])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
  local idem = redis.call('HGET', KEYS[1], 'idempotency_key')
  if idem and idem ~= '' then redis.call('EXPIRE', 'vc:idem:' .. idem, ttl) end
  local smsid = redis.call('HGET', KEYS[1], 'smsid')
  if smsid and smsid ~= '' then redis.call('EXPIRE', 'vc:smsid:' .. smsid, ttl) end
end
return {1, current}
"""

# Move due jobs from the schedule to `queued`, atomically, so any number of schedulers can
# run: a job is released by whichever ZREM wins.
# KEYS: schedule, inflight, counts; ARGV: now, horizon_end, limit, stale_after_s
RELEASE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'WITHSCORES', 'LIMIT', 0, ARGV[3])
local out = {}
for i = 1, #due, 2 do
  local id, score = due[i], due[i + 1]
  if redis.call('ZREM', KEYS[1], id) == 1 then
    local job = 'vc:job:' .. id
    if redis.call('HGET', job, 'state') == 'scheduled' then
      redis.call('HSET', job, 'state', 'queued', 'updated_at', ARGV[1])
      redis.call('HINCRBY', KEYS[3], 'scheduled', -1)
      redis.call('HINCRBY', KEYS[3], 'queued', 1)
      redis.call('RPUSH', job .. ':history',
        cjson.encode({state = 'queued', at = tonumber(ARGV[1]), note = 'released by scheduler'}))
      redis.call('ZADD', KEYS[2], tonumber(score) + tonumber(ARGV[4]), id)
      table.insert(out, id)
      table.insert(out, score)
      table.insert(out, redis.call('HGET', job, 'kind'))
    end
  end
end
return out
"""

# Entries of a sorted set due before ARGV[1] (now + horizon), with their scores; each score
# moves ARGV[3] seconds past max(score, now) so that, of several schedulers, one takes it and
# it comes back only if what it started was lost.
# KEYS: zset; ARGV: horizon_end, limit, push_back_s, now
CLAIM_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, ARGV[2])
for i = 1, #due, 2 do
  local score = math.max(tonumber(due[i + 1]), tonumber(ARGV[4]))
  redis.call('ZADD', KEYS[1], score + tonumber(ARGV[3]), due[i])
end
return due
"""
