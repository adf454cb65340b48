//! The pieces a generated program is made of: each appends a few instructions to the model's
//! current buffer and updates its idea of the registers and stack. Operands mostly have the
//! right kind; now and then one is wrong, on purpose.

use bpfkit_isa::Insn;

use super::model::{Frame, Kind, Model, Val};

/// `BPF_SIZE` bits of a load/store of `size` bytes.
fn size_bits(size: i32) -> u8 {
    match size {
        1 => 0x10,
        2 => 0x08,
        4 => 0x00,
        _ => 0x18,
    }
}

/// A random access size, mostly the common ones.
fn access_size(m: &mut Model) -> i32 {
    m.rng.pick(&[1, 2, 4, 8, 8, 4])
}

/// `*(size *)(base + off) = src` (a register) or `= imm` (when `src` is `None`).
fn store(m: &mut Model, base: u8, off: i16, size: i32, src: Option<u8>, imm: i32) {
    let code = match src {
        Some(_) => 0x63,
        None => 0x62,
    } | size_bits(size);
    let imm = if src.is_some() { 0 } else { imm };
    m.emit(Insn::new(code, base, src.unwrap_or(0), off, imm));
}

/// `dst = *(size *)(base + off)`, sometimes sign-extending (`BPF_MEMSX`) for sizes below 8.
fn load(m: &mut Model, dst: u8, base: u8, off: i16, size: i32) {
    let mode = if size < 8 && m.rng.one_in(5) {
        0x80
    } else {
        0x60
    };
    m.emit(Insn::new(0x01 | mode | size_bits(size), dst, base, off, 0));
}

/// Appends one random piece; `depth` counts the enclosing jumps and loops.
pub(super) fn piece(m: &mut Model, depth: u32) {
    if m.budget <= 0 {
        return;
    }
    let has = |m: &Model, pred: fn(Kind) -> bool| !m.regs_where(pred).is_empty();
    loop {
        match m.rng.below(100) {
            0..=21 => return alu(m),
            22..=35 if depth < 3 => return cond_skip(m, depth),
            36..=45 => return stack(m),
            46..=53 => return map_lookup(m, depth),
            54..=61 if has(m, |k| matches!(k, Kind::MapValue(..))) => return map_value(m),
            62..=70 if m.reg(7).kind == Kind::Pkt(0) && m.reg(8).kind == Kind::PktEnd => {
                return packet(m, depth)
            }
            71..=75 if has(m, |k| k == Kind::Ctx) => return ctx(m),
            76..=81 if !m.in_sub => return helper(m),
            82..=85 if !m.in_sub && depth == 0 => return bpf_call(m),
            86..=88 if depth == 0 && m.reserved == 0 => return bounded_loop(m),
            89..=92 => return atomic(m),
            93..=99 if m.in_sub && m.reg(1).kind != Kind::Uninit => return caller_stack(m),
            93..=99 => return pointer_misc(m),
            _ => {}
        }
    }
}

/// Scalar ALU: every op at both widths, immediates or registers.
fn alu(m: &mut Model) {
    let w64 = !m.rng.one_in(3);
    let class = if w64 { 0x07 } else { 0x04 };
    let bits = if w64 { 64 } else { 32 };
    if m.rng.one_in(12) {
        // A 64-bit constant.
        let dst = m.dst_scalar();
        let v = m.rng.next_u64() >> m.rng.below(64);
        m.emit_ld_imm64(dst, 0, v);
        m.set(dst, Val::new(Kind::Scalar, true));
        return;
    }
    let op: u8 = m.rng.pick(&[
        0x00, 0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x50, 0x60, 0x70, 0x80, 0x90, 0xa0, 0xb0, 0xb0,
        0xc0, 0xd0,
    ]);
    let use_reg = m.rng.one_in(3);
    let dst = if op == 0xb0 {
        m.dst_scalar()
    } else {
        m.src_scalar_writable()
    };
    let src = m.src_scalar();
    // A read-modify-write needs an initialised number; without one, start with a move.
    let op = if op != 0xb0 && m.reg(dst).kind != Kind::Scalar && !m.mistake() {
        0xb0
    } else {
        op
    };
    let mut off = 0i16;
    let mut imm = m.rng.imm();
    let mut code = op | class;
    match op {
        0x30 | 0x90 => {
            if m.rng.one_in(3) {
                off = 1; // sdiv / smod
            }
            if imm == 0 && !m.mistake() {
                imm = 3;
            }
        }
        0x60 | 0x70 | 0xc0 if !m.mistake() => imm = m.rng.below(bits) as i32,
        0x80 => imm = 0,
        0xd0 => {
            imm = m.rng.pick(&[16, 32, 64]);
            if !w64 && m.rng.one_in(2) {
                code |= 0x08; // to big endian
            }
        }
        0xb0 if use_reg && m.rng.one_in(3) => {
            off = if w64 {
                m.rng.pick(&[8, 16, 32])
            } else {
                m.rng.pick(&[8, 16])
            };
        }
        _ => {}
    }
    let reg_form = use_reg && !matches!(op, 0x80 | 0xd0);
    if reg_form {
        code |= 0x08;
        imm = 0;
    }
    m.emit(Insn::new(
        code,
        dst,
        if reg_form { src } else { 0 },
        off,
        imm,
    ));
    let d = m.reg(dst);
    let s = if reg_form {
        m.reg(src)
    } else {
        Val::new(Kind::Scalar, true)
    };
    let result = match (op, d.kind) {
        (0xb0, _) if reg_form && w64 && off == 0 => s,
        (0xb0, _) => Val::new(Kind::Scalar, s.det && !s.kind.is_pointer()),
        (0x00 | 0x10, Kind::Stack(o)) if w64 && !reg_form => {
            let delta = if op == 0x00 { imm } else { imm.wrapping_neg() };
            match i16::try_from(i32::from(o).saturating_add(delta)) {
                Ok(n) => Val::new(Kind::Stack(n), false),
                Err(_) => Val::new(Kind::Unknown, false),
            }
        }
        (_, k) if k.is_pointer() || s.kind.is_pointer() => Val::new(Kind::Unknown, false),
        _ => Val::new(Kind::Scalar, d.det && s.det),
    };
    m.set(dst, result);
}

