//! The local mode: a whole canary release on loopback ([`run`]: goldengoose
//! processes, loadgen, a real Prometheus, driven by the simulator's release
//! controller), and its pieces: a readiness probe, and control/experiment
//! series from Prometheus turned into a Kayenta [`MetricSetPair`].
//! goldengoose processes are [`goose`]; what the controller hears of
//! them, [`pods`].
//!
//! Mirrors `kube/`'s layout (`kube/run.rs` is the Kubernetes
//! mode's driver, `local/run/` the local mode's: its driver loop in
//! `run/driver/`, the processes it runs and their weights in
//! `run/running.rs`).

pub mod goose;
pub mod pods;
pub mod run;

use std::net::SocketAddr;
use std::time::Duration;

use judge::MetricSetPair;

/// `GET path` over HTTP/1.0 with a one-second budget; the status code, or
/// `None` when nothing answered.
pub async fn probe(addr: SocketAddr, path: &str) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ask = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        stream
            .write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut head = Vec::new();
        let mut buf = [0u8; 256];
        while !head.windows(2).any(|w| w == b"\r\n") {
            let n = stream.read(&mut buf).await.ok()?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        let line = String::from_utf8_lossy(&head).to_string();
        line.split_whitespace().nth(1)?.parse::<u16>().ok()
    };
    tokio::time::timeout(Duration::from_secs(1), ask)
        .await
        .ok()
        .flatten()
}

/// The step grid of a range query: `start, start + step, ... <= end`, as
/// Prometheus evaluates `/api/v1/query_range`.
pub fn step_grid(start: f64, end: f64, step: Duration) -> Vec<f64> {
    if step.is_zero() || !start.is_finite() || !end.is_finite() || end < start {
        return Vec::new();
    }
    let step = step.as_secs_f64();
    // Tolerance: unix seconds as f64 carry ~1e-6 s of rounding.
    let n = ((end - start) / step + 1e-4).floor() as usize + 1;
    (0..n).map(|i| start + i as f64 * step).collect()
}

/// Puts `points` onto the step grid of `[start, end]`: one value per grid
/// time, NaN where Prometheus returned nothing (no samples yet, a target
/// down, a series that began late). Points off the grid are dropped.
pub fn pad_to_grid(points: &[(f64, f64)], start: f64, end: f64, step: Duration) -> Vec<f64> {
    let grid = step_grid(start, end, step);
    let step_s = step.as_secs_f64();
    let mut values = vec![f64::NAN; grid.len()];
    // Nearest grid time: Prometheus answers on its grid, but from a start
    // it received rounded to milliseconds.
    for &(t, v) in points {
        let i = ((t - start) / step_s).round();
        if i >= 0.0 && (i as usize) < values.len() && (t - grid[i as usize]).abs() < step_s / 2.0 {
            values[i as usize] = v;
        }
    }
    values
}

/// Kayenta's MetricSetPair for one metric and interval: the control
/// (baseline) and experiment (canary) series aligned on the same step grid,
/// so both have one value per step, NaN-padded where data is missing.
///
/// Kayenta fills gaps inside a Prometheus series with NaN and pads the
/// shorter of the two series with NaN at the end; aligning both on the
/// query's grid gives the same values whenever the two series cover the
/// interval, and keeps missing points at their true times when they do not.
pub fn metric_set_pair(
    name: &str,
    control: &[(f64, f64)],
    experiment: &[(f64, f64)],
    start: f64,
    end: f64,
    step: Duration,
) -> MetricSetPair {
    MetricSetPair::new(
        name,
        pad_to_grid(control, start, end, step),
        pad_to_grid(experiment, start, end, step),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_includes_both_ends() {
        assert_eq!(
            step_grid(100.0, 103.0, Duration::from_secs(1)),
            vec![100.0, 101.0, 102.0, 103.0]
        );
        assert_eq!(
            step_grid(100.0, 102.5, Duration::from_secs(1)).len(),
            3,
            "end off the grid is not a point"
        );
        assert!(step_grid(5.0, 1.0, Duration::from_secs(1)).is_empty());
        assert!(step_grid(1.0, 5.0, Duration::ZERO).is_empty());
    }

    #[test]
    fn missing_points_become_nan_at_their_time() {
        let v = pad_to_grid(
            &[(101.0, 1.0), (103.0, 3.0), (250.0, 9.0)],
            100.0,
            104.0,
            Duration::from_secs(1),
        );
        assert_eq!(v.len(), 5);
        assert!(v[0].is_nan() && v[2].is_nan() && v[4].is_nan());
        assert_eq!((v[1], v[3]), (1.0, 3.0));
    }

    #[test]
    fn millisecond_rounded_answers_land_on_the_grid() {
        let start = 1_795_320_754.664_321_4;
        let points: Vec<(f64, f64)> = (0..5)
            .map(|i| (1_795_320_754.664 + i as f64 * 0.2, i as f64))
            .collect();
        let v = pad_to_grid(&points, start, start + 0.8, Duration::from_millis(200));
        assert_eq!(v, vec![0.0, 1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn pair_has_equal_lengths_when_one_side_is_short() {
        let control: Vec<(f64, f64)> = (0..10).map(|i| (1000.0 + i as f64 * 2.0, 1.0)).collect();
        let experiment = &control[..4];
        let pair = metric_set_pair(
            "latency",
            &control,
            experiment,
            1000.0,
            1018.0,
            Duration::from_secs(2),
        );
        let (c, e) = (&pair.values.control, &pair.values.experiment);
        assert_eq!((c.len(), e.len()), (10, 10));
        assert_eq!(e[3], 1.0);
        assert!(e[4..].iter().all(|v| v.is_nan()));
    }
}
