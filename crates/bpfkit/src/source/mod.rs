//! Event sources for packet programs: capture files ([`capture`]) and the per-frame runs of
//! socket, tc and XDP programs ([`packets`]).

pub mod capture;
pub mod packets;
