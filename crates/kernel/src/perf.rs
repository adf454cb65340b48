//! `perf_event_open` of the one event kind BPF programs write to: a `PERF_TYPE_SOFTWARE` /
//! `PERF_COUNT_SW_BPF_OUTPUT` event on one CPU, whose descriptor a perf event array stores.
//! No ring is mapped: the tests that use it compare map commands and helper return values,
//! not samples.

use crate::errno::Errno;
use crate::sys::OwnedFd;

/// An open perf event.
#[derive(Debug)]
pub struct PerfEvent {
    fd: OwnedFd,
}

impl PerfEvent {
    /// The descriptor, as a perf event array update takes it.
    #[must_use]
    pub fn fd(&self) -> i32 {
        crate::sys::raw(&self.fd)
    }
}

/// `perf_event_open(&attr, pid -1, cpu, group -1, 0)` for a `PERF_COUNT_SW_BPF_OUTPUT` event
/// sampling raw data.
#[cfg(target_os = "linux")]
pub fn perf_event_open_bpf_output(cpu: i32) -> Result<PerfEvent, Errno> {
    const PERF_TYPE_SOFTWARE: u32 = 1;
    const PERF_COUNT_SW_BPF_OUTPUT: u64 = 10;
    const PERF_SAMPLE_RAW: u64 = 1 << 10;
    /// `PERF_ATTR_SIZE_VER0`.
    const ATTR_SIZE: u32 = 64;
    // struct perf_event_attr, first 64 bytes: type, size, config, sample_period, sample_type,
    // read_format, flag bits, wakeup_events + bp_type, bp_addr.
    let mut attr = [0u64; 8];
    attr[0] = u64::from(PERF_TYPE_SOFTWARE) | (u64::from(ATTR_SIZE) << 32);
    attr[1] = PERF_COUNT_SW_BPF_OUTPUT;
    attr[2] = 1;
    attr[3] = PERF_SAMPLE_RAW;
    attr[6] = 1; // wakeup_events
                 // SAFETY: `attr` is a live 64-byte buffer laid out as PERF_ATTR_SIZE_VER0 of
                 // struct perf_event_attr; the kernel only reads it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            attr.as_ptr(),
            -1 as libc::c_int,
            cpu as libc::c_int,
            -1 as libc::c_int,
            0 as libc::c_ulong,
        )
    };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(PerfEvent {
        fd: crate::sys::owned_fd(ret as i64)?,
    })
}

/// `perf_event_open`: never available off Linux.
#[cfg(not(target_os = "linux"))]
pub fn perf_event_open_bpf_output(_cpu: i32) -> Result<PerfEvent, Errno> {
    Err(Errno::ENOSYS)
}
