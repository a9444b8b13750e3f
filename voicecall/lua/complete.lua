-- complete: eSMS reported the call's result (a callback, or a status poll).
-- KEYS[7]: the reported SMSID's lookup bucket (the job key when none was reported).
-- A callback carries the job's nonce: a URL of a job that no longer exists (or of an older
-- job under the same id) is refused, and so is a report about another SMSID than the job's:
-- one that differs from it, none at all when the job's is known (eSMS always names it), or,
-- for a job whose SMSID was lost (a 124), one the lookup already gives to another job.
-- The lookup is written only here when the report applies, never re-pointed.
local job = load_job()
if not job then return {'unknown_job', '', ''} end
local refusal = refuse_report(job)
if refusal then return {refusal, job.state, ''} end
if P.smsid and not job.smsid then
  job.smsid = P.smsid
  redis.call('HSET', KEYS[7], P.smsid_field, job.id)
end
if P.source == 'poll' then job.polls = (job.polls or 0) + 1 end
job.outcome = P.outcome
job.call = P.call
job.reported = nil
return {'accepted', 'completed',
        finish(job, 'completed', P.note, {outcome = P.outcome, source = P.source})}
