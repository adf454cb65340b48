//! Programs: `BPF_PROG_LOAD` with the verifier log, and `BPF_PROG_TEST_RUN`.

use std::borrow::Cow;

use bpfkit_isa::Insn;

use crate::attr::{self, ProgLoadAttr, TestRunAttr};
use crate::errno::Errno;
use crate::sys::{self, OwnedFd};

/// `BPF_F_STRICT_ALIGNMENT`: check alignment as on strict-alignment machines.
pub const BPF_F_STRICT_ALIGNMENT: u32 = 1 << 0;
/// `BPF_F_ANY_ALIGNMENT`: allow any alignment.
pub const BPF_F_ANY_ALIGNMENT: u32 = 1 << 1;
/// `BPF_F_TEST_STATE_FREQ`: the verifier's test flag that checkpoints states at every jump.
pub const BPF_F_TEST_STATE_FREQ: u32 = 1 << 3;

/// The default verifier log buffer size: 16 MiB, the largest the kernel accepts is
/// `UINT_MAX >> 2`; this is enough for level-2 logs of mid-sized programs.
pub const DEFAULT_LOG_SIZE: u32 = 16 << 20;

/// Anything that is a program's instruction bytes: raw bytes (a multiple of 8) or instruction
/// slots.
pub trait ProgramBytes {
    /// The program as the kernel reads it: 8 bytes per slot, little endian.
    fn program_bytes(&self) -> Cow<'_, [u8]>;
}

impl ProgramBytes for [u8] {
    fn program_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self)
    }
}

impl ProgramBytes for Vec<u8> {
    fn program_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self)
    }
}

impl ProgramBytes for [Insn] {
    fn program_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(bpfkit_isa::insns_to_bytes(self))
    }
}

impl ProgramBytes for Vec<Insn> {
    fn program_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(bpfkit_isa::insns_to_bytes(self))
    }
}

/// A program loaded into the kernel; its descriptor is closed on drop.
#[derive(Debug)]
pub struct Prog {
    fd: OwnedFd,
}

impl Prog {
    /// The program's file descriptor (what a prog array element holds).
    #[must_use]
    pub fn fd(&self) -> i32 {
        sys::raw(&self.fd)
    }
}

/// What `BPF_PROG_LOAD` gave back: the program or the errno, and the verifier log either way.
#[derive(Debug)]
pub struct Loaded {
    /// The loaded program, or the errno of the rejection (`EACCES` for a verifier rejection,
    /// `EINVAL` for malformed input, `ENOSPC` when the log buffer was too small, ...).
    pub result: Result<Prog, Errno>,
    /// The verifier log text (empty at log level 0).
    pub log: String,
    /// The log size that would have held the whole log, as the kernel reports it (0 on kernels
    /// before 6.4 or at log level 0).
    pub log_true_size: u32,
}

/// The options of one `BPF_PROG_LOAD`; [`ProgLoad::new`] gives the common defaults.
#[derive(Debug, Clone)]
pub struct ProgLoad<'a> {
    /// `BPF_PROG_TYPE_*` number (see [`crate::names`]).
    pub prog_type: u32,
    /// The license string (`"GPL"` unlocks GPL-only helpers).
    pub license: &'a str,
    /// Verifier log level: 0 none, 1 path and error, 2 every state, 4 statistics (may be or-ed).
    pub log_level: u32,
    /// Log buffer size in bytes (the kernel wants at least 128 when logging).
    pub log_size: u32,
    /// `BPF_F_*` load flags.
    pub prog_flags: u32,
    /// `expected_attach_type` (needed by some program types).
    pub expected_attach_type: u32,
    /// `kern_version` (checked by old kernels for kprobes only).
    pub kern_version: u32,
    /// Program name (at most 15 bytes are passed).
    pub name: &'a str,
    /// Descriptors for `fd_array` (used by LD_IMM64 src=5/6, map index forms).
    pub fd_array: &'a [i32],
}

impl<'a> ProgLoad<'a> {
    /// Defaults: the given type, license `"GPL"`, log level 1 with a [`DEFAULT_LOG_SIZE`]
    /// buffer, no flags.
    #[must_use]
    pub fn new(prog_type: u32) -> Self {
        Self {
            prog_type,
            license: "GPL",
            log_level: 1,
            log_size: DEFAULT_LOG_SIZE,
            prog_flags: 0,
            expected_attach_type: 0,
            kern_version: 0,
            name: "",
            fd_array: &[],
        }
    }

