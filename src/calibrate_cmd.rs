//! `canarylab calibrate`: a scenario whose `[service]` is fitted to a
//! service's own metrics in its Prometheus.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use cluster::PromApi;
use cluster::calibrate::{self, Calibration, Window, uncertainty, write};

use crate::Exit;

/// Arguments of `canarylab calibrate`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  canarylab calibrate --prometheus http://127.0.0.1:9090 --selector '{app=\"shop\"}' --last 24h --out shop.toml
  canarylab calibrate --prometheus http://127.0.0.1:9090 --from 2026-12-01T00:00:00Z --to 2026-12-08T00:00:00Z --out shop.toml
  canarylab sim scenarios/catalog --service shop.toml     # the catalog's regressions on your service
  canarylab sim shop.toml --config scenarios/catalog/canary-config.json   # A/A false alarms on your service
  canarylab calibrate ... --out shop.toml --aa-config scenarios/catalog/canary-config.json
      # the same A/A prediction in the summary, with how much of its
      # uncertainty comes from the fit (--draws parameter draws)
  canarylab calibrate ... --telemetry shop-scenario.toml --out shop.toml
      # a service whose series are renamed as that scenario's [telemetry] says

Reads goldengoose's families (http_requests_total{code},
http_request_duration_seconds, process_cpu_seconds_total,
process_resident_memory_bytes) or Istio's (istio_requests_total{response_code},
istio_request_duration_milliseconds, reporter=\"destination\") per pod (the pod
label, else instance), at --step, which should be the scrape interval. With
--telemetry FILE (a scenario, or a file holding only a [telemetry] table),
every metric and label name read is the renamed one: the families of
[telemetry.metrics] (the request counter, the duration histogram's _bucket,
_sum and _count, the CPU and memory series) and the labels of
[telemetry.labels] (code, response_code, le, pod, reporter); the written file
keeps that [telemetry], so `canarylab sim` of it writes the same names. The
--selector is in the service's own (renamed) label names. Writes
OUT (a scenario file: each fitted value with its standard error and the data
it came from; what could not be fitted keeps the default and says why) and
OUT with .html (the fits drawn over the data). Nothing is written unless
everything was read.")]
pub struct CalibrateArgs {
    /// The Prometheus to read, http://HOST:PORT[/PREFIX].
    #[arg(long, value_name = "URL")]
    pub prometheus: String,
    /// Label matchers selecting the service's series (its production pods).
    #[arg(long, default_value = "", value_name = "'{app=\"shop\"}'")]
    pub selector: String,
    /// The service's metric and label names: the `[telemetry]` of this
    /// scenario file (or of a file holding only that table) [default:
    /// goldengoose's and Istio's own names].
    #[arg(long, value_name = "FILE.toml")]
    pub telemetry: Option<PathBuf>,
    /// Start of the window: unix seconds or RFC 3339 (2026-12-01T00:00:00Z).
    #[arg(long, requires = "to", conflicts_with = "last", value_name = "T")]
    pub from: Option<String>,
    /// End of the window.
    #[arg(long, requires = "from", value_name = "T")]
    pub to: Option<String>,
    /// The window: this long up to now [default: 6h].
    #[arg(long, value_name = "DURATION")]
    pub last: Option<String>,
    /// Query step: the scrape interval (the simulator's scrape step).
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub step: String,
    /// The scenario file to write.
    #[arg(long, value_name = "FILE.toml")]
    pub out: PathBuf,
    /// The HTML page [default: OUT with .html].
    #[arg(long, value_name = "FILE.html")]
    pub html: Option<PathBuf>,
    /// No progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Also predict this canary config's (Kayenta JSON) A/A false-alarm
    /// rate on the fitted service, and the fit's uncertainty in it.
    #[arg(long, value_name = "CONFIG.json")]
    pub aa_config: Option<PathBuf>,
    /// With --aa-config: simulated releases at the fitted values.
    #[arg(long, default_value_t = 2000, value_name = "N")]
    pub aa_runs: u32,
    /// With --aa-config: draws of the fitted parameters from their
    /// sampling distributions (0: none).
    #[arg(long, default_value_t = 100, value_name = "B")]
    pub draws: usize,
    /// With --aa-config: simulated releases per draw.
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub draw_runs: u32,
}

/// An A/A prediction on a calibrated service ([`aa_prediction`]).
#[derive(Debug, Clone)]
pub struct AaPrediction {
    /// Releases rolled back at the fitted values.
    pub rolled_back: u64,
    /// Releases simulated at the fitted values.
    pub runs: u64,
    /// The fit's uncertainty carried into the rate (with draws).
    pub propagation: Option<uncertainty::Propagation>,
}

