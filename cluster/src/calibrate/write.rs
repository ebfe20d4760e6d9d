//! A calibration as a scenario file (each fitted value with a comment
//! giving its standard error and its data), a printed summary, and an HTML
//! page with the fits drawn over the data (pure: text in, text out).

use std::fmt::Write as _;

use reports::xy::{Curve, Style, XyChart};

use scenarios::Telemetry;
use scenarios::telemetry::TrackNames;

use super::fit::{Acf, Calibration, Fit};

/// Where the data came from, for the file's header.
#[derive(Debug, Clone, PartialEq)]
pub struct Provenance {
    /// The Prometheus the data came from.
    pub url: String,
    /// The `--selector` of the service's series.
    pub selector: String,
    /// The metric family read (`goldengoose` or `istio`).
    pub family: String,
    /// Window start, unix seconds.
    pub from_unix: f64,
    /// Window end, unix seconds.
    pub to_unix: f64,
    /// The queries sent, as `(what, PromQL)`.
    pub queries: Vec<(String, String)>,
    /// The `[telemetry]` the names came from (`--telemetry FILE`: the
    /// file, as given, and its table), written into the scenario so the
    /// simulator writes the series under the same names; `None`: the
    /// default names, no `[telemetry]` written.
    pub telemetry: Option<(String, Telemetry)>,
}

/// One `[service]` line: key, value written, and its comment.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Dotted key, e.g. `load_noise.sd`.
    pub key: &'static str,
    /// The value written (clamped into the simulator's range when fitted).
    pub value: f64,
    /// Whether it was fitted (otherwise the simulator's default).
    pub fitted: bool,
    /// The comment after it: standard error and data, or why not fitted.
    pub comment: String,
}

/// The `[service]` values in file order: fitted ones clamped into the
/// simulator's valid ranges, the rest the defaults.
pub fn lines(c: &Calibration) -> Vec<Line> {
    let d = scenarios::Service::default();
    let one =
        |key: &'static str, fit: &Fit, default: f64, lo: f64, hi: f64, integer: bool| match fit {
            Fit::Fitted { value, se, source } => {
                let mut v = value.clamp(lo, hi);
                if integer {
                    v = v.round().max(lo);
                }
                let clamp = if (v - value).abs() > 1e-12 * value.abs().max(1.0) && !integer {
                    format!(" (estimate {} clamped to the valid range)", num(*value))
                } else {
                    String::new()
                };
                let unc = if *se == 0.0 {
                    String::new()
                } else if se.is_finite() {
                    format!(
                        "+- {} (1 standard error; 95% [{}, {}]){clamp}; ",
                        num(*se),
                        num(value - 1.96 * se),
                        num(value + 1.96 * se)
                    )
                } else {
                    format!("uncertainty unknown (too few blocks){clamp}; ")
                };
                Line {
                    key,
                    value: v,
                    fitted: true,
                    comment: format!("{unc}{source}"),
                }
            }
            Fit::NotFitted(why) => Line {
                key,
                value: default,
                fitted: false,
                comment: format!("NOT FITTED, default kept: {why}"),
            },
        };
    vec![
        one(
            "request_rate",
            &c.request_rate,
            d.request_rate,
            1e-9,
            f64::MAX,
            false,
        ),
        one(
            "diurnal_swing",
            &c.diurnal_swing,
            d.diurnal_swing,
            0.0,
            1.0,
            false,
        ),
        one("start_hour", &c.start_hour, d.start_hour, 0.0, 24.0, false),
        one(
            "replicas",
            &c.replicas,
            f64::from(d.replicas),
            1.0,
            1e6,
            true,
        ),
        one(
            "latency_median_ms",
            &c.latency_median_ms,
            d.latency_median_ms,
            1e-6,
            f64::MAX,
            false,
        ),
        one(
            "latency_sigma",
            &c.latency_sigma,
            d.latency_sigma,
            0.0,
            10.0,
            false,
        ),
        one("error_rate", &c.error_rate, d.error_rate, 0.0, 1.0, false),
        one(
            "cpu_ms_per_request",
            &c.cpu_ms_per_request,
            d.cpu_ms_per_request,
            0.0,
            f64::MAX,
            false,
        ),
        one(
            "cpu_idle_cores",
            &c.cpu_idle_cores,
            d.cpu_idle_cores,
            0.0,
            f64::MAX,
            false,
        ),
        one(
            "memory_mib",
            &c.memory_mib,
            d.memory_mib,
            1e-6,
            f64::MAX,
            false,
        ),
        one(
            "pod_variation",
            &c.pod_variation,
            d.pod_variation,
            0.0,
            10.0,
            false,
        ),
        one(
            "load_noise.sd",
            &c.load_noise_sd,
            d.load_noise.sd,
            0.0,
            10.0,
            false,
        ),
        one(
            "load_noise.rho",
            &c.load_noise_rho,
            d.load_noise.rho,
            0.0,
            0.999,
            false,
        ),
        one(
            "pod_drift.sd",
            &c.pod_drift_sd,
            d.pod_drift.sd,
            0.0,
            10.0,
            false,
        ),
        one(
            "pod_drift.rho",
            &c.pod_drift_rho,
            d.pod_drift.rho,
            0.0,
            0.999,
            false,
        ),
    ]
}

