//! Equivalence classes of one lattice node: tuples grouped by their generalized
//! quasi-identifier values, with reusable scratch buffers.

use std::collections::HashMap;

use crate::policy::hierarchy::QiHierarchy;
use crate::privacy::table::BaseTable;

/// Equivalence classes of one node: the class of every tuple and the size of every class.
#[derive(Debug, Clone)]
pub struct Classes {
    pub class_of: Vec<u32>,
    pub sizes: Vec<u64>,
}

/// Reused buffers for class computation. A scratch belongs to one table and hierarchy set.
#[derive(Default)]
pub struct Scratch {
    /// `codes[attribute][level][tuple]`: generalized codes, column-major for fast key building.
    codes: Vec<Vec<Vec<u32>>>,
    keys: Vec<u64>,
    dense: Vec<u32>,
    table: KeyTable,
    wide: HashMap<Box<[u32]>, u32>,
}

/// An open-addressing u64 -> u32 table, cleared in O(1) with generation stamps. One slot is
/// one 16-byte record, so a probe touches one cache line.
#[derive(Default)]
struct KeyTable {
    slots: Vec<Slot>,
    generation: u32,
    shift: u32,
}

#[derive(Clone, Copy, Default)]
struct Slot {
    key: u64,
    value: u32,
    stamp: u32,
}

impl KeyTable {
    fn reset(&mut self, n: usize) {
        let cap = (n + n / 2).next_power_of_two().max(16);
        if cap != self.slots.len() {
            self.slots = vec![Slot::default(); cap];
            self.generation = 0;
            self.shift = 64 - cap.trailing_zeros();
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.slots.iter_mut().for_each(|s| s.stamp = 0);
            self.generation = 1;
        }
    }

    #[inline]
    fn get_or_insert(&mut self, key: u64, next: u32) -> u32 {
        let mask = self.slots.len() - 1;
        let mut i = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize;
        loop {
            let s = &mut self.slots[i];
            if s.stamp != self.generation {
                *s = Slot {
                    key,
                    value: next,
                    stamp: self.generation,
                };
                return next;
            }
            if s.key == key {
                return s.value;
            }
            i = (i + 1) & mask;
        }
    }
}

fn ensure_codes(scratch: &mut Scratch, table: &BaseTable, qis: &[QiHierarchy]) {
    if scratch.codes.len() == qis.len() {
        return;
    }
    let m = qis.len();
    let n = table.num_tuples();
    scratch.codes = qis
        .iter()
        .enumerate()
        .map(|(i, q)| {
            q.map
                .iter()
                .map(|level| {
                    (0..n)
                        .map(|t| level[table.tuples[t * m + i] as usize])
                        .collect()
                })
                .collect()
        })
        .collect();
}

/// Group the tuples of `table` by their generalized values at `levels`.
pub fn classes(
    table: &BaseTable,
    qis: &[QiHierarchy],
    levels: &[usize],
    scratch: &mut Scratch,
) -> Classes {
    ensure_codes(scratch, table, qis);
    let m = qis.len();
    let n = table.num_tuples();
    let mut class_of = Vec::with_capacity(n);
    let mut sizes: Vec<u64> = Vec::new();
    // Mixed-radix key over the generalized domains, when it fits in 64 bits.
    let mut strides = Vec::with_capacity(m);
    let mut product: Option<u64> = Some(1);
    for (q, &l) in qis.iter().zip(levels) {
        strides.push(product.unwrap_or(0));
        product = product.and_then(|p| p.checked_mul(q.labels[l].len().max(1) as u64));
    }
    if let Some(p) = product {
        let keys = &mut scratch.keys;
        keys.clear();
        keys.resize(n, 0);
        for i in 0..m {
            let col = &scratch.codes[i][levels[i]];
            let stride = strides[i];
            for (k, &c) in keys.iter_mut().zip(col) {
                *k += c as u64 * stride;
            }
        }
        if p <= (4 * n as u64).max(1 << 16) {
            let dense = &mut scratch.dense;
            dense.clear();
            dense.resize(p as usize, u32::MAX);
            for (t, &key) in keys.iter().enumerate() {
                let slot = &mut dense[key as usize];
                if *slot == u32::MAX {
                    *slot = sizes.len() as u32;
                    sizes.push(0);
                }
                sizes[*slot as usize] += table.counts[t];
                class_of.push(*slot);
            }
        } else {
            let kt = &mut scratch.table;
            kt.reset(n);
            for (t, &key) in keys.iter().enumerate() {
                let next = sizes.len() as u32;
                let c = kt.get_or_insert(key, next);
                if c == next {
                    sizes.push(0);
                }
                sizes[c as usize] += table.counts[t];
                class_of.push(c);
            }
        }
    } else {
        let wide = &mut scratch.wide;
        wide.clear();
        let mut key = vec![0u32; m];
        for t in 0..n {
            for (i, k) in key.iter_mut().enumerate() {
                *k = scratch.codes[i][levels[i]][t];
            }
            let next = sizes.len() as u32;
            let c = *wide.entry(key.clone().into_boxed_slice()).or_insert(next);
            if c == next {
                sizes.push(0);
            }
            sizes[c as usize] += table.counts[t];
            class_of.push(c);
        }
    }
    Classes { class_of, sizes }
}
