//! The interpreter's run-time machinery, in both modes: calls and frames, tail calls, helpers
//! and the regions they return, LD_ABS / LD_IND, and the checked interpreter's typed errors.
//!
//! Programs are built slot by slot with the opcode values of RFC 9669 §3/§4; expected results
//! come from the RFC and from Linux's documented behaviour, cited per test.

#![expect(clippy::unwrap_used, reason = "in tests a panic is the failure report")]

use bpfkit_isa::Insn;
use bpfkit_vm::{
    ErrorKind, Helper, Helpers, Program, RunCtx, TailCallHook, TailCallTarget, Vm, VmError,
};

fn mov64_k(d: u8, k: i32) -> Insn {
    Insn::new(0xb7, d, 0, 0, k)
}
fn mov64_x(d: u8, s: u8) -> Insn {
    Insn::new(0xbf, d, s, 0, 0)
}
fn add64_x(d: u8, s: u8) -> Insn {
    Insn::new(0x0f, d, s, 0, 0)
}
fn add64_k(d: u8, k: i32) -> Insn {
    Insn::new(0x07, d, 0, 0, k)
}
fn exit() -> Insn {
    Insn::new(0x95, 0, 0, 0, 0)
}
fn call(id: i32) -> Insn {
    Insn::new(0x85, 0, 0, 0, id)
}
fn call_local(off: i32) -> Insn {
    Insn::new(0x85, 0, 1, 0, off)
}
fn ldxdw(d: u8, s: u8, off: i16) -> Insn {
    Insn::new(0x79, d, s, off, 0)
}
fn ldxb(d: u8, s: u8, off: i16) -> Insn {
    Insn::new(0x71, d, s, off, 0)
}
fn stxdw(d: u8, s: u8, off: i16) -> Insn {
    Insn::new(0x7b, d, s, off, 0)
}

/// Runs `insns` checked, and fast when the checked run succeeded (which justifies it).
fn run_both(insns: &[Insn], helpers: &Helpers, mem: &mut [u8]) -> Result<u64, VmError> {
    let mut copy = mem.to_vec();
    let checked = {
        let program = Program::new(insns, helpers)?;
        program.run_checked(&RunCtx::new().with_mem(&mut copy))?
    };
    // SAFETY: the checked run of the same program on the same input touched only valid memory
    // and nested at most MAX_CALL_FRAMES frames; the fast run executes the same path.
    let vm = unsafe { Vm::from_unverified(insns, helpers) }?;
    let fast = vm.run(mem);
    assert_eq!(checked, fast, "checked and fast runs disagree");
    assert_eq!(copy, mem, "checked and fast runs left different memory");
    Ok(fast)
}

fn checked_err(insns: &[Insn], mem: &mut [u8]) -> VmError {
    let program = match Program::new(insns, &Helpers::new()) {
        Ok(p) => p,
        Err(e) => return e,
    };
    program
        .run_checked(&RunCtx::new().with_mem(mem))
        .unwrap_err()
}

#[test]
fn local_calls_preserve_r6_to_r9_and_get_a_fresh_frame() {
    // RFC 9669 §4.3.1 / Linux: a local call's callee has its own frame; r6-r9 are callee-saved.
    let prog = [
        mov64_k(6, 6),
        stxdw(10, 6, -8),
        call_local(4), // -> slot 7
        add64_x(0, 6),
        ldxdw(1, 10, -8),
        add64_x(0, 1),
        exit(),
        // callee: reads its own fresh frame (zeroed), clobbers r6, writes its frame.
        ldxdw(0, 10, -8), // 0: a fresh frame
        mov64_k(6, 100),
        stxdw(10, 6, -8),
        add64_k(0, 1),
        exit(),
    ];
    assert_eq!(run_both(&prog, &Helpers::new(), &mut []), Ok(1 + 6 + 6));
}

