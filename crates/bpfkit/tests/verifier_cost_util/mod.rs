//! The programs the verifier's cost is measured on, loaded the same way into bpfkit and into the
//! running kernel: every program of the committed example objects, and generated XDP programs
//! with long branchy paths inside a bounded loop over the packet.
//!
//! Shared by `crates/bpfkit/tests/verifier_cost.rs` (processed-instruction counts against the
//! kernel's) and `benches/verifier.rs` (verification time against the kernel's), which includes
//! this file with `#[path]`, so both measure the same programs.
//!
//! bpfkit side: the object's maps are created in a [`Bpf`] table (`MapDef::map_attr`), each
//! LD_IMM64 map reference gets the new descriptor, and the program is verified with
//! [`bpfkit_verifier::verify`] in [`RuntimeEnv`] — exactly what `Bpf::prog_load` verifies, without
//! the rewriting that follows. Kernel side: the same maps with `BPF_MAP_CREATE` (global data
//! initialised), the map indices replaced by their descriptors, `BPF_PROG_LOAD` at log level 4.
//! The kernel side gets no BTF (`bpfkit-kernel` loads none); bpfkit is verified without
//! `func_info` too, and where that is rejected, with it (as `bpfkit::instantiate` and libbpf
//! load clang objects).
#![allow(dead_code, reason = "the test and the bench use different parts")]

use bpfkit::loader::{MapDef, Object};
use bpfkit::prog::env::RuntimeEnv;
use bpfkit::prog::load::ProgLoadAttr;
use bpfkit::{Bpf, Fd};
use bpfkit_isa::Insn;
use bpfkit_kernel::{Map, ProgLoad, VerifierStats};
use bpfkit_verifier::env::ProgType;
use bpfkit_verifier::{verify, Options, Rejected, Verified};
use std::path::PathBuf;

/// The example objects measured (examples/NAME/NAME.o).
pub const EXAMPLES: &[&str] = &[
    "cgroup_firewall",
    "core_reloc",
    "cpuv4",
    "drop_monitor",
    "flow_dissector",
    "kfunc_call",
    "legacy_maps",
    "map_in_map",
    "perf_output",
    "ringbuf",
    "sockex1",
    "sockex3",
    "tc_rewrite",
    "tracex2",
    "xdp_globals",
];

/// The generated programs: (loop iterations, branchy blocks per iteration).
pub const GENERATED: &[(i32, i32)] = &[(100, 4), (300, 6), (1000, 6)];

/// One program to verify on both sides.
pub struct Case {
    /// `object/program` or `generated/...`.
    pub name: String,
    /// Linked instructions; LD_IMM64 map references carry the map's index in `maps`.
    pub insns: Vec<Insn>,
    /// `(instruction index, map index)` of every map reference.
    pub map_refs: Vec<(usize, usize)>,
    /// The kernel's `BPF_PROG_TYPE_*` number.
    pub kernel_type: u32,
    /// The type bpfkit supports it as, if any.
    pub prog_type: Option<ProgType>,
    /// The object's license.
    pub license: String,
    /// The object's `version` section.
    pub kern_version: u32,
    /// The object's maps.
    pub maps: Vec<MapDef>,
    /// The object has BTF function information for this program (libbpf would pass it).
    pub has_func_info: bool,
    /// `expected_attach_type` as libbpf's section table gives it (`cgroup_skb/egress`:
    /// `BPF_CGROUP_INET_EGRESS`), 0 otherwise.
    pub expected_attach_type: u32,
}

/// The repository's examples directory, from either including crate (`crates/bpfkit` or
/// `benches`).
fn examples_dir() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    ["../../examples", "../examples"]
        .iter()
        .map(|rel| here.join(rel))
        .find(|d| d.join("sockex1").is_dir())
        .unwrap_or_else(|| here.join("../../examples"))
}