    /// Loads `insns` with these options.
    pub fn load<P: ProgramBytes + ?Sized>(&self, insns: &P) -> Loaded {
        let code = insns.program_bytes();
        if code.is_empty() || !code.len().is_multiple_of(Insn::SIZE) {
            return Loaded {
                result: Err(Errno::EINVAL),
                log: format!(
                    "program of {} bytes is not a non-empty multiple of 8",
                    code.len()
                ),
                log_true_size: 0,
            };
        }
        let Ok(insn_cnt) = u32::try_from(code.len() / Insn::SIZE) else {
            return Loaded {
                result: Err(Errno::E2BIG),
                log: String::new(),
                log_true_size: 0,
            };
        };
        let mut license = self.license.as_bytes().to_vec();
        license.push(0);
        let mut name = [0u8; 16];
        for (d, s) in name.iter_mut().zip(self.name.bytes().take(15)) {
            *d = s;
        }
        let logging = self.log_level != 0 && self.log_size != 0;
        let mut log = if logging {
            vec![0u8; self.log_size as usize]
        } else {
            Vec::new()
        };
        let mut a = ProgLoadAttr {
            prog_type: self.prog_type,
            insn_cnt,
            insns: attr::ptr_u64(code.as_ptr()),
            license: attr::ptr_u64(license.as_ptr()),
            log_level: if logging { self.log_level } else { 0 },
            log_size: if logging { self.log_size } else { 0 },
            log_buf: if logging {
                attr::ptr_u64(log.as_mut_ptr())
            } else {
                0
            },
            kern_version: self.kern_version,
            prog_flags: self.prog_flags,
            prog_name: name,
            expected_attach_type: self.expected_attach_type,
            fd_array: if self.fd_array.is_empty() {
                0
            } else {
                attr::ptr_u64(self.fd_array.as_ptr())
            },
            ..ProgLoadAttr::default()
        };
        // SAFETY: `code` holds insn_cnt * 8 bytes, `license` is NUL-terminated, `log` is
        // log_size writable bytes (or null with size 0), and `fd_array` holds every index the
        // caller's program uses (the kernel bounds reads by the instructions it checks; an index
        // past the slice is the caller's contract, documented on the field).
        let ret = unsafe { sys::bpf(attr::BPF_PROG_LOAD, &mut a) };
        let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
        let text = String::from_utf8_lossy(&log[..end]).into_owned();
        Loaded {
            result: ret.and_then(|r| {
                Ok(Prog {
                    fd: sys::owned_fd(r)?,
                })
            }),
            log: text,
            log_true_size: a.log_true_size,
        }
    }
}

/// Loads a program (`BPF_PROG_LOAD`): the fd or the errno, and the verifier log either way.
/// `log_level` 0 asks for no log.
pub fn prog_load<P: ProgramBytes + ?Sized>(
    prog_type: u32,
    insns: &P,
    license: &str,
    log_level: u32,
    log_size: u32,
) -> Loaded {
    ProgLoad {
        license,
        log_level,
        log_size,
        ..ProgLoad::new(prog_type)
    }
    .load(insns)
}

/// The outcome of one `BPF_PROG_TEST_RUN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRun {
    /// The program's return value (the low 32 bits of r0).
    pub retval: u32,
    /// The packet data after the run (`data_size_out` bytes).
    pub data_out: Vec<u8>,
    /// The context after the run, when a context was passed in.
    pub ctx_out: Vec<u8>,
    /// The mean run time in nanoseconds, as the kernel measured it.
    pub duration_ns: u32,
}

/// Room given to programs that grow the packet (XDP tail adjustments, skb pushes).
const DATA_OUT_HEADROOM: usize = 4096;

/// Runs a loaded program on `data_in` (and a context `ctx_in`, for program types that take
/// one) `repeat` times (`BPF_PROG_TEST_RUN`). Packet program types want at least 14 bytes
/// (an Ethernet header) of data.
pub fn prog_test_run(
    prog: &Prog,
    data_in: &[u8],
    ctx_in: Option<&[u8]>,
    repeat: u32,
) -> Result<TestRun, Errno> {
    let mut data_out = vec![0u8; data_in.len() + DATA_OUT_HEADROOM];
    let mut ctx_out = vec![0u8; ctx_in.map_or(0, <[u8]>::len)];
    let len32 = |n: usize| u32::try_from(n).map_err(|_| Errno::E2BIG);
    let mut a = TestRunAttr {
        prog_fd: prog.fd() as u32,
        data_size_in: len32(data_in.len())?,
        data_size_out: len32(data_out.len())?,
        data_in: if data_in.is_empty() {
            0
        } else {
            attr::ptr_u64(data_in.as_ptr())
        },
        data_out: attr::ptr_u64(data_out.as_mut_ptr()),
        repeat,
        ctx_size_in: len32(ctx_in.map_or(0, <[u8]>::len))?,
        ctx_size_out: len32(ctx_out.len())?,
        ctx_in: ctx_in.map_or(0, |c| attr::ptr_u64(c.as_ptr())),
        ctx_out: if ctx_out.is_empty() {
            0
        } else {
            attr::ptr_u64(ctx_out.as_mut_ptr())
        },
        ..TestRunAttr::default()
    };
    // SAFETY: each pointer names a live buffer of exactly the size passed beside it; the output
    // buffers are writable and the kernel writes at most data_size_out / ctx_size_out bytes.
    unsafe { sys::bpf(attr::BPF_PROG_TEST_RUN, &mut a) }?;
    data_out.truncate((a.data_size_out as usize).min(data_out.len()));
    ctx_out.truncate((a.ctx_size_out as usize).min(ctx_out.len()));
    Ok(TestRun {
        retval: a.retval,
        data_out,
        ctx_out,
        duration_ns: a.duration,
    })
}
