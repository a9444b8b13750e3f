-- confirm: with CALLBACK_CONFIRM=status, a callback's final result is not trusted as it is:
-- the job keeps its state, the report is kept (``reported``) and one status poll is sent at
-- once. The poll's answer completes the job (complete.lua), so eSMS's own status decides the
-- result. The callback is checked as complete.lua checks it, and held alike while the job's
-- SMSID is not known (submit.lua then sends the poll). Own key: smsid_bucket, the reported
-- SMSID's lookup bucket (when one was reported); it is only read here.
own_keys({}, {'smsid_bucket'})
local job = load_job()
if not job then return {'unknown_job', '', ''} end
local refusal = refuse_report(job)
if refusal then return {refusal, job.state, ''} end
if not job.smsid then return hold(job) end
if job.reported then return {'confirming', job.state, ''} end  -- its poll is on its way
job.reported = {outcome = P.outcome, smsid = P.smsid, at = NOW}
record(job, job.state, 'callback reported ' .. P.outcome .. '; confirming with eSMS')
redis.call('ZADD', K.due, NOW + P.redrive_s, job.id)
enqueue(C.queue_status, job.id)
redis.call('SET', K.job, cjson.encode(job), 'KEEPTTL')
return {'confirming', job.state, ''}
