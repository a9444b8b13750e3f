-- dismiss: an operator purges a dead letter: it leaves the dead letters (own key
-- dead_letters); the job itself stays, final, until its retention ends.
own_keys({'dead_letters'}, {})
local removed = redis.call('ZREM', K.dead_letters, P.id)
if removed == 0 then return {'absent', '', ''} end
return {'dismissed', '', ''}