#[test]
fn call_depth_beyond_eight_frames_is_an_error() {
    // Linux: MAX_CALL_FRAMES = 8 ("the call stack of 9 frames is too deep").
    let prog = [call_local(-1), exit()];
    let e = checked_err(&prog, &mut []);
    assert_eq!(e.kind, ErrorKind::CallDepth);
    assert_eq!(e.pc, 0);
    // Seven nested calls (eight frames) are fine. Each link at slot 3i calls slot 3i + 3, then
    // adds 1 to the result.
    let mut chain = Vec::new();
    for _ in 0..7 {
        chain.push(call_local(2));
        chain.push(add64_k(0, 1));
        chain.push(exit());
    }
    chain.push(mov64_k(0, 0));
    chain.push(exit());
    assert_eq!(run_both(&chain, &Helpers::new(), &mut []), Ok(7));
    // One more level is too deep.
    let mut deeper = Vec::new();
    for _ in 0..8 {
        deeper.push(call_local(2));
        deeper.push(add64_k(0, 1));
        deeper.push(exit());
    }
    deeper.push(mov64_k(0, 0));
    deeper.push(exit());
    assert_eq!(checked_err(&deeper, &mut []).kind, ErrorKind::CallDepth);
}

#[test]
fn callee_may_use_the_callers_stack_through_a_pointer() {
    // Linux lets a callee access its caller's stack through a PTR_TO_STACK argument.
    let prog = [
        mov64_k(2, 42),
        stxdw(10, 2, -8),
        mov64_x(1, 10),
        add64_k(1, -8),
        call_local(1),
        exit(),
        ldxdw(0, 1, 0),
        exit(),
    ];
    assert_eq!(run_both(&prog, &Helpers::new(), &mut []), Ok(42));
}

#[test]
fn stack_and_memory_bounds_are_checked() {
    // One byte below the 512-byte frame.
    let e = checked_err(&[ldxb(0, 10, -513), exit()], &mut []);
    assert!(
        matches!(
            e.kind,
            ErrorKind::OutOfBounds {
                size: 1,
                write: false,
                ..
            }
        ),
        "{e}"
    );
    // At r10 itself (above the frame).
    let e = checked_err(&[ldxb(0, 10, 0), exit()], &mut []);
    assert!(matches!(e.kind, ErrorKind::OutOfBounds { .. }));
    // The last byte of memory is fine, one past is not.
    let mut mem = [7u8; 4];
    assert_eq!(
        run_both(&[ldxb(0, 1, 3), exit()], &Helpers::new(), &mut mem),
        Ok(7)
    );
    let e = checked_err(&[mov64_k(0, 0), ldxdw(0, 1, 0), exit()], &mut mem);
    assert_eq!(e.pc, 1);
    assert!(matches!(e.kind, ErrorKind::OutOfBounds { size: 8, .. }));
    // Without memory, r1 = 0: a NULL dereference.
    let p = Program::new(&[ldxb(0, 1, 0), exit()], &Helpers::new()).unwrap();
    let e = p.run_checked(&RunCtx::new()).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::OutOfBounds { addr: 0, .. }));
}

#[test]
fn uninitialised_register_reads_are_refused() {
    // Linux: "R0 !read_ok" for `or r0, r10` as the first instruction (negative/error.data).
    let e = checked_err(&[Insn::new(0x4f, 0, 10, 0, 0), exit()], &mut []);
    assert_eq!((e.pc, e.kind.clone()), (0, ErrorKind::UninitRegister(0)));
    assert_eq!(e.to_string(), "instruction 0: R0 !read_ok");
    // exit without setting r0.
    assert_eq!(
        checked_err(&[exit()], &mut []).kind,
        ErrorKind::UninitRegister(0)
    );
    // r1-r5 are dead after a helper call.
    extern "C" fn zero(_: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
        0
    }
    let mut h = Helpers::new();
    h.set(1, Helper::scalar(zero));
    let p = Program::new(&[mov64_k(1, 1), call(1), mov64_x(0, 1), exit()], &h).unwrap();
    let e = p.run_checked(&RunCtx::new()).unwrap_err();
    assert_eq!((e.pc, e.kind), (2, ErrorKind::UninitRegister(1)));
}

#[test]
fn the_budget_stops_endless_loops() {
    let prog = [mov64_k(0, 0), Insn::new(0x05, 0, 0, -1, 0), exit()];
    let p = Program::new(&prog, &Helpers::new()).unwrap();
    let e = p.run_checked(&RunCtx::new().with_budget(1000)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BudgetExceeded { budget: 1000 });
    assert_eq!(e.pc, 1);
}

