//! A program under assembly: slots emitted so far, label definitions, and the jump fields that
//! wait for a label, resolved once the whole text is read (labels may be used before they are
//! defined).

use super::AsmError;
use crate::insn::Insn;
use crate::op::Op;
use std::collections::HashMap;

/// Which field of a slot holds a label's relative offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    /// The 16-bit offset (conditional jumps, `goto`).
    Off16,
    /// The 32-bit immediate (`gotol`, local calls, LD_IMM64 of a function).
    Imm32,
    /// `call NAME`: a local call when NAME is a label, else a helper call by name.
    CallByName,
}

struct Fixup {
    slot: usize,
    line: usize,
    label: String,
    field: Field,
}

/// Slots, labels and pending label references.
#[derive(Default)]
pub(crate) struct Builder {
    insns: Vec<Insn>,
    labels: HashMap<String, usize>,
    /// Labels defined by the syntax itself (the conformance suite's `exit`), used only when the
    /// text defines no label of that name.
    implicit: HashMap<String, usize>,
    fixups: Vec<Fixup>,
}

impl Builder {
    /// The index of the next slot.
    pub fn next_slot(&self) -> usize {
        self.insns.len()
    }

    /// Defines `name` at the next slot.
    pub fn define(&mut self, name: &str, line: usize) -> Result<(), AsmError> {
        let slot = self.insns.len();
        if self.labels.insert(name.to_string(), slot).is_some() {
            return Err(AsmError::new(
                line,
                format!("label `{name}` is defined twice"),
            ));
        }
        Ok(())
    }

    /// Defines `name` at the next slot unless it is already implicitly defined.
    pub fn define_implicit(&mut self, name: &str) {
        let slot = self.insns.len();
        self.implicit.entry(name.to_string()).or_insert(slot);
    }

    /// The opcode of slot `slot`, if it exists.
    pub fn code_at(&self, slot: usize) -> Option<u8> {
        self.insns.get(slot).map(|i| i.code)
    }

    /// Appends an instruction; returns the index of its first slot.
    pub fn push(&mut self, op: &Op) -> usize {
        let slot = self.insns.len();
        op.encode_into(&mut self.insns);
        slot
    }

    /// Appends one raw slot (an encoding no [`Op`] describes).
    pub fn push_raw(&mut self, insn: Insn) -> usize {
        self.insns.push(insn);
        self.insns.len() - 1
    }

    /// Asks for `field` of `slot` to be set to the offset of `label` relative to `slot + 1`.
    pub fn refer(&mut self, slot: usize, line: usize, label: &str, field: Field) {
        self.fixups.push(Fixup {
            slot,
            line,
            label: label.to_string(),
            field,
        });
    }

    /// Resolves every label reference and returns the slots.
    pub fn finish(self) -> Result<Vec<Insn>, AsmError> {
        self.finish_with(&|_| None)
    }

    /// Resolves every label reference, `call NAME`s that name no label through `helper_id`,
    /// and returns the slots.
    pub fn finish_with(
        mut self,
        helper_id: &dyn Fn(&str) -> Option<i32>,
    ) -> Result<Vec<Insn>, AsmError> {
        for f in &self.fixups {
            let target = self
                .labels
                .get(&f.label)
                .or_else(|| self.implicit.get(&f.label));
            let target = match (target, f.field) {
                (Some(t), _) => t,
                (None, Field::CallByName) => {
                    let id = helper_id(&f.label).ok_or_else(|| {
                        AsmError::new(
                            f.line,
                            format!("`{}` is neither a label nor a known helper", f.label),
                        )
                    })?;
                    if let Some(insn) = self.insns.get_mut(f.slot) {
                        insn.src = 0;
                        insn.imm = id;
                    }
                    continue;
                }
                (None, _) => {
                    return Err(AsmError::new(
                        f.line,
                        format!("unknown label `{}`", f.label),
                    ))
                }
            };
            // Both are slot indices of one Vec, so they fit i64.
            let rel = *target as i64 - (f.slot as i64 + 1);
            let Some(insn) = self.insns.get_mut(f.slot) else {
                return Err(AsmError::new(
                    f.line,
                    "internal: label reference past the end",
                ));
            };
            match f.field {
                Field::Off16 => {
                    insn.off = i16::try_from(rel).map_err(|_| {
                        AsmError::new(
                            f.line,
                            format!(
                                "label `{}` is {rel} slots away: beyond a 16-bit offset",
                                f.label
                            ),
                        )
                    })?;
                }
                Field::CallByName => {
                    insn.src = crate::opcode::PSEUDO_CALL;
                    insn.imm = i32::try_from(rel).map_err(|_| {
                        AsmError::new(f.line, format!("label `{}` is {rel} slots away", f.label))
                    })?;
                }
                Field::Imm32 => {
                    insn.imm = i32::try_from(rel).map_err(|_| {
                        AsmError::new(
                            f.line,
                            format!(
                                "label `{}` is {rel} slots away: beyond a 32-bit offset",
                                f.label
                            ),
                        )
                    })?;
                }
            }
        }
        Ok(self.insns)
    }
}

/// True when `s` can name a label: a letter, `_` or `.` first, then letters, digits, `_`, `.`.
pub(crate) fn is_label(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '.')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}
