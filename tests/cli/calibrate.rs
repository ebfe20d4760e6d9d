//! `canarylab calibrate` against Prometheus stand-ins that fail: nothing
//! reachable, HTTP errors, no matching series. Each error names the URL
//! and the query, and nothing is written.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::canarylab;

/// A server on 127.0.0.1:0 answering every request with `status` and
/// `body`; stopped (thread joined) on drop.
struct Fake {
    url: String,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Fake {
    fn new(status: u16, body: &'static str) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        s.set_read_timeout(Some(std::time::Duration::from_millis(200)))
                            .unwrap();
                        let mut buf = [0u8; 65536];
                        let _ = s.read(&mut buf);
                        let _ = write!(
                            s,
                            "HTTP/1.0 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
                }
            }
        });
        Fake {
            url,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn calibrate(url: &str, out: &std::path::Path) -> String {
    calibrate_with(url, out, &[])
}

fn calibrate_with(url: &str, out: &std::path::Path, extra: &[&str]) -> String {
    let mut args = vec![
        "calibrate",
        "--prometheus",
        url,
        "--selector",
        r#"{app="shop"}"#,
        "--last",
        "1h",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let err = canarylab(&args).expect_err("fails");
    assert!(!out.exists(), "nothing written: {err}");
    assert!(!out.with_extension("html").exists(), "nothing written");
    err
}

#[test]
fn calibrate_errors_name_the_url_and_the_query_and_write_nothing() {
    let dir = std::env::temp_dir().join(format!("canarylab-calibrate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("svc.toml");
    let query = r#"count(http_requests_total{app="shop"})"#;

    // unreachable: a port nothing listens on
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let err = calibrate(&url, &out);
    assert!(err.contains(&url) && err.contains(query), "{err}");

    // erroring
    let fake = Fake::new(
        503,
        r#"{"status":"error","errorType":"unavailable","error":"overloaded"}"#,
    );
    let err = calibrate(&fake.url, &out);
    assert!(
        err.contains(&fake.url) && err.contains(query) && err.contains("overloaded"),
        "{err}"
    );
    drop(fake);

    // not Prometheus
    let fake = Fake::new(200, "<html>hello</html>");
    let err = calibrate(&fake.url, &out);
    assert!(err.contains(&fake.url) && err.contains("not JSON"), "{err}");
    drop(fake);

    // no matching series: both families tried, both named
    let fake = Fake::new(
        200,
        r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
    );
    let err = calibrate(&fake.url, &out);
    assert!(
        err.contains(&fake.url)
            && err.contains("no matching series")
            && err.contains(query)
            && err.contains(r#"istio_requests_total{app="shop",reporter="destination"}"#)
            && err.contains("--telemetry"),
        "{err}"
    );
    // ... and under a --telemetry's names, the renamed ones are tried
    let names = dir.join("names.toml");
    std::fs::write(
        &names,
        "[telemetry.metrics]\nistio_requests_total = \"mesh_requests_total\"\n[telemetry.labels]\nreporter = \"side\"\n",
    )
    .unwrap();
    let err = calibrate_with(&fake.url, &out, &["--telemetry", names.to_str().unwrap()]);
    assert!(
        err.contains("no matching series")
            && err.contains(query)
            && err.contains(r#"count(mesh_requests_total{app="shop",side="destination"})"#),
        "{err}"
    );
    drop(fake);

    // a bad --telemetry file names itself and the field, before any request
    std::fs::write(&names, "[telemetry.labels]\npod = \"__pod\"\n").unwrap();
    let err = calibrate_with(
        "http://127.0.0.1:9",
        &out,
        &["--telemetry", names.to_str().unwrap()],
    );
    assert!(
        err.contains("--telemetry")
            && err.contains("names.toml")
            && err.contains("telemetry.labels.pod"),
        "{err}"
    );

    // bad input stops before any request
    let err = canarylab(&[
        "calibrate",
        "--prometheus",
        "http://127.0.0.1:9",
        "--selector",
        "{app=",
        "--out",
        out.to_str().unwrap(),
    ])
    .expect_err("bad selector");
    assert!(err.contains("--selector"), "{err}");
    let err = canarylab(&[
        "calibrate",
        "--prometheus",
        "http://127.0.0.1:9",
        "--step",
        "10 parsecs",
        "--out",
        out.to_str().unwrap(),
    ])
    .expect_err("bad step");
    assert!(err.contains("--step"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sim_with_a_service_file_replaces_every_scenarios_service() {
    let dir = std::env::temp_dir().join(format!("canarylab-service-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svc = dir.join("svc.toml");
    // a tenth of the catalog's traffic: a tenth of the requests at risk
    std::fs::write(
        &svc,
        "description = \"x\"\nexpect = \"pass\"\n[service]\nrequest_rate = 20.0\nreplicas = 3\n[analysis]\nscrape_step_s = 10.0\n",
    )
    .unwrap();
    let scenario = crate::repo("scenarios/catalog/aa-independent-noise.toml");
    let run = |extra: &[&str]| {
        let out = dir.join("out");
        let mut args = vec![
            "sim",
            scenario.to_str().unwrap(),
            "--runs",
            "30",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        canarylab(&args).unwrap().1
    };
    let own = run(&[]);
    let replaced = run(&["--service", svc.to_str().unwrap()]);
    assert_ne!(own, replaced);
    let blast = |text: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.starts_with("aa-independent-noise"))
            .unwrap();
        line.split_whitespace().last().unwrap().parse().unwrap()
    };
    let ratio = blast(&replaced) / blast(&own);
    assert!((0.07..0.14).contains(&ratio), "{own}\n{replaced}");
    // a bad service file names itself and the field
    std::fs::write(
        &svc,
        "description = \"x\"\nexpect = \"pass\"\n[service]\nerror_rate = 2.0\n[analysis]\n",
    )
    .unwrap();
    let err = canarylab(&[
        "sim",
        scenario.to_str().unwrap(),
        "--runs",
        "3",
        "--service",
        svc.to_str().unwrap(),
    ])
    .expect_err("invalid");
    assert!(
        err.contains("svc.toml") && err.contains("service.error_rate"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
