-- bench/capacity.py's load: one wrk thread per connection, each walking a shuffled schedule of request kinds
-- whose shares are the traffic mix (or one kind at 100 %, for the per-scenario CPU figures).
--
-- wrk -t C -c C -s bench/capacity_mix.lua URL -- <kv key> <staff token> <order path>
--     <product id> <search> <titles,> <customers,> <kind=weight,...> <threads>
--
-- One connection per thread, so response() always answers the request() just sent: a rental is rented, then
-- returned by the same thread (the rentals bench's cycle). Counts per kind go to RESULT {...} at the end.

local created = 0
local all = {}
local KINDS = {"store_cached", "store_uncached", "kv_get_hit", "kv_get_miss", "kv_put", "order", "rental",
               "trading_list"}

function setup(thread)
  created = created + 1
  thread:set("tid", created)
  table.insert(all, thread)
end

local function split(text)
  local out = {}
  for item in string.gmatch(text, "[^,]+") do table.insert(out, item) end
  return out
end

function init(args)
  kv_key, token, order_path, product, search = args[1], args[2], args[3], args[4], args[5]
  local titles = split(args[6])
  local customers = split(args[7])
  local threads = tonumber(args[9])
  math.randomseed(tid * 7919 + os.time())
  prefix = tostring(tid) .. "-" .. tostring(math.random(1, 2147483647))
  schedule = {}
  for _, pair in ipairs(split(args[8])) do
    local kind, weight = string.match(pair, "([%w_]+)=(%d+)")
    for _ = 1, tonumber(weight) do table.insert(schedule, kind) end
  end
  for i = #schedule, 2, -1 do  -- Fisher-Yates: each thread interleaves the kinds in its own order
    local j = math.random(1, i)
    schedule[i], schedule[j] = schedule[j], schedule[i]
  end
  mine = {}
  for i, c in ipairs(customers) do
    if (i - 1) % threads == tid - 1 then table.insert(mine, c) end
  end
  title = titles[((tid - 1) % #titles) + 1]
  kv_hdr = {["Authorization"] = "Bearer " .. kv_key, ["Content-Type"] = "application/json"}
  staff_hdr = {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}
  pos, n, rents, rental, last, returning, first_bad = 0, 0, 0, nil, nil, false, ""
  for _, kind in ipairs(KINDS) do
    _G["n_" .. kind] = 0
    _G["bad_" .. kind] = 0
  end
end

local ORDER_BODY = '{"items": [{"product_id": %s, "quantity": 1}], "customer_name": "Capacity Buyer", '
  .. '"phone": "+91 98765 43210", "address": "1 Loopback Road"}'

function request()
  pos = pos % #schedule + 1
  last = schedule[pos]
  n = n + 1
  if last == "store_cached" then
    return wrk.format("GET", "/s/demo-shop/")
  elseif last == "store_uncached" then
    return wrk.format("GET", "/s/demo-shop/?q=" .. search)
  elseif last == "kv_get_hit" then
    return wrk.format("GET", "/api/kv/keys/config/limits", kv_hdr)
  elseif last == "kv_get_miss" then  -- a key never read before: a cache miss, one indexed read, the absence cached
    return wrk.format("GET", "/api/kv/keys/miss/" .. prefix .. "/" .. n, kv_hdr)
  elseif last == "kv_put" then
    return wrk.format("PUT", "/api/kv/keys/cap/" .. prefix .. "/" .. n, kv_hdr,
      '{"value": {"n": 1, "text": "bazaar capacity payload", "tags": ["a", "b", "c"]}}')
  elseif last == "order" then
    local hdr = {["Content-Type"] = "application/json", ["Idempotency-Key"] = "cap-" .. prefix .. "-" .. n}
    return wrk.format("POST", order_path, hdr, string.format(ORDER_BODY, product))
  elseif last == "rental" then
    returning = rental ~= nil
    if returning then
      return wrk.format("POST", "/api/rentals/rentals/" .. rental .. "/return", staff_hdr, "")
    end
    -- 9 rentals x 2.00 stay within a customer's 20.00 limit (a 10th or 11th would still pass; leave room)
    local c = mine[math.floor(rents / 9) + 1] or mine[#mine]
    rents = rents + 1
    return wrk.format("POST", "/api/rentals/rentals", staff_hdr,
      '{"customer_id":' .. c .. ',"title_id":' .. title .. '}')
  else
    return wrk.format("GET", "/api/trading/pokemon?limit=50")
  end
end

function response(status, headers, body)
  local kind = last
  local ok = status < 400
  if kind == "kv_get_miss" then ok = status == 404 end
  if kind == "rental" then
    if returning then
      rental = nil  -- returned, or refused: either way this thread rents again next time
    elseif status == 201 then
      rental = string.match(body, '"id":%s*(%d+)')
    end
  end
  _G["n_" .. kind] = _G["n_" .. kind] + 1
  if not ok then
    _G["bad_" .. kind] = _G["bad_" .. kind] + 1
    if first_bad == "" then first_bad = kind .. " " .. status .. " " .. string.sub(body or "", 1, 120) end
  end
end

function done(summary, latency, requests)
  local parts = {}
  for _, kind in ipairs(KINDS) do
    local count, bad = 0, 0
    for _, t in ipairs(all) do
      count = count + t:get("n_" .. kind)
      bad = bad + t:get("bad_" .. kind)
    end
    table.insert(parts, string.format('"%s": [%d, %d]', kind, count, bad))
  end
  io.write("RESULT {" .. table.concat(parts, ", ") .. "}\n")
  for _, t in ipairs(all) do
    local bad = t:get("first_bad")
    if bad ~= "" then io.write("FIRST_BAD " .. string.gsub(bad, "\n", " ") .. "\n") break end
  end
end
