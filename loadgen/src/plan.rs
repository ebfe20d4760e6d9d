//! What a load run should do: targets and their weights, how the weights
//! change over time, the arrival process, and when to stop. Pure data plus
//! validation and the parsers for the command-line syntax; nothing here does
//! I/O, so all of it is unit-tested without a runtime.

use std::time::Duration;

use hyper::Uri;

use crate::Error;

/// One HTTP endpoint: an `http://` URL split into what a connection needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The URL as the user wrote it.
    pub url: String,
    /// Host name or IP literal (without brackets).
    pub host: String,
    /// TCP port (80 when the URL has none).
    pub port: u16,
    /// Value for the `Host` header.
    pub authority: String,
    /// Origin-form request target: path and query, `/` when empty.
    pub path: String,
}

impl Endpoint {
    /// Parses an `http://host[:port][/path][?query]` URL.
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("not a URL ({e}); expected http://HOST[:PORT][/PATH]"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err("https is not supported; use http:// (plain HTTP/1.1)".into());
            }
            Some(other) => return Err(format!("scheme {other:?} is not supported; use http://")),
            None => return Err("no scheme; expected http://HOST[:PORT][/PATH]".into()),
        }
        let authority = uri
            .authority()
            .ok_or("no host; expected http://HOST[:PORT][/PATH]")?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            return Err("empty host".into());
        }
        let path = uri
            .path_and_query()
            .map(|p| p.as_str())
            .filter(|p| !p.is_empty())
            .unwrap_or("/");
        Ok(Endpoint {
            url: url.to_string(),
            host: host.to_string(),
            port: authority.port_u16().unwrap_or(80),
            authority: authority.as_str().to_string(),
            path: path.to_string(),
        })
    }

    /// Whether the host is a loopback address (or `localhost`).
    pub fn is_loopback(&self) -> bool {
        if self.host.eq_ignore_ascii_case("localhost") {
            return true;
        }
        self.host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
    }
}

/// A version that receives a weighted share of the requests.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Version name used in reports, e.g. `canary`.
    pub name: String,
    /// Where its requests go.
    pub endpoint: Endpoint,
    /// Relative weight at the start of the run (not necessarily a percentage).
    pub weight: f64,
}

impl Target {
    /// Parses `NAME=URL[@WEIGHT]`; the weight defaults to 1.
    pub fn parse(arg: &str) -> Result<Target, Error> {
        let bad = |p: &str| Error::invalid("--target", arg, p);
        let (name, rest) = arg.split_once('=').ok_or_else(|| {
            bad("expected NAME=URL[@WEIGHT], e.g. canary=http://127.0.0.1:8080/@5")
        })?;
        let name = name.trim();
        check_name(name).map_err(|p| bad(&p))?;
        let (url, weight) = match rest.rsplit_once('@') {
            Some((url, w)) => {
                let w: f64 = w
                    .trim()
                    .parse()
                    .map_err(|_| bad(&format!("weight {w:?} is not a number")))?;
                (url, w)
            }
            None => (rest, 1.0),
        };
        let endpoint = Endpoint::parse(url.trim()).map_err(|p| bad(&p))?;
        Ok(Target {
            name: name.to_string(),
            endpoint,
            weight,
        })
    }
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty target name".into());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(format!(
            "target name {name:?} may only contain letters, digits, '-', '_' and '.'"
        ));
    }
    Ok(())
}

/// Who splits the traffic between versions.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// loadgen picks a target for every request by weight.
    Weighted(Vec<Target>),
    /// All requests go to one gateway (e.g. an Istio ingress) that splits
    /// them; each response is attributed to the version named in `header`.
    Gateway {
        /// The gateway URL.
        endpoint: Endpoint,
        /// Response header naming the version that served the request.
        header: String,
    },
}

/// One step of a weight schedule: these weights, for this long.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightStep {
    /// How long the step lasts; `None` (only allowed on the last step) means
    /// until the end of the run.
    pub duration: Option<Duration>,
    /// New weights by target name; targets not named keep their weight.
    pub weights: Vec<(String, f64)>,
}

