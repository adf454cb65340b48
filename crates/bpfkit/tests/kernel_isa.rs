//! bpfkit's per-instruction ISA tests (`tests/isa/*.data`) run in the Linux kernel: every file's
//! `-- result` must be what the kernel computes. Skips, saying why, where `bpf()` is unavailable.
//!
//! A test program computes r0 and ends in `exit`; the kernel runs it like this:
//! - **Plain programs** become a BPF-to-BPF subprogram of a small socket filter:
//!   ```text
//!   r1 = map_value[mem] ll     ; the -- mem bytes, in a 1-element array map (r1 = 0 without mem)
//!   r2 = LEN
//!   call test                  ; the test program, appended unchanged after the wrapper
//!   r1 = map_value[result] ll
//!   *(u64 *)(r1 + 0) = r0      ; all 64 bits of the test's r0
//!   r0 = 1
//!   exit
//!   ```
//!   The wrapper uses no stack, so the test has its own 512 bytes; its jumps and local calls are
//!   relative and stay valid.
//! - **Packet programs** (LD_ABS / LD_IND) run as a `sched_cls` program on an skb whose data is
//!   the `-- mem` bytes (`BPF_PROG_TEST_RUN` data_in; `sched_cls` sees the packet from its first
//!   byte); r1 is the skb context, which the tests copy to r6 as LD_ABS requires. Every `exit` of
//!   the test becomes a jump to the same epilogue that stores r0. An out-of-range LD_ABS ends the
//!   program at once with r0 = 0 (the kernel's rule), so the run returns 0 and the result is 0.
//!
//! `random_programs_agree_with_the_kernel` runs 400 random ALU/jump/memory/atomic programs (fixed seeds) in the
//! kernel and in bpfkit's checked and fast interpreters and compares r0.
//!
//! `conformance_suite_through_the_kernel` runs the shared conformance suite the same way as a
//! report (many of its programs use patterns the verifier rejects: it counts, never fails on a
//! rejection, but fails on a program the kernel runs with a different result).
#![expect(
    clippy::unwrap_used,
    reason = "a failing syscall or unreadable test file is the failure to report"
)]

use std::path::{Path, PathBuf};

use bpfkit::conformance::{data_files, parse, TestFile};
use bpfkit_isa::Insn;
use bpfkit_kernel::{map_create, map_lookup, map_update, names, prog_test_run, ProgLoad, BPF_ANY};

const LD_IMM64: u8 = 0x18;
const MOV64_IMM: u8 = 0xb7;
const STX_DW: u8 = 0x7b;
const CALL: u8 = 0x85;
const EXIT: u8 = 0x95;
const JA: u8 = 0x05;
/// `BPF_PSEUDO_MAP_VALUE`: LD_IMM64 of the address of a map value.
const PSEUDO_MAP_VALUE: u8 = 2;
/// `BPF_PSEUDO_CALL`: a call to a local function.
const PSEUDO_CALL: u8 = 1;
/// Packet data for runs without `-- mem`: skb test runs want at least an Ethernet header.
const MIN_PACKET: usize = 64;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `rD = map_value[fd] + 0 ll`.
fn ld_map_value(dst: u8, fd: i32) -> [Insn; 2] {
    [
        Insn::new(LD_IMM64, dst, PSEUDO_MAP_VALUE, 0, fd),
        Insn::new(0, 0, 0, 0, 0),
    ]
}

/// True for LD_ABS / LD_IND (class LD, mode ABS or IND).
fn is_packet_load(i: &Insn) -> bool {
    i.code & 0x07 == 0 && matches!(i.code & 0xe0, 0x20 | 0x40)
}

/// What happened to one test in the kernel.
enum KernelResult {
    /// The kernel ran it and r0 was this.
    Ran(u64),
    /// The verifier refused it (errno and the first error line).
    Rejected(String),
    /// It cannot be expressed in the kernel (why).
    Unsupported(String),
}

