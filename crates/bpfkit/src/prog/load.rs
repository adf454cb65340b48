//! `BPF_PROG_LOAD`: verify a program in the runtime's environment, rewrite it for bpfkit's
//! layouts, translate it for the interpreter, and put it in the object table.

use super::env::RuntimeEnv;
use super::rewrite::rewrite;
use crate::errno::Errno;
use crate::helpers::registry;
use crate::maps::{MapRef, ProgEntry};
use crate::object::{Bpf, Fd, Object};
use bpfkit_isa::Insn;
use bpfkit_verifier::env::ProgType;
use bpfkit_verifier::{verify, Options, Rejected};
use bpfkit_vm::Vm;
use std::any::Any;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// The attributes of a load (the `BPF_PROG_LOAD` part of `union bpf_attr`).
#[derive(Debug, Clone)]
pub struct ProgLoadAttr<'a> {
    /// The program type.
    pub prog_type: ProgType,
    /// The instructions (LD_IMM64 src 1 / 2 refer to map descriptors of this table).
    pub insns: &'a [Insn],
    /// The license; GPL-only helpers need a GPL-compatible one.
    pub license: &'a str,
    /// Verifier log level (0, or bits 1, 2, 4).
    pub log_level: u32,
    /// Log buffer size in bytes (0 with log level 0).
    pub log_size: u32,
}

/// `BPF_F_STRICT_ALIGNMENT`: check the alignment of every access, not only of the stack's.
pub const BPF_F_STRICT_ALIGNMENT: u32 = 1 << 0;
/// `BPF_F_ANY_ALIGNMENT`: no alignment checks but the stack's and atomics' (cancels
/// [`BPF_F_STRICT_ALIGNMENT`]).
pub const BPF_F_ANY_ALIGNMENT: u32 = 1 << 1;
/// `BPF_F_TEST_RND_HI32`: a kernel test flag (random upper halves after 32-bit ALU); the
/// verdict does not depend on it, bpfkit accepts and ignores it.
pub const BPF_F_TEST_RND_HI32: u32 = 1 << 2;
/// `BPF_F_TEST_STATE_FREQ`: a kernel test flag (more pruning checkpoints); the verdict does
/// not depend on it, bpfkit accepts and ignores it.
pub const BPF_F_TEST_STATE_FREQ: u32 = 1 << 3;
/// Every `prog_flags` bit Linux 6.18 knows (`BPF_F_SLEEPABLE`, `BPF_F_XDP_HAS_FRAGS`,
/// `BPF_F_XDP_DEV_BOUND_ONLY`, `BPF_F_TEST_REG_INVARIANTS`, `BPF_F_TOKEN_FD` besides the
/// four above): any other bit is `EINVAL` there.
const KERNEL_PROG_FLAGS: u32 = 0xff | (1 << 16);
/// The bits bpfkit models.
const MODELLED_PROG_FLAGS: u32 =
    BPF_F_STRICT_ALIGNMENT | BPF_F_ANY_ALIGNMENT | BPF_F_TEST_RND_HI32 | BPF_F_TEST_STATE_FREQ;

/// The rest of a load's attributes, beyond [`ProgLoadAttr`]: what libbpf passes besides the
/// program itself. `Default` is a plain load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProgLoadOpts {
    /// The program comes with BTF function information (`func_info`, as libbpf passes for
    /// clang objects): the verifier then allows tail calls from subprograms, as the kernel
    /// does.
    pub btf_func_info: bool,
    /// `prog_flags`: [`BPF_F_STRICT_ALIGNMENT`], [`BPF_F_ANY_ALIGNMENT`] (and the kernel's
    /// test flags, which change no verdict). Other bits are `EINVAL`.
    pub prog_flags: u32,
    /// Load as a user without CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN and CAP_NET_ADMIN: Linux's
    /// unprivileged verifier rules (`bpfkit_verifier::Privilege::Unprivileged`). Default:
    /// privileged, as root.
    pub unprivileged: bool,
    /// `expected_attach_type`, the kernel's `enum bpf_attach_type` number: a cgroup_skb
    /// program takes [`CGROUP_INET_INGRESS`] (0, the default) or [`CGROUP_INET_EGRESS`] (it may
    /// then return 0 to 3); the other types bpfkit models take only 0.
    pub expected_attach_type: u32,
}

pub use bpfkit_verifier::rules::return_code::{CGROUP_INET_EGRESS, CGROUP_INET_INGRESS};

/// `bpf_prog_load_check_attach` for the types bpfkit models: bpfkit models no attach type for
/// the types other than cgroup_skb, so it refuses any but 0 there rather than ignore one that
/// changes the rules (devmap XDP programs, kprobe sessions).
fn check_attach_type(t: ProgType, expected_attach_type: u32) -> Result<(), LoadError> {
    let ok = match t {
        ProgType::CgroupSkb => matches!(
            expected_attach_type,
            CGROUP_INET_INGRESS | CGROUP_INET_EGRESS
        ),
        _ => expected_attach_type == 0,
    };
    if ok {
        return Ok(());
    }
    Err(LoadError {
        errno: Errno::Einval(
            format!("expected_attach_type {expected_attach_type} is not one {t} programs take")
                .into(),
        ),
        log: String::new(),
    })
}

