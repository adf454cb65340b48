//! bpfkit-vm: executing eBPF programs, knowing nothing of maps or specific helpers.
#![deny(unsafe_op_in_unsafe_fn)]
