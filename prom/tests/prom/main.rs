//! Integration tests of the in-memory Prometheus: the evaluator against a
//! real Prometheus on the same samples, and property tests.

mod data;
mod oracle;
mod props;
