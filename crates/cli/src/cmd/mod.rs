//! The subcommands, one module each.

pub mod asm;
pub mod conformance;
pub mod disasm;
pub mod run;
pub mod verify;
