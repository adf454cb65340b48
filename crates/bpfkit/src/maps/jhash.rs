//! Bob Jenkins' lookup3 hash as the kernel's `include/linux/jhash.h` computes it (`jhash`,
//! `jhash2`), so a hash map created with `BPF_F_ZERO_SEED` puts keys in the same buckets, and
//! iterates them in the same order, as Linux.

const JHASH_INITVAL: u32 = 0xdead_beef;

/// `__jhash_mix`.
fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

/// `__jhash_final`.
fn final_(a: &mut u32, b: &mut u32, c: &mut u32) {
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(14));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(11));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(25));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(16));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(4));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(14));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(24));
}

fn word(k: &[u8]) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&k[..4]);
    u32::from_ne_bytes(b)
}

/// `jhash(key, length, initval)` over bytes.
#[must_use]
pub fn jhash(key: &[u8], initval: u32) -> u32 {
    let len = key.len() as u32;
    let mut a = JHASH_INITVAL.wrapping_add(len).wrapping_add(initval);
    let mut b = a;
    let mut c = a;
    let mut k = key;
    while k.len() > 12 {
        a = a.wrapping_add(word(&k[0..]));
        b = b.wrapping_add(word(&k[4..]));
        c = c.wrapping_add(word(&k[8..]));
        mix(&mut a, &mut b, &mut c);
        k = &k[12..];
    }
    if k.is_empty() {
        return c;
    }
    // The switch's fall-through: byte i of the tail goes into a, b or c at shift 8*(i%4).
    for (i, &byte) in k.iter().enumerate() {
        let v = u32::from(byte) << (8 * (i % 4));
        match i / 4 {
            0 => a = a.wrapping_add(v),
            1 => b = b.wrapping_add(v),
            _ => c = c.wrapping_add(v),
        }
    }
    final_(&mut a, &mut b, &mut c);
    c
}

/// `jhash2(key, length / 4, initval)` over native-endian 32-bit words.
#[must_use]
pub fn jhash2(key: &[u8], initval: u32) -> u32 {
    let words = key.len() / 4;
    let mut a = JHASH_INITVAL
        .wrapping_add((words as u32) << 2)
        .wrapping_add(initval);
    let mut b = a;
    let mut c = a;
    let mut k = &key[..words * 4];
    while k.len() > 12 {
        a = a.wrapping_add(word(&k[0..]));
        b = b.wrapping_add(word(&k[4..]));
        c = c.wrapping_add(word(&k[8..]));
        mix(&mut a, &mut b, &mut c);
        k = &k[12..];
    }
    match k.len() / 4 {
        3 => {
            c = c.wrapping_add(word(&k[8..]));
            b = b.wrapping_add(word(&k[4..]));
            a = a.wrapping_add(word(k));
        }
        2 => {
            b = b.wrapping_add(word(&k[4..]));
            a = a.wrapping_add(word(k));
        }
        1 => a = a.wrapping_add(word(k)),
        _ => return c,
    }
    final_(&mut a, &mut b, &mut c);
    c
}

/// The kernel's `htab_map_hash`: `jhash2` for key sizes that are a multiple of 4, else `jhash`.
#[must_use]
pub fn htab_hash(key: &[u8], seed: u32) -> u32 {
    if key.len().is_multiple_of(4) {
        jhash2(key, seed)
    } else {
        jhash(key, seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jhash_and_jhash2_agree_on_word_keys_of_the_same_bytes() {
        // lookup3's hashlittle and hashword agree on little-endian word-aligned input
        // (both add the words; only the length seeds differ as bytes vs words<<2 = bytes).
        for len in [4usize, 8, 12, 16, 20, 24, 28] {
            let key: Vec<u8> = (0..len as u8)
                .map(|i| i.wrapping_mul(37).wrapping_add(1))
                .collect();
            assert_eq!(jhash(&key, 7), jhash2(&key, 7), "len {len}");
        }
    }

    #[test]
    fn empty_key_returns_the_initial_value() {
        assert_eq!(jhash(&[], 0), 0xdead_beef);
        assert_eq!(jhash2(&[], 1), 0xdead_bef0);
    }
}
