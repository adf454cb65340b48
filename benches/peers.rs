//! The peers bpfkit is measured against: the `rbpf` crate's interpreter, native C and the Linux
//! kernel.

use bpfkit_flow_dissector::native::FlowCtx;

/// The flow dissector's `flow` program loaded into rbpf's interpreter.
///
/// rbpf's `EbpfVmMbuff` hands the program `r1` = a metadata buffer, here the 16 bytes of a
/// [`FlowCtx`] (`{u64 data; u64 data_end}`), and allows loads from that buffer, the packet and
/// its stack. (`EbpfVmFixedMbuff` builds the same buffer, but its `execute_program` borrows the
/// packet for the VM's whole lifetime, so it cannot run one packet repeatedly.)
pub struct RbpfFlow<'a> {
    vm: rbpf::EbpfVmMbuff<'a>,
}

impl<'a> RbpfFlow<'a> {
    /// Loads `program` (raw instructions) into rbpf, which runs its own load-time checks.
    pub fn new(program: &'a [u8]) -> Result<Self, std::io::Error> {
        Ok(Self {
            vm: rbpf::EbpfVmMbuff::new(Some(program))?,
        })
    }

    /// Runs the program on a context built in advance by [`flow_ctx_bytes`] for `packet`.
    pub fn run_with_ctx(&self, packet: &[u8], ctx: &[u8; 16]) -> Result<u64, std::io::Error> {
        self.vm.execute_program(packet, ctx)
    }

    /// Runs the program on `packet`.
    pub fn run(&self, packet: &[u8]) -> Result<u64, std::io::Error> {
        self.run_with_ctx(packet, &flow_ctx_bytes(packet))
    }
}

/// The bytes of the [`FlowCtx`] of `packet`, as rbpf's metadata buffer.
pub fn flow_ctx_bytes(packet: &[u8]) -> [u8; 16] {
    let ctx = FlowCtx::new(packet);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&ctx.data.to_le_bytes());
    bytes[8..].copy_from_slice(&ctx.data_end.to_le_bytes());
    bytes
}

/// The flow dissector's `xdp` build loaded into the running kernel (JIT-compiled there when the
/// kernel's JIT is on), run through `BPF_PROG_TEST_RUN`.
pub struct KernelFlow {
    prog: bpfkit_kernel::Prog,
}

impl KernelFlow {
    /// Loads `xdp_program` as an XDP program, or says why the kernel cannot be used here.
    pub fn new(xdp_program: &[u8]) -> Result<Self, String> {
        bpfkit_kernel::available()?;
        let loaded = bpfkit_kernel::ProgLoad::new(bpfkit_kernel::names::PROG_XDP).load(xdp_program);
        match loaded.result {
            Ok(prog) => Ok(Self { prog }),
            Err(errno) => Err(format!(
                "the kernel rejected the program ({errno}): {}",
                loaded.log
            )),
        }
    }

    /// Runs the program `repeat` times on `packet`: its return value and the kernel's own mean
    /// time per run in nanoseconds (which excludes the system call's overhead).
    pub fn run(&self, packet: &[u8], repeat: u32) -> Result<(u32, u32), String> {
        bpfkit_kernel::prog_test_run(&self.prog, packet, None, repeat)
            .map(|run| (run.retval, run.duration_ns))
            .map_err(|errno| format!("BPF_PROG_TEST_RUN failed: {errno}"))
    }
}
