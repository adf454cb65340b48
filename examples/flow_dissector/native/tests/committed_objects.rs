//! The committed eBPF object and raw programs are what build.sh makes from flow_dissector.c
//! today, so an edit of the C cannot silently leave the engines running stale code. Skips, saying
//! so, where clang-19 or llvm-objcopy-19 is not installed.

use std::path::Path;
use std::process::Command;

fn tool_available(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
}

#[test]
fn committed_outputs_match_a_fresh_build() -> Result<(), Box<dyn std::error::Error>> {
    for tool in ["clang-19", "llvm-objcopy-19"] {
        if !tool_available(tool) {
            println!("skipped: {tool} is not installed");
            return Ok(());
        }
    }
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::env::temp_dir().join(format!("bpfkit-flow-dissector-{}", std::process::id()));
    let status = Command::new("bash")
        .arg(example.join("build.sh"))
        .arg(&out)
        .status()?;
    assert!(status.success(), "build.sh failed: {status}");
    for file in [
        "flow_dissector.o",
        "flow_dissector.bin",
        "flow_dissector_ctx.bin",
        "flow_dissector_xdp.bin",
    ] {
        let committed = std::fs::read(example.join(file))?;
        let fresh = std::fs::read(out.join(file))?;
        assert!(
            committed == fresh,
            "{file} differs from a fresh build: run examples/flow_dissector/build.sh and commit"
        );
    }
    std::fs::remove_dir_all(&out)?;
    Ok(())
}
