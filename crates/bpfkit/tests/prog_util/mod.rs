//! Shared helpers of the program tests: instruction shorthands, loading and test-running one
//! program in bpfkit and in the kernel, and a raw `BPF_PROG_TEST_RUN` that passes every
//! attribute (context in and out, output size) as given.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use bpfkit::prog::load::ProgLoadAttr;
use bpfkit::prog::run::{TestRunAttr, TestRunOutput};
use bpfkit::{Bpf, Errno, Fd};
use bpfkit_isa::Insn;
use bpfkit_kernel::{Prog, ProgLoad};
use bpfkit_verifier::env::ProgType;

/// `dst = imm64`
pub fn ld64(dst: u8, v: u64) -> [Insn; 2] {
    [
        Insn::new(0x18, dst, 0, 0, v as u32 as i32),
        Insn::new(0, 0, 0, 0, (v >> 32) as u32 as i32),
    ]
}

/// `dst = map` (LD_IMM64 src 1 with a descriptor).
pub fn ld_map(dst: u8, fd: i32) -> [Insn; 2] {
    [Insn::new(0x18, dst, 1, 0, fd), Insn::new(0, 0, 0, 0, 0)]
}

/// `dst = imm` (64-bit mov)
pub fn mov(dst: u8, imm: i32) -> Insn {
    Insn::new(0xb7, dst, 0, 0, imm)
}

/// `dst = src` (64-bit mov)
pub fn mov_reg(dst: u8, src: u8) -> Insn {
    Insn::new(0xbf, dst, src, 0, 0)
}

/// `dst += imm`
pub fn add(dst: u8, imm: i32) -> Insn {
    Insn::new(0x07, dst, 0, 0, imm)
}

/// `call helper`
pub fn call(id: i32) -> Insn {
    Insn::new(0x85, 0, 0, 0, id)
}

/// `exit`
pub fn exit() -> Insn {
    Insn::new(0x95, 0, 0, 0, 0)
}

/// `dst = *(u32 *)(src + off)`
pub fn ldx_w(dst: u8, src: u8, off: i16) -> Insn {
    Insn::new(0x61, dst, src, off, 0)
}

/// `*(u32 *)(dst + off) = src`
pub fn stx_w(dst: u8, src: u8, off: i16) -> Insn {
    Insn::new(0x63, dst, src, off, 0)
}

/// `*(u64 *)(dst + off) = src`
pub fn stx_dw(dst: u8, src: u8, off: i16) -> Insn {
    Insn::new(0x7b, dst, src, off, 0)
}

/// `*(u8 *)(dst + off) = imm`
pub fn st_b(dst: u8, off: i16, imm: i32) -> Insn {
    Insn::new(0x72, dst, 0, off, imm)
}

/// Stores `bytes` on the stack at `r10 + off` (byte by byte).
pub fn stack_bytes(off: i16, bytes: &[u8]) -> Vec<Insn> {
    bytes
        .iter()
        .enumerate()
        .map(|(i, b)| st_b(10, off + i as i16, i32::from(*b)))
        .collect()
}

/// Whether the kernel oracle is usable; prints the skip reason when not.
pub fn kernel_available() -> bool {
    match bpfkit_kernel::available() {
        Ok(()) => true,
        Err(why) => {
            println!("skipped: {why}");
            false
        }
    }
}

/// Loads `insns` into `bpf` as a GPL program of type `t` (without a log; a rejection is
/// loaded again with one, for the message).
pub fn load(bpf: &Bpf, t: ProgType, insns: &[Insn]) -> Result<Fd, String> {
    let attr = ProgLoadAttr {
        prog_type: t,
        insns,
        license: "GPL",
        log_level: 0,
        log_size: 0,
    };
    bpf.prog_load(&attr).map(|l| l.fd).map_err(|e| {
        let log = bpf
            .prog_load(&ProgLoadAttr {
                log_level: 1,
                log_size: 1 << 20,
                ..attr.clone()
            })
            .err()
            .map(|e| e.log)
            .unwrap_or_default();
        format!("bpfkit rejects ({e}): {log}")
    })
}

/// Loads `insns` into the kernel as a GPL program of type `t`.
pub fn kload(t: ProgType, insns: &[Insn]) -> Result<Prog, String> {
    let loaded = ProgLoad::new(t.kernel_id()).load(insns);
    let log = loaded.log;
    loaded
        .result
        .map_err(|e| format!("kernel rejects ({e:?}): {log}"))
}

/// Runs bpfkit's program on `frame` (fast and checked interpreters must agree); the output.
pub fn run(bpf: &Bpf, fd: Fd, frame: &[u8], ctx_in: Option<&[u8]>) -> Result<TestRunOutput, Errno> {
    let mut outs = Vec::new();
    for checked in [false, true] {
        outs.push(bpf.prog_test_run(
            fd,
            &TestRunAttr {
                data_in: frame,
                repeat: 1,
                checked,
                ctx_in,
                ..TestRunAttr::default()
            },
        )?);
    }
    let mut fast = outs.swap_remove(0);
    let checked = outs.swap_remove(0);
    assert_eq!(
        (fast.retval, &fast.data_out, &fast.ctx_out),
        (checked.retval, &checked.data_out, &checked.ctx_out),
        "fast and checked interpreters disagree"
    );
    fast.duration_ns = 0;
    Ok(fast)
}

/// What a raw kernel test run gave: the errno or the outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRun {
    /// The system call's result: 0 or the errno.
    pub errno: i32,
    /// `retval`.
    pub retval: u32,
    /// `data_out` up to what the kernel copied (`data_size_out` clamped to the buffer).
    pub data_out: Vec<u8>,
    /// `data_size_out` as the kernel reported it.
    pub data_size_out: u32,
    /// `ctx_out`.
    pub ctx_out: Vec<u8>,
}

