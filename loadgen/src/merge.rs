//! Merging the reports of several loadgen runs that drove the same service
//! at the same time (the pods of one Kubernetes Job, say) into one view:
//! counts and rates summed per target, percentiles read from the merged HDR
//! histograms (never averaged percentiles, which mean nothing).
//!
//! Each `--json` report carries every target's run histograms in
//! HdrHistogram's V2 + DEFLATE form, base64: the encoding of HdrHistogram's
//! interval logs, so other HdrHistogram tools can read them too. This
//! module encodes them ([`Histograms::of`]), decodes and adds them
//! ([`merge`]), and is the `loadgen merge` command ([`run_merge`]).
//!
//! Not for: per-interval views (intervals keep summaries only, and pods do
//! not start at the same instant), or runs made one after another (rates
//! are summed, as for pods running side by side).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

use crate::stats::{ErrorCounts, Latency, TargetReport};

/// A target's whole-run histograms (latency in microseconds), each in
/// HdrHistogram V2 + DEFLATE form, base64 (standard alphabet, padded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Histograms {
    /// Corrected latency (from the intended send time).
    pub corrected: String,
    /// Uncorrected latency (from the actual send time).
    pub uncorrected: String,
    /// Corrected latency per status class that had responses.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_status: BTreeMap<String, String>,
}

impl Histograms {
    /// Encode a target's histograms; `None` only if encoding fails (it
    /// writes to memory, so it does not).
    pub(crate) fn of<'a>(
        corrected: &Histogram<u64>,
        uncorrected: &Histogram<u64>,
        by_status: impl Iterator<Item = (&'a str, &'a Histogram<u64>)>,
    ) -> Option<Histograms> {
        Some(Histograms {
            corrected: encode(corrected)?,
            uncorrected: encode(uncorrected)?,
            by_status: by_status
                .filter(|(_, h)| !h.is_empty())
                .map(|(k, h)| Some((k.to_string(), encode(h)?)))
                .collect::<Option<_>>()?,
        })
    }
}

/// One histogram as V2 + DEFLATE, base64.
pub fn encode(h: &Histogram<u64>) -> Option<String> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new().serialize(h, &mut bytes).ok()?;
    Some(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// One histogram back from [`encode`]'s form (plain V2 is read too).
pub fn decode(text: &str) -> Result<Histogram<u64>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| format!("not base64: {e}"))?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("not an HDR histogram: {e}"))
}

/// Why reports could not be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// A report file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not a loadgen `--json` report.
    #[error("{path}: not a loadgen --json report: at {json_path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Where in the JSON.
        json_path: String,
        /// The parser's message.
        message: String,
    },
    /// A target has responses but no histograms to merge.
    #[error(
        "{path}: target {target} has {responses} responses but no histograms (written by a loadgen without `loadgen merge` support?)"
    )]
    NoHistograms {
        /// The file.
        path: PathBuf,
        /// The target.
        target: String,
        /// Its responses.
        responses: u64,
    },
    /// A histogram is unreadable or cannot be added.
    #[error("{path}: target {target}, histogram {which}: {problem}")]
    Histogram {
        /// The file.
        path: PathBuf,
        /// The target.
        target: String,
        /// `corrected`, `uncorrected` or a status class.
        which: String,
        /// What is wrong.
        problem: String,
    },
    /// Nothing to merge.
    #[error("no report files given")]
    NoInputs,
    /// The merged JSON could not be written.
    #[error("--json {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The summary could not be written.
    #[error("writing the summary: {0}")]
    Output(#[from] std::io::Error),
}

/// What merging reads of a report: a loadgen `--json` report, or the
/// output of `loadgen merge` itself (so merges can be merged again).
#[derive(Debug, Clone, Deserialize)]
struct Input {
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    seed: Option<u64>,
    duration_s: f64,
    achieved_rate: f64,
    total: TargetReport,
    targets: Vec<TargetReport>,
}

/// One merged report, as `loadgen merge` read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergedInput {
    /// The file.
    pub file: PathBuf,
    /// Its mode (none for a merged report).
    pub mode: Option<String>,
    /// Its seed (none for a merged report).
    pub seed: Option<u64>,
    /// Its load phase, seconds.
    pub duration_s: f64,
    /// Its requests, all targets.
    pub requests: u64,
    /// Its achieved rate, requests per second.
    pub achieved_rate: f64,
}

/// The output of `loadgen merge` (`--json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergedReport {
    /// The reports merged, in the order given.
    pub inputs: Vec<MergedInput>,
    /// The longest load phase among them, seconds.
    pub duration_s: f64,
    /// The sum of their achieved rates (they ran side by side).
    pub achieved_rate: f64,
    /// All targets of all reports together.
    pub total: TargetReport,
    /// Per target name, in order of first appearance; counts and rates
    /// summed, latencies from the merged histograms.
    pub targets: Vec<TargetReport>,
}

