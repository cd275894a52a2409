#!lua
-- claimTerm(holder) — ARGV[3] holder.
-- Raises the term counter and records its holder in one step (ARCHITECTURE §8.7): from now on every
-- decision carrying a lower term is refused. Returns the new term.
local term = redis.call('HINCRBY', K_TERM, 'term', 1)
redis.call('HSET', K_TERM, 'holder', ARGV[3])
return term
