//! Hook points for the tracing program types: the user-space counterpart of kprobes and
//! tracepoints.
//!
//! A host application declares a named [`Hook`] with the program type its programs have
//! (`kprobe`, `tracepoint`, `raw_tracepoint`) and the size of the context record it fires
//! with; programs loaded into a [`Bpf`] attach to it ([`Hook::attach`], several per hook, in
//! attach order as the kernel runs a tracepoint's programs); [`Hook::fire`] runs every attached
//! program on a copy of the context record. Dropping the returned [`Link`] detaches the program
//! (the kernel's `close(link_fd)`); the link keeps the program alive while attached, so closing
//! its descriptor does not detach it. Programs share maps through the `Bpf` table as usual.
//!
//! The record each program sees is the host's bytes zero-padded to the context size the
//! verifier let the program read (`struct pt_regs` for kprobes, `PERF_MAX_TRACE_SIZE` for
//! tracepoints), so a record shorter than the declared layout cannot be read past its end.

use crate::prog::load::LoadedProg;
use crate::prog::run::TailCalls;
use crate::progtype::ctx_size;
use crate::{Bpf, Errno, Fd};
use bpfkit_verifier::env::ProgType;
use bpfkit_vm::RunCtx;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Why a program could not attach or a hook could not fire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    /// The descriptor does not name a program.
    #[error("hook `{hook}`: {errno}")]
    BadProgram {
        /// The hook's name.
        hook: String,
        /// Why.
        errno: Errno,
    },
    /// The program's type is not the hook's.
    #[error("hook `{hook}` takes {expected} programs, not {got}")]
    WrongType {
        /// The hook's name.
        hook: String,
        /// The hook's program type.
        expected: ProgType,
        /// The program's type.
        got: ProgType,
    },
    /// The hook's type is not a tracing type, or the record is too large.
    #[error("hook `{hook}`: {reason}")]
    Layout {
        /// The hook's name.
        hook: String,
        /// What was wrong.
        reason: String,
    },
}

struct Attached {
    id: u64,
    prog: Arc<LoadedProg>,
}

/// A named hook point: its program type, context size and attached programs.
pub struct Hook {
    name: String,
    prog_type: ProgType,
    record_size: usize,
    attached: RwLock<Vec<Attached>>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hook")
            .field("name", &self.name)
            .field("prog_type", &self.prog_type)
            .field("record_size", &self.record_size)
            .field("attached", &self.attached_count())
            .finish()
    }
}

/// An attachment; dropping it detaches the program.
#[must_use = "dropping a link detaches the program"]
#[derive(Debug)]
pub struct Link {
    hook: Arc<Hook>,
    id: u64,
}

impl Drop for Link {
    fn drop(&mut self) {
        if let Ok(mut list) = self.hook.attached.write() {
            list.retain(|a| a.id != self.id);
        }
    }
}

impl Hook {
    /// Declares a hook whose programs have type `prog_type` (`Kprobe`, `Tracepoint` or
    /// `RawTracepoint`) and which fires with records of `record_size` bytes.
    ///
    /// # Errors
    /// [`HookError::Layout`] for a packet program type or a record larger than the context
    /// the verifier allows for the type.
    pub fn new(
        name: impl Into<String>,
        prog_type: ProgType,
        record_size: usize,
    ) -> Result<Arc<Self>, HookError> {
        let name = name.into();
        if !matches!(
            prog_type,
            ProgType::Kprobe | ProgType::Tracepoint | ProgType::RawTracepoint
        ) {
            return Err(HookError::Layout {
                hook: name,
                reason: format!("{prog_type} is not a tracing program type"),
            });
        }
        let max = ctx_size(prog_type) as usize;
        if record_size > max {
            return Err(HookError::Layout {
                hook: name,
                reason: format!(
                    "a {record_size}-byte record exceeds the {max}-byte {prog_type} context"
                ),
            });
        }
        Ok(Arc::new(Self {
            name,
            prog_type,
            record_size,
            attached: RwLock::new(Vec::new()),
            next_id: AtomicU64::new(1),
        }))
    }

    /// The hook's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The program type attached programs must have.
    #[must_use]
    pub fn prog_type(&self) -> ProgType {
        self.prog_type
    }

    /// How many programs are attached.
    #[must_use]
    pub fn attached_count(&self) -> usize {
        self.attached.read().map_or(0, |l| l.len())
    }

