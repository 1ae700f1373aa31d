-- wrk script: POST the request body in file $WRK_BODY (written by bench/wrk_bodies.py).
-- For a binary-tensor body, $WRK_HLEN is its Inference-Header-Content-Length.
--   WRK_BODY=bodies/cnn.json wrk -t2 -c8 -d10s --latency -s paddlehot_cli/bench/wrk_body.lua URL
local file = assert(io.open(assert(os.getenv("WRK_BODY"), "set WRK_BODY"), "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
local hlen = os.getenv("WRK_HLEN")
if hlen and hlen ~= "" then
  wrk.headers["Content-Type"] = "application/octet-stream"
  wrk.headers["Inference-Header-Content-Length"] = hlen
else
  wrk.headers["Content-Type"] = "application/json"
end
