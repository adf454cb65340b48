//! The statistics the verifier appends to its log (log level 4, and the `processed` line at
//! every level): instructions processed, states, verification time, stack depth. Benchmarks
//! compare bpfkit's verifier with these numbers.

/// The statistics of one verifier run, parsed from its log (kernel/bpf/verifier.c
/// `print_verification_stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifierStats {
    /// `verification time N usec` (log level 4 only).
    pub verification_time_us: Option<u64>,
    /// `stack depth A+B+...`: the stack depth of each subprogram (log level 4 only).
    pub stack_depth: Vec<u32>,
    /// `processed N insns`: instructions the verifier processed.
    pub processed_insns: u64,
    /// `(limit N)`: the complexity limit.
    pub insn_limit: u64,
    /// `max_states_per_insn N`.
    pub max_states_per_insn: u64,
    /// `total_states N`.
    pub total_states: u64,
    /// `peak_states N`.
    pub peak_states: u64,
    /// `mark_read N`.
    pub mark_read: u64,
}

impl VerifierStats {
    /// Parses the statistics out of a verifier log; `None` when it has no `processed` line.
    #[must_use]
    pub fn parse(log: &str) -> Option<Self> {
        let mut stats = VerifierStats::default();
        let mut found = false;
        for line in log.lines() {
            if let Some(rest) = line.strip_prefix("verification time ") {
                stats.verification_time_us = rest.strip_suffix(" usec")?.parse().ok();
            } else if let Some(rest) = line.strip_prefix("stack depth ") {
                stats.stack_depth = rest
                    .split('+')
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .ok()?;
            } else if let Some(at) = line.find("processed ") {
                let words: Vec<&str> = line[at..].split_whitespace().collect();
                // processed N insns (limit N) max_states_per_insn N total_states N peak_states N mark_read N
                let num =
                    |i: usize| -> Option<u64> { words.get(i)?.trim_end_matches(')').parse().ok() };
                if words.get(2) != Some(&"insns") || words.get(3) != Some(&"(limit") {
                    continue;
                }
                stats.processed_insns = num(1)?;
                stats.insn_limit = num(4)?;
                for pair in words[5..].chunks(2) {
                    if let [key, value] = pair {
                        let value: u64 = value.parse().ok()?;
                        match *key {
                            "max_states_per_insn" => stats.max_states_per_insn = value,
                            "total_states" => stats.total_states = value,
                            "peak_states" => stats.peak_states = value,
                            "mark_read" => stats.mark_read = value,
                            _ => {}
                        }
                    }
                }
                found = true;
            }
        }
        found.then_some(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log-level-4 log of `r0 = 0; exit` from Linux 6.18.
    const LEVEL4: &str = "verification time 12 usec\nstack depth 0\nprocessed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n";

    #[test]
    fn parses_every_statistic() {
        assert_eq!(
            VerifierStats::parse(LEVEL4),
            Some(VerifierStats {
                verification_time_us: Some(12),
                stack_depth: vec![0],
                processed_insns: 2,
                insn_limit: 1_000_000,
                ..VerifierStats::default()
            })
        );
        let two = "stack depth 8+32\nprocessed 17 insns (limit 1000000) max_states_per_insn 1 total_states 3 peak_states 3 mark_read 2\n";
        let s = VerifierStats::parse(two).unwrap_or_default();
        assert_eq!(s.stack_depth, vec![8, 32]);
        assert_eq!(
            (
                s.processed_insns,
                s.max_states_per_insn,
                s.total_states,
                s.peak_states,
                s.mark_read
            ),
            (17, 1, 3, 3, 2)
        );
    }

    #[test]
    fn statistics_after_a_message_without_newline() {
        let log = "expected prog array map for tail callprocessed 3 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n";
        assert_eq!(
            VerifierStats::parse(log).map(|s| s.processed_insns),
            Some(3)
        );
        assert_eq!(VerifierStats::parse("R2 !read_ok\n"), None);
    }
}
