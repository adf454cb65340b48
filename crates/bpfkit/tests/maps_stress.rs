//! Multithreaded stress tests: threads acting as programs (atomic adds through the value
//! pointers `lookup_ptr` returns, ring buffer producers, queue pushes) while other threads use
//! the API on the same maps. Final counts must be exact: no update lost, no record torn.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use bpfkit::maps::{cpu, flags, BpfMap, MapAttr, MapType};
use bpfkit::{Bpf, Errno};

const THREADS: u64 = 4;
const ITERS: u64 = 20_000;

/// `lock *(u64 *)(r0 + 0) += 1` as the interpreter runs it on a value pointer.
fn atomic_add(ptr: *mut u8, n: u64) -> bool {
    if ptr.is_null() {
        return false;
    }
    // SAFETY: `ptr` came from `BpfMap::lookup_ptr` on a map with 8-byte values, which the test
    // keeps alive: it points to 8 readable, writable, 8-aligned bytes that stay valid while the
    // map lives; all concurrent accesses to it are atomic.
    let cell = unsafe { &*ptr.cast::<AtomicU64>() };
    cell.fetch_add(n, Ordering::Relaxed);
    true
}

fn read_u64(map: &BpfMap, key: &[u8]) -> Result<u64, Errno> {
    let mut v = vec![0u8; map.user_value_size()];
    map.lookup(key, &mut v)?;
    Ok(v.chunks(8)
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or([0; 8])))
        .sum())
}

#[test]
fn array_atomic_adds_through_pointers_lose_nothing_while_the_api_writes() -> Result<(), Errno> {
    let bpf = Bpf::new();
    let fd = bpf.map_create(&MapAttr::new(MapType::Array, 4, 8, 16))?;
    let map = bpf.map(fd)?;
    thread::scope(|s| {
        for t in 0..THREADS {
            let map = &map;
            s.spawn(move || {
                for i in 0..ITERS {
                    let key = ((t + i) % 4) as u32;
                    assert!(atomic_add(map.lookup_ptr(&key.to_ne_bytes()), 1));
                }
            });
        }
        let bpf = &bpf;
        s.spawn(move || {
            for i in 0..ITERS {
                let key = (4 + i % 12) as u32;
                let r = bpf.map_update_elem(fd, &key.to_ne_bytes(), &i.to_ne_bytes(), 0);
                assert!(r.is_ok(), "{r:?}");
                let _ = bpf.map_lookup(fd, &((i % 4) as u32).to_ne_bytes());
            }
        });
    });
    let total: u64 = (0u32..4)
        .map(|k| read_u64(&map, &k.to_ne_bytes()))
        .sum::<Result<u64, Errno>>()?;
    assert_eq!(total, THREADS * ITERS);
    Ok(())
}

#[test]
fn hash_atomic_adds_lose_nothing_while_the_api_churns_other_keys() -> Result<(), Errno> {
    for map_flags in [0, flags::BPF_F_NO_PREALLOC] {
        let bpf = Bpf::new();
        let fd = bpf.map_create(&MapAttr::new(MapType::Hash, 8, 8, 64).flags(map_flags))?;
        let map = bpf.map(fd)?;
        for k in 0u64..4 {
            bpf.map_update_elem(
                fd,
                &k.to_ne_bytes(),
                &0u64.to_ne_bytes(),
                flags::BPF_NOEXIST,
            )?;
        }
        thread::scope(|s| {
            for t in 0..THREADS {
                let map = &map;
                s.spawn(move || {
                    for i in 0..ITERS {
                        let key = (t + i) % 4;
                        assert!(atomic_add(map.lookup_ptr(&key.to_ne_bytes()), 1));
                    }
                });
            }
            // Two API threads insert, replace and delete 40 other keys: element memory is freed
            // and reused, buckets change, while the hot keys are hammered.
            for a in 0..2u64 {
                let bpf = &bpf;
                s.spawn(move || {
                    for i in 0..ITERS {
                        let key = 100 + a * 20 + i % 20;
                        let k = key.to_ne_bytes();
                        match i % 3 {
                            0 | 1 => {
                                let r = bpf.map_update_elem(fd, &k, &i.to_ne_bytes(), 0);
                                assert!(r.is_ok(), "{r:?}");
                            }
                            _ => {
                                let _ = bpf.map_delete_elem(fd, &k);
                            }
                        }
                    }
                });
            }
        });
        let total: u64 = (0u64..4)
            .map(|k| read_u64(&map, &k.to_ne_bytes()))
            .sum::<Result<u64, Errno>>()?;
        assert_eq!(total, THREADS * ITERS, "flags {map_flags:#x}");
    }
    Ok(())
}

