//! Text assemblers: the conformance suite's syntax and the kernel/LLVM syntax. (In progress.)
