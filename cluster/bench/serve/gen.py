import json, random, sys
def config(n, judge):
    ms=[]
    for i in range(n):
        ms.append({"name":f"metric_{i}","query":{"type":"prometheus","customInlineTemplate":f"PromQL:sum(rate(m{i}{{version=\"${{scope}}\"}}[1m]))","serviceType":"prometheus"},
                   "groups":["latency" if i%2==0 else "errors"],
                   "analysisConfigurations":{"canary":{"direction":"increase"}},"scopeName":"default"})
    return {"name":"bench","configVersion":"1","applications":["app"],"judge":{"name":judge,"judgeConfigurations":{}},
            "metrics":ms,"templates":{},"classifier":{"groupWeights":{"latency":50,"errors":50}}}
def pairs(n, pts, rng):
    out=[]
    for i in range(n):
        c=[round(0.1+0.02*rng.random(),6) for _ in range(pts)]
        e=[round((0.1+0.02*rng.random())*(1.3 if i%5==0 else 1.0),6) for _ in range(pts)]
        c[3]="NaN"
        out.append({"name":f"metric_{i}","id":f"id-{i}","tags":{},"values":{"control":c,"experiment":e},
                    "scopes":{"control":{"startTimeIso":"2025-12-06T00:00:00Z","startTimeMillis":1764979200000,"stepMillis":60000}},
                    "attributes":{"control":{"query":"q"}}})
    return out
rng=random.Random(1)
for n,tag in [(10,"10"),(4000,"4000")]:
    p=pairs(n,60,rng)
    json.dump({"canaryConfig":config(n,"RemoteJudge-v1.0"),"scoreThresholds":{"pass":75.0,"marginal":50.0},"metricSetPairList":p},open(f"body{tag}.json","w"))
    json.dump(config(n,"NetflixACAJudge-v1.0"),open(f"config{tag}.json","w"))
    json.dump(p,open(f"pairs{tag}.json","w"))
