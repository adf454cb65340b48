//! `bpfkit run OBJ --pcap FILE`: an ELF object's packet programs run on every frame of a pcap
//! or pcapng capture.
//!
//! The object is instantiated as libbpf loads it (maps, global data, programs, static slots);
//! the programs chosen with `--prog` (default: the object's first packet program that no
//! prog_array slot names, i.e. the entry point of a tail-call chain) run as a
//! pipeline on each frame ([`bpfkit::source::packets`]). The text output is a summary (frames,
//! verdict counts per program, mean time per frame) and the maps; `--json` prints one JSON
//! document instead (summary, maps by name as `bpftool map dump --json` prints them, and with
//! `--per-packet` one `{index, r0, data}` per frame, `data` the output frame in hex when a
//! program changed it). `-w OUT.pcap` writes the frames that passed every program, as they
//! left the last one. The exit status is 0 when the run completed, whatever the verdicts.

use super::map::{
    emit, instantiate_file_with_object, json_str, map_json, map_text, object_btf, MapFormat,
};
use anyhow::{bail, Context};
use bpfkit::loader::SlotTarget;
use bpfkit::source::capture::{read_capture, write_pcap, Frame};
use bpfkit::source::hist::{group_log2, log2_text};
use bpfkit::source::packets::run_pipeline;
use bpfkit_verifier::env::ProgType;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The options of `bpfkit run` for ELF objects.
#[derive(clap::Args, Default)]
pub struct ObjectArgs {
    /// ELF objects: run this program (by function name); repeat for a pipeline.
    #[arg(long = "prog", value_name = "NAME")]
    pub progs: Vec<String>,
    /// ELF objects: the pcap or pcapng capture whose frames the programs run on.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// ELF objects: write the frames that pass (as the programs left them) to this pcap file.
    #[arg(short = 'w', value_name = "OUT.pcap")]
    pub write: Option<PathBuf>,
    /// ELF objects: print one JSON document (summary, maps, per-packet results).
    #[arg(long)]
    pub json: bool,
    /// ELF objects, with --json: add {index, r0, data} for every frame.
    #[arg(long)]
    pub per_packet: bool,
    /// ELF objects: print this map as log2 histograms (key = group bytes then a u32 slot,
    /// value = u64 count), as the kernel's samples do.
    #[arg(long, value_name = "MAP")]
    pub hist: Vec<String>,
}

impl ObjectArgs {
    /// The first ELF-only option given, by its flag, if any.
    #[must_use]
    pub fn given(&self) -> Option<&'static str> {
        [
            (!self.progs.is_empty(), "--prog"),
            (self.pcap.is_some(), "--pcap"),
            (self.write.is_some(), "-w"),
            (self.json, "--json"),
            (self.per_packet, "--per-packet"),
            (!self.hist.is_empty(), "--hist"),
        ]
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag))
    }
}

fn is_packet_type(t: ProgType) -> bool {
    matches!(
        t,
        ProgType::SocketFilter
            | ProgType::SchedCls
            | ProgType::SchedAct
            | ProgType::Xdp
            | ProgType::CgroupSkb
    )
}

