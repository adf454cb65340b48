//! [`Errno`]: the error number a failed `bpf()` command returned, with the kernel's name for it.

use std::fmt;

/// An error number returned by the `bpf()` system call (a positive `errno` value).
///
/// Its `Display` prints the symbolic name and the C library's text, e.g. `EACCES (Permission
/// denied)`, so test failures read like the kernel's documentation.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

impl Errno {
    /// Operation not permitted.
    pub const EPERM: Errno = Errno(1);
    /// No such file or directory (e.g. a missing map key).
    pub const ENOENT: Errno = Errno(2);
    /// Bad file descriptor.
    pub const EBADF: Errno = Errno(9);
    /// Try again.
    pub const EAGAIN: Errno = Errno(11);
    /// Out of memory.
    pub const ENOMEM: Errno = Errno(12);
    /// Permission denied: the verifier rejected the program.
    pub const EACCES: Errno = Errno(13);
    /// Bad address.
    pub const EFAULT: Errno = Errno(14);
    /// Entry exists (BPF_NOEXIST on an existing key).
    pub const EEXIST: Errno = Errno(17);
    /// Invalid argument.
    pub const EINVAL: Errno = Errno(22);
    /// Argument list too long (map full, too many instructions).
    pub const E2BIG: Errno = Errno(7);
    /// No space left (verifier log buffer too small).
    pub const ENOSPC: Errno = Errno(28);
    /// Function not implemented (no `bpf()` on this system).
    pub const ENOSYS: Errno = Errno(38);
    /// Operation not supported (kernel internal `ENOTSUPP`, 524).
    pub const ENOTSUPP: Errno = Errno(524);
    /// Operation not supported (`EOPNOTSUPP`).
    pub const EOPNOTSUPP: Errno = Errno(95);

    /// The symbolic name of the error number (`"EACCES"`), or `"E?"` for one this crate does
    /// not name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self.0 {
            1 => "EPERM",
            2 => "ENOENT",
            7 => "E2BIG",
            9 => "EBADF",
            11 => "EAGAIN",
            12 => "ENOMEM",
            13 => "EACCES",
            14 => "EFAULT",
            16 => "EBUSY",
            17 => "EEXIST",
            19 => "ENODEV",
            22 => "EINVAL",
            24 => "EMFILE",
            28 => "ENOSPC",
            34 => "ERANGE",
            38 => "ENOSYS",
            95 => "EOPNOTSUPP",
            524 => "ENOTSUPP",
            _ => "E?",
        }
    }

    /// The error number of the calling thread's last failed system call.
    #[cfg(target_os = "linux")]
    pub(crate) fn last() -> Errno {
        Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 524 {
            // ENOTSUPP is kernel-internal; libc has no text for it.
            return write!(f, "ENOTSUPP (errno 524, operation not supported)");
        }
        let text = std::io::Error::from_raw_os_error(self.0);
        write!(f, "{} ({text})", self.name())
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Errno({}, {})", self.0, self.name())
    }
}

impl std::error::Error for Errno {}