    /// Attaches the program behind `fd` (after those already attached).
    ///
    /// # Errors
    /// [`HookError::BadProgram`] when `fd` is not a program, [`HookError::WrongType`] when its
    /// type is not the hook's.
    pub fn attach(self: &Arc<Self>, bpf: &Bpf, fd: Fd) -> Result<Link, HookError> {
        let prog = bpf.prog(fd).map_err(|errno| HookError::BadProgram {
            hook: self.name.clone(),
            errno,
        })?;
        if prog.prog_type() != self.prog_type {
            return Err(HookError::WrongType {
                hook: self.name.clone(),
                expected: self.prog_type,
                got: prog.prog_type(),
            });
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut list) = self.attached.write() {
            list.push(Attached { id, prog });
        }
        Ok(Link {
            hook: Arc::clone(self),
            id,
        })
    }

    /// Fires the hook: runs every attached program, in attach order, on a copy of `record`
    /// zero-padded to the type's context size. Returns each program's r0.
    ///
    /// # Errors
    /// [`HookError::Layout`] when `record` is longer than the declared record size.
    pub fn fire(&self, record: &[u8]) -> Result<Vec<u64>, HookError> {
        if record.len() > self.record_size {
            return Err(HookError::Layout {
                hook: self.name.clone(),
                reason: format!(
                    "record of {} bytes, the hook declares {}",
                    record.len(),
                    self.record_size
                ),
            });
        }
        let progs: Vec<Arc<LoadedProg>> = match self.attached.read() {
            Ok(l) => l.iter().map(|a| Arc::clone(&a.prog)).collect(),
            Err(_) => Vec::new(),
        };
        let size = ctx_size(self.prog_type) as usize;
        // u64 storage: pt_regs and trace records are read with 8-byte loads.
        let mut ctx = vec![0u64; size.div_ceil(8)];
        let mut out = Vec::with_capacity(progs.len());
        for prog in progs {
            let bytes: &mut [u8] = bytemuck::cast_slice_mut(ctx.as_mut_slice());
            bytes.fill(0);
            bytes[..record.len()].copy_from_slice(record);
            let hook = TailCalls::default();
            let run = RunCtx::new()
                .with_arg(1, bytes.as_mut_ptr() as u64)
                .with_tail_calls(&hook);
            out.push(prog.vm().run_ctx(&run));
        }
        Ok(out)
    }
}

/// x86-64 `struct pt_regs` (arch/x86/include/asm/ptrace.h), the kprobe context: a host fills
/// the registers it wants programs to see and fires [`PtRegs::as_bytes`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
#[expect(
    missing_docs,
    reason = "the registers of x86-64, named as in the kernel"
)]
pub struct PtRegs {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub bp: u64,
    pub bx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub ax: u64,
    pub cx: u64,
    pub dx: u64,
    pub si: u64,
    pub di: u64,
    pub orig_ax: u64,
    pub ip: u64,
    pub cs: u64,
    pub flags: u64,
    pub sp: u64,
    pub ss: u64,
}

impl PtRegs {
    /// The registers as the 168 bytes of the kernel's structure.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }

    /// Function arguments 1..=6 in the x86-64 calling convention (`PT_REGS_PARM1..6`: di, si,
    /// dx, cx, r8, r9); extra values are ignored.
    #[must_use]
    pub fn with_args(args: &[u64]) -> Self {
        let mut r = Self::default();
        let slots: [&mut u64; 6] = [
            &mut r.di, &mut r.si, &mut r.dx, &mut r.cx, &mut r.r8, &mut r.r9,
        ];
        for (slot, v) in slots.into_iter().zip(args) {
            *slot = *v;
        }
        r
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "in tests a panic is the failure report")]
mod tests {
    use super::*;

    #[test]
    fn pt_regs_has_the_kernel_layout() {
        // arch/x86/include/asm/ptrace.h: 21 u64 registers; dx at 96, sp at 152.
        assert_eq!(std::mem::size_of::<PtRegs>(), 168);
        let r = PtRegs {
            dx: 0x1122,
            sp: 0x3344,
            ..PtRegs::default()
        };
        assert_eq!(&r.as_bytes()[96..98], &[0x22, 0x11]);
        assert_eq!(&r.as_bytes()[152..154], &[0x44, 0x33]);
        assert_eq!(PtRegs::with_args(&[1, 2, 3]).dx, 3);
    }

    #[test]
    fn only_tracing_types_and_fitting_records() {
        assert!(Hook::new("x", ProgType::Xdp, 8).is_err());
        assert!(Hook::new("x", ProgType::Kprobe, 169).is_err());
        let h = Hook::new("x", ProgType::Kprobe, 168).unwrap();
        assert!(h.fire(&[0; 169]).is_err());
        assert_eq!(h.fire(&[0; 168]).unwrap(), Vec::<u64>::new());
    }
}
