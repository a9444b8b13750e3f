-- reserve campaign: a campaign's number (assigned on its first job) and a range of places in
-- it (voicecall.store.campaigns). Not a job state change, so not a lifecycle operation.
-- ARGV: the campaign's name, how many places. Returns {cid, the first place reserved}.
local K = {
  campaigns = KEYS[1],  -- name -> cid (and the next cid, under '\0next')
  names = KEYS[2],      -- cid -> name
  seq = KEYS[3],        -- cid -> the last place given
}
local cid = redis.call('HGET', K.campaigns, ARGV[1])
if not cid then
  cid = redis.call('HINCRBY', K.campaigns, '\0next', 1)
  redis.call('HSET', K.campaigns, ARGV[1], cid)
  redis.call('HSET', K.names, cid, ARGV[1])
end
local last = redis.call('HINCRBY', K.seq, cid, tonumber(ARGV[2]))
return {tonumber(cid), last - tonumber(ARGV[2]) + 1}
