//! Unprivileged program loads: the kernel's verdict for a user without CAP_BPF, CAP_PERFMON,
//! CAP_SYS_ADMIN and CAP_NET_ADMIN.
//!
//! Capabilities belong to a thread on Linux (each task has its own credentials), so
//! [`ProgLoad::load_unprivileged`] runs `BPF_PROG_LOAD` on a fresh thread that first removes
//! those four capabilities from its own effective and permitted sets with `capset(2)`; the
//! calling thread keeps its privileges. Maps are created by the caller, privileged, before the
//! load (as a privileged daemon would hand descriptors to an unprivileged one).
//!
//! The kernel refuses every unprivileged `bpf()` while the sysctl
//! `kernel.unprivileged_bpf_disabled` is non-zero. [`UnprivilegedBpf::enable`] sets it to 0 for
//! as long as its guard lives (root only) and restores the previous value when the last guard on
//! the machine drops (guards of concurrent test processes coordinate with `flock(2)`). The value 1 is sticky (it cannot be changed until reboot): then, and
//! wherever the sysctl cannot be written, `enable` returns the reason tests print when they skip.

use bpfkit_isa::Insn;

use crate::errno::Errno;
use crate::prog::{Loaded, ProgLoad, ProgramBytes};

/// The sysctl that gates unprivileged `bpf()`.
pub const UNPRIVILEGED_BPF_DISABLED: &str = "/proc/sys/kernel/unprivileged_bpf_disabled";

/// `CAP_NET_ADMIN`.
const CAP_NET_ADMIN: u32 = 12;
/// `CAP_SYS_ADMIN`.
const CAP_SYS_ADMIN: u32 = 21;
/// `CAP_PERFMON`.
const CAP_PERFMON: u32 = 38;
/// `CAP_BPF`.
const CAP_BPF: u32 = 39;

/// The capabilities an unprivileged load runs without.
pub const DROPPED_CAPS: [u32; 4] = [CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN, CAP_NET_ADMIN];

/// Lock and state files shared by every process on the machine that uses the guard (test
/// binaries of several checkouts run at once): `mutex` serialises changes of the sysctl, every
/// live guard holds a shared lock on `holders`, and `saved` holds the value to restore.
const LOCK_MUTEX: &str = "/tmp/bpfkit-unprivileged-bpf.mutex";
/// See [`LOCK_MUTEX`].
const LOCK_HOLDERS: &str = "/tmp/bpfkit-unprivileged-bpf.holders";
/// See [`LOCK_MUTEX`].
const SAVED_VALUE: &str = "/tmp/bpfkit-unprivileged-bpf.saved";

/// While alive, unprivileged `bpf()` is allowed (`kernel.unprivileged_bpf_disabled = 0`).
///
/// Guards coordinate across threads and processes with `flock(2)`: the first one saves the
/// sysctl's value and sets it to 0, the last one to drop restores the saved value. A value left
/// saved by a process that died holding a guard is restored by the next last guard.
#[derive(Debug)]
#[must_use = "unprivileged bpf() is allowed only while the guard lives"]
pub struct UnprivilegedBpf {
    /// This guard's shared lock on [`LOCK_HOLDERS`].
    holder: std::fs::File,
}

/// Opens (creating) a lock file and takes `op` (`LOCK_EX`, `LOCK_SH`, with `LOCK_NB`) on it.
fn lock(path: &str, op: libc::c_int) -> Result<std::fs::File, String> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| format!("cannot open the lock file {path}: {e}"))?;
    flock(&file, op).map_err(|e| format!("cannot lock {path}: {e}"))?;
    Ok(file)
}

/// `flock(2)` on an open file.
#[cfg(unix)]
fn flock(file: &std::fs::File, op: libc::c_int) -> Result<(), Errno> {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is open for the duration of the call; flock reads nothing else.
    if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
        Ok(())
    } else {
        Err(Errno::last())
    }
}

/// File locks exist only on Unix (and unprivileged loads only on Linux).
#[cfg(not(unix))]
fn flock(_file: &std::fs::File, _op: libc::c_int) -> Result<(), Errno> {
    Err(Errno::ENOSYS)
}

