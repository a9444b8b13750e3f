-- The shared part of every job-store script (voicecall.store.scripts prepends it to each one).
--
-- Conventions: ARGV[1] is now (epoch seconds, ms precision), ARGV[2] a JSON object of the
-- operation's parameters (P, with the common ones: token, retention_s, webhook_redrive_s, and
-- ``slots``: the names of the step's own keys), ARGV[3] a whole job (create only).
-- C (the constants: state ranks, kinds, queues, actors) is generated from the Python enums.
-- ACTIVITY is nil for a script of one step, a table of counts in a batch of several
-- (voicecall.store.scripts.batch_source), where each step's KEYS and ARGV are its own.
--
-- Keys, each slot named once here or at the top of its script (no script builds a key name,
-- and every key a step touches is declared). Every job step declares first the keys below
-- (voicecall.job.steps.COMMON_KEYS), then the list and body hash of every queue (QUEUE_KEYS:
-- voicecall.job.keys.message_keys, since a step may write Dramatiq messages), then its own
-- keys, in the order P.slots names them. A script names the own keys it takes with
-- own_keys, first thing: those every call passes, and those passed only when they exist (a
-- key that does not exist is left out, never stood in for by another key).

local NOW = tonumber(ARGV[1])
local P = cjson.decode(ARGV[2])
local C = __CONSTANTS__

local K = {
  job = KEYS[1],             -- the job's record
  state_index = KEYS[2],     -- every job by band (state, outcome, kind) and creation time
  due = KEYS[3],             -- timers and retention
  webhooks_due = KEYS[4],    -- webhook deliveries by due time
  schedule = KEYS[5],        -- scheduled jobs by due time
  campaign_stats = KEYS[6],  -- the campaigns' counters
}
local QUEUE_KEYS = {}  -- queue name -> its Dramatiq list and body hash
for queue, slot in pairs(C.queue_slot) do
  QUEUE_KEYS[queue] = {list = KEYS[5 + 2 * slot], bodies = KEYS[6 + 2 * slot]}
end
local FIRST_OWN = 7 + 2 * C.queues

-- The step's own keys, by name in K: ``needs``, passed by every call, and ``may``, passed
-- only when they exist (the caller names those it passes in P.slots).
local function own_keys(needs, may)
  local declared = {}
  for _, name in ipairs(needs) do declared[name] = true end
  for _, name in ipairs(may) do declared[name] = true end
  local slots = P.slots or {}
  if #KEYS ~= FIRST_OWN - 1 + #slots then
    error('keys: ' .. #KEYS .. ' for ' .. #slots .. ' slots')
  end
  for i, name in ipairs(slots) do
    if not declared[name] then error('undeclared key slot: ' .. name) end
    K[name] = KEYS[FIRST_OWN + i - 1]
  end
  for _, name in ipairs(needs) do
    if not K[name] then error('missing key slot: ' .. name) end
  end
end

local function load_job()
  local raw = redis.call('GET', K.job)
  if not raw then return nil end
  return cjson.decode(raw)
end

-- Whether this claim still holds the job: 'sending', leased to P.owner at attempt P.attempt
-- (renew, unclaim). A job re-driven and claimed again meanwhile, by any worker, is not held.
local function holds_claim(job)
  return job.state == 'sending' and job.lease and job.lease.owner == P.owner
    and (job.attempts or 0) == P.attempt
end

local function is_final(state)
  return C.final[state] == true
end

-- The state index: one sorted set, each job scored by its band (state, outcome, kind) and
-- its creation time, so a band lists newest first and ZCOUNT of a band counts the state.
local function index(job)
  local status = job.state
  if status == 'completed' then status = 'completed/' .. (job.outcome or 'unknown') end
  local band = C.status_rank[status] * C.kinds + C.kind_rank[job.kind]
  local score = band * C.band_width + math.floor(job.created_at * 1000 + 0.5)
  redis.call('ZADD', K.state_index, score, job.id)
end

local function record(job, state, note, extra)
  local entry = {state = state, at = NOW}
  if note and note ~= '' then entry.note = note end
  if extra then for k, v in pairs(extra) do entry[k] = v end end
  table.insert(job.history, entry)
  job.updated_at = NOW
end

-- A campaign's figures are counters (one hash for all campaigns, fields "{cid}:{name}"),
-- changed in the same step as its jobs: never computed by scanning jobs.
local function campaign_add(job, field, by)
  if job.cid then redis.call('HINCRBY', K.campaign_stats, job.cid .. ':' .. field, by) end
end

-- The campaign's own activity per hour (fields "{cid}:h{hour}:{field}", the fields
-- count_activity counts): its chart over time, read by hours, never by scanning jobs.
local function campaign_hour(job, field)
  campaign_add(job, 'h' .. math.floor(NOW / 3600) .. ':' .. field, 1)
