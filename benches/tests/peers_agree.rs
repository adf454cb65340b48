//! The peers compute what the C source says: rbpf's interpreter, running the committed eBPF
//! program, returns the native build's hash for every packet of the corpus. (Without this, the
//! benchmark could compare engines that do different work.)

use bpfkit_benches::peers::RbpfFlow;
use bpfkit_flow_dissector::{native, packets, PROGRAM_CTX};

#[test]
fn rbpf_matches_native_on_every_packet() -> Result<(), std::io::Error> {
    let rbpf = RbpfFlow::new(PROGRAM_CTX)?;
    for case in packets::corpus() {
        let expected = u64::from(native::flow_hash(&case.packet));
        assert_eq!(rbpf.run(&case.packet)?, expected, "{}", case.name);
    }
    Ok(())
}