#[test]
fn percpu_array_counts_add_up_over_cpus() -> Result<(), Errno> {
    let bpf = Bpf::new();
    let fd = bpf.map_create(&MapAttr::new(MapType::PercpuArray, 4, 8, 1))?;
    let map = bpf.map(fd)?;
    thread::scope(|s| {
        for t in 0..THREADS {
            let map = &map;
            s.spawn(move || {
                cpu::set_current_cpu(t as u32);
                for _ in 0..ITERS {
                    assert!(atomic_add(map.lookup_ptr(&0u32.to_ne_bytes()), 1));
                }
            });
        }
    });
    assert_eq!(read_u64(&map, &0u32.to_ne_bytes())?, THREADS * ITERS);
    Ok(())
}

#[test]
fn hash_replacement_is_atomic_for_readers() -> Result<(), Errno> {
    // Writers replace one key's 64-byte value with all-equal bytes; readers must never see a
    // mix of two values (the kernel swaps in a new element).
    let bpf = Bpf::new();
    let fd = bpf.map_create(&MapAttr::new(MapType::Hash, 4, 64, 4))?;
    bpf.map_update_elem(fd, &[7, 0, 0, 0], &[0u8; 64], 0)?;
    thread::scope(|s| {
        for w in 0..2u8 {
            let bpf = &bpf;
            s.spawn(move || {
                for i in 0..ITERS {
                    let v = [(i as u8).wrapping_mul(2).wrapping_add(w); 64];
                    assert!(bpf.map_update_elem(fd, &[7, 0, 0, 0], &v, 0).is_ok());
                }
            });
        }
        for _ in 0..2 {
            let bpf = &bpf;
            s.spawn(move || {
                for _ in 0..ITERS {
                    let v = bpf.map_lookup(fd, &[7, 0, 0, 0]);
                    let v = v.unwrap_or_else(|e| panic!("lookup: {e}"));
                    assert!(v.iter().all(|&b| b == v[0]), "torn value {v:?}");
                }
            });
        }
    });
    Ok(())
}

#[test]
fn lru_hash_under_concurrent_inserts_never_fails_or_overflows() -> Result<(), Errno> {
    let bpf = Bpf::new();
    let fd = bpf.map_create(&MapAttr::new(MapType::LruHash, 8, 8, 100))?;
    thread::scope(|s| {
        for t in 0..THREADS {
            let bpf = &bpf;
            s.spawn(move || {
                for i in 0..ITERS / 4 {
                    let k = (t << 32 | i).to_ne_bytes();
                    let r = bpf.map_update_elem(fd, &k, &i.to_ne_bytes(), 0);
                    assert!(r.is_ok(), "{r:?}");
                }
            });
        }
    });
    let mut n = 0;
    let mut prev: Option<Vec<u8>> = None;
    while let Ok(k) = bpf.map_next_key(fd, prev.as_deref()) {
        n += 1;
        prev = Some(k);
    }
    assert!(n <= 100, "{n} elements in an LRU map of 100");
    assert!(n > 0);
    Ok(())
}

#[test]
fn ringbuf_consumer_sees_every_record_in_order_and_whole() -> Result<(), Errno> {
    let bpf = Bpf::new();
    let fd = bpf.map_create(&MapAttr::new(MapType::RingBuf, 0, 0, 4096))?;
    let map = bpf.map(fd)?;
    let rb = map
        .as_ringbuf()
        .ok_or(Errno::Einval("not a ringbuf".into()))?;
    const PER: u64 = 5_000;
    let mut seen: Vec<Vec<u64>> = vec![Vec::new(); THREADS as usize];
    thread::scope(|s| {
        for t in 0..THREADS {
            s.spawn(move || {
                for seq in 0..PER {
                    // Record: producer, sequence, then a pattern derived from both; lengths vary
                    // so records wrap around the end of the data area at many offsets.
                    let len = 2 + (seq % 7) as usize;
                    let words: Vec<u64> = (0..len)
                        .map(|i| match i {
                            0 => t,
                            1 => seq,
                            _ => t * 1_000_003 + seq * 31 + i as u64,
                        })
                        .collect();
                    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
                    if seq % 5 == 4 {
                        // Reserve, then discard: the consumer must skip it.
                        loop {
                            let p = rb.reserve(64, 0);
                            if !p.is_null() {
                                rb.discard(p, 0);
                                break;
                            }
                            thread::yield_now();
                        }
                    }
                    while rb.output(&bytes, 0) != 0 {
                        thread::yield_now();
                    }
                }
            });
        }
        let seen = &mut seen;
        s.spawn(move || {
            let mut total = 0;
            while total < THREADS * PER {
                total += rb.consume(|rec| {
                    let w: Vec<u64> = rec
                        .chunks(8)
                        .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or([0xff; 8])))
                        .collect();
                    assert!(w.len() >= 2, "short record {rec:?}");
                    let (t, seq) = (w[0], w[1]);
                    for (i, &x) in w.iter().enumerate().skip(2) {
                        assert_eq!(x, t * 1_000_003 + seq * 31 + i as u64, "torn record");
                    }
                    assert_eq!(w.len(), 2 + (seq % 7) as usize);
                    seen[t as usize].push(seq);
                }) as u64;
                if total < THREADS * PER {
                    thread::yield_now();
                }
            }
        });
    });
    for (t, seqs) in seen.iter().enumerate() {
        let want: Vec<u64> = (0..PER).collect();
        assert_eq!(seqs, &want, "producer {t}: every record once, in order");
    }
    Ok(())
}