/// Every program of every example object, in name order; an object that cannot be read or
/// parsed is returned as `Err((name, why))`.
pub fn example_cases() -> Vec<Result<Case, (String, String)>> {
    let mut out = Vec::new();
    for name in EXAMPLES {
        let path = examples_dir().join(name).join(format!("{name}.o"));
        let obj = match std::fs::read(&path) {
            Ok(bytes) => match Object::parse(&bytes) {
                Ok(o) => o,
                Err(e) => {
                    out.push(Err((name.to_string(), format!("loader: {e}"))));
                    continue;
                }
            },
            Err(e) => {
                out.push(Err((name.to_string(), format!("{}: {e}", path.display()))));
                continue;
            }
        };
        for p in &obj.programs {
            out.push(Ok(Case {
                name: format!("{name}/{}", p.name),
                insns: p.insns.clone(),
                map_refs: p.map_refs.clone(),
                kernel_type: p.prog_type(),
                prog_type: p.runtime_type(),
                license: obj.license.clone(),
                kern_version: obj.kern_version.unwrap_or(0),
                maps: obj.maps.clone(),
                has_func_info: !p.func_info.is_empty(),
                expected_attach_type: if p.section == "cgroup_skb/egress" {
                    bpfkit::prog::load::CGROUP_INET_EGRESS
                } else {
                    0
                },
            }));
        }
    }
    out.push(flow_dissector_xdp());
    out
}

/// The flow dissector's XDP build as raw instructions (`flow_dissector_xdp.bin`): its object's
/// `flow` section is not one the loader knows, so the object cannot be parsed as a whole.
fn flow_dissector_xdp() -> Result<Case, (String, String)> {
    let name = "flow_dissector/xdp (raw)".to_string();
    let path = examples_dir().join("flow_dissector/flow_dissector_xdp.bin");
    let bytes =
        std::fs::read(&path).map_err(|e| (name.clone(), format!("{}: {e}", path.display())))?;
    let insns = bpfkit_isa::insns_from_bytes(&bytes).map_err(|e| (name.clone(), format!("{e}")))?;
    Ok(Case {
        name,
        insns,
        map_refs: Vec::new(),
        kernel_type: bpfkit_kernel::names::PROG_XDP,
        prog_type: Some(ProgType::Xdp),
        license: "GPL".into(),
        kern_version: 0,
        maps: Vec::new(),
        has_func_info: false,
        expected_attach_type: 0,
    })
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn::new(code, dst, src, off, imm)
}

/// An XDP program that walks the packet one byte per iteration for `iters` iterations
/// (`r9` counts; `if r9 < iters goto loop`), checking `data + 8 <= data_end` each time, and in
/// each iteration runs `blocks` if/else blocks: load a packet byte, eight ALU instructions on
/// it, then branch on the byte and fold a value into one of two accumulators (`r0` or `r8`).
/// Every branch depends on packet data, so both sides are explored; the accumulators never
/// decide a branch or an address, so the two sides' states must prune at the join, and the
/// loop counter makes every iteration a new state. A verifier without pruning processes
/// 2^(iters·blocks) paths; with it, about `iters · (13·blocks + 6)` instructions.
///
/// Written as C, one iteration is:
/// ```c
/// if (p + 8 > end) goto out;
/// for (j = 0; j < blocks; j++) {
///     b = p[j % 8]; t = ((b * (j + 3)) ^ j) & 0xff; u = ((t >> 1) + b) & 0x3f;
///     if (b > (j * 37) % 256) acc8 = (acc8 + t) & 0xffff; else acc0 = (acc0 + u) & 0xffff;
/// }
/// p++;
/// ```
pub fn branchy_loop(iters: i32, blocks: i32) -> Vec<Insn> {
    let mut p = vec![
        insn(0x61, 6, 1, 0, 0), // r6 = *(u32 *)(r1 + 0): data
        insn(0x61, 7, 1, 4, 0), // r7 = *(u32 *)(r1 + 4): data_end
        insn(0xb7, 0, 0, 0, 0), // r0 = 0
        insn(0xb7, 8, 0, 0, 0), // r8 = 0
        insn(0xb7, 9, 0, 0, 0), // r9 = 0
    ];
    let loop_start = p.len();
    p.push(insn(0xbf, 2, 6, 0, 0)); // r2 = r6
    p.push(insn(0x07, 2, 0, 0, 8)); // r2 += 8
    let bound_check = p.len();
    p.push(insn(0x2d, 2, 7, 0, 0)); // if r2 > r7 goto out (offset set below)
    for j in 0..blocks {
        p.push(insn(0x71, 3, 6, (j % 8) as i16, 0)); // r3 = *(u8 *)(r6 + j % 8)
        p.push(insn(0xbf, 4, 3, 0, 0)); // r4 = r3
        p.push(insn(0x27, 4, 0, 0, j + 3)); // r4 *= j + 3
        p.push(insn(0xa7, 4, 0, 0, j)); // r4 ^= j
        p.push(insn(0x57, 4, 0, 0, 0xff)); // r4 &= 0xff
        p.push(insn(0xbf, 5, 4, 0, 0)); // r5 = r4
        p.push(insn(0x77, 5, 0, 0, 1)); // r5 >>= 1
        p.push(insn(0x0f, 5, 3, 0, 0)); // r5 += r3
        p.push(insn(0x57, 5, 0, 0, 0x3f)); // r5 &= 0x3f
        p.push(insn(0x25, 3, 0, 3, (j * 37) % 256)); // if r3 > c goto else
        p.push(insn(0x0f, 0, 5, 0, 0)); // r0 += r5
        p.push(insn(0x57, 0, 0, 0, 0xffff)); // r0 &= 0xffff
        p.push(insn(0x05, 0, 0, 2, 0)); // goto join
        p.push(insn(0x0f, 8, 4, 0, 0)); // else: r8 += r4
        p.push(insn(0x57, 8, 0, 0, 0xffff)); // r8 &= 0xffff
    }
    p.push(insn(0x07, 6, 0, 0, 1)); // r6 += 1
    p.push(insn(0x07, 9, 0, 0, 1)); // r9 += 1
    let back = -((p.len() + 1 - loop_start) as i16);
    p.push(insn(0xa5, 9, 0, back, iters)); // if r9 < iters goto loop
                                           // out:
    p[bound_check].off = (p.len() - bound_check - 1) as i16;
    p.push(insn(0xaf, 0, 8, 0, 0)); // r0 ^= r8
    p.push(insn(0x57, 0, 0, 0, 3)); // r0 &= 3 (an XDP action)
    p.push(insn(0x95, 0, 0, 0, 0)); // exit
    p
}

