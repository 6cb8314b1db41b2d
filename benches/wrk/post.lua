-- POSTs the JSON bodies of $BODIES (one per line) in turn, e.g. the engine mix's transactions:
--   BODIES=/tmp/single.jsonl wrk -t1 -c64 -d10s -s benches/wrk/post.lua http://127.0.0.1:PORT/v1/evaluate
local bodies = {}
for line in io.lines(os.getenv("BODIES")) do
  if #line > 0 then bodies[#bodies + 1] = line end
end
local i = 0
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, bodies[i])
end
