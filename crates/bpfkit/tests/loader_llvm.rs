//! The loader's programs checked against LLVM's own view of each example object.
//!
//! `llvm-readelf-19 -s -S` gives the sections and symbols, `llvm-objdump-19 -d -r` every
//! instruction's bytes and every relocation. From those alone the test derives what a correct
//! link must look like: each program section function is a program; its instructions are the
//! function's bytes except at relocations, where an R_BPF_64_64 against a map symbol becomes
//! LD_IMM64 src=1 with that map's index, one against global data becomes src=2 with the data
//! map's index and the offset in the second slot, and an R_BPF_64_32 (or a relocation-free
//! static call) becomes a call whose target holds the callee's bytes; and the program's length is
//! the sum of the functions reached.

mod loader_util;

use bpfkit::loader::Object;
use bpfkit_isa::Insn;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

#[derive(Debug, Clone)]
struct SymInfo {
    value: u64,
    size: u64,
    kind: String,
    section: Option<String>,
}

/// A function's section, first slot and (slot, bytes) of each instruction.
type FuncDump = (String, u64, Vec<(u64, Vec<u8>)>);

#[derive(Debug, Default)]
struct Dump {
    /// Section name of each ELF section index.
    sections: HashMap<usize, String>,
    /// Symbols by name (section symbols by their section's name).
    syms: HashMap<String, SymInfo>,
    /// Function name -> (section, start slot, slots as (slot, bytes)), slots section-relative.
    funcs: HashMap<String, FuncDump>,
    /// (section, byte offset) -> (type, symbol).
    relocs: HashMap<(String, u64), (String, String)>,
}

fn dump(obj: &Path) -> Option<Dump> {
    let mut d = Dump::default();
    let headers = loader_util::llvm("llvm-readelf-19", &["-S", "--wide"], obj)?;
    for line in headers.lines() {
        let Some(rest) = line.trim_start().strip_prefix('[') else {
            continue;
        };
        let Some((idx, rest)) = rest.split_once(']') else {
            continue;
        };
        let (Ok(idx), Some(name)) = (idx.trim().parse::<usize>(), rest.split_whitespace().next())
        else {
            continue;
        };
        if idx > 0 {
            d.sections.insert(idx, name.to_string());
        }
    }
    let symtab = loader_util::llvm("llvm-readelf-19", &["-s", "--wide"], obj)?;
    for line in symtab.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 7 || !f[0].ends_with(':') || f[0] == "Num:" {
            continue;
        }
        let section = f[6]
            .parse::<usize>()
            .ok()
            .and_then(|i| d.sections.get(&i).cloned());
        let name = if f[3] == "SECTION" {
            section.clone().unwrap_or_default()
        } else {
            f.get(7).map_or_else(String::new, |s| (*s).to_string())
        };
        let info = SymInfo {
            value: u64::from_str_radix(f[1], 16).expect("value"),
            size: f[2].parse().expect("size"),
            kind: f[3].to_string(),
            section,
        };
        d.syms.insert(name, info);
    }
    let text = loader_util::llvm("llvm-objdump-19", &["-d", "-r"], obj)?;
    let (mut sec, mut func) = (String::new(), String::new());
    for line in text.lines() {
        if let Some(s) = line.strip_prefix("Disassembly of section ") {
            sec = s.trim_end_matches(':').to_string();
        } else if let Some(name) = line
            .strip_suffix(">:")
            .and_then(|l| l.split_once(" <"))
            .map(|p| p.1)
        {
            func = name.to_string();
            let start = d.syms.get(&func).map_or(0, |s| s.value / 8);
            d.funcs
                .insert(func.clone(), (sec.clone(), start, Vec::new()));
        } else if let Some(r) = line.strip_prefix("\t\t") {
            let (off, rest) = r.split_once(":").expect("reloc offset");
            let mut it = rest.split_whitespace();
            let (ty, sym) = (it.next().expect("type"), it.next().expect("symbol"));
            d.relocs.insert(
                (sec.clone(), u64::from_str_radix(off, 16).expect("hex")),
                (ty.into(), sym.into()),
            );
        } else if let Some((idx, rest)) = line.trim_start().split_once(":\t") {
            let Ok(idx) = idx.parse::<u64>() else {
                continue;
            };
            let hex = rest.split('\t').next().unwrap_or("");
            let bytes: Vec<u8> = hex
                .split_whitespace()
                .map(|b| u8::from_str_radix(b, 16).expect("byte"))
                .collect();
            d.funcs
                .get_mut(&func)
                .expect("insn before function")
                .2
                .push((idx, bytes));
        }
    }
    Some(d)
}