impl AaPrediction {
    /// Lines for a person.
    pub fn text(&self) -> String {
        let p = self.rolled_back as f64 / self.runs.max(1) as f64;
        match &self.propagation {
            Some(prop) => prop.text(Some((self.rolled_back, self.runs))),
            None => format!(
                "A/A false alarms at the fitted values: {}/{} = {:.1}% (no parameter draws)\n",
                self.rolled_back,
                self.runs,
                100.0 * p
            ),
        }
    }
}

/// The A/A false-alarm rate `scenario` (its pipeline and canary config)
/// has with the service `cal` describes: `runs` simulated releases at the
/// fitted values (study seed `seed`), and a parametric bootstrap of the
/// fit's uncertainty ([`uncertainty`]): `draws` draws of the parameters,
/// `draw_runs` releases each (study seeds `seed + 1 + b`). The service
/// goes through the written file's text ([`write::scenario_toml`], its
/// clamps) as `canarylab sim --service` would read it.
pub fn aa_prediction(
    scenario: &scenarios::Scenario,
    cal: &Calibration,
    prov: &write::Provenance,
    runs: u32,
    (draws, draw_runs): (usize, u32),
    seed: u64,
) -> anyhow::Result<AaPrediction> {
    let release = |c: &Calibration, runs: u32, seed: u64| -> anyhow::Result<(u64, u64)> {
        let text = write::scenario_toml(c, prov);
        let (service, step) = scenarios::parse_service(&text, Path::new("(fitted service)"))
            .context("internal error: a drawn service does not validate")?;
        let mut sc = scenario.clone();
        sc.file.service = service.at_step(step, sc.file.analysis.scrape_step_s);
        let opts = sim::StudyOptions {
            runs,
            seed,
            threads: 0,
            examples: false,
        };
        let study = sim::run_study(std::slice::from_ref(&sc), opts, &|_, _| {})?;
        let v = &study
            .scenarios
            .first()
            .context("internal error: the study has no result")?
            .verdicts;
        let n = v.promoted + v.rolled_back + v.deploy_failed + v.build_failed + v.paused;
        Ok((u64::from(v.rolled_back), u64::from(n)))
    };
    let (rolled_back, n) = release(cal, runs, seed)?;
    let mut normal = uncertainty::normals(seed);
    let counts = (0..draws)
        .map(|b| {
            let c = uncertainty::draw(cal, &mut normal);
            release(&c, draw_runs, seed.wrapping_add(1 + b as u64))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(AaPrediction {
        rolled_back,
        runs: n,
        propagation: uncertainty::Propagation::from_counts(&counts),
    })
}

/// The first of `scenario`'s canary-config queries (as the simulator
/// evaluates them) that names a family or label its `[telemetry]` renames:
/// the simulated service has no series or label of that name, so the
/// metric would read nothing. `None` when every query uses the service's
/// names.
pub fn default_names_in_queries(scenario: &scenarios::Scenario) -> Option<String> {
    let t = &scenario.file.telemetry;
    if t.metrics.is_empty() && t.labels.is_empty() {
        return None;
    }
    for (i, (m, source)) in scenario
        .config
        .metrics
        .iter()
        .zip(&scenario.sources)
        .enumerate()
    {
        let scope = scenarios::ScopeVars::new("canary");
        let Ok(q) = scenarios::query::metric_query(&scenario.config, i, source, &scope) else {
            continue;
        };
        for word in promql_identifiers(&q) {
            let (what, to) = match (t.metrics.get(word), t.labels.get(word)) {
                (Some(to), _) => ("series", to),
                (None, Some(to)) => ("label", to),
                (None, None) => continue,
            };
            return Some(format!(
                "metric \"{}\" reads {what} `{word}`, which the telemetry renames `{to}`: the service has no {what} of that name, so the metric would read nothing; write the config's queries in the service's names\n  query: {q}",
                m.name
            ));
        }
    }
    None
}

/// The identifiers of a PromQL expression outside its quoted strings
/// (metric and label names, functions, keywords).
fn promql_identifiers(q: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut quote = None;
    let mut escaped = false;
    let mut start = None;
    for (i, c) in q.char_indices() {
        if let Some(open) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == open {
                quote = None;
            }
            continue;
        }
        let ident = c.is_ascii_alphanumeric() || c == '_' || c == ':';
        match (ident, start) {
            (true, None) => start = Some(i),
            (false, Some(a)) => {
                out.push(&q[a..i]);
                start = None;
            }
            _ => {}
        }
        if matches!(c, '"' | '\'' | '`') {
            quote = Some(c);
        }
    }
    if let Some(a) = start {
        out.push(&q[a..]);
    }
    out
}

/// Parses `10s`, `500ms`, `6h`, `7d`, `1.5m`.
pub fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: f64 = n
        .parse()
        .with_context(|| format!("{text:?} is not a duration (e.g. 10s, 500ms, 6h, 7d)"))?;
    let s = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86_400.0,
        "w" => n * 7.0 * 86_400.0,
        _ => anyhow::bail!("{text:?}: unknown unit {unit:?} (ms, s, m, h, d, w)"),
    };
    if !(s.is_finite() && s > 0.0) {
        anyhow::bail!("{text:?} must be above 0");
    }
    Ok(Duration::from_secs_f64(s))
}