/// A target being merged.
struct Acc {
    report: TargetReport,
    urls_agree: bool,
    corrected: Option<Histogram<u64>>,
    uncorrected: Option<Histogram<u64>>,
    by_status: BTreeMap<String, Histogram<u64>>,
}

impl Acc {
    fn new(t: &TargetReport) -> Acc {
        Acc {
            report: TargetReport {
                name: t.name.clone(),
                url: t.url.clone(),
                requests: 0,
                responses: 0,
                status: BTreeMap::new(),
                errors: ErrorCounts::default(),
                dropped: 0,
                late_starts: 0,
                rate: 0.0,
                latency_ms: None,
                uncorrected_latency_ms: None,
                latency_by_status_ms: BTreeMap::new(),
                histograms: None,
            },
            urls_agree: true,
            corrected: None,
            uncorrected: None,
            by_status: BTreeMap::new(),
        }
    }

    fn add(&mut self, path: &Path, t: &TargetReport) -> Result<(), MergeError> {
        let r = &mut self.report;
        self.urls_agree &= r.url == t.url;
        r.requests += t.requests;
        r.responses += t.responses;
        for (k, n) in &t.status {
            *r.status.entry(k.clone()).or_default() += n;
        }
        r.errors.connect += t.errors.connect;
        r.errors.timeout += t.errors.timeout;
        r.errors.reset += t.errors.reset;
        r.errors.other += t.errors.other;
        r.dropped += t.dropped;
        r.late_starts += t.late_starts;
        r.rate += t.rate;
        let Some(h) = &t.histograms else {
            if t.responses > 0 {
                return Err(MergeError::NoHistograms {
                    path: path.to_owned(),
                    target: t.name.clone(),
                    responses: t.responses,
                });
            }
            return Ok(());
        };
        let err = |which: &str, problem: String| MergeError::Histogram {
            path: path.to_owned(),
            target: t.name.clone(),
            which: which.to_string(),
            problem,
        };
        let add = |into: &mut Option<Histogram<u64>>, which: &str, text: &str| {
            let h = decode(text).map_err(|p| err(which, p))?;
            match into {
                None => *into = Some(h),
                Some(m) => m
                    .add(&h)
                    .map_err(|e| err(which, format!("cannot add: {e:?}")))?,
            }
            Ok::<(), MergeError>(())
        };
        add(&mut self.corrected, "corrected", &h.corrected)?;
        add(&mut self.uncorrected, "uncorrected", &h.uncorrected)?;
        for (class, text) in &h.by_status {
            let mut slot = self.by_status.remove(class);
            add(&mut slot, class, text)?;
            if let Some(m) = slot {
                self.by_status.insert(class.clone(), m);
            }
        }
        Ok(())
    }