/// Runs a test program in the kernel and returns its r0.
fn run_in_kernel(prog: &[Insn], mem: Option<&[u8]>) -> KernelResult {
    let result_map = map_create(names::MAP_ARRAY, 4, 8, 1, 0).unwrap();
    let packet = prog.iter().any(is_packet_load);
    let mut insns = Vec::new();
    let (prog_type, data_in, _mem_map) = if packet {
        let Some(mem) = mem.filter(|m| m.len() >= 14) else {
            return KernelResult::Unsupported(
                "packet test with less than 14 bytes of -- mem: skb test runs need an Ethernet header"
                    .into(),
            );
        };
        if prog.iter().any(|i| i.code == CALL && i.src == PSEUDO_CALL) {
            return KernelResult::Unsupported("packet test with local calls".into());
        }
        // Every exit jumps to the epilogue, appended after the program.
        let end = prog.len();
        for (k, i) in prog.iter().enumerate() {
            if i.code == EXIT {
                insns.push(Insn::new(JA, 0, 0, (end - k - 1) as i16, 0));
            } else {
                insns.push(*i);
            }
        }
        (names::PROG_SCHED_CLS, mem.to_vec(), None)
    } else {
        let mem_map = match mem.filter(|m| !m.is_empty()) {
            Some(m) => {
                let map = map_create(names::MAP_ARRAY, 4, m.len() as u32, 1, 0).unwrap();
                map_update(&map, &0u32.to_le_bytes(), m, BPF_ANY).unwrap();
                insns.extend(ld_map_value(1, map.fd()));
                Some(map)
            }
            None => {
                insns.push(Insn::new(MOV64_IMM, 1, 0, 0, 0));
                None
            }
        };
        let len = mem.map_or(0, <[u8]>::len) as i32;
        insns.push(Insn::new(MOV64_IMM, 2, 0, 0, len));
        // call test: the test starts after this call and the 5-slot epilogue.
        insns.push(Insn::new(CALL, 0, PSEUDO_CALL, 0, 5));
        (names::PROG_SOCKET_FILTER, vec![0u8; MIN_PACKET], mem_map)
    };
    insns.extend(ld_map_value(1, result_map.fd()));
    insns.push(Insn::new(STX_DW, 1, 0, 0, 0));
    insns.push(Insn::new(MOV64_IMM, 0, 0, 0, 1));
    insns.push(Insn::new(EXIT, 0, 0, 0, 0));
    if !packet {
        insns.extend_from_slice(prog);
    }
    let loaded = ProgLoad::new(prog_type).load(&insns);
    let p = match loaded.result {
        Ok(p) => p,
        Err(e) => {
            let first = bpfkit_kernel::table::error_lines(&loaded.log)
                .first()
                .map(|s| (*s).to_string())
                .unwrap_or_default();
            return KernelResult::Rejected(format!("{}: {first}", e.name()));
        }
    };
    let run = prog_test_run(&p, &data_in, None, 1).unwrap();
    if run.retval == 0 {
        // Only an aborted LD_ABS / LD_IND returns 0: the program's r0 was 0.
        return KernelResult::Ran(0);
    }
    let v = map_lookup(&result_map, &0u32.to_le_bytes()).unwrap();
    KernelResult::Ran(u64::from_le_bytes(v[..8].try_into().unwrap()))
}

/// The program of a test file: `-- raw`, else the assembled `-- asm`.
fn program(file: &TestFile) -> Result<Vec<Insn>, String> {
    if let Some(raw) = &file.raw {
        return Ok(raw.clone());
    }
    let (text, _) = file.asm.as_ref().ok_or("no -- asm or -- raw section")?;
    bpfkit_isa::asm::conformance::assemble(text).map_err(|e| e.to_string())
}

/// Counts of one directory's run.
#[derive(Default)]
struct Tally {
    agree: usize,
    differ: Vec<String>,
    rejected: Vec<String>,
    unsupported: Vec<String>,
}

fn run_dir(dir: &Path) -> Tally {
    let mut t = Tally::default();
    for path in data_files(dir).unwrap() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let file = match parse(&text) {
            Ok(f) => f,
            Err(e) => {
                t.unsupported.push(format!("{name}: {e}"));
                continue;
            }
        };
        let Some(expected) = file.result.filter(|_| file.error.is_none()) else {
            t.unsupported.push(format!("{name}: no -- result"));
            continue;
        };
        let prog = match program(&file) {
            Ok(p) => p,
            Err(e) => {
                t.unsupported.push(format!("{name}: {e}"));
                continue;
            }
        };
        match run_in_kernel(&prog, file.mem.as_deref()) {
            KernelResult::Ran(r0) if r0 == expected => t.agree += 1,
            KernelResult::Ran(r0) => t.differ.push(format!(
                "{name}: file says {expected:#x}, the kernel {r0:#x}"
            )),
            KernelResult::Rejected(why) => t.rejected.push(format!("{name}: {why}")),
            KernelResult::Unsupported(why) => t.unsupported.push(format!("{name}: {why}")),
        }
    }
    t
}