/// The generated cases of [`GENERATED`].
pub fn generated_cases() -> Vec<Case> {
    GENERATED
        .iter()
        .map(|&(iters, blocks)| Case {
            name: format!("generated/loop{iters}x{blocks}"),
            insns: branchy_loop(iters, blocks),
            map_refs: Vec::new(),
            kernel_type: bpfkit_kernel::names::PROG_XDP,
            prog_type: Some(ProgType::Xdp),
            license: "GPL".into(),
            kern_version: 0,
            maps: Vec::new(),
            has_func_info: false,
            expected_attach_type: 0,
        })
        .collect()
}

/// A case ready for bpfkit: its maps in a [`Bpf`] table, map references patched.
pub struct BpfkitSide {
    /// The object table holding the maps.
    pub bpf: Bpf,
    /// The instructions with map descriptors.
    pub insns: Vec<Insn>,
    /// Verifier options (log level 4: statistics, as the kernel is asked for).
    pub opts: Options,
}

impl BpfkitSide {
    /// Creates `case`'s maps in a new table and patches its map references (what
    /// `bpfkit::instantiate` does for a whole object, per program here so that one rejected
    /// program does not hide the others). `btf_func_info`: tell the verifier the program
    /// comes with BTF function information (the kernel side never gets it).
    pub fn new(case: &Case, btf_func_info: bool) -> Result<Self, String> {
        let prog_type = case
            .prog_type
            .ok_or_else(|| format!("program type {} is not supported", case.kernel_type))?;
        let bpf = Bpf::new();
        let mut fds: Vec<Fd> = Vec::new();
        for def in &case.maps {
            let fd = match &def.inner {
                Some(inner) => {
                    let tmpl = bpf
                        .map_create(&inner.map_attr(None))
                        .map_err(|e| format!("map {} (inner template): {e}", def.name))?;
                    bpf.map_create(&def.map_attr(Some(tmpl.0)))
                }
                None => bpf.map_create(&def.map_attr(None)),
            }
            .map_err(|e| format!("map {}: {e}", def.name))?;
            if let Some(init) = &def.initial_value {
                bpf.map_update_elem(fd, &0u32.to_le_bytes(), init, 0)
                    .map_err(|e| format!("map {}: initial value: {e}", def.name))?;
            }
            fds.push(fd);
        }
        let mut insns = case.insns.clone();
        for &(at, index) in &case.map_refs {
            let fd = fds
                .get(index)
                .ok_or_else(|| format!("insn {at}: map #{index} does not exist"))?;
            let slot = insns
                .get_mut(at)
                .ok_or_else(|| format!("map reference at insn {at} is past the end"))?;
            slot.imm = fd.0 as i32;
        }
        let opts = Options {
            prog_type,
            log_level: 4,
            license: case.license.clone(),
            btf_func_info,
            expected_attach_type: case.expected_attach_type,
            ..Options::default()
        };
        Ok(Self { bpf, insns, opts })
    }