    fn finish(self) -> TargetReport {
        let mut r = self.report;
        if !self.urls_agree {
            r.url = None;
        }
        r.rate = round3(r.rate);
        r.latency_ms = self.corrected.as_ref().and_then(Latency::of);
        r.uncorrected_latency_ms = self.uncorrected.as_ref().and_then(Latency::of);
        r.latency_by_status_ms = self
            .by_status
            .iter()
            .filter_map(|(k, h)| Some((k.clone(), Latency::of(h)?)))
            .collect();
        r.histograms = match (&self.corrected, &self.uncorrected) {
            (Some(c), Some(u)) => {
                Histograms::of(c, u, self.by_status.iter().map(|(k, h)| (k.as_str(), h)))
            }
            _ => None,
        };
        r
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Read one report (or merged report) file.
fn read(path: &Path) -> Result<Input, MergeError> {
    let text = std::fs::read_to_string(path).map_err(|source| MergeError::Read {
        path: path.to_owned(),
        source,
    })?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de).map_err(|e| MergeError::Parse {
        path: path.to_owned(),
        json_path: e.path().to_string(),
        message: e.into_inner().to_string(),
    })
}

/// Merge report files (loadgen `--json` reports or earlier merges).
pub fn merge_files(paths: &[PathBuf]) -> Result<MergedReport, MergeError> {
    let inputs = paths
        .iter()
        .map(|p| Ok((p.clone(), read(p)?)))
        .collect::<Result<Vec<_>, MergeError>>()?;
    merge_inputs(&inputs)
}

fn merge_inputs(inputs: &[(PathBuf, Input)]) -> Result<MergedReport, MergeError> {
    if inputs.is_empty() {
        return Err(MergeError::NoInputs);
    }
    let mut targets: Vec<Acc> = Vec::new();
    let mut total: Option<Acc> = None;
    let mut merged = Vec::new();
    for (path, r) in inputs {
        for t in &r.targets {
            let i = match targets.iter().position(|a| a.report.name == t.name) {
                Some(i) => i,
                None => {
                    targets.push(Acc::new(t));
                    targets.len() - 1
                }
            };
            targets[i].add(path, t)?;
        }
        total
            .get_or_insert_with(|| Acc::new(&r.total))
            .add(path, &r.total)?;
        merged.push(MergedInput {
            file: path.clone(),
            mode: r.mode.clone(),
            seed: r.seed,
            duration_s: r.duration_s,
            requests: r.total.requests,
            achieved_rate: r.achieved_rate,
        });
    }
    let total = total
        .map(Acc::finish)
        .unwrap_or_else(|| unreachable!("at least one input"));
    Ok(MergedReport {
        duration_s: merged.iter().map(|i| i.duration_s).fold(0.0, f64::max),
        achieved_rate: round3(merged.iter().map(|i| i.achieved_rate).sum()),
        inputs: merged,
        total,
        targets: targets.into_iter().map(Acc::finish).collect(),
    })
}

/// Arguments of `loadgen merge`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Example (three loadgen pods of one Job, each run with --json):
  loadgen merge pod-0.json pod-1.json pod-2.json --json merged.json

Counts and rates are summed (the runs went side by side); p50..max come from the
merged histograms. A merged file can be merged again.")]
pub struct MergeArgs {
    /// Reports written by `loadgen --json FILE` (or by `loadgen merge --json`).
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Write the merged report as JSON to this file.
    #[arg(long, value_name = "OUT")]
    pub json: Option<PathBuf>,
    /// No summary.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// `loadgen merge`: merge, write `--json`, print the summary to `out`.
pub fn run_merge<W: Write>(args: &MergeArgs, out: &mut W) -> Result<MergedReport, MergeError> {
    let merged = merge_files(&args.files)?;
    if let Some(path) = &args.json {
        let write = |path: &PathBuf| -> std::io::Result<()> {
            let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
            serde_json::to_writer_pretty(&mut f, &merged)?;
            writeln!(f)?;
            f.flush()
        };
        write(path).map_err(|source| MergeError::Write {
            path: path.clone(),
            source,
        })?;
    }
    if !args.quiet {
        writeln!(
            out,
            "merged {} reports: {} requests, longest run {:.2} s, {:.1}/s together",
            merged.inputs.len(),
            merged.total.requests,
            merged.duration_s,
            merged.achieved_rate
        )?;
        crate::cli::write_targets(merged.targets.iter().chain([&merged.total]), out)?;
        writeln!(
            out,
            "latency in ms from the intended send time (coordinated-omission corrected), from the merged histograms"
        )?;
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::{Duration, Instant};

    use super::*;
    use crate::stats::{Answer, Outcome, Recorder, ReportHeader};

    /// A report of a run whose responses took `latencies_us` (status from
    /// `status`), over two targets.
    fn report(latencies_us: &[(usize, u64, u16)]) -> crate::Report {
        let start = Instant::now();
        let mut rec = Recorder::new(
            start,
            Duration::from_secs(3600),
            Duration::from_millis(10),
            vec![
                ("baseline".into(), "http://127.0.0.1:1/".into()),
                ("canary".into(), "http://127.0.0.1:2/".into()),
            ],
            None,
        );
        for &(target, us, status) in latencies_us {
            let sent = start + Duration::from_millis(1);
            rec.record(&Outcome {
                target,
                intended: start,
                sent,
                done: start + Duration::from_micros(us),
                result: Ok(Answer {
                    status,
                    version: None,
                }),
            });
        }
        rec.finish(
            start + Duration::from_secs(10),
            start + Duration::from_secs(10),
            ReportHeader {
                mode: "closed-loop".into(),
                target_rate: None,
                connections: 1,
                seed: 1,
            },
        )
    }

    fn input(r: &crate::Report) -> Input {
        serde_json::from_str(&serde_json::to_string(r).unwrap()).unwrap()
    }

    /// Deterministic, spread-out latencies: a bulk and a long tail.
    fn samples(seed: u64, n: usize) -> Vec<(usize, u64, u16)> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = (x >> 11) as f64 / (1u64 << 53) as f64;
                let us = 1500 + (200.0 * (-u.ln()).powf(2.0) * 1000.0) as u64;
                let target = (x >> 3) as usize % 2;
                let status = if x.is_multiple_of(17) { 503 } else { 200 };
                (target, us, status)
            })
            .collect()
    }