/// A conditional jump over one or two pieces (or, sometimes, an if/else diamond): both
/// branches refine the compared registers.
fn cond_skip(m: &mut Model, depth: u32) {
    let class = if m.rng.one_in(3) { 0x06 } else { 0x05 };
    let op: u8 = m.rng.pick(&[
        0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xa0, 0xb0, 0xc0, 0xd0,
    ]);
    let a = if m.mistake() {
        m.rng.below(10) as u8
    } else {
        m.src_scalar()
    };
    let (src, imm, b) = if m.rng.one_in(3) {
        let b = m.src_scalar();
        (Some(b), 0, m.reg(b))
    } else {
        (None, m.rng.imm(), Val::new(Kind::Scalar, true))
    };
    // A comparison with an address (a pointer against a number) goes either way by engine.
    let tainted = !(m.reg(a).det && b.det) || m.reg(a).kind.is_pointer() || b.kind.is_pointer();
    let code = op | class | if src.is_some() { 0x08 } else { 0 };
    let before = m.frame.clone();
    m.begin();
    for _ in 0..1 + m.rng.below(2) {
        piece(m, depth + 1);
    }
    let skipped = m.take();
    // Memory written on a branch taken by chance holds what chance wrote.
    let writes = |code: &[Insn]| {
        code.iter()
            .any(|i| matches!(i.code & 7, 2 | 3) || i.code == 0x85)
    };
    if tainted && writes(&skipped) {
        m.tainted_memory = true;
    }
    if m.rng.one_in(4) {
        // if cond goto else; <then>; goto end; else: <else>; end:
        let after_then = m.frame.clone();
        m.frame = before;
        m.begin();
        piece(m, depth + 1);
        let other = m.take();
        if tainted && writes(&other) {
            m.tainted_memory = true;
        }
        let then_len = i16::try_from(skipped.len() + 1).unwrap_or(0);
        m.emit(Insn::new(code, a, src.unwrap_or(0), then_len, imm));
        m.append(&skipped);
        m.emit(Insn::new(
            0x05,
            0,
            0,
            i16::try_from(other.len()).unwrap_or(0),
            0,
        ));
        m.append(&other);
        m.frame.join(&after_then, tainted);
        return;
    }
    m.emit(Insn::new(
        code,
        a,
        src.unwrap_or(0),
        i16::try_from(skipped.len()).unwrap_or(0),
        imm,
    ));
    m.append(&skipped);
    m.frame.join(&before, tainted);
}

/// A stack offset: mostly aligned slots, sometimes misaligned, rarely out of the frame.
fn stack_off(m: &mut Model, size: i32) -> i16 {
    if m.mistake() {
        return m.rng.pick(&[0, 8, -520, -516, -513, 4, -3, -7, -510]);
    }
    let deep = if m.rng.one_in(4) { 64 } else { 12 };
    let slot = -(m.rng.range(1, deep) as i16) * 8;
    let within = m.rng.below((8 / size.max(1)) as u64) as i16 * size as i16;
    slot + within
}