/// Four significant digits, plain.
pub fn num(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let digits = (3 - x.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{x:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn toml_value(key: &str, v: f64) -> String {
    if key == "replicas" {
        format!("{}", v.round() as u64)
    } else {
        let s = num(v);
        // TOML floats need a dot or exponent
        if s.contains('.') || s.contains('e') || s.contains("inf") || s.contains("nan") {
            s
        } else {
            format!("{s}.0")
        }
    }
}

fn utc(unix: f64) -> String {
    let secs = unix.floor() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // civil from days (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The scenario file: an A/A release of the fitted service (run it with
/// `canarylab sim FILE --config CONFIG.json`), or the `[service]` for
/// `canarylab sim DIR --service FILE`.
pub fn scenario_toml(c: &Calibration, p: &Provenance) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "# Fitted by `canarylab calibrate` from {}", p.url);
    let _ = writeln!(
        t,
        "# selector {}, {} metric family, {} to {} ({:.1} h), step {} s, {} steps",
        if p.selector.is_empty() {
            "(none)"
        } else {
            &p.selector
        },
        p.family,
        utc(p.from_unix),
        utc(p.to_unix),
        (p.to_unix - p.from_unix) / 3600.0,
        num(c.step_s),
        c.steps
    );
    let _ = writeln!(
        t,
        "# Each value: its standard error and 95% interval, and the data it came from."
    );
    let _ = writeln!(
        t,
        "# As a scenario it is an A/A release of this service: `canarylab sim {{this file}} --config C.json`."
    );
    let _ = writeln!(
        t,
        "# As a service for the catalog: `canarylab sim scenarios/catalog --service {{this file}}`."
    );
    match &p.telemetry {
        Some((file, names)) if *names != Telemetry::default() => {
            let _ = writeln!(
                t,
                "# Metric and label names: the [telemetry] of {file} (kept below, so the simulator writes the same names)."
            );
        }
        Some((file, _)) => {
            let _ = writeln!(
                t,
                "# Metric and label names: the defaults ({file} renames none)."
            );
        }
        None => {}
    }
    for n in &c.notes {
        let _ = writeln!(t, "# note: {n}");
    }
    t.push('\n');
    let _ = writeln!(
        t,
        "description = \"A/A release of the service calibrated from {}\"",
        p.url.replace('"', "'")
    );
    t.push_str("expect = \"pass\"\n\n[service]\n");
    let ls = lines(c);
    let mut table = "";
    for l in &ls {
        let (tbl, key) = match l.key.split_once('.') {
            Some((a, b)) => (a, b),
            None => ("", l.key),
        };
        if tbl != table {
            let _ = writeln!(t, "\n[service.{tbl}]");
            table = tbl;
        }
        let _ = writeln!(t, "{key} = {}", toml_value(l.key, l.value));
        for chunk in wrap(&l.comment, 100) {
            let _ = writeln!(t, "#   {chunk}");
        }
    }
    let _ = writeln!(t, "\n[analysis]");
    let _ = writeln!(
        t,
        "# the step the AR(1) correlations were fitted at (per scrape step)"
    );
    let _ = writeln!(t, "scrape_step_s = {}", toml_value("step", c.step_s));
    let _ = writeln!(
        t,
        "rate_window_s = {}",
        toml_value("window", (c.step_s * 6.0).max(60.0))
    );
    if let Some((_, telemetry)) = &p.telemetry {
        t.push_str(&telemetry_toml(telemetry));
    }
    t
}

/// A `[telemetry]` as TOML (what `scenarios::parse_telemetry` reads back
/// to the same value); empty for the defaults.
pub fn telemetry_toml(telemetry: &Telemetry) -> String {
    let mut t = String::new();
    if *telemetry == Telemetry::default() {
        return t;
    }
    let _ = writeln!(t, "\n[telemetry]");
    for (key, v) in [("app", &telemetry.app), ("namespace", &telemetry.namespace)] {
        if let Some(v) = v {
            let _ = writeln!(t, "{key} = {}", toml_string(v));
        }
    }
    for (table, renames) in [
        ("metrics", &telemetry.metrics),
        ("labels", &telemetry.labels),
    ] {
        if !renames.is_empty() {
            let _ = writeln!(t, "\n[telemetry.{table}]");
            for (from, to) in renames {
                let _ = writeln!(t, "{} = {}", toml_string(from), toml_string(to));
            }
        }
    }
    for (track, names) in [
        ("canary", &telemetry.canary),
        ("baseline", &telemetry.baseline),
        ("production", &telemetry.production),
    ] {
        if *names == TrackNames::default() {
            continue;
        }
        let _ = writeln!(t, "\n[telemetry.{track}]");
        for (key, v) in [
            ("version", &names.version),
            ("workload", &names.workload),
            ("service", &names.service),
            ("pod_template_hash", &names.pod_template_hash),
        ] {
            if let Some(v) = v {
                let _ = writeln!(t, "{key} = {}", toml_string(v));
            }
        }
    }
    t
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut line = String::new();
    for w in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + w.len() > width {
            out.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(w);
    }
    if !line.is_empty() {
        out.push(line);
    }
    out
}

/// The printed summary: one line per parameter, to check against a dashboard.
pub fn summary(c: &Calibration) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{:<20} {:>12} {:>12}  from",
        "parameter", "value", "+- 1 se"
    );
    for l in lines(c) {
        let fit = fit_of(c, l.key);
        let (se, what) = match fit {
            Fit::Fitted { se, source, .. } => (
                if *se == 0.0 {
                    "exact".to_string()
                } else {
                    num(*se)
                },
                source.split(';').next().unwrap_or_default().to_string(),
            ),
            Fit::NotFitted(why) => ("-".into(), format!("not fitted (default kept): {why}")),
        };
        let what: String = what.chars().take(90).collect();
        let _ = writeln!(t, "{:<20} {:>12} {:>12}  {what}", l.key, num(l.value), se);
    }
    if let Some(e) = c.latency_max_cdf_error {
        let _ = writeln!(
            t,
            "latency fit: largest bucket-CDF error {:.2} percentage points",
            e * 100.0
        );
    }
    for n in &c.notes {
        let _ = writeln!(t, "note: {n}");
    }
    t
}

