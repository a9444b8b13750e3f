-- batch: one operation run for several jobs in turn (voicecall.store.scripts.batch_source),
-- each step the same as alone (its own KEYS and ARGV, its own atomic change), in one round
-- trip. KEYS holds every step's keys in turn, each step's slots named by its own script
-- (lib.lua K); ARGV holds, per step, its key count, its argument count and its arguments. The
-- steps' activity counts are added once at the end, one HINCRBY per minute and field rather
-- than one per step. run's body is lib.lua and the operation's script (written in by
-- batch_source).
local ACTIVITY = {}
local function run(KEYS, ARGV)
__STEP__
end
local replies, k, a = {}, 1, 1
while a <= #ARGV do
  local nk, na = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local step_keys, step_args = {}, {}
  for i = 1, nk do step_keys[i] = KEYS[k + i - 1] end
  for i = 1, na do step_args[i] = ARGV[a + 1 + i] end
  replies[#replies + 1] = run(step_keys, step_args)
  k, a = k + nk, a + 2 + na
end
for key, fields in pairs(ACTIVITY) do
  for field, n in pairs(fields) do
    if redis.call('HINCRBY', key, field, n) == n then
      redis.call('EXPIRE', key, __ACTIVITY_TTL_S__)
    end
  end
end
return replies
