//! bpfkit-kernel: the running Linux kernel as a test oracle, through the `bpf()` system call.
#![deny(unsafe_op_in_unsafe_fn)]
