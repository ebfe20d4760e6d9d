//! Integration tests of the kube mode: rendered manifests, and the exact
//! API request sequence of a release and of `clean` against kube-rs's
//! mock API server pattern. The real-cluster test is ignored (no API
//! server can run here); see `cluster/KUBE.md`.

mod cluster;
mod mock;
mod render;
mod sequence;