#[test]
fn queue_with_concurrent_pushers_and_poppers_delivers_each_value_once() -> Result<(), Errno> {
    let bpf = Bpf::new();
    let fd = bpf.map_create(&MapAttr::new(MapType::Queue, 0, 8, 64))?;
    let map = bpf.map(fd)?;
    const PER: u64 = 5_000;
    let mut got: Vec<u64> = Vec::new();
    thread::scope(|s| {
        for t in 0..2u64 {
            let map = &map;
            s.spawn(move || {
                for i in 0..PER {
                    let v = (t << 32 | i).to_ne_bytes();
                    while map.push(&v, 0) != 0 {
                        thread::yield_now();
                    }
                }
            });
        }
        let got = &mut got;
        let bpf = &bpf;
        s.spawn(move || {
            let mut out = [0u8; 8];
            while (got.len() as u64) < 2 * PER {
                match bpf.map_lookup_and_delete_elem(fd, &[], &mut out) {
                    Ok(()) => got.push(u64::from_ne_bytes(out)),
                    Err(_) => thread::yield_now(),
                }
            }
        });
    });
    let unique: HashSet<u64> = got.iter().copied().collect();
    assert_eq!(unique.len() as u64, 2 * PER);
    // FIFO per producer.
    for t in 0..2u64 {
        let mine: Vec<u64> = got
            .iter()
            .filter(|v| *v >> 32 == t)
            .map(|v| v & 0xffff_ffff)
            .collect();
        assert_eq!(mine, (0..PER).collect::<Vec<_>>());
    }
    Ok(())
}

#[test]
fn lockless_lookups_always_find_present_keys_while_neighbours_churn() -> Result<(), Errno> {
    // 8 buckets: the churned keys share lists with the hot ones, and deleted elements are
    // reused at once, so lock-free walkers step on elements that move between buckets.
    let bpf = Bpf::new();
    let fd = bpf.map_create(&MapAttr::new(MapType::Hash, 8, 8, 8))?;
    let map = bpf.map(fd)?;
    for k in 0u64..4 {
        bpf.map_update_elem(fd, &k.to_ne_bytes(), &k.to_ne_bytes(), 0)?;
    }
    thread::scope(|s| {
        for t in 0..2u64 {
            let map = &map;
            s.spawn(move || {
                for i in 0..ITERS * 2 {
                    let k = (t + i) % 4;
                    let p = map.lookup_ptr(&k.to_ne_bytes());
                    assert!(!p.is_null(), "present key {k} not found");
                    // SAFETY: a value pointer of a live map with 8-byte, 8-aligned values.
                    let v = unsafe { &*p.cast::<AtomicU64>() }.load(Ordering::Relaxed);
                    assert_eq!(v, k);
                }
            });
        }
        for c in 0..2u64 {
            let bpf = &bpf;
            s.spawn(move || {
                for i in 0..ITERS * 2 {
                    let k = (10 + c * 2 + i % 2).to_ne_bytes();
                    if i % 2 == 0 {
                        let _ = bpf.map_update_elem(fd, &k, &i.to_ne_bytes(), 0);
                    } else {
                        let _ = bpf.map_delete_elem(fd, &k);
                    }
                }
            });
        }
    });
    Ok(())
}