/// Stack stores and loads: immediates, spills of scalars and pointers, fills at the same or a
/// different size and offset, and variable-offset accesses.
fn stack(m: &mut Model) {
    let size = access_size(m);
    let off = stack_off(m, size);
    match m.rng.below(10) {
        0..=1 => {
            let imm = m.rng.imm();
            store(m, 10, off, size, None, imm);
            m.store_stack(i32::from(off), size, Val::new(Kind::Scalar, true));
        }
        2..=5 => {
            // Spill any live register, pointers included.
            let live = m.regs_where(|k| k != Kind::Uninit);
            let r = if live.is_empty() || m.mistake() {
                m.rng.below(11) as u8
            } else {
                m.rng.pick(&live)
            };
            let size = if m.reg(r).kind.is_pointer() && !m.rng.one_in(6) {
                8
            } else {
                size
            };
            let off = if size == 8 && !m.rng.one_in(6) {
                -(m.rng.range(1, 12) as i16) * 8
            } else {
                off
            };
            store(m, 10, off, size, Some(r), 0);
            let v = m.reg(r);
            m.store_stack(i32::from(off), size, v);
            // Fill it back now and then, at the same or another size.
            if m.rng.one_in(2) {
                let size2 = if m.rng.one_in(3) {
                    access_size(m)
                } else {
                    size
                };
                let dst = m.dst_scalar();
                load(m, dst, 10, off, size2);
                let v = m.load_stack(i32::from(off), size2);
                m.set(dst, v);
            }
        }
        6..=8 => {
            let dst = m.dst_scalar();
            load(m, dst, 10, off, size);
            let v = m.load_stack(i32::from(off), size);
            m.set(dst, v);
        }
        _ => {
            // A variable offset: r = r10 + (scalar & mask) - K.
            let s = m.src_scalar();
            let p = m.scratch();
            let mask = m.rng.pick(&[7, 15, 31, 63, 0xff, -1]);
            let k = m.rng.pick(&[-64, -128, -256, -512, -8]);
            m.emit(Insn::new(0xbf, p, s, 0, 0));
            m.emit(Insn::new(0x57, p, 0, 0, mask));
            m.emit(Insn::new(0x07, p, 0, 0, k));
            m.emit(Insn::new(0x0f, p, 10, 0, 0));
            if m.rng.one_in(2) {
                store(m, p, 0, size, None, 0);
                m.frame.stack = [Val::new(Kind::Scalar, false); super::model::SLOTS];
            } else {
                load(m, p, p, 0, size);
            }
            m.set(p, Val::new(Kind::Unknown, false));
        }
    }
}

/// `bpf_map_lookup_elem` with a key on the stack, then (usually) a NULL check guarding
/// accesses through the result.
fn map_lookup(m: &mut Model, depth: u32) {
    let map = if m.rng.one_in(2) { 0u8 } else { 1 };
    let key_size = m.maps[usize::from(map)].key_size as i32;
    let key_off = -(m.rng.range(1, 6) as i16) * 8;
    // The key decides whether an element is found: an unknown key makes everything after
    // the lookup unknown to the model.
    let key_det = match m.rng.below(8) {
        0 => m.load_stack(i32::from(key_off), key_size).det, // whatever is there
        1 => {
            let s = m.src_scalar();
            store(m, 10, key_off, key_size, Some(s), 0);
            let v = m.reg(s);
            m.store_stack(i32::from(key_off), key_size, v);
            v.det && !v.kind.is_pointer()
        }
        _ => {
            let imm = m.rng.range(0, 5) as i32;
            store(m, 10, key_off, key_size, None, imm);
            m.store_stack(i32::from(key_off), key_size, Val::new(Kind::Scalar, true));
            true
        }
    };
    if !key_det {
        m.tainted_memory = true;
    }
    m.emit_ld_imm64(1, 1, u64::from(map));
    m.emit(Insn::new(0xbf, 2, 10, 0, 0));
    let kadj = if m.mistake() {
        i32::from(key_off) + m.rng.range(-4, 4) as i32
    } else {
        i32::from(key_off)
    };
    m.emit(Insn::new(0x07, 2, 0, 0, kadj));
    m.emit(Insn::new(0x85, 0, 0, 0, 1));
    m.clobber_call(Val::new(Kind::MapValueOrNull(map), true));
    // Sometimes a copy, checked instead of r0 (the check must reach both by id).
    let mut checked = 0u8;
    if m.rng.one_in(4) {
        let c = m.dst_scalar();
        if c != 0 {
            m.emit(Insn::new(0xbf, c, 0, 0, 0));
            m.set(c, m.reg(0));
            checked = c;
        }
    }
    let before = m.frame.clone();
    let null_value = |f: &mut Frame| {
        for r in &mut f.regs {
            if matches!(r.kind, Kind::MapValueOrNull(k) if k == map) {
                *r = Val::new(Kind::Scalar, true);
            }
        }
    };
    let as_value = |f: &mut Frame| {
        for r in &mut f.regs {
            if matches!(r.kind, Kind::MapValueOrNull(k) if k == map) {
                *r = Val::new(Kind::MapValue(map, 0), true);
            }
        }
    };
    match m.rng.below(10) {
        0 if m.mistake() => {
            // No check at all.
            map_value(m);
        }
        1..=2 => {
            // if rX != 0 goto +1; goto +len; <accesses>
            as_value(&mut m.frame);
            m.begin();
            map_value(m);
            piece(m, depth + 1);
            let body = m.take();
            let op = if m.rng.one_in(4) { 0x56 } else { 0x55 }; // JMP32 sometimes
            m.emit(Insn::new(op, checked, 0, 1, 0));
            m.emit(Insn::new(
                0x05,
                0,
                0,
                i16::try_from(body.len()).unwrap_or(0),
                0,
            ));
            m.append(&body);
            let mut null = before;
            null_value(&mut null);
            m.frame.join(&null, false);
        }
        _ => {
            // if rX == 0 goto +len; <accesses>
            as_value(&mut m.frame);
            m.begin();
            map_value(m);
            if m.rng.one_in(2) {
                piece(m, depth + 1);
            }
            let body = m.take();
            m.emit(Insn::new(
                0x15,
                checked,
                0,
                i16::try_from(body.len()).unwrap_or(0),
                0,
            ));
            m.append(&body);
            let mut null = before;
            null_value(&mut null);
            m.frame.join(&null, false);
        }
    }
}

