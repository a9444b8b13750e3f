-- submit: eSMS accepted the call (100), or had accepted it earlier under this RequestId (124).
-- KEYS[7]: the SMSID's bucket of the lookup (the job key when eSMS gave none).
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
  if job.cid then  -- the campaign's first and last send
    local first = redis.call('HGET', KEYS[6], job.cid .. ':first_sent_at')
    if not first or tonumber(first) > NOW then
      redis.call('HSET', KEYS[6], job.cid .. ':first_sent_at', NOW)
    end
    redis.call('HSET', KEYS[6], job.cid .. ':last_sent_at', NOW)
  end
  -- A callback already waits for confirmation (confirm.lua): poll now, not at P.poll_at.
  redis.call('ZADD', KEYS[3], job.reported and NOW or P.poll_at, job.id)
  if P.smsid then redis.call('HSET', KEYS[7], P.smsid_field, job.id) end
  index(job)
  return {'submitted', 'submitted', save(job)}
end
-- A callback ended the job first, or another worker recorded a 124 without the SMSID.
local changed = false
if otp_code then job.request.content = nil; changed = true end
if P.smsid and not job.smsid and (job.state == 'submitted' or is_final(job.state)) then
  job.smsid = P.smsid
  record(job, job.state, 'SMSID from a later answer of eSMS', {smsid = P.smsid})
  redis.call('HSET', KEYS[7], P.smsid_field, job.id)
  changed = true
end
if changed then redis.call('SET', KEYS[1], cjson.encode(job), 'KEEPTTL') end
return {'late', job.state, ''}
