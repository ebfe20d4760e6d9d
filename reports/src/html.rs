//! The self-contained HTML report: one file, charts as inline SVG, styles
//! inline, no scripts, fonts or images from anywhere else, so it opens from
//! disk and survives being attached to a ticket.
//!
//! The markup is XHTML-compatible (every element closed, void elements
//! written `<x />`, attributes quoted) so tests can check it with a plain
//! tag-balance reader.

use std::fmt::Write as _;

use crate::charts::{Chart, study_charts};
use crate::compare::Comparison;
use crate::explain::explain_run;
use crate::markdown::rates_explained;
use crate::model::{Distribution, Study};
use crate::text::{
    any_paused, count, expect_word, median_blast, median_time, pct, rate_name, scenario_label,
    seconds, xml_escape as esc,
};

/// Render the study as one self-contained HTML page (charts inline).
/// A chart that cannot be drawn is replaced by a note saying why.
pub fn render_html(study: &Study) -> String {
    let rendered: Vec<(Chart<'_>, String)> = study_charts(study)
        .into_iter()
        .map(|c| {
            let svg = c
                .svg()
                .unwrap_or_else(|e| format!("<p class=\"note\">{}</p>", esc(&e.to_string())));
            (c, svg)
        })
        .collect();
    render(study, &rendered, false)
}

/// The page for charts already drawn, linking their PNGs in `charts/`.
pub(crate) fn render_with(study: &Study, rendered: &[(Chart<'_>, String)]) -> String {
    render(study, rendered, true)
}

/// One line on where the results came from.
pub(crate) fn provenance(study: &Study) -> String {
    let scenarios = match Comparison::of(study) {
        Some(cmp) => {
            let names: Vec<String> = cmp.analyses.iter().map(|a| format!("`{a}`")).collect();
            format!(
                "{} scenarios each released with {} analyses side by side ({})",
                cmp.rows.len(),
                cmp.analyses.len(),
                names.join(", ")
            )
        }
        None => format!("{} scenarios", study.scenarios.len()),
    };
    let mut s = format!(
        "Driver `{}`, {} runs per scenario, {scenarios}, seed {}",
        study.driver, study.runs_per_scenario, study.seed
    );
    if let Some(config) = &study.config {
        s.push_str(&format!(", canary config `{config}`"));
    }
    s.push_str(&format!(", canarylab {}.", study.tool_version));
    s
}

/// "All 3 expectations met." / "2 of 5 expectations missed: a, b." / None.
pub(crate) fn expectations_line(study: &Study) -> Option<String> {
    let checked: Vec<_> = study
        .scenarios
        .iter()
        .filter(|s| s.expectation.is_some())
        .collect();
    if checked.is_empty() {
        return None;
    }
    let missed: Vec<String> = checked
        .iter()
        .filter(|s| s.expectation.as_ref().is_some_and(|c| !c.met))
        .map(|s| scenario_label(s))
        .collect();
    Some(if missed.is_empty() {
        format!("All {} expectations met.", checked.len())
    } else {
        format!(
            "{} of {} expectations missed: {}.",
            missed.len(),
            checked.len(),
            missed.join(", ")
        )
    })
}

/// Markdown-ish `code` spans to HTML, after escaping.
fn inline(s: &str) -> String {
    let escaped = esc(s);
    let mut out = String::new();
    for (i, part) in escaped.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{part}</code>");
        } else {
            out.push_str(part);
        }
    }
    out
}

fn render(study: &Study, charts: &[(Chart<'_>, String)], link_pngs: bool) -> String {
    let mut h = String::with_capacity(64 * 1024);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\" />\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\" />\n");
    let comparison = Comparison::of(study);
    let _ = writeln!(
        h,
        "<title>canarylab study: {}</title>",
        match &comparison {
            Some(cmp) => format!(
                "{} scenarios, {} analyses side by side",
                cmp.rows.len(),
                cmp.analyses.len()
            ),
            None => format!("{} scenarios", study.scenarios.len()),
        }
    );
    let extra_css = if comparison.is_some() {
        SIDE_BY_SIDE_CSS
    } else {
        ""
    };
    let _ = writeln!(
        h,
        "<style>{CSS}{extra_css}</style>\n</head>\n<body>\n<main>"
    );
    h.push_str("<h1>canarylab study</h1>\n");
    let _ = writeln!(h, "<p class=\"meta\">{}</p>", inline(&provenance(study)));
    if let Some(line) = expectations_line(study) {
        let class = if line.starts_with("All") {
            "banner ok"
        } else {
            "banner bad"
        };
        let _ = writeln!(h, "<p class=\"{class}\">{}</p>", esc(&line));
    }

    h.push_str(
        "<section id=\"summary\">\n<h2>Summary</h2>\n<div class=\"scroll\"><table>\n<thead><tr>",
    );
    // The paused column only when some run paused, so a study without
    // paused runs reads as it always did.
    let paused = any_paused(&study.scenarios);
    // The oracle column only when some scenario has one.
    let oracle = study.scenarios.iter().any(|s| s.oracle.is_some());
    for (head, class) in [
        ("scenario", ""),
        ("expect", ""),
        ("runs", "n"),
        ("promoted", "n"),
        ("rolled back", "n"),
        ("deploy failed", "n"),
        ("paused", "n"),
        ("build failed", "n"),
        ("rollback rate [95% interval]", ""),
        ("oracle (share reached)", "n"),
        ("median decision", "n"),
        ("median blast radius", "n"),
        ("expectation", ""),
    ]
    .into_iter()
    .filter(|(head, _)| paused || *head != "paused")
    .filter(|(head, _)| oracle || !head.starts_with("oracle"))
    {
        if class.is_empty() {
            let _ = write!(h, "<th>{head}</th>");
        } else {
            let _ = write!(h, "<th class=\"{class}\">{head}</th>");
        }
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for s in &study.scenarios {
        let v = &s.verdicts;
        let r = &s.rollback_rate;
        let expectation = match &s.expectation {
            Some(c) if c.met => {
                format!("<span class=\"tag ok\">met</span> {}", esc(&c.requirement))
            }
            Some(c) => format!(
                "<span class=\"tag bad\">missed</span> {}",
                esc(&c.requirement)
            ),
            None => "<span class=\"muted\">–</span>".into(),
        };
        let analysis = match &s.analysis {
            Some(a) => format!(" <span class=\"tag\">{}</span>", esc(a)),
            None => String::new(),
        };
        let paused_cell = if paused {
            format!("<td class=\"n\">{}</td>", v.paused)
        } else {
            String::new()
        };
        let oracle_cell = match (&s.oracle, oracle) {
            (_, false) => String::new(),
            (Some(o), true) => format!(
                "<td class=\"n\" title=\"{}, at {} false alarms\">{} ({})</td>",
                esc(&o.method),
                pct(o.false_alarm),
                pct(o.detection),
                if o.detection > 0.0 {
                    pct(r.rate / o.detection)
                } else {
                    "–".into()
                }
            ),
            (None, true) => "<td class=\"n\"><span class=\"muted\">–</span></td>".into(),
        };
        let _ = writeln!(
            h,
            "<tr><td><strong>{}</strong>{}<br /><span class=\"muted small\">{}</span></td><td><span class=\"tag {}\">{}</span></td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>{}<td class=\"n\">{}</td>\
             <td><span class=\"muted small\">{}</span> <strong>{}</strong> <span class=\"muted\">[{}–{}]</span></td>{}\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            esc(&s.name),
            analysis,
            esc(&s.description),
            expect_word(s.expect),
            expect_word(s.expect),
            s.runs,
            v.promoted,
            v.rolled_back,
            v.deploy_failed,
            paused_cell,
            v.build_failed,
            rate_name(s.expect),
            pct(r.rate),
            pct(r.lower),
            pct(r.upper),
            oracle_cell,
            esc(&median_time(s)),
            esc(&median_blast(s)),
            expectation
        );
    }
    h.push_str("</tbody>\n</table></div>\n");
    let _ = writeln!(
        h,
        "<p class=\"explain\">{}</p>\n</section>",
        md_emphasis(&esc(&rates_explained(study)))
    );

    if oracle {
        h.push_str(
            "<p class=\"explain\">Oracle: the detection of the optimal test that knows the \
             simulator's model, on the same data, held to the study's false-alarm rate on its \
             harmless scenarios (in brackets: the share of it this judge reached). With one \
             canary pod against one baseline pod differing by 2% through their nodes, no judge \
             detects a 10% latency regression in more than about 90% of releases at 2% false \
             alarms: that difference cannot be told from the regression in one release.</p>\n",
        );
    }
    decided_section(&mut h, study);

    let (side_charts, charts): (Vec<_>, Vec<_>) = charts
        .iter()
        .partition(|(c, _)| c.id.starts_with("side-by-side"));
    if let Some(cmp) = &comparison {
        side_by_side(&mut h, cmp);
        for (chart, svg) in &side_charts {
            figure(&mut h, chart, svg, link_pngs);
        }
        h.push_str("</section>\n");
    }

    for sweep in &study.sweeps {
        let _ = writeln!(
            h,
            "<section class=\"sweep\">\n<h2>Sweep: {}</h2>",
            esc(&sweep.parameter)
        );
        h.push_str("<table>\n<thead><tr><th>setting</th><th>false alarm [95%]</th><th>detection [95%]</th><th></th></tr></thead>\n<tbody>\n");
        for p in &sweep.points {
            let _ = writeln!(
                h,
                "<tr{}><td>{}</td><td>{} <span class=\"muted\">[{}–{}]</span></td><td>{} <span class=\"muted\">[{}–{}]</span></td><td>{}</td></tr>",
                if p.chosen { " class=\"chosen\"" } else { "" },
                esc(&p.label),
                pct(p.false_alarm.rate),
                pct(p.false_alarm.lower),
                pct(p.false_alarm.upper),
                pct(p.detection.rate),
                pct(p.detection.lower),
                pct(p.detection.upper),
                if p.chosen {
                    "<span class=\"tag\">chosen</span>"
                } else {
                    ""
                }
            );
        }
        h.push_str("</tbody>\n</table>\n</section>\n");
    }

    let (run_charts, study_level): (Vec<_>, Vec<_>) = charts
        .into_iter()
        .partition(|(c, _)| c.id.starts_with("run-"));
    h.push_str("<section id=\"charts\">\n<h2>Charts</h2>\n");
    for (chart, svg) in &study_level {
        figure(&mut h, chart, svg, link_pngs);
    }
    h.push_str("</section>\n");

    if !study.example_runs.is_empty() {
        h.push_str("<section id=\"runs\">\n<h2>Example runs</h2>\n");
        for (i, run) in study.example_runs.iter().enumerate() {
            let _ = writeln!(
                h,
                "<article class=\"run\">\n<h3>{} <span class=\"muted small\">seed {}</span></h3>",
                esc(&run.label()),
                run.seed
            );
            explanation_html(&mut h, &explain_run(run));
            let prefix = format!("run-{}-", i + 1);
            if let Some((chart, svg)) = run_charts.iter().find(|(c, _)| c.id.starts_with(&prefix)) {
                figure(&mut h, chart, svg, link_pngs);
            }
            h.push_str("</article>\n");
        }
        h.push_str("</section>\n");
    }
    h.push_str("<footer class=\"muted small\">Generated by canarylab. Charts are inline SVG; each is also written as PNG under charts/ for tickets.</footer>\n");
    h.push_str("</main>\n</body>\n</html>\n");
    h
}

/// The side-by-side section up to its charts (the caller adds them and
/// closes the section): what the numbers show, then per scenario one row per
/// analysis.
fn side_by_side(h: &mut String, cmp: &Comparison<'_>) {
    let _ = writeln!(
        h,
        "<section id=\"side-by-side\">\n<h2>Side by side: {} analyses</h2>",
        cmp.analyses.len()
    );
    h.push_str("<h3>What this shows</h3>\n<ul class=\"findings\">\n");
    for line in cmp.findings() {
        let _ = writeln!(h, "<li>{}</li>", esc(&line));
    }
    h.push_str("</ul>\n<div class=\"scroll\"><table class=\"sbs\">\n<thead><tr>");
    for (head, class) in [
        ("scenario", ""),
        ("analysis", ""),
        ("runs", "n"),
        ("detection or false alarm [95% interval]", ""),
        ("paused", "n"),
        ("decision: median", "n"),
        ("p90", "n"),
        ("blast radius: median", "n"),
        ("p90", "n"),
    ] {
        if class.is_empty() {
            let _ = write!(h, "<th>{head}</th>");
        } else {
            let _ = write!(h, "<th class=\"{class}\">{head}</th>");
        }
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    let dist = |d: &Distribution, f: fn(f64) -> String| -> (String, String) {
        if d.count == 0 {
            ("–".into(), "–".into())
        } else {
            (f(d.p50), f(d.p90))
        }
    };
    for row in &cmp.rows {
        for (k, (analysis, cell)) in cmp.analyses.iter().zip(&row.cells).enumerate() {
            let first = if k == 0 {
                format!(
                    "<td rowspan=\"{}\"><strong>{}</strong><br /><span class=\"tag {}\">{}</span></td>",
                    cmp.analyses.len(),
                    esc(row.name),
                    expect_word(row.expect),
                    expect_word(row.expect)
                )
            } else {
                String::new()
            };
            let _ = write!(
                h,
                "<tr class=\"{}\" data-scenario=\"{}\" data-analysis=\"{}\">{first}<td><span class=\"swatch s{}\"></span> {}</td>",
                if k == 0 { "first" } else { "next" },
                esc(row.name),
                esc(analysis),
                k % 6,
                esc(analysis)
            );
            let Some(s) = cell else {
                h.push_str(
                    "<td class=\"muted\" colspan=\"7\">not released with this analysis</td></tr>\n",
                );
                continue;
            };
            let r = &s.rollback_rate;
            let rate = if r.total == 0 {
                "<span class=\"muted\">no runs reached the canary</span>".to_string()
            } else {
                format!(
                    "<span class=\"muted small\">{}</span> <strong>{}</strong> <span class=\"muted\">[{}–{}]</span>",
                    rate_name(s.expect),
                    pct(r.rate),
                    pct(r.lower),
                    pct(r.upper)
                )
            };
            let reached = s.verdicts.promoted
                + s.verdicts.rolled_back
                + s.verdicts.deploy_failed
                + s.verdicts.paused;
            let paused = if s.verdicts.paused == 0 {
                "0".to_string()
            } else {
                format!(
                    "{} <span class=\"muted small\">({})</span>",
                    s.verdicts.paused,
                    pct(f64::from(s.verdicts.paused) / f64::from(reached.max(1)))
                )
            };
            let (t50, t90) = dist(&s.decision_time_s, seconds);
            let (b50, b90) = dist(&s.blast_radius, count);
            let _ = writeln!(
                h,
                "<td class=\"n\">{}</td><td>{rate}</td><td class=\"n\">{paused}</td>\
                 <td class=\"n\">{t50}</td><td class=\"n\">{t90}</td><td class=\"n\">{b50}</td><td class=\"n\">{b90}</td></tr>",
                s.runs
            );
        }
    }
    h.push_str("</tbody>\n</table></div>\n");
    h.push_str(
        "<p class=\"explain\">Each scenario was released once per analysis; the rows of a scenario differ only in \
         the analysis, with the traffic steps and timing it sets. Detection is the share of a regression's runs rolled back, false alarm \
         the share of a harmless release's runs rolled back; paused runs (inconclusive, waiting for a person) count \
         in the runs but not as rollbacks. Decision time runs from canary start to the decision; blast radius is \
         the failed requests the canary served to users meanwhile.</p>\n",
    );
}

/// Which metric decided: per scenario (and analysis), each metric's share
/// of decided runs labelled High, Low, Nodata, and alone turning the verdict.
fn decided_section(h: &mut String, study: &Study) {
    if !study.scenarios.iter().any(|s| s.decided.is_some()) {
        return;
    }
    h.push_str(
        "<section id=\"decided\">\n<h2>Which metric decided</h2>\n<p class=\"explain\">\
         Over the runs the analysis decided, the share in which each metric was High, Low or \
         Nodata in the deciding interval, and the share in which it alone turned the verdict \
         (passing it, with every other label kept, would have changed the verdict). In a \
         harmless release the metric that fails most often is the one to fix first.</p>\n\
         <div class=\"scroll\"><table>\n<thead><tr><th>scenario</th><th>metric</th>\
         <th class=\"n\">High</th><th class=\"n\">Low</th><th class=\"n\">Nodata</th>\
         <th class=\"n\">alone turned it</th></tr></thead>\n<tbody>\n",
    );
    for s in &study.scenarios {
        let Some(t) = &s.decided else { continue };
        let n = t.verdicts.max(1) as f64;
        let name = match &s.analysis {
            Some(a) => format!("{} [{}]", s.name, a),
            None => s.name.clone(),
        };
        for (i, m) in t.metrics.iter().enumerate() {
            let first = if i == 0 {
                format!(
                    "<td rowspan=\"{}\"><strong>{}</strong><br /><span class=\"muted small\">{} decided runs</span></td>",
                    t.metrics.len(),
                    esc(&name),
                    t.verdicts
                )
            } else {
                String::new()
            };
            let _ = writeln!(
                h,
                "<tr>{first}<td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                esc(&m.name),
                pct(m.high as f64 / n),
                pct(m.low as f64 / n),
                pct(m.nodata as f64 / n),
                pct(m.pivotal as f64 / n),
            );
        }
    }
    h.push_str("</tbody>\n</table></div>\n</section>\n");
}

fn figure(h: &mut String, chart: &Chart<'_>, svg: &str, link_png: bool) {
    let _ = writeln!(
        h,
        "<figure id=\"{}\">\n<h3>{}</h3>\n<div class=\"chart\">",
        chart.id,
        esc(&chart.title)
    );
    h.push_str(svg.trim());
    h.push_str("\n</div>\n");
    let _ = write!(h, "<figcaption>{}", esc(&chart.caption));
    if link_png {
        let _ = write!(h, " <a href=\"charts/{}.png\">PNG</a>", chart.id);
    }
    h.push_str("</figcaption>\n</figure>\n");
}

/// The explanation's first paragraph and its `- ` bullets as HTML.
fn explanation_html(h: &mut String, text: &str) {
    let mut in_list = false;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(item) = line.strip_prefix("- ") {
            if !in_list {
                h.push_str("<ul class=\"intervals\">\n");
                in_list = true;
            }
            let _ = writeln!(h, "<li>{}</li>", esc(item));
        } else {
            if in_list {
                h.push_str("</ul>\n");
                in_list = false;
            }
            let _ = writeln!(h, "<p>{}</p>", esc(line));
        }
    }
    if in_list {
        h.push_str("</ul>\n");
    }
}

/// `**x**` to `<strong>` and `*x*` to `<em>` in already escaped text.
fn md_emphasis(s: &str) -> String {
    let mut out = String::new();
    for (i, part) in s.split("**").enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<strong>{part}</strong>");
        } else {
            for (j, p) in part.split('*').enumerate() {
                if j % 2 == 1 {
                    let _ = write!(out, "<em>{p}</em>");
                } else {
                    out.push_str(p);
                }
            }
        }
    }
    out
}

const CSS: &str = r#"
:root { --ink: #222; --muted: #666; --line: #e4e4e4; --ok: #009E73; --bad: #D55E00; --bg: #fff; --soft: #f6f7f9; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink); font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", sans-serif; }
main { max-width: 1060px; margin: 0 auto; padding: 28px 24px 64px; }
h1 { font-size: 28px; margin: 0 0 4px; letter-spacing: -0.01em; }
h2 { font-size: 21px; margin: 40px 0 12px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
h3 { font-size: 16px; margin: 28px 0 8px; }
.meta, .muted { color: var(--muted); }
.small { font-size: 12.5px; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: var(--soft); padding: 1px 4px; border-radius: 3px; }
.banner { padding: 10px 14px; border-radius: 6px; font-weight: 600; }
.banner.ok { background: #e6f5f0; color: #00664a; }
.banner.bad { background: #fbeee5; color: #9c4300; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13.5px; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: 12.5px; white-space: nowrap; }
td.n, th.n { text-align: right; }
tbody tr:nth-child(even) { background: var(--soft); }
tr.chosen { font-weight: 600; }
.tag { display: inline-block; padding: 0 6px; border-radius: 3px; font-size: 12px; font-weight: 600; background: #eceff3; }
.tag.ok, .tag.pass { background: #e6f5f0; color: #00664a; }
.tag.bad, .tag.fail { background: #fbeee5; color: #9c4300; }
.explain { background: var(--soft); padding: 10px 14px; border-radius: 6px; font-size: 14px; }
figure { margin: 24px 0 36px; }
figure h3 { margin-top: 0; }
.chart svg { display: block; max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 13.5px; margin-top: 6px; max-width: 820px; }
article.run { border-top: 1px solid var(--line); }
ul.intervals { padding-left: 20px; }
footer { margin-top: 48px; }
"#;

/// Styles of the side-by-side section, only in a page that has one (a
/// study of one analysis keeps its page as it was).
const SIDE_BY_SIDE_CSS: &str = r#"
ul.findings { padding-left: 20px; }
ul.findings li { margin: 4px 0; }
table.sbs tbody tr:nth-child(even) { background: none; }
table.sbs tr.first td { border-top: 2px solid #cfd3d8; }
table.sbs tr.next td { border-bottom: none; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 5px; vertical-align: baseline; }
.swatch.s0 { background: #0072B2; } .swatch.s1 { background: #D55E00; } .swatch.s2 { background: #009E73; }
.swatch.s3 { background: #CC79A7; } .swatch.s4 { background: #E69F00; } .swatch.s5 { background: #56B4E9; }
"#;