impl WeightStep {
    /// Parses `[DURATION:]NAME=WEIGHT,NAME=WEIGHT...`, e.g. `2m:canary=5,production=95`.
    pub fn parse(arg: &str) -> Result<WeightStep, Error> {
        let bad = |p: &str| Error::invalid("--step", arg, p);
        let (duration, list) = match arg.split_once(':') {
            Some((d, list)) => (Some(parse_duration(d.trim()).map_err(|p| bad(&p))?), list),
            None => (None, arg),
        };
        let mut weights = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, w) = item
                .split_once('=')
                .ok_or_else(|| bad(&format!("{item:?} is not NAME=WEIGHT")))?;
            let w: f64 = w
                .trim()
                .parse()
                .map_err(|_| bad(&format!("weight {w:?} is not a number")))?;
            weights.push((name.trim().to_string(), w));
        }
        if weights.is_empty() {
            return Err(bad("no weights; expected [DURATION:]NAME=WEIGHT,..."));
        }
        Ok(WeightStep { duration, weights })
    }
}

/// A request rate over time: piecewise-linear between points, constant
/// before the first and after the last.
#[derive(Debug, Clone, PartialEq)]
pub struct RateProfile {
    points: Vec<(Duration, f64)>,
}

impl RateProfile {
    /// A constant rate in requests per second.
    pub fn constant(rate: f64) -> RateProfile {
        RateProfile {
            points: vec![(Duration::ZERO, rate)],
        }
    }

    /// A piecewise-linear ramp through `(time since start, requests per second)` points.
    pub fn ramp(points: Vec<(Duration, f64)>) -> RateProfile {
        RateProfile { points }
    }

    /// Parses `RATE` or `TIME=RATE,TIME=RATE,...` (e.g. `0s=100,30s=1000`).
    pub fn parse(arg: &str) -> Result<RateProfile, Error> {
        let bad = |p: &str| Error::invalid("--rate", arg, p);
        if !arg.contains('=') {
            let r: f64 = arg
                .trim()
                .parse()
                .map_err(|_| bad("expected requests per second, or TIME=RATE,TIME=RATE,..."))?;
            return Ok(RateProfile::constant(r));
        }
        let mut points = Vec::new();
        for item in arg.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (t, r) = item
                .split_once('=')
                .ok_or_else(|| bad(&format!("{item:?} is not TIME=RATE")))?;
            let t = parse_duration(t.trim()).map_err(|p| bad(&p))?;
            let r: f64 = r
                .trim()
                .parse()
                .map_err(|_| bad(&format!("rate {r:?} is not a number")))?;
            points.push((t, r));
        }
        Ok(RateProfile::ramp(points))
    }

    /// The points of the profile.
    pub fn points(&self) -> &[(Duration, f64)] {
        &self.points
    }

    fn validate(&self) -> Result<(), String> {
        if self.points.is_empty() {
            return Err("no rate given".into());
        }
        for (i, &(t, r)) in self.points.iter().enumerate() {
            if !(r.is_finite() && r > 0.0) {
                return Err(format!(
                    "rate {r} is not positive; open-loop needs a rate > 0 (omit --rate for closed-loop)"
                ));
            }
            if i > 0 && t <= self.points[i - 1].0 {
                return Err("ramp times must increase".into());
            }
        }
        Ok(())
    }

    /// Requests per second at `t` seconds after the start.
    pub fn rate_at(&self, t: f64) -> f64 {
        let pts = &self.points;
        let Some(&(t0, r0)) = pts.first() else {
            return 0.0;
        };
        if t <= t0.as_secs_f64() {
            return r0;
        }
        for w in pts.windows(2) {
            let (a, ra) = (w[0].0.as_secs_f64(), w[0].1);
            let (b, rb) = (w[1].0.as_secs_f64(), w[1].1);
            if t <= b {
                return ra + (rb - ra) * (t - a) / (b - a);
            }
        }
        pts.last().map(|p| p.1).unwrap_or(r0)
    }
}

