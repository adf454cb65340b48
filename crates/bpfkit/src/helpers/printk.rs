//! `bpf_trace_printk`'s formatter: the kernel's format checks (`bpf_bprintf_prepare` in
//! kernel/bpf/helpers.c) and its `vsnprintf` conversions, for at most three arguments.
//!
//! Accepted: `%%`; flags `0 + - space` and a width; `%d %i %u %x %X` with `l`/`ll` (32-bit unless
//! `l`/`ll`); `%c`; `%s` (read from memory, empty when unreadable), `%pks`, `%pus`; `%p`,
//! `%px`, `%pK`, `%ps`, `%pS`, `%pB` (printed as the raw value, see docs/differences.md);
//! `%pI4 %pi4 %pI6 %pi6` (read 4 or 16 bytes). Anything else, a fourth conversion, or a
//! character that is neither printable ASCII nor white space is `-EINVAL`.

/// `-EINVAL`.
pub const EINVAL: i64 = -22;
/// `MAX_BPRINTF_BUF`: the formatted message is cut to this many bytes minus the NUL.
pub const MAX_BPRINTF_BUF: usize = 1024;
/// The longest string a `%s` copies (`MAX_BPRINTF_BUF`, the kernel's temporary buffer).
const MAX_STR: usize = 512;

/// Reads memory for `%s` and `%pI`: `(addr, len)` → bytes, or `None` when unreadable.
pub trait MemReader {
    /// Reads exactly `len` bytes at `addr`.
    fn read(&self, addr: u64, len: usize) -> Option<Vec<u8>>;
    /// Reads a NUL-terminated string of at most `max` bytes at `addr` (without the NUL).
    fn read_str(&self, addr: u64, max: usize) -> Option<Vec<u8>>;
}

/// The result of formatting: the message, and the length `bstr_printf` returns (the untruncated
/// length, as `snprintf` counts it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Formatted {
    /// The message as it appears in the trace pipe (at most `MAX_BPRINTF_BUF - 1` bytes).
    pub text: String,
    /// The helper's return value.
    pub len: usize,
}

#[derive(Default, Clone, Copy)]
struct Spec {
    zero: bool,
    left: bool,
    plus: bool,
    space: bool,
    width: usize,
}

/// Formats `fmt` (the bytes the program passed, `fmt_size` of them) with `args`.
///
/// # Errors
/// `-EINVAL` (as an `i64`) where the kernel rejects the format.
pub fn format(fmt: &[u8], args: [u64; 3], mem: &dyn MemReader) -> Result<Formatted, i64> {
    let end = fmt.iter().position(|&b| b == 0).ok_or(EINVAL)?;
    let fmt = &fmt[..end];
    let mut out: Vec<u8> = Vec::new();
    let mut next_arg = 0usize;
    let at = |i: usize| fmt.get(i).copied().unwrap_or(0);
    let mut i = 0;
    while i < fmt.len() {
        let c = fmt[i];
        if !(c.is_ascii() && (c.is_ascii_graphic() || c == b' ' || c.is_ascii_whitespace())) {
            return Err(EINVAL);
        }
        if c != b'%' {
            out.push(c);
            i += 1;
            continue;
        }
        if at(i + 1) == b'%' {
            out.push(b'%');
            i += 2;
            continue;
        }
        if next_arg >= args.len() {
            return Err(EINVAL);
        }
        let arg = args[next_arg];
        next_arg += 1;
        i += 1;
        let mut spec = Spec::default();
        while matches!(at(i), b'0' | b'+' | b'-' | b' ') {
            match at(i) {
                b'0' => spec.zero = true,
                b'+' => spec.plus = true,
                b'-' => spec.left = true,
                _ => spec.space = true,
            }
            i += 1;
        }
        if (b'1'..=b'9').contains(&at(i)) {
            while at(i).is_ascii_digit() {
                spec.width = spec
                    .width
                    .saturating_mul(10)
                    .saturating_add(usize::from(at(i) - b'0'));
                i += 1;
            }
        }
        let is_str_end = |b: u8| b == 0 || b.is_ascii_whitespace() || b.is_ascii_punctuation();
        match at(i) {
            b'p' => {
                let n1 = at(i + 1);
                if (n1 == b'k' || n1 == b'u') && at(i + 2) == b's' {
                    if !is_str_end(at(i + 3)) {
                        return Err(EINVAL);
                    }
                    let s = mem.read_str(arg, MAX_STR).unwrap_or_default();
                    pad(&mut out, &s, spec, false);
                    i += 3;
                } else if is_str_end(n1) || matches!(n1, b'K' | b'x' | b's' | b'S' | b'B') {
                    // A pointer: the raw value in 16 zero-padded hex digits (%px's form).
                    pad(&mut out, format!("{arg:016x}").as_bytes(), spec, false);
                    i += if is_str_end(n1) { 1 } else { 2 };
                } else if matches!(n1, b'i' | b'I') && matches!(at(i + 2), b'4' | b'6') {
                    let v4 = at(i + 2) == b'4';
                    let bytes = mem
                        .read(arg, if v4 { 4 } else { 16 })
                        .unwrap_or_else(|| vec![0; if v4 { 4 } else { 16 }]);
                    let text = ip_text(&bytes, v4, n1 == b'I');
                    pad(&mut out, text.as_bytes(), spec, false);
                    i += 3;
                } else {
                    return Err(EINVAL);
                }
            }
            b's' => {
                if !is_str_end(at(i + 1)) {
                    return Err(EINVAL);
                }
                let s = mem.read_str(arg, MAX_STR).unwrap_or_default();
                pad(&mut out, &s, spec, false);
                i += 1;
            }
            b'c' => {
                // The kernel stores the low byte of the argument.
                pad(&mut out, &[arg as u8], spec, false);
                i += 1;
            }
            _ => {
                let mut wide = false;
                if at(i) == b'l' {
                    wide = true;
                    i += 1;
                }
                if at(i) == b'l' {
                    i += 1;
                }
                let conv = at(i);
                let text = match conv {
                    b'd' | b'i' => {
                        let v = if wide {
                            arg as i64
                        } else {
                            i64::from(arg as u32 as i32)
                        };
                        let sign = if v < 0 {
                            "-"
                        } else if spec.plus {
                            "+"
                        } else if spec.space {
                            " "
                        } else {
                            ""
                        };
                        number(sign, &v.unsigned_abs().to_string(), spec)
                    }
                    b'u' => {
                        let v = if wide { arg } else { u64::from(arg as u32) };
                        number("", &v.to_string(), spec)
                    }
                    b'x' | b'X' => {
                        let v = if wide { arg } else { u64::from(arg as u32) };
                        let digits = if conv == b'x' {
                            format!("{v:x}")
                        } else {
                            format!("{v:X}")
                        };
                        number("", &digits, spec)
                    }
                    _ => return Err(EINVAL),
                };
                out.extend_from_slice(text.as_bytes());
                i += 1;
            }
        }
    }
    let len = out.len();
    out.truncate(MAX_BPRINTF_BUF - 1);
    Ok(Formatted {
        text: String::from_utf8_lossy(&out).into_owned(),
        len,
    })
}

