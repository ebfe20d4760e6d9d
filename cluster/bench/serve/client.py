# Sends N POST /judge requests with body10.json (from gen.py) on one
# keep-alive connection, checking each answer is a 200; for callgrind runs
# over a fixed number of requests (cg.sh).
# Usage: python3 client.py HOST:PORT N
import http.client, sys
addr, n = sys.argv[1], int(sys.argv[2])
host, port = addr.rsplit(":", 1)
body = open("body10.json", "rb").read()
c = http.client.HTTPConnection(host, int(port))
for _ in range(n):
    c.request("POST", "/judge", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    assert r.status == 200, (r.status, data[:200])
print(f"{n} judgments, {len(data)} bytes each")
