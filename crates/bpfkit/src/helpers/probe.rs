//! Reading memory at an address a program supplies, without faulting.
//!
//! `bpf_probe_read_*` and the `%s` of `bpf_trace_printk` read from arbitrary addresses; the
//! kernel uses `copy_from_kernel_nofault`, which returns `-EFAULT` for an unmapped address. In
//! user space the same guarantee comes from `process_vm_readv(2)` on our own process: the
//! kernel copies what is mapped and reports `EFAULT` for the rest, so a bad address is an error
//! value, never a crash.

/// `-EFAULT`, the helpers' return for an unreadable address.
pub const EFAULT: i64 = -14;

/// Copies `dst.len()` bytes from address `src` of this process into `dst`.
///
/// # Errors
/// [`EFAULT`] when any byte of the source range is not readable (or the platform has no
/// `process_vm_readv`); `dst` is then zero-filled, as the kernel's `bpf_probe_read_kernel` does.
pub fn read_nofault(dst: &mut [u8], src: u64) -> Result<(), i64> {
    if dst.is_empty() {
        return Ok(());
    }
    let ok = platform::read(dst, src);
    if ok {
        Ok(())
    } else {
        dst.fill(0);
        Err(EFAULT)
    }
}

/// Reads a NUL-terminated string of at most `max` bytes (terminator included) from `src`,
/// as `bpf_probe_read_kernel_str` does: byte by byte until NUL, or `max - 1` bytes.
///
/// # Errors
/// [`EFAULT`] when the first byte is unreadable.
pub fn read_str_nofault(src: u64, max: usize) -> Result<Vec<u8>, i64> {
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    while out.len() + 1 < max {
        let addr = src.wrapping_add(out.len() as u64);
        if read_nofault(&mut byte, addr).is_err() {
            if out.is_empty() {
                return Err(EFAULT);
            }
            break;
        }
        if byte[0] == 0 {
            break;
        }
        out.push(byte[0]);
    }
    Ok(out)
}

#[cfg(target_os = "linux")]
mod platform {
    /// Reads through `process_vm_readv` on our own pid; false on any short or failed read.
    pub fn read(dst: &mut [u8], src: u64) -> bool {
        let Ok(src_addr) = usize::try_from(src) else {
            return false;
        };
        let local = libc::iovec {
            iov_base: dst.as_mut_ptr().cast(),
            iov_len: dst.len(),
        };
        let remote = libc::iovec {
            iov_base: src_addr as *mut libc::c_void,
            iov_len: dst.len(),
        };
        // SAFETY: `local` describes `dst`, which we own mutably for its whole length; `remote` is
        // only read by the kernel, which validates it and reports EFAULT instead of faulting.
        let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
        usize::try_from(n).is_ok_and(|n| n == dst.len())
    }
}

#[cfg(not(target_os = "linux"))]
mod platform {
    /// Without `process_vm_readv` there is no fault-free read: every address is unreadable.
    pub fn read(_dst: &mut [u8], _src: u64) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_memory() {
        let src = *b"hello\0world";
        let mut dst = [0u8; 5];
        if cfg!(target_os = "linux") {
            assert_eq!(read_nofault(&mut dst, src.as_ptr() as u64), Ok(()));
            assert_eq!(&dst, b"hello");
            assert_eq!(
                read_str_nofault(src.as_ptr() as u64, 64),
                Ok(b"hello".to_vec())
            );
            assert_eq!(read_str_nofault(src.as_ptr() as u64, 3), Ok(b"he".to_vec()));
        }
    }

    #[test]
    fn unmapped_addresses_are_efault_and_zero_fill() {
        let mut dst = [0xffu8; 8];
        assert_eq!(read_nofault(&mut dst, 8), Err(EFAULT));
        assert_eq!(dst, [0; 8]);
        assert_eq!(read_str_nofault(0, 16), Err(EFAULT));
        assert_eq!(read_nofault(&mut dst, u64::MAX - 2), Err(EFAULT));
    }
}
