//! Tracing helpers: `bpf_trace_printk` with its trace pipe, and the fault-free memory reads
//! `bpf_probe_read`, `bpf_probe_read_str`, `bpf_probe_read_user(_str)`,
//! `bpf_probe_read_kernel(_str)` (kernel/trace/bpf_trace.c).
//!
//! The trace pipe is process-wide, as the kernel's is system-wide: every program's
//! `bpf_trace_printk` lines go to it, and [`read_trace_pipe`] drains them in order.

use super::abi::{self, ret};
use super::def::{args, proto, Body, HelperDef, Types};
use super::printk::{self, MemReader};
use super::probe;
use bpfkit_verifier::env::{ArgType as A, RetType as R};
use bpfkit_vm::Helper;
use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

/// One line of the trace pipe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceLine {
    /// The thread's name.
    pub comm: String,
    /// The thread id.
    pub pid: u32,
    /// The CPU it ran on.
    pub cpu: u32,
    /// `CLOCK_BOOTTIME` in nanoseconds when the line was written.
    pub timestamp_ns: u64,
    /// The formatted message.
    pub msg: String,
}

impl std::fmt::Display for TraceLine {
    /// As `/sys/kernel/tracing/trace_pipe` prints it (without the irq-flags column).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.timestamp_ns / 1_000_000_000;
        let usecs = self.timestamp_ns % 1_000_000_000 / 1000;
        write!(
            f,
            "{}-{} [{:03}] {secs}.{usecs:06}: bpf_trace_printk: {}",
            self.comm, self.pid, self.cpu, self.msg
        )
    }
}

/// Most lines the pipe keeps; older ones are dropped, as the kernel's ring buffer overwrites.
pub const TRACE_PIPE_CAPACITY: usize = 65_536;

static TRACE_PIPE: Mutex<VecDeque<TraceLine>> = Mutex::new(VecDeque::new());

/// Takes every line written so far, oldest first.
pub fn read_trace_pipe() -> Vec<TraceLine> {
    let mut pipe = TRACE_PIPE.lock().unwrap_or_else(PoisonError::into_inner);
    pipe.drain(..).collect()
}

fn write_trace_pipe(msg: String) {
    let pid_tgid = crate::helpers::task::current_pid_tgid();
    let line = TraceLine {
        comm: String::from_utf8_lossy(&crate::helpers::task::current_comm()).into_owned(),
        pid: pid_tgid as u32,
        cpu: crate::helpers::task::current_cpu(),
        timestamp_ns: crate::helpers::task::boot_ns(),
        msg,
    };
    let mut pipe = TRACE_PIPE.lock().unwrap_or_else(PoisonError::into_inner);
    if pipe.len() == TRACE_PIPE_CAPACITY {
        pipe.pop_front();
    }
    pipe.push_back(line);
}

/// Reads `%s` / `%pI4` arguments through the fault-free reader.
struct NoFault;

impl MemReader for NoFault {
    fn read(&self, addr: u64, len: usize) -> Option<Vec<u8>> {
        let mut v = vec![0u8; len];
        probe::read_nofault(&mut v, addr).ok().map(|()| v)
    }
    fn read_str(&self, addr: u64, max: usize) -> Option<Vec<u8>> {
        probe::read_str_nofault(addr, max).ok()
    }
}

extern "C" fn trace_printk(fmt: u64, fmt_size: u64, a1: u64, a2: u64, a3: u64) -> u64 {
    // SAFETY: ARG_PTR_TO_MEM with its ARG_CONST_SIZE: `fmt_size` readable bytes.
    let fmt = unsafe { abi::bytes(fmt, fmt_size as usize) };
    match printk::format(fmt, [a1, a2, a3], &NoFault) {
        Ok(f) => {
            let len = f.len;
            write_trace_pipe(f.text);
            len as u64
        }
        Err(e) => ret(e),
    }
}