#[test]
fn translation_rejects_what_no_run_may_do() {
    let none = Helpers::new();
    let err = |p: &[Insn]| Program::new(p, &none).unwrap_err();
    assert_eq!(err(&[]).kind, ErrorKind::EmptyProgram);
    // r10 = 0: "frame pointer is read only".
    assert_eq!(
        err(&[mov64_k(10, 0), exit()]).kind,
        ErrorKind::FramePointerWrite
    );
    // Jumps out of range, into LD_IMM64.
    assert_eq!(
        err(&[Insn::new(0x05, 0, 0, 5, 0), exit()]).kind,
        ErrorKind::JumpOutOfRange { target: 6 }
    );
    let lddw = [
        Insn::new(0x05, 0, 0, 1, 0),
        Insn::new(0x18, 0, 0, 0, 1),
        Insn::new(0, 0, 0, 0, 0),
        exit(),
    ];
    assert_eq!(err(&lddw).kind, ErrorKind::JumpIntoLdImm64 { target: 2 });
    // Unknown helper, kfunc, pseudo LD_IMM64.
    assert_eq!(err(&[call(7), exit()]).kind, ErrorKind::UnknownHelper(7));
    assert!(matches!(
        err(&[Insn::new(0x85, 0, 2, 0, 9), exit()]).kind,
        ErrorKind::Unsupported(_)
    ));
    let map_fd = [
        Insn::new(0x18, 1, 1, 0, 3),
        Insn::new(0, 0, 0, 0, 0),
        exit(),
    ];
    assert!(matches!(err(&map_fd).kind, ErrorKind::Unsupported(_)));
    // Reserved fields: the isa decoder's error, with its index.
    let e = err(&[mov64_k(0, 0), Insn::new(0x07, 0, 1, 0, 1), exit()]);
    assert_eq!(e.pc, 1);
    assert!(matches!(e.kind, ErrorKind::Encoding(_)));
}

#[test]
fn falling_off_the_end_is_an_error() {
    let e = checked_err(&[mov64_k(0, 0)], &mut []);
    assert_eq!((e.pc, e.kind), (1, ErrorKind::FellOffEnd));
}

#[test]
fn ld_abs_reads_network_order_and_out_of_range_returns_zero() {
    // LD_ABS: r0 = ntohl(*(u32 *)(packet + 2)); Linux's bpf_skb_load_helper_32.
    let ld_abs_w = |k| Insn::new(0x20, 0, 0, 0, k);
    let ld_ind_h = |s, k| Insn::new(0x48, 0, s, 0, k);
    let mut pkt = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66];
    let prog = [mov64_x(6, 1), ld_abs_w(2), exit()];
    assert_eq!(run_both(&prog, &Helpers::new(), &mut pkt), Ok(0x2233_4455));
    // Offset 4 + 4 bytes > 7: the program ends with r0 = 0, skipping the rest.
    let prog = [mov64_x(6, 1), ld_abs_w(4), mov64_k(0, 9), exit()];
    assert_eq!(run_both(&prog, &Helpers::new(), &mut pkt), Ok(0));
    // LD_IND: src + imm, 16 bits; negative sums are out of range.
    let prog = [mov64_x(6, 1), mov64_k(7, 3), ld_ind_h(7, 2), exit()];
    assert_eq!(run_both(&prog, &Helpers::new(), &mut pkt), Ok(0x5566));
    let prog = [mov64_x(6, 1), mov64_k(7, -1), ld_ind_h(7, 0), exit()];
    assert_eq!(run_both(&prog, &Helpers::new(), &mut pkt), Ok(0));
    // In a subprogram the failure returns from that function only (gen_ld_abs emits `exit`).
    let prog = [
        mov64_x(6, 1),
        call_local(2),
        add64_k(0, 5),
        exit(),
        ld_abs_w(100),
        exit(),
    ];
    assert_eq!(run_both(&prog, &Helpers::new(), &mut pkt), Ok(5));
}

