//! Running a real Prometheus on backfilled OpenMetrics and comparing its
//! HTTP API's answers with the evaluator's: shared by prom's oracle test
//! (prom/tests/prom/oracle.rs) and the simulator's (sim/tests/it/
//! real_prometheus.rs), which include this file with `#[path]`. Every
//! process started here is stopped by its guard's `Drop`, by PID.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

/// A temporary directory removed on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let p = std::env::temp_dir().join(format!("prom-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).expect("create temp dir");
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A Prometheus child process, killed by PID on drop (also when a test panics).
pub(crate) struct Prometheus {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

pub(crate) fn start_prometheus(dir: &Path, tsdb: &Path) -> Prometheus {
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        "global:\n  scrape_interval: 15s\nscrape_configs: []\n",
    )
    .expect("config");
    let log = std::fs::File::create(dir.join("prometheus.log")).expect("log file");
    let port = free_port();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", tsdb.display()))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--storage.tsdb.retention.time=100y")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start prometheus (apt-get install prometheus)");
    let p = Prometheus { child, addr };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok((200, _)) = http_get(addr, "/-/ready") {
            return p;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus not ready after 60 s; see {}",
            dir.join("prometheus.log").display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub(crate) fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    let status = buf
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

pub(crate) fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(crate) fn secs(t_ms: i64) -> String {
    format!("{}.{:03}", t_ms / 1000, t_ms % 1000)
}

pub(crate) fn close(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) if x.is_finite() && y.is_finite() => {
            let d = (x - y).abs();
            d <= 1e-9 * x.abs().max(y.abs()) || d < 1e-12
        }
        _ => false,
    }
}

/// Compares two API bodies; returns the difference, if any.
pub(crate) fn diff(ours: &str, theirs: &str) -> Option<String> {
    let o: Json = match serde_json::from_str(ours) {
        Ok(o) => o,
        Err(e) => return Some(format!("our answer is not JSON ({e}): {ours}")),
    };
    let t: Json = match serde_json::from_str(theirs) {
        Ok(t) => t,
        Err(e) => return Some(format!("prometheus answered non-JSON ({e}): {theirs}")),
    };
    if o["status"] != t["status"] {
        return Some(format!(
            "status: ours {} theirs {}",
            o["status"], t["status"]
        ));
    }
    if t["status"] != "success" {
        return None;
    }
    let (od, td) = (&o["data"], &t["data"]);
    if od["resultType"] != td["resultType"] {
        return Some(format!(
            "resultType: ours {} theirs {}",
            od["resultType"], td["resultType"]
        ));
    }
    let points = |v: &Json| -> Vec<(String, String)> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|p| {
                        (
                            p[0].to_string(),
                            p[1].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let by_labels = |d: &Json| -> BTreeMap<String, Vec<(String, String)>> {
        let mut m = BTreeMap::new();
        match d["resultType"].as_str() {
            Some("scalar") | Some("string") => {
                m.insert("{}".into(), points(&Json::Array(vec![d["result"].clone()])));
            }
            _ => {
                for s in d["result"].as_array().cloned().unwrap_or_default() {
                    let pts = if s.get("value").is_some() {
                        points(&Json::Array(vec![s["value"].clone()]))
                    } else {
                        points(&s["values"])
                    };
                    m.insert(s["metric"].to_string(), pts);
                }
            }
        }
        m
    };
    let (om, tm) = (by_labels(od), by_labels(td));
    let ok: Vec<&String> = om.keys().collect();
    let tk: Vec<&String> = tm.keys().collect();
    if ok != tk {
        return Some(format!("series: ours {ok:?}\ntheirs {tk:?}"));
    }
    for (k, op) in &om {
        let tp = &tm[k];
        if op.len() != tp.len() {
            return Some(format!(
                "{k}: {} points ours, {} theirs\nours {op:?}\ntheirs {tp:?}",
                op.len(),
                tp.len()
            ));
        }
        for (a, b) in op.iter().zip(tp) {
            if a.0 != b.0 || !close(&a.1, &b.1) {
                return Some(format!("{k}: ours {a:?} theirs {b:?}"));
            }
        }
    }
    None
}

/// True when Prometheus answered with a non-empty result.
pub(crate) fn has_data(body: &str) -> bool {
    let Ok(j) = serde_json::from_str::<Json>(body) else {
        return false;
    };
    j["status"] == "success"
        && match &j["data"]["result"] {
            Json::Array(a) => !a.is_empty(),
            _ => true,
        }
}

/// Writes `store` as OpenMetrics in `dir`, backfills it with `promtool tsdb
/// create-blocks-from openmetrics` and starts Prometheus on the blocks.
/// Returns the store read back from the written file (what Prometheus
/// holds: OpenMetrics carries no stale markers) and the running server.
pub(crate) fn backfill_and_serve(dir: &Path, store: &prom::Store) -> (prom::Store, Prometheus) {
    let om = dir.join("series.om");
    std::fs::write(&om, prom::openmetrics::write(store)).expect("write openmetrics");
    // The file written is what both sides read: load it back.
    let text = std::fs::read_to_string(&om).expect("read back");
    let store =
        prom::openmetrics::parse(&text, &om.display().to_string()).expect("parse own output");
    let tsdb = dir.join("tsdb");
    let out = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(&tsdb)
        .output()
        .expect("run promtool (apt-get install prometheus)");
    assert!(
        out.status.success(),
        "promtool failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = start_prometheus(dir, &tsdb);
    (store, server)
}