end

local function move(job, to, note, extra)
  if job.cid and job.state ~= to then
    campaign_add(job, job.state, -1)
    campaign_add(job, to, 1)
  end
  job.state = to
  record(job, to, note, extra)
end

local function save(job, ttl_s)
  local raw = cjson.encode(job)
  if ttl_s then
    redis.call('SET', K.job, raw, 'EX', ttl_s)
  else
    redis.call('SET', K.job, raw)
  end
  return raw
end

-- This minute's activity (producer.console.activity): a step that may send or end a job declares
-- the minute's hash (own key ``activity``, named by the store from the step's time).
local function count_activity(field)
  local key = K.activity
  if not key then return end  -- a step that declared no activity hash counts nothing
  if ACTIVITY then  -- one of several steps in a batch (scripts.batch_source): counted at its end
    local fields = ACTIVITY[key] or {}
    ACTIVITY[key] = fields
    fields[field] = (fields[field] or 0) + 1
    return
  end
  -- The TTL is set when a field is born (a few times a minute), not on every count: one
  -- Redis command per count on the send path, not two.
  if redis.call('HINCRBY', key, field, 1) == 1 then redis.call('EXPIRE', key, C.activity_ttl_s) end
end

-- Dramatiq's Redis broker layout (dramatiq/brokers/redis/dispatch.lua, "enqueue"): the body
-- in the queue's .msgs hash under its redis_message_id, the id pushed on the queue's list.
-- Tested against the pinned Dramatiq in tests/test_intake_message.py (the broker decodes and consumes a message a create step wrote).
local sent = 0
-- Each message carries the job's trace context (voicecall.telemetry.tracing), and
-- ``linked`` when its span should link to that trace rather than continue it (a scheduled call).
local function enqueue(queue, job, kwargs, mid, linked)
  local queue_keys = QUEUE_KEYS[queue]
  sent = sent + 1
  mid = mid or (P.token .. '-' .. sent)
  local options = {redis_message_id = mid, trace_ctx = job.trace_ctx}
  if linked and job.trace_ctx then options.trace_link = true end
  local body = cjson.encode({
    queue_name = queue, actor_name = C.actor[queue], args = {job.id},
    kwargs = kwargs or {}, options = options,
    message_id = mid, message_timestamp = math.floor(NOW * 1000),
  })
  -- A body already there is this very step's, sent again after its reply was lost.
  if redis.call('HSET', queue_keys.bodies, mid, body) == 0 then return mid end
  redis.call('RPUSH', queue_keys.list, mid)
  return mid
end

local function send_queue(job)
  if job.kind == 'voice_otp' then return C.queue_otp end
  return C.queue_bulk
end

-- A job's send message; its id is kept in the job (``msg``), so the sweeper can tell a
-- message still waiting on its queue from one that was lost.
local function enqueue_send(job, mid, linked)
  local kwargs = {}
  if job.limit_key then kwargs.limit_key = job.limit_key end
  job.msg = enqueue(send_queue(job), job, kwargs, mid, linked)
  return job.msg
end

-- Every final state goes through here: history, end time, no lease, the spoken OTP code
-- erased, retention (below; the record has no TTL, so it is there for purge to name every
-- index entry), and the webhook queued.
local function campaign_result(job)
  if not job.cid then return end
  if job.outcome then campaign_add(job, 'outcome:' .. job.outcome, 1) end
  if job.call and job.call.duration_s then campaign_add(job, 'duration_s', job.call.duration_s) end
  if job.call and job.call.price_vnd then
    redis.call('HINCRBYFLOAT', K.campaign_stats, job.cid .. ':price_vnd', job.call.price_vnd)
  end
end