/// Runs an ELF object on a capture.
pub fn run(path: &Path, args: &ObjectArgs) -> anyhow::Result<ExitCode> {
    let Some(pcap) = &args.pcap else {
        bail!(
            "{}: an ELF object runs on packets: give --pcap FILE",
            path.display()
        );
    };
    let (bpf, inst, obj) = instantiate_file_with_object(path)?;
    // Programs a prog_array slot names are tail-call targets, not entry points.
    let is_slot_target = |name: &str| {
        obj.maps.iter().any(|m| {
            m.init_slots
                .iter()
                .any(|s| matches!(&s.target, SlotTarget::Program(p) if p == name))
        })
    };
    let chosen: Vec<&bpfkit::instantiate::InstanceProg> = if args.progs.is_empty() {
        let first = inst
            .progs
            .iter()
            .find(|p| is_packet_type(p.prog_type) && !is_slot_target(&p.name))
            .with_context(|| {
                format!(
                    "{}: no packet program (socket, tc, xdp, cgroup_skb)",
                    path.display()
                )
            })?;
        vec![first]
    } else {
        args.progs
            .iter()
            .map(|n| {
                let p = inst.program(n).with_context(|| {
                    let names: Vec<&str> = inst.progs.iter().map(|p| p.name.as_str()).collect();
                    format!("no program `{n}` (the object has: {})", names.join(", "))
                })?;
                if !is_packet_type(p.prog_type) {
                    bail!(
                        "program `{n}` is a {} program, which does not run on packets",
                        p.prog_type
                    );
                }
                Ok(p)
            })
            .collect::<anyhow::Result<_>>()?
    };
    for h in &args.hist {
        if inst.map(h).is_none() {
            bail!("--hist {h}: the object has no such map");
        }
    }
    let fds: Vec<bpfkit::Fd> = chosen.iter().map(|p| p.fd).collect();
    let bytes =
        std::fs::read(pcap).with_context(|| format!("cannot read capture {}", pcap.display()))?;
    let frames = read_capture(&bytes).with_context(|| format!("{}", pcap.display()))?;

    let mut verdicts: Vec<BTreeMap<u32, u64>> = vec![BTreeMap::new(); fds.len()];
    let mut passed: Vec<Frame> = Vec::new();
    let mut per_packet = String::new();
    let mut total_ns: u128 = 0;
    let mut skipped = 0u64;
    let progress = Progress::new(frames.len());
    for (index, f) in frames.iter().enumerate() {
        progress.tick(index);
        let runs = match run_pipeline(&bpf, &fds, &f.data) {
            Ok(r) => r,
            Err(e) => {
                // A frame too short for an Ethernet header: reported, not fatal.
                skipped += 1;
                eprintln!("bpfkit: frame {index}: {e}");
                continue;
            }
        };
        for (i, r) in runs.iter().enumerate() {
            *verdicts[i].entry(r.retval).or_default() += 1;
            total_ns += u128::from(r.duration_ns);
        }
        let Some(last) = runs.last() else { continue };
        let all_pass = runs.len() == fds.len() && last.passes;
        if all_pass {
            passed.push(Frame {
                timestamp: f.timestamp,
                orig_len: u32::try_from(last.data_out.len()).unwrap_or(u32::MAX),
                data: last.data_out.clone(),
            });
        }
        if args.json && args.per_packet {
            let sep = if per_packet.is_empty() { "" } else { "," };
            let data = if last.data_out == f.data {
                "null".to_string()
            } else {
                let hex: String = last.data_out.iter().map(|b| format!("{b:02x}")).collect();
                json_str(&hex)
            };
            let _ = write!(
                per_packet,
                "{sep}{{\"index\":{index},\"r0\":{},\"data\":{data}}}",
                last.retval
            );
        }
    }
    progress.done();
    if let Some(out) = &args.write {
        let file = std::fs::File::create(out)
            .with_context(|| format!("cannot create {}", out.display()))?;
        write_pcap(std::io::BufWriter::new(file), &passed)
            .with_context(|| format!("{}", out.display()))?;
    }
    let ran = frames.len() as u64 - skipped;
    let ns_per_packet = if ran == 0 {
        0.0
    } else {
        total_ns as f64 / ran as f64
    };

    let btf = object_btf(&obj);
    let mut out = String::new();
    if args.json {
        let mut doc = String::from("{\"summary\":{");
        let _ = write!(
            doc,
            "\"object\":{},\"capture\":{},\"packets\":{},\"skipped\":{skipped},\"passed\":{},\"ns_per_packet\":{ns_per_packet:.1},\"programs\":[",
            json_str(&path.display().to_string()),
            json_str(&pcap.display().to_string()),
            frames.len(),
            passed.len()
        );
        for (i, p) in chosen.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            let v: Vec<String> = verdicts[i]
                .iter()
                .map(|(r, n)| format!("{}:{n}", json_str(&r.to_string())))
                .collect();
            let _ = write!(
                doc,
                "{sep}{{\"name\":{},\"type\":{},\"verdicts\":{{{}}}}}",
                json_str(&p.name),
                json_str(p.prog_type.name()),
                v.join(",")
            );
        }
        doc.push_str("]},\"maps\":{");
        for (i, m) in inst.maps.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            let _ = write!(
                doc,
                "{sep}{}:{}",
                json_str(&m.name),
                map_json(&bpf, m.fd, MapFormat::of(btf.as_ref(), &obj, m.index))?
            );
        }
        doc.push('}');
        if args.per_packet {
            let _ = write!(doc, ",\"packets\":[{per_packet}]");
        }
        doc.push('}');
        let _ = writeln!(out, "{doc}");
    } else {
        let _ = writeln!(
            out,
            "{}: {} frames from {}, {} passed, mean {ns_per_packet:.0} ns per frame",
            path.display(),
            frames.len(),
            pcap.display(),
            passed.len()
        );
        if skipped > 0 {
            let _ = writeln!(
                out,
                "{skipped} frames shorter than an Ethernet header were skipped"
            );
        }
        for (i, p) in chosen.iter().enumerate() {
            let v: Vec<String> = verdicts[i]
                .iter()
                .map(|(r, n)| format!("r0={r}: {n}"))
                .collect();
            let _ = writeln!(
                out,
                "program {} ({}): {}",
                p.name,
                p.prog_type.name(),
                v.join(", ")
            );
        }
        for m in &inst.maps {
            if args.hist.contains(&m.name) {
                let _ = write!(out, "{}", hist_text(&bpf, &m.name, m.fd));
            } else {
                let fmt = MapFormat::of(btf.as_ref(), &obj, m.index);
                let _ = write!(out, "{}", map_text(&bpf, &m.name, m.fd, fmt)?);
            }
        }
    }
    emit(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// A map as log2 histograms, one per key prefix (see [`bpfkit::source::hist`]).
fn hist_text(bpf: &bpfkit::Bpf, name: &str, fd: bpfkit::Fd) -> String {
    let entries: Vec<(Vec<u8>, u64)> = super::map::entries(bpf, fd)
        .into_iter()
        .map(|(k, v)| {
            let mut w = [0u8; 8];
            let n = v.len().min(8);
            w[..n].copy_from_slice(&v[..n]);
            (k, u64::from_le_bytes(w))
        })
        .collect();
    let mut s = format!("map {name}: log2 histogram\n");
    for (group, data) in group_log2(&entries) {
        if !group.is_empty() {
            let hex: Vec<String> = group.iter().map(|b| format!("{b:02x}")).collect();
            let _ = writeln!(s, "\nkey {}", hex.join(" "));
        }
        s.push_str(&log2_text("value", &data));
    }
    s
}

/// A progress line on stderr for long captures (only when stderr is a terminal).
struct Progress {
    total: usize,
    step: usize,
    on: bool,
}

impl Progress {
    /// Captures under this many frames run without a progress line.
    const MIN_FRAMES: usize = 100_000;

    fn new(total: usize) -> Self {
        use std::io::IsTerminal as _;
        Self {
            total,
            step: (total / 100).max(1),
            on: total >= Self::MIN_FRAMES && std::io::stderr().is_terminal(),
        }
    }

    fn tick(&self, index: usize) {
        if self.on && index.is_multiple_of(self.step) {
            eprint!(
                "\r{index}/{} frames ({}%)",
                self.total,
                index * 100 / self.total
            );
        }
    }

    fn done(&self) {
        if self.on {
            eprint!("\r{0}/{0} frames (100%)\n", self.total);
        }
    }
}