/// A successful load: the program's descriptor and the verifier log.
#[derive(Debug, Clone)]
pub struct ProgLoaded {
    /// The new descriptor.
    pub fd: Fd,
    /// The verifier log at the requested level.
    pub log: String,
}

/// A failed load: the errno and the verifier log (what `log_buf` would hold).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{errno}")]
pub struct LoadError {
    /// The errno `BPF_PROG_LOAD` returns.
    pub errno: Errno,
    /// The verifier log (empty when the log level is 0).
    pub log: String,
}

/// The smallest log buffer the kernel accepts when logging (`bpf_vlog_init`).
pub const MIN_LOG_SIZE: u32 = 128;

/// A loaded program: the interpreter's form, its type and the maps it uses.
#[derive(Debug)]
pub struct LoadedProg {
    prog_type: ProgType,
    id: u32,
    vm: Vm,
    maps: Vec<MapRef>,
    insn_count: usize,
    max_ctx_offset: u32,
}

impl LoadedProg {
    /// The program type.
    #[must_use]
    pub fn prog_type(&self) -> ProgType {
        self.prog_type
    }

    /// The translated program.
    #[must_use]
    pub fn vm(&self) -> &Vm {
        &self.vm
    }

    /// The maps the program references.
    #[must_use]
    pub fn maps(&self) -> &[MapRef] {
        &self.maps
    }

    /// One past the highest context byte the program reads or writes.
    #[must_use]
    pub fn max_ctx_offset(&self) -> u32 {
        self.max_ctx_offset
    }

    /// Number of instruction slots loaded.
    #[must_use]
    pub fn insn_count(&self) -> usize {
        self.insn_count
    }
}

