//! Fault specs (`--fault KIND=VALUE` and the admin API) and the per-request
//! plan they produce.
//!
//! This module is pure: a [`FaultSet`] turns a time and a random source into
//! a [`Plan`] (how long to delay, whether to fail, hang, burn CPU, leak or
//! crash). The server carries the plan out. It does not sleep, allocate the
//! leak or exit itself, so every rule here is unit-tested without a runtime.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::{Rng, RngExt};
use rand_distr::{Distribution, LogNormal};

use crate::units::{
    MAX_DURATION, format_bytes, format_duration, parse_bytes, parse_duration, parse_fraction,
};

/// The grammar of every fault kind, shown when a spec is refused.
pub const FAULT_SYNTAX: &str = "\
latency=DELAY[@FRACTION] (DELAY = 50ms | lognormal:MEDIAN:SIGMA), \
errors=FRACTION[:STATUS] (STATUS 500..=599, default 500), \
cpu=DURATION, \
memory=SIZE/req | SIZE/s, \
slow_start=DURATION[:EXTRA_LATENCY][:decay=TAU] (not ready for DURATION; \
extra latency, default 100ms, fading linearly to 0 over DURATION, or with decay \
EXTRA*exp(-t/TAU) also after ready), \
crash=DURATION | Nreq, \
hang=FRACTION; \
FRACTION is 0.01 or 1%, SIZE is 4096, 4KiB, 1MiB";

/// Extra latency at the first instant of a slow start, unless the spec says.
pub const DEFAULT_SLOW_START_EXTRA: Duration = Duration::from_millis(100);

/// An exponentially decaying slow start ends (its extra latency is taken as
/// 0) after this many time constants: e^-20 is 2e-9 of the initial extra.
pub const SLOW_START_DECAY_END: u32 = 20;

/// One injectable fault. Its text form ([`FromStr`] / [`fmt::Display`]) is
/// the same on the command line and in the admin API.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Added delay for a `fraction` of requests.
    Latency {
        /// How long each affected request is delayed.
        delay: Delay,
        /// Share of requests delayed, 0 to 1.
        fraction: f64,
    },
    /// A `fraction` of requests answered with `status` (5xx).
    Errors {
        /// Share of requests failed, 0 to 1.
        fraction: f64,
        /// HTTP status they get, 500 to 599 (the spec's default is 500).
        status: u16,
    },
    /// Busy work on the serving thread for this long, every request.
    Cpu {
        /// CPU time burned per request.
        per_request: Duration,
    },
    /// Memory that is allocated, touched and never freed.
    Memory {
        /// Bytes leaked per request or per second.
        bytes: u64,
        /// Whether `bytes` is per request or per second.
        per: LeakRate,
    },
    /// Not ready for `duration` after the fault is set, and slower: without
    /// `decay` the extra latency falls linearly from `extra` to 0 over
    /// `duration`; with `decay` (the time constant tau) it is
    /// `extra * exp(-t / tau)`, t from when the fault was set, going on after
    /// readiness until [`SLOW_START_DECAY_END`] time constants (the
    /// simulator's slow-start model).
    SlowStart {
        /// How long `/readyz` fails, and the linear fade's length.
        duration: Duration,
        /// Extra latency at the instant the fault is set.
        extra: Duration,
        /// Time constant of an exponential fade instead of the linear one.
        decay: Option<Duration>,
    },
    /// The server stops abruptly (the binary exits non-zero).
    Crash {
        /// When it fires.
        after: CrashAfter,
    },
    /// A `fraction` of requests never answered while the server runs.
    Hang {
        /// Share of requests left hanging, 0 to 1.
        fraction: f64,
    },
}

/// How a latency fault's delay is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Delay {
    /// Always this long.
    Fixed(Duration),
    /// Lognormal with this median (`exp(mu)`) and shape `sigma`.
    LogNormal {
        /// The median delay.
        median: Duration,
        /// Shape: the standard deviation of the delay's logarithm.
        sigma: f64,
    },
}

