-- complete: eSMS reported the call's result (a callback, or a status poll).
-- Own keys: smsid_bucket (the reported SMSID's lookup bucket, when one was reported), activity.
-- A callback carries the job's nonce: a URL of a job that no longer exists (or of an older
-- job under the same id) is refused, and so is a report about another SMSID than the job's
-- (lib.lua refuse_report). A report about a job whose SMSID eSMS has not named yet is held
-- until it does (lib.lua hold): a report never sets the SMSID, so never the lookup either.
own_keys({}, {'smsid_bucket', 'activity'})
local job = load_job()
if not job then return {'unknown_job', '', ''} end
local refusal = refuse_report(job)
if refusal then return {refusal, job.state, ''} end
if not job.smsid then return hold(job) end
if P.source == 'poll' then job.polls = (job.polls or 0) + 1 end
job.outcome = P.outcome
job.call = P.call
job.reported = nil
return {'accepted', 'completed',
        finish(job, 'completed', P.note, {outcome = P.outcome, source = P.source})}
