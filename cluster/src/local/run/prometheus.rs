//! What a local release asks of Prometheus: starting it on the running
//! instances, its API with Ctrl-C, its answers as [`Measurement`]s, and
//! the whole analysis's series for the record.
//!
//! Not for: the Prometheus process and its HTTP API (`crate::prom`), nor
//! judging windows (`crate::analysis`).

use std::sync::Arc;

use release::Measurement;
use tokio::sync::watch;

use super::context::Context;
use super::running::Running;
use super::{ReleaseError, ReleaseRecord, Step};
use crate::analysis::fetch_pairs;
use crate::prom::{PromApi, Prometheus};

/// Prometheus's API, once it runs.
/// Ctrl-C (`cancel`) also ends a wait between query retries at once.
pub(super) fn prometheus_api(
    running: &Running,
    cancel: &watch::Receiver<bool>,
) -> Result<PromApi, (Step, ReleaseError)> {
    running
        .prometheus
        .as_ref()
        .map(|p| p.api().with_cancel(cancel.clone()))
        .ok_or_else(|| (Step::Prometheus, ReleaseError::Task("prometheus".into())))
}

/// Prometheus's `data` (`resultType`, `result`) as a [`Measurement`]:
/// values only, series in Prometheus's order; a value that is not a number
/// (`"NaN"` is one) is NaN.
pub fn measurement(data: &serde_json::Value) -> Measurement {
    let value = |point: &serde_json::Value| {
        point[1]
            .as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    let results = || data["result"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    match data["resultType"].as_str() {
        Some("scalar") => Measurement::Scalar(value(&data["result"])),
        Some("vector") => {
            Measurement::Vector(results().iter().map(|r| value(&r["value"])).collect())
        }
        Some("matrix") => Measurement::Matrix(
            results()
                .iter()
                .map(|r| {
                    r["values"]
                        .as_array()
                        .map(|v| v.iter().map(value).collect())
                        .unwrap_or_default()
                })
                .collect(),
        ),
        other => Measurement::Error(format!(
            "Prometheus answered resultType {other:?}, not scalar, vector or matrix"
        )),
    }
}

/// Starts Prometheus scraping every running instance.
pub(super) async fn start_prometheus(
    ctx: &Context<'_>,
    running: &mut Running,
) -> Result<(), (Step, ReleaseError)> {
    ctx.options.watch.set(Step::Prometheus);
    let targets = running.scrape_targets();
    let binary = ctx.options.prometheus.clone();
    let root = ctx
        .options
        .temp_root
        .clone()
        .unwrap_or_else(std::env::temp_dir);
    let step = ctx.plan.step;
    let retry = ctx.options.prometheus_retry;
    let prometheus = Prometheus::start_in(&root, binary.as_deref(), &targets, step)
        .await
        .map(|p| p.with_retry(retry))
        .map_err(|e| (Step::Prometheus, ReleaseError::Prometheus(Box::new(e))))?;
    running.prometheus = Some(Arc::new(prometheus));
    Ok(())
}

/// The whole analysis's series for the report; the last interval's when
/// Prometheus cannot give them.
pub(super) async fn fetch_series(
    ctx: &Context<'_>,
    prometheus: &Arc<Prometheus>,
    traffic_at: f64,
    record: &mut ReleaseRecord,
) {
    let Some(last) = record.intervals.last() else {
        return;
    };
    let end = last.end;
    let step = ctx.plan.step;
    let ms = |t: f64| (t * 1000.0).round() / 1000.0;
    let start = ms(traffic_at + step.as_secs_f64());
    let api = prometheus.api();
    let fetched = fetch_pairs(
        &api,
        ctx.config,
        &ctx.control,
        &ctx.experiment,
        start,
        end,
        step,
    )
    .await;
    match fetched {
        Ok(pairs) => {
            record.series = pairs;
            record.series_start = start;
        }
        _ => {
            record.series = last.pairs.clone();
            record.series_start = last.start;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(json: &str) -> serde_json::Value {
        serde_json::from_str(json).expect("test JSON parses")
    }

    #[test]
    fn prometheus_results_become_measurements() {
        let scalar = data(r#"{"resultType":"scalar","result":[1700000000,"0.25"]}"#);
        assert_eq!(measurement(&scalar), Measurement::Scalar(0.25));
        let vector = data(
            r#"{"resultType":"vector","result":[
                {"metric":{"a":"1"},"value":[1700000000,"2"]},
                {"metric":{"a":"2"},"value":[1700000000,"+Inf"]}]}"#,
        );
        assert_eq!(
            measurement(&vector),
            Measurement::Vector(vec![2.0, f64::INFINITY])
        );
        let empty = data(r#"{"resultType":"vector","result":[]}"#);
        assert_eq!(measurement(&empty), Measurement::Vector(vec![]));
        let matrix = data(
            r#"{"resultType":"matrix","result":[
                {"metric":{},"values":[[1,"1"],[2,"3"]]}]}"#,
        );
        assert_eq!(
            measurement(&matrix),
            Measurement::Matrix(vec![vec![1.0, 3.0]])
        );
        let Measurement::Vector(v) = measurement(&data(
            r#"{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}"#,
        )) else {
            panic!("a vector");
        };
        assert!(v[0].is_nan());
        let string = data(r#"{"resultType":"string","result":[1,"x"]}"#);
        assert!(
            matches!(measurement(&string), Measurement::Error(e) if e.contains("string")),
            "a string result is not a measurement"
        );
    }
}