/// Accesses through a map value pointer: constant offsets around the value's ends, variable
/// offsets from bounded (masked or compared) and unbounded scalars.
fn map_value(m: &mut Model) {
    let values = m.regs_where(|k| matches!(k, Kind::MapValue(..) | Kind::MapValueOrNull(_)));
    let Some(&v) = values.first() else {
        return;
    };
    let v = if values.len() > 1 {
        m.rng.pick(&values)
    } else {
        v
    };
    let (map, det) = match m.reg(v).kind {
        Kind::MapValue(k, _) | Kind::MapValueOrNull(k) => (k, !m.tainted_memory),
        _ => (0, false),
    };
    let vs = m.maps[usize::from(map)].value_size as i32;
    let size = access_size(m);
    let mut base = v;
    let slack = if m.mistake() { 3 } else { 0 };
    let mut off = m.rng.range(-slack, i64::from(vs - size).max(0) + slack) as i16;
    if m.rng.one_in(2) {
        // base = v + variable, the variable bounded (mostly) so that the access fits.
        let room = i64::from(vs - size).max(0);
        let bound = if m.mistake() {
            m.rng.pick(&[0xff, 0xffff, 63])
        } else {
            m.rng.range(0, room)
        };
        let mask = if bound == 0 {
            0
        } else {
            (1i64 << (63 - bound.leading_zeros())) * 2 - 1
        };
        let mask = if mask > bound { mask >> 1 } else { mask };
        let s = m.src_scalar();
        let p = m.scratch();
        m.emit(Insn::new(0xbf, p, s, 0, 0));
        let max = match m.rng.below(5) {
            0 if m.mistake() => i64::MAX, // unbounded
            1 => {
                m.emit(Insn::new(0x54, p, 0, 0, mask as i32)); // w &= mask
                mask
            }
            2 => {
                // if p > K: p = 0, a bound from a comparison (signed ones leave p negative).
                let op = m.rng.pick(&[0x25, 0x35, 0x65, 0xa5]);
                let k = if op == 0xa5 { bound + 1 } else { bound };
                m.emit(Insn::new(op, p, 0, 1, k as i32));
                m.emit(Insn::new(0x05, 0, 0, 1, 0));
                m.emit(Insn::new(0xb7, p, 0, 0, 0));
                bound
            }
            _ => {
                m.emit(Insn::new(0x57, p, 0, 0, mask as i32));
                mask
            }
        };
        let sub = m.mistake();
        let q = m.scratch_not(p);
        m.emit(Insn::new(0xbf, q, v, 0, 0));
        m.emit(Insn::new(if sub { 0x1f } else { 0x0f }, q, p, 0, 0));
        m.set(p, Val::new(Kind::Scalar, false));
        m.set(q, Val::new(Kind::MapValue(map, 0), true));
        base = q;
        let hi = (room - max.min(room)).max(0) + slack;
        off = m.rng.range(-slack, hi) as i16;
    }
    if m.rng.one_in(3) {
        let imm = m.rng.imm();
        let src = if m.rng.one_in(2) {
            Some(m.src_scalar())
        } else {
            None
        };
        store(m, base, off, size, src, imm);
        if src.is_some_and(|s| !m.reg(s).det || m.reg(s).kind.is_pointer()) {
            m.tainted_memory = true;
        }
    } else {
        let dst = m.dst_scalar();
        load(m, dst, base, off, size);
        m.set(dst, Val::new(Kind::Scalar, det));
    }
}

