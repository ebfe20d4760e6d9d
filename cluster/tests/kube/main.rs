//! Integration tests of the kube mode: rendered manifests, and the exact
//! API request sequence of a release and of `clean` against kube-rs's
//! mock API server pattern. The real-cluster test exists only with the
//! `real-cluster-test` feature (no API server can run here, and
//! `--include-ignored` must not reach for one); see `cluster/KUBE.md`.

#[cfg(feature = "real-cluster-test")]
mod cluster;
mod mock;
mod render;
mod sequence;
