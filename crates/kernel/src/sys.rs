//! The raw `bpf()` system call, the one place this crate calls into the kernel, and the owned
//! file descriptor type its objects hold.
//!
//! On Linux it is `syscall(SYS_bpf, cmd, &attr, sizeof(attr))`; elsewhere every command fails
//! with `ENOSYS`, so the crate compiles everywhere and reports the kernel unavailable.

use crate::errno::Errno;

#[cfg(unix)]
pub(crate) use std::os::fd::OwnedFd;

/// Stand-in for `OwnedFd` where the platform has none; never constructed.
#[cfg(not(unix))]
#[derive(Debug)]
pub(crate) struct OwnedFd(i32);

/// The raw number of an owned descriptor.
#[cfg(unix)]
pub(crate) fn raw(fd: &OwnedFd) -> i32 {
    use std::os::fd::AsRawFd;
    fd.as_raw_fd()
}

/// The raw number of an owned descriptor.
#[cfg(not(unix))]
pub(crate) fn raw(fd: &OwnedFd) -> i32 {
    fd.0
}

/// Marker for the `#[repr(C)]` attr structs of [`crate::attr`], each exactly as large as the
/// union the kernel expects.
pub(crate) trait Attr {}
impl Attr for crate::attr::MapCreateAttr {}
impl Attr for crate::attr::ElemAttr {}
impl Attr for crate::attr::ProgLoadAttr {}
impl Attr for crate::attr::TestRunAttr {}

/// Runs one `bpf()` command and returns its non-negative result or the errno.
///
/// # Safety
/// Every pointer field of `attr` must be null or point to memory that stays valid, and is
/// writable where the command writes, for the lengths given in `attr` (or implied by the map's
/// key and value sizes for element commands).
#[cfg(target_os = "linux")]
pub(crate) unsafe fn bpf<A: Attr>(cmd: libc::c_long, attr: &mut A) -> Result<i64, Errno> {
    let size = std::mem::size_of::<A>() as libc::c_uint;
    // SAFETY: `attr` is a live, exclusively borrowed #[repr(C)] struct of `size` bytes laid out
    // as the kernel's `union bpf_attr` member for `cmd`; the caller guarantees the buffers its
    // pointer fields name.
    let ret = unsafe { libc::syscall(libc::SYS_bpf, cmd, std::ptr::from_mut(attr), size) };
    if ret < 0 {
        Err(Errno::last())
    } else {
        // `c_long` is i64 on 64-bit Linux and i32 on 32-bit: widen either way.
        Ok(ret as i64)
    }
}

/// Runs one `bpf()` command: never available off Linux.
///
/// # Safety
/// Always safe; `unsafe` only to match the Linux signature.
#[cfg(not(target_os = "linux"))]
pub(crate) unsafe fn bpf<A: Attr>(_cmd: libc::c_long, _attr: &mut A) -> Result<i64, Errno> {
    Err(Errno::ENOSYS)
}

/// Takes ownership of the descriptor a successful command returned.
#[cfg(unix)]
pub(crate) fn owned_fd(ret: i64) -> Result<OwnedFd, Errno> {
    use std::os::fd::FromRawFd;
    let raw = i32::try_from(ret).map_err(|_| Errno::EINVAL)?;
    // SAFETY: the kernel just returned `raw` as a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Takes ownership of a descriptor: unreachable off Unix because no command succeeds.
#[cfg(not(unix))]
pub(crate) fn owned_fd(ret: i64) -> Result<OwnedFd, Errno> {
    i32::try_from(ret).map(OwnedFd).map_err(|_| Errno::EINVAL)
}