    /// Verifies the program once.
    pub fn verify(&self) -> Result<Verified, Rejected> {
        verify(&self.insns, &RuntimeEnv::new(&self.bpf), &self.opts)
    }

    /// Loads the program once with `Bpf::prog_load` (verification and the rewrites that
    /// follow it, as the kernel's `verification time` also covers its rewrites) and closes the
    /// descriptor again; whether it loaded.
    pub fn prog_load(&self) -> bool {
        let attr = ProgLoadAttr {
            prog_type: self.opts.prog_type,
            insns: &self.insns,
            license: &self.opts.license,
            log_level: 4,
            log_size: 1 << 20,
        };
        let load = bpfkit::prog::load::ProgLoadOpts {
            btf_func_info: self.opts.btf_func_info,
            expected_attach_type: self.opts.expected_attach_type,
            ..Default::default()
        };
        match self.bpf.prog_load_with(&attr, &load) {
            Ok(l) => self.bpf.close(l.fd).is_ok(),
            Err(_) => false,
        }
    }
}

/// A case ready for the kernel: its maps created, map references patched.
pub struct KernelSide {
    maps: Vec<Map>,
    insns: Vec<Insn>,
}

/// What the kernel said about one load.
pub enum KernelVerdict {
    /// Accepted, with the log-level-4 statistics.
    Accepted(VerifierStats),
    /// Rejected: errno and the last line of the log before the statistics.
    Rejected(String),
}

impl KernelSide {
    /// Creates `case`'s maps in the kernel and patches its map references.
    pub fn new(case: &Case) -> Result<Self, String> {
        let mut maps = Vec::new();
        for def in &case.maps {
            let map = match &def.inner {
                Some(inner) => {
                    let tmpl = create_kernel_map(inner)?;
                    bpfkit_kernel::map_create_outer(
                        def.map_type,
                        def.key_size,
                        def.value_size,
                        def.map_attr(None).max_entries,
                        def.map_flags,
                        tmpl.fd(),
                    )
                    .map_err(|e| format!("kernel map {}: {e}", def.name))?
                }
                None => create_kernel_map(def)?,
            };
            if let Some(init) = &def.initial_value {
                bpfkit_kernel::map_update(&map, &0u32.to_le_bytes(), init, bpfkit_kernel::BPF_ANY)
                    .map_err(|e| format!("kernel map {}: initial value: {e}", def.name))?;
            }
            maps.push(map);
        }
        let fds: Vec<i32> = maps.iter().map(Map::fd).collect();
        let mut insns = case.insns.clone();
        bpfkit_kernel::resolve_map_indices(&mut insns, &fds).map_err(|e| e.to_string())?;
        Ok(Self { maps, insns })
    }

    /// Loads the program once at log level 4 (the descriptor is closed again).
    pub fn load(&self, case: &Case) -> KernelVerdict {
        let loaded = ProgLoad {
            license: &case.license,
            kern_version: case.kern_version,
            expected_attach_type: case.expected_attach_type,
            log_level: 4,
            ..ProgLoad::new(case.kernel_type)
        }
        .load(&self.insns[..]);
        match (&loaded.result, VerifierStats::parse(&loaded.log)) {
            (Ok(_), Some(stats)) => KernelVerdict::Accepted(stats),
            (Ok(_), None) => KernelVerdict::Rejected("accepted, but no statistics line".into()),
            (Err(e), _) => KernelVerdict::Rejected(format!("{e}: {}", error_line(&loaded.log))),
        }
    }

    /// How many maps were created (kept alive while this side lives).
    pub fn map_count(&self) -> usize {
        self.maps.len()
    }
}

/// Creates `def` in the kernel with the size libbpf gives it (`MapDef::map_attr`: a perf event
/// array declared without `max_entries` gets one slot per possible CPU, as bpfkit's side does).
fn create_kernel_map(def: &MapDef) -> Result<Map, String> {
    bpfkit_kernel::map_create(
        def.map_type,
        def.key_size,
        def.value_size,
        def.map_attr(None).max_entries,
        def.map_flags,
    )
    .map_err(|e| format!("kernel map {} ({}): {e}", def.name, def.type_name()))
}

/// The error line of a rejection log: the last line that is not a statistics line.
pub fn error_line(log: &str) -> String {
    log.lines()
        .rev()
        .find(|l| {
            !l.is_empty()
                && !l.starts_with("processed ")
                && !l.starts_with("verification time ")
                && !l.starts_with("stack depth ")
        })
        .unwrap_or("(empty log)")
        .to_string()
}
