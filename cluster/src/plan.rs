//! What a real release runs, in the local mode (processes on loopback) and
//! the Kubernetes mode (its manifests) alike, derived from a scenario and a
//! time scale (pure): the goldengoose configs of production, baseline and canary (the
//! scenario's service and regression as goldengoose faults), the traffic
//! splits over time, the analysis schedule and the query step, all scaled.
//!
//! `time_scale` multiplies every scenario duration: 0.05 plays a 30-minute
//! analysis in 90 seconds. The scrape and query step shrink by the same
//! factor, so every interval keeps its number of points. Latencies, error
//! rates and CPU per request are not scaled (they are what is measured);
//! rates per scenario second (memory leak) are divided by the scale so a
//! leak reaches the same size at the same point of the release.
//!
//! Not for: running anything (see [`crate::local`], `crate::kube` and
//! [`crate::analysis`]).

use std::time::Duration;

use goldengoose::{CrashAfter, Delay, Fault, LeakRate};
use judge::ScoreThresholds;
use judge::analysis::Schedule;
use scenarios::{BaselineKind, Regression, Scenario};

/// The smallest scaled scrape step accepted.
pub const MIN_STEP: Duration = Duration::from_millis(200);

/// The most memory a canary may leak over a local release.
pub const MAX_LEAK_BYTES: f64 = 1024.0 * 1024.0 * 1024.0;

/// Why a scenario cannot be played for real at this time scale.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// The time scale is not a positive number.
    #[error("--time-scale {0} must be a number above 0")]
    TimeScale(f64),
    /// The rate scale is not a positive number.
    #[error("--rate-scale {0} must be a number above 0")]
    RateScale(f64),
    /// The scaled scrape step falls below [`MIN_STEP`].
    #[error(
        "at --time-scale {scale} the scrape step of {step_s} s becomes {scaled_ms:.0} ms, below the {min_ms} ms Prometheus can sample reliably here; use a larger time scale"
    )]
    StepTooSmall {
        /// The time scale asked for.
        scale: f64,
        /// The scenario's scrape step, seconds.
        step_s: f64,
        /// The scrape step once scaled, milliseconds.
        scaled_ms: f64,
        /// [`MIN_STEP`], milliseconds.
        min_ms: u128,
    },
    /// The canary's memory leak would exceed [`MAX_LEAK_BYTES`] over the
    /// release.
    #[error(
        "the memory leak of {mib_per_minute} MiB/min would grow to {total_mib:.0} MiB over the release, above the {max_mib:.0} MiB a local run allows"
    )]
    LeakTooLarge {
        /// The scenario's leak rate, MiB per scenario minute.
        mib_per_minute: f64,
        /// What the leak would reach by the end of the release, MiB.
        total_mib: f64,
        /// [`MAX_LEAK_BYTES`], MiB.
        max_mib: f64,
    },
}

/// A traffic split, percent per track.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Split {
    /// Percent of requests to production.
    pub production: f64,
    /// Percent of requests to the baseline.
    pub baseline: f64,
    /// Percent of requests to the canary.
    pub canary: f64,
}

impl Split {
    /// As loadgen's `Control::set_weights` takes it, zeros included (a
    /// target left out would keep its old weight).
    pub fn weights(&self) -> [(&'static str, f64); 3] {
        [
            ("production", self.production),
            ("baseline", self.baseline),
            ("canary", self.canary),
        ]
    }
}

impl From<release::Split> for Split {
    fn from(s: release::Split) -> Self {
        Split {
            production: s.production,
            baseline: s.baseline,
            canary: s.canary,
        }
    }
}

/// Everything a real release (local or Kubernetes) needs to know, scaled.
#[derive(Debug, Clone)]
pub struct ReleasePlan {
    /// Multiplies every scenario duration (0.05: a 30-minute scenario in 90 s).
    pub time_scale: f64,
    /// Requests per second, all tracks (not scaled).
    pub request_rate: f64,
    /// Production replicas (current version, `version="production"`).
    pub production: goldengoose::Config,
    /// How many production replicas run.
    pub production_replicas: u32,
    /// Baseline replicas (current version, `version="baseline"`); none
    /// when the scenario compares with production.
    pub baseline: goldengoose::Config,
    /// How many baseline replicas run (0 when compared with production).
    pub baseline_replicas: u32,
    /// Canary replicas (new version with the regression, `version="canary"`).
    pub canary: goldengoose::Config,
    /// How many canary replicas run.
    pub canary_replicas: u32,
    /// The scope the canary is compared with: `baseline` or `production`.
    pub control_scope: String,
    /// Splits in force from each offset after traffic first shifts.
    pub traffic: Vec<(Duration, Split)>,
    /// The analysis windows, scaled.
    pub schedule: Schedule,
    /// The interval scores that pass or fail the canary.
    pub thresholds: ScoreThresholds,
    /// Scrape interval and query step.
    pub step: Duration,
}

impl ReleasePlan {
    /// The same release with `k` times the scenario's request rate and
    /// `1/k` of its CPU per request, so the cpu metric stays the
    /// scenario's. `k = 1 / time_scale` gives every scaled rate window the
    /// scenario's number of requests, as the simulator models it.
    pub fn with_rate_scale(mut self, k: f64) -> Result<Self, PlanError> {
        if !(k.is_finite() && k > 0.0) {
            return Err(PlanError::RateScale(k));
        }
        self.request_rate *= k;
        for config in [&mut self.production, &mut self.baseline, &mut self.canary] {
            for fault in &mut config.faults {
                if let Fault::Cpu { per_request } = fault {
                    *per_request = per_request.div_f64(k);
                }
            }
        }
        Ok(self)
    }

