//! Ring buffer behaviour as kernel/bpf/ringbuf.c and include/uapi/linux/bpf.h define it: the
//! record header (`len` with `BPF_RINGBUF_BUSY_BIT` 1<<31 and `BPF_RINGBUF_DISCARD_BIT` 1<<30,
//! then `pg_off`), 8-byte record alignment, space accounting against the consumer and the
//! oldest busy record, helper return values, and the consumer stopping at a busy record.

use bpfkit::maps::ringbuf::{
    RingBuf, BPF_RB_AVAIL_DATA, BPF_RB_CONS_POS, BPF_RB_NO_WAKEUP, BPF_RB_PROD_POS,
    BPF_RB_RING_SIZE,
};
use bpfkit::maps::{MapAttr, MapRef, MapType};
use bpfkit::{Bpf, Errno};

fn ringbuf(size: u32) -> Result<MapRef, Errno> {
    let bpf = Bpf::new();
    let fd = bpf.map_create(&MapAttr::new(MapType::RingBuf, 0, 0, size))?;
    bpf.map(fd)
}

fn rb(map: &MapRef) -> Result<&RingBuf, Errno> {
    map.as_ringbuf()
        .ok_or_else(|| Errno::Einval("not a ring buffer".into()))
}

/// The `len` field of the header in front of a reserved record.
fn header_len(data: *mut u8) -> u32 {
    // SAFETY: `data` was returned by `RingBuf::reserve` on a ring buffer the caller keeps
    // alive; the 8-byte header precedes it in the same allocation and is 8-aligned.
    let word = unsafe { &*data.sub(8).cast::<std::sync::atomic::AtomicU32>() };
    word.load(std::sync::atomic::Ordering::Acquire)
}

fn write(data: *mut u8, bytes: &[u8]) {
    // SAFETY: `data` is a reserved record of at least `bytes.len()` bytes (checked by callers:
    // they reserve that size), not yet submitted, written by this thread only.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), data, bytes.len()) };
}

fn collect(r: &RingBuf) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    r.consume(|rec| out.push(rec.to_vec()));
    out
}

#[test]
fn header_bits_follow_the_uapi_layout() -> Result<(), Errno> {
    let map = ringbuf(4096)?;
    let r = rb(&map)?;
    let p = r.reserve(5, 0);
    assert!(!p.is_null());
    assert_eq!(header_len(p), 5 | 1 << 31, "busy bit while reserved");
    assert_eq!(p as usize % 8, 0, "record data is 8-aligned");
    write(p, b"hello");
    r.submit(p, 0);
    assert_eq!(header_len(p), 5, "busy bit cleared by submit");
    let q = r.reserve(3, 0);
    assert_eq!(
        q as usize - p as usize,
        16,
        "8-byte header + 5 bytes rounded up to 8"
    );
    r.discard(q, 0);
    assert_eq!(header_len(q), 3 | 1 << 30, "discard bit set, busy cleared");
    assert_eq!(
        collect(r),
        vec![b"hello".to_vec()],
        "discarded records are skipped"
    );
    assert_eq!(r.query(BPF_RB_CONS_POS), 32);
    assert_eq!(r.query(BPF_RB_PROD_POS), 32);
    assert_eq!(r.query(BPF_RB_AVAIL_DATA), 0);
    assert_eq!(r.query(BPF_RB_RING_SIZE), 4096);
    Ok(())
}

#[test]
fn reserve_refuses_flags_and_records_that_cannot_fit() -> Result<(), Errno> {
    let map = ringbuf(4096)?;
    let r = rb(&map)?;
    assert!(
        r.reserve(8, 1).is_null(),
        "bpf_ringbuf_reserve takes no flags"
    );
    assert!(r.reserve(4096 - 8 + 1, 0).is_null(), "larger than the ring");
    // bpf_ringbuf_output: unknown flags -EINVAL, no room -EAGAIN.
    assert_eq!(r.output(b"x", 4), -22);
    let big = vec![7u8; 2000];
    assert_eq!(r.output(&big, BPF_RB_NO_WAKEUP), 0);
    assert_eq!(r.output(&big, 0), 0);
    // 2 * 2008 = 4016 used; 4016 + 88 > 4095 leaves no room for 80 bytes.
    assert_eq!(r.output(&[1; 80], 0), -11);
    assert_eq!(collect(r).len(), 2);
    assert_eq!(r.output(&[1; 80], 0), 0, "room again once consumed");
    Ok(())
}

#[test]
fn consumer_stops_at_a_busy_record_and_space_waits_for_it() -> Result<(), Errno> {
    let map = ringbuf(4096)?;
    let r = rb(&map)?;
    let first = r.reserve(8, 0);
    assert!(!first.is_null());
    assert_eq!(r.output(b"second", 0), 0);
    assert!(
        collect(r).is_empty(),
        "a busy record hides the records after it"
    );
    // Space is also bounded by the oldest busy record: with it pending, the producer cannot
    // lap it even though nothing was consumed past it.
    let mut n = 0;
    while r.output(&[0; 1000], 0) == 0 {
        n += 1;
    }
    // A record fits while new_prod_pos - pending_pos <= mask (4095), pending_pos being 0:
    // 32 + 1008 * n <= 4095.
    assert_eq!(n, 4);
    write(first, &[9; 8]);
    r.submit(first, 0);
    let got = collect(r);
    assert_eq!(got.len(), 6);
    assert_eq!(got[0], vec![9; 8]);
    assert_eq!(got[1], b"second".to_vec());
    Ok(())
}

#[test]
fn records_wrapping_past_the_end_arrive_whole() -> Result<(), Errno> {
    let map = ringbuf(4096)?;
    let r = rb(&map)?;
    let mut expected = Vec::new();
    let mut got = Vec::new();
    for i in 0..200u32 {
        let rec: Vec<u8> = (0..(i % 97 + 1)).map(|j| (i * 7 + j) as u8).collect();
        assert_eq!(r.output(&rec, 0), 0);
        expected.push(rec);
        if i % 3 == 2 {
            got.extend(collect(r));
        }
    }
    got.extend(collect(r));
    assert_eq!(got, expected);
    Ok(())
}

#[test]
fn element_commands_are_not_supported() -> Result<(), Errno> {
    let map = ringbuf(4096)?;
    let mut v = [];
    assert_eq!(map.lookup(&[], &mut v).map_err(|e| e.code()), Err(524));
    assert_eq!(
        map.get_next_key(None, &mut []).map_err(|e| e.code()),
        Err(524)
    );
    Ok(())
}

#[test]
fn wait_reports_whether_records_are_available() -> Result<(), Errno> {
    let map = ringbuf(4096)?;
    let r = rb(&map)?;
    assert!(!r.wait(std::time::Duration::from_millis(1)), "empty");
    assert_eq!(r.output(b"x", BPF_RB_NO_WAKEUP), 0);
    assert!(
        r.wait(std::time::Duration::from_millis(1)),
        "data without a wake-up"
    );
    // A consumer blocked in wait() is woken by a submit from another thread.
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let _ = collect(r);
            r.wait(std::time::Duration::from_secs(60))
        });
        while r.query(BPF_RB_AVAIL_DATA) > 0 {
            std::thread::yield_now();
        }
        assert_eq!(r.output(b"y", 0), 0);
        assert!(waiter.join().unwrap_or(false));
    });
    Ok(())
}