/// What a memory leak is proportional to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeakRate {
    /// `bytes` per request served.
    PerRequest,
    /// `bytes` per second of wall-clock time.
    PerSecond,
}

/// When a crash fault fires, counted from when the fault was set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashAfter {
    /// After this much time.
    Elapsed(Duration),
    /// After this many requests.
    Requests(u64),
}

/// A fault spec that cannot be used, with the reason and the allowed form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid fault {spec:?}: {reason}; allowed: {FAULT_SYNTAX}")]
pub struct FaultSpecError {
    /// The spec as given.
    pub spec: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FromStr for Fault {
    type Err = FaultSpecError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        parse_fault(spec).map_err(|reason| FaultSpecError {
            spec: spec.to_string(),
            reason,
        })
    }
}

fn parse_fault(spec: &str) -> Result<Fault, String> {
    let (kind, value) = spec
        .split_once('=')
        .ok_or_else(|| "expected KIND=VALUE".to_string())?;
    let value = value.trim();
    match kind.trim() {
        "latency" => {
            let (delay, fraction) = match value.split_once('@') {
                Some((delay, fraction)) => (delay, parse_fraction(fraction)?),
                None => (value, 1.0),
            };
            let delay = match delay.strip_prefix("lognormal:") {
                Some(params) => {
                    let (median, sigma) = params.split_once(':').ok_or_else(|| {
                        "lognormal needs lognormal:MEDIAN:SIGMA, e.g. lognormal:50ms:0.5"
                            .to_string()
                    })?;
                    let median = parse_duration(median)?;
                    if median.is_zero() {
                        return Err("lognormal median must be above 0".to_string());
                    }
                    let sigma: f64 = sigma
                        .trim()
                        .parse()
                        .map_err(|_| format!("lognormal sigma {sigma:?} is not a number"))?;
                    if !sigma.is_finite() || sigma < 0.0 {
                        return Err(format!("lognormal sigma {sigma} must be >= 0"));
                    }
                    Delay::LogNormal { median, sigma }
                }
                None => Delay::Fixed(parse_duration(delay)?),
            };
            Ok(Fault::Latency { delay, fraction })
        }
        "errors" => {
            let (fraction, status) = match value.split_once(':') {
                Some((fraction, status)) => {
                    let status: u16 = status
                        .trim()
                        .parse()
                        .map_err(|_| format!("status {status:?} is not a number"))?;
                    (fraction, status)
                }
                None => (value, 500),
            };
            if !(500..=599).contains(&status) {
                return Err(format!("status {status} is not a 5xx code"));
            }
            Ok(Fault::Errors {
                fraction: parse_fraction(fraction)?,
                status,
            })
        }
        "cpu" => Ok(Fault::Cpu {
            per_request: parse_duration(value)?,
        }),
        "memory" => {
            let (size, per) = if let Some(size) = value.strip_suffix("/req") {
                (size, LeakRate::PerRequest)
            } else if let Some(size) = value.strip_suffix("/s") {
                (size, LeakRate::PerSecond)
            } else {
                return Err("memory needs SIZE/req or SIZE/s, e.g. 1KiB/req".to_string());
            };
            Ok(Fault::Memory {
                bytes: parse_bytes(size)?,
                per,
            })
        }
        "slow_start" | "slow-start" => {
            let mut parts = value.split(':');
            let duration = parse_duration(parts.next().unwrap_or_default())?;
            let (mut extra, mut decay) = (None, None);
            for part in parts {
                let part = part.trim();
                match part.strip_prefix("decay=") {
                    // decay=0 is allowed: no extra latency at all, the
                    // limit of exp(-t/tau) as tau goes to 0.
                    Some(tau) if decay.is_none() => decay = Some(parse_duration(tau)?),
                    None if extra.is_none() && decay.is_none() => {
                        extra = Some(parse_duration(part)?)
                    }
                    _ => {
                        return Err(format!(
                            "slow_start takes DURATION[:EXTRA][:decay=TAU]; unexpected {part:?}"
                        ));
                    }
                }
            }
            Ok(Fault::SlowStart {
                duration,
                extra: extra.unwrap_or(DEFAULT_SLOW_START_EXTRA),
                decay,
            })
        }
        "crash" => {
            let after = match value.strip_suffix("req") {
                Some(count) => {
                    let count: u64 = count.trim().parse().map_err(|_| {
                        format!("crash request count {count:?} is not a whole number")
                    })?;
                    if count == 0 {
                        return Err("crash request count must be at least 1".to_string());
                    }
                    CrashAfter::Requests(count)
                }
                None => CrashAfter::Elapsed(parse_duration(value)?),
            };
            Ok(Fault::Crash { after })
        }
        "hang" => Ok(Fault::Hang {
            fraction: parse_fraction(value)?,
        }),
        other => Err(format!("unknown fault kind {other:?}")),
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Latency { delay, fraction } => {
                match delay {
                    Delay::Fixed(d) => write!(f, "latency={}", format_duration(*d))?,
                    Delay::LogNormal { median, sigma } => {
                        write!(f, "latency=lognormal:{}:{sigma}", format_duration(*median))?
                    }
                }
                if *fraction < 1.0 {
                    write!(f, "@{fraction}")?;
                }
                Ok(())
            }
            Fault::Errors { fraction, status } => write!(f, "errors={fraction}:{status}"),
            Fault::Cpu { per_request } => write!(f, "cpu={}", format_duration(*per_request)),
            Fault::Memory { bytes, per } => {
                let per = match per {
                    LeakRate::PerRequest => "req",
                    LeakRate::PerSecond => "s",
                };
                write!(f, "memory={}/{per}", format_bytes(*bytes))
            }
            Fault::SlowStart {
                duration,
                extra,
                decay,
            } => {
                write!(
                    f,
                    "slow_start={}:{}",
                    format_duration(*duration),
                    format_duration(*extra)
                )?;
                match decay {
                    Some(tau) => write!(f, ":decay={}", format_duration(*tau)),
                    None => Ok(()),
                }
            }
            Fault::Crash { after } => match after {
                CrashAfter::Elapsed(d) => write!(f, "crash={}", format_duration(*d)),
                CrashAfter::Requests(n) => write!(f, "crash={n}req"),
            },
            Fault::Hang { fraction } => write!(f, "hang={fraction}"),
        }
    }
}

