//! The verifier case table (`tests/data/cases.txt`): parsing and running one case on bpfkit.

#![allow(dead_code)] // Each test binary uses a different part of this shared module.

use bpfkit_isa::Insn;
use bpfkit_verifier::env::{MapInfo, MapType, ProgType};
use bpfkit_verifier::testing::TestEnv;
use bpfkit_verifier::{verify, Options};

/// One case of the table.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub prog_type: ProgType,
    pub maps: Vec<MapInfo>,
    pub license: String,
    /// `None` for accept, `Some((errno, first error line))` for reject.
    pub expect: Option<(i32, String)>,
    pub xfail: Option<String>,
    pub insns: Vec<Insn>,
}

fn parse_map(s: &str) -> MapInfo {
    let p: Vec<&str> = s.split(':').collect();
    let n = |i: usize| p[i].parse::<u32>().expect("map field");
    MapInfo {
        map_type: MapType::from_name(p[0]).expect("map type"),
        key_size: n(1),
        value_size: n(2),
        max_entries: n(3),
    }
}

/// Parses the table.
pub fn load_cases() -> Vec<Case> {
    let text = include_str!("../data/cases.txt");
    let mut cases: Vec<Case> = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix("== ") {
            cases.push(Case {
                name: name.to_string(),
                prog_type: ProgType::SocketFilter,
                maps: Vec::new(),
                license: "GPL".into(),
                expect: None,
                xfail: None,
                insns: Vec::new(),
            });
            continue;
        }
        let c = cases.last_mut().expect("a case header first");
        if let Some(t) = line.strip_prefix("type: ") {
            c.prog_type = ProgType::from_name(t).expect("program type");
        } else if let Some(m) = line.strip_prefix("map: ") {
            c.maps.push(parse_map(m));
        } else if let Some(l) = line.strip_prefix("license: ") {
            c.license = l.to_string();
        } else if let Some(x) = line.strip_prefix("xfail: ") {
            c.xfail = Some(x.to_string());
        } else if line.starts_with("note: ") {
        } else if let Some(e) = line.strip_prefix("expect: ") {
            if e != "accept" {
                let rest = e.strip_prefix("reject ").expect("accept or reject");
                let (errno, msg) = rest.split_once(' ').unwrap_or((rest, ""));
                c.expect = Some((errno.parse().expect("errno"), msg.to_string()));
            }
        } else {
            let f: Vec<&str> = line.split_whitespace().collect();
            let code = u8::from_str_radix(f[0], 16).expect("code");
            let n = |i: usize| f[i].parse::<i64>().expect("field");
            c.insns.push(Insn::new(
                code,
                n(1) as u8,
                n(2) as u8,
                n(3) as i16,
                n(4) as i32,
            ));
        }
    }
    cases
}

/// The first error line of a level-1 log: the line after the last instruction or state line.
pub fn first_error_line(log: &str) -> String {
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| !l.starts_with("processed "))
        .collect();
    let is_insn = |l: &str| {
        let digits = l.bytes().take_while(u8::is_ascii_digit).count();
        digits > 0 && l[digits..].starts_with(": ")
    };
    let last = lines.iter().rposition(|l| is_insn(l));
    let line = match last {
        Some(i) => lines.get(i + 1),
        None => lines.first(),
    };
    let line = line.copied().unwrap_or("");
    line.split("processed ").next().unwrap_or("").to_string()
}

/// Runs the case on bpfkit: `None` for accept, `Some((errno, first error line))` for reject.
/// bpfkit's whole log at level 1 for a case (accepted or not).
pub fn bpfkit_log(c: &Case) -> String {
    bpfkit_log_at(c, 1)
}

/// bpfkit's whole log at `level` for a case (accepted or not).
pub fn bpfkit_log_at(c: &Case, level: u32) -> String {
    let env = TestEnv::with_maps(c.maps.clone());
    let opts = Options {
        prog_type: c.prog_type,
        log_level: level,
        license: c.license.clone(),
        ..Options::default()
    };
    match verify(&c.insns, &env, &opts) {
        Ok(v) => v.log().to_string(),
        Err(r) => r.log,
    }
}

pub fn run_bpfkit(c: &Case) -> Option<(i32, String)> {
    let env = TestEnv::with_maps(c.maps.clone());
    let opts = Options {
        prog_type: c.prog_type,
        log_level: 1,
        license: c.license.clone(),
        ..Options::default()
    };
    match verify(&c.insns, &env, &opts) {
        Ok(_) => None,
        Err(r) => Some((r.errno.0, first_error_line(&r.log))),
    }
}
