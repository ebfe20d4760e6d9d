//! Side-by-side studies: every scenario released once per analysis on the
//! same seeds, one result entry per scenario and analysis.

use std::path::{Path, PathBuf};

use release::ReleaseEnd;
use scenarios::Scenario;
use sim::analysis::{self, FileKind};
use sim::{StudyAnalysis, StudyOptions, run_study, run_study_side_by_side};

use crate::catalog;

fn analysis_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/catalog/analyses")
        .join(name)
}

fn analyses(scenario: &Path, files: &[&str]) -> Vec<StudyAnalysis> {
    files
        .iter()
        .map(|f| {
            let file = analysis::read(&analysis_file(f)).unwrap();
            let scenarios = match file.kind {
                FileKind::Kayenta => vec![Scenario::load(scenario, Some(&file.path)).unwrap()],
                FileKind::Peer(_) => Vec::new(),
            };
            StudyAnalysis { file, scenarios }
        })
        .collect()
}

fn opts(runs: u32) -> StudyOptions {
    StudyOptions {
        runs,
        seed: 7,
        threads: 2,
        examples: false,
    }
}

/// Reads the Rollout file written at `path` (then removes `dir`) and
/// releases `aa-typical` (6 replicas) under it: every run promotes only if
/// each of the Rollout's pod-counting conditions held.
fn promotes_every_aa_typical_release(path: &Path, dir: &Path) {
    let file = analysis::read(path);
    let _ = std::fs::remove_dir_all(dir);
    let a = [StudyAnalysis {
        file: file.unwrap(),
        scenarios: Vec::new(),
    }];
    let sc = catalog("aa-typical");
    assert_eq!(sc.file.service.replicas, 6);
    let study =
        run_study_side_by_side(std::slice::from_ref(&sc), &a, opts(10), &|_, _| {}).unwrap();
    let r = &study.scenarios[0];
    assert_eq!(r.verdicts.promoted, r.runs, "{:?}", r.verdicts);
}

#[test]
fn one_entry_per_scenario_and_analysis_on_common_seeds() {
    let sc = catalog("latency-25pct");
    let files = ["kayenta.json", "argo-rollout.yaml", "flagger-canary.yaml"];
    let a = analyses(&sc.path, &files);
    let study =
        run_study_side_by_side(std::slice::from_ref(&sc), &a, opts(40), &|_, _| {}).unwrap();
    let names: Vec<_> = study
        .scenarios
        .iter()
        .map(|s| (s.name.as_str(), s.analysis.as_deref()))
        .collect();
    assert_eq!(
        names,
        [
            ("latency-25pct", Some("kayenta")),
            ("latency-25pct", Some("argo-rollout")),
            ("latency-25pct", Some("flagger-canary")),
        ]
    );
    // the catalog's Kayenta config is the scenario's own: the same seeds
    // give the same result as the plain study
    let plain = run_study(std::slice::from_ref(&sc), opts(40), &|_, _| {}).unwrap();
    let mut kayenta = study.scenarios[0].clone();
    assert_eq!(kayenta.analysis.take().as_deref(), Some("kayenta"));
    assert_eq!(
        serde_json::to_value(&kayenta).unwrap(),
        serde_json::to_value(&plain.scenarios[0]).unwrap()
    );
}

