//! Programs at run time: the contexts they run on and how their context accesses are mapped
//! onto bpfkit's own layouts.

pub mod env;
pub mod ld_abs;
pub mod load;
pub mod rewrite;
pub mod run;
pub mod skb;
pub mod test_ctx;
pub mod xdp;
