//! Perf events in the object table: what `perf_event_open` is for the perf event arrays of
//! `bpf_perf_event_output` (see [`crate::maps::perf_event`] for the model).
//!
//! ```
//! use bpfkit::maps::{cpu, MapAttr, MapType};
//! use bpfkit::Bpf;
//!
//! let bpf = Bpf::new();
//! let events = bpf
//!     .map_create(&MapAttr::new(MapType::PerfEventArray, 4, 4, cpu::possible_cpus()))
//!     .unwrap();
//! // One output event per CPU, stored at the CPU's index, as libbpf's perf_buffer does.
//! for c in 0..cpu::possible_cpus() {
//!     let ev = bpf.perf_event_open(c, 8).unwrap();
//!     bpf.map_update_elem(events, &c.to_ne_bytes(), &ev.0.to_ne_bytes(), 0).unwrap();
//! }
//! ```

use std::sync::Arc;

use crate::errno::Errno;
use crate::maps::PerfEvent;
use crate::object::{Bpf, Fd, Object};

impl Bpf {
    /// `perf_event_open` of a `PERF_TYPE_SOFTWARE` / `PERF_COUNT_SW_BPF_OUTPUT` event on CPU
    /// `cpu` (pid -1), with a ring of `data_pages` pages (a power of two) as its `mmap` would
    /// have. Its descriptor is what a perf event array update takes.
    pub fn perf_event_open(&self, cpu: u32, data_pages: u32) -> Result<Fd, Errno> {
        let ev = PerfEvent::new(cpu, data_pages)?;
        Ok(self.insert(Object::PerfEvent(Arc::new(ev))))
    }

    /// The perf event behind `fd`, to read its samples ([`PerfEvent::read`]): `EBADF` when
    /// `fd` is not open or is not a perf event (the kernel's `perf_event_get`).
    pub fn perf_event(&self, fd: Fd) -> Result<Arc<PerfEvent>, Errno> {
        match self.get(fd) {
            Ok(Object::PerfEvent(ev)) => Ok(ev),
            Ok(other) => Err(Errno::Ebadf(
                format!("fd {fd} is a {}, not a perf event", other.kind_name()).into(),
            )),
            Err(e) => Err(e),
        }
    }
}
