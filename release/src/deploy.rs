//! The part of a release every controller shares: the build (after the
//! webhook's delay; it may fail) and the deploy of the canary (and a
//! baseline) pods, each of which must be ready before the deploy timeout.
//! [`crate::kayenta::Kayenta`] and [`crate::peer::PeerRelease`] run this
//! first and their own analysis once every pod is ready.
//!
//! A crashed pod is restarted by Kubernetes and is not ready until the
//! driver says so; a canary in a crash loop therefore never becomes ready
//! and the deploy times out. A pod ready exactly at the deploy deadline is
//! in time.
//!
//! Not for: what happens once the pods are ready (the controllers').

use std::collections::VecDeque;

use crate::{Command, Millis, ReleaseEnd, Stage, Track, ms};

/// The build and deploy settings (seconds, as in a scenario).
#[derive(Debug, Clone, PartialEq)]
pub struct DeploySpec {
    /// Commit to build start; `None`: no build, the release starts at the
    /// deploy (the real modes deploy an image that exists).
    pub build_after_s: Option<f64>,
    /// How long every canary and baseline pod has to become ready.
    pub deploy_timeout_s: f64,
    /// Canary pods to start.
    pub canary_pods: u32,
    /// Baseline pods to start (0 when comparing with production).
    pub baseline_pods: u32,
}

impl DeploySpec {
    /// The simulator's build and deploy of `scenario`; `baseline`: whether
    /// the analysis has a baseline deployment of its own (Kayenta with a
    /// fresh baseline), else no baseline pods are started.
    pub fn from_scenario(scenario: &scenarios::Scenario, baseline: bool) -> Self {
        let pl = &scenario.file.pipeline;
        DeploySpec {
            build_after_s: Some(pl.webhook_s),
            deploy_timeout_s: pl.deploy_timeout_s,
            canary_pods: pl.canary_replicas,
            baseline_pods: match pl.baseline {
                scenarios::BaselineKind::Fresh if baseline => pl.baseline_replicas,
                _ => 0,
            },
        }
    }
}

/// Commands, and the timeline when asked for: what a controller collects
/// for its driver.
#[derive(Debug)]
pub(crate) struct Out {
    pub commands: VecDeque<Command>,
    keep_timeline: bool,
    pub timeline: Vec<Stage>,
}

impl Out {
    pub fn new(keep_timeline: bool) -> Self {
        Out {
            commands: VecDeque::with_capacity(8),
            keep_timeline,
            timeline: Vec::new(),
        }
    }

    pub fn push(&mut self, command: Command) {
        self.commands.push_back(command);
    }

    pub fn stage(&mut self, name: &'static str, start: Millis, end: Millis) {
        if self.keep_timeline {
            self.timeline.push(Stage { name, start, end });
        }
    }
}

/// Where the build and deploy are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Waiting {
        build_at: Millis,
    },
    Building {
        started: Millis,
    },
    Deploying {
        ready: u32,
        deadline: Millis,
    },
    /// Every pod ready, or failed: nothing more to do here.
    Over,
}

/// What the build and deploy came to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Progress {
    /// Still under way (or over before this event).
    Pending,
    /// Every pod is ready: the controller's analysis may begin.
    Ready,
    /// The release ends here: a failed build (nothing to roll back) or a
    /// timed-out deploy (the canary must be rolled back).
    Failed { end: ReleaseEnd, reason: String },
}

/// The build-and-deploy state machine; see the module docs.
#[derive(Debug)]
pub(crate) struct BuildDeploy {
    spec: DeploySpec,
    phase: Phase,
    /// When the deploy began, once it did.
    pub deploy_started: Option<Millis>,
}

impl BuildDeploy {
    pub fn new(spec: DeploySpec) -> Self {
        BuildDeploy {
            spec,
            phase: Phase::Idle,
            deploy_started: None,
        }
    }

    /// Before the deploy: nothing is running yet.
    pub fn before_deploy(&self) -> bool {
        matches!(
            self.phase,
            Phase::Idle | Phase::Waiting { .. } | Phase::Building { .. }
        )
    }

    /// The release begins (the commit).
    pub fn start(&mut self, now: Millis, out: &mut Out) -> Progress {
        if self.phase != Phase::Idle {
            return Progress::Pending;
        }
        match self.spec.build_after_s {
            Some(s) => {
                let build_at = now + ms(s);
                self.phase = Phase::Waiting { build_at };
                out.push(Command::WakeAt(build_at));
                Progress::Pending
            }
            None => self.start_deploy(now, out),
        }
    }

    /// Time has come to `now`.
    pub fn time_reached(&mut self, now: Millis, out: &mut Out) -> Progress {
        match self.phase {
            Phase::Waiting { build_at } if build_at <= now => {
                self.phase = Phase::Building { started: now };
                out.push(Command::Build);
                Progress::Pending
            }
            Phase::Deploying { deadline, .. } if deadline <= now => {
                self.phase = Phase::Over;
                out.stage("deploy", self.deploy_started.unwrap_or(now), now);
                Progress::Failed {
                    end: ReleaseEnd::DeployFailed,
                    reason: format!(
                        "canary pods not ready after {} s: deploy timed out, rolled back",
                        self.spec.deploy_timeout_s
                    ),
                }
            }
            _ => Progress::Pending,
        }
    }

    /// The build ended.
    pub fn build_finished(&mut self, now: Millis, ok: bool, out: &mut Out) -> Progress {
        let Phase::Building { started } = self.phase else {
            return Progress::Pending;
        };
        out.stage("build", started, now);
        if ok {
            self.start_deploy(now, out)
        } else {
            self.phase = Phase::Over;
            Progress::Failed {
                end: ReleaseEnd::BuildFailed,
                reason: "the build failed".into(),
            }
        }
    }

    /// A pod passed its readiness probe.
    pub fn pod_ready(&mut self, track: Track) -> Progress {
        let Phase::Deploying { ready, .. } = &mut self.phase else {
            return Progress::Pending;
        };
        if track == Track::Production {
            return Progress::Pending;
        }
        *ready += 1;
        if *ready >= self.spec.canary_pods + self.spec.baseline_pods {
            self.phase = Phase::Over;
            Progress::Ready
        } else {
            Progress::Pending
        }
    }

    /// The release stops before the pods are ready (an operator's input).
    pub fn stop(&mut self) {
        self.phase = Phase::Over;
    }

    fn start_deploy(&mut self, now: Millis, out: &mut Out) -> Progress {
        self.deploy_started = Some(now);
        let spec = &self.spec;
        if spec.canary_pods > 0 {
            out.push(Command::StartPods {
                track: Track::Canary,
                count: spec.canary_pods,
            });
        }
        if spec.baseline_pods > 0 {
            out.push(Command::StartPods {
                track: Track::Baseline,
                count: spec.baseline_pods,
            });
        }
        if spec.canary_pods + spec.baseline_pods == 0 {
            self.phase = Phase::Over;
            return Progress::Ready;
        }
        let deadline = now + ms(spec.deploy_timeout_s);
        self.phase = Phase::Deploying { ready: 0, deadline };
        out.push(Command::WakeAt(deadline));
        Progress::Pending
    }
}
