//! The flow dissector (examples/flow_dissector) gives the same hash in every engine: bpfkit's
//! interpreter, `bpfkit run`, and the Linux kernel (its XDP build, through BPF_PROG_TEST_RUN),
//! each compared with the same C compiled natively, on a corpus of IPv4 / IPv6, TCP / UDP,
//! VLAN-tagged, truncated and non-IP packets. (The native build itself is checked against the
//! documented MurmurHash3 of each packet's known 5-tuple in the example's own tests.)

use bpfkit_flow_dissector::{native, packets, PROGRAM_XDP};

#[test]
fn kernel_xdp_build_matches_native() {
    if let Err(why) = bpfkit_kernel::available() {
        println!("skipped: {why}");
        return;
    }
    let loaded = bpfkit_kernel::ProgLoad::new(bpfkit_kernel::names::PROG_XDP).load(PROGRAM_XDP);
    let prog = match loaded.result {
        Ok(prog) => prog,
        Err(errno) => panic!(
            "the kernel rejected the flow dissector ({errno}):\n{}",
            loaded.log
        ),
    };
    let mut compared = 0;
    for case in packets::corpus() {
        // XDP test runs need at least an Ethernet header's worth of data.
        if case.packet.len() < 14 {
            continue;
        }
        let run = match bpfkit_kernel::prog_test_run(&prog, &case.packet, None, 1) {
            Ok(run) => run,
            Err(errno) => panic!("{}: BPF_PROG_TEST_RUN failed: {errno}", case.name),
        };
        assert_eq!(run.retval, native::flow_hash(&case.packet), "{}", case.name);
        compared += 1;
    }
    assert!(compared > 20, "only {compared} packets compared");
}