fn insn(b: &[u8]) -> Insn {
    Insn::from_bytes(b[..8].try_into().expect("8 bytes"))
}

/// Checks that `prog[at..]` holds function `name` correctly relocated; records reached
/// functions (name -> position) in `placed`.
fn check_func(
    d: &Dump,
    obj: &Object,
    prog: &[Insn],
    at: usize,
    name: &str,
    placed: &mut HashMap<String, usize>,
    ctx: &str,
) {
    if let Some(&pos) = placed.get(name) {
        assert_eq!(pos, at, "{ctx}: function {name} placed twice");
        return;
    }
    placed.insert(name.to_string(), at);
    let (sec, start, slots) = d
        .funcs
        .get(name)
        .unwrap_or_else(|| panic!("{ctx}: objdump has no function {name}"));
    for (idx, bytes) in slots {
        let s = (idx - start) as usize;
        let here = format!("{ctx}: {name}+{s} (program insn {})", at + s);
        let ours = *prog
            .get(at + s)
            .unwrap_or_else(|| panic!("{here}: program too short"));
        let orig = insn(bytes);
        match d.relocs.get(&(sec.clone(), idx * 8)) {
            Some((ty, sym)) if ty == "R_BPF_64_64" => {
                let info = &d.syms[sym];
                let sym_sec = info.section.clone().expect("defined");
                assert_eq!(
                    (ours.code, ours.dst, ours.off),
                    (orig.code, orig.dst, orig.off),
                    "{here}"
                );
                let second = prog[at + s + 1];
                if sym_sec == ".maps" || sym_sec == "maps" {
                    let want = obj
                        .map_index(sym)
                        .unwrap_or_else(|| panic!("{here}: no map {sym}"));
                    assert_eq!((ours.src, ours.imm), (1, want as i32), "{here}: map {sym}");
                } else {
                    let want = obj
                        .map_index(&sym_sec)
                        .unwrap_or_else(|| panic!("{here}: no map {sym_sec}"));
                    let base = if info.kind == "SECTION" {
                        0
                    } else {
                        info.value as i32
                    };
                    assert_eq!((ours.src, ours.imm), (2, want as i32), "{here}: data {sym}");
                    assert_eq!(second.imm, orig.imm + base, "{here}: offset into {sym_sec}");
                }
            }
            Some((ty, sym)) if ty == "R_BPF_64_32" => {
                assert_eq!((ours.code, ours.src), (0x85, 1), "{here}: call");
                let info = &d.syms[sym];
                let target_sec = info.section.clone().expect("defined");
                let target_slot = (info.value / 8) as i64 + i64::from(orig.imm) + 1;
                let callee = callee_at(d, &target_sec, target_slot as u64, &here);
                let new_at = (at + s) as i64 + 1 + i64::from(ours.imm);
                check_func(d, obj, prog, new_at as usize, &callee, placed, ctx);
            }
            Some((ty, _)) => panic!("{here}: unexpected relocation type {ty}"),
            None if orig.code == 0x85 && orig.src == 1 => {
                let target_slot = *idx as i64 + 1 + i64::from(orig.imm);
                let callee = callee_at(d, sec, target_slot as u64, &here);
                let new_at = (at + s) as i64 + 1 + i64::from(ours.imm);
                check_func(d, obj, prog, new_at as usize, &callee, placed, ctx);
            }
            None => {
                assert_eq!(ours, orig, "{here}: unrelocated instruction changed");
                if bytes.len() == 16 {
                    assert_eq!(prog[at + s + 1], insn(&bytes[8..]), "{here}: second slot");
                }
            }
        }
    }
}

fn callee_at(d: &Dump, sec: &str, slot: u64, here: &str) -> String {
    d.syms
        .iter()
        .find(|(_, s)| s.kind == "FUNC" && s.section.as_deref() == Some(sec) && s.value == slot * 8)
        .map(|(n, _)| n.clone())
        .unwrap_or_else(|| panic!("{here}: no function at slot {slot} of {sec}"))
}

