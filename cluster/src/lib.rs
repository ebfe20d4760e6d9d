//! Real modes (in progress).