impl serde::Serialize for Fault {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Fault {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spec = String::deserialize(deserializer)?;
        spec.parse()
            .map_err(|err: FaultSpecError| serde::de::Error::custom(err))
    }
}

/// What the server does with one request of the work endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Plan {
    /// Never answer (until shutdown).
    pub hang: bool,
    /// Added delay (sleep), on top of the configured service time.
    pub delay: Duration,
    /// Busy work on the serving thread.
    pub cpu: Duration,
    /// Bytes to leak.
    pub leak: u64,
    /// Injected error status, if any.
    pub error: Option<u16>,
    /// This request is the one after which the server crashes.
    pub crash: bool,
}

/// A set of faults in force, with the instant they were set and the number of
/// requests planned since (for `crash=Nreq`).
#[derive(Debug)]
pub struct FaultSet {
    faults: Vec<Fault>,
    lognormals: Vec<Option<LogNormal<f64>>>,
    set_at: Instant,
    requests: AtomicU64,
}

impl FaultSet {
    /// These faults, set at `set_at`, with no requests counted yet.
    pub fn new(faults: Vec<Fault>, set_at: Instant) -> Self {
        let lognormals = faults
            .iter()
            .map(|fault| match fault {
                Fault::Latency {
                    delay: Delay::LogNormal { median, sigma },
                    ..
                } => LogNormal::new(median.as_secs_f64().ln(), *sigma).ok(),
                _ => None,
            })
            .collect();
        FaultSet {
            faults,
            lognormals,
            set_at,
            requests: AtomicU64::new(0),
        }
    }

    /// The faults in force.
    pub fn faults(&self) -> &[Fault] {
        &self.faults
    }

    /// When the set was set; time-based faults count from then.
    pub fn set_at(&self) -> Instant {
        self.set_at
    }