#[test]
fn isa_tests_agree_with_the_kernel() {
    if let Err(why) = bpfkit_kernel::available() {
        println!("skipped: {why}");
        return;
    }
    let t = run_dir(&repo_root().join("tests/isa"));
    println!(
        "tests/isa in the kernel: {} agree, {} differ, {} rejected by the verifier, {} unsupported",
        t.agree,
        t.differ.len(),
        t.rejected.len(),
        t.unsupported.len()
    );
    for u in &t.unsupported {
        println!("unsupported: {u}");
    }
    assert!(t.agree > 0, "no test ran");
    let mut problems = t.differ.clone();
    problems.extend(t.rejected.iter().map(|r| format!("rejected: {r}")));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn conformance_suite_through_the_kernel() {
    if let Err(why) = bpfkit_kernel::available() {
        println!("skipped: {why}");
        return;
    }
    let dir = match std::env::var_os("BPFKIT_CONFORMANCE_DIR") {
        Some(d) => PathBuf::from(d),
        None => repo_root().join("../shared/conformance"),
    };
    if !dir.join("tests").is_dir() {
        println!("skipped: no conformance suite at {}", dir.display());
        return;
    }
    let t = run_dir(&dir.join("tests"));
    println!(
        "conformance suite in the kernel: {} agree, {} differ, {} rejected by the verifier, {} \
         unsupported",
        t.agree,
        t.differ.len(),
        t.rejected.len(),
        t.unsupported.len()
    );
    for r in &t.rejected {
        println!("rejected: {r}");
    }
    assert!(t.differ.is_empty(), "{}", t.differ.join("\n"));
}

/// A small deterministic generator (xorshift64*), so a failure names a reproducible seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// An immediate biased towards the edges (0, ±1, extremes, small values).
    fn imm(&mut self) -> i32 {
        match self.below(6) {
            0 => [0, 1, -1, i32::MIN, i32::MAX, 0x8000, -0x8000][self.below(7) as usize],
            1 => self.below(64) as i32,
            _ => self.next() as i32,
        }
    }
}

/// A random straight-line program over r0–r9 and eight stack slots with forward conditional
/// jumps: every register and slot is set first (so all reads are initialised), then `len`
/// random ALU, jump, load, store and atomic instructions, then r0 = a mix of every register and
/// slot. The kernel's verifier accepts it (aligned stack accesses, no immediate division by
/// zero, no oversized immediate shift).
fn random_program(rng: &mut Rng, len: usize) -> Vec<Insn> {
    const ALU_OPS: [u8; 11] = [
        0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x90, 0xa0, 0xc0,
    ];
    const JMP_OPS: [u8; 11] = [
        0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xa0, 0xb0, 0xc0, 0xd0,
    ];
    let mut p = Vec::new();
    for r in 0..10u8 {
        if rng.below(2) == 0 {
            p.push(Insn::new(MOV64_IMM, r, 0, 0, rng.imm()));
        } else {
            let v = rng.next();
            p.push(Insn::new(LD_IMM64, r, 0, 0, v as i32));
            p.push(Insn::new(0, 0, 0, 0, (v >> 32) as i32));
        }
    }
    // Eight initialised stack slots, fp-64 .. fp-8, for the memory and atomic instructions.
    for slot in 1..=8i16 {
        p.push(Insn::new(0x7a, 10, 0, -8 * slot, rng.imm())); // *(u64 *)(r10 - 8k) = imm
    }
    let body_start = p.len();
    let mut body: Vec<Insn> = Vec::new();
    while body.len() < len {
        let dst = rng.below(10) as u8;
        let src = rng.below(10) as u8;
        let class = if rng.below(2) == 0 { 0x07 } else { 0x04 }; // ALU64 or ALU
        let bits = if class == 0x07 { 64 } else { 32 };
        match rng.below(13) {
            10..=12 => body.push(random_memory_op(rng, dst, src)),
            0..=4 => {
                let op = ALU_OPS[rng.below(ALU_OPS.len() as u64) as usize];
                let signed = matches!(op, 0x30 | 0x90) && rng.below(3) == 0;
                let off = i16::from(signed);
                if rng.below(2) == 0 {
                    let mut imm = rng.imm();
                    if matches!(op, 0x60 | 0x70 | 0xc0) {
                        imm = rng.below(bits) as i32; // the verifier refuses larger shifts
                    }
                    if matches!(op, 0x30 | 0x90) && imm == 0 {
                        imm = 3; // the verifier refuses a division by immediate zero
                    }
                    body.push(Insn::new(class | op, dst, 0, off, imm));
                } else {
                    body.push(Insn::new(class | op | 0x08, dst, src, off, 0));
                }
            }
            5 => body.push(Insn::new(class | 0x80, dst, 0, 0, 0)), // neg
            6 => {
                // mov / movsx
                let widths: &[i16] = if class == 0x07 {
                    &[0, 8, 16, 32]
                } else {
                    &[0, 8, 16]
                };
                let off = widths[rng.below(widths.len() as u64) as usize];
                body.push(Insn::new(class | 0xb8, dst, src, off, 0));
            }
            7 => {
                // le / be (ALU) or bswap (ALU64)
                let width = [16, 32, 64][rng.below(3) as usize];
                let code = if class == 0x07 {
                    0xd7
                } else if rng.below(2) == 0 {
                    0xd4
                } else {
                    0xdc
                };
                body.push(Insn::new(code, dst, 0, 0, width));
            }
            _ => {
                // A forward conditional jump over 0..3 of the following instructions.
                let op = JMP_OPS[rng.below(JMP_OPS.len() as u64) as usize];
                let jclass = if rng.below(2) == 0 { 0x05 } else { 0x06 };
                let skip = rng.below(4).min((len - body.len() - 1) as u64) as i16;
                if rng.below(2) == 0 {
                    body.push(Insn::new(jclass | op, dst, 0, skip, rng.imm()));
                } else {
                    body.push(Insn::new(jclass | op | 0x08, dst, src, skip, 0));
                }
            }
        }
    }
    debug_assert_eq!(p.len(), body_start);
    p.extend(body);
    // r0 = mix of all registers, so a wrong value anywhere shows in r0.
    for r in 1..10u8 {
        p.push(Insn::new(0x27, 0, 0, 0, 0x9e37_79b1_u32 as i32)); // r0 *= K
        p.push(Insn::new(0xaf, 0, r, 0, 0)); // r0 ^= rN
    }
    for slot in 1..=8i16 {
        p.push(Insn::new(0x79, 1, 10, -8 * slot, 0)); // r1 = *(u64 *)(r10 - 8k)
        p.push(Insn::new(0x27, 0, 0, 0, 0x9e37_79b1_u32 as i32));
        p.push(Insn::new(0xaf, 0, 1, 0, 0));
    }
    p.push(Insn::new(EXIT, 0, 0, 0, 0));
    p
}