/// The peers decide by their rules on the simulated Prometheus's answers,
/// at times fixed from the traffic shift. On an A/A release every check
/// passes: Argo completes when its last step ends (3 x 10-minute pauses:
/// 30 min), Flagger promotes at interval * maxWeight / stepWeight (1m * 50 /
/// 10: 5 min). With 2% errors Flagger's success-rate check (min 99%) fails
/// every tick and it rolls back at interval * (threshold + 1) = 6 min,
/// while Argo's (>= 0.95) passes and it completes.
#[test]
fn peers_decide_at_their_rules_times_from_the_traffic_shift() {
    let a_of = |name: &str| {
        let sc = catalog(name);
        let a = analyses(&sc.path, &["argo-rollout.yaml", "flagger-canary.yaml"]);
        let study =
            run_study_side_by_side(std::slice::from_ref(&sc), &a, opts(30), &|_, _| {}).unwrap();
        (sc, a, study)
    };
    let (_, _, aa) = a_of("aa-typical");
    let (sc, a, errors) = a_of("errors-2pct");
    // Argo: 30 minutes of steps, plus the setWeight 25 and 50 steps' wait
    // for their new canary pod (6 replicas: ceil(0.3) = 1, ceil(1.5) = 2,
    // ceil(3) = 3; rollout/trafficrouting.go keeps the weight until
    // AtDesiredReplicaCountsForCanary), each a pod's start and readiness
    let pl = &sc.file.pipeline;
    let pod = pl.pod_start_s + pl.readiness_s;
    let argo = |r: &reports::model::ScenarioResult| {
        let t = &r.decision_time_s;
        assert!(
            t.bins_start > 1800.0 + 2.0 * 0.5 * pod && t.max < 1800.0 + 2.0 * 1.6 * pod,
            "{:?}: {t:?}",
            r.analysis
        );
    };
    argo(&aa.scenarios[0]);
    argo(&errors.scenarios[0]);
    let cases = [
        (&aa.scenarios[0], ReleaseEnd::Promote, None),
        (&aa.scenarios[1], ReleaseEnd::Promote, Some(300.0)),
        (&errors.scenarios[0], ReleaseEnd::Promote, None),
        (&errors.scenarios[1], ReleaseEnd::Rollback, Some(360.0)),
    ];
    for (r, end, expected_s) in cases {
        let v = r.verdicts;
        let count = match end {
            ReleaseEnd::Promote => v.promoted,
            _ => v.rolled_back,
        };
        assert_eq!(count, r.runs, "{:?} {:?}: {v:?}", r.name, r.analysis);
        let Some(expected_s) = expected_s else {
            continue;
        };
        assert_eq!(r.decision_time_s.p50, expected_s, "{:?}", r.analysis);
        // Flagger decides on ticks; with 2% errors a tick's check may pass
        // (success 99% or more in a minute of ~1,200 requests: rare), which
        // delays the rollback by whole intervals
        let max = r.decision_time_s.max;
        assert!(
            max == expected_s || (end == ReleaseEnd::Rollback && max % 60.0 == 0.0),
            "{:?}: max {max}",
            r.analysis
        );
    }
    // 2% of the canary's requests failed until Flagger rolled back
    assert!(errors.scenarios[1].blast_radius.p50 > 0.0);
    // a detail run of a peer records its stages
    let prepared = sim::study::prepare_side_by_side(std::slice::from_ref(&sc), &a).unwrap();
    let (outcome, detail) = sim::run_once(&prepared[1], 3, true, &mut judge::Workspace::new());
    assert_eq!(outcome.decision, ReleaseEnd::Rollback);
    let detail = detail.unwrap();
    assert!(detail.reason.starts_with("Flagger: "), "{}", detail.reason);
    let stages: Vec<&str> = detail.timeline.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(stages, ["build", "deploy", "analysis", "rollback"]);
}

#[test]
fn example_runs_are_one_per_scenario_and_analysis() {
    let sc = catalog("latency-25pct");
    let files = ["kayenta.json", "argo-rollout.yaml", "flagger-canary.yaml"];
    let a = analyses(&sc.path, &files);
    let mut o = opts(2);
    o.examples = true;
    let study = run_study_side_by_side(std::slice::from_ref(&sc), &a, o, &|_, _| {}).unwrap();
    let labels: Vec<String> = study.example_runs.iter().map(|r| r.label()).collect();
    assert_eq!(
        labels,
        [
            "latency-25pct [kayenta]",
            "latency-25pct [argo-rollout]",
            "latency-25pct [flagger-canary]",
        ]
    );
    // on the same seed, decided by each analysis's own rules
    assert!(
        study
            .example_runs
            .iter()
            .all(|r| r.seed == study.example_runs[0].seed)
    );
    assert!(study.example_runs[0].reason != study.example_runs[1].reason);
    assert!(study.example_runs[1].reason.starts_with("Argo Rollouts"));
    assert!(study.example_runs[2].reason.starts_with("Flagger"));
}