/// A number with its sign, padded to the width: zeros go between sign and digits unless
/// left-justified, as `vsnprintf` does.
fn number(sign: &str, digits: &str, spec: Spec) -> String {
    let len = sign.len() + digits.len();
    let fill = spec.width.saturating_sub(len);
    if spec.left {
        format!("{sign}{digits}{}", " ".repeat(fill))
    } else if spec.zero {
        format!("{sign}{}{digits}", "0".repeat(fill))
    } else {
        format!("{}{sign}{digits}", " ".repeat(fill))
    }
}

fn pad(out: &mut Vec<u8>, text: &[u8], spec: Spec, _numeric: bool) {
    let fill = spec.width.saturating_sub(text.len());
    if !spec.left {
        out.extend(std::iter::repeat_n(b' ', fill));
    }
    out.extend_from_slice(text);
    if spec.left {
        out.extend(std::iter::repeat_n(b' ', fill));
    }
}

/// `%pI4` `1.2.3.4`, `%pi4` `001.002.003.004`, `%pI6` eight colon-separated 4-digit groups,
/// `%pi6` 32 hex digits.
fn ip_text(b: &[u8], v4: bool, upper_i: bool) -> String {
    if v4 {
        let parts: Vec<String> = b
            .iter()
            .map(|x| {
                if upper_i {
                    x.to_string()
                } else {
                    format!("{x:03}")
                }
            })
            .collect();
        parts.join(".")
    } else if upper_i {
        let groups: Vec<String> = b
            .chunks(2)
            .map(|g| format!("{:02x}{:02x}", g[0], g.get(1).copied().unwrap_or(0)))
            .collect();
        groups.join(":")
    } else {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Mem;
    impl MemReader for Mem {
        fn read(&self, addr: u64, len: usize) -> Option<Vec<u8>> {
            (addr == 0x1000).then(|| (1..=len as u8).collect())
        }
        fn read_str(&self, addr: u64, max: usize) -> Option<Vec<u8>> {
            (addr == 0x2000).then(|| b"world".iter().copied().take(max - 1).collect())
        }
    }

    fn fmt(f: &str, args: [u64; 3]) -> Result<String, i64> {
        let mut bytes = f.as_bytes().to_vec();
        bytes.push(0);
        format(&bytes, args, &Mem).map(|f| f.text)
    }

    /// Expected strings are what C's printf prints for the same conversions and values (the
    /// kernel's vsnprintf agrees with C for these integer forms).
    #[test]
    fn integers_format_like_c_printf() {
        assert_eq!(
            fmt("%d %u %x", [u64::MAX, u64::MAX, 255]).as_deref(),
            Ok("-1 4294967295 ff")
        );
        assert_eq!(
            fmt("%ld %lu", [u64::MAX, u64::MAX, 0]).as_deref(),
            Ok("-1 18446744073709551615")
        );
        assert_eq!(
            fmt("[%5d|%-5d|%05d]", [42, 42, 42]).as_deref(),
            Ok("[   42|42   |00042]")
        );
        assert_eq!(fmt("%+d % d %X", [7, 7, 0xabc]).as_deref(), Ok("+7  7 ABC"));
        assert_eq!(fmt("%05d", [(-42i64) as u64, 0, 0]).as_deref(), Ok("-0042"));
        assert_eq!(
            fmt("%llx %lli", [1 << 40, (-5i64) as u64, 0]).as_deref(),
            Ok("10000000000 -5")
        );
        assert_eq!(
            fmt("100%% %c", [u64::from(b'A'), 0, 0]).as_deref(),
            Ok("100% A")
        );
    }

    #[test]
    fn strings_and_addresses() {
        assert_eq!(
            fmt("hello %s!", [0x2000, 0, 0]).as_deref(),
            Ok("hello world!")
        );
        assert_eq!(fmt("[%s]", [0x9999, 0, 0]).as_deref(), Ok("[]"));
        assert_eq!(
            fmt("%pI4 %pi4", [0x1000, 0x1000, 0]).as_deref(),
            Ok("1.2.3.4 001.002.003.004")
        );
        assert_eq!(
            fmt("%pI6", [0x1000, 0, 0]).as_deref(),
            Ok("0102:0304:0506:0708:090a:0b0c:0d0e:0f10")
        );
    }

    #[test]
    fn the_kernel_rejects_these_formats() {
        assert_eq!(fmt("%d %d %d %d", [0; 3]), Err(EINVAL)); // a fourth conversion
        assert_eq!(fmt("%f", [0; 3]), Err(EINVAL));
        assert_eq!(fmt("%.2d", [0; 3]), Err(EINVAL)); // no precision
        assert_eq!(fmt("%sx", [0x2000, 0, 0]), Err(EINVAL)); // %s followed by a letter
        assert_eq!(fmt("%pZ", [0; 3]), Err(EINVAL));
        assert_eq!(fmt("tab\tok\n", [0; 3]).as_deref(), Ok("tab\tok\n"));
        assert_eq!(fmt("bell\x07", [0; 3]), Err(EINVAL));
        assert_eq!(format(b"no terminator", [0; 3], &Mem), Err(EINVAL));
    }

    #[test]
    fn length_is_untruncated() {
        let long = "x".repeat(2000) + "\0";
        let f = format(long.as_bytes(), [0; 3], &Mem).expect("plain text formats");
        assert_eq!(f.len, 2000);
        assert_eq!(f.text.len(), MAX_BPRINTF_BUF - 1);
    }

    /// Integer conversions against the C library's `snprintf`, an independent implementation
    /// of the same `printf` rules the kernel's `vsnprintf` follows for these forms.
    mod against_libc {
        use super::*;
        use proptest::prelude::*;

        fn libc_format(f: &str, v: u64) -> String {
            let cf = std::ffi::CString::new(f).expect("no NUL in format");
            let mut buf = vec![0u8; 256];
            // SAFETY: `buf` is writable for its length, `cf` is NUL-terminated, and the one
            // variadic argument matches the format's single conversion (a 64-bit integer for
            // `ll` forms, a 32-bit one otherwise).
            let n = unsafe {
                if f.contains("ll") {
                    libc::snprintf(buf.as_mut_ptr().cast(), buf.len(), cf.as_ptr(), v)
                } else {
                    libc::snprintf(buf.as_mut_ptr().cast(), buf.len(), cf.as_ptr(), v as u32)
                }
            };
            buf.truncate(usize::try_from(n).expect("snprintf succeeded"));
            String::from_utf8(buf).expect("ASCII")
        }

        proptest! {
            #[test]
            fn integer_conversions_match_snprintf(
                flags in "[-0+ ]{0,2}",
                width in 0usize..20,
                long in proptest::bool::ANY,
                conv in proptest::sample::select(vec!['d', 'i', 'u', 'x', 'X']),
                v in proptest::num::u64::ANY,
            ) {
                let w = if width == 0 { String::new() } else { width.to_string() };
                let len = if long { "ll" } else { "" };
                let f = format!("%{flags}{w}{len}{conv}");
                prop_assert_eq!(fmt(&f, [v, 0, 0]), Ok(libc_format(&f, v)));
            }
        }
    }
}