/// A `data + N` check against `data_end` (every comparison, either order, the access on
/// either branch), then packet reads and writes.
fn packet(m: &mut Model, depth: u32) {
    let n = if m.rng.one_in(10) {
        m.rng.range(60, 0x10000) as i32
    } else {
        m.rng.range(0, 64) as i32
    };
    let p = m.scratch();
    let var = m.rng.one_in(4);
    // p = data (+ bounded variable) + n
    m.emit(Insn::new(0xbf, p, 7, 0, 0));
    if var {
        let s = m.src_scalar();
        let q = m.scratch_not(p);
        m.emit(Insn::new(0xbf, q, s, 0, 0));
        let k = m.rng.pick(&[7, 15, 63, 0xff, 0xffff]);
        m.emit(Insn::new(0x57, q, 0, 0, k));
        m.emit(Insn::new(0x0f, p, q, 0, 0));
        m.set(q, Val::new(Kind::Scalar, false));
    }
    m.emit(Insn::new(0x07, p, 0, 0, n));
    // Mostly a comparison that proves the range on the branch holding the accesses: `p > end`
    // and `p >= end` (or `end < p`, `end <= p`) fall through to them, `p < end` and `p <= end`
    // (or `end > p`, `end >= p`) jump to them; otherwise anything.
    let (op, swap, on_taken): (u8, bool, bool) = if m.rng.one_in(4) {
        (
            m.rng
                .pick(&[0x20, 0x30, 0xa0, 0xb0, 0x10, 0x50, 0x60, 0xd0]),
            m.rng.one_in(2),
            m.rng.one_in(2),
        )
    } else {
        let op = m.rng.pick(&[0x20, 0x30, 0xa0, 0xb0]);
        let swap = m.rng.one_in(2);
        (op, swap, matches!(op, 0xa0 | 0xb0) != swap)
    };
    let class = if m.mistake() { 0x06 } else { 0x05 };
    let (a, b) = if swap { (8, p) } else { (p, 8) };
    let base = if var || m.rng.one_in(3) { p } else { 7 };
    let before = m.frame.clone();
    m.set(p, Val::new(Kind::Pkt(n), true));
    m.begin();
    for _ in 0..1 + m.rng.below(3) {
        let size = access_size(m);
        let slack = if m.mistake() { 3 } else { 0 };
        let hi = (i64::from(n) - i64::from(size)).max(0) + slack;
        let lo = if m.mistake() { -2 } else { 0 };
        let off = m.rng.range(lo, hi) as i16;
        let off = if base == 7 {
            off
        } else {
            off.wrapping_sub(n as i16)
        };
        let write = m.rng.one_in(3);
        if write {
            let imm = m.rng.imm();
            let src = if m.rng.one_in(2) {
                Some(m.src_scalar())
            } else {
                None
            };
            store(m, base, off, size, src, imm);
            if var || src.is_some_and(|s| !m.reg(s).det || m.reg(s).kind.is_pointer()) {
                m.tainted_memory = true;
            }
        } else {
            let dst = m.dst_scalar_not(&[7, 8, p]);
            load(m, dst, base, off, size);
            m.set(dst, Val::new(Kind::Scalar, !var));
        }
    }
    if m.rng.one_in(3) {
        piece(m, depth + 1);
    }
    let body = m.take();
    let len = i16::try_from(body.len()).unwrap_or(0);
    if !on_taken {
        // The access on the fall-through branch.
        m.emit(Insn::new(op | class | 0x08, a, b, len, 0));
    } else {
        // The access on the taken branch.
        m.emit(Insn::new(op | class | 0x08, a, b, 1, 0));
        m.emit(Insn::new(0x05, 0, 0, len, 0));
    }
    m.append(&body);
    m.frame.join(&before, var);
}

/// Context reads and writes at plausible and random offsets and sizes.
fn ctx(m: &mut Model) {
    let c = m.regs_where(|k| k == Kind::Ctx);
    let c = m.rng.pick(&c);
    let xdp = m.prog_type == "xdp";
    // Readable fields: xdp_md's six u32s; __sk_buff's u32s up to `data_meta` and a few more.
    let (off, size): (i16, i32) = if m.mistake() {
        (m.rng.range(-4, 200) as i16, access_size(m))
    } else if xdp {
        (m.rng.range(0, 5) as i16 * 4, 4)
    } else if m.prog_type == "socket_filter" {
        (m.rng.range(0, 18) as i16 * 4, 4)
    } else {
        // __sk_buff: len .. cb[4], hash, tc_classid, data, data_end, napi_id, data_meta,
        // wire_len, gso_segs, gso_size.
        let f = m.rng.pick(&[
            0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60, 64, 68, 72, 76, 80, 84,
            140, 160, 164, 176,
        ]);
        (
            f,
            if f == 0 && m.rng.one_in(3) {
                m.rng.pick(&[1, 2])
            } else {
                4
            },
        )
    };
    if m.rng.one_in(5) {
        // Writable: mark, priority, cb[], tc_index (sched_cls); nothing in xdp.
        let off: i16 = if xdp || m.mistake() {
            off
        } else {
            m.rng.pick(&[8, 32, 36, 48, 52, 56, 60, 64])
        };
        let imm = m.rng.imm();
        let src = if m.rng.one_in(2) {
            Some(m.src_scalar())
        } else {
            None
        };
        store(m, c, off, 4, src, imm);
        return;
    }
    let dst = m.dst_scalar_not(&[c]);
    load(m, dst, c, off, size);
    let kind = match (xdp, off, size) {
        (true, 0, 4) | (false, 76, 4) => Kind::Pkt(0),
        (true, 4, 4) | (false, 80, 4) => Kind::PktEnd,
        (true, 8, 4) | (false, 140, 4) => Kind::PktMeta,
        _ => Kind::Scalar,
    };
    // skb->len, protocol, pkt_type and data_end - data are the same in every engine.
    let det = !xdp && matches!(off, 0 | 16 | 4);
    m.set(dst, Val::new(kind, det));
}