/// The analyses of the local mode's tests (`tests/local/fixtures/`) compare
/// the canary with production's pods: Argo by `rollouts_pod_template_hash`
/// (`valueFrom.podTemplateHashValue`), Flagger by `destination_workload`
/// (TARGET-primary). A peer's control share is production's, so its series
/// carry production's names, and the hashes are the ones those series
/// carry: both measure, and decide as on the real Prometheus (1,000 runs:
/// every regression caught, 0.1% and 0.2% false alarms from the fresh
/// canary's extra latency, which the local mode lacks).
#[test]
fn peers_compare_the_canary_with_production_pods() {
    let fixture = |name: &str| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/local/fixtures")
            .join(name);
        StudyAnalysis {
            file: analysis::read(&path).unwrap(),
            scenarios: Vec::new(),
        }
    };
    let a = [
        fixture("argo-latency-vs-stable.yaml"),
        fixture("flagger-latency-vs-primary.yaml"),
    ];
    let scenarios = [catalog("aa-typical"), catalog("latency-25pct")];
    let study = run_study_side_by_side(&scenarios, &a, opts(20), &|_, _| {}).unwrap();
    for r in &study.scenarios {
        let v = r.verdicts;
        if r.name == "aa-typical" {
            assert!(v.promoted + 1 >= r.runs, "{:?}: {v:?}", r.analysis);
        } else {
            assert_eq!(v.rolled_back, r.runs, "{:?}: {v:?}", r.analysis);
        }
        // no run paused or ended otherwise (an empty answer would abort
        // Argo and fail Flagger's checks: the A/A promotions show it measured)
        assert_eq!(
            v.promoted + v.rolled_back,
            r.runs,
            "{:?}: {v:?}",
            r.analysis
        );
    }
}