/// Parses unix seconds or RFC 3339 UTC (`2026-12-01T00:00:00Z`, fractions
/// and `+HH:MM` offsets allowed).
pub fn parse_time(text: &str) -> anyhow::Result<f64> {
    let t = text.trim();
    if let Ok(v) = t.parse::<f64>() {
        return Ok(v);
    }
    let bad = || {
        anyhow::anyhow!(
            "{text:?} is not a time: unix seconds or RFC 3339 like 2026-12-01T00:00:00Z"
        )
    };
    let (date, rest) = t.split_once(['T', ' ']).ok_or_else(bad)?;
    let mut d = date.split('-');
    let (y, m, day): (i64, i64, i64) = (
        d.next().and_then(|x| x.parse().ok()).ok_or_else(bad)?,
        d.next().and_then(|x| x.parse().ok()).ok_or_else(bad)?,
        d.next().and_then(|x| x.parse().ok()).ok_or_else(bad)?,
    );
    let (clock, offset) = if let Some(c) = rest.strip_suffix('Z') {
        (c, 0.0)
    } else if let Some(i) = rest.rfind(['+', '-']) {
        let (c, o) = rest.split_at(i);
        let sign = if o.starts_with('-') { -1.0 } else { 1.0 };
        let (oh, om) = o[1..].split_once(':').ok_or_else(bad)?;
        let oh: f64 = oh.parse().map_err(|_| bad())?;
        let om: f64 = om.parse().map_err(|_| bad())?;
        (c, sign * (oh * 3600.0 + om * 60.0))
    } else {
        return Err(bad());
    };
    let mut c = clock.split(':');
    let (hh, mm, ss): (f64, f64, f64) = (
        c.next().and_then(|x| x.parse().ok()).ok_or_else(bad)?,
        c.next().and_then(|x| x.parse().ok()).ok_or_else(bad)?,
        c.next().and_then(|x| x.parse().ok()).unwrap_or(0.0),
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh >= 24.0 || mm >= 60.0 || ss >= 61.0
    {
        return Err(bad());
    }
    // days from civil (Howard Hinnant's algorithm)
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(days as f64 * 86_400.0 + hh * 3600.0 + mm * 60.0 + ss - offset)
}

/// Writes `text` to `path` through a temporary file in the same directory
/// and a rename: the file is whole or untouched.
fn write_atomic(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .with_context(|| format!("{}: not a file name", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, text).with_context(|| format!("{}: cannot write", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow::anyhow!("{}: cannot write: {e}", path.display())
    })
}

/// Runs `canarylab calibrate`.
pub fn run(args: &CalibrateArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let step = parse_duration(&args.step).context("--step")?;
    let telemetry = args
        .telemetry
        .as_deref()
        .map(|path| {
            scenarios::load_telemetry(path)
                .map(|t| (path.display().to_string(), t))
                .context("--telemetry")
        })
        .transpose()?;
    let names = telemetry
        .as_ref()
        .map(|(_, t)| t.clone())
        .unwrap_or_default();
    let (from, to) = match (&args.from, &args.to) {
        (Some(f), Some(t)) => (
            parse_time(f).context("--from")?,
            parse_time(t).context("--to")?,
        ),
        _ => {
            let last = parse_duration(args.last.as_deref().unwrap_or("6h")).context("--last")?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            // whole steps, ending a step before now (the newest scrape may
            // not have landed yet)
            let s = step.as_secs_f64();
            let to = (now / s).floor() * s - s;
            (to - last.as_secs_f64(), to)
        }
    };
    // A week of histogram buckets is a heavy range query: wait as long as
    // Prometheus itself would evaluate it.
    let api = PromApi::from_url(&args.prometheus)?.with_read_timeout(cluster::prom::QUERY_TIMEOUT);
    let window = Window { from, to, step };
    let quiet = args.quiet;
    let mut progress = |line: &str| {
        if !quiet {
            eprintln!("calibrate: {line}");
        }
    };
    let started = std::time::Instant::now();
    let reading = calibrate::source::read_named(
        &api,
        &args.prometheus,
        &args.selector,
        &names,
        window,
        &mut progress,
    );
    let (obs, family, queries) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(reading)?;
    let read_s = started.elapsed().as_secs_f64();
    let fit_started = std::time::Instant::now();
    let cal = calibrate::calibrate(&obs);
    let fit_s = fit_started.elapsed().as_secs_f64();
    let prov = write::Provenance {
        url: args.prometheus.clone(),
        selector: args.selector.clone(),
        family: family.name().to_string(),
        from_unix: from,
        to_unix: to,
        queries: queries.into_iter().map(|q| (q.what, q.promql)).collect(),
        telemetry,
    };
    let toml = write::scenario_toml(&cal, &prov);
    // the A/A scenario the file is, judged by --aa-config (read before
    // anything is written: a bad config writes nothing)
    let aa = args
        .aa_config
        .as_deref()
        .map(|config| {
            let scenario = scenarios::Scenario::parse(&toml, &args.out, Some(config))
                .with_context(|| format!("--aa-config {}", config.display()))?;
            if let Some(why) = default_names_in_queries(&scenario) {
                anyhow::bail!("--aa-config {}: {why}", config.display());
            }
            Ok(scenario)
        })
        .transpose()?;
    // What is written must load as a scenario's service.
    scenarios::parse_service(&toml, &args.out)
        .context("internal error: the fitted scenario does not validate")?;
    let html_path = args
        .html
        .clone()
        .unwrap_or_else(|| args.out.with_extension("html"));
    let page = write::html(&cal, &prov);
    write_atomic(&args.out, &toml)?;
    write_atomic(&html_path, &page)?;
    for line in write::not_fitted(&cal) {
        eprintln!("calibrate: warning: {line}");
    }
    writeln!(
        out,
        "{} pods, {} steps of {} s ({} family); read in {read_s:.1} s, fitted in {fit_s:.2} s",
        obs.pods.len(),
        cal.steps,
        write::num(cal.step_s),
        family.name()
    )?;
    write!(out, "{}", write::summary(&cal))?;
    if let Some(scenario) = &aa {
        let started = std::time::Instant::now();
        let p = aa_prediction(
            scenario,
            &cal,
            &prov,
            args.aa_runs,
            (args.draws, args.draw_runs),
            1,
        )?;
        writeln!(
            out,
            "A/A false alarms of {} on this service ({:.1} s of simulation):",
            args.aa_config
                .as_deref()
                .unwrap_or(Path::new("?"))
                .display(),
            started.elapsed().as_secs_f64()
        )?;
        write!(out, "{}", p.text())?;
    }
    writeln!(
        out,
        "wrote {} and {}",
        args.out.display(),
        html_path.display()
    )?;
    Ok(Exit::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations_parse() {
        assert_eq!(parse_time("1800000000").ok(), Some(1.8e9));
        assert_eq!(parse_time("2027-01-15T08:00:00Z").ok(), Some(1.8e9));
        assert_eq!(parse_time("2027-01-15T09:00:00+01:00").ok(), Some(1.8e9));
        assert_eq!(parse_time("1970-01-01T00:00:00.5Z").ok(), Some(0.5));
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("2027-13-01T00:00:00Z").is_err());
        assert_eq!(parse_duration("10s").ok(), Some(Duration::from_secs(10)));
        assert_eq!(
            parse_duration("500ms").ok(),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            parse_duration("7d").ok(),
            Some(Duration::from_secs(604_800))
        );
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn configs_reading_renamed_names_are_found() {
        let catalog = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/catalog");
        let parse = |telemetry: &str| {
            scenarios::Scenario::parse(
                &format!(
                    "description = \"d\"\nexpect = \"pass\"\n[analysis]\nconfig = \"canary-config.json\"\n{telemetry}"
                ),
                &catalog.join("x.toml"),
                None,
            )
            .expect("parses")
        };
        assert_eq!(default_names_in_queries(&parse("")), None);
        let renamed =
            parse("[telemetry.metrics]\nprocess_resident_memory_bytes = \"shop_memory_bytes\"\n");
        let why = default_names_in_queries(&renamed).expect("memory's query reads the old name");
        assert!(
            why.contains("\"memory\"")
                && why.contains("`process_resident_memory_bytes`")
                && why.contains("`shop_memory_bytes`"),
            "{why}"
        );
        let why = default_names_in_queries(&parse("[telemetry.labels]\ncode = \"status\"\n"))
            .expect("error_ratio's code matcher");
        assert!(why.contains("label `code`"), "{why}");
        // names inside strings are values, not names
        assert_eq!(
            promql_identifiers(r#"sum by (le) (rate(x{code="le \"code\""}[1m]))"#),
            ["sum", "by", "le", "rate", "x", "code", "1m"]
        );
        // a renamed label the config does not read
        assert_eq!(
            default_names_in_queries(&parse("[telemetry.labels]\nreporter = \"side\"\n")),
            None
        );
    }
}
