//! The runtime's answers to the verifier's questions ([`bpfkit_verifier::env::Env`]): context
//! access rules from [`crate::progtype::access`], helper prototypes from the
//! [helper registry](crate::helpers::registry), maps from the object table.

use crate::helpers::{helper_name, registry};
use crate::object::{Bpf, Fd};
use crate::progtype::access::{self, CtxAccess, Direction};
use bpfkit_verifier::env::{AccessKind, CtxField, Env, HelperProto, MapInfo, MapType, ProgType};

/// The runtime's context rule in the verifier's vocabulary: what a context access of `size`
/// bytes at `off` yields, or `None` when Linux refuses it ([`access::ctx_access`]).
#[must_use]
pub fn ctx_field(prog_type: ProgType, off: i32, size: u32, kind: AccessKind) -> Option<CtxField> {
    to_field(access::ctx_access(prog_type, off, size, direction(kind)))
}

/// [`ctx_field`] for a load without CAP_BPF ([`access::ctx_access_unprivileged`]).
#[must_use]
pub fn ctx_field_unprivileged(
    prog_type: ProgType,
    off: i32,
    size: u32,
    kind: AccessKind,
) -> Option<CtxField> {
    to_field(access::ctx_access_unprivileged(
        prog_type,
        off,
        size,
        direction(kind),
    ))
}

fn direction(kind: AccessKind) -> Direction {
    match kind {
        AccessKind::Read => Direction::Read,
        AccessKind::Write => Direction::Write,
    }
}

fn to_field(access: CtxAccess) -> Option<CtxField> {
    match access {
        CtxAccess::Denied => None,
        // `__sk_buff.sk` is always NULL in bpfkit (no sockets), so a scalar is what a
        // program can observe; see docs/differences.md.
        CtxAccess::Scalar | CtxAccess::SockCommonOrNull => Some(CtxField::Scalar),
        CtxAccess::PacketData => Some(CtxField::PacketData),
        CtxAccess::PacketEnd => Some(CtxField::PacketEnd),
        CtxAccess::PacketMeta => Some(CtxField::PacketMeta),
    }
}

/// The verifier's name for the map type with kernel number `id`, if it models that type.
fn verifier_map_type(id: u32) -> Option<MapType> {
    MapType::ALL.into_iter().find(|t| t.kernel_id() == id)
}

/// The environment programs loaded into a [`Bpf`] are verified in.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeEnv<'a> {
    bpf: &'a Bpf,
}

impl<'a> RuntimeEnv<'a> {
    /// The environment of `bpf`'s object table.
    #[must_use]
    pub fn new(bpf: &'a Bpf) -> Self {
        Self { bpf }
    }
}

impl Env for RuntimeEnv<'_> {
    fn ctx_access(
        &self,
        prog_type: ProgType,
        off: i32,
        size: u32,
        kind: AccessKind,
    ) -> Option<CtxField> {
        ctx_field(prog_type, off, size, kind)
    }

    fn ctx_access_unprivileged(
        &self,
        prog_type: ProgType,
        off: i32,
        size: u32,
        kind: AccessKind,
    ) -> Option<CtxField> {
        ctx_field_unprivileged(prog_type, off, size, kind)
    }

    fn helper(&self, prog_type: ProgType, id: i32) -> Option<HelperProto> {
        registry::proto(prog_type, id)
    }

    fn helper_name(&self, id: i32) -> Option<&'static str> {
        helper_name(id)
    }

    fn map(&self, handle: i32) -> Option<MapInfo> {
        let fd = Fd(u32::try_from(handle).ok()?);
        let map = self.bpf.map(fd).ok()?;
        let info = map.info();
        Some(MapInfo {
            map_type: verifier_map_type(info.map_type.raw())?,
            key_size: info.key_size,
            value_size: info.value_size,
            max_entries: info.max_entries,
        })
    }

    fn nr_cpu_ids(&self) -> Option<u32> {
        Some(crate::maps::cpu::possible_cpus())
    }

    fn inner_map(&self, handle: i32) -> Option<MapInfo> {
        let fd = Fd(u32::try_from(handle).ok()?);
        let map = self.bpf.map(fd).ok()?;
        let template = map.as_map_of_maps()?.template();
        Some(MapInfo {
            map_type: verifier_map_type(template.map_type().raw())?,
            key_size: template.key_size(),
            value_size: template.value_size(),
            max_entries: template.max_entries(),
        })
    }
}