#[test]
fn helpers_get_r1_to_r5_and_return_regions_the_checked_run_accepts() {
    extern "C" fn sum(a: u64, b: u64, c: u64, d: u64, e: u64) -> u64 {
        a + 10 * b + 100 * c + 1000 * d + 10000 * e
    }
    static mut VALUE: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];
    extern "C" fn lookup(key: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
        if key == 1 {
            std::ptr::addr_of_mut!(VALUE).expose_provenance() as u64
        } else {
            0
        }
    }
    let mut h = Helpers::new();
    h.set(1, Helper::scalar(sum));
    // SAFETY: `lookup` returns NULL or the address of the 8-byte static VALUE.
    h.set(2, unsafe { Helper::returns_mem(lookup, 8, true) });
    let args = [
        mov64_k(1, 1),
        mov64_k(2, 2),
        mov64_k(3, 3),
        mov64_k(4, 4),
        mov64_k(5, 5),
    ];
    let mut prog = args.to_vec();
    prog.extend([call(1), exit()]);
    assert_eq!(run_both(&prog, &h, &mut []), Ok(54321));

    // r0 = lookup(1); r0 = *(u8 *)(r0 + 7)
    let prog = [mov64_k(1, 1), call(2), ldxb(0, 0, 7), exit()];
    assert_eq!(run_both(&prog, &h, &mut []), Ok(8));
    // One byte past the returned region.
    let p = Program::new(&[mov64_k(1, 1), call(2), ldxb(0, 0, 8), exit()], &h).unwrap();
    assert!(matches!(
        p.run_checked(&RunCtx::new()).unwrap_err().kind,
        ErrorKind::OutOfBounds { .. }
    ));
}

#[test]
fn unwind_helper_ends_the_program_on_zero() {
    // The conformance suite's helper 5 (call_unwind_fail.data): returns r1; 0 ends with r0 = 0.
    extern "C" fn unwind(a: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
        a
    }
    let mut h = Helpers::new();
    h.set(5, Helper::unwind_on_zero(unwind));
    let prog = |r1| [mov64_k(1, r1), call(5), mov64_k(0, 2), exit()];
    assert_eq!(run_both(&prog(-1), &h, &mut []), Ok(2));
    assert_eq!(run_both(&prog(0), &h, &mut []), Ok(0));
}

struct OneSlot<'a> {
    prog: Option<&'a Vm>,
}

impl TailCallHook for OneSlot<'_> {
    fn tail_call_target(&self, map: u64, index: u32) -> TailCallTarget<'_> {
        assert_eq!(map, 77);
        match (index, self.prog) {
            (0, Some(vm)) => TailCallTarget::Program(vm),
            (0, None) => TailCallTarget::Empty,
            _ => TailCallTarget::OutOfRange,
        }
    }
}

#[test]
fn tail_calls_jump_fall_through_and_stop_after_33() {
    let mut h = Helpers::new();
    h.set_tail_call(12);
    // Target: r0 = r1 + 1000; exit (r1, the context, is passed on).
    let target_insns = [mov64_x(0, 1), add64_k(0, 1000), exit()];
    // SAFETY: the target makes no memory access.
    let target = unsafe { Vm::from_unverified(&target_insns, &h) }.unwrap();
    let caller = |index| {
        [
            mov64_k(1, 5),
            mov64_k(2, 77),
            mov64_k(3, index),
            call(12),
            mov64_k(0, 1),
            exit(),
        ]
    };
    for (index, hook_has_prog, expected) in [(0, true, 1005), (0, false, 1), (1, true, 1)] {
        // SAFETY: the caller makes no memory access.
        let vm = unsafe { Vm::from_unverified(&caller(index), &h) }.unwrap();
        let hook = OneSlot {
            prog: hook_has_prog.then_some(&target),
        };
        let ctx = RunCtx::new().with_tail_calls(&hook);
        assert_eq!(vm.run_ctx(&ctx), expected);
        assert_eq!(vm.run_checked(&ctx), Ok(expected));
    }
    // A program tail-calling itself: r6 counts the calls; Linux allows 33
    // (MAX_TAIL_CALL_CNT), then the call falls through.
    let selfcall = [
        Insn::new(0x07, 6, 0, 0, 1), // r6 += 1 (r6 starts at 0 in the fast interpreter)
        mov64_k(2, 77),
        mov64_k(3, 0),
        call(12),
        mov64_x(0, 6),
        exit(),
    ];
    // SAFETY: no memory access.
    let vm = unsafe { Vm::from_unverified(&selfcall, &h) }.unwrap();
    let hook = OneSlot { prog: Some(&vm) };
    assert_eq!(vm.run_ctx(&RunCtx::new().with_tail_calls(&hook)), 34);
}
