//! loadgen (work in progress)
