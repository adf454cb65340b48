//! Lines and tokens of the kernel/LLVM syntax.
//!
//! A line is cleaned of what the tools put around an instruction before it is tokenized:
//! comments (`;` to the end: the verifier's register state and objdump's source lines; `//`;
//! `#` at the start of a line or after a space, so `bpf_map_lookup_elem#1` survives), the
//! verifier's `12: ` index, its liveness column and `(b7) ` opcode, objdump's `  12:` index
//! and raw bytes, and objdump's `<prog+0x220>` target annotation.

/// One token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Tok {
    /// `rN` (`wide`) or `wN`; the number is not range-checked yet.
    Reg { wide: bool, n: u32 },
    /// An unsigned literal as written (`12`, `0x1f`); signs are separate punctuation.
    Num(String),
    /// A name: mnemonic, size (`u8`), label, helper.
    Ident(String),
    /// Punctuation or an operator (`+=`, `s>>=`, `(`).
    P(&'static str),
}

/// What precedes the instruction on a line.
#[derive(Debug, Default)]
pub(super) struct Prefix {
    /// The verifier's `(xx)` opcode.
    pub opcode: Option<u8>,
    /// Labels defined on the line (`NAME:`, objdump's `0000000000000000 <prog>:`).
    pub labels: Vec<String>,
}

/// Removes comments, prefixes and annotations; returns the prefix and the instruction text
/// (empty when the line holds none).
pub(super) fn clean(line: &str) -> (Prefix, &str) {
    let mut prefix = Prefix::default();
    let mut s = line;
    if let Some(at) = s.find(';') {
        s = &s[..at];
    }
    if let Some(at) = s.find("//") {
        s = &s[..at];
    }
    let bytes = s.as_bytes();
    if let Some(at) = (0..bytes.len())
        .find(|&i| bytes[i] == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()))
    {
        s = &s[..at];
    }
    let mut s = s.trim();
    // objdump's noise: file and section headers, relocations.
    if s.contains("file format") || s.starts_with("Disassembly of section") || s.contains("R_BPF_")
    {
        return (prefix, "");
    }
    // objdump's symbol header `0000000000000000 <prog>:`.
    if let Some((addr, rest)) = s.split_once(' ') {
        if addr.len() >= 8 && addr.bytes().all(|b| b.is_ascii_hexdigit()) {
            if let Some(name) = rest
                .trim()
                .strip_prefix('<')
                .and_then(|r| r.strip_suffix(">:"))
            {
                prefix.labels.push(name.to_string());
                return (prefix, "");
            }
        }
    }
    // Labels, then slot indices (`12:`; the verifier's loop listing puts a number before it).
    while let Some((head, rest)) = s.split_once(':') {
        let head = head.trim();
        let is_index = !head.is_empty()
            && head
                .split_whitespace()
                .all(|w| w.bytes().all(|b| b.is_ascii_digit()))
            && head.split_whitespace().count() <= 2;
        if super::super::labels::is_label(head) {
            prefix.labels.push(head.to_string());
        } else if !is_index {
            break;
        }
        s = rest.trim_start();
    }
    // The verifier's liveness column (`0.2.......`).
    if let Some((col, rest)) = s.split_once(' ') {
        if col.len() == 10 && col.bytes().all(|b| b == b'.' || b.is_ascii_digit()) {
            s = rest.trim_start();
        }
    }
    // objdump's raw bytes: up to 16 two-digit hex groups.
    for _ in 0..16 {
        match s.split_once(char::is_whitespace) {
            Some((b, rest)) if b.len() == 2 && b.bytes().all(|c| c.is_ascii_hexdigit()) => {
                s = rest.trim_start();
            }
            _ => break,
        }
    }
    // The verifier's `(b7)`.
    if s.len() >= 4 && s.as_bytes()[0] == b'(' && s.as_bytes()[3] == b')' {
        if let Ok(code) = u8::from_str_radix(&s[1..3], 16) {
            prefix.opcode = Some(code);
            s = s[4..].trim_start();
        }
    }
    // objdump's `<prog+0x220>` after a jump target.
    if let Some(at) = s.rfind(" <") {
        let tail = &s[at + 2..];
        if tail.ends_with('>') && !tail.contains(char::is_whitespace) {
            s = s[..at].trim_end();
        }
    }
    (prefix, s)
}