/// Which argument kind a helper wants.
#[derive(Clone, Copy)]
enum Arg {
    Ctx,
    Map,
    Key,
    Value,
    Anything,
    /// Pointer to memory of the size given by the next argument.
    Mem,
    /// A constant size for the previous argument.
    Size,
}

/// A helper call with arguments mostly of the right kind.
fn helper(m: &mut Model) {
    use Arg::{Anything, Ctx, Key, Map, Mem, Size, Value};
    let xdp = m.prog_type == "xdp";
    let tc = m.prog_type == "sched_cls";
    let (id, args, det): (i32, &[Arg], bool) = match m.rng.below(14) {
        0 => (2, &[Map, Key, Value, Anything], true),
        1 => (3, &[Map, Key], true),
        2 => (5, &[], false),
        3 => (7, &[], false),
        4 => (8, &[], false),
        5 => (6, &[Mem, Size], false),
        // What these return depends on arguments the model does not follow (offsets, sizes,
        // uninitialised stack): not deterministic as far as it knows.
        6 | 7 if !xdp => (26, &[Ctx, Anything, Mem, Size], false),
        8 if tc => (9, &[Ctx, Anything, Mem, Size, Anything], false),
        9 => (28, &[Mem, Size, Mem, Size, Anything], false),
        10 if xdp => (44, &[Ctx, Anything], false),
        11 if xdp => (65, &[Ctx, Anything], false),
        12 if m.mistake() => (m.rng.pick(&[14, 16, 35, 0, 211, 500]), &[Anything], false),
        _ => (7, &[], false),
    };
    let mut size_reg = None;
    let mut prev_mem = None;
    let mut writes_stack = Vec::new();
    for (k, a) in args.iter().enumerate() {
        let r = (k + 1) as u8;
        let wrong = m.mistake();
        match a {
            Ctx => {
                let c = m.regs_where(|k| k == Kind::Ctx);
                let src = if c.is_empty() || wrong {
                    m.src_scalar()
                } else {
                    m.rng.pick(&c)
                };
                m.emit(Insn::new(0xbf, r, src, 0, 0));
            }
            Map => {
                let map = if wrong { 7 } else { m.rng.below(2) };
                m.emit_ld_imm64(r, 1, map);
            }
            Key | Value | Mem => {
                let off = -(m.rng.range(1, 8) as i16) * 8;
                if wrong {
                    let s = m.src_scalar();
                    m.emit(Insn::new(0xbf, r, s, 0, 0));
                } else {
                    m.emit(Insn::new(0xbf, r, 10, 0, 0));
                    m.emit(Insn::new(0x07, r, 0, 0, i32::from(off)));
                    if matches!(a, Mem) {
                        prev_mem = Some(off);
                    }
                    if !m.rng.one_in(3) && !matches!(a, Mem) {
                        let k = m.rng.range(0, 3) as i32;
                        store(m, 10, off, 8, None, k);
                        m.store_stack(i32::from(off), 8, Val::new(Kind::Scalar, true));
                    }
                }
            }
            Anything => {
                if m.rng.one_in(2) {
                    let s = m.src_scalar();
                    m.emit(Insn::new(0xbf, r, s, 0, 0));
                } else {
                    let imm = m.rng.range(-2, 40) as i32;
                    m.emit(Insn::new(0xb7, r, 0, 0, imm));
                }
            }
            Size => {
                let room = prev_mem.map_or(8, |o: i16| -i32::from(o));
                match m.rng.below(8) {
                    0 if m.mistake() => {
                        let s = m.src_scalar();
                        m.emit(Insn::new(0xbf, r, s, 0, 0));
                        if m.rng.one_in(2) {
                            m.emit(Insn::new(0x57, r, 0, 0, 15));
                        }
                    }
                    1 if m.mistake() => {
                        let k = m.rng.pick(&[0, room + 1, 600]);
                        m.emit(Insn::new(0xb7, r, 0, 0, k));
                    }
                    _ => {
                        let n = m.rng.range(1, i64::from(room)) as i32;
                        m.emit(Insn::new(0xb7, r, 0, 0, n));
                    }
                }
                size_reg = Some(r);
                if let Some(o) = prev_mem {
                    writes_stack.push(o);
                }
            }
        }
    }
    let _ = size_reg;
    m.emit(Insn::new(0x85, 0, 0, 0, id));
    m.clobber_call(Val::new(Kind::Scalar, det));
    if matches!(id, 9 | 44 | 65) {
        // The packet may move: every packet pointer is invalid.
        let invalid = |v: &mut Val| {
            if matches!(v.kind, Kind::Pkt(_) | Kind::PktEnd | Kind::PktMeta) {
                *v = Val::new(Kind::Unknown, false);
            }
        };
        m.frame.regs.iter_mut().for_each(invalid);
        m.frame.stack.iter_mut().for_each(invalid);
        if m.rng.one_in(2) && id != 9 {
            // Reload them, as programs must.
            m.emit(Insn::new(0x61, 7, 6, 0, 0));
            m.emit(Insn::new(0x61, 8, 6, 4, 0));
            m.set(7, Val::new(Kind::Pkt(0), true));
            m.set(8, Val::new(Kind::PktEnd, true));
        } else if id == 9 && m.rng.one_in(2) {
            m.emit(Insn::new(0x61, 7, 6, 76, 0));
            m.emit(Insn::new(0x61, 8, 6, 80, 0));
            m.set(7, Val::new(Kind::Pkt(0), true));
            m.set(8, Val::new(Kind::PktEnd, true));
        }
    }
    for o in writes_stack {
        for b in i32::from(o)..i32::from(o) + 64 {
            if let Some(s) = Model::slot(b) {
                m.frame.stack[s] = Val::new(Kind::Scalar, false);
            }
        }
    }
    // Map updates and packet writes may store uninitialised stack; adjusting the packet moves it.
    if matches!(id, 2 | 9 | 44 | 65) {
        m.tainted_memory = true;
    }
}

