//! Helper functions: their ids and kernel names, prototypes and bodies (the runtime side of
//! `include/uapi/linux/bpf.h`'s helper list).

pub mod csum;
pub mod names;
pub mod printk;
pub mod probe;
pub mod skb_ops;

pub use names::{helper_id, helper_name, HELPER_NAMES};