    /// The split in force `since_shift` after traffic first shifted.
    pub fn split_at(&self, since_shift: Duration) -> Split {
        self.traffic
            .iter()
            .rev()
            .find(|(after, _)| *after <= since_shift)
            .or(self.traffic.first())
            .map(|(_, split)| *split)
            .unwrap_or(Split {
                production: 100.0,
                baseline: 0.0,
                canary: 0.0,
            })
    }
}

/// Plans a local release of `scenario` at `time_scale`.
pub fn plan_release(
    scenario: &Scenario,
    time_scale: f64,
    seed: u64,
) -> Result<ReleasePlan, PlanError> {
    if !(time_scale.is_finite() && time_scale > 0.0) {
        return Err(PlanError::TimeScale(time_scale));
    }
    let scale = |s: f64| Duration::from_secs_f64((s * time_scale).max(0.0));
    let file = &scenario.file;
    let step_s = file.analysis.scrape_step_s;
    let step = scale(step_s);
    if step < MIN_STEP {
        return Err(PlanError::StepTooSmall {
            scale: time_scale,
            step_s,
            scaled_ms: step.as_secs_f64() * 1000.0,
            min_ms: MIN_STEP.as_millis(),
        });
    }
    let service = &file.service;
    let p = &file.pipeline;

    let current = |version: &str, seed: u64| goldengoose::Config {
        version: version.to_string(),
        faults: service_faults(service),
        seed,
        ..Default::default()
    };
    let production = current("production", seed);
    let baseline = current("baseline", seed.wrapping_add(1));
    let mut canary = current("canary", seed.wrapping_add(2));
    if let Some(regression) = &file.regression {
        apply_regression(&mut canary.faults, regression, service, time_scale, p)?;
    }

    let split = |c: f64, b: f64, pr: f64| Split {
        production: pr,
        baseline: b,
        canary: c,
    };
    let mut traffic = vec![(
        Duration::ZERO,
        split(p.traffic.canary, p.traffic.baseline, p.traffic.production),
    )];
    traffic.extend(
        p.traffic_steps
            .iter()
            .map(|s| (scale(s.after_s), split(s.canary, s.baseline, s.production))),
    );
    traffic.sort_by_key(|(after, _)| *after);

    let schedule = scenario.schedule();
    let schedule = Schedule {
        lifetime: schedule.lifetime.mul_f64(time_scale),
        interval: schedule.interval.map(|d| d.mul_f64(time_scale)),
        warmup: schedule.warmup.mul_f64(time_scale),
        lookback: schedule.lookback.map(|d| d.mul_f64(time_scale)),
    };
    let (control_scope, baseline_replicas) = match p.baseline {
        BaselineKind::Fresh => ("baseline", p.baseline_replicas),
        BaselineKind::Production => ("production", 0),
    };
    Ok(ReleasePlan {
        time_scale,
        request_rate: service.request_rate,
        production,
        production_replicas: service.replicas,
        baseline,
        baseline_replicas,
        canary,
        canary_replicas: p.canary_replicas,
        control_scope: control_scope.to_string(),
        traffic,
        schedule,
        thresholds: scenario.thresholds(),
        step,
    })
}

fn ms(v: f64) -> Duration {
    Duration::from_secs_f64((v / 1000.0).max(0.0))
}

/// The current version's behaviour: log-normal latency, errors, CPU.
fn service_faults(service: &scenarios::Service) -> Vec<Fault> {
    let mut faults = vec![Fault::Latency {
        delay: Delay::LogNormal {
            median: ms(service.latency_median_ms),
            sigma: service.latency_sigma,
        },
        fraction: 1.0,
    }];
    if service.error_rate > 0.0 {
        faults.push(Fault::Errors {
            fraction: service.error_rate,
            status: 500,
        });
    }
    if service.cpu_ms_per_request > 0.0 {
        faults.push(Fault::Cpu {
            per_request: ms(service.cpu_ms_per_request),
        });
    }
    faults
}

/// The canary's change, as goldengoose faults (replacing or adding to the
/// service's own).
fn apply_regression(
    faults: &mut Vec<Fault>,
    regression: &Regression,
    service: &scenarios::Service,
    time_scale: f64,
    pipeline: &scenarios::Pipeline,
) -> Result<(), PlanError> {
    let median = service.latency_median_ms;
    let set_latency = |faults: &mut Vec<Fault>, median_ms: f64, sigma: f64| {
        for f in faults.iter_mut() {
            if let Fault::Latency {
                delay: Delay::LogNormal { .. },
                ..
            } = f
            {
                *f = Fault::Latency {
                    delay: Delay::LogNormal {
                        median: ms(median_ms),
                        sigma,
                    },
                    fraction: 1.0,
                };
            }
        }
    };
    match *regression {
        Regression::Latency { increase } => {
            set_latency(faults, median * (1.0 + increase), service.latency_sigma)
        }
        Regression::LatencyTail { fraction, added_ms } => faults.push(Fault::Latency {
            delay: Delay::Fixed(ms(added_ms)),
            fraction,
        }),
        Regression::Variance { sigma } => set_latency(faults, median, sigma),
        Regression::Errors { error_rate } => {
            faults.retain(|f| !matches!(f, Fault::Errors { .. }));
            faults.push(Fault::Errors {
                fraction: error_rate,
                status: 500,
            });
        }
        Regression::Cpu { increase } => faults.push(Fault::Cpu {
            per_request: ms(service.cpu_ms_per_request * increase),
        }),
        Regression::MemoryLeak { mib_per_minute } => {
            let release_s = pipeline.warmup_s + pipeline.lifetime_s;
            let total_mib = mib_per_minute * release_s / 60.0;
            if total_mib * 1024.0 * 1024.0 > MAX_LEAK_BYTES {
                return Err(PlanError::LeakTooLarge {
                    mib_per_minute,
                    total_mib,
                    max_mib: MAX_LEAK_BYTES / 1024.0 / 1024.0,
                });
            }
            faults.push(Fault::Memory {
                bytes: (mib_per_minute * 1024.0 * 1024.0 / 60.0 / time_scale) as u64,
                per: LeakRate::PerSecond,
            });
        }
        Regression::CrashLoop { crash_after_s } => faults.push(Fault::Crash {
            after: CrashAfter::Elapsed(Duration::from_secs_f64(
                (crash_after_s * time_scale).max(0.0),
            )),
        }),
        // As the simulator: not ready for extra_ready_s, and the extra
        // latency decays as exp(-age / decay_s) from the process's start.
        // The simulator scales the median by 1 + extra; goldengoose adds
        // that much delay to every request (the same shift at the median).
        Regression::SlowStart {
            extra_ready_s,
            extra_latency,
            decay_s,
        } => faults.push(Fault::SlowStart {
            duration: Duration::from_secs_f64((extra_ready_s * time_scale).max(0.0)),
            extra: ms(median * extra_latency),
            decay: Some(Duration::from_secs_f64((decay_s * time_scale).max(1e-3))),
        }),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_scale_multiplies_the_rate_and_divides_cpu_per_request() {
        let plan = plan_release(&catalog("cpu-30pct"), 0.02, 1).expect("plans");
        let cpu = |c: &goldengoose::Config| {
            c.faults
                .iter()
                .find_map(|f| match f {
                    Fault::Cpu { per_request } => Some(*per_request),
                    _ => None,
                })
                .expect("a cpu fault")
        };
        let scaled = plan.clone().with_rate_scale(50.0).expect("scales");
        assert_eq!(scaled.request_rate, plan.request_rate * 50.0);
        for (a, b) in [
            (&plan.baseline, &scaled.baseline),
            (&plan.canary, &scaled.canary),
        ] {
            let (a, b) = (cpu(a).as_secs_f64(), cpu(b).as_secs_f64());
            assert!((a / b - 50.0).abs() < 1e-6, "{a} vs {b}");
        }
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(
                matches!(
                    plan.clone().with_rate_scale(bad),
                    Err(PlanError::RateScale(_))
                ),
                "{bad}"
            );
        }
    }

    fn catalog(name: &str) -> Scenario {
        let path = format!(
            "{}/../scenarios/catalog/{name}.toml",
            env!("CARGO_MANIFEST_DIR")
        );
        Scenario::load(std::path::Path::new(&path), None).expect("catalog scenario loads")
    }

    #[test]
    fn durations_and_step_scale_together() {
        let s = catalog("latency-10pct");
        let full = plan_release(&s, 1.0, 7).expect("plans");
        let fast = plan_release(&s, 0.05, 7).expect("plans");
        let points = |p: &ReleasePlan| {
            p.schedule
                .interval
                .unwrap_or(p.schedule.lifetime)
                .as_secs_f64()
                / p.step.as_secs_f64()
        };
        assert!((points(&full) - points(&fast)).abs() < 1e-6);
        assert!(
            (fast.schedule.lifetime.as_secs_f64() - full.schedule.lifetime.as_secs_f64() * 0.05)
                .abs()
                < 1e-6
        );
        assert_eq!(fast.request_rate, full.request_rate);
    }

    #[test]
    fn latency_regression_raises_the_canary_median_only() {
        let s = catalog("latency-10pct");
        let plan = plan_release(&s, 0.1, 1).expect("plans");
        let median = |c: &goldengoose::Config| {
            c.faults
                .iter()
                .find_map(|f| match f {
                    Fault::Latency {
                        delay: Delay::LogNormal { median, .. },
                        ..
                    } => Some(median.as_secs_f64()),
                    _ => None,
                })
                .expect("lognormal latency")
        };
        assert_eq!(median(&plan.baseline), median(&plan.production));
        let ratio = median(&plan.canary) / median(&plan.baseline);
        assert!((ratio - 1.1).abs() < 1e-6, "{ratio}");
        assert_eq!(
            (
                plan.production.version.as_str(),
                plan.baseline.version.as_str(),
                plan.canary.version.as_str()
            ),
            ("production", "baseline", "canary")
        );
    }

    #[test]
    fn every_catalog_scenario_plans_at_a_minute_scale_or_says_why() {
        let dir = format!("{}/../scenarios/catalog", env!("CARGO_MANIFEST_DIR"));
        for s in
            scenarios::load_all(&[std::path::PathBuf::from(&dir)], None).expect("catalog loads")
        {
            match plan_release(&s, 0.05, 1) {
                Ok(plan) => {
                    assert!(plan.step >= MIN_STEP);
                    assert_eq!(plan.traffic[0].0, Duration::ZERO);
                    // The config-side faults must survive goldengoose's own
                    // parser (text form round trip).
                    for f in &plan.canary.faults {
                        let again: Fault = f.to_string().parse().expect("round trips");
                        assert_eq!(&again, f, "{}", s.name);
                    }
                }
                Err(e) => assert!(
                    matches!(e, PlanError::StepTooSmall { .. }),
                    "{}: {e}",
                    s.name
                ),
            }
        }
    }

    #[test]
    fn bad_time_scales_are_refused() {
        let s = catalog("aa-typical");
        assert_eq!(
            plan_release(&s, 0.0, 1).err(),
            Some(PlanError::TimeScale(0.0))
        );
        assert!(plan_release(&s, f64::NAN, 1).is_err());
        assert!(matches!(
            plan_release(&s, 1e-4, 1),
            Err(PlanError::StepTooSmall { .. })
        ));
    }

    #[test]
    fn split_follows_the_steps() {
        let s = catalog("latency-10pct-stepped-traffic");
        let plan = plan_release(&s, 0.1, 1).expect("plans");
        assert!(plan.traffic.len() > 1, "stepped scenario has steps");
        let last = plan.traffic.last().expect("a step");
        assert_eq!(plan.split_at(last.0 + Duration::from_secs(1)), last.1);
        assert_eq!(plan.split_at(Duration::ZERO), plan.traffic[0].1);
        let total: f64 = plan
            .split_at(Duration::ZERO)
            .weights()
            .iter()
            .map(|(_, w)| w)
            .sum();
        assert!((total - 100.0).abs() < 1e-9, "{total}");
    }
}