/// How requests arrive.
#[derive(Debug, Clone, PartialEq)]
pub enum Arrival {
    /// Open loop, evenly spaced at the profile's rate.
    Constant(RateProfile),
    /// Open loop, exponential inter-arrival times at the profile's rate.
    Poisson(RateProfile),
    /// Closed loop: every connection sends its next request as soon as the
    /// previous one finished (maximum throughput).
    ClosedLoop,
}

impl Arrival {
    /// Short name used in reports.
    pub fn name(&self) -> &'static str {
        match self {
            Arrival::Constant(_) => "open-loop constant",
            Arrival::Poisson(_) => "open-loop poisson",
            Arrival::ClosedLoop => "closed-loop",
        }
    }
}

/// Everything a load run needs. Build with [`Plan::new`] and adjust the
/// public fields; [`crate::run`] validates it before touching the network.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Who gets the traffic.
    pub targets: Targets,
    /// Weight steps applied one after the other from the start of the run.
    pub schedule: Vec<WeightStep>,
    /// The arrival process.
    pub arrival: Arrival,
    /// Stop after this long (the load phase; in-flight requests then finish).
    pub duration: Option<Duration>,
    /// Stop after this many requests have been sent (or dropped).
    pub requests: Option<u64>,
    /// Concurrent connections (closed loop) or the connection pool size
    /// (open loop); each may hold one connection per target.
    pub connections: usize,
    /// Open loop: requests allowed to wait for a free connection; beyond
    /// that they are dropped and counted.
    pub backlog: usize,
    /// Per-request timeout, connecting included.
    pub timeout: Duration,
    /// Length of the reporting intervals.
    pub interval: Duration,
    /// A request that starts later than this after its intended time counts
    /// as a late start.
    pub late_after: Duration,
    /// Seed of the weighted choice and the Poisson arrivals.
    pub seed: u64,
    /// Refuse targets that are not on loopback (tests set this).
    pub loopback_only: bool,
    /// Threads that run the connections. 1 (the default): all of them on the
    /// caller's runtime. N > 1: the caller's runtime keeps 1/N of them and
    /// N - 1 more threads, each with its own single-threaded runtime, run the
    /// rest, so a connection's wake-ups never cross threads. 0 counts as 1.
    pub threads: usize,
}

impl Plan {
    /// A plan with defaults: 64 connections, backlog 10000, 10 s timeout,
    /// 10 s intervals, late after 10 ms, seed 1, 1 thread. A duration or request
    /// count must still be set.
    pub fn new(targets: Targets, arrival: Arrival) -> Plan {
        Plan {
            targets,
            schedule: Vec::new(),
            arrival,
            duration: None,
            requests: None,
            connections: 64,
            backlog: 10_000,
            timeout: Duration::from_secs(10),
            interval: Duration::from_secs(10),
            late_after: Duration::from_millis(10),
            seed: 1,
            loopback_only: false,
            threads: 1,
        }
    }

    /// Target names in report order: the weighted targets, or nothing for a gateway.
    pub fn target_names(&self) -> Vec<String> {
        match &self.targets {
            Targets::Weighted(ts) => ts.iter().map(|t| t.name.clone()).collect(),
            Targets::Gateway { .. } => Vec::new(),
        }
    }