#[test]
fn programs_match_llvm_objdump() {
    for name in loader_util::EXAMPLES {
        for (path, obj) in loader_util::parsed(name) {
            let Some(d) = dump(&path) else { return };
            let ctx = path.display().to_string();
            // Programs: FUNC symbols in code sections other than .text.
            let want: BTreeSet<(String, String)> = d
                .funcs
                .iter()
                .filter(|(_, (sec, _, _))| sec != ".text")
                .map(|(n, (sec, _, _))| (n.clone(), sec.clone()))
                .collect();
            let got: BTreeSet<(String, String)> = obj
                .programs
                .iter()
                .map(|p| (p.name.clone(), p.section.clone()))
                .collect();
            assert_eq!(got, want, "{ctx}: programs");
            for p in &obj.programs {
                let mut placed = HashMap::new();
                check_func(
                    &d,
                    &obj,
                    &p.insns,
                    0,
                    &p.name,
                    &mut placed,
                    &format!("{ctx} {}", p.name),
                );
                let total: u64 = placed.keys().map(|f| d.syms[f].size / 8).sum();
                assert_eq!(
                    p.insns.len() as u64,
                    total,
                    "{ctx} {}: length = functions reached {placed:?}",
                    p.name
                );
            }
        }
    }
}

#[test]
fn subprograms_are_linked_where_the_source_calls_them() {
    // From the C sources: account() and classify_l4() are __noinline static functions.
    let cases = [
        ("xdp_globals", "xdp_filter", "classify_l4"),
        ("sockex3", "parse_ipv4", "account"),
        ("sockex3", "parse_ipv6", "account"),
    ];
    for (example, prog, sub) in cases {
        for (path, obj) in loader_util::parsed(example) {
            let p = obj
                .program(prog)
                .unwrap_or_else(|| panic!("{}: {prog}", path.display()));
            let names: Vec<&str> = p.func_info.iter().map(|f| f.name.as_str()).collect();
            assert_eq!(names, [prog, sub], "{}", path.display());
            let call_targets: Vec<usize> = p
                .insns
                .iter()
                .enumerate()
                .filter(|(_, i)| i.code == 0x85 && i.src == 1)
                .map(|(at, i)| (at as i64 + 1 + i64::from(i.imm)) as usize)
                .collect();
            assert!(
                !call_targets.is_empty(),
                "{}: {prog} has no bpf-to-bpf call",
                path.display()
            );
            assert!(
                call_targets
                    .iter()
                    .all(|&t| t == p.func_info[1].insn as usize),
                "{}: calls go to {sub}",
                path.display()
            );
        }
    }
}

#[test]
fn core_relocations_are_refused_where_llvm_shows_them() {
    for (path, data) in loader_util::objects("core_reloc") {
        let Some(text) = loader_util::llvm("llvm-objdump-19", &["-d", "-r"], &path) else {
            return;
        };
        // `       1:\tb7 01 ...` then `\t\t0000000000000008:  CO-RE <byte_off> [18] struct task_struct::tgid (0:0)`
        let (mut sec, mut want) = (String::new(), None);
        for line in text.lines() {
            if let Some(s) = line.strip_prefix("Disassembly of section ") {
                sec = s.trim_end_matches(':').to_string();
            }
            if let Some((off, rest)) = line.trim_start().split_once(":  CO-RE <") {
                let (kind, rest) = rest.split_once("> [").expect("kind");
                let ty = rest.split_once("] struct ").expect("type").1;
                let (ty, access) = ty.split_once("::").expect("field");
                let access = access
                    .rsplit_once('(')
                    .expect("access")
                    .1
                    .trim_end_matches(')');
                let insn = u64::from_str_radix(off, 16).expect("hex") / 8;
                want.get_or_insert((
                    sec.clone(),
                    insn,
                    kind.to_string(),
                    ty.to_string(),
                    access.to_string(),
                ));
            }
        }
        let (section, insn, kind, type_name, access) =
            want.expect("llvm-objdump shows a CO-RE relocation");
        assert_eq!(
            Object::parse(&data),
            Err(bpfkit::loader::LoadError::CoreRelocation {
                section,
                insn,
                kind,
                type_name,
                access
            }),
            "{}",
            path.display()
        );
    }
}

#[test]
fn kfunc_calls_are_refused_naming_the_extern() {
    for (path, data) in loader_util::objects("kfunc_call") {
        let Some(d) = dump(&path) else { return };
        let ((section, offset), (_, symbol)) = d
            .relocs
            .iter()
            .filter(|(_, (ty, sym))| {
                ty == "R_BPF_64_32" && d.syms.get(sym).is_some_and(|s| s.section.is_none())
            })
            .min_by_key(|((_, off), _)| *off)
            .expect("a call relocation against an undefined symbol");
        assert_eq!(
            Object::parse(&data),
            Err(bpfkit::loader::LoadError::Extern {
                section: section.clone(),
                insn: offset / 8,
                symbol: symbol.clone()
            }),
            "{}",
            path.display()
        );
    }
}

