//! Shared code of the criterion benchmarks (see the `[[bench]]` targets): each peer engine set up
//! to run the flow dissector (examples/flow_dissector) on one packet, so the benches and the
//! tests that check the peers agree use the same glue.

pub mod clock;
pub mod peers;
