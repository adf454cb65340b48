//! Event sources for packet programs: capture files ([`capture`]) and the per-frame runs of
//! socket, tc and XDP programs ([`packets`]), and log2 histograms of what programs counted
//! ([`hist`]).

pub mod capture;
pub mod hist;
pub mod packets;
