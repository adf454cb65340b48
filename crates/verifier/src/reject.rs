//! Why a program was rejected: the errno the kernel's `BPF_PROG_LOAD` returns, the instruction,
//! and the kernel's message.

use std::fmt;

/// An errno value as `bpf(BPF_PROG_LOAD)` returns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

impl Errno {
    /// Operation not permitted: the loader lacks a capability.
    pub const EPERM: Errno = Errno(1);
    /// Argument list too long: program too large or too complex.
    pub const E2BIG: Errno = Errno(7);
    /// Bad file descriptor: a map reference that names no map.
    pub const EBADF: Errno = Errno(9);
    /// Permission denied: the program breaks a safety rule.
    pub const EACCES: Errno = Errno(13);
    /// Bad address: the verifier's own inconsistency.
    pub const EFAULT: Errno = Errno(14);
    /// Invalid argument: malformed program.
    pub const EINVAL: Errno = Errno(22);
    /// Operation not supported (the kernel-internal `ENOTSUPP`).
    pub const ENOTSUPP: Errno = Errno(524);

    /// The symbolic name (`EACCES`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self.0 {
            1 => "EPERM",
            7 => "E2BIG",
            9 => "EBADF",
            13 => "EACCES",
            14 => "EFAULT",
            22 => "EINVAL",
            524 => "ENOTSUPP",
            _ => "E?",
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

/// A rule's rejection before it becomes a [`crate::Rejected`] (which adds the log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    /// The errno.
    pub errno: Errno,
    /// The instruction index.
    pub insn_idx: usize,
    /// The kernel's message, without trailing newline.
    pub message: String,
}

impl Reject {
    /// A rejection at instruction `insn_idx`.
    #[must_use]
    pub fn new(errno: Errno, insn_idx: usize, message: impl Into<String>) -> Reject {
        Reject {
            errno,
            insn_idx,
            message: message.into(),
        }
    }
}
