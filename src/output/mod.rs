//! Outlets: turn analysis events into text. Pure formatting, no IO: the
//! caller owns stdout, files and flushing.

pub mod json_lines;
pub mod live_log;
