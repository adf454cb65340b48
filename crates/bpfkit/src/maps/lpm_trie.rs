//! `BPF_MAP_TYPE_LPM_TRIE`: kernel/bpf/lpm_trie.c, node for node.
//!
//! Keys are `struct bpf_lpm_trie_key_u8`: a host-endian `u32 prefixlen` and `key_size - 4` data
//! bytes in network order (so `max_prefixlen = 8 * (key_size - 4)`). The trie is the kernel's
//! binary Patricia trie with intermediate nodes, built by the same insertion and deletion
//! steps, so `get_next_key`'s post-order walk (more specific prefixes first) returns keys in the
//! kernel's order, with the data bytes as they were inserted.
//!
//! - lookup (system call and program alike) is a longest-prefix match: the value of the longest
//!   stored prefix that covers the key's first `prefixlen` bits;
//! - update: flags above `BPF_EXIST` or `prefixlen > max_prefixlen` `EINVAL`, a full trie
//!   `ENOSPC`, `BPF_NOEXIST` on an existing prefix `EEXIST`, `BPF_EXIST` on a missing one
//!   `ENOENT`;
//! - delete is exact (`ENOENT` otherwise).
//!
//! Concurrency: one reader-writer lock around the trie; values live in a [`Slab`], so a pointer
//! a program holds stays valid after the element is replaced or deleted.

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::storage::{self, Slab};
use super::{check_update_flags, flags};
use crate::errno::Errno;

/// An LPM trie map.
#[derive(Debug)]
pub struct LpmTrie {
    data_size: usize,
    max_prefixlen: u32,
    max_entries: u32,
    values: Slab,
    trie: RwLock<Trie>,
}

#[derive(Debug, Default)]
struct Trie {
    nodes: Vec<Node>,
    free_nodes: Vec<u32>,
    root: Option<u32>,
    n_entries: u32,
}

#[derive(Debug)]
struct Node {
    prefixlen: u32,
    /// `LPM_TREE_NODE_FLAG_IM`: an intermediate node, not an element.
    im: bool,
    data: Box<[u8]>,
    child: [Option<u32>; 2],
    /// The value's slab element, for nodes that carry one (an element, or a deleted element
    /// kept as an intermediate node).
    value: Option<u32>,
}

/// Bit `index` of `data`, most significant bit of byte 0 first (`extract_bit`).
fn extract_bit(data: &[u8], index: u32) -> usize {
    data.get((index / 8) as usize)
        .map_or(0, |b| usize::from(b >> (7 - (index % 8)) & 1))
}

