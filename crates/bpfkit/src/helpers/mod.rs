//! Helper functions: each declared once with its id, kernel name, prototype and body
//! ([`def::HelperDef`]), grouped by family, and gathered in [`registry`]. The runtime's
//! verifier environment and the interpreter's helper table both come from the registry.

pub mod abi;
pub mod csum;
pub mod def;
pub mod map_helpers;
pub mod names;
pub mod packet;
pub mod perf_event;
pub mod printk;
pub mod probe;
pub mod redirect_map;
pub mod registry;
pub mod ringbuf;
pub mod skb_ops;
pub mod stack;
pub mod task;
pub mod trace;
pub mod tunnel;
pub mod vlan;
pub mod xdp;

pub use names::{helper_id, helper_name, HELPER_NAMES};
pub use trace::{read_trace_pipe, TraceLine};