/// A BPF-to-BPF call to a new subprogram, passing a pointer to the caller's stack (or,
/// sometimes, a scalar) in r1 and a scalar in r2.
fn bpf_call(m: &mut Model) {
    let off = -(m.rng.range(1, 8) as i16) * 8;
    let pass_stack = !m.rng.one_in(8);
    let mut arg1_det = true;
    if pass_stack {
        if m.rng.one_in(2) {
            let k = m.rng.imm();
            store(m, 10, off, 8, None, k);
            m.store_stack(i32::from(off), 8, Val::new(Kind::Scalar, true));
        }
        m.emit(Insn::new(0xbf, 1, 10, 0, 0));
        m.emit(Insn::new(0x07, 1, 0, 0, i32::from(off)));
    } else {
        let s = m.src_scalar();
        m.emit(Insn::new(0xbf, 1, s, 0, 0));
        arg1_det = m.reg(s).det && !m.reg(s).kind.is_pointer();
    }
    let s = m.src_scalar();
    let arg2 = m.reg(s);
    m.emit(Insn::new(0xbf, 2, s, 0, 0));
    let caller = m.begin_sub();
    m.set(
        1,
        Val::new(
            if pass_stack {
                Kind::CallerStack(off)
            } else {
                Kind::Scalar
            },
            arg1_det,
        ),
    );
    m.set(
        2,
        Val::new(Kind::Scalar, arg2.det && !arg2.kind.is_pointer()),
    );
    for _ in 0..1 + m.rng.below(3) {
        piece(m, 1);
    }
    let r0 = m.regs_where(|k| k == Kind::Scalar);
    let r0 = if r0.is_empty() { 2 } else { m.rng.pick(&r0) };
    let det = m.reg(r0).det;
    if !m.rng.one_in(20) {
        m.emit(Insn::new(0xbf, 0, r0, 0, 0));
    }
    m.emit(Insn::new(0x95, 0, 0, 0, 0));
    let idx = m.end_sub(caller);
    m.emit(Insn::new(0x85, 0, 1, 0, idx));
    m.clobber_call(Val::new(Kind::Scalar, det));
    // The callee may have written the caller's stack.
    for b in i32::from(off) - 8..i32::from(off) + 48 {
        if let Some(s) = Model::slot(b) {
            let v = m.frame.stack[s];
            m.frame.stack[s] = Val::new(
                if v.kind == Kind::Uninit {
                    Kind::Uninit
                } else {
                    Kind::Scalar
                },
                false,
            );
        }
    }
}

/// In a subprogram: accesses through the caller's stack pointer in r1.
fn caller_stack(m: &mut Model) {
    let size = access_size(m);
    let off = if m.mistake() {
        m.rng.range(-16, 64) as i16
    } else {
        m.rng.range(0, 1) as i16 * 8
    };
    if m.rng.one_in(2) {
        let s = m.src_scalar();
        store(m, 1, off, size, Some(s), 0);
    } else {
        let dst = m.dst_scalar_not(&[1]);
        load(m, dst, 1, off, size);
        m.set(dst, Val::new(Kind::Scalar, false));
    }
}

/// A bounded loop: a counter from a constant to a small bound, with a body that does not
/// touch it.
fn bounded_loop(m: &mut Model) {
    let c = m.dst_scalar_not(&[1, 2, 3, 4, 5]);
    let start = m.rng.range(0, 3) as i32;
    let bound = m.rng.range(1, 10) as i32;
    m.emit(Insn::new(0xb7, c, 0, 0, start));
    m.set(c, Val::new(Kind::Scalar, true));
    m.reserved |= 1 << c;
    let before = m.frame.clone();
    let top = m.here();
    let saved_budget = m.budget;
    for _ in 0..1 + m.rng.below(2) {
        match m.rng.below(3) {
            0 => stack(m),
            _ => alu(m),
        }
    }
    let _ = saved_budget;
    m.emit(Insn::new(0x07, c, 0, 0, 1));
    let (op, class) = match m.rng.below(6) {
        0 => (0x50, 0x05), // !=
        1 => (0xb0, 0x05), // <=
        2 => (0xc0, 0x05), // s<
        3 => (0xa0, 0x06), // w<
        _ => (0xa0, 0x05), // <
    };
    let back = i16::try_from(top as i64 - m.here() as i64 - 1).unwrap_or(0);
    let bound = if op == 0x50 { start + bound } else { bound };
    m.emit(Insn::new(op | class, c, 0, back, bound));
    m.reserved &= !(1 << c);
    m.frame.join(&before, false);
}

