-- dismiss: an operator purges a dead letter: it leaves the dead letters (KEYS[7]); the job
-- itself stays, final, until its retention ends.
local removed = redis.call('ZREM', KEYS[7], P.id)
if removed == 0 then return {'absent', '', ''} end
return {'dismissed', '', ''}