-- Why a report of eSMS (P: nonce, smsid, smsid_field; K.smsid_bucket: the SMSID's lookup bucket)
-- may not apply to ``job``, or nil when it may: complete.lua and confirm.lua check alike.
-- eSMS always names the SMSID, so a report naming none is refused; so is one naming an SMSID
-- the lookup already gives to another job (whatever this job's SMSID turns out to be).
local function refuse_report(job)
  if P.nonce and job.callback_nonce ~= P.nonce then return 'forged' end
  if is_final(job.state) then return 'repeat' end
  if job.state ~= 'sending' and job.state ~= 'retrying' and job.state ~= 'submitted' then
    return 'refused'
  end
  if not P.smsid then return 'smsid_mismatch' end
  if job.smsid then
    if P.smsid ~= job.smsid then return 'smsid_mismatch' end
  else
    local owner = redis.call('HGET', K.smsid_bucket, P.smsid_field)
    if owner and owner ~= job.id then return 'smsid_mismatch' end
  end
  return nil
end

-- The hold. Only eSMS's send answer names a job's SMSID (submit.lua); a callback never does.
-- A final report about a job whose SMSID is not known yet (the answer is on its way, or came
-- as a 124 without one) is kept on the job, ``held_reports``, and applied only once the
-- answer names the SMSID (settle_held). Bounds: C.hold_max distinct reports per job (a repeat
-- of one held is not kept twice; past the bound: 'hold_full'), each of a few hundred bytes
-- (its fields are checked by voicecall/esms/results.py), each kept at most P.hold_s. Every held
-- report ends: matched and applied, refused (another SMSID), dropped when older than
-- P.hold_s, or dropped when the job ends before its SMSID is known (finish).
-- Returns the step's reply; its 4th element counts what ended here (JSON).
local function hold(job)
  local kept, expired, known = {}, 0, false
  for _, r in ipairs(job.held_reports or {}) do
    if NOW - r.at > P.hold_s then
      expired = expired + 1
    else
      kept[#kept + 1] = r
      if r.smsid == P.smsid and r.outcome == P.outcome then known = true end
    end
  end
  local verdict = 'held'
  if not known then
    if #kept >= C.hold_max then
      verdict = 'hold_full'
    else
      kept[#kept + 1] = {smsid = P.smsid, outcome = P.outcome, call = P.call, at = NOW,
                         confirm = P.confirm == true}
    end
  end
  if known and expired == 0 or verdict == 'hold_full' and expired == 0 then
    return {verdict, job.state, '', '{}'}  -- nothing to write
  end
  if #kept > 0 then job.held_reports = kept else job.held_reports = nil end
  redis.call('SET', K.job, cjson.encode(job), 'KEEPTTL')
  return {verdict, job.state, '', cjson.encode({held_expired = expired})}
end

-- The job's SMSID is known now: each held report is settled. The first one about this SMSID
-- (and held no longer than P.hold_s) is returned, to be applied by the caller; later ones
-- about it are repeats; one about another SMSID is refused (counted as smsid_mismatch).
-- ``counts`` gets what ended here; the history says it in one line.
local function settle_held(job, counts)
  local match = nil
  local refused, expired = 0, 0
  for _, r in ipairs(job.held_reports or {}) do
    if NOW - r.at > P.hold_s then
      expired = expired + 1
    elseif r.smsid ~= job.smsid then
      refused = refused + 1
    elseif match then
      counts['repeat'] = (counts['repeat'] or 0) + 1
    else
      match = r
    end
  end
  job.held_reports = nil
  if refused > 0 then counts.smsid_mismatch = refused end
  if expired > 0 then counts.held_expired = expired end
  local said = {}
  if refused > 0 then
    said[#said + 1] = refused .. ' held callback report(s) about another SMSID refused'
  end
  if expired > 0 then
    said[#said + 1] = expired .. ' held callback report(s) dropped: held over the hold time'
  end
  if #said > 0 then record(job, job.state, table.concat(said, '; ')) end
  return match
end

local function finish(job, state, note, extra)
  -- Callback reports still held: the job ends before eSMS named its SMSID, so none can apply
  -- (voicecall.telemetry.finish counts them from this entry).
  if job.held_reports then
    extra = extra or {}
    extra.held_dropped = #job.held_reports
    job.held_reports = nil
  end
  move(job, state, note, extra)
  local ending = job.outcome and state == 'completed' and ('outcome:' .. job.outcome) or state
  count_activity(ending)
  campaign_hour(job, ending)
  campaign_result(job)
  job.finished_at = NOW
  job.lease = nil
  if job.kind == 'voice_otp' and job.request then job.request.content = nil end
  -- Retention. A job that ends soon after its creation leaves the due set: the sweeper finds
  -- it by its place in the state index (worker.retention), 0 bytes more per job. One that
  -- ends later (scheduled far ahead, retried for hours) keeps its end of retention here.
  if NOW - job.created_at <= C.retention_slack_s then
    redis.call('ZREM', K.due, job.id)
  else
    redis.call('ZADD', K.due, NOW + P.retention_s, job.id)
  end
  if job.webhook_url then
    redis.call('ZADD', K.webhooks_due, NOW + P.webhook_redrive_s, job.id)
    enqueue(C.queue_webhooks, job)
  end
  index(job)
  return save(job)
end