/// Atomic read-modify-write on the stack or a map value.
fn atomic(m: &mut Model) {
    let dw = !m.rng.one_in(3);
    let size = if dw { 8 } else { 4 };
    let values = m.regs_where(|k| matches!(k, Kind::MapValue(..)));
    let (base, off) = if !values.is_empty() && m.rng.one_in(3) {
        (m.rng.pick(&values), m.rng.range(-1, 2) as i16 * size as i16)
    } else {
        let off = if m.rng.one_in(8) {
            stack_off(m, size)
        } else {
            -(m.rng.range(1, 8) as i16) * 8
        };
        if m.rng.one_in(2) {
            let k = m.rng.imm();
            store(m, 10, off, size, None, k);
            m.store_stack(i32::from(off), size, Val::new(Kind::Scalar, true));
        }
        (10, off)
    };
    let op = m
        .rng
        .pick(&[0x00, 0x40, 0x50, 0xa0, 0x01, 0x41, 0x51, 0xa1, 0xe1, 0xf1]);
    let src = m.src_scalar_writable();
    if op == 0xf1 && m.reg(0).kind == Kind::Uninit && !m.rng.one_in(5) {
        m.emit(Insn::new(0xb7, 0, 0, 0, 0));
        m.set(0, Val::new(Kind::Scalar, true));
    }
    m.emit(Insn::new(if dw { 0xdb } else { 0xc3 }, base, src, off, op));
    let old = if base == 10 {
        m.load_stack(i32::from(off), size)
    } else {
        Val::new(Kind::Scalar, !m.tainted_memory)
    };
    let new = Val::new(Kind::Scalar, old.det && m.reg(src).det);
    if base == 10 {
        m.store_stack(i32::from(off), size, new);
    } else if !new.det {
        m.tainted_memory = true;
    }
    if op & 1 == 1 {
        let r = if op == 0xf1 { 0 } else { src };
        m.set(
            r,
            Val::new(Kind::Scalar, old.det && old.kind != Kind::Uninit),
        );
    }
}

/// Pointer arithmetic and comparisons outside the common patterns: frame pointer plus
/// constants, packet differences, context pointer offsets, ALU32 and shifts on pointers.
fn pointer_misc(m: &mut Model) {
    let dst = m.dst_scalar();
    match m.rng.below(7) {
        0 | 1 => {
            let k = stack_off(m, 8);
            m.emit(Insn::new(0xbf, dst, 10, 0, 0));
            m.emit(Insn::new(0x07, dst, 0, 0, i32::from(k)));
            m.set(dst, Val::new(Kind::Stack(k), false));
        }
        2 if m.reg(8).kind == Kind::PktEnd && m.reg(7).kind == Kind::Pkt(0) => {
            m.emit(Insn::new(0xbf, dst, 8, 0, 0));
            m.emit(Insn::new(0x1f, dst, 7, 0, 0));
            m.set(dst, Val::new(Kind::Scalar, true));
        }
        3 if m.mistake() => {
            let ptrs = m.regs_where(Kind::is_pointer);
            let p = if ptrs.is_empty() {
                10
            } else {
                m.rng.pick(&ptrs)
            };
            let op = m.rng.pick(&[0x04, 0x67, 0x57, 0x27, 0xbc, 0x87, 0x1f]);
            m.emit(Insn::new(0xbf, dst, p, 0, 0));
            let imm = i32::from(op != 0x87);
            m.emit(Insn::new(op, dst, 0, 0, imm));
            m.set(dst, Val::new(Kind::Unknown, false));
        }
        4 if m.mistake() => {
            let ptrs = m.regs_where(Kind::is_pointer);
            let p = if ptrs.is_empty() {
                10
            } else {
                m.rng.pick(&ptrs)
            };
            let k = m.rng.range(-8, 16) as i32;
            m.emit(Insn::new(0xbf, dst, p, 0, 0));
            m.emit(Insn::new(0x07, dst, 0, 0, k));
            let size = access_size(m);
            load(m, dst, dst, 0, size);
            m.set(dst, Val::new(Kind::Scalar, false));
        }
        _ => {
            // Compare a pointer with something, skipping one instruction.
            let ptrs = m.regs_where(Kind::is_pointer);
            let p = if ptrs.is_empty() {
                10
            } else {
                m.rng.pick(&ptrs)
            };
            let s = m.src_scalar();
            let op = m.rng.pick(&[0x1d, 0x2d, 0x5d, 0x3d, 0xbd, 0xad]);
            m.emit(Insn::new(op, p, s, 1, 0));
            m.emit(Insn::new(0xb7, dst, 0, 0, 1));
            m.set(dst, Val::new(Kind::Unknown, false));
        }
    }
}