impl ProgEntry for LoadedProg {
    fn prog_type(&self) -> u32 {
        self.prog_type.kernel_id()
    }
    fn id(&self) -> u32 {
        self.id
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

static NEXT_PROG_ID: AtomicU32 = AtomicU32::new(1);

fn einval(msg: &'static str) -> LoadError {
    LoadError {
        errno: Errno::Einval(msg.into()),
        log: String::new(),
    }
}

/// The kernel's errno for a verifier rejection, as the object API's [`Errno`].
fn errno_of(r: &Rejected) -> Errno {
    let msg = r.message.clone().into();
    match r.errno.0 {
        1 => Errno::Eperm(msg),
        7 => Errno::E2big(msg),
        9 => Errno::Ebadf(msg),
        13 => Errno::Eacces(msg),
        14 => Errno::Efault(msg),
        28 => Errno::Enospc(msg),
        524 => Errno::Enotsupp(msg),
        _ => Errno::Einval(msg),
    }
}

impl Bpf {
    /// `BPF_PROG_LOAD`: verifies, rewrites and translates the program, and returns a new
    /// descriptor for it with the verifier log.
    ///
    /// # Errors
    /// The kernel's errno: `EINVAL` for an empty program or a log buffer under 128 bytes,
    /// `EACCES`/`EINVAL`/... from the verifier (with its log), `ENOSPC` when the log does not
    /// fit in `log_size` bytes (the log then holds its last `log_size - 1` bytes, as the
    /// kernel's default rotating log does).
    pub fn prog_load(&self, attr: &ProgLoadAttr<'_>) -> Result<ProgLoaded, LoadError> {
        self.prog_load_with_func_info(attr, false)
    }

    /// [`Bpf::prog_load`] for a program that comes with BTF function information
    /// (`func_info`, as libbpf passes for clang objects): the verifier then allows tail calls
    /// from subprograms, as the kernel does.
    ///
    /// # Errors
    /// As [`Bpf::prog_load`].
    pub fn prog_load_with_func_info(
        &self,
        attr: &ProgLoadAttr<'_>,
        btf_func_info: bool,
    ) -> Result<ProgLoaded, LoadError> {
        let opts = ProgLoadOpts {
            btf_func_info,
            ..ProgLoadOpts::default()
        };
        self.prog_load_with(attr, &opts)
    }

    /// [`Bpf::prog_load`] with the rest of `BPF_PROG_LOAD`'s attributes: BTF function
    /// information, `prog_flags` (strict alignment) and `expected_attach_type`.
    ///
    /// # Errors
    /// As [`Bpf::prog_load`]; `EINVAL` for a `prog_flags` bit Linux does not know, or one
    /// bpfkit does not model (`BPF_F_SLEEPABLE`, `BPF_F_XDP_HAS_FRAGS`, ...), and for an
    /// `expected_attach_type` the program type does not take (see [`ProgLoadOpts`]).
    pub fn prog_load_with(
        &self,
        attr: &ProgLoadAttr<'_>,
        load: &ProgLoadOpts,
    ) -> Result<ProgLoaded, LoadError> {
        if load.prog_flags & !KERNEL_PROG_FLAGS != 0 {
            return Err(einval("unknown prog_flags bits"));
        }
        if load.prog_flags & !MODELLED_PROG_FLAGS != 0 {
            return Err(einval("prog_flags bits bpfkit does not model"));
        }
        check_attach_type(attr.prog_type, load.expected_attach_type)?;
        if attr.insns.is_empty() {
            return Err(einval("the program has no instructions"));
        }
        if attr.log_level != 0 && attr.log_size < MIN_LOG_SIZE {
            return Err(einval("log_size must be at least 128 bytes when logging"));
        }
        let env = RuntimeEnv::new(self);
        let opts = Options {
            prog_type: attr.prog_type,
            log_level: attr.log_level,
            license: attr.license.to_string(),
            btf_func_info: load.btf_func_info,
            strict_alignment: load.prog_flags & BPF_F_STRICT_ALIGNMENT != 0,
            any_alignment: load.prog_flags & BPF_F_ANY_ALIGNMENT != 0,
            expected_attach_type: load.expected_attach_type,
            privilege: if load.unprivileged {
                bpfkit_verifier::Privilege::Unprivileged
            } else {
                bpfkit_verifier::Privilege::Privileged
            },
        };
        let verified = verify(attr.insns, &env, &opts).map_err(|r| LoadError {
            errno: errno_of(&r),
            log: if attr.log_level == 0 {
                String::new()
            } else {
                // A rejection keeps its errno; its log is the tail that fits, as the kernel's
                // rotating log keeps it.
                log_tail(&r.log, attr.log_size).to_string()
            },
        })?;
        let log = if attr.log_level == 0 {
            String::new()
        } else {
            verified.log().to_string()
        };
        if attr.log_level != 0 && log.len() + 1 > attr.log_size as usize {
            let tail = log_tail(&log, attr.log_size).to_string();
            return Err(LoadError {
                errno: Errno::Enospc("the verifier log does not fit in log_size".into()),
                log: tail,
            });
        }
        let rewritten = rewrite(&verified, attr.prog_type, self).map_err(|errno| LoadError {
            errno,
            log: log.clone(),
        })?;
        for m in &rewritten.maps {
            if let Some(pa) = m.as_prog_array() {
                pa.claim_owner(attr.prog_type.kernel_id())
                    .map_err(|errno| LoadError {
                        errno,
                        log: log.clone(),
                    })?;
            }
        }
        let mut helpers = registry::table(attr.prog_type);
        if rewritten.ld_abs_helpers {
            super::ld_abs::add_helpers(&mut helpers);
        }
        // SAFETY: the verifier accepted `verified` in this runtime's environment; the rewrite
        // only replaces map descriptors by the addresses of the maps this program keeps alive
        // (`maps` below) and moves 32-bit loads of packet-pointer context fields onto the
        // 64-bit pointer fields of bpfkit's context layouts, which hold exactly the pointers the
        // verifier reasoned about. Memory safety is therefore what the verifier proved.
        let vm =
            unsafe { Vm::from_unverified(&rewritten.insns, &helpers) }.map_err(|e| LoadError {
                errno: Errno::Einval(format!("translation failed: {e}").into()),
                log: log.clone(),
            })?;
        let prog = LoadedProg {
            prog_type: attr.prog_type,
            id: NEXT_PROG_ID.fetch_add(1, Ordering::Relaxed),
            vm,
            maps: rewritten.maps,
            insn_count: attr.insns.len(),
            max_ctx_offset: rewritten.max_ctx_offset,
        };
        let fd = self.insert(Object::Prog(Arc::new(prog)));
        Ok(ProgLoaded { fd, log })
    }

    /// The program behind `fd`: `EBADF` if none, `EINVAL` if it is not a program.
    ///
    /// # Errors
    /// As above.
    pub fn prog(&self, fd: Fd) -> Result<Arc<LoadedProg>, Errno> {
        match self.get(fd)? {
            Object::Prog(p) => Ok(p),
            other => Err(Errno::Einval(
                format!("fd {fd} is a {}, not a program", other.kind_name()).into(),
            )),
        }
    }
}

/// The last `log_size - 1` bytes of `log` (all of it when it fits): what the kernel's rotating
/// log buffer holds at the end, its NUL aside. A cut inside a multi-byte character moves to the
/// next character boundary (the verifier's log is ASCII).
fn log_tail(log: &str, log_size: u32) -> &str {
    let keep = (log_size as usize).saturating_sub(1);
    let mut start = log.len().saturating_sub(keep);
    while !log.is_char_boundary(start) {
        start += 1;
    }
    &log[start..]
}
