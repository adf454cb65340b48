//! Differential test: every case of the table is loaded into the running Linux kernel with
//! `BPF_PROG_LOAD` (privileged, log level 1) and must get the same verdict from bpfkit; the
//! first error lines are compared and reported. Skips, saying why, where `bpf()` is unavailable.

mod common;

use bpfkit_kernel::{map_create, resolve_map_indices, ProgLoad};

#[test]
fn bpfkit_and_linux_agree_on_every_case() {
    if let Err(why) = bpfkit_kernel::available() {
        eprintln!("skipped: {why}");
        return;
    }
    let cases = common::load_cases();
    let (mut verdict_ok, mut line_ok, mut log_ok) = (0, 0, 0);
    let mut disagreements = Vec::new();
    for c in &cases {
        let maps: Vec<_> = c
            .maps
            .iter()
            .map(|m| {
                map_create(
                    m.map_type.kernel_id(),
                    m.key_size,
                    m.value_size,
                    m.max_entries,
                    0,
                )
            })
            .collect::<Result<_, _>>()
            .expect("map_create");
        let fds: Vec<i32> = maps.iter().map(|m| m.fd()).collect();
        let mut insns = c.insns.clone();
        let mut load = ProgLoad::new(c.prog_type.kernel_id());
        load.license = &c.license;
        let kernel = if resolve_map_indices(&mut insns, &fds).is_ok() {
            let l = load.load(&insns);
            if common::normalise_log(&l.log) == common::normalise_log(&common::bpfkit_log(c)) {
                log_ok += 1;
            }
            match l.result {
                Ok(_) => None,
                Err(e) => Some((e.0, common::first_error_line(&l.log))),
            }
        } else {
            // A map handle that names no map: bpfkit reports it as the kernel does a bad fd.
            Some((9, String::new()))
        };
        let ours = common::run_bpfkit(c);
        if kernel.is_none() == ours.is_none() {
            verdict_ok += 1;
        } else if c.xfail.is_none() {
            disagreements.push(format!(
                "{}: kernel {:?}, bpfkit {:?}",
                c.name, kernel, ours
            ));
        }
        if kernel == ours {
            line_ok += 1;
        } else if kernel.is_some() && ours.is_some() {
            eprintln!(
                "first line differs in {}: kernel {:?}, bpfkit {:?}",
                c.name, kernel, ours
            );
        }
    }
    eprintln!(
        "{} cases: verdict agrees on {verdict_ok}, errno and first error line on {line_ok}, \
         whole level-1 log (map addresses aside) on {log_ok}",
        cases.len()
    );
    assert!(
        disagreements.is_empty(),
        "verdicts differ:\n{}",
        disagreements.join("\n")
    );
}