    /// Whether no fault is in force.
    pub fn is_empty(&self) -> bool {
        self.faults.is_empty()
    }

    /// True while a slow-start window is open.
    pub fn warming_up(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.set_at);
        self.faults
            .iter()
            .any(|fault| matches!(fault, Fault::SlowStart { duration, .. } if elapsed < *duration))
    }

    /// The reason to crash by time, if a time-based crash fault is due.
    pub fn crash_due(&self, now: Instant) -> Option<String> {
        let elapsed = now.saturating_duration_since(self.set_at);
        self.faults.iter().find_map(|fault| match fault {
            Fault::Crash {
                after: CrashAfter::Elapsed(after),
            } if elapsed >= *after => Some(format!("crash fault: {fault}")),
            _ => None,
        })
    }

    /// Bytes a `SIZE/s` leak should have allocated by `now` in total.
    pub fn leak_due_by(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.set_at).as_secs_f64();
        self.faults
            .iter()
            .map(|fault| match fault {
                Fault::Memory {
                    bytes,
                    per: LeakRate::PerSecond,
                } => (*bytes as f64 * elapsed) as u64,
                _ => 0,
            })
            .sum()
    }

    /// Decides what happens to one request of the work endpoint. Each fault
    /// draws independently, in the order given.
    pub fn plan<R: Rng + ?Sized>(&self, now: Instant, rng: &mut R) -> Plan {
        let mut plan = Plan::default();
        if self.faults.is_empty() {
            return plan;
        }
        let elapsed = now.saturating_duration_since(self.set_at);
        for (fault, lognormal) in self.faults.iter().zip(&self.lognormals) {
            match fault {
                Fault::Latency { delay, fraction } => {
                    if hit(rng, *fraction) {
                        let added = match (delay, lognormal) {
                            (Delay::LogNormal { .. }, Some(dist)) => {
                                // A wide sigma can draw absurd values: cap them.
                                Duration::try_from_secs_f64(dist.sample(rng))
                                    .unwrap_or(MAX_DURATION)
                                    .min(MAX_DURATION)
                            }
                            (Delay::Fixed(d), _) => *d,
                            (Delay::LogNormal { median, .. }, None) => *median,
                        };
                        plan.delay = plan.delay.saturating_add(added);
                    }
                }
                Fault::Errors { fraction, status } => {
                    if plan.error.is_none() && hit(rng, *fraction) {
                        plan.error = Some(*status);
                    }
                }
                Fault::Cpu { per_request } => plan.cpu = plan.cpu.saturating_add(*per_request),
                Fault::Memory {
                    bytes,
                    per: LeakRate::PerRequest,
                } => plan.leak = plan.leak.saturating_add(*bytes),
                Fault::Memory { .. } => {}
                Fault::SlowStart {
                    duration,
                    extra,
                    decay,
                } => {
                    plan.delay = plan
                        .delay
                        .saturating_add(slow_start_extra(elapsed, *duration, *extra, *decay));
                }
                Fault::Crash {
                    after: CrashAfter::Requests(count),
                } => {
                    let served = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
                    if served == *count {
                        plan.crash = true;
                    }
                }
                Fault::Crash { .. } => {}
                Fault::Hang { fraction } => {
                    if hit(rng, *fraction) {
                        plan.hang = true;
                    }
                }
            }
        }
        plan
    }
}

/// The extra latency of a slow start `elapsed` after it was set.
fn slow_start_extra(
    elapsed: Duration,
    duration: Duration,
    extra: Duration,
    decay: Option<Duration>,
) -> Duration {
    match decay {
        Some(tau) => {
            // Also covers tau = 0 (no extra at all), avoiding 0/0 below.
            if elapsed >= tau.saturating_mul(SLOW_START_DECAY_END) {
                return Duration::ZERO;
            }
            extra.mul_f64((-elapsed.as_secs_f64() / tau.as_secs_f64()).exp())
        }
        None if elapsed < duration => {
            let left = 1.0 - elapsed.as_secs_f64() / duration.as_secs_f64();
            extra.mul_f64(left.clamp(0.0, 1.0))
        }
        None => Duration::ZERO,
    }
}

