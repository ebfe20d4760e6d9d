//! Integration tests of the local real mode. They need the `prometheus`
//! binary (`apt-get install prometheus`, or $CANARYLAB_PROMETHEUS).

mod e2e;
mod prometheus;
mod release;
