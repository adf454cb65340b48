//! `BPF_MAP_TYPE_QUEUE` and `BPF_MAP_TYPE_STACK`: kernel/bpf/queue_stack_maps.c.
//!
//! A ring of `max_entries + 1` slots under one lock. `push` with `BPF_EXIST` on a full map
//! overwrites the oldest element (the kernel advances the tail); without it a full map is
//! `E2BIG`; any other flag is `EINVAL`. `pop` / `peek` of an empty map are `ENOENT`. A queue
//! pops the oldest element, a stack the newest. From user space: lookup peeks, update pushes,
//! lookup-and-delete pops; delete and `get_next_key` are `EINVAL`.

use std::sync::Mutex;

use super::flags;
use crate::errno::Errno;

/// Largest queue or stack storage bpfkit agrees to allocate (beyond it: `ENOMEM`).
const MAX_QUEUE_BYTES: usize = 1 << 34;

/// A queue (FIFO) or stack (LIFO) map.
#[derive(Debug)]
pub struct QueueStack {
    stack: bool,
    value_size: usize,
    state: Mutex<Ring>,
}

#[derive(Debug)]
struct Ring {
    /// `size = max_entries + 1` slots of `value_size` bytes.
    elements: Vec<u8>,
    size: usize,
    head: usize,
    tail: usize,
}

impl QueueStack {
    /// A queue or stack of `max_entries` values (attributes already checked).
    pub(crate) fn new(stack: bool, value_size: u32, max_entries: u32) -> Result<Self, Errno> {
        let size = max_entries as usize + 1;
        let bytes = size
            .checked_mul(value_size as usize)
            .ok_or_else(|| Errno::Enomem("queue too large".into()))?;
        if bytes > MAX_QUEUE_BYTES {
            return Err(Errno::Enomem(
                format!("a queue of {bytes} bytes does not fit in memory").into(),
            ));
        }
        // Zeroed memory from the allocator is mapped lazily, as the kernel's vmalloc area.
        let elements = vec![0u8; bytes];
        Ok(Self {
            stack,
            value_size: value_size as usize,
            state: Mutex::new(Ring {
                elements,
                size,
                head: 0,
                tail: 0,
            }),
        })
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Number of elements held.
    #[must_use]
    pub fn len(&self) -> usize {
        let r = self.ring();
        (r.head + r.size - r.tail) % r.size
    }

    /// Whether the map holds no element.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `bpf_map_push_elem` / update from user space.
    pub fn push(&self, value: &[u8], map_flags: u64) -> Result<(), Errno> {
        if map_flags & flags::BPF_NOEXIST != 0 || map_flags > flags::BPF_EXIST {
            return Err(Errno::Einval(
                format!("push flags {map_flags:#x}: only BPF_ANY or BPF_EXIST").into(),
            ));
        }
        let vs = self.value_size;
        let Some(value) = value.get(..vs) else {
            return Err(Errno::Einval(
                format!("value is {} bytes, value_size is {vs}", value.len()).into(),
            ));
        };
        let mut r = self.ring();
        if (r.head + 1) % r.size == r.tail {
            if map_flags & flags::BPF_EXIST == 0 {
                return Err(Errno::E2big("the map is full".into()));
            }
            r.tail = (r.tail + 1) % r.size;
        }
        let at = r.head * vs;
        if let Some(dst) = r.elements.get_mut(at..at + vs) {
            dst.copy_from_slice(value);
        }
        r.head = (r.head + 1) % r.size;
        Ok(())
    }

    fn take(&self, out: &mut [u8], delete: bool) -> Result<(), Errno> {
        let vs = self.value_size;
        let mut r = self.ring();
        if r.head == r.tail {
            return Err(Errno::Enoent("the map is empty".into()));
        }
        let slot = if self.stack {
            (r.head + r.size - 1) % r.size
        } else {
            r.tail
        };
        if let Some(src) = r.elements.get(slot * vs..slot * vs + vs) {
            let n = out.len().min(vs);
            out[..n].copy_from_slice(&src[..n]);
        }
        if delete {
            if self.stack {
                r.head = slot;
            } else {
                r.tail = (r.tail + 1) % r.size;
            }
        }
        Ok(())
    }

    /// `bpf_map_pop_elem` / lookup-and-delete from user space.
    pub fn pop(&self, out: &mut [u8]) -> Result<(), Errno> {
        self.take(out, true)
    }

    /// `bpf_map_peek_elem` / lookup from user space.
    pub fn peek(&self, out: &mut [u8]) -> Result<(), Errno> {
        self.take(out, false)
    }
}
