#!lua
-- SPDX-License-Identifier: Apache-2.0
-- flush.lua: the server side of a touchpointd flush: buckets, rolling windows, KPI hashes and live gauges (schemas/redis.md).
--
-- One script, three operations chosen by ARGV[1]. store.c sends every command
-- of a flush as EVALSHA of this script inside one MULTI/EXEC, so a flush is
-- applied whole or (if the script is missing) not at all.
--
-- The first line declares the script's flags (Redis 7): none, so no
-- allow-oom. Redis then refuses a call of it as a whole while over
-- maxmemory, and an EXEC holding one, instead of failing it at its first
-- refused write after others went through (a flush's offsets recorded
-- without its aggregates).
--
-- apply  prefix clock wall res retention nwin {name ms}*nwin nrows
--        {tenant channel queue leaf nb {start nf {field value}*nf}*nb}*nrows
--   Adds bucket deltas of rows. Each window of a row is a running sum of the
--   buckets in its span (hi - W, hi]; it is first slid to the clock (buckets
--   leaving are subtracted, buckets entering - future events that waited for
--   the clock - are added), then the deltas of buckets inside the span are
--   added, and the KPI hash is rewritten from the sums.
-- guard  prefix offkey n {member start next}*n batchkey batch
--   First command of every flush: the exactly-once check. The flush covers,
--   for each partition member the instance owns, the offsets [start, next)
--   (start -1: nothing recorded yet; start = next: nothing consumed). If
--   batchkey (the instance's) holds batch, this very flush was applied
--   before - its reply was lost - (reply 'applied'); this also tells a
--   resent flush that moved no offset (state alone: restored or evicted
--   correlations) from a first one. Otherwise it applies only if offkey
--   records start for every member (reply 'apply'); if it records next for
--   every member it was applied before (reply 'applied'); anything else
--   means another instance advanced a partition (reply 'conflict ...'). For
--   the last two, PREFIX:flush:skip makes the apply and live commands of the
--   same transaction no-ops; live deletes it.
-- live   prefix clock nlive {tenant channel queue tickets dms calls}*nlive
--        noldest {tenant channel queue member ms}*noldest
--        offkey noff {member offset}*noff batchkey batch
--   Gauge deltas, per-partition oldest wait starts (ms < 0 removes the
--   member), the consumer offsets the flush covers and, in batchkey, the
--   flush's batch (kept a day). Last command of a flush: it clears
--   PREFIX:flush:skip.
-- corr   prefix key reset {chunk}*
--   Appends chunks (lines of struct corr_log in pipeline.h) to the list key,
--   one partition's correlation log; reset = 1 first deletes it (the chunks
--   are a snapshot of the open records). No Lua work per correlation.
-- tick   prefix clock wall res retention slide nwin {name ms}*nwin cursor count
--   For every row with waits (tp:{T}:waiting) of the tenants one SSCAN of
--   PREFIX:tenants from cursor returns (COUNT count): refresh oldest_wait_ms
--   from the clock (live deletes it when a row's last wait ends); with
--   slide = 1 (the clock entered a new bucket) slide every window of their
--   rows too. Reply {rows refreshed, next cursor}: touchpointd calls again
--   until the cursor is 0 (or a stop signal ends the sweep), so no call holds
--   Redis for long however many rows there are (a tenant returned twice is
--   refreshed twice; both are idempotent).
-- rows   prefix
--   Every tenant's leaf rows: a flat list {tenant dim}*.
-- alert_read prefix clock res n {tenant dim source field window ncount
--        {count}*ncount baseline span slice min_samples}*n
--   One observation per request (source k: KPI hash, l: live hash, s: last
--   seen, z: z-score statistics over slices of the buckets): a flat list
--   {value samples baseline baseline_samples mean stddev slices}* where an
--   absent number is false.
-- alert_write prefix maxlen n {tenant fingerprint state notify message}*n
--   Keeps tp:{T}:alerts:active (state '' deletes), and for notify = 1 adds
--   message to the capped stream tp:{T}:alerts and publishes it on
--   PREFIX:alerts.

local ALPHA = 0.01
local GAMMA = (1 + ALPHA) / (1 - ALPHA)
local MAX_FIELDS = { wait_max = true, ttr_max = true }

-- Sums are doubles here; one past the int64 range (2^63 and beyond, from
-- waits near it) is written as the range's end, not cast to its other end.
local function fmt_int(x)
  if x >= 9223372036854775807 then return '9223372036854775807' end
  if x <= -9223372036854775808 then return '-9223372036854775808' end
  return string.format('%d', x)
end

local function fmt_num(x)
  return string.format('%.10g', x)
end

local function hgetall_num(key)
  local flat = redis.call('HGETALL', key)
  local t = {}
  for i = 1, #flat, 2 do
    t[flat[i]] = tonumber(flat[i + 1])
  end
  return t
end

-- dst += sign * src; max fields merge by maximum (only when adding).
-- Fields that changed are set in dirty (when given). Returns true when dst
-- changed.
local function add_into(dst, src, sign, dirty)
  local changed = false
  for f, v in pairs(src) do
    if string.sub(f, 1, 1) ~= '_' and v ~= 0 then
      if MAX_FIELDS[f] then
        if sign > 0 and (dst[f] == nil or v > dst[f]) then
          dst[f] = v
          changed = true
          if dirty then dirty[f] = true end
        end
      else
        local n = (dst[f] or 0) + sign * v
        if n == 0 then n = nil end
        dst[f] = n
        changed = true
        if dirty then dirty[f] = true end
      end
    end
  end
  return changed
end

local function is_empty(t)
  return next(t) == nil
end

-- Keys ---------------------------------------------------------------------

local function row_prefix(pfx, tenant)
  return pfx .. ':{' .. tenant .. '}:'
end

local function bucket_key(row, start)
  return row.rp .. 'bkt:' .. fmt_int(row.res) .. ':' .. fmt_int(start) .. ':' .. row.dim
end

local function window_key(row, w)
  return row.rp .. 'win:' .. w.name .. ':' .. row.dim
end

local function kpi_key(row, w)
  return row.rp .. 'kpi:' .. w.name .. ':' .. row.dim
end

-- Quantiles ----------------------------------------------------------------

-- The value a sketch bin reports (sketch.c, schemas/events.md).
local function bin_value(idx)
  if idx < 0 then return 0 end
  return 2 * GAMMA ^ idx / (GAMMA + 1)
end

-- Quantiles qs (ascending) of the sketch stored as fields PREFIX..IDX in st,
-- n samples. Rank of q is floor(q * (n - 1)), 0-based. A bin's value may lie
-- up to 1 % above the exact maximum; capping at it only brings the estimate
-- closer to the truth.
local function quantiles(st, prefix, n, qs, max)
  local bins, counts = {}, {}
  local plen = #prefix
  for f, v in pairs(st) do
    if string.sub(f, 1, plen) == prefix then
      local s = string.sub(f, plen + 1)
      local idx = (s == 'z') and -1 or tonumber(s)
      bins[#bins + 1] = idx
      counts[idx] = v
    end
  end
  table.sort(bins)
  local out, qi, cum = {}, 1, 0
  for _, idx in ipairs(bins) do
    cum = cum + counts[idx]
    while qi <= #qs and cum > math.floor(qs[qi] * (n - 1)) do
      out[qi] = math.min(bin_value(idx), max)
      qi = qi + 1
    end
  end
  return out
end

-- KPI hash -----------------------------------------------------------------

local function kpi_fields(st, wall)
  local out = {}
  local function put(f, v) out[#out + 1] = f; out[#out + 1] = v end
  local function count(f) return st[f] or 0 end

  put('events', fmt_int(count('events')))
  local wn = count('wait_n')
  if wn > 0 then
    local q = quantiles(st, 'w:', wn, { 0.5, 0.9, 0.99 }, count('wait_max'))
    put('wait_n', fmt_int(wn))
    put('wait_mean_ms', fmt_num(count('wait_sum') / wn))
    put('wait_p50_ms', fmt_num(q[1]))
    put('wait_p90_ms', fmt_num(q[2]))
    put('wait_p99_ms', fmt_num(q[3]))
    put('wait_max_ms', fmt_int(count('wait_max')))
  end
  local ans, ab = count('answered'), count('abandoned')
  if ans + ab > 0 then
    put('answered', fmt_int(ans))
    put('abandoned', fmt_int(ab))
    put('abandon_rate', fmt_num(ab / (ans + ab)))
  end
  local sn = count('sl_n')
  if sn > 0 then
    put('sl_n', fmt_int(sn))
    put('sl_met', fmt_int(count('sl_met')))
    put('sl_pct', fmt_num(count('sl_met') / sn))
  end
  local tn = count('ttr_n')
  if tn > 0 then
    local q = quantiles(st, 't:', tn, { 0.5, 0.9 }, count('ttr_max'))
    put('ttr_n', fmt_int(tn))
    put('ttr_mean_ms', fmt_num(count('ttr_sum') / tn))
    put('ttr_p50_ms', fmt_num(q[1]))
    put('ttr_p90_ms', fmt_num(q[2]))
    put('ttr_max_ms', fmt_int(count('ttr_max')))
  end
  local nn = count('nps_n')
  if nn > 0 then
    local p, d = count('promoters'), count('detractors')
    put('nps_n', fmt_int(nn))
    put('promoters', fmt_int(p))
    put('passives', fmt_int(count('passives')))
    put('detractors', fmt_int(d))
    put('nps', fmt_num(100 * (p - d) / nn))
    put('detractor_rate', fmt_num(d / nn))
  end
  local cn = count('csat_n')
  if cn > 0 then
    put('csat_n', fmt_int(cn))
    put('csat_pct', fmt_num(count('csat_good') / cn))
    put('csat_mean', fmt_num(count('csat_sum') / cn))
  end
  local en = count('ces_n')
  if en > 0 then
    put('ces_n', fmt_int(en))
    put('ces_mean', fmt_num(count('ces_sum') / en))
  end
  put('updated_at_ms', wall)
  return out
end

-- Windows ------------------------------------------------------------------

local function first_key(row)
  return row.rp .. 'first:' .. fmt_int(row.res)
end

-- The first bucket a row ever had (tp:{T}:first:RES): no bucket before it
-- exists, so spans are read from there, and a new row reads none.
local function first_bucket(row)
  if row.first == nil then
    row.first = tonumber(redis.call('HGET', first_key(row), row.dim)) or false
  end
  return row.first
end

-- Lowest bucket start of the span (hi - W, hi] that may exist; nil if none.
local function span_lo(row, w, hi)
  local first = first_bucket(row)
  if not first or first > hi then return nil end
  return math.max(hi - w.ms + row.res, first)
end

local function sum_span(row, w, hi)
  local st = {}
  local lo = span_lo(row, w, hi)
  if lo == nil then return st end
  for s = lo, hi, row.res do
    add_into(st, hgetall_num(bucket_key(row, s)), 1)
  end
  return st
end

-- Recomputes the max fields of a window from its buckets.
local function recompute_max(row, w, win)
  win.st.wait_max, win.st.ttr_max = nil, nil
  win.dirty.wait_max, win.dirty.ttr_max = true, true
  local lo = span_lo(row, w, win.hi)
  if lo == nil then return end
  for s = lo, win.hi, row.res do
    local m = redis.call('HMGET', bucket_key(row, s), 'wait_max', 'ttr_max')
    for i, f in ipairs({ 'wait_max', 'ttr_max' }) do
      local v = tonumber(m[i])
      if v and (win.st[f] == nil or v > win.st[f]) then win.st[f] = v end
    end
  end
end

local function slide(row, w, win, to)
  local steps = (to - win.hi) / row.res
  if steps >= w.ms / row.res then
    win.st = sum_span(row, w, to)
    win.hi = to
    win.changed = true
    win.full = true
    return
  end
  local lost_max = false
  for s = span_lo(row, w, win.hi) or to, to - w.ms, row.res do
    local b = hgetall_num(bucket_key(row, s))
    for f in pairs(MAX_FIELDS) do
      if b[f] and win.st[f] and b[f] >= win.st[f] then lost_max = true end
    end
    win.changed = add_into(win.st, b, -1, win.dirty) or win.changed
  end
  local first = first_bucket(row)
  for s = math.max(win.hi + row.res, first or to + row.res), to, row.res do
    win.changed = add_into(win.st, hgetall_num(bucket_key(row, s)), 1, win.dirty) or win.changed
  end
  win.hi = to
  if lost_max then
    recompute_max(row, w, win)
  end
end

-- Loads a window's state and slides it to the clock's bucket.
local function window_load(row, w)
  local st = hgetall_num(window_key(row, w))
  local hi, res = st._hi, st._res
  st._hi, st._res = nil, nil
  local win = { st = st, hi = hi, changed = false, moved = false, dirty = {}, full = false }
  if hi == nil or res ~= row.res then
    win.hi = row.clock_bucket
    win.st = sum_span(row, w, win.hi)
    win.changed = not is_empty(win.st)
    win.moved = true
    win.full = true
  elseif row.clock_bucket > hi then
    slide(row, w, win, row.clock_bucket)
    win.moved = true
  end
  return win
end

-- CMD key args..., in calls of at most `size` arguments (a Lua call takes a
-- bounded number of arguments); size must be even for HSET pairs.
local function call_chunked(cmd, key, args, size)
  for k = 1, #args, size do
    local last = math.min(k + size - 1, #args)
    redis.call(cmd, key, unpack(args, k, last))
  end
end

local function hset_table(key, t, extra)
  local args = extra or {}
  for f, v in pairs(t) do
    args[#args + 1] = f
    args[#args + 1] = fmt_int(v)
  end
  if #args > 0 then
    redis.call('HSET', key, unpack(args))
  end
end

-- Writes the fields of a window that changed (or all of a rebuilt one).
local function window_write(wk, row, win)
  if win.full then
    redis.call('DEL', wk)
    hset_table(wk, win.st, { '_hi', fmt_int(win.hi), '_res', fmt_int(row.res) })
    return
  end
  local set, del = { '_hi', fmt_int(win.hi) }, {}
  for f in pairs(win.dirty) do
    local v = win.st[f]
    if v == nil then
      del[#del + 1] = f
    else
      set[#set + 1] = f
      set[#set + 1] = fmt_int(v)
    end
  end
  call_chunked('HDEL', wk, del, 1000)
  call_chunked('HSET', wk, set, 1000)
end

-- Writes a window back and, when its sums changed, its KPI hash. A window
-- that never held anything is not created.
-- KPI fields that exist only while their count field is non-zero.
local KPI_GROUPS = {
  { counts = { 'wait_n' }, fields = { 'wait_n', 'wait_mean_ms', 'wait_p50_ms', 'wait_p90_ms', 'wait_p99_ms', 'wait_max_ms' } },
  { counts = { 'answered', 'abandoned' }, fields = { 'answered', 'abandoned', 'abandon_rate' } },
  { counts = { 'sl_n' }, fields = { 'sl_n', 'sl_met', 'sl_pct' } },
  { counts = { 'ttr_n' }, fields = { 'ttr_n', 'ttr_mean_ms', 'ttr_p50_ms', 'ttr_p90_ms', 'ttr_max_ms' } },
  { counts = { 'nps_n' }, fields = { 'nps_n', 'promoters', 'passives', 'detractors', 'nps', 'detractor_rate' } },
  { counts = { 'csat_n' }, fields = { 'csat_n', 'csat_pct', 'csat_mean' } },
  { counts = { 'ces_n' }, fields = { 'ces_n', 'ces_mean' } },
}

-- The KPI fields of groups whose count became 0 in this flush.
local function vanished_kpi_fields(win)
  local out = {}
  for _, g in ipairs(KPI_GROUPS) do
    local dirty, n = false, 0
    for _, c in ipairs(g.counts) do
      dirty = dirty or win.dirty[c]
      n = n + (win.st[c] or 0)
    end
    if dirty and n == 0 then
      for _, f in ipairs(g.fields) do out[#out + 1] = f end
    end
  end
  return out
end

-- The window and KPI hashes expire aggregation.retention after the clock
-- last moved them (refreshed once per bucket, not on every flush).
local function window_store(row, w, win)
  local wk = window_key(row, w)
  if win.changed then
    window_write(wk, row, win)
    local kk = kpi_key(row, w)
    if win.full then
      redis.call('DEL', kk)
    else
      local gone = vanished_kpi_fields(win)
      if #gone > 0 then redis.call('HDEL', kk, unpack(gone)) end
    end
    redis.call('HSET', kk, unpack(kpi_fields(win.st, row.wall)))
    if win.moved or win.full then
      redis.call('PEXPIRE', wk, row.retention)
      redis.call('PEXPIRE', kk, row.retention)
    end
  elseif win.moved and redis.call('EXISTS', wk) == 1 then
    redis.call('HSET', wk, '_hi', fmt_int(win.hi))
  end
end

-- Buckets ------------------------------------------------------------------

local function bucket_apply(row, start, delta)
  local bk = bucket_key(row, start)
  local cur = hgetall_num(bk)
  local args = {}
  for f, v in pairs(delta) do
    local n
    if MAX_FIELDS[f] then
      n = math.max(cur[f] or v, v)
    else
      n = (cur[f] or 0) + v
    end
    args[#args + 1] = f
    args[#args + 1] = fmt_int(n)
  end
  if #args > 0 then
    redis.call('HSET', bk, unpack(args))
  end
  redis.call('PEXPIRE', bk, row.retention)
end

-- Operations ---------------------------------------------------------------

local function read_windows(a, i)
  local n = tonumber(a[i])
  local ws = {}
  for k = 1, n do
    ws[k] = { name = a[i + 2 * k - 1], ms = tonumber(a[i + 2 * k]) }
  end
  return ws, i + 1 + 2 * n
end

local function new_row(ctx, tenant, dim)
  return {
    rp = row_prefix(ctx.pfx, tenant), dim = dim, res = ctx.res,
    clock_bucket = ctx.clock - ctx.clock % ctx.res, wall = ctx.wall,
    retention = ctx.retention,
  }
end

-- Operations of a flush ------------------------------------------------------

local function skip_key(pfx)
  return pfx .. ':flush:skip'
end

local function op_guard(a)
  local offkey, n = a[3], tonumber(a[4])
  local at_start, at_next, diff = true, true, nil
  local batchkey, batch = a[5 + 3 * n], a[6 + 3 * n]
  if batchkey ~= '' and redis.call('GET', batchkey) == batch then
    redis.call('SET', skip_key(a[2]), '1')
    return 'applied'
  end
  for k = 0, n - 1 do
    local member, start, nxt = a[5 + 3 * k], tonumber(a[6 + 3 * k]), tonumber(a[7 + 3 * k])
    local stored = tonumber(redis.call('HGET', offkey, member) or '-1')
    if stored ~= start then
      at_start = false
      diff = diff or (member .. ' recorded ' .. fmt_int(stored) .. ', flush covers ' ..
                      fmt_int(start) .. '..' .. fmt_int(nxt))
    end
    if stored ~= nxt then at_next = false end
  end
  if at_start then
    redis.call('DEL', skip_key(a[2]))
    return 'apply'
  end
  redis.call('SET', skip_key(a[2]), '1')
  if at_next then return 'applied' end
  return 'conflict: ' .. diff
end

local function skipped(pfx)
  return redis.call('EXISTS', skip_key(pfx)) == 1
end

local function op_apply(a)
  if skipped(a[2]) then return 0 end
  local ctx = {
    pfx = a[2], clock = tonumber(a[3]), wall = a[4], res = tonumber(a[5]),
    retention = tonumber(a[6]),
  }
  local windows, i = read_windows(a, 7)
  local nrows = tonumber(a[i]); i = i + 1
  for _ = 1, nrows do
    local tenant, channel, queue, leaf = a[i], a[i + 1], a[i + 2], a[i + 3]
    local nb = tonumber(a[i + 4]); i = i + 5
    local row = new_row(ctx, tenant, channel .. ':' .. queue)
    if leaf == '1' then
      redis.call('SADD', ctx.pfx .. ':tenants', tenant)
      redis.call('SADD', row.rp .. 'dims', row.dim)
    end
    if nb > 0 then
      redis.call('HSET', row.rp .. 'seen', row.dim, fmt_int(ctx.clock))
    end
    local wins = {}
    for k, w in ipairs(windows) do wins[k] = window_load(row, w) end
    for _ = 1, nb do
      local start, nf = tonumber(a[i]), tonumber(a[i + 1]); i = i + 2
      local delta = {}
      for _ = 1, nf do
        delta[a[i]] = tonumber(a[i + 1]); i = i + 2
      end
      bucket_apply(row, start, delta)
      if not first_bucket(row) or start < row.first then
        row.first = start
        redis.call('HSET', first_key(row), row.dim, fmt_int(start))
      end
      for k, w in ipairs(windows) do
        local win = wins[k]
        if start > win.hi - w.ms and start <= win.hi then
          win.changed = add_into(win.st, delta, 1, win.dirty) or win.changed
        end
      end
    end
    for k, w in ipairs(windows) do window_store(row, w, wins[k]) end
  end
  return nrows
end

local function op_live(a)
  local pfx, i = a[2], 4
  if skipped(pfx) then
    redis.call('DEL', skip_key(pfx))
    return 0
  end
  local n = tonumber(a[i]); i = i + 1
  for _ = 1, n do
    local lk = row_prefix(pfx, a[i]) .. 'live:' .. a[i + 1] .. ':' .. a[i + 2]
    local names = { 'open_tickets', 'waiting_dms', 'waiting_calls' }
    for k = 1, 3 do
      local d = tonumber(a[i + 2 + k])
      if d ~= 0 then redis.call('HINCRBY', lk, names[k], d) end
    end
    i = i + 6
  end
  n = tonumber(a[i]); i = i + 1
  for _ = 1, n do
    local rp, dim = row_prefix(pfx, a[i]), a[i + 1] .. ':' .. a[i + 2]
    local ok = rp .. 'oldest:' .. dim
    if tonumber(a[i + 4]) < 0 then
      redis.call('ZREM', ok, a[i + 3])
      if redis.call('EXISTS', ok) == 0 then
        redis.call('SREM', rp .. 'waiting', dim)
        redis.call('HDEL', rp .. 'live:' .. dim, 'oldest_wait_ms')
      end
    else
      redis.call('ZADD', ok, a[i + 4], a[i + 3])
      redis.call('SADD', rp .. 'waiting', dim)
    end
    i = i + 5
  end
  local offkey = a[i]
  n = tonumber(a[i + 1]); i = i + 2
  for _ = 1, n do
    redis.call('HSET', offkey, a[i], a[i + 1])
    i = i + 2
  end
  if a[i] ~= '' then
    redis.call('SET', a[i], a[i + 1], 'PX', 86400000)
  end
  return 1
end

-- The rows of a tenant: its leaves and their roll-ups.
local function tenant_rows(pfx, tenant)
  local rows, seen = {}, {}
  for _, dim in ipairs(redis.call('SMEMBERS', row_prefix(pfx, tenant) .. 'dims')) do
    local c, q = string.match(dim, '^([^:]*):(.*)$')
    for _, r in ipairs({ dim, c .. ':_all', '_all:' .. q, '_all:_all' }) do
      if not seen[r] then seen[r] = true; rows[#rows + 1] = r end
    end
  end
  return rows
end

local function refresh_oldest(row, clock)
  local lk = row.rp .. 'live:' .. row.dim
  local first = redis.call('ZRANGE', row.rp .. 'oldest:' .. row.dim, 0, 0, 'WITHSCORES')
  if #first == 0 then
    redis.call('HDEL', lk, 'oldest_wait_ms')
  else
    redis.call('HSET', lk, 'oldest_wait_ms', fmt_int(math.max(0, clock - tonumber(first[2]))))
  end
end

-- At most this many arguments go to one unpack (Lua's C stack holds 8000).
local UNPACK_MAX = 4000

-- cmd key a[i .. i + n - 1], in slices unpack can take.
local function call_slice(cmd, key, a, i, n)
  local last = i + n - 1
  for k = i, last, UNPACK_MAX do
    redis.call(cmd, key, unpack(a, k, math.min(k + UNPACK_MAX - 1, last)))
  end
end

local function op_corr(a)
  if skipped(a[2]) then return 0 end
  local key = a[3]
  if a[4] == '1' then redis.call('DEL', key) end
  if #a > 4 then call_slice('RPUSH', key, a, 5, #a - 4) end
  return 1
end

local function op_tick(a)
  local ctx = {
    pfx = a[2], clock = tonumber(a[3]), wall = a[4], res = tonumber(a[5]),
    retention = tonumber(a[6]),
  }
  local do_slide = a[7] == '1'
  local windows, i = read_windows(a, 8)
  local scan = redis.call('SSCAN', ctx.pfx .. ':tenants', a[i], 'COUNT', a[i + 1])
  local n = 0
  for _, tenant in ipairs(scan[2]) do
    local rp = row_prefix(ctx.pfx, tenant)
    for _, dim in ipairs(redis.call('SMEMBERS', rp .. 'waiting')) do
      refresh_oldest(new_row(ctx, tenant, dim), ctx.clock)
      n = n + 1
    end
    if do_slide then
      for _, dim in ipairs(tenant_rows(ctx.pfx, tenant)) do
        local row = new_row(ctx, tenant, dim)
        for _, w in ipairs(windows) do
          window_store(row, w, window_load(row, w))
        end
      end
    end
  end
  return { n, scan[1] }
end

local function op_rows(a)
  local out = {}
  for _, tenant in ipairs(redis.call('SMEMBERS', a[2] .. ':tenants')) do
    for _, dim in ipairs(redis.call('SMEMBERS', row_prefix(a[2], tenant) .. 'dims')) do
      out[#out + 1] = tenant
      out[#out + 1] = dim
    end
  end
  return out
end

-- The value of a KPI field from summed raw fields, as the KPI hash has it.
local function kpi_value(st, field)
  local kv = kpi_fields(st, '0')
  for k = 1, #kv, 2 do
    if kv[k] == field then return tonumber(kv[k + 1]) end
  end
  return nil
end

local function sum_counts(h, counts)
  local n = 0
  for _, c in ipairs(counts) do n = n + (tonumber(h[c]) or 0) end
  return n
end

local function hash_of(key)
  local flat = redis.call('HGETALL', key)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end

-- Mean and sample stddev of a KPI field over slice-long spans of buckets
-- before the current window (slices with fewer than min_samples left out).
local function slice_stats(rp, dim, field, counts, clock, res, span, slice, min_samples)
  local hi = clock - clock % res
  local vals = {}
  for j = 1, span / slice do
    local last = hi - j * slice
    local st = {}
    for s = last - slice + res, last, res do
      add_into(st, hgetall_num(rp .. 'bkt:' .. fmt_int(res) .. ':' .. fmt_int(s) .. ':' .. dim), 1)
    end
    local v = kpi_value(st, field)
    if v ~= nil and sum_counts(st, counts) >= min_samples then vals[#vals + 1] = v end
  end
  if #vals < 2 then return false, false, #vals end
  local mean = 0
  for _, v in ipairs(vals) do mean = mean + v end
  mean = mean / #vals
  local ss = 0
  for _, v in ipairs(vals) do ss = ss + (v - mean) ^ 2 end
  return fmt_num(mean), fmt_num(math.sqrt(ss / (#vals - 1))), #vals
end

local function op_alert_read(a)
  local pfx, clock, res, n = a[2], tonumber(a[3]), tonumber(a[4]), tonumber(a[5])
  local i, out = 6, {}
  for _ = 1, n do
    local tenant, dim, src, field, window = a[i], a[i + 1], a[i + 2], a[i + 3], a[i + 4]
    local nc = tonumber(a[i + 5]); i = i + 6
    local counts = {}
    for k = 1, nc do counts[k] = a[i + k - 1] end
    i = i + nc
    local baseline, span, slice, min_samples = a[i], tonumber(a[i + 1]), tonumber(a[i + 2]), tonumber(a[i + 3])
    i = i + 4
    local rp = row_prefix(pfx, tenant)
    local r = { false, 0, false, 0, false, false, 0 }
    if src == 'k' or src == 'z' then
      local h = hash_of(rp .. 'kpi:' .. window .. ':' .. dim)
      r[1] = h[field] or false
      r[2] = sum_counts(h, counts)
      if baseline ~= '' then
        local b = hash_of(rp .. 'kpi:' .. baseline .. ':' .. dim)
        r[3] = b[field] or false
        r[4] = sum_counts(b, counts)
      end
      if src == 'z' then
        r[5], r[6], r[7] = slice_stats(rp, dim, field, counts, clock, res, span, slice, min_samples)
      end
    elseif src == 'l' then
      r[1] = redis.call('HGET', rp .. 'live:' .. dim, field)
    else
      r[1] = redis.call('HGET', rp .. 'seen', dim)
    end
    for k = 1, 7 do out[#out + 1] = r[k] end
  end
  return out
end

local function op_alert_write(a)
  local pfx, maxlen, n = a[2], a[3], tonumber(a[4])
  local i, ids = 5, {}
  for _ = 1, n do
    local rp = row_prefix(pfx, a[i])
    if a[i + 2] == '' then
      redis.call('HDEL', rp .. 'alerts:active', a[i + 1])
    else
      redis.call('HSET', rp .. 'alerts:active', a[i + 1], a[i + 2])
    end
    if a[i + 3] == '1' then
      ids[#ids + 1] = redis.call('XADD', rp .. 'alerts', 'MAXLEN', '~', maxlen, '*',
                                 'fingerprint', a[i + 1], 'alert', a[i + 4])
      redis.call('PUBLISH', pfx .. ':alerts', a[i + 4])
    end
    i = i + 5
  end
  return ids
end

local op = ARGV[1]
if op == 'rows' then
  return op_rows(ARGV)
elseif op == 'alert_read' then
  return op_alert_read(ARGV)
elseif op == 'alert_write' then
  return op_alert_write(ARGV)
elseif op == 'guard' then
  return op_guard(ARGV)
elseif op == 'apply' then
  return op_apply(ARGV)
elseif op == 'corr' then
  return op_corr(ARGV)
elseif op == 'live' then
  return op_live(ARGV)
elseif op == 'tick' then
  return op_tick(ARGV)
end
return redis.error_reply('flush.lua: unknown operation ' .. tostring(op))
