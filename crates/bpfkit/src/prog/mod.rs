//! Programs at run time: the contexts they run on and how their context accesses are mapped
//! onto bpfkit's own layouts.

pub mod skb;
