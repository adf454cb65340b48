//! No input panics: random creation attributes (any type number, sizes, flags) and random
//! commands with buffers of any length, flags and descriptors, through the object API and the
//! program-side calls. Every failure must be an [`Errno`] value.

use bpfkit::maps::{MapAttr, MapType};
use bpfkit::{Bpf, Fd};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Cmd {
    Create(u32, u32, u32, u32, u32, u32),
    Lookup(u32, Vec<u8>, usize),
    Update(u32, Vec<u8>, Vec<u8>, u64),
    Delete(u32, Vec<u8>),
    Next(u32, Option<Vec<u8>>, usize),
    Pop(u32, Vec<u8>, usize),
    Close(u32),
    Prog(u32, Vec<u8>, Vec<u8>, u64),
    Ring(u32, u64, u64),
}

fn small_size() -> impl Strategy<Value = u32> {
    prop_oneof![0u32..10, Just(4u32), Just(8), 0u32..300, Just(u32::MAX)]
}

fn buf() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..24)
}

fn cmd() -> impl Strategy<Value = Cmd> {
    let fd = 0u32..20;
    prop_oneof![
        3 => (
            prop_oneof![0u32..35, Just(1u32), Just(2), Just(11), Just(12), Just(27)],
            small_size(),
            small_size(),
            prop_oneof![0u32..10, Just(4096u32), Just(8192), any::<u32>().prop_map(|m| m % (1 << 20))],
            prop_oneof![Just(0u32), any::<u32>().prop_map(|f| 1 << (f % 20)), any::<u32>()],
            0u32..20,
        )
            .prop_map(|(t, k, v, m, f, i)| Cmd::Create(t, k, v, m, f, i)),
        2 => (fd.clone(), buf(), 0usize..40).prop_map(|(f, k, n)| Cmd::Lookup(f, k, n)),
        3 => (fd.clone(), buf(), buf(), prop_oneof![0u64..8, any::<u64>()])
            .prop_map(|(f, k, v, fl)| Cmd::Update(f, k, v, fl)),
        1 => (fd.clone(), buf()).prop_map(|(f, k)| Cmd::Delete(f, k)),
        1 => (fd.clone(), prop::option::of(buf()), 0usize..40).prop_map(|(f, k, n)| Cmd::Next(f, k, n)),
        1 => (fd.clone(), buf(), 0usize..40).prop_map(|(f, k, n)| Cmd::Pop(f, k, n)),
        1 => fd.clone().prop_map(Cmd::Close),
        2 => (fd.clone(), buf(), buf(), prop_oneof![0u64..8, any::<u64>()])
            .prop_map(|(f, k, v, fl)| Cmd::Prog(f, k, v, fl)),
        1 => (fd, 0u64..5000, 0u64..4).prop_map(|(f, s, fl)| Cmd::Ring(f, s, fl)),
    ]
}

fn run(bpf: &Bpf, c: &Cmd) {
    match c {
        Cmd::Create(t, k, v, m, f, i) => {
            let _ = bpf.map_create(&MapAttr {
                map_type: *t,
                key_size: *k,
                value_size: *v,
                max_entries: *m,
                map_flags: *f,
                inner_map_fd: *i,
                ..MapAttr::default()
            });
        }
        Cmd::Lookup(f, k, n) => {
            let mut out = vec![0u8; *n];
            let _ = bpf.map_lookup_elem(Fd(*f), k, &mut out);
            let _ = bpf.map_lookup(Fd(*f), k);
        }
        Cmd::Update(f, k, v, fl) => {
            let _ = bpf.map_update_elem(Fd(*f), k, v, *fl);
        }
        Cmd::Delete(f, k) => {
            let _ = bpf.map_delete_elem(Fd(*f), k);
        }
        Cmd::Next(f, k, n) => {
            let mut out = vec![0u8; *n];
            let _ = bpf.map_get_next_key(Fd(*f), k.as_deref(), &mut out);
            let _ = bpf.map_next_key(Fd(*f), k.as_deref());
        }
        Cmd::Pop(f, k, n) => {
            let mut out = vec![0u8; *n];
            let _ = bpf.map_lookup_and_delete_elem(Fd(*f), k, &mut out);
        }
        Cmd::Close(f) => {
            let _ = bpf.close(Fd(*f));
        }
        Cmd::Prog(f, k, v, fl) => {
            if let Ok(m) = bpf.map(Fd(*f)) {
                let _ = m.lookup_ptr(k);
                let _ = m.lookup_ptr_on_cpu(k, (*fl % 8) as u32);
                let _ = m.prog_update(k, v, *fl);
                let _ = m.prog_delete(k);
                let _ = m.push(v, *fl);
                let mut out = v.clone();
                let _ = m.pop(&mut out);
                let _ = m.peek(&mut out);
            }
        }
        Cmd::Ring(f, size, fl) => {
            if let Some(rb) = bpf.map(Fd(*f)).ok().as_ref().and_then(|m| m.as_ringbuf()) {
                let p = rb.reserve(*size, *fl);
                if !p.is_null() {
                    if size % 2 == 0 {
                        rb.submit(p, *fl);
                    } else {
                        rb.discard(p, *fl);
                    }
                }
                // Pointers that are not records are ignored.
                rb.submit(std::ptr::null(), 0);
                rb.discard(p.wrapping_add(3), 0);
                let _ = rb.output(&[1, 2, 3], *fl);
                let _ = rb.consume(|_| {});
                let _ = rb.query(*fl);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_command_sequence_panics(cmds in prop::collection::vec(cmd(), 1..60)) {
        let bpf = Bpf::new();
        // Start with one map of each type so commands mostly reach a map.
        for t in MapType::ALL {
            let (k, v, m, f) = match t {
                MapType::LpmTrie => (8, 4, 8, 1),
                MapType::Queue | MapType::Stack => (0, 4, 4, 0),
                MapType::RingBuf => (0, 0, 4096, 0),
                MapType::ProgArray | MapType::ArrayOfMaps | MapType::HashOfMaps => (4, 4, 4, 0),
                _ => (4, 8, 4, 0),
            };
            let _ = bpf.map_create(&MapAttr::new(t, k, v, m).flags(f).inner_map_fd(4));
        }
        for c in &cmds {
            run(&bpf, c);
        }
    }
}
