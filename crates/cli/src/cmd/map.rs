//! `bpfkit map dump OBJ [--map NAME] [--json]`: an object's maps after instantiation (global
//! data holds its initial values), and the map printers `bpfkit run` shares: bpftool's plain
//! `key: .. value: ..` lines and its `--json` shape (key and value as arrays of `"0x.."`
//! strings in memory order, and a `formatted` form from the map's BTF types where the object
//! has them, as bpftool prints it).

use super::btf_fmt;
use anyhow::Context;
use bpfkit::instantiate::{instantiate, Instance, InstantiateOptions};
use bpfkit::loader::{Btf, Object};
use bpfkit::Bpf;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `bpfkit map ...`.
#[derive(clap::Subcommand)]
pub enum MapCmd {
    /// Dump an object's maps after creating them (global data shows its initial values).
    Dump(DumpArgs),
}

/// Arguments of `bpfkit map dump`.
#[derive(clap::Args)]
pub struct DumpArgs {
    /// A clang-built ELF object.
    pub object: PathBuf,
    /// Only the map with this name.
    #[arg(long)]
    pub map: Option<String>,
    /// One JSON document, maps by name as `bpftool map dump --json` prints them.
    #[arg(long)]
    pub json: bool,
}

/// Runs `bpfkit map ...`.
pub fn run(cmd: MapCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        MapCmd::Dump(args) => {
            let (bpf, inst, obj) = instantiate_file_with_object(&args.object)?;
            let btf = object_btf(&obj);
            let maps: Vec<_> = inst
                .maps
                .iter()
                .filter(|m| args.map.as_ref().is_none_or(|n| &m.name == n))
                .collect();
            if let Some(n) = &args.map {
                if maps.is_empty() {
                    anyhow::bail!("{}: no map named `{n}`", args.object.display());
                }
            }
            if args.json {
                let mut out = String::from("{");
                for (i, m) in maps.iter().enumerate() {
                    let sep = if i == 0 { "" } else { "," };
                    let _ = write!(
                        out,
                        "{sep}{}:{}",
                        json_str(&m.name),
                        map_json(&bpf, m.fd, MapFormat::of(btf.as_ref(), &obj, m.index))?
                    );
                }
                out.push_str("}\n");
                emit(&out)?;
            } else {
                let mut out = String::new();
                for m in maps {
                    let fmt = MapFormat::of(btf.as_ref(), &obj, m.index);
                    out.push_str(&map_text(&bpf, &m.name, m.fd, fmt)?);
                }
                emit(&out)?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The object's BTF with data section sizes and variable offsets filled in (what the kernel
/// would get), for formatting map contents.
pub fn object_btf(obj: &Object) -> Option<Btf> {
    obj.kernel_btf.as_deref().and_then(|b| Btf::parse(b).ok())
}

/// The BTF types of a map's key and value, when the object describes them.
#[derive(Clone, Copy)]
pub struct MapFormat<'a> {
    btf: &'a Btf,
    key: u32,
    value: u32,
}

impl<'a> MapFormat<'a> {
    /// The format of map `index` of `obj`, if it has BTF types.
    pub fn of(btf: Option<&'a Btf>, obj: &Object, index: usize) -> Option<Self> {
        let def = obj.maps.get(index)?;
        let btf = btf?;
        (def.btf_key_type_id != 0 || def.btf_value_type_id != 0).then_some(Self {
            btf,
            key: def.btf_key_type_id,
            value: def.btf_value_type_id,
        })
    }

    fn key(&self, b: &[u8]) -> Option<String> {
        (self.key != 0).then(|| btf_fmt::format(self.btf, self.key, b))
    }

    fn value(&self, b: &[u8]) -> Option<String> {
        (self.value != 0).then(|| btf_fmt::format(self.btf, self.value, b))
    }
}

/// Writes `text` to standard output; a reader that went away (`| head`) is not an error.
pub fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Reads, parses and instantiates an object file.
pub fn instantiate_file(path: &Path) -> anyhow::Result<(Bpf, Instance)> {
    instantiate_file_with_object(path).map(|(b, i, _)| (b, i))
}

/// [`instantiate_file`], also returning the parsed object.
pub fn instantiate_file_with_object(path: &Path) -> anyhow::Result<(Bpf, Instance, Object)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let obj = Object::parse(&bytes).with_context(|| format!("{}", path.display()))?;
    let bpf = Bpf::new();
    let inst = instantiate(&bpf, &obj, &InstantiateOptions::default())
        .with_context(|| format!("{}", path.display()))?;
    Ok((bpf, inst, obj))
}

/// Every (key, value) of the map behind `fd`, in iteration order. Maps that cannot be read
/// from user space (prog arrays, ring buffers) give an empty list.
pub fn entries(bpf: &Bpf, fd: bpfkit::Fd) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut key: Option<Vec<u8>> = None;
    while let Ok(k) = bpf.map_next_key(fd, key.as_deref()) {
        if let Ok(v) = bpf.map_lookup(fd, &k) {
            out.push((k.clone(), v));
        }
        if out.len() > 1_000_000 {
            break;
        }
        key = Some(k);
    }
    out
}

