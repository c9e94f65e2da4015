//! `--slice K/N`: which attachments one of N scheduled runs checks. The shards are balanced by
//! bytes and deterministic: attachments sorted by location, each given in turn to the shard with
//! the fewest bytes so far (the lowest-numbered on a tie), so that N runs over the same data share
//! the load evenly and together check every file exactly once.

use crate::settings::{quote, SettingError};

/// The K-th (from 1) of N shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slice {
    pub index: usize,
    pub count: usize,
}

/// The most shards a run may be one of.
pub const MAX_SHARDS: usize = 10_000;

impl Slice {
    pub const WHOLE: Slice = Slice { index: 1, count: 1 };

    /// `K/N` with 1 <= K <= N <= [`MAX_SHARDS`]; `env` names the setting in errors.
    pub fn parse(env: &str, raw: &str) -> Result<Slice, SettingError> {
        let bad = |why: &str| SettingError::new(env, format!("{} {why}", quote(raw)));
        let (k, n) = raw.trim().split_once('/').ok_or_else(|| bad("is not K/N"))?;
        let number = |s: &str| s.trim().parse::<usize>().map_err(|_| bad("is not K/N"));
        let (index, count) = (number(k)?, number(n)?);
        if count == 0 || count > MAX_SHARDS {
            return Err(bad(&format!("must have 1 <= N <= {MAX_SHARDS}")));
        }
        if index == 0 || index > count {
            return Err(bad("must have 1 <= K <= N"));
        }
        Ok(Slice { index, count })
    }

    /// The items of this shard, from items of `(location, size)`: indexes into `items`, in
    /// location order.
    pub fn pick<T>(&self, items: &[T], key: impl Fn(&T) -> (&str, u64)) -> Vec<usize> {
        let mut order: Vec<usize> = (0..items.len()).collect();
        order.sort_by(|&a, &b| key(&items[a]).0.cmp(key(&items[b]).0));
        let mut loads = vec![0u64; self.count];
        let mut mine = Vec::new();
        for i in order {
            let (shard, load) = loads
                .iter_mut()
                .enumerate()
                .min_by_key(|(shard, load)| (**load, *shard))
                .expect("at least one shard");
            *load += key(&items[i]).1;
            if shard + 1 == self.index {
                mine.push(i);
            }
        }
        mine
    }
}

impl std::fmt::Display for Slice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(sizes: &[u64]) -> Vec<(String, u64)> {
        // Locations in another order than the sizes, so that sorting matters.
        sizes
            .iter()
            .enumerate()
            .map(|(i, size)| (format!("b/c/{:04}.bin", (i * 3) % sizes.len()), *size))
            .collect()
    }

    fn shard(items: &[(String, u64)], index: usize, count: usize) -> Vec<usize> {
        Slice { index, count }.pick(items, |(location, size)| (location.as_str(), *size))
    }

    #[test]
    fn the_shards_together_cover_every_file_exactly_once() {
        let items = files(&(0..100).map(|i| (i * 37 % 11) * 1000 + 1).collect::<Vec<_>>());
        for count in [1, 2, 3, 7, 100, 150] {
            let mut seen: Vec<usize> = (1..=count)
                .flat_map(|index| shard(&items, index, count))
                .collect();
            seen.sort();
            assert_eq!(seen, (0..items.len()).collect::<Vec<_>>(), "N = {count}");
        }
    }

    #[test]
    fn the_shards_are_balanced_by_bytes() {
        let sizes: Vec<u64> = (0..2000).map(|i| 1 + (i * 7919 % 200_000)).collect();
        let items = files(&sizes);
        let total: u64 = sizes.iter().sum();
        let count = 5;
        for index in 1..=count {
            let bytes: u64 = shard(&items, index, count).iter().map(|&i| items[i].1).sum();
            let share = total / count as u64;
            // Greedy assignment keeps every shard within one largest file of the even share.
            assert!(bytes.abs_diff(share) <= 200_000, "{index}/{count}: {bytes} vs {share}");
        }
    }

    #[test]
    fn the_same_data_gives_the_same_shards_whatever_its_order() {
        let items = files(&[5, 1, 9, 3, 3, 7, 2]);
        let mut reversed = items.clone();
        reversed.reverse();
        let names = |items: &[(String, u64)], picked: Vec<usize>| -> Vec<String> {
            picked.into_iter().map(|i| items[i].0.clone()).collect()
        };
        for index in 1..=3 {
            assert_eq!(
                names(&items, shard(&items, index, 3)),
                names(&reversed, shard(&reversed, index, 3))
            );
        }
        // Location order within a shard; the first file goes to shard 1.
        let first = names(&items, shard(&items, 1, 3));
        assert_eq!(first[0], "b/c/0000.bin");
        assert!(first.windows(2).all(|w| w[0] < w[1]), "{first:?}");
    }

    #[test]
    fn slices_are_k_of_n() {
        assert_eq!(Slice::parse("SLICE", "2/3").unwrap(), Slice { index: 2, count: 3 });
        assert_eq!(Slice::parse("SLICE", " 1/1 ").unwrap(), Slice::WHOLE);
        for bad in ["0/3", "4/3", "1/0", "3", "a/b", "1/2/3", "-1/2", "1/10001"] {
            let err = Slice::parse("SLICE", bad).unwrap_err().to_string();
            assert!(err.contains("SLICE") && err.contains(bad.trim()), "{bad}: {err}");
        }
    }
}