/// The attributes of a raw test run; empty slices and zero sizes are passed as NULL / 0.
#[derive(Debug, Clone, Default)]
pub struct RawAttr<'a> {
    /// `data_in`
    pub data_in: &'a [u8],
    /// Size of the `data_out` buffer (0: NULL).
    pub data_out: u32,
    /// `data_size_out` hint (may be smaller than the buffer, to provoke `ENOSPC`).
    pub data_size_out: u32,
    /// `ctx_in`
    pub ctx_in: &'a [u8],
    /// Size of the `ctx_out` buffer (0: NULL).
    pub ctx_out: u32,
    /// `repeat`
    pub repeat: u32,
}

/// `union bpf_attr` for `BPF_PROG_TEST_RUN` (include/uapi/linux/bpf.h).
#[repr(C)]
#[derive(Default)]
struct TestAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    pad: [u32; 17],
}

/// `BPF_PROG_TEST_RUN` with exactly the given attributes.
pub fn raw_test_run(prog: &Prog, a: &RawAttr<'_>) -> RawRun {
    let mut data_out = vec![0u8; a.data_out as usize];
    let mut ctx_out = vec![0u8; a.ctx_out as usize];
    let ptr = |s: &[u8]| if s.is_empty() { 0 } else { s.as_ptr() as u64 };
    let mut attr = TestAttr {
        prog_fd: prog.fd() as u32,
        data_size_in: a.data_in.len() as u32,
        data_size_out: a.data_size_out,
        data_in: ptr(a.data_in),
        data_out: if data_out.is_empty() {
            0
        } else {
            data_out.as_mut_ptr() as u64
        },
        repeat: a.repeat,
        ctx_size_in: a.ctx_in.len() as u32,
        ctx_size_out: a.ctx_out,
        ctx_in: ptr(a.ctx_in),
        ctx_out: if ctx_out.is_empty() {
            0
        } else {
            ctx_out.as_mut_ptr() as u64
        },
        ..TestAttr::default()
    };
    const BPF_PROG_TEST_RUN: libc::c_long = 10;
    // SAFETY: every pointer in `attr` names a live buffer of the size beside it; the kernel
    // writes at most data_out.len() (the size hint never exceeds the buffer in these tests,
    // and without a hint the buffer is the caller's bound) and ctx_out.len() bytes.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            &mut attr as *mut TestAttr,
            std::mem::size_of::<TestAttr>(),
        )
    };
    let errno = if rc < 0 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    } else {
        0
    };
    let n = (attr.data_size_out as usize).min(data_out.len());
    data_out.truncate(n);
    let c = (attr.ctx_size_out as usize).min(ctx_out.len());
    ctx_out.truncate(c);
    RawRun {
        errno,
        retval: attr.retval,
        data_out,
        data_size_out: attr.data_size_out,
        ctx_out,
    }
}

/// An Ethernet + IPv4 + UDP frame with valid checksums (computed from scratch by
/// [`ipv4_checksum`] and [`l4_checksum`]).
pub fn udp_frame(payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
    let total = 20 + 8 + payload.len();
    f.extend([
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0x12,
        0x34,
        0x40,
        0,
        64,
        17,
        0,
        0,
    ]);
    f.extend([192, 168, 1, 10, 10, 0, 0, 1]);
    let udp_len = 8 + payload.len();
    f.extend([
        0x30,
        0x39,
        0x00,
        0x35,
        (udp_len >> 8) as u8,
        udp_len as u8,
        0,
        0,
    ]);
    f.extend_from_slice(payload);
    let c = ipv4_checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    let c = l4_checksum(&f[14..34], &f[34..], 17);
    f[40..42].copy_from_slice(&c.to_be_bytes());
    f
}

/// An Ethernet + IPv4 + TCP frame (20-byte TCP header) with valid checksums.
pub fn tcp_frame(payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
    let total = 20 + 20 + payload.len();
    f.extend([
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0x43,
        0x21,
        0x40,
        0,
        64,
        6,
        0,
        0,
    ]);
    f.extend([172, 16, 0, 5, 10, 0, 0, 1]);
    f.extend([
        0xc3, 0x50, 0x00, 0x50, 0, 0, 0, 7, 0, 0, 0, 0, 0x50, 0x18, 0x20, 0, 0, 0, 0, 0,
    ]);
    f.extend_from_slice(payload);
    let c = ipv4_checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    let c = l4_checksum(&f[14..34], &f[34..], 6);
    f[50..52].copy_from_slice(&c.to_be_bytes());
    f
}

/// RFC 1071: the one's-complement sum of 16-bit big-endian words, folded.
pub fn ones_sum(bytes: &[u8], mut sum: u32) -> u32 {
    for w in bytes.chunks(2) {
        sum += u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum
}

/// The IPv4 header checksum of `hdr` with its checksum field taken as zero.
pub fn ipv4_checksum(hdr: &[u8]) -> u16 {
    let mut h = hdr.to_vec();
    h[10] = 0;
    h[11] = 0;
    !(ones_sum(&h, 0) as u16)
}

/// The TCP/UDP checksum (pseudo header from the IPv4 header `ip`) of `seg` with its checksum
/// field taken as zero.
pub fn l4_checksum(ip: &[u8], seg: &[u8], proto: u8) -> u16 {
    let mut s = seg.to_vec();
    let at = if proto == 17 { 6 } else { 16 };
    s[at] = 0;
    s[at + 1] = 0;
    let mut pseudo = ip[12..20].to_vec();
    pseudo.extend([0, proto, (seg.len() >> 8) as u8, seg.len() as u8]);
    let sum = ones_sum(&pseudo, 0);
    !(ones_sum(&s, sum) as u16)
}