/// A scenario that names its own pods' template hashes (`[telemetry]`
/// `canary.pod_template_hash`, `production.pod_template_hash`) has its
/// series labelled with them; Argo's `podTemplateHashValue` arguments must
/// resolve to those, as local mode resolves them to its targets' labels.
/// With the defaults' hashes instead, every query of the A/A release would
/// select no series (empty vector: Error) and Argo would abort.
#[test]
fn argo_resolves_pod_template_hashes_to_the_scenarios_own() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/local/fixtures/argo-latency-vs-stable.yaml");
    let a = [StudyAnalysis {
        file: analysis::read(&path).unwrap(),
        scenarios: Vec::new(),
    }];
    let mut scenarios = [catalog("aa-typical"), catalog("latency-25pct")];
    for sc in &mut scenarios {
        let t = &mut sc.file.telemetry;
        t.canary.pod_template_hash = Some("5d8c7f9b6a".into());
        t.production.pod_template_hash = Some("7f6b5c4d3e".into());
    }
    let plan = a[0].file.plan_for(&scenarios[0]).unwrap().unwrap();
    let release::peer::PeerPlan::Argo(plan) = plan else {
        panic!("an Argo plan")
    };
    let promql: Vec<&str> = plan.queries.iter().map(|q| q.promql.as_str()).collect();
    assert!(
        promql
            .iter()
            .any(|q| q.contains(r#"rollouts_pod_template_hash="5d8c7f9b6a""#)
                && q.contains(r#"rollouts_pod_template_hash="7f6b5c4d3e""#)),
        "{promql:?}"
    );
    let study = run_study_side_by_side(&scenarios, &a, opts(10), &|_, _| {}).unwrap();
    let (aa, v) = (&study.scenarios[0], study.scenarios[0].verdicts);
    assert!(v.promoted + 1 >= aa.runs, "A/A: {v:?}");
    assert_eq!(study.scenarios[1].verdicts.rolled_back, 10, "latency");
}

/// Argo's `setCanaryScale` (with traffic routing) starts pods on top of the
/// deployed canary (utils/replicaset/canary.go
/// `CalculateReplicaCountsForTrafficRoutedCanary`: `replicas` whatever the
/// weight), and the simulated Prometheus scrapes them once ready: the
/// Rollout's own measurement counts the canary's pods. From the 2 pods
/// step 0's weight gives (ceil(20% of 6)) to 3, then down to 2 (the
/// stopped pod's series go stale): a measurement that saw another count
/// would fail the analysis (failureLimit 0) and abort the Rollout.
#[test]
fn argo_set_canary_scale_adds_and_removes_canary_pods_in_the_series() {
    let dir = std::env::temp_dir().join(format!("sim-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("scaled.yaml");
    let pods = r#"count(count by (pod) (rate(istio_requests_total{destination_workload="goldengoose"}[30s])))"#;
    std::fs::write(
        &path,
        format!(
            "apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: goldengoose}}
spec:
  strategy:
    canary:
      trafficRouting: {{istio: {{virtualService: {{name: goldengoose}}}}}}
      steps:
      - setWeight: 20
      - setCanaryScale: {{replicas: 3}}
      - analysis: {{templates: [{{templateName: three}}]}}
      - setCanaryScale: {{replicas: 2}}
      - pause: {{duration: 2m}}
      - analysis: {{templates: [{{templateName: two}}]}}
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {{name: three}}
spec:
  metrics:
  - name: three-pods
    initialDelay: 2m
    successCondition: result[0] == 3
    provider: {{prometheus: {{query: '{pods}'}}}}
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {{name: two}}
spec:
  metrics:
  - name: two-pods
    successCondition: result[0] == 2
    provider: {{prometheus: {{query: '{pods}'}}}}
"
        ),
    )
    .unwrap();
    promotes_every_aa_typical_release(&path, &dir);
}

/// A run on a thread whose last run was of the same analysis restarts that
/// run's series instead of building them (`Scrape::restart`): the same
/// outcome as a run on a fresh thread, for every seed.
#[test]
fn a_run_restarting_the_last_runs_series_equals_a_fresh_one() {
    let sc = catalog("latency-25pct");
    let a = analyses(&sc.path, &["argo-rollout.yaml", "flagger-canary.yaml"]);
    let prepared = sim::study::prepare_side_by_side(std::slice::from_ref(&sc), &a).unwrap();
    for p in &prepared {
        let fresh = |seed: u64| {
            std::thread::scope(|s| {
                s.spawn(|| {
                    format!(
                        "{:?}",
                        sim::run_once(p, seed, false, &mut judge::Workspace::new()).0
                    )
                })
                .join()
                .unwrap()
            })
        };
        let mut ws = judge::Workspace::new();
        for seed in [11, 12, 13] {
            let reused = format!("{:?}", sim::run_once(p, seed, false, &mut ws).0);
            assert_eq!(reused, fresh(seed), "seed {seed}");
        }
    }
}

/// Argo's pod counts with traffic routing and no `setCanaryScale`
/// (utils/replicaset/canary.go `CalculateReplicaCountsForTrafficRoutedCanary`,
/// `CheckMinPodsPerReplicaSet`), seen through the Rollout's own queries on
/// the simulated Prometheus, for the catalog's 6 replicas with
/// `minPodsPerReplicaSet: 2` and `dynamicStableScale`:
///
/// | step | canary | stable (goldengoose-primary) |
/// |---|---|---|
/// | setWeight 10 | max(ceil(0.6), 2) = 2 | max(ceil(5.4), ceil(6 x 90%)) = 6 |
/// | setWeight 50 | ceil(3) = 3 | ceil(3) = 3 once the traffic moved |
///
/// A measurement that saw other counts fails the analysis (failureLimit 0)
/// and aborts the Rollout.
#[test]
fn argo_pods_follow_the_weight_with_min_pods_and_dynamic_stable_scale() {
    let dir = std::env::temp_dir().join(format!("sim-follow-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("follow.yaml");
    let pods = |workload: &str| {
        format!(
            r#"count(count by (pod) (rate(istio_requests_total{{destination_workload="{workload}"}}[30s])))"#
        )
    };
    let metrics = |canary: u32, stable: u32| {
        format!(
            "  - name: canary-pods
    initialDelay: 2m
    successCondition: result[0] == {canary}
    provider: {{prometheus: {{query: '{}'}}}}
  - name: stable-pods
    initialDelay: 2m
    successCondition: result[0] == {stable}
    provider: {{prometheus: {{query: '{}'}}}}
",
            pods("goldengoose"),
            pods("goldengoose-primary")
        )
    };
    std::fs::write(
        &path,
        format!(
            "apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: goldengoose}}
spec:
  strategy:
    canary:
      trafficRouting: {{istio: {{virtualService: {{name: goldengoose}}}}}}
      minPodsPerReplicaSet: 2
      dynamicStableScale: true
      steps:
      - setWeight: 10
      - analysis: {{templates: [{{templateName: ten}}]}}
      - setWeight: 50
      - analysis: {{templates: [{{templateName: fifty}}]}}
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {{name: ten}}
spec:
  metrics:
{}---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {{name: fifty}}
spec:
  metrics:
{}",
            metrics(2, 6),
            metrics(3, 3)
        ),
    )
    .unwrap();
    promotes_every_aa_typical_release(&path, &dir);
}

/// Kayenta analyses of a side-by-side study whose releases generate the
/// same series (the same traffic, pods and metric families: configs that
/// differ in queries, effect sizes or score thresholds) generate them once
/// per seed and read them each;
/// those that differ only in thresholds share the windows' verdicts too;
/// a peer's release runs on its own. Every outcome is the one the
/// (scenario, analysis) pair has on its own.
#[test]
fn kayenta_analyses_on_the_same_traffic_share_each_seeds_series() {
    let dir = std::env::temp_dir().join(format!("sim-share-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let base: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(analysis_file("kayenta.json")).unwrap())
            .unwrap();
    let mut strict = base.clone();
    strict["classifier"]["scoreThresholds"] = serde_json::json!({"pass": 95, "marginal": 90});
    // other metrics over the same families: p95 for p99, an allowed
    // increase on CPU
    let mut tuned = base.clone();
    for m in tuned["metrics"].as_array_mut().unwrap() {
        if m["name"] == "latency_p99" {
            let q = m["query"]["customInlineTemplate"].as_str().unwrap();
            let q = q.replace("histogram_quantile(0.99", "histogram_quantile(0.95");
            m["query"]["customInlineTemplate"] = q.into();
            m["name"] = "latency_p95".into();
        }
        if m["name"] == "cpu" {
            m["analysisConfigurations"]["canary"]["effectSize"] =
                serde_json::json!({"allowedIncrease": 1.2});
        }
    }
    assert_ne!(tuned["metrics"], base["metrics"]);
    let write = |name: &str, v: &serde_json::Value| {
        let p = dir.join(name);
        std::fs::write(&p, serde_json::to_string(v).unwrap()).unwrap();
        p
    };
    let files = [
        analysis_file("kayenta.json"),
        write("strict.json", &strict),
        write("tuned.json", &tuned),
        analysis_file("flagger-canary.yaml"),
    ];
    let scenarios = [catalog("latency-10pct"), catalog("aa-typical")];
    let a: Vec<StudyAnalysis> = files
        .iter()
        .map(|f| {
            let file = analysis::read(f).unwrap();
            let own = match file.kind {
                FileKind::Kayenta => scenarios
                    .iter()
                    .map(|s| Scenario::load(&s.path, Some(&file.path)).unwrap())
                    .collect(),
                FileKind::Peer(_) => Vec::new(),
            };
            StudyAnalysis {
                file,
                scenarios: own,
            }
        })
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    let o = opts(40);
    let prepared = sim::study::prepare_side_by_side(&scenarios, &a).unwrap();
    let alone = sim::study::run_all(&prepared, o, &|_, _| {});
    let (shared, stats) = sim::study::side_by_side_outcomes(&prepared, a.len(), o, &|_, _| {});
    assert_eq!(shared, alone);
    // per scenario and seed: the first Kayenta analysis generates, the
    // other two read its series; Flagger's release is not counted
    assert_eq!(stats.runs, 2 * 40 * 3);
    assert_eq!(stats.reused_series, 2 * 40 * 2, "{stats:?}");
    assert_eq!((stats.own_series, stats.forked), (0, 0), "{stats:?}");
    assert!(stats.verdicts_shared > 0, "{stats:?}");
    // the thresholds matter: the strict config fails A/A releases the default
    // passes
    let rolled_back = |i: usize| {
        shared[i]
            .iter()
            .filter(|r| r.decision == ReleaseEnd::Rollback)
            .count()
    };
    assert!(
        rolled_back(5) > rolled_back(4),
        "{} {}",
        rolled_back(5),
        rolled_back(4)
    );
}

/// Peer files of one tool on the same steps (an Argo user comparing
/// AnalysisTemplates, a Flagger user comparing thresholds) release each
/// seed from one generation and one scrape of the series; a file on other
/// steps runs on its own. Every outcome is the one the (scenario,
/// analysis) pair has on its own.
#[test]
fn peer_files_on_the_same_steps_share_each_seeds_series() {
    let dir = std::env::temp_dir().join(format!("sim-peer-share-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let argo = std::fs::read_to_string(analysis_file("argo-rollout.yaml")).unwrap();
    let flagger = std::fs::read_to_string(analysis_file("flagger-canary.yaml")).unwrap();
    let edit = |text: &str, from: &str, to: &str| {
        assert!(text.contains(from), "{from}");
        text.replacen(from, to, 1)
    };
    let write = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let files = [
        analysis_file("argo-rollout.yaml"),
        // stricter conditions: other verdicts, other decision times
        write(
            "argo-strict.yaml",
            edit(
                &edit(&argo, "result[0] >= 0.95", "result[0] >= 0.999"),
                "result[0] <= 300",
                "result[0] <= 200",
            ),
        ),
        // other steps: other traffic from the first weight on
        write(
            "argo-steps.yaml",
            edit(&argo, "- setWeight: 5\n", "- setWeight: 10\n"),
        ),
        analysis_file("flagger-canary.yaml"),
        write(
            "flagger-strict.yaml",
            edit(&flagger, "max: 300", "max: 200"),
        ),
    ];
    let a: Vec<StudyAnalysis> = files
        .iter()
        .map(|f| StudyAnalysis {
            file: analysis::read(f).unwrap(),
            scenarios: Vec::new(),
        })
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    let scenarios = [
        catalog("latency-10pct"),
        catalog("aa-typical"),
        catalog("slow-start"),
        catalog("errors-0.5pct"),
    ];
    let o = opts(30);
    let prepared = sim::study::prepare_side_by_side(&scenarios, &a).unwrap();
    let alone = sim::study::run_all(&prepared, o, &|_, _| {});
    let (shared, stats) = sim::study::side_by_side_outcomes(&prepared, a.len(), o, &|_, _| {});
    for (i, (s, al)) in shared.iter().zip(&alone).enumerate() {
        assert_eq!(s, al, "pair {i}");
    }
    // per scenario and seed: three Argo files (the strict one reads the
    // first's series, the one on other steps generates its own) and two
    // Flagger files (the second reads the first's until a check the first
    // passed fails: Flagger then holds the weight the first stepped, and
    // the run goes on on its own from there)
    assert_eq!(stats.runs, 4 * 30 * 5, "{stats:?}");
    assert_eq!(stats.own_series, 4 * 30, "{stats:?}");
    assert_eq!(stats.reused_series, 4 * 30 * 2, "{stats:?}");
    assert!(stats.forked > 0, "{stats:?}");
    // the conditions matter: the strict files roll back releases the
    // catalog's promote
    let promoted = |i: usize| {
        shared[i]
            .iter()
            .filter(|r| r.decision == ReleaseEnd::Promote)
            .count()
    };
    // aa-typical is the second scenario: pairs 5..10
    assert!(promoted(5) > promoted(6), "{} {}", promoted(5), promoted(6));
    assert!(promoted(8) > promoted(9), "{} {}", promoted(8), promoted(9));
}
