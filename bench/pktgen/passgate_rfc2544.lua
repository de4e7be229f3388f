-- RFC 2544 section 26.1 throughput search for passgate with pktgen-dpdk's
-- Lua API: binary search on port 0's rate (percent of line rate) for the
-- highest rate at which port 1 receives what port 0 sent, and the highest
-- at 0.5 % loss. Inside-to-outside only: pktgen cannot answer translated
-- packets (use passgate-gen on the NICs for both directions).
-- Run passgate_nat.pkt first (range mode and warm-up), then:
--   lua 'dofile("passgate_rfc2544.lua")'
package.path = package.path .. ";?.lua;test/?.lua;app/?.lua;"
require "Pktgen"

local trial_ms = 5000   -- each trial long enough to be stable
local drain_ms = 2000   -- RFC 2544 section 23: wait 2 s for stragglers
local settle_ms = 2000  -- and let the DUT settle before the next trial
local pdr_loss = 0.005
local precision = 0.5   -- stop when the bounds are this close (percent of line rate)

local function trial(rate)
  pktgen.clr()
  pktgen.set("0", "rate", rate)
  pktgen.start("0")
  pktgen.delay(trial_ms)
  pktgen.stop("0")
  pktgen.delay(drain_ms)
  local tx = pktgen.portStats("0", "port")[0].opackets
  local rx = pktgen.portStats("1", "port")[1].ipackets
  local loss = tx > 0 and (tx - rx) / tx or 0
  printf("rate %6.2f%%: sent %d received %d loss %.4f%%\n", rate, tx, rx, loss * 100)
  pktgen.delay(settle_ms)
  return loss
end

local function search(accepted_loss)
  local lo, hi = 0, 100
  while hi - lo > precision do
    local mid = (lo + hi) / 2
    if trial(mid) <= accepted_loss then lo = mid else hi = mid end
  end
  return lo
end

local ndr = search(0)
local pdr = search(pdr_loss)
printf("NDR %.2f%% of line rate, PDR(0.5%%) %.2f%% of line rate\n", ndr, pdr)