extern "C" fn probe_read(dst: u64, size: u64, src: u64, _: u64, _: u64) -> u64 {
    // SAFETY: ARG_PTR_TO_UNINIT_MEM with its ARG_CONST_SIZE_OR_ZERO: `size` writable bytes.
    let out = unsafe { abi::bytes_mut(dst, size as usize) };
    match probe::read_nofault(out, src) {
        Ok(()) => 0,
        Err(e) => ret(e),
    }
}

/// `strncpy_from_*_nofault` as the `_str` helpers use it: copies up to `out.len() - 1` bytes
/// and a NUL, returns the length including the NUL, or `-EFAULT` (and a zeroed buffer) when
/// any byte it needs is unreadable.
fn probe_read_str_into(out: &mut [u8], src: u64) -> i64 {
    if out.is_empty() {
        return 0;
    }
    let mut byte = [0u8; 1];
    for i in 0..out.len() {
        if i == out.len() - 1 {
            out[i] = 0;
            return out.len() as i64;
        }
        if probe::read_nofault(&mut byte, src.wrapping_add(i as u64)).is_err() {
            out.fill(0);
            return probe::EFAULT;
        }
        out[i] = byte[0];
        if byte[0] == 0 {
            return i as i64 + 1;
        }
    }
    out.len() as i64
}

extern "C" fn probe_read_str(dst: u64, size: u64, src: u64, _: u64, _: u64) -> u64 {
    // SAFETY: ARG_PTR_TO_UNINIT_MEM with its ARG_CONST_SIZE_OR_ZERO: `size` writable bytes.
    let out = unsafe { abi::bytes_mut(dst, size as usize) };
    ret(probe_read_str_into(out, src))
}

/// The definitions. The `_kernel` and `_user` variants read the same process memory here
/// (see docs/differences.md).
pub fn defs() -> Vec<HelperDef> {
    let read_args = || args([A::PtrToUninitMem, A::ConstSizeOrZero, A::Anything]);
    let read = |id, name, f, types| HelperDef {
        id,
        proto: proto(name, read_args(), R::Integer, true),
        body: Body::Call(Helper::scalar(f)),
        types,
    };
    vec![
        HelperDef {
            id: 6,
            proto: proto(
                "bpf_trace_printk",
                args([A::PtrToMem, A::ConstSize]),
                R::Integer,
                true,
            ),
            body: Body::Call(Helper::scalar(trace_printk)),
            types: Types::All,
        },
        read(4, "bpf_probe_read", probe_read, Types::Tracing),
        read(45, "bpf_probe_read_str", probe_read_str, Types::Tracing),
        read(112, "bpf_probe_read_user", probe_read, Types::All),
        read(113, "bpf_probe_read_kernel", probe_read, Types::All),
        read(114, "bpf_probe_read_user_str", probe_read_str, Types::All),
        read(115, "bpf_probe_read_kernel_str", probe_read_str, Types::All),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn str_reads_follow_strncpy_from_kernel_nofault() {
        let src = b"hello\0";
        let mut out = [0xffu8; 8];
        assert_eq!(probe_read_str_into(&mut out, src.as_ptr() as u64), 6);
        assert_eq!(&out[..6], b"hello\0");
        let mut short = [0xffu8; 3];
        assert_eq!(probe_read_str_into(&mut short, src.as_ptr() as u64), 3);
        assert_eq!(&short, b"he\0");
        let mut bad = [0xffu8; 4];
        assert_eq!(probe_read_str_into(&mut bad, 8), probe::EFAULT);
        assert_eq!(bad, [0; 4]);
    }

    #[test]
    fn printk_lines_reach_the_pipe() {
        let fmt = b"x=%d\0";
        let n = trace_printk(fmt.as_ptr() as u64, 5, 42, 0, 0);
        assert_eq!(n, 4);
        let lines = read_trace_pipe();
        assert!(lines.iter().any(|l| l.msg == "x=42"), "{lines:?}");
    }
}
