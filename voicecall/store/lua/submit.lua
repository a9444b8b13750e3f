-- submit: eSMS accepted the call (100), or had accepted it earlier under this RequestId (124).
-- Own keys: smsid_bucket (the SMSID's bucket of the lookup, when eSMS gave one), activity.
-- This answer is the only source of a job's SMSID. Callback reports held while it was not
-- known are settled here (lib.lua settle_held): the first about this SMSID applies now (the
-- result, or with CALLBACK_CONFIRM=status its status poll sent at once), others are refused.
-- The reply's 4th element counts how the held reports ended (JSON; voicecall.esms.callbacks).

own_keys({}, {'smsid_bucket', 'activity'})

-- A submitted job whose SMSID is known: settle its held reports, plan its poll, save.
local function settle(job, verdict)
  local counts = {}
  local match = job.smsid and settle_held(job, counts)
  if match and not match.confirm then
    counts.held_applied = 1
    job.outcome = match.outcome
    job.call = match.call
    local raw = finish(job, 'completed', 'result by callback, held until eSMS named the SMSID',
                       {outcome = match.outcome, source = 'callback'})
    return {'completed', 'completed', raw, cjson.encode(counts)}
  end
  if match then
    counts.held_applied = 1
    job.reported = {outcome = match.outcome, smsid = match.smsid, at = match.at}
    record(job, job.state, 'callback reported ' .. match.outcome .. '; confirming with eSMS')
    redis.call('ZADD', K.due, NOW + P.redrive_s, job.id)
    enqueue(C.queue_status, job)
  else
    redis.call('ZADD', K.due, P.poll_at, job.id)
  end
  index(job)
  return {verdict, job.state, save(job), cjson.encode(counts)}
end

local job = load_job()
if not job then return {'absent', '', ''} end
local otp_code = job.kind == 'voice_otp' and job.request and job.request.content
if job.state == 'sending' then
  if P.smsid then job.smsid = P.smsid end
  job.submitted_at = NOW
  job.lease = nil
  if otp_code then job.request.content = nil end  -- eSMS has it now; keep no copy
  move(job, 'submitted', P.note, {smsid = P.smsid, code = P.code})
  count_activity('sent')
  campaign_hour(job, 'sent')
  if job.cid then  -- the campaign's first and last send
    local first = redis.call('HGET', K.campaign_stats, job.cid .. ':first_sent_at')
    if not first or tonumber(first) > NOW then
      redis.call('HSET', K.campaign_stats, job.cid .. ':first_sent_at', NOW)
    end
    redis.call('HSET', K.campaign_stats, job.cid .. ':last_sent_at', NOW)
  end
  if K.smsid_bucket then redis.call('HSET', K.smsid_bucket, P.smsid_field, job.id) end
  return settle(job, 'submitted')
end
-- Another worker recorded a 124 without the SMSID first, or the job ended meanwhile.
local changed = false
if otp_code then job.request.content = nil; changed = true end
if P.smsid and not job.smsid and (job.state == 'submitted' or is_final(job.state)) then
  job.smsid = P.smsid
  record(job, job.state, 'SMSID from a later answer of eSMS', {smsid = P.smsid})
  redis.call('HSET', K.smsid_bucket, P.smsid_field, job.id)
  if job.state == 'submitted' then return settle(job, 'late') end
  changed = true
end
if changed then redis.call('SET', K.job, cjson.encode(job), 'KEEPTTL') end
return {'late', job.state, ''}
