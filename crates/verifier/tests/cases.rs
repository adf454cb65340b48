//! Every case of the table (`tests/data/cases.txt`, expectations recorded from Linux 6.18)
//! gives the kernel's verdict, errno and first error line on bpfkit.

mod common;

#[test]
fn every_case_matches_the_kernel_verdict_and_first_error_line() {
    let cases = common::load_cases();
    assert!(cases.len() >= 100, "the table has {} cases", cases.len());
    let mut failures = Vec::new();
    let mut xfail = 0;
    for c in &cases {
        let got = common::run_bpfkit(c);
        if c.xfail.is_some() {
            xfail += 1;
            continue;
        }
        if got != c.expect {
            failures.push(format!(
                "{}: expected {:?}, got {:?}",
                c.name, c.expect, got
            ));
        }
    }
    eprintln!("{} cases, {} known differences", cases.len(), xfail);
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_rule_family_has_an_accept_and_a_reject_case() {
    let cases = common::load_cases();
    for family in [
        "cfg", "reg", "alu", "stack", "ctx", "map", "helper", "pkt", "call", "jmp",
    ] {
        let of: Vec<_> = cases
            .iter()
            .filter(|c| c.name.starts_with(&format!("{family}/")))
            .collect();
        assert!(
            of.iter().any(|c| c.expect.is_none()),
            "{family}: no accepted case"
        );
        assert!(
            of.iter().any(|c| c.expect.is_some()),
            "{family}: no rejected case"
        );
    }
}