    /// Checks everything that can be checked without the network.
    pub fn validate(&self) -> Result<(), Error> {
        match &self.targets {
            Targets::Weighted(ts) => {
                if ts.is_empty() {
                    return Err(Error::NoTargets);
                }
                for (i, t) in ts.iter().enumerate() {
                    check_name(&t.name).map_err(|p| Error::invalid("--target", &t.name, p))?;
                    if ts[..i].iter().any(|o| o.name == t.name) {
                        return Err(Error::invalid(
                            "--target",
                            &t.name,
                            "target name given twice",
                        ));
                    }
                    self.check_endpoint("--target", &t.endpoint)?;
                }
                let initial: Vec<f64> = ts.iter().map(|t| t.weight).collect();
                check_weights(&initial).map_err(|problem| Error::Weights {
                    context: "given with --target".into(),
                    problem,
                })?;
                let names = self.target_names();
                let mut current = initial;
                for (i, step) in self.schedule.iter().enumerate() {
                    let context = format!("in --step {}", i + 1);
                    current = apply_named(&names, &current, &step.weights).map_err(|problem| {
                        Error::Weights {
                            context: context.clone(),
                            problem,
                        }
                    })?;
                    if step.duration.is_none() && i + 1 != self.schedule.len() {
                        return Err(Error::Weights {
                            context,
                            problem: "only the last step may omit its DURATION: prefix".into(),
                        });
                    }
                    if step.duration == Some(Duration::ZERO) {
                        return Err(Error::Weights {
                            context,
                            problem: "step duration must be positive".into(),
                        });
                    }
                }
            }
            Targets::Gateway { endpoint, header } => {
                if !self.schedule.is_empty() {
                    return Err(Error::StepsWithGateway);
                }
                self.check_endpoint("--gateway", endpoint)?;
                if hyper::header::HeaderName::from_bytes(header.as_bytes()).is_err() {
                    return Err(Error::invalid(
                        "--version-header",
                        header,
                        "not a valid header name",
                    ));
                }
            }
        }
        match &self.arrival {
            Arrival::Constant(p) | Arrival::Poisson(p) => p.validate().map_err(|problem| {
                Error::invalid("--rate", &format!("{:?}", p.points()), problem)
            })?,
            Arrival::ClosedLoop => {}
        }
        let duration_ok = self.duration.is_some_and(|d| !d.is_zero());
        let requests_ok = self.requests.is_some_and(|n| n > 0);
        if self.duration == Some(Duration::ZERO) {
            return Err(Error::invalid("--duration", "0", "must be positive"));
        }
        if self.requests == Some(0) {
            return Err(Error::invalid("--requests", "0", "must be positive"));
        }
        if !duration_ok && !requests_ok {
            return Err(Error::Unbounded);
        }
        if self.connections == 0 {
            return Err(Error::invalid(
                "--connections",
                "0",
                "need at least one connection",
            ));
        }
        if self.timeout.is_zero() {
            return Err(Error::invalid("--timeout", "0", "must be positive"));
        }
        if self.interval.is_zero() {
            return Err(Error::invalid("--interval", "0", "must be positive"));
        }
        Ok(())
    }

    fn check_endpoint(&self, flag: &'static str, e: &Endpoint) -> Result<(), Error> {
        if self.loopback_only && !e.is_loopback() {
            return Err(Error::invalid(
                flag,
                &e.url,
                "not a loopback address, and this run only allows loopback targets",
            ));
        }
        Ok(())
    }
}

/// Checks that weights are finite, non-negative and add up to something positive.
pub(crate) fn check_weights(weights: &[f64]) -> Result<(), String> {
    for &w in weights {
        if !w.is_finite() || w < 0.0 {
            return Err(format!("weight {w} must be a finite number >= 0"));
        }
    }
    if weights.iter().sum::<f64>() <= 0.0 {
        return Err("weights add up to 0; at least one target needs a positive weight".into());
    }
    Ok(())
}

/// Applies named weights on top of `current` (indexed like `names`).
pub(crate) fn apply_named(
    names: &[String],
    current: &[f64],
    named: &[(String, f64)],
) -> Result<Vec<f64>, String> {
    let mut next = current.to_vec();
    for (name, w) in named {
        let i = names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| format!("unknown target {name:?} (targets: {})", names.join(", ")))?;
        next[i] = *w;
    }
    check_weights(&next)?;
    Ok(next)
}

