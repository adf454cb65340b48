//! Helpers about the calling task and the clock: `bpf_ktime_get_ns`, `bpf_ktime_get_boot_ns`,
//! `bpf_jiffies64`, `bpf_get_prandom_u32`, `bpf_get_smp_processor_id`, `bpf_get_numa_node_id`,
//! `bpf_get_current_pid_tgid`, `bpf_get_current_uid_gid`, `bpf_get_current_comm`,
//! `bpf_get_cgroup_classid`.
//!
//! "Current" is the thread running the program, as it is in the kernel: the values are the
//! real ones of that thread (its tid and tgid, uid and gid, `comm` name, CPU).

use super::abi::{self, ret};
use super::def::{args, proto, Body, HelperDef, Types};
use bpfkit_verifier::env::{ArgType as A, RetType as R};
use bpfkit_vm::Helper;
use std::cell::Cell;

/// `-EINVAL`.
const EINVAL: i64 = -22;

/// The kernel's tick rate assumed for `bpf_jiffies64` (Debian's `CONFIG_HZ_250`); user space
/// cannot read the running kernel's. See docs/differences.md.
pub const HZ: u64 = 250;
/// `INITIAL_JIFFIES`: jiffies start 5 minutes before wrapping 32 bits.
const INITIAL_JIFFIES: u64 = (-300i64 * HZ as i64) as u32 as u64;

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

#[cfg(target_os = "linux")]
const BOOTTIME: libc::clockid_t = libc::CLOCK_BOOTTIME;
#[cfg(not(target_os = "linux"))]
const BOOTTIME: libc::clockid_t = libc::CLOCK_MONOTONIC;

extern "C" fn ktime_get_ns(_: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

extern "C" fn ktime_get_boot_ns(_: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    clock_ns(BOOTTIME)
}

extern "C" fn jiffies64(_: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    INITIAL_JIFFIES.wrapping_add(clock_ns(BOOTTIME) / (1_000_000_000 / HZ))
}

thread_local! {
    static PRANDOM: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let t = clock_ns(libc::CLOCK_MONOTONIC);
    let tid = u64::from(current_tid());
    (t ^ tid.rotate_left(32)) | 1
}

/// A per-thread xorshift64* generator, as the kernel keeps per-CPU `prandom` state.
extern "C" fn get_prandom_u32(_: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    PRANDOM.with(|s| {
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        u64::from((x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32)
    })
}

/// The CPU and NUMA node the thread runs on.
fn cpu_and_node() -> (u32, u32) {
    #[cfg(target_os = "linux")]
    {
        let mut cpu: libc::c_uint = 0;
        let mut node: libc::c_uint = 0;
        // SAFETY: getcpu(2) writes two unsigned ints through valid pointers; the third
        // argument is unused and may be NULL.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_getcpu,
                &mut cpu as *mut libc::c_uint,
                &mut node as *mut libc::c_uint,
                std::ptr::null_mut::<libc::c_void>(),
            )
        };
        if rc == 0 {
            return (cpu, node);
        }
    }
    (0, 0)
}

/// The CPU the calling thread runs on.
#[must_use]
pub fn current_cpu() -> u32 {
    cpu_and_node().0
}

/// `CLOCK_BOOTTIME` in nanoseconds.
#[must_use]
pub fn boot_ns() -> u64 {
    clock_ns(BOOTTIME)
}

/// `bpf_get_current_pid_tgid`'s value: tgid in the high half, thread id in the low.
#[must_use]
pub fn current_pid_tgid() -> u64 {
    (u64::from(std::process::id()) << 32) | u64::from(current_tid())
}

extern "C" fn get_smp_processor_id(_: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    u64::from(cpu_and_node().0)
}

extern "C" fn get_numa_node_id(_: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    u64::from(cpu_and_node().1)
}

fn current_tid() -> u32 {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid(2) has no preconditions.
        let tid = unsafe { libc::gettid() };
        tid as u32
    }
    #[cfg(not(target_os = "linux"))]
    {
        std::process::id()
    }
}

extern "C" fn get_current_pid_tgid(_: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    current_pid_tgid()
}

extern "C" fn get_current_uid_gid(_: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    // SAFETY: getuid(2) and getgid(2) have no preconditions.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    (u64::from(gid) << 32) | u64::from(uid)
}

/// The thread's name (`task->comm`, at most 15 bytes).
#[must_use]
pub fn current_comm() -> Vec<u8> {
    #[cfg(target_os = "linux")]
    {
        let mut name = [0u8; 16];
        // SAFETY: PR_GET_NAME writes at most 16 bytes (NUL included) into `name`.
        let rc = unsafe { libc::prctl(libc::PR_GET_NAME, name.as_mut_ptr(), 0, 0, 0) };
        if rc == 0 {
            let end = name.iter().position(|&b| b == 0).unwrap_or(15);
            return name[..end].to_vec();
        }
    }
    b"bpfkit".to_vec()
}

