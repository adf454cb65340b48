//! The error of the object API: the errno the Linux `bpf()` system call would return, with a
//! message saying what was wrong and where.
//!
//! Every command of [`crate::Bpf`] and every map operation returns `Result<T, Errno>`. The
//! variant is the kernel's errno (so callers and differential tests compare it with the
//! kernel's answer); the message is for people. Helpers called from programs report the same
//! errors as the kernel's negative errno ([`Errno::to_neg`]).

use std::borrow::Cow;

/// The human-readable part of an [`Errno`]: static text on the hot paths, formatted text where
/// the message names a value.
pub type Msg = Cow<'static, str>;

/// An error of the object API: the errno the kernel returns for the same request, and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Errno {
    /// `EPERM` (1): the operation is not permitted (e.g. a read through a write-only map fd).
    #[doc(alias = "EPERM")]
    #[error("EPERM: {0}")]
    Eperm(Msg),
    /// `ENOENT` (2): no such element (lookup, delete, `BPF_EXIST` update, end of iteration).
    #[doc(alias = "ENOENT")]
    #[error("ENOENT: {0}")]
    Enoent(Msg),
    /// `E2BIG` (7): the map is full, an index is past `max_entries`, or a size is too large.
    #[doc(alias = "E2BIG")]
    #[error("E2BIG: {0}")]
    E2big(Msg),
    /// `EBADF` (9): the descriptor names no object.
    #[doc(alias = "EBADF")]
    #[error("EBADF: {0}")]
    Ebadf(Msg),
    /// `EAGAIN` (11): try again (e.g. a ring buffer without room).
    #[doc(alias = "EAGAIN")]
    #[error("EAGAIN: {0}")]
    Eagain(Msg),
    /// `ENOMEM` (12): the memory for the object could not be allocated.
    #[doc(alias = "ENOMEM")]
    #[error("ENOMEM: {0}")]
    Enomem(Msg),
    /// `EACCES` (13): permission denied (the verifier's usual rejection).
    #[doc(alias = "EACCES")]
    #[error("EACCES: {0}")]
    Eacces(Msg),
    /// `EFAULT` (14): a bad address.
    #[doc(alias = "EFAULT")]
    #[error("EFAULT: {0}")]
    Efault(Msg),
    /// `EBUSY` (16): the object is in use.
    #[doc(alias = "EBUSY")]
    #[error("EBUSY: {0}")]
    Ebusy(Msg),
    /// `EEXIST` (17): the element exists (a `BPF_NOEXIST` update, an update of an array).
    #[doc(alias = "EEXIST")]
    #[error("EEXIST: {0}")]
    Eexist(Msg),
    /// `EINVAL` (22): an invalid argument (attribute, flag, key, descriptor kind).
    #[doc(alias = "EINVAL")]
    #[error("EINVAL: {0}")]
    Einval(Msg),
    /// `ENOSPC` (28): no space left (a full LPM trie; a verifier log that does not fit).
    #[doc(alias = "ENOSPC")]
    #[error("ENOSPC: {0}")]
    Enospc(Msg),
    /// `ERANGE` (34): a result out of range.
    #[doc(alias = "ERANGE")]
    #[error("ERANGE: {0}")]
    Erange(Msg),
    /// `ELOOP` (40): too many levels of nesting.
    #[doc(alias = "ELOOP")]
    #[error("ELOOP: {0}")]
    Eloop(Msg),
    /// `EOPNOTSUPP` (95): the operation is not supported on this object (user-space errno).
    #[doc(alias = "EOPNOTSUPP")]
    #[error("EOPNOTSUPP: {0}")]
    Eopnotsupp(Msg),
    /// `ENOTSUPP` (524): the kernel-internal "not supported" that `bpf()` lets through
    /// (e.g. element commands on a ring buffer, `BPF_F_NO_PREALLOC` on an LRU hash).
    #[doc(alias = "ENOTSUPP")]
    #[error("ENOTSUPP: {0}")]
    Enotsupp(Msg),
    /// Any other errno, by number.
    #[error("errno {0}: {1}")]
    Other(i32, Msg),
}

impl Errno {
    /// The errno number, positive, as `errno` holds it after the system call fails.
    #[must_use]
    pub fn code(&self) -> i32 {
        match self {
            Self::Eperm(_) => 1,
            Self::Enoent(_) => 2,
            Self::E2big(_) => 7,
            Self::Ebadf(_) => 9,
            Self::Eagain(_) => 11,
            Self::Enomem(_) => 12,
            Self::Eacces(_) => 13,
            Self::Efault(_) => 14,
            Self::Ebusy(_) => 16,
            Self::Eexist(_) => 17,
            Self::Einval(_) => 22,
            Self::Enospc(_) => 28,
            Self::Erange(_) => 34,
            Self::Eloop(_) => 40,
            Self::Eopnotsupp(_) => 95,
            Self::Enotsupp(_) => 524,
            Self::Other(n, _) => *n,
        }
    }