/// Parses `500ms`, `10s`, `1.5s`, `2m`, `1h`, `250us`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 500ms, 10s, 2m, 1h"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1e3,
        "us" => n / 1e6,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        u => {
            return Err(format!(
                "unknown duration unit {u:?} in {s:?}; use us, ms, s, m or h"
            ));
        }
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{s:?} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(name: &str, w: f64) -> Target {
        Target {
            name: name.into(),
            endpoint: Endpoint::parse("http://127.0.0.1:8080/").expect("url"),
            weight: w,
        }
    }

    fn plan(ts: Vec<Target>) -> Plan {
        let mut p = Plan::new(Targets::Weighted(ts), Arrival::ClosedLoop);
        p.duration = Some(Duration::from_secs(1));
        p
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("3 weeks").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn target_syntax() {
        let t = Target::parse("canary=http://127.0.0.1:9000/api?x=1@5").expect("parse");
        assert_eq!(t.name, "canary");
        assert_eq!(t.weight, 5.0);
        assert_eq!(t.endpoint.port, 9000);
        assert_eq!(t.endpoint.path, "/api?x=1");
        assert_eq!(t.endpoint.authority, "127.0.0.1:9000");
        let t = Target::parse("prod=http://localhost").expect("parse");
        assert_eq!(
            (t.weight, t.endpoint.port, t.endpoint.path.as_str()),
            (1.0, 80, "/")
        );
        assert!(Target::parse("http://127.0.0.1:1/").is_err());
        assert!(Target::parse("a=https://127.0.0.1/").is_err());
        assert!(Target::parse("a=not a url").is_err());
        assert!(Target::parse("a=http://127.0.0.1/@x").is_err());
        let v6 = Endpoint::parse("http://[::1]:81/").expect("v6");
        assert_eq!(v6.host, "::1");
        assert!(v6.is_loopback());
    }

    #[test]
    fn step_syntax() {
        let s = WeightStep::parse("2m:canary=5,production=95").expect("parse");
        assert_eq!(s.duration, Some(Duration::from_secs(120)));
        assert_eq!(
            s.weights,
            vec![("canary".into(), 5.0), ("production".into(), 95.0)]
        );
        let s = WeightStep::parse("canary=50").expect("parse");
        assert_eq!(s.duration, None);
        assert!(WeightStep::parse("2m:").is_err());
        assert!(WeightStep::parse("2x:a=1").is_err());
    }

    #[test]
    fn ramp_interpolates() {
        let r = RateProfile::parse("0s=100,10s=200,20s=200").expect("parse");
        assert_eq!(r.rate_at(0.0), 100.0);
        assert!((r.rate_at(5.0) - 150.0).abs() < 1e-9);
        assert_eq!(r.rate_at(15.0), 200.0);
        assert_eq!(r.rate_at(100.0), 200.0);
        assert_eq!(
            RateProfile::parse("20000").expect("parse").rate_at(3.0),
            20000.0
        );
    }

    #[test]
    fn bad_plans_are_refused() {
        assert!(plan(vec![target("a", 1.0)]).validate().is_ok());
        let e = plan(vec![target("a", 0.0), target("b", 0.0)]).validate();
        assert!(matches!(e, Err(Error::Weights { .. })), "{e:?}");
        assert!(
            plan(vec![target("a", -1.0), target("b", 2.0)])
                .validate()
                .is_err()
        );
        assert!(
            plan(vec![target("a", 1.0), target("a", 1.0)])
                .validate()
                .is_err()
        );
        assert!(matches!(plan(vec![]).validate(), Err(Error::NoTargets)));

        let mut p = plan(vec![target("a", 1.0)]);
        p.duration = None;
        assert!(matches!(p.validate(), Err(Error::Unbounded)));

        let mut p = plan(vec![target("a", 1.0)]);
        p.arrival = Arrival::Constant(RateProfile::constant(0.0));
        let msg = p.validate().expect_err("rate 0").to_string();
        assert!(
            msg.contains("--rate") && msg.contains("not positive"),
            "{msg}"
        );

        let mut p = plan(vec![target("a", 1.0)]);
        p.schedule = vec![WeightStep::parse("1s:b=1").expect("step")];
        let msg = p.validate().expect_err("unknown").to_string();
        assert!(msg.contains("unknown target \"b\""), "{msg}");

        let mut p = plan(vec![target("a", 1.0)]);
        p.schedule = vec![
            WeightStep::parse("a=1").expect("step"),
            WeightStep::parse("a=2").expect("step"),
        ];
        assert!(p.validate().is_err());

        let mut p = plan(vec![Target {
            endpoint: Endpoint::parse("http://10.1.2.3/").expect("url"),
            ..target("a", 1.0)
        }]);
        assert!(p.validate().is_ok());
        p.loopback_only = true;
        let msg = p.validate().expect_err("remote").to_string();
        assert!(msg.contains("loopback"), "{msg}");
    }
}