fn hit<R: Rng + ?Sized>(rng: &mut R, fraction: f64) -> bool {
    // random_bool panics outside [0, 1]; parsing already refused those.
    fraction >= 1.0 || (fraction > 0.0 && rng.random_bool(fraction))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn parse(spec: &str) -> Fault {
        spec.parse().unwrap_or_else(|e| panic!("{spec}: {e}"))
    }

    #[test]
    fn every_kind_parses() {
        assert_eq!(
            parse("latency=50ms"),
            Fault::Latency {
                delay: Delay::Fixed(Duration::from_millis(50)),
                fraction: 1.0
            }
        );
        assert_eq!(
            parse("latency=500ms@1%"),
            Fault::Latency {
                delay: Delay::Fixed(Duration::from_millis(500)),
                fraction: 0.01
            }
        );
        assert_eq!(
            parse("latency=lognormal:50ms:0.5@0.1"),
            Fault::Latency {
                delay: Delay::LogNormal {
                    median: Duration::from_millis(50),
                    sigma: 0.5
                },
                fraction: 0.1
            }
        );
        assert_eq!(
            parse("errors=0.1"),
            Fault::Errors {
                fraction: 0.1,
                status: 500
            }
        );
        assert_eq!(
            parse("errors=5%:503"),
            Fault::Errors {
                fraction: 0.05,
                status: 503
            }
        );
        assert_eq!(
            parse("cpu=2ms"),
            Fault::Cpu {
                per_request: Duration::from_millis(2)
            }
        );
        assert_eq!(
            parse("memory=1KiB/req"),
            Fault::Memory {
                bytes: 1024,
                per: LeakRate::PerRequest
            }
        );
        assert_eq!(
            parse("memory=1MiB/s"),
            Fault::Memory {
                bytes: 1 << 20,
                per: LeakRate::PerSecond
            }
        );
        assert_eq!(
            parse("slow_start=30s"),
            Fault::SlowStart {
                duration: Duration::from_secs(30),
                extra: DEFAULT_SLOW_START_EXTRA,
                decay: None
            }
        );
        assert_eq!(
            parse("slow_start=30s:200ms:decay=1m"),
            Fault::SlowStart {
                duration: Duration::from_secs(30),
                extra: Duration::from_millis(200),
                decay: Some(Duration::from_secs(60))
            }
        );
        assert_eq!(
            parse("slow_start=30s:decay=1m"),
            Fault::SlowStart {
                duration: Duration::from_secs(30),
                extra: DEFAULT_SLOW_START_EXTRA,
                decay: Some(Duration::from_secs(60))
            }
        );
        assert_eq!(
            parse("crash=1000req"),
            Fault::Crash {
                after: CrashAfter::Requests(1000)
            }
        );
        assert_eq!(
            parse("crash=60s"),
            Fault::Crash {
                after: CrashAfter::Elapsed(Duration::from_secs(60))
            }
        );
        assert_eq!(parse("hang=0.01"), Fault::Hang { fraction: 0.01 });
    }

    #[test]
    fn bad_specs_are_refused_with_reason_and_allowed_form() {
        for bad in [
            "latency",
            "latency=-5ms",
            "latency=50ms@1.5",
            "latency=lognormal:50ms",
            "latency=lognormal:0ms:0.5",
            "latency=lognormal:50ms:-1",
            "errors=-0.1",
            "errors=1.5",
            "errors=0.1:404",
            "memory=1KiB",
            "memory=-1/req",
            "slow_start=soon",
            "slow_start=30s:100ms:200ms",
            "slow_start=30s:decay=1m:100ms",
            "slow_start=30s:100ms:decay=1m:decay=2m",
            "slow_start=30s:100ms:decay=",
            "slow_start=30s:100ms:tau=1m",
            "crash=0req",
            "crash=tomorrow",
            "hang=2",
            "explode=1",
        ] {
            let err = bad.parse::<Fault>().expect_err(bad);
            assert_eq!(err.spec, bad);
            let message = err.to_string();
            assert!(message.contains("allowed: latency=DELAY"), "{message}");
        }
    }

    #[test]
    fn display_round_trips() {
        for spec in [
            "latency=50ms",
            "latency=500ms@0.01",
            "latency=lognormal:50ms:0.5@0.1",
            "errors=0.1:500",
            "cpu=2ms",
            "memory=1KiB/req",
            "memory=3MiB/s",
            "slow_start=30s:100ms",
            "slow_start=30s:100ms:decay=60s",
            "slow_start=0s:1500us:decay=250ms",
            "crash=1000req",
            "crash=1500ms",
            "hang=0.25",
        ] {
            let fault = parse(spec);
            assert_eq!(fault.to_string(), spec);
            assert_eq!(parse(&fault.to_string()), fault);
        }
    }

    #[test]
    fn json_uses_the_text_form() {
        let faults: Vec<Fault> =
            serde_json::from_str(r#"["latency=50ms", "errors=0.1:503"]"#).expect("valid json");
        assert_eq!(faults.len(), 2);
        assert_eq!(
            serde_json::to_string(&faults).expect("serializable"),
            r#"["latency=50ms","errors=0.1:503"]"#
        );
        assert!(serde_json::from_str::<Vec<Fault>>(r#"["errors=2"]"#).is_err());
    }

    fn rng() -> Xoshiro256PlusPlus {
        Xoshiro256PlusPlus::seed_from_u64(7)
    }

    #[test]
    fn no_faults_plan_nothing() {
        let set = FaultSet::new(vec![], Instant::now());
        assert_eq!(set.plan(Instant::now(), &mut rng()), Plan::default());
    }

    #[test]
    fn fixed_latency_and_cpu_and_leak_apply_to_every_request() {
        let now = Instant::now();
        let set = FaultSet::new(
            vec![
                parse("latency=50ms"),
                parse("cpu=1ms"),
                parse("memory=2KiB/req"),
            ],
            now,
        );
        let plan = set.plan(now, &mut rng());
        assert_eq!(plan.delay, Duration::from_millis(50));
        assert_eq!(plan.cpu, Duration::from_millis(1));
        assert_eq!(plan.leak, 2048);
        assert_eq!(plan.error, None);
    }

    /// Count within 5 standard deviations of the binomial mean.
    fn assert_binomial(hits: usize, n: usize, p: f64) {
        let mean = n as f64 * p;
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        assert!(
            (hits as f64 - mean).abs() <= 5.0 * sd,
            "{hits} hits of {n}, expected {mean} +/- {}",
            5.0 * sd
        );
    }

    #[test]
    fn fractions_follow_binomial_bounds() {
        let now = Instant::now();
        let set = FaultSet::new(
            vec![
                parse("errors=0.1:503"),
                parse("latency=500ms@0.01"),
                parse("hang=0.05"),
            ],
            now,
        );
        let mut rng = rng();
        let n = 20_000;
        let plans: Vec<Plan> = (0..n).map(|_| set.plan(now, &mut rng)).collect();
        let errors = plans.iter().filter(|p| p.error == Some(503)).count();
        let slow = plans
            .iter()
            .filter(|p| p.delay == Duration::from_millis(500))
            .count();
        let hangs = plans.iter().filter(|p| p.hang).count();
        assert_binomial(errors, n, 0.1);
        assert_binomial(slow, n, 0.01);
        assert_binomial(hangs, n, 0.05);
    }

    #[test]
    fn same_seed_same_plans() {
        let now = Instant::now();
        let set = FaultSet::new(
            vec![parse("errors=0.3"), parse("latency=lognormal:20ms:1")],
            now,
        );
        let (mut a, mut b) = (rng(), rng());
        for _ in 0..100 {
            assert_eq!(set.plan(now, &mut a), set.plan(now, &mut b));
        }
    }

    #[test]
    fn lognormal_median_is_the_median() {
        let now = Instant::now();
        let set = FaultSet::new(vec![parse("latency=lognormal:50ms:0.8")], now);
        let mut rng = rng();
        let n = 10_000;
        let below = (0..n)
            .filter(|_| set.plan(now, &mut rng).delay < Duration::from_millis(50))
            .count();
        assert_binomial(below, n, 0.5);
    }

    #[test]
    fn slow_start_fades_and_ends() {
        let start = Instant::now();
        let set = FaultSet::new(vec![parse("slow_start=10s:100ms")], start);
        let mut rng = rng();
        assert!(set.warming_up(start));
        assert_eq!(set.plan(start, &mut rng).delay, Duration::from_millis(100));
        let half = start + Duration::from_secs(5);
        assert_eq!(set.plan(half, &mut rng).delay, Duration::from_millis(50));
        let after = start + Duration::from_secs(10);
        assert!(!set.warming_up(after));
        assert_eq!(set.plan(after, &mut rng).delay, Duration::ZERO);
    }

    #[test]
    fn slow_start_with_decay_is_exponential_and_outlasts_readiness() {
        let start = Instant::now();
        let set = FaultSet::new(vec![parse("slow_start=10s:100ms:decay=30s")], start);
        let mut rng = rng();
        let at = |seconds: u64| start + Duration::from_secs(seconds);
        assert!(set.warming_up(start));
        assert_eq!(set.plan(start, &mut rng).delay, Duration::from_millis(100));
        // At t = tau: extra / e = 36.787944117 ms, to the nanosecond.
        let expected = Duration::from_nanos(36_787_944);
        let at_tau = set.plan(at(30), &mut rng).delay;
        assert!(
            at_tau.abs_diff(expected) <= Duration::from_nanos(1),
            "{at_tau:?}"
        );
        // Ready after DURATION, but still slower: the decay goes on.
        assert!(set.warming_up(at(9)));
        assert!(!set.warming_up(at(10)));
        let after_ready = set.plan(at(10), &mut rng).delay;
        assert!(
            after_ready.abs_diff(Duration::from_nanos(71_653_131)) <= Duration::from_nanos(1),
            "{after_ready:?}"
        );
        // Over after 20 time constants.
        assert!(set.plan(at(500), &mut rng).delay > Duration::ZERO);
        assert_eq!(set.plan(at(600), &mut rng).delay, Duration::ZERO);
    }

    #[test]
    fn slow_start_with_zero_decay_adds_nothing() {
        let start = Instant::now();
        let set = FaultSet::new(vec![parse("slow_start=5s:100ms:decay=0")], start);
        assert!(set.warming_up(start));
        assert_eq!(set.plan(start, &mut rng()).delay, Duration::ZERO);
    }

    #[test]
    fn slow_start_decay_goes_through_json() {
        let faults: Vec<Fault> =
            serde_json::from_str(r#"["slow_start=30s:50ms:decay=1m"]"#).expect("valid json");
        assert_eq!(
            faults,
            [Fault::SlowStart {
                duration: Duration::from_secs(30),
                extra: Duration::from_millis(50),
                decay: Some(Duration::from_secs(60))
            }]
        );
        assert_eq!(
            serde_json::to_string(&faults).expect("serializable"),
            r#"["slow_start=30s:50ms:decay=60s"]"#
        );
    }

    #[test]
    fn crash_after_requests_fires_once_on_the_nth() {
        let now = Instant::now();
        let set = FaultSet::new(vec![parse("crash=3req")], now);
        let mut rng = rng();
        let crashes: Vec<bool> = (0..5).map(|_| set.plan(now, &mut rng).crash).collect();
        assert_eq!(crashes, [false, false, true, false, false]);
    }

    #[test]
    fn crash_after_time_and_leak_per_second_count_from_set_time() {
        let start = Instant::now();
        let set = FaultSet::new(vec![parse("crash=2s"), parse("memory=1000B/s")], start);
        assert_eq!(set.crash_due(start + Duration::from_secs(1)), None);
        assert!(set.crash_due(start + Duration::from_secs(2)).is_some());
        assert_eq!(set.leak_due_by(start + Duration::from_millis(1500)), 1500);
    }
}
