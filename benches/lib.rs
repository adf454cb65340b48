//! Shared code of the criterion benchmarks (see the `[[bench]]` targets).
