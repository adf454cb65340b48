//! A seeded generator of random programs that a verifier has to think about, for differential
//! testing against Linux (`crates/bpfkit/tests/verifier_differential.rs`) and for long
//! campaigns outside CI.
//!
//! Random bytes die in the first instruction; these programs are *valid-ish*: the generator
//! keeps a rough model of what each register and stack slot holds (scalar, context, packet,
//! map value, ...) and mostly uses operands of the right kind, sometimes the wrong one. The
//! pieces are what the verifier's rules are about: scalar ALU (64- and 32-bit, every op, signed
//! division, `movsx`, byte swaps) followed by conditional jumps that refine both branches;
//! spills and fills of scalars and pointers at any size and offset; map lookups with and
//! without a NULL check and accesses through the result at bounded and unbounded offsets;
//! packet checks `data + N > data_end` in every direction and the accesses after them; context
//! reads and writes at random offsets; helper calls with right and wrong argument kinds;
//! BPF-to-BPF calls passing stack pointers; bounded loops; atomics.
//!
//! The model is only a guide: it is not the verifier, and where paths join it forgets what
//! differs. The same seed always gives the same program.

mod model;
mod pieces;

use bpfkit_isa::Insn;
use model::Model;

/// A small, fast, seeded pseudo-random generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator starting from `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// True with probability `1 / n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = hi.wrapping_sub(lo) as u64;
        lo.wrapping_add(self.below(span.wrapping_add(1)) as i64)
    }

    /// One element of a non-empty slice.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    /// An immediate a verifier finds interesting: small numbers, powers of two and their
    /// neighbours, masks, the extremes of `i32`, and sometimes anything.
    pub fn imm(&mut self) -> i32 {
        match self.below(8) {
            0 | 1 => self.range(-4, 16) as i32,
            2 => 1i32.wrapping_shl(self.below(31) as u32),
            3 => (1i64 << self.below(32)).wrapping_sub(1) as i32,
            4 => -(1i32.wrapping_shl(self.below(31) as u32)),
            5 => self.pick(&[
                i32::MIN,
                i32::MAX,
                -1,
                0xff,
                0xffff,
                0x7fff,
                -0x8000,
                255,
                256,
            ]),
            6 => self.range(-600, 600) as i32,
            _ => self.next_u64() as i32,
        }
    }
}

/// A map a generated program uses, in index order: LD_IMM64 with src 1 and imm = index names
/// it (the convention of `tests/verifier`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenMap {
    /// The kernel's map type name without the prefix (`array`, `hash`, `percpu_array`).
    pub map_type: &'static str,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum number of entries.
    pub max_entries: u32,
}

/// One generated program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenProgram {
    /// The program type, by the kernel's name without the prefix (`sched_cls`, `xdp`,
    /// `socket_filter`).
    pub prog_type: &'static str,
    /// The maps, in index order.
    pub maps: Vec<GenMap>,
    /// The instructions; map references are LD_IMM64 src 1 with imm = map index.
    pub insns: Vec<Insn>,
    /// Whether a run's return value and packet depend only on the program and its input (no
    /// random numbers, clocks, addresses or uninitialised memory reach them, as far as the
    /// generator's model knows), so that two engines must agree on them.
    pub deterministic: bool,
}

/// Generates the program of `seed`.
#[must_use]
pub fn generate(seed: u64) -> GenProgram {
    let mut rng = Rng::new(seed);
    let prog_type = rng.pick(&["sched_cls", "sched_cls", "xdp", "xdp", "socket_filter"]);
    let maps = vec![
        GenMap {
            map_type: "array",
            key_size: 4,
            value_size: rng.pick(&[8, 16, 24, 48]),
            max_entries: rng.pick(&[1, 4, 16]),
        },
        GenMap {
            map_type: "hash",
            key_size: rng.pick(&[4, 8]),
            value_size: rng.pick(&[8, 16, 32]),
            max_entries: 16,
        },
    ];
    let mut m = Model::new(prog_type, &maps, rng);
    m.prologue();
    let pieces = 3 + m.rng.below(14);
    for _ in 0..pieces {
        pieces::piece(&mut m, 0);
    }
    m.epilogue();
    let deterministic = m.deterministic();
    GenProgram {
        prog_type,
        maps,
        insns: m.finish(),
        deterministic,
    }
}
