//! Flagger: its files ([`spec`]) and its scheduler's tick loop ([`canary`]).

pub mod canary;
pub mod spec;

pub use canary::FlaggerCanary;
pub use spec::{CanaryPlan, Check, CheckKind, FlaggerDocs, Strategy};
