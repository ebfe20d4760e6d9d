//! goldengoose (work in progress)