impl LpmTrie {
    /// An LPM trie for keys of `key_size` bytes (attributes already checked).
    pub(crate) fn new(key_size: u32, value_size: u32, max_entries: u32) -> Self {
        let data_size = key_size as usize - 4;
        let value_words = storage::words_for(value_size as usize);
        Self {
            data_size,
            max_prefixlen: 8 * data_size as u32,
            max_entries,
            values: Slab::new(value_words, max_entries.saturating_add(1)),
            trie: RwLock::new(Trie::default()),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Trie> {
        self.trie
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Trie> {
        self.trie
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Splits a key into (prefixlen, data).
    fn split<'k>(&self, key: &'k [u8]) -> (u32, &'k [u8]) {
        let mut p = [0u8; 4];
        p.copy_from_slice(&key[..4]);
        (u32::from_ne_bytes(p), &key[4..])
    }

    /// `longest_prefix_match`: how many leading bits of `node` match the key, up to the
    /// shorter of the two prefix lengths.
    fn match_len(node: &Node, prefixlen: u32, data: &[u8]) -> u32 {
        let limit = node.prefixlen.min(prefixlen);
        let mut bits = 0u32;
        for (a, b) in node.data.iter().zip(data) {
            if bits >= limit {
                break;
            }
            let diff = a ^ b;
            if diff != 0 {
                bits += diff.leading_zeros();
                break;
            }
            bits += 8;
        }
        bits.min(limit)
    }

    /// The node holding the longest prefix matching the key (`trie_lookup_elem`).
    fn find_longest(&self, t: &Trie, prefixlen: u32, data: &[u8]) -> Option<u32> {
        if prefixlen > self.max_prefixlen {
            return None;
        }
        let mut found = None;
        let mut cur = t.root;
        while let Some(i) = cur {
            let node = t.nodes.get(i as usize)?;
            let m = Self::match_len(node, prefixlen, data);
            if m == self.max_prefixlen {
                return Some(i);
            }
            if m < node.prefixlen {
                break;
            }
            if !node.im {
                found = Some(i);
            }
            cur = node.child[extract_bit(data, node.prefixlen)];
        }
        found
    }

    fn value_words_of(&self, slot: u32) -> &[std::sync::atomic::AtomicU64] {
        self.values.elem(slot)
    }

    /// Longest-prefix-match lookup, copying the value out.
    pub(crate) fn lookup(&self, key: &[u8], out: &mut [u8]) -> Result<(), Errno> {
        let (prefixlen, data) = self.split(key);
        let t = self.read();
        let value = self
            .find_longest(&t, prefixlen, data)
            .and_then(|i| t.nodes.get(i as usize))
            .and_then(|n| n.value)
            .ok_or_else(|| Errno::Enoent("no prefix matches the key".into()))?;
        storage::load(self.value_words_of(value), out);
        Ok(())
    }

    /// Longest-prefix-match lookup for a program: the value pointer or null.
    pub(crate) fn lookup_ptr(&self, key: &[u8]) -> *mut u8 {
        let (prefixlen, data) = self.split(key);
        let t = self.read();
        match self
            .find_longest(&t, prefixlen, data)
            .and_then(|i| t.nodes.get(i as usize))
            .and_then(|n| n.value)
        {
            Some(v) if !self.value_words_of(v).is_empty() => {
                storage::ptr_of(self.value_words_of(v))
            }
            _ => std::ptr::null_mut(),
        }
    }

    fn new_node(t: &mut Trie, node: Node) -> u32 {
        if let Some(i) = t.free_nodes.pop() {
            if let Some(slot) = t.nodes.get_mut(i as usize) {
                *slot = node;
                return i;
            }
        }
        t.nodes.push(node);
        (t.nodes.len() - 1) as u32
    }

    fn free_node(&self, t: &mut Trie, i: u32) {
        if let Some(n) = t.nodes.get_mut(i as usize) {
            if let Some(v) = n.value.take() {
                self.values.free(v);
            }
            n.child = [None, None];
            t.free_nodes.push(i);
        }
    }

    /// `trie_check_add_elem`.
    fn check_add(&self, t: &mut Trie, map_flags: u64) -> Result<(), Errno> {
        if map_flags == flags::BPF_EXIST {
            return Err(Errno::Enoent(
                "the prefix does not exist (BPF_EXIST)".into(),
            ));
        }
        if t.n_entries == self.max_entries {
            return Err(Errno::Enospc("the trie is full (max_entries)".into()));
        }
        t.n_entries += 1;
        Ok(())
    }

    /// Writes the slot that `parent`/`side` names (the root when `parent` is `None`).
    fn set_slot(t: &mut Trie, slot: Option<(u32, usize)>, to: Option<u32>) {
        match slot {
            None => t.root = to,
            Some((p, side)) => {
                if let Some(n) = t.nodes.get_mut(p as usize) {
                    n.child[side] = to;
                }
            }
        }
    }

    fn slot_value(t: &Trie, slot: Option<(u32, usize)>) -> Option<u32> {
        match slot {
            None => t.root,
            Some((p, side)) => t.nodes.get(p as usize).and_then(|n| n.child[side]),
        }
    }

    /// `trie_update_elem`.
    pub(crate) fn update(&self, key: &[u8], value: &[u8], map_flags: u64) -> Result<(), Errno> {
        check_update_flags(map_flags)?;
        let (prefixlen, data) = self.split(key);
        if prefixlen > self.max_prefixlen {
            return Err(Errno::Einval(
                format!(
                    "prefixlen {prefixlen} is above the key's {} bits",
                    self.max_prefixlen
                )
                .into(),
            ));
        }
        let vslot = self.values.alloc()?;
        storage::store(self.value_words_of(vslot), value);
        let mut t = self.write();
        let result = self.insert(&mut t, prefixlen, data, vslot, map_flags);
        if result.is_err() {
            self.values.free(vslot);
        }
        result
    }

    fn insert(
        &self,
        t: &mut Trie,
        prefixlen: u32,
        data: &[u8],
        vslot: u32,
        map_flags: u64,
    ) -> Result<(), Errno> {
        let new = |child: [Option<u32>; 2]| Node {
            prefixlen,
            im: false,
            data: data.into(),
            child,
            value: Some(vslot),
        };
        let mut slot: Option<(u32, usize)> = None;
        let mut matchlen = 0;
        let mut node = t.root;
        while let Some(i) = node {
            let n = t
                .nodes
                .get(i as usize)
                .ok_or_else(|| Errno::Einval("corrupt trie".into()))?;
            matchlen = Self::match_len(n, prefixlen, data);
            if n.prefixlen != matchlen || n.prefixlen == prefixlen {
                break;
            }
            let side = extract_bit(data, n.prefixlen);
            slot = Some((i, side));
            node = n.child[side];
        }
        let Some(ni) = node else {
            self.check_add(t, map_flags)?;
            let id = Self::new_node(t, new([None, None]));
            Self::set_slot(t, slot, Some(id));
            return Ok(());
        };
        let (n_prefixlen, n_im, n_child) = match t.nodes.get(ni as usize) {
            Some(n) => (n.prefixlen, n.im, n.child),
            None => return Err(Errno::Einval("corrupt trie".into())),
        };
        if n_prefixlen == matchlen {
            if !n_im {
                if map_flags == flags::BPF_NOEXIST {
                    return Err(Errno::Eexist("the prefix exists (BPF_NOEXIST)".into()));
                }
            } else {
                self.check_add(t, map_flags)?;
            }
            let id = Self::new_node(t, new(n_child));
            Self::set_slot(t, slot, Some(id));
            self.free_node(t, ni);
            return Ok(());
        }
        self.check_add(t, map_flags)?;
        let n_data = t
            .nodes
            .get(ni as usize)
            .map(|n| n.data.clone())
            .unwrap_or_default();
        if matchlen == prefixlen {
            // The new prefix covers the node: it becomes the node's parent.
            let mut child = [None, None];
            child[extract_bit(&n_data, matchlen)] = Some(ni);
            let id = Self::new_node(t, new(child));
            Self::set_slot(t, slot, Some(id));
            return Ok(());
        }
        let id = Self::new_node(t, new([None, None]));
        let child = if extract_bit(data, matchlen) == 1 {
            [Some(ni), Some(id)]
        } else {
            [Some(id), Some(ni)]
        };
        let im = Self::new_node(
            t,
            Node {
                prefixlen: matchlen,
                im: true,
                data: n_data,
                child,
                value: None,
            },
        );
        Self::set_slot(t, slot, Some(im));
        Ok(())
    }

    /// `trie_delete_elem`: exact match.
    pub(crate) fn delete(&self, key: &[u8]) -> Result<(), Errno> {
        let (prefixlen, data) = self.split(key);
        if prefixlen > self.max_prefixlen {
            return Err(Errno::Einval(
                format!(
                    "prefixlen {prefixlen} is above the key's {} bits",
                    self.max_prefixlen
                )
                .into(),
            ));
        }
        let mut t = self.write();
        let t = &mut *t;
        // trim: the slot pointing at the node; trim2: the slot pointing at its parent.
        let mut trim: Option<(u32, usize)> = None;
        let mut trim2: Option<(u32, usize)> = None;
        let mut parent: Option<u32> = None;
        let mut matchlen = 0;
        let mut node = t.root;
        while let Some(i) = node {
            let Some(n) = t.nodes.get(i as usize) else {
                break;
            };
            matchlen = Self::match_len(n, prefixlen, data);
            if n.prefixlen != matchlen || n.prefixlen == prefixlen {
                break;
            }
            parent = Some(i);
            trim2 = trim;
            let side = extract_bit(data, n.prefixlen);
            trim = Some((i, side));
            node = n.child[side];
        }
        let not_found = || Errno::Enoent("no such prefix".into());
        let ni = node.ok_or_else(not_found)?;
        let (n_prefixlen, n_im, n_child) = match t.nodes.get(ni as usize) {
            Some(n) => (n.prefixlen, n.im, n.child),
            None => return Err(not_found()),
        };
        if n_prefixlen != prefixlen || n_prefixlen != matchlen || n_im {
            return Err(not_found());
        }
        t.n_entries -= 1;
        if n_child[0].is_some() && n_child[1].is_some() {
            if let Some(n) = t.nodes.get_mut(ni as usize) {
                n.im = true;
            }
            return Ok(());
        }
        if let Some(p) = parent {
            let (p_im, p_child) = match t.nodes.get(p as usize) {
                Some(pn) => (pn.im, pn.child),
                None => return Ok(()),
            };
            if p_im && n_child == [None, None] {
                let other = if p_child[0] == Some(ni) {
                    p_child[1]
                } else {
                    p_child[0]
                };
                Self::set_slot(t, trim2, other);
                self.free_node(t, p);
                self.free_node(t, ni);
                return Ok(());
            }
        }
        let promote = n_child[0].or(n_child[1]);
        debug_assert_eq!(Self::slot_value(t, trim), Some(ni));
        Self::set_slot(t, trim, promote);
        self.free_node(t, ni);
        Ok(())
    }

    /// `trie_get_next_key`: post-order (more specific prefixes first); from `None`, an invalid
    /// or a missing key, the first key.
    pub(crate) fn get_next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> Result<(), Errno> {
        let t = self.read();
        let end = || Errno::Enoent("no next key".into());
        let root = t.root.ok_or_else(end)?;
        let found = key.and_then(|key| {
            let (prefixlen, data) = self.split(key);
            if prefixlen > self.max_prefixlen {
                return None;
            }
            let mut stack = Vec::new();
            let mut node = Some(root);
            let mut matchlen = 0;
            while let Some(i) = node {
                stack.push(i);
                let n = t.nodes.get(i as usize)?;
                matchlen = Self::match_len(n, prefixlen, data);
                if n.prefixlen != matchlen || n.prefixlen == prefixlen {
                    break;
                }
                node = n.child[extract_bit(data, n.prefixlen)];
            }
            let n = t.nodes.get(node? as usize)?;
            (n.prefixlen == matchlen && n.prefixlen == prefixlen && !n.im).then_some(stack)
        });
        let next_node = match found {
            None => self.leftmost(&t, root),
            Some(mut stack) => {
                let mut next = None;
                let mut cur = stack.pop();
                while let (Some(c), Some(&p)) = (cur, stack.last()) {
                    let pn = t.nodes.get(p as usize).ok_or_else(end)?;
                    if pn.child[0] == Some(c) {
                        if let Some(right) = pn.child[1] {
                            next = self.leftmost(&t, right);
                            break;
                        }
                    }
                    if !pn.im {
                        next = Some(p);
                        break;
                    }
                    cur = stack.pop();
                }
                next
            }
        };
        let n = next_node
            .and_then(|i| t.nodes.get(i as usize))
            .ok_or_else(end)?;
        next[..4].copy_from_slice(&n.prefixlen.to_ne_bytes());
        next[4..4 + self.data_size].copy_from_slice(&n.data);
        Ok(())
    }

    /// The first non-intermediate node in post-order under `root` (`find_leftmost`).
    fn leftmost(&self, t: &Trie, root: u32) -> Option<u32> {
        let mut next = None;
        let mut node = Some(root);
        while let Some(i) = node {
            let n = t.nodes.get(i as usize)?;
            if n.im {
                node = n.child[0];
            } else {
                next = Some(i);
                node = n.child[0].or(n.child[1]);
            }
        }
        next
    }
}
