//! Stable sorting with one copy of the sorting code for the whole binary.
//!
//! Owns nothing but the sort; used by tend-core and the main crate for every
//! sort outside tests. Must stay pure (no allocation beyond its index tables).
//!
//! Why not `slice::sort_by`: the standard library's sorts (driftsort,
//! ipnsort) are generic over the element and the comparison, so each call
//! site with its own element type or closure gets its own copy of the whole
//! algorithm, about 4.5 KB of code each even at `opt-level = "z"`; some
//! twenty of them were 0.1 MB of the static binary (README, Install). Here
//! the algorithm runs once, on indices, with the comparison and the swap
//! behind `dyn` calls; what each call site instantiates is two small
//! closures. The lists tend sorts are short (units, rows of `tend top`,
//! plan entries), and the cost is one extra indirect call per comparison
//! and two index tables: O(n log n) comparisons, O(n) swaps, O(n) memory.

use std::cmp::Ordering;

/// Sort `items` by `compare`, stably: equal items keep their order.
pub fn sort_by<T>(items: &mut [T], mut compare: impl FnMut(&T, &T) -> Ordering) {
    if items.len() < 2 {
        return;
    }
    let order = sorted_order(items.len(), &mut |a, b| compare(&items[a], &items[b]));
    permute(&order, &mut |a, b| items.swap(a, b));
}

/// Sort `items` by the key `key` gives, stably. The key is computed for each
/// comparison, as `slice::sort_by_key` does.
pub fn sort_by_key<T, K: Ord>(items: &mut [T], mut key: impl FnMut(&T) -> K) {
    sort_by(items, |a, b| key(a).cmp(&key(b)));
}

/// Sort `items` in their natural order, stably.
pub fn sort<T: Ord>(items: &mut [T]) {
    sort_by(items, T::cmp);
}

/// The indices `0..len` in the order `compare` puts them, equal ones in
/// their original order. The only instance of the standard sort.
fn sorted_order(len: usize, compare: &mut dyn FnMut(usize, usize) -> Ordering) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    order.sort_by(|&a, &b| compare(a, b));
    order
}

/// Rearrange a slice by swaps so that position `i` holds what was at
/// `order[i]`. `at[p]` is the original index of what is now at `p`, and
/// `pos[k]` where the original `k` is now: each step puts one item in its
/// final place with one swap.
fn permute(order: &[usize], swap: &mut dyn FnMut(usize, usize)) {
    let mut at: Vec<usize> = (0..order.len()).collect();
    let mut pos = at.clone();
    for (i, &wanted) in order.iter().enumerate() {
        let from = pos[wanted];
        if from != i {
            swap(i, from);
            let displaced = at[i];
            at[from] = displaced;
            pos[displaced] = from;
            at[i] = wanted;
            pos[wanted] = i;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sorts_small_cases() {
        let mut empty: Vec<u8> = vec![];
        sort(&mut empty);
        assert!(empty.is_empty());
        let mut one = vec![7];
        sort(&mut one);
        assert_eq!(one, [7]);
        let mut words = vec!["web", "db", "cache", "app"];
        sort(&mut words);
        assert_eq!(words, ["app", "cache", "db", "web"]);
        let mut reversed: Vec<u32> = (0..100).rev().collect();
        sort(&mut reversed);
        assert_eq!(reversed, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn equal_keys_keep_their_order() {
        let mut items = vec![(2, 'a'), (1, 'b'), (2, 'c'), (1, 'd'), (0, 'e')];
        sort_by_key(&mut items, |item| item.0);
        assert_eq!(items, [(0, 'e'), (1, 'b'), (1, 'd'), (2, 'a'), (2, 'c')]);
    }

    proptest! {
        /// Same result as the standard library's stable sort, for any input,
        /// including many equal keys (the second field tells them apart).
        #[test]
        fn matches_the_standard_stable_sort(keys in proptest::collection::vec(0u8..8, 0..200)) {
            let tagged: Vec<(u8, usize)> = keys.iter().copied().zip(0..).collect();
            let mut ours = tagged.clone();
            sort_by_key(&mut ours, |item| item.0);
            let mut std_sorted = tagged;
            std_sorted.sort_by_key(|item| item.0);
            prop_assert_eq!(ours, std_sorted);
        }

        #[test]
        fn descending_comparison_too(values in proptest::collection::vec(any::<i32>(), 0..100)) {
            let mut ours = values.clone();
            sort_by(&mut ours, |a, b| b.cmp(a));
            let mut std_sorted = values;
            std_sorted.sort_by(|a, b| b.cmp(a));
            prop_assert_eq!(ours, std_sorted);
        }
    }
}