/// A random load, store or atomic operation on the stack slots fp-64 .. fp-8, aligned to its
/// size (the verifier requires aligned stack access).
fn random_memory_op(rng: &mut Rng, dst: u8, src: u8) -> Insn {
    // (size code, bytes) for W, H, B, DW.
    const SIZES: [(u8, i16); 4] = [(0x00, 4), (0x08, 2), (0x10, 1), (0x18, 8)];
    let (size, bytes) = SIZES[rng.below(4) as usize];
    let slot = -8 * (1 + rng.below(8) as i16);
    let off = slot + bytes * rng.below((8 / bytes) as u64) as i16;
    match rng.below(5) {
        0 => Insn::new(0x63 | size, 10, src, off, 0), // STX
        1 => Insn::new(0x62 | size, 10, 0, off, rng.imm()), // ST
        2 => Insn::new(0x61 | size, dst, 10, off, 0), // LDX
        3 if size != 0x18 => Insn::new(0x81 | size, dst, 10, off, 0), // LDX MEMSX
        _ => {
            // Atomics: 32 or 64 bits; add/or/and/xor with or without fetch, xchg, cmpxchg.
            let (code, width) = if rng.below(2) == 0 {
                (0xc3, 4)
            } else {
                (0xdb, 8)
            };
            let off = slot + width * rng.below((8 / width) as u64) as i16;
            let op = [0x00, 0x40, 0x50, 0xa0, 0x01, 0x41, 0x51, 0xa1, 0xe1, 0xf1]
                [rng.below(10) as usize];
            // cmpxchg compares with r0 and loads into r0: keep its value operand elsewhere.
            let src = if op == 0xf1 && src == 0 { 1 } else { src };
            Insn::new(code, 10, src, off, op)
        }
    }
}

#[test]
fn random_programs_agree_with_the_kernel() {
    if let Err(why) = bpfkit_kernel::available() {
        println!("skipped: {why}");
        return;
    }
    const PROGRAMS: u64 = 400;
    let mut failures = Vec::new();
    for seed in 1..=PROGRAMS {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let prog = random_program(&mut rng, 40);
        let kernel = match run_in_kernel(&prog, None) {
            KernelResult::Ran(r0) => r0,
            KernelResult::Rejected(why) => {
                failures.push(format!("seed {seed}: the kernel rejected it: {why}"));
                continue;
            }
            KernelResult::Unsupported(why) => panic!("seed {seed}: {why}"),
        };
        let trial = match bpfkit::conformance::TrialRun::new(&prog, None, 1_000_000) {
            Ok(t) => t,
            Err(e) => {
                failures.push(format!("seed {seed}: bpfkit's checked run failed: {e}"));
                continue;
            }
        };
        let fast = trial.run_fast(&mut Vec::new());
        if trial.checked_r0() != kernel || fast != kernel {
            failures.push(format!(
                "seed {seed}: kernel {kernel:#x}, bpfkit checked {:#x}, fast {fast:#x}\n{}",
                trial.checked_r0(),
                prog.iter()
                    .map(|i| format!("  {i:?}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
        }
    }
    println!(
        "{PROGRAMS} random programs: {} differ from the kernel",
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