    /// The negative errno as a helper returns it to a program (`-EINVAL` is `-22`).
    #[must_use]
    pub fn to_neg(&self) -> i64 {
        -i64::from(self.code())
    }

    /// The errno for a number with a message (the named variant when there is one).
    #[must_use]
    pub fn from_code(code: i32, msg: impl Into<Msg>) -> Self {
        let msg = msg.into();
        match code {
            1 => Self::Eperm(msg),
            2 => Self::Enoent(msg),
            7 => Self::E2big(msg),
            9 => Self::Ebadf(msg),
            11 => Self::Eagain(msg),
            12 => Self::Enomem(msg),
            13 => Self::Eacces(msg),
            14 => Self::Efault(msg),
            16 => Self::Ebusy(msg),
            17 => Self::Eexist(msg),
            22 => Self::Einval(msg),
            28 => Self::Enospc(msg),
            34 => Self::Erange(msg),
            40 => Self::Eloop(msg),
            95 => Self::Eopnotsupp(msg),
            524 => Self::Enotsupp(msg),
            n => Self::Other(n, msg),
        }
    }

    /// The kernel's name of the errno (`"EINVAL"`), or `"E?"` for an unnamed number.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Eperm(_) => "EPERM",
            Self::Enoent(_) => "ENOENT",
            Self::E2big(_) => "E2BIG",
            Self::Ebadf(_) => "EBADF",
            Self::Eagain(_) => "EAGAIN",
            Self::Enomem(_) => "ENOMEM",
            Self::Eacces(_) => "EACCES",
            Self::Efault(_) => "EFAULT",
            Self::Ebusy(_) => "EBUSY",
            Self::Eexist(_) => "EEXIST",
            Self::Einval(_) => "EINVAL",
            Self::Enospc(_) => "ENOSPC",
            Self::Erange(_) => "ERANGE",
            Self::Eloop(_) => "ELOOP",
            Self::Eopnotsupp(_) => "EOPNOTSUPP",
            Self::Enotsupp(_) => "ENOTSUPP",
            Self::Other(..) => "E?",
        }
    }

    /// The message part.
    #[must_use]
    pub fn message(&self) -> &str {
        match self {
            Self::Eperm(m)
            | Self::Enoent(m)
            | Self::E2big(m)
            | Self::Ebadf(m)
            | Self::Eagain(m)
            | Self::Enomem(m)
            | Self::Eacces(m)
            | Self::Efault(m)
            | Self::Ebusy(m)
            | Self::Eexist(m)
            | Self::Einval(m)
            | Self::Enospc(m)
            | Self::Erange(m)
            | Self::Eloop(m)
            | Self::Eopnotsupp(m)
            | Self::Enotsupp(m)
            | Self::Other(_, m) => m,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_linux_errno_numbers() {
        // The numbers of include/uapi/asm-generic/errno-base.h, errno.h and
        // include/linux/errno.h (ENOTSUPP), cross-checked against libc's constants.
        let cases: [(Errno, i32); 10] = [
            (Errno::Eperm("".into()), libc::EPERM),
            (Errno::Enoent("".into()), libc::ENOENT),
            (Errno::E2big("".into()), libc::E2BIG),
            (Errno::Ebadf("".into()), libc::EBADF),
            (Errno::Enomem("".into()), libc::ENOMEM),
            (Errno::Eexist("".into()), libc::EEXIST),
            (Errno::Einval("".into()), libc::EINVAL),
            (Errno::Enospc("".into()), libc::ENOSPC),
            (Errno::Eopnotsupp("".into()), libc::EOPNOTSUPP),
            (Errno::Eagain("".into()), libc::EAGAIN),
        ];
        for (e, n) in cases {
            assert_eq!(e.code(), n, "{}", e.name());
            assert_eq!(Errno::from_code(n, "x").code(), n);
            assert_eq!(e.to_neg(), -i64::from(n));
        }
        assert_eq!(Errno::Enotsupp("".into()).code(), 524);
        assert_eq!(Errno::from_code(524, "").name(), "ENOTSUPP");
        assert_eq!(Errno::from_code(1234, "odd").code(), 1234);
    }

    #[test]
    fn display_names_errno_and_message() {
        let e = Errno::Einval("key_size must be 4".into());
        assert_eq!(e.to_string(), "EINVAL: key_size must be 4");
        assert_eq!(e.message(), "key_size must be 4");
    }
}
