//! The verifier log buffer with the kernel's layout rules (`kernel/bpf/log.c`,
//! `print_insn_state`): the state after an instruction is appended to the instruction's line
//! at column 40, and at log level 1 the log is rewound when a path ends so that only the path
//! to the error remains.

/// Log level bit: path to the error and the message.
pub const LEVEL1: u32 = 1;
/// Log level bit: every instruction's state, every path.
pub const LEVEL2: u32 = 2;
/// Log level bit: statistics.
pub const STATS: u32 = 4;

/// The log being written.
#[derive(Debug, Default, Clone)]
pub struct Log {
    level: u32,
    buf: String,
    /// Where the last instruction line starts, and its length including the newline; 0 when
    /// the last thing printed was not an instruction line (`prev_insn_print_pos`).
    insn_line: Option<(usize, usize)>,
}

/// `vlog_alignment`: the padding before the state that follows an instruction line,
/// `round_up(max(pos + BPF_LOG_MIN_ALIGNMENT / 2, BPF_LOG_ALIGNMENT), BPF_LOG_MIN_ALIGNMENT)
/// - pos - 1` with the minimum alignment 8 and the alignment 40. It is never negative:
/// the rounded value is at least `pos + 4`.
fn alignment(pos: usize) -> usize {
    (pos + 4).max(40).div_ceil(8) * 8 - pos - 1
}

impl Log {
    /// A log at `level` (bits [`LEVEL1`], [`LEVEL2`], [`STATS`]).
    #[must_use]
    pub fn new(level: u32) -> Log {
        Log {
            level,
            buf: String::new(),
            insn_line: None,
        }
    }

    /// Whether instructions and states are printed (levels 1 and 2).
    #[must_use]
    pub fn on(&self) -> bool {
        self.level & (LEVEL1 | LEVEL2) != 0
    }

    /// Whether level 2 is on.
    #[must_use]
    pub fn level2(&self) -> bool {
        self.level & LEVEL2 != 0
    }

    /// Whether statistics are printed.
    #[must_use]
    pub fn stats(&self) -> bool {
        self.level & STATS != 0
    }

    /// Current end position.
    #[must_use]
    pub fn pos(&self) -> usize {
        self.buf.len()
    }

    /// Rewinds to `pos` (`bpf_vlog_reset`).
    pub fn reset(&mut self, pos: usize) {
        self.buf.truncate(pos);
        self.insn_line = None;
    }

    /// Appends text verbatim.
    pub fn push(&mut self, s: &str) {
        self.buf.push_str(s);
        self.insn_line = None;
    }

    /// Prints the instruction line `idx: text`.
    pub fn insn(&mut self, idx: usize, text: &str) {
        let start = self.buf.len();
        self.buf.push_str(&format!("{idx}: {text}\n"));
        self.insn_line = Some((start, self.buf.len() - start));
    }

    /// Prints a state after the last instruction line (`print_insn_state`); `state` starts
    /// with a space, as `print_verifier_state` output does.
    pub fn insn_state(&mut self, idx: usize, state: &str) {
        match self.insn_line {
            Some((start, len)) => {
                self.buf.truncate(start + len - 1);
                let pad = alignment(len);
                for _ in 0..pad {
                    self.buf.push(' ');
                }
                self.buf.push(';');
            }
            None => self.buf.push_str(&format!("{idx}:")),
        }
        self.buf.push_str(state);
        self.buf.push('\n');
        self.insn_line = None;
    }

    /// The text so far.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.buf
    }

    /// The finished text.
    #[must_use]
    pub fn into_text(self) -> String {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_matches_vlog_alignment() {
        // round_up(max(pos + 4, 40), 8) - pos - 1
        assert_eq!(alignment(10), 29);
        assert_eq!(alignment(36), 3);
        assert_eq!(alignment(37), 10);
        assert_eq!(alignment(40), 7);
        assert_eq!(alignment(44), 3);
    }

    #[test]
    fn state_is_appended_at_column_38_as_the_kernel_does() {
        // Linux 6.18: "0: (b7) r0 = 0                        ; R0=0" (';' at byte 38).
        let mut log = Log::new(1);
        log.insn(0, "(b7) r0 = 0");
        log.insn_state(0, " R0=0");
        assert_eq!(log.text(), "0: (b7) r0 = 0                        ; R0=0\n");
        assert_eq!(log.text().find(';'), Some(38));
    }

    #[test]
    fn long_lines_align_to_the_next_multiple_of_40() {
        let mut log = Log::new(1);
        let text = "(85) call bpf_map_lookup_elem#1";
        log.insn(10, text);
        log.insn_state(10, " R0=1");
        // Line "10: (85) call bpf_map_lookup_elem#1" is 35 chars + newline = 36 → ';' at 38.
        assert_eq!(log.text().find(';'), Some(38));
        // Linux 6.18 prints "0: (85) call bpf_get_smp_processor_id#8       ; R0=..." with ';'
        // at byte 46: a 39-byte line (40 with its newline) rounds up to 48, not to 80.
        let mut log = Log::new(1);
        log.insn(0, "(85) call bpf_get_smp_processor_id#8");
        log.insn_state(0, " R0=1");
        assert_eq!(log.text().find(';'), Some(46));
    }
}