    #[test]
    fn merged_histograms_equal_one_histogram_of_all_samples() {
        let a = samples(1, 3000);
        let b = samples(2, 5000);
        let ra = report(&a);
        let rb = report(&b);
        let all: Vec<_> = a.iter().chain(&b).copied().collect();
        let rall = report(&all);
        let m = merge_inputs(&[
            (PathBuf::from("a.json"), input(&ra)),
            (PathBuf::from("b.json"), input(&rb)),
        ])
        .unwrap();
        // the merged view is the view of one run of all samples: counts,
        // percentiles per target, per status, corrected and uncorrected
        for name in ["baseline", "canary"] {
            let mt = m.targets.iter().find(|t| t.name == name).unwrap();
            let one = rall.target(name).unwrap();
            assert_eq!(mt.requests, one.requests);
            assert_eq!(mt.status, one.status);
            assert_eq!(mt.latency_ms, one.latency_ms, "{name}");
            assert_eq!(mt.uncorrected_latency_ms, one.uncorrected_latency_ms);
            assert_eq!(mt.latency_by_status_ms, one.latency_by_status_ms);
            assert_eq!(mt.histograms, one.histograms, "{name}");
            assert_eq!(mt.url, one.url);
            // and not what averaging the two runs' percentiles would give
            let (pa, pb) = (
                ra.target(name).unwrap().latency_ms.unwrap().p99,
                rb.target(name).unwrap().latency_ms.unwrap().p99,
            );
            assert!(mt.latency_ms.unwrap().p99 != (pa + pb) / 2.0 || pa == pb);
        }
        assert_eq!(m.total.requests, 8000);
        assert_eq!(m.total.latency_ms, rall.total.latency_ms);
        assert_eq!(m.total.histograms, rall.total.histograms);
        // two 10 s runs side by side
        assert_eq!(m.achieved_rate, 800.0);
        assert_eq!(m.total.rate, 800.0);
        assert_eq!(m.inputs.len(), 2);

        // decoded histograms are the recorded ones; the encoding is
        // HdrHistogram's compressed V2 in base64, as in its interval logs
        let text = &rall.total.histograms.as_ref().unwrap().corrected;
        assert!(text.starts_with("HISTFAA"), "{text}");
        let h = decode(text).unwrap();
        assert_eq!(h.len(), 8000);
        assert_eq!(
            h.value_at_quantile(0.99) as f64 / 1000.0,
            rall.total.latency_ms.unwrap().p99
        );
    }

    #[test]
    fn a_merge_can_be_merged_again_and_bad_inputs_name_the_file() {
        let dir = std::env::temp_dir().join(format!("loadgen-merge-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, r: &crate::Report| {
            let p = dir.join(name);
            std::fs::write(&p, serde_json::to_string_pretty(r).unwrap()).unwrap();
            p
        };
        let (a, b, c) = (samples(3, 500), samples(4, 700), samples(5, 900));
        let pa = write("a.json", &report(&a));
        let pb = write("b.json", &report(&b));
        let pc = write("c.json", &report(&c));
        let ab = dir.join("ab.json");
        let mut out = Vec::new();
        run_merge(
            &MergeArgs {
                files: vec![pa.clone(), pb.clone()],
                json: Some(ab.clone()),
                quiet: false,
            },
            &mut out,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("merged 2 reports: 1200 requests") && text.contains("p99.9"),
            "{text}"
        );
        assert!(text.contains("canary") && text.contains("total"), "{text}");
        let twice = merge_files(&[ab, pc.clone()]).unwrap();
        let once = merge_files(&[pa.clone(), pb, pc]).unwrap();
        assert_eq!(twice.targets, once.targets);
        assert_eq!(twice.total, once.total);

        // a report without histograms (an older loadgen), a corrupt one, a non-report
        let mut old: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&pa).unwrap()).unwrap();
        old["targets"][1]
            .as_object_mut()
            .unwrap()
            .remove("histograms");
        let po = dir.join("old.json");
        std::fs::write(&po, old.to_string()).unwrap();
        let e = merge_files(&[pa.clone(), po]).unwrap_err().to_string();
        assert!(
            e.contains("old.json: target canary has") && e.contains("no histograms"),
            "{e}"
        );
        let mut bad = old.clone();
        bad["targets"][0]["histograms"]["corrected"] = "bm90IGEgaGlzdG9ncmFt".into();
        let pbad = dir.join("bad.json");
        std::fs::write(&pbad, bad.to_string()).unwrap();
        let e = merge_files(&[pbad]).unwrap_err().to_string();
        assert!(
            e.contains("bad.json: target baseline, histogram corrected: not an HDR histogram"),
            "{e}"
        );
        let pn = dir.join("not.json");
        std::fs::write(&pn, "{\"x\": 1}").unwrap();
        let e = merge_files(&[pn]).unwrap_err().to_string();
        assert!(e.contains("not.json: not a loadgen --json report"), "{e}");
        let e = merge_files(&[dir.join("missing.json")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.json"), "{e}");
        assert!(matches!(merge_files(&[]), Err(MergeError::NoInputs)));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
