//! Log2 histograms as the kernel's samples print them (samples/bpf/tracex2_user.c,
//! `print_hist_for_pid()`): one row per power of two up to the highest non-empty slot,
//! `%8ld -> %-8ld : %-8ld |%-38s|`, with a bar of `*` scaled to the largest count.
//!
//! A program builds such a histogram in a map whose key ends with the slot (a `u32`,
//! `floor(log2(value))`) and whose value is a `u64` count; what comes before the slot in the key
//! (a pid, a task) groups rows into one histogram each ([`group_log2`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Width of the bar (`MAX_STARS`).
pub const MAX_STARS: usize = 38;
/// Number of slots (`MAX_INDEX`).
pub const MAX_INDEX: usize = 64;

/// The sample's `stars()`: `width * val / max - 1` stars, at most `width - 1`.
fn stars(val: u64, max: u64, width: usize) -> String {
    if max == 0 {
        return String::new();
    }
    let n = (u128::from(val) * width as u128 / u128::from(max)).saturating_sub(1);
    let n = usize::try_from(n).unwrap_or(usize::MAX).min(width - 1);
    "*".repeat(n)
}

/// The rows of a histogram whose slot `i` counts values in `[2^i, 2^(i+1))`, under a header
/// naming the unit (`byte_size`), as `print_hist_for_pid()` prints them.
#[must_use]
pub fn log2_text(unit: &str, data: &[u64]) -> String {
    let max_value = data.iter().copied().max().unwrap_or(0);
    let max_ind = data.iter().rposition(|&v| v != 0);
    let mut s = format!("{unit:>14}       : count     distribution\n");
    if let Some(max_ind) = max_ind {
        for i in 1..=max_ind + 1 {
            let lo = (1u128 << i) >> 1;
            let hi = (1u128 << i) - 1;
            let v = data[i - 1];
            let bar = stars(v, max_value, MAX_STARS);
            let _ = writeln!(s, "{lo:8} -> {hi:<8} : {v:<8} |{bar:<MAX_STARS$}|");
        }
    }
    s
}

/// Groups map entries (key, count) into histograms by key prefix: the key's last four bytes
/// are the slot (little-endian `u32`), the bytes before it the group. Slots past
/// [`MAX_INDEX`] and keys shorter than four bytes are ignored.
#[must_use]
pub fn group_log2(entries: &[(Vec<u8>, u64)]) -> BTreeMap<Vec<u8>, Vec<u64>> {
    let mut out: BTreeMap<Vec<u8>, Vec<u64>> = BTreeMap::new();
    for (k, v) in entries {
        let Some(split) = k.len().checked_sub(4) else {
            continue;
        };
        let slot = u32::from_le_bytes([k[split], k[split + 1], k[split + 2], k[split + 3]]);
        let Ok(slot) = usize::try_from(slot) else {
            continue;
        };
        if slot >= MAX_INDEX {
            continue;
        }
        let data = out
            .entry(k[..split].to_vec())
            .or_insert_with(|| vec![0; MAX_INDEX]);
        data[slot] = data[slot].saturating_add(*v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_match_the_samples_printf() {
        // data[0] = 2 (values 1), data[2] = 4 (values 4..7): max 4, stars 38*2/4-1 = 18 and
        // min(38*4/4-1, 37) = 37.
        let text = log2_text("byte_size", &[2, 0, 4]);
        let want = format!(
            "     byte_size       : count     distribution\n\
             {:>8} -> {:<8} : {:<8} |{:<38}|\n\
             {:>8} -> {:<8} : {:<8} |{:<38}|\n\
             {:>8} -> {:<8} : {:<8} |{:<38}|\n",
            1,
            1,
            2,
            "*".repeat(18),
            2,
            3,
            0,
            "",
            4,
            7,
            4,
            "*".repeat(37)
        );
        assert_eq!(text, want);
        assert_eq!(log2_text("x", &[0; 4]).lines().count(), 1);
    }

    #[test]
    fn groups_by_key_prefix() {
        let e = vec![
            (vec![7, 0, 0, 0, 3, 0, 0, 0], 5),
            (vec![7, 0, 0, 0, 0, 0, 0, 0], 1),
            (vec![8, 0, 0, 0, 1, 0, 0, 0], 2),
            (vec![8, 0, 0, 0, 99, 0, 0, 0], 2),
            (vec![1], 1),
        ];
        let g = group_log2(&e);
        assert_eq!(g.len(), 2);
        assert_eq!(&g[&vec![7, 0, 0, 0]][..4], &[1, 0, 0, 5]);
        assert_eq!(&g[&vec![8, 0, 0, 0]][..4], &[0, 2, 0, 0]);
    }
}