/// Operators, longest first within each leading character.
const PUNCT: [&str; 33] = [
    "<<=", ">>=", "+=", "-=", "*=", "/=", "%=", "|=", "&=", "^=", "==", "!=", ">=", "<=", "=", ">",
    "<", "&", "+", "-", "*", "(", ")", "[", "]", ",", ":", "#", "|", "^", "%", "/", "@",
];

/// The signed operators: an `s` standing alone before them.
const SIGNED: [&str; 7] = ["s>>=", "s/=", "s%=", "s>=", "s<=", "s>", "s<"];

/// Splits instruction text into tokens.
pub(super) fn tokens(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if c.is_whitespace() {
            rest = &rest[c.len_utf8()..];
            continue;
        }
        if c == 's' {
            if let Some(op) = SIGNED.iter().find(|op| rest.starts_with(**op)) {
                out.push(Tok::P(op));
                rest = &rest[op.len()..];
                continue;
            }
        }
        if c.is_ascii_digit() {
            let len = rest
                .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                .unwrap_or(rest.len());
            out.push(Tok::Num(rest[..len].to_string()));
            rest = &rest[len..];
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' || c == '.' {
            let len = rest
                .find(|ch: char| {
                    !(ch.is_ascii_alphanumeric() || ch == '_' || ch == '.' || ch == '$')
                })
                .unwrap_or(rest.len());
            let word = &rest[..len];
            rest = &rest[len..];
            let reg = |p: &str| {
                word.strip_prefix(p)
                    .filter(|n| {
                        !n.is_empty() && n.len() <= 3 && n.bytes().all(|b| b.is_ascii_digit())
                    })
                    .and_then(|n| n.parse::<u32>().ok())
            };
            if let Some(n) = reg("r") {
                out.push(Tok::Reg { wide: true, n });
            } else if let Some(n) = reg("w") {
                out.push(Tok::Reg { wide: false, n });
            } else {
                out.push(Tok::Ident(word.to_string()));
            }
            continue;
        }
        if let Some(p) = PUNCT.iter().find(|p| rest.starts_with(**p)) {
            out.push(Tok::P(p));
            rest = &rest[p.len()..];
            continue;
        }
        return Err(format!("unexpected character `{c}`"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_of_the_verifier_and_objdump_are_removed() {
        let (p, s) = clean("12: (b7) r0 = 0                        ; R0=0");
        assert_eq!((p.opcode, s), (Some(0xb7), "r0 = 0"));
        let (p, s) = clean("      4: ..2....... (db) r0 = load_acquire((u64 *)(r2 +0))");
        assert_eq!(
            (p.opcode, s),
            (Some(0xdb), "r0 = load_acquire((u64 *)(r2 +0))")
        );
        let (p, s) = clean("  1   4: 0......... (07) r0 += -1");
        assert_eq!((p.opcode, s), (Some(0x07), "r0 += -1"));
        let (p, s) =
            clean("      10:\t15 01 39 00 00 00 00 00\tif r1 == 0x0 goto +0x39 <prog+0x220>");
        assert_eq!((p.opcode, s), (None, "if r1 == 0x0 goto +0x39"));
        let (p, s) = clean("0000000000000000 <prog>:");
        assert_eq!((p.labels, s), (vec!["prog".to_string()], ""));
        let (p, s) = clean("LBB0_3:  r0 = 1 # comment");
        assert_eq!((p.labels, s), (vec!["LBB0_3".to_string()], "r0 = 1"));
        assert_eq!(
            clean("5: (85) call bpf_map_lookup_elem#1").1,
            "call bpf_map_lookup_elem#1"
        );
        assert_eq!(clean("if r1 < r2 goto +1").1, "if r1 < r2 goto +1");
    }

    #[test]
    fn signed_operators_need_a_lone_s() {
        let t = tokens("if w2 s> 0x5 goto +1").unwrap_or_default();
        assert_eq!(t[2], Tok::P("s>"));
        let t = tokens("r0 = *(u8 *)skb[r1 + 3]").unwrap_or_default();
        assert!(t.contains(&Tok::Ident("skb".to_string())));
        let t = tokens("r1 s>>= 3").unwrap_or_default();
        assert_eq!(t[1], Tok::P("s>>="));
    }
}
