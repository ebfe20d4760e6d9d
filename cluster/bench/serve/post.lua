-- POST /judge with a 10-metric, 60 vs 60 RemoteJudgeRequest (Kayenta's shape).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("body10.json", "r")
wrk.body = f:read("*a")
f:close()