#[test]
fn kernel_btf_has_section_sizes_and_variable_offsets() {
    for name in loader_util::EXAMPLES {
        for (path, obj) in loader_util::parsed(name) {
            let Some(d) = dump(&path) else { return };
            let blob = obj.kernel_btf.as_ref().expect("examples are built with -g");
            let tmp = std::env::temp_dir()
                .join(format!("bpfkit_loader_{}_{name}.btf", std::process::id()));
            std::fs::write(&tmp, blob).expect("temp file");
            let text = loader_util::llvm("bpftool", &["btf", "dump", "file"], &tmp);
            let _ = std::fs::remove_file(&tmp);
            let Some(text) = text else { return };
            // `[36] DATASEC '.bss' size=40 vlen=1` then `\ttype_id=33 offset=0 size=40 (VAR 'verdicts')`
            let mut sec = None;
            let mut checked = 0;
            for line in text.lines() {
                if let Some(rest) = line.split_once(" DATASEC '").map(|p| p.1) {
                    let (s, rest) = rest.split_once('\'').expect("name");
                    let size: u64 = rest
                        .split_once("size=")
                        .expect("size")
                        .1
                        .split_whitespace()
                        .next()
                        .expect("n")
                        .parse()
                        .expect("int");
                    // The size must be the ELF section's (llvm-readelf's section headers).
                    sec = Some(s.to_string());
                    let want = section_size(&path, s);
                    assert_eq!(Some(size), want, "{}: DATASEC {s} size", path.display());
                } else if let (Some(s), Some(var)) = (
                    &sec,
                    line.split_once("(VAR '")
                        .map(|p| p.1.trim_end_matches("')")),
                ) {
                    let off: u64 = line
                        .split_once("offset=")
                        .expect("offset")
                        .1
                        .split_whitespace()
                        .next()
                        .expect("n")
                        .parse()
                        .expect("int");
                    let sym = &d.syms[var];
                    assert_eq!(
                        sym.section.as_deref(),
                        Some(s.as_str()),
                        "{}: {var}",
                        path.display()
                    );
                    assert_eq!(off, sym.value, "{}: offset of {var} in {s}", path.display());
                    checked += 1;
                } else if !line.starts_with('\t') {
                    sec = None;
                }
            }
            assert!(
                checked > 0,
                "{}: no DATASEC variable checked",
                path.display()
            );
        }
    }
}

/// `sh_size` of section `name` from `llvm-readelf -S` (the Size column, hex).
fn section_size(obj: &Path, name: &str) -> Option<u64> {
    let text = loader_util::llvm("llvm-readelf-19", &["-S", "--wide"], obj)?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(']').nth(1)?.split_whitespace().collect();
        (f.first() == Some(&name))
            .then(|| u64::from_str_radix(f.get(4)?, 16).ok())
            .flatten()
    })
}

/// `obj` with .BTF and .BTF.ext removed by `llvm-objcopy-19` (as if built without `-g`).
fn without_btf(obj: &Path) -> Option<Vec<u8>> {
    let out = std::env::temp_dir().join(format!(
        "bpfkit_loader_nobtf_{}_{}",
        std::process::id(),
        obj.file_name()?.to_string_lossy()
    ));
    let args = [
        "--remove-section=.BTF",
        "--remove-section=.BTF.ext",
        "--remove-section=.rel.BTF",
        "--remove-section=.rel.BTF.ext",
    ];
    let status = std::process::Command::new("llvm-objcopy-19")
        .args(args)
        .arg(obj)
        .arg(&out)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("llvm-objcopy-19 failed on {}: {s}", obj.display()),
        Err(e) => {
            println!("skipped: llvm-objcopy-19 not available ({e})");
            return None;
        }
    }
    let bytes = std::fs::read(&out).ok();
    let _ = std::fs::remove_file(&out);
    bytes
}

#[test]
fn objects_without_btf() {
    for (path, obj) in loader_util::parsed("legacy_maps") {
        let Some(bytes) = without_btf(&path) else {
            return;
        };
        let bare = Object::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(bare.btf.is_none() && bare.kernel_btf.is_none());
        assert_eq!(bare.maps, obj.maps, "legacy maps need no BTF");
        for (a, b) in bare.programs.iter().zip(&obj.programs) {
            assert_eq!(a.insns, b.insns, "{}: same code without BTF", a.name);
            assert!(a.line_info.is_empty() && a.func_info.is_empty());
        }
    }
    for (path, _) in loader_util::objects("sockex1") {
        let Some(bytes) = without_btf(&path) else {
            return;
        };
        // BTF-defined maps cannot be read without BTF (libbpf refuses them too).
        assert!(
            matches!(Object::parse(&bytes), Err(bpfkit::loader::LoadError::Section { ref section, .. }) if section == ".maps"),
            "{:?}",
            Object::parse(&bytes)
        );
    }
}
