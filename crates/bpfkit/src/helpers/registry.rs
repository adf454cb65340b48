//! Every helper bpfkit implements, looked up by program type and id.

use super::def::{Body, HelperDef};
use super::{
    map_helpers, packet, perf_event, redirect_map, ringbuf, stack, task, trace, tunnel, vlan, xdp,
};
use bpfkit_verifier::env::{HelperProto, ProgType};
use bpfkit_vm::Helpers;
use std::sync::OnceLock;

/// All definitions.
pub fn all() -> &'static [HelperDef] {
    static ALL: OnceLock<Vec<HelperDef>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut v = map_helpers::defs();
        v.extend(task::defs());
        v.extend(trace::defs());
        v.extend(packet::defs());
        v.extend(vlan::defs());
        v.extend(tunnel::defs());
        v.extend(xdp::defs());
        v.extend(ringbuf::defs());
        v.extend(perf_event::defs());
        v.extend(stack::defs());
        v.extend(redirect_map::defs());
        v
    })
}

/// The definition of helper `id` for programs of type `t`, if `t` may call it.
#[must_use]
pub fn lookup(t: ProgType, id: i32) -> Option<&'static HelperDef> {
    let id = u32::try_from(id).ok()?;
    all().iter().find(|d| d.id == id && d.types.contains(t))
}

/// The prototype of helper `id` for `t` (what the verifier's `Env::helper` answers).
#[must_use]
pub fn proto(t: ProgType, id: i32) -> Option<HelperProto> {
    lookup(t, id).map(|d| d.proto)
}

/// The interpreter's helper table for programs of type `t`.
#[must_use]
pub fn table(t: ProgType) -> Helpers {
    let mut h = Helpers::new();
    for d in all().iter().filter(|d| d.types.contains(t)) {
        match d.body {
            Body::Call(helper) => {
                h.set(d.id, helper);
            }
            Body::TailCall => {
                h.set_tail_call(d.id);
            }
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_uapi_table() {
        for d in all() {
            let id = i32::try_from(d.id).expect("small id");
            assert_eq!(
                super::super::helper_name(id),
                Some(d.proto.name),
                "helper {}",
                d.id
            );
        }
    }

    #[test]
    fn one_definition_per_type_and_id() {
        for t in ProgType::ALL {
            for d in all().iter().filter(|d| d.types.contains(t)) {
                let n = all()
                    .iter()
                    .filter(|e| e.id == d.id && e.types.contains(t))
                    .count();
                assert_eq!(n, 1, "helper {} for {t}", d.id);
            }
        }
    }
}