fn fit_of<'a>(c: &'a Calibration, key: &str) -> &'a Fit {
    match key {
        "request_rate" => &c.request_rate,
        "diurnal_swing" => &c.diurnal_swing,
        "start_hour" => &c.start_hour,
        "replicas" => &c.replicas,
        "latency_median_ms" => &c.latency_median_ms,
        "latency_sigma" => &c.latency_sigma,
        "error_rate" => &c.error_rate,
        "cpu_ms_per_request" => &c.cpu_ms_per_request,
        "cpu_idle_cores" => &c.cpu_idle_cores,
        "memory_mib" => &c.memory_mib,
        "pod_variation" => &c.pod_variation,
        "load_noise.sd" => &c.load_noise_sd,
        "load_noise.rho" => &c.load_noise_rho,
        "pod_drift.sd" => &c.pod_drift_sd,
        _ => &c.pod_drift_rho,
    }
}

/// Which fitted values went unfitted, with why (for stderr).
pub fn not_fitted(c: &Calibration) -> Vec<String> {
    lines(c)
        .into_iter()
        .filter(|l| !l.fitted)
        .map(|l| format!("{}: {}", l.key, l.comment))
        .collect()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A self-contained HTML page: the summary table, the histogram fit (CDF at
/// the bucket bounds, empirical vs fitted), the autocorrelations of the load
/// noise and the pod drift against their AR(1) fits, and the per-pod spread
/// of latency with error bars.
pub fn html(c: &Calibration, p: &Provenance) -> String {
    let mut h = String::new();
    h.push_str(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>canarylab calibrate</title>",
    );
    h.push_str("<style>body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}table{border-collapse:collapse}td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}td.n{text-align:right;font-variant-numeric:tabular-nums}.nf{color:#b00}figure{margin:1.5em 0}figcaption{color:#555;font-size:90%}code{font-size:90%}</style></head><body>");
    let _ = write!(
        h,
        "<h1>Calibration of the service at {}</h1><p>Selector <code>{}</code>, {} metric family, {} to {}, step {} s ({} steps).</p>",
        esc(&p.url),
        esc(if p.selector.is_empty() {
            "(none)"
        } else {
            &p.selector
        }),
        esc(&p.family),
        utc(p.from_unix),
        utc(p.to_unix),
        num(c.step_s),
        c.steps
    );
    if let Some((file, _)) = &p.telemetry {
        let _ = write!(
            h,
            "<p>Metric and label names from the <code>[telemetry]</code> of <code>{}</code>.</p>",
            esc(file)
        );
    }
    h.push_str("<h2>Fitted <code>[service]</code></h2><table><tr><th>parameter</th><th>value</th><th>&plusmn; 1 se</th><th>from</th></tr>");
    for l in lines(c) {
        let fit = fit_of(c, l.key);
        let (se, class) = match fit {
            Fit::Fitted { se, .. } => (num(*se), ""),
            Fit::NotFitted(_) => ("-".into(), " class=\"nf\""),
        };
        let _ = write!(
            h,
            "<tr{class}><td><code>{}</code></td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            l.key,
            num(l.value),
            se,
            esc(&l.comment)
        );
    }
    h.push_str("</table>");
    if !c.notes.is_empty() {
        h.push_str("<ul>");
        for n in &c.notes {
            let _ = write!(h, "<li>{}</li>", esc(n));
        }
        h.push_str("</ul>");
    }
    if let Some((bounds, emp, fit)) = &c.histogram_cdf {
        let xs: Vec<f64> = bounds.iter().map(|b| b.log10()).collect();
        let mut chart = xy(
            "Latency histogram and the fitted log-normal",
            "latency bucket bound (log10 seconds)",
            "fraction of requests at or below",
            vec![
                curve("histogram (data)", &xs, emp, Style::Points, 0),
                curve("fitted log-normal", &xs, fit, Style::Line, 1),
            ],
        );
        chart.y_range = Some((0.0, 1.0));
        h.push_str(&figure(
            &chart,
            &format!(
                "The latency histogram's CDF at each bucket bound (dots) and the fitted log-normal's (line); the largest gap is {:.2} percentage points.",
                c.latency_max_cdf_error.unwrap_or(f64::NAN) * 100.0
            ),
        ));
    }
    for (acf, title, what) in [
        (
            &c.load_acf,
            "Load noise: autocorrelation and AR(1) fit",
            "ln(service request count) minus its daily curve (load noise + Poisson)",
        ),
        (
            &c.drift_acf,
            "Pod drift: autocorrelation and AR(1) fit",
            "each pod's ln(mean latency) minus its own mean and the pods' common move (pod drift + sampling)",
        ),
    ] {
        if let Some(Acf { empirical, fitted }) = acf {
            let xs: Vec<f64> = (0..empirical.len()).map(|k| k as f64).collect();
            let chart = xy(
                title,
                "lag (steps)",
                "autocorrelation",
                vec![
                    curve("data", &xs, empirical, Style::Points, 0),
                    curve("AR(1) fit (lags 1+)", &xs, fitted, Style::Line, 1),
                ],
            );
            h.push_str(&figure(
                &chart,
                &format!(
                    "Autocorrelation of {}. At lag 0 the data include white sampling noise, which the AR(1) (fitted on lags 1 and up, above the known Poisson or sampling noise) does not.",
                    esc(what)
                ),
            ));
        }
    }
    let pods: Vec<_> = c
        .pods
        .iter()
        .filter(|p| p.latency_offset.is_finite())
        .collect();
    if !pods.is_empty() {
        let xs: Vec<f64> = (0..pods.len()).map(|i| i as f64).collect();
        let ys: Vec<f64> = pods.iter().map(|p| p.latency_offset).collect();
        let lo: Vec<f64> = pods
            .iter()
            .map(|p| p.latency_offset - 1.96 * p.latency_offset_se)
            .collect();
        let hi: Vec<f64> = pods
            .iter()
            .map(|p| p.latency_offset + 1.96 * p.latency_offset_se)
            .collect();
        let pv = c.pod_variation.value().unwrap_or(0.0);
        let ends = [-0.5, xs.len() as f64 - 0.5];
        let chart = xy(
            "Per-pod spread of latency",
            "pod (# in the table below)",
            "ln(mean latency) - pods' mean",
            vec![
                curve(
                    "pod offset with 95% interval",
                    &xs,
                    &ys,
                    Style::Bars { lo, hi },
                    0,
                ),
                curve("+- fitted pod_variation", &ends, &[pv, pv], Style::Line, 1),
                curve("", &ends, &[-pv, -pv], Style::Line, 1),
            ],
        );
        h.push_str(&figure(
            &chart,
            "Each pod's latency offset (log scale) with its 95% interval from drift and sampling; the lines are &plusmn; the fitted pod_variation.",
        ));
        h.push_str("<table><tr><th>#</th><th>pod</th><th>req/s</th><th>latency offset</th><th>CPU cores</th><th>memory MiB</th></tr>");
        for (i, p) in c.pods.iter().enumerate() {
            let _ = write!(
                h,
                "<tr><td>{i}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                esc(&p.name),
                num(p.rate),
                num(p.latency_offset),
                num(p.cpu_cores),
                num(p.memory_mib)
            );
        }
        h.push_str("</table>");
    }
    h.push_str("<h2>Queries</h2><ul>");
    for (what, q) in &p.queries {
        let _ = write!(h, "<li>{}: <code>{}</code></li>", esc(what), esc(q));
    }
    h.push_str("</ul></body></html>\n");
    h
}

/// A chart of the page, drawn by the report's chart code; if it cannot be
/// drawn the page says why instead.
fn figure(chart: &XyChart, caption: &str) -> String {
    let body = match chart.svg() {
        Ok(svg) => svg,
        Err(e) => format!(
            "<p class=\"nf\">chart not drawn: {}</p>",
            esc(&e.to_string())
        ),
    };
    format!("<figure>{body}<figcaption>{caption}</figcaption></figure>")
}

fn curve(label: &str, xs: &[f64], ys: &[f64], style: Style, color: usize) -> Curve {
    Curve {
        label: label.into(),
        xs: xs.to_vec(),
        ys: ys.to_vec(),
        style,
        color,
    }
}

fn xy(title: &str, x_label: &str, y_label: &str, curves: Vec<Curve>) -> XyChart {
    XyChart {
        title: title.into(),
        x_label: x_label.into(),
        y_label: y_label.into(),
        curves,
        y_range: None,
        size: (900, 360),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_dates_read_well() {
        assert_eq!(num(123.456_78), "123.5");
        assert_eq!(num(0.012_345_6), "0.01235");
        assert_eq!(num(5.0), "5");
        assert_eq!(toml_value("x", 5.0), "5.0");
        assert_eq!(toml_value("replicas", 6.2), "6");
        assert_eq!(utc(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(1_800_000_000.0), "2027-01-15T08:00:00Z");
    }

    #[test]
    fn the_file_loads_as_a_service_with_every_value_and_comment() {
        let mut c = super::super::fit::calibrate(&super::super::fit::Observations::default());
        let f = |value: f64, se: f64| Fit::Fitted {
            value,
            se,
            source: "test data".into(),
        };
        c.step_s = 10.0;
        c.request_rate = f(123.4, 1.5);
        c.replicas = f(4.0, 0.0);
        c.error_rate = f(-0.0001, 0.0002); // clamped to 0
        c.load_noise_rho = f(1.2, 0.1); // clamped below 1
        c.pod_drift_sd = f(0.02, f64::INFINITY);
        let p = Provenance {
            url: "http://127.0.0.1:9090".into(),
            selector: r#"{app="shop"}"#.into(),
            family: "goldengoose".into(),
            from_unix: 1.8e9,
            to_unix: 1.8e9 + 3600.0,
            queries: vec![("requests".into(), "sum(x)".into())],
            telemetry: None,
        };
        let text = scenario_toml(&c, &p);
        let (svc, step) =
            scenarios::parse_service(&text, std::path::Path::new("out.toml")).expect(&text);
        assert_eq!(step, 10.0);
        assert_eq!(svc.request_rate, 123.4);
        assert_eq!(svc.replicas, 4);
        assert_eq!(svc.error_rate, 0.0);
        assert_eq!(svc.load_noise.rho, 0.999);
        assert_eq!(svc.pod_drift.sd, 0.02);
        assert_eq!(
            svc.latency_median_ms,
            scenarios::Service::default().latency_median_ms
        );
        assert!(text.contains("NOT FITTED, default kept"), "{text}");
        assert!(
            text.contains("+- 1.5 (1 standard error; 95% [120.5, 126.3])"),
            "{text}"
        );
        assert!(text.contains("clamped"), "{text}");
        assert!(text.contains("uncertainty unknown"), "{text}");
        let page = html(&c, &p);
        assert!(page.contains("request_rate") && page.contains("sum(x)"));
        assert!(summary(&c).contains("not fitted"));
        assert!(!page.contains("<svg"), "no data, no charts");

        // with data: the three kinds of chart, drawn by the reports crate
        c.histogram_cdf = Some((
            vec![0.01, 0.1, 1.0],
            vec![0.1, 0.6, 0.98],
            vec![0.12, 0.58, 0.97],
        ));
        c.latency_max_cdf_error = Some(0.02);
        c.load_acf = Some(Acf {
            empirical: vec![1.0, 0.4, 0.2],
            fitted: vec![1.0, 0.38, 0.21],
        });
        c.pods = (0..3)
            .map(|i| super::super::fit::PodSummary {
                name: format!("pod-{i}"),
                rate: 10.0,
                latency_offset: 0.01 * f64::from(i) - 0.01,
                latency_offset_se: 0.005,
                cpu_cores: 0.1,
                memory_mib: 100.0,
            })
            .collect();
        let page = html(&c, &p);
        assert_eq!(page.matches("<svg").count(), 3, "{page}");
        for title in [
            "Latency histogram and the fitted log-normal",
            "Load noise: autocorrelation and AR(1) fit",
            "Per-pod spread of latency",
            "pod-2",
        ] {
            assert!(page.contains(title), "{title} missing");
        }
        assert!(!page.contains("chart not drawn"));
    }

    /// The user's `[telemetry]` is written into the fitted file and reads
    /// back to the same value, as a scenario's and on its own.
    #[test]
    fn the_telemetry_is_kept_in_the_written_file() {
        let mut c = super::super::fit::calibrate(&super::super::fit::Observations::default());
        c.step_s = 10.0;
        let mut t = Telemetry {
            app: Some("shop \"eu\"".into()),
            namespace: Some("shop".into()),
            ..Telemetry::default()
        };
        t.metrics
            .insert("http_requests_total".into(), "shop_requests_total".into());
        t.labels.insert("pod".into(), "kubernetes_pod_name".into());
        t.labels.insert("version".into(), "track".into());
        t.production.version = Some("stable\\1".into());
        t.canary.workload = Some("shop-next".into());
        let mut p = Provenance {
            url: "http://127.0.0.1:9090".into(),
            selector: String::new(),
            family: "goldengoose".into(),
            from_unix: 1.8e9,
            to_unix: 1.8e9 + 3600.0,
            queries: Vec::new(),
            telemetry: Some(("names.toml".into(), t.clone())),
        };
        let text = scenario_toml(&c, &p);
        let path = std::path::Path::new("out.toml");
        assert_eq!(scenarios::parse_telemetry(&text, path).expect(&text), t);
        assert_eq!(
            scenarios::parse_telemetry(&telemetry_toml(&t), path).expect("alone"),
            t
        );
        scenarios::parse_service(&text, path).expect("still a service file");
        assert!(text.contains("the [telemetry] of names.toml"), "{text}");
        assert!(html(&c, &p).contains("<code>names.toml</code>"));
        // the defaults write no table
        p.telemetry = Some(("defaults.toml".into(), Telemetry::default()));
        let text = scenario_toml(&c, &p);
        assert!(!text.contains("\n[telemetry"), "{text}");
        assert!(text.contains("defaults.toml renames none"), "{text}");
    }
}