fn hex_bytes(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// ` (N)`: a 4- or 8-byte little-endian integer in decimal, for reading counters at a glance;
/// empty for other sizes.
fn as_number(b: &[u8]) -> String {
    match b.len() {
        4 => format!(" ({})", u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        8 => {
            let mut w = [0u8; 8];
            w.copy_from_slice(b);
            format!(" ({})", u64::from_le_bytes(w))
        }
        _ => String::new(),
    }
}

/// A map as text: a header line, then bpftool's `key: .. value: ..` lines; all-zero values of
/// array maps are summarised in one line.
pub fn map_text(
    bpf: &Bpf,
    name: &str,
    fd: bpfkit::Fd,
    fmt: Option<MapFormat<'_>>,
) -> anyhow::Result<String> {
    let info = bpf.map_info(fd).with_context(|| format!("map {name}"))?;
    let mut s = format!(
        "map {name}: {} key {}B value {}B max_entries {}\n",
        info.map_type.name(),
        info.key_size,
        info.value_size,
        info.max_entries
    );
    let mut zeros = 0;
    let is_array = info.map_type.name().contains("array");
    for (k, v) in entries(bpf, fd) {
        if is_array && v.iter().all(|&b| b == 0) {
            zeros += 1;
            continue;
        }
        let key = fmt
            .and_then(|f| f.key(&k))
            .unwrap_or_else(|| format!("{}{}", hex_bytes(&k), as_number(&k)));
        let value = fmt
            .and_then(|f| f.value(&v))
            .unwrap_or_else(|| format!("{}{}", hex_bytes(&v), as_number(&v)));
        let _ = writeln!(s, "  key: {key}  value: {value}");
    }
    if zeros > 0 {
        let _ = writeln!(s, "  ({zeros} entries with all-zero values not shown)");
    }
    Ok(s)
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Bytes as bpftool's JSON array of `"0x.."` strings.
pub fn json_bytes(b: &[u8]) -> String {
    let items: Vec<String> = b.iter().map(|x| format!("\"0x{x:02x}\"")).collect();
    format!("[{}]", items.join(","))
}

/// A map as `bpftool map dump --json` prints it: an array of `{"key": [...], "value": [...]}`
/// (per-CPU maps: `"values": [{"cpu": N, "value": [...]}]`).
pub fn map_json(bpf: &Bpf, fd: bpfkit::Fd, fmt: Option<MapFormat<'_>>) -> anyhow::Result<String> {
    let info = bpf.map_info(fd)?;
    let percpu = info.map_type.is_percpu();
    let vs = info.value_size as usize;
    let stride = vs.div_ceil(8) * 8;
    let items: Vec<String> = entries(bpf, fd)
        .into_iter()
        .map(|(k, v)| {
            if percpu && stride > 0 {
                let cpus: Vec<String> = v
                    .chunks(stride)
                    .enumerate()
                    .map(|(cpu, c)| {
                        format!(
                            "{{\"cpu\":{cpu},\"value\":{}}}",
                            json_bytes(&c[..vs.min(c.len())])
                        )
                    })
                    .collect();
                format!(
                    "{{\"key\":{},\"values\":[{}]}}",
                    json_bytes(&k),
                    cpus.join(",")
                )
            } else {
                let formatted = match fmt {
                    Some(f) => format!(
                        ",\"formatted\":{{\"key\":{},\"value\":{}}}",
                        f.key(&k).unwrap_or_else(|| json_bytes(&k)),
                        f.value(&v).unwrap_or_else(|| json_bytes(&v))
                    ),
                    None => String::new(),
                };
                format!(
                    "{{\"key\":{},\"value\":{}{formatted}}}",
                    json_bytes(&k),
                    json_bytes(&v)
                )
            }
        })
        .collect();
    Ok(format!("[{}]", items.join(",")))
}