extern "C" fn get_current_comm(buf: u64, size: u64, _: u64, _: u64, _: u64) -> u64 {
    // SAFETY: ARG_PTR_TO_UNINIT_MEM with its ARG_CONST_SIZE: `size` writable bytes.
    let out = unsafe { abi::bytes_mut(buf, size as usize) };
    if out.is_empty() {
        return ret(EINVAL);
    }
    // strscpy_pad: at most size - 1 bytes, NUL-terminated, zero-padded.
    out.fill(0);
    let comm = current_comm();
    let n = comm.len().min(out.len() - 1);
    out[..n].copy_from_slice(&comm[..n]);
    0
}

/// `bpf_get_current_task`: Linux returns the address of the current `task_struct`. bpfkit has
/// no kernel objects, so it returns an opaque token in the kernel's direct-map range, distinct
/// per thread and stable for it (a read through it with a probe read fails with `-EFAULT`,
/// where Linux's succeeds).
extern "C" fn get_current_task(_: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    0xffff_8880_0000_0000 | (u64::from(current_tid()) << 14)
}

extern "C" fn get_cgroup_classid(_: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    // No net_cls cgroup in user space: the kernel's answer for a task outside one.
    0
}

/// The definitions.
pub fn defs() -> Vec<HelperDef> {
    let none = || args([]);
    let plain = |id, name, f, gpl| HelperDef {
        id,
        proto: proto(name, none(), R::Integer, gpl),
        body: Body::Call(Helper::scalar(f)),
        types: Types::All,
    };
    vec![
        plain(5, "bpf_ktime_get_ns", ktime_get_ns, false),
        plain(7, "bpf_get_prandom_u32", get_prandom_u32, false),
        plain(8, "bpf_get_smp_processor_id", get_smp_processor_id, false),
        plain(14, "bpf_get_current_pid_tgid", get_current_pid_tgid, false),
        plain(15, "bpf_get_current_uid_gid", get_current_uid_gid, false),
        plain(42, "bpf_get_numa_node_id", get_numa_node_id, false),
        plain(118, "bpf_jiffies64", jiffies64, false),
        plain(125, "bpf_ktime_get_boot_ns", ktime_get_boot_ns, false),
        HelperDef {
            // `bpf_get_current_task_proto`: GPL only; in `bpf_base_func_proto`'s perfmon part
            // (every type, privileged loads: the unprivileged rules refuse it).
            id: 35,
            proto: proto("bpf_get_current_task", none(), R::Integer, true),
            body: Body::Call(Helper::scalar(get_current_task)),
            types: Types::All,
        },
        HelperDef {
            id: 16,
            proto: proto(
                "bpf_get_current_comm",
                args([A::PtrToUninitMem, A::ConstSize]),
                R::Integer,
                false,
            ),
            body: Body::Call(Helper::scalar(get_current_comm)),
            types: Types::All,
        },
        HelperDef {
            id: 17,
            proto: proto(
                "bpf_get_cgroup_classid",
                args([A::PtrToCtx]),
                R::Integer,
                false,
            ),
            body: Body::Call(Helper::scalar(get_cgroup_classid)),
            types: Types::All,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_task_is_stable_per_thread_and_distinct_between_threads() {
        let here = get_current_task(0, 0, 0, 0, 0);
        assert_eq!(here, get_current_task(0, 0, 0, 0, 0));
        assert_ne!(here, 0);
        let other = std::thread::spawn(|| get_current_task(0, 0, 0, 0, 0))
            .join()
            .expect("thread");
        assert_ne!(here, other);
    }

    #[test]
    fn pid_tgid_is_the_calling_thread() {
        let v = get_current_pid_tgid(0, 0, 0, 0, 0);
        assert_eq!((v >> 32) as u32, std::process::id());
        if cfg!(target_os = "linux") {
            let status = std::fs::read_to_string("/proc/thread-self/status").expect("procfs");
            let pid_line = status
                .lines()
                .find(|l| l.starts_with("Pid:"))
                .expect("Pid line");
            let tid: u32 = pid_line[4..].trim().parse().expect("number");
            assert_eq!(v as u32, tid);
        }
    }

    #[test]
    fn comm_is_the_thread_name() {
        let handle = std::thread::Builder::new()
            .name("bpfkit-comm-test".into())
            .spawn(|| {
                let mut buf = [0xffu8; 16];
                let r = get_current_comm(buf.as_mut_ptr() as u64, 16, 0, 0, 0);
                (r, buf)
            })
            .expect("spawn");
        let (r, buf) = handle.join().expect("join");
        assert_eq!(r, 0);
        if cfg!(target_os = "linux") {
            // The kernel keeps 15 bytes of a thread name.
            assert_eq!(&buf[..16], b"bpfkit-comm-tes\0");
        }
    }

    #[test]
    fn uid_gid_packs_gid_high() {
        let v = get_current_uid_gid(0, 0, 0, 0, 0);
        // SAFETY: no preconditions.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        assert_eq!(v, (u64::from(gid) << 32) | u64::from(uid));
    }

    #[test]
    fn clocks_move_forward() {
        let a = ktime_get_ns(0, 0, 0, 0, 0);
        let b = ktime_get_ns(0, 0, 0, 0, 0);
        assert!(b >= a);
        assert!(ktime_get_boot_ns(0, 0, 0, 0, 0) >= a / 2);
    }
}