impl UnprivilegedBpf {
    /// Allows unprivileged `bpf()` until the returned guard (and every other guard on this
    /// machine) drops. `Err` is the reason unprivileged loads are impossible here.
    ///
    /// # Errors
    /// Not Linux, the sysctl is missing or not writable (not root), or it is 1 (sticky).
    pub fn enable() -> Result<UnprivilegedBpf, String> {
        crate::available()?;
        let _mutex = lock(LOCK_MUTEX, libc::LOCK_EX)?;
        let now = std::fs::read_to_string(UNPRIVILEGED_BPF_DISABLED)
            .map_err(|e| format!("cannot read {UNPRIVILEGED_BPF_DISABLED}: {e}"))?;
        let now = now.trim().to_string();
        if now == "1" {
            return Err(format!(
                "{UNPRIVILEGED_BPF_DISABLED} is 1, which the kernel keeps until reboot: \
                 unprivileged bpf() is impossible here"
            ));
        }
        if now != "0" {
            // Save the value unless a guard (perhaps of a process that died) already did.
            if std::fs::metadata(SAVED_VALUE).is_err() {
                std::fs::write(SAVED_VALUE, &now)
                    .map_err(|e| format!("cannot write {SAVED_VALUE}: {e}"))?;
            }
            std::fs::write(UNPRIVILEGED_BPF_DISABLED, "0").map_err(|e| {
                format!(
                    "cannot set {UNPRIVILEGED_BPF_DISABLED} (now {now}) to 0 to allow \
                     unprivileged bpf(): {e}"
                )
            })?;
        }
        let holder = lock(LOCK_HOLDERS, libc::LOCK_SH)?;
        Ok(UnprivilegedBpf { holder })
    }
}

impl Drop for UnprivilegedBpf {
    fn drop(&mut self) {
        let Ok(_mutex) = lock(LOCK_MUTEX, libc::LOCK_EX) else {
            return;
        };
        // The last guard gets the holders' lock exclusively and restores the saved value.
        let _ = flock(&self.holder, libc::LOCK_UN);
        if flock(&self.holder, libc::LOCK_EX | libc::LOCK_NB).is_ok() {
            if let Ok(previous) = std::fs::read_to_string(SAVED_VALUE) {
                match std::fs::write(UNPRIVILEGED_BPF_DISABLED, previous.trim()) {
                    Ok(()) => {
                        let _ = std::fs::remove_file(SAVED_VALUE);
                    }
                    Err(e) => eprintln!(
                        "could not restore {UNPRIVILEGED_BPF_DISABLED} to {}: {e}",
                        previous.trim()
                    ),
                }
            }
            let _ = flock(&self.holder, libc::LOCK_UN);
        }
    }
}

impl ProgLoad<'_> {
    /// Loads `insns` as a user without CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN and CAP_NET_ADMIN:
    /// on a thread that drops them first. The caller should hold an [`UnprivilegedBpf`] guard;
    /// without one the kernel answers `EPERM` to everything. If the capabilities cannot be
    /// dropped the result is that errno with an explaining log.
    pub fn load_unprivileged<P: ProgramBytes + ?Sized>(&self, insns: &P) -> Loaded {
        let code = insns.program_bytes().into_owned();
        std::thread::scope(|s| {
            s.spawn(|| match drop_caps_of_this_thread() {
                Ok(()) => self.load(&code[..]),
                Err(e) => Loaded {
                    result: Err(e),
                    log: format!("could not drop capabilities with capset(2): {e}"),
                    log_true_size: 0,
                },
            })
            .join()
            .unwrap_or_else(|_| Loaded {
                result: Err(Errno::EFAULT),
                log: "the unprivileged loader thread panicked".to_string(),
                log_true_size: 0,
            })
        })
    }
}

/// Loads a program as an unprivileged user ([`ProgLoad::load_unprivileged`]) with log level 1.
pub fn prog_load_unprivileged(prog_type: u32, insns: &[Insn], license: &str) -> Loaded {
    ProgLoad {
        license,
        ..ProgLoad::new(prog_type)
    }
    .load_unprivileged(insns)
}

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

/// `struct __user_cap_data_struct`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit capability sets in two data structs.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Removes [`DROPPED_CAPS`] from the calling thread's effective and permitted sets.
#[cfg(target_os = "linux")]
fn drop_caps_of_this_thread() -> Result<(), Errno> {
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: `header` and `data` are live, writable and laid out as the kernel's
    // `__user_cap_header_struct` and two `__user_cap_data_struct`s (version 3).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_capget,
            std::ptr::from_mut(&mut header),
            data.as_mut_ptr(),
        )
    };
    if ret != 0 {
        return Err(Errno::last());
    }
    for cap in DROPPED_CAPS {
        let (word, bit) = ((cap / 32) as usize, 1u32 << (cap % 32));
        data[word].effective &= !bit;
        data[word].permitted &= !bit;
    }
    // pid 0: the calling thread only.
    header.pid = 0;
    // SAFETY: as above; capset only reads both structs.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_capset,
            std::ptr::from_mut(&mut header),
            data.as_ptr(),
        )
    };
    if ret != 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Capabilities exist only on Linux.
#[cfg(not(target_os = "linux"))]
fn drop_caps_of_this_thread() -> Result<(), Errno> {
    Err(Errno::ENOSYS)
}
