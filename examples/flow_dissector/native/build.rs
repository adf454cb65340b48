//! Compiles ../flow_dissector.c natively (the reference the tests and benches compare the eBPF
//! engines with). Optimised like the eBPF build (-O2) whatever the cargo profile, and with
//! clang-19 when it is installed and `CC` is not set, so that the native code and the eBPF
//! object come from the same compiler; otherwise with the `cc` crate's default compiler.

use std::process::{Command, Stdio};

fn main() {
    println!("cargo:rerun-if-changed=../flow_dissector.c");
    println!("cargo:rerun-if-env-changed=CC");
    let mut build = cc::Build::new();
    build
        .file("../flow_dissector.c")
        .opt_level(2)
        .warnings(true)
        .extra_warnings(true);
    let clang19 = Command::new("clang-19")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if std::env::var_os("CC").is_none() && clang19 {
        build.compiler("clang-19");
    }
    build.compile("flow_dissector_native");
}
