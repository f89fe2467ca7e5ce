//! Sharding: which deployments one run of a parallel job handles (`--shard INDEX/COUNT`).
//!
//! A deployment's shard is a function of its name and the shard count only, never of its
//! position among the deployments. Why that matters for a Kubernetes Indexed Job: every pod
//! fetches the intents on its own (git-sync), so two pods of one run can see different
//! revisions of the intent repository. With position-based shards, a deployment added or
//! removed between their fetches would shift the others, and one deployment could be handled
//! by two pods at once (two writers) or by none. With name-based shards a deployment is
//! handled by exactly one pod whatever revision each pod read; a deployment added mid-run is
//! at worst handled from the next run on.
//!
//! The name is hashed with SHA-256 (the same on every platform and in every release) and the
//! hash is placed into one of COUNT buckets with jump consistent hashing (Lamping and Veach,
//! 2014): changing COUNT from N to N+1 moves only about 1/(N+1) of the deployments. The price
//! of a hash is balance: with few deployments, shards can hold unequal numbers (or none); a
//! shard with nothing to do exits 0.
//!
//! Without `--shard`, the binary also reads Kubernetes' `JOB_COMPLETION_INDEX` (set in every
//! pod of an Indexed Job) together with `INTENTWALL_SHARD_COUNT` ([`resolve`]).

use sha2::{Digest, Sha256};
use std::fmt;

/// Environment variable with the shard count, read with `JOB_COMPLETION_INDEX`.
pub const COUNT_ENV: &str = "INTENTWALL_SHARD_COUNT";
/// The index Kubernetes sets in each pod of an Indexed Job.
pub const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

/// One shard of COUNT: this run handles the deployments whose [`shard_of`] is `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 0-based, below `count`.
    pub index: u32,
    /// At least 1.
    pub count: u32,
}

impl Shard {
    /// A shard, checked: `count` at least 1 and `index` below it.
    pub fn new(index: u32, count: u32) -> Result<Shard, String> {
        if count == 0 {
            return Err("the shard count must be at least 1".into());
        }
        if index >= count {
            return Err(format!(
                "shard index {index} is not below the shard count {count} (indexes start at 0)"
            ));
        }
        Ok(Shard { index, count })
    }

    /// Parse `INDEX/COUNT`, e.g. `0/3` (the clap value parser of `--shard`).
    pub fn parse(s: &str) -> Result<Shard, String> {
        let usage = || format!("`{s}` is not INDEX/COUNT (e.g. 0/3: the first of 3 shards)");
        let (i, n) = s.split_once('/').ok_or_else(usage)?;
        let i: u32 = i.trim().parse().map_err(|_| usage())?;
        let n: u32 = n.trim().parse().map_err(|_| usage())?;
        Shard::new(i, n)
    }

    /// Whether this shard handles `deployment`.
    pub fn contains(&self, deployment: &str) -> bool {
        shard_of(deployment, self.count) == self.index
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The shard (0-based, below `count`) that handles `deployment`; `count` 0 counts as 1.
pub fn shard_of(deployment: &str, count: u32) -> u32 {
    let digest = Sha256::digest(deployment.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    jump(u64::from_be_bytes(first), count.max(1))
}

/// Jump consistent hash: a bucket in `0..buckets` for `key`, such that growing `buckets` by
/// one moves a key only into the new bucket, and only with probability 1/buckets.
fn jump(mut key: u64, buckets: u32) -> u32 {
    let (mut b, mut j): (i64, i64) = (-1, 0);
    while j < i64::from(buckets) {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b as u32
}

/// The shard this run handles: `--shard` (or `INTENTWALL_SHARD`) when given; else, in a pod of
/// a Kubernetes Indexed Job (`JOB_COMPLETION_INDEX` set), that index of
/// `INTENTWALL_SHARD_COUNT`, which must then be set (a pod that silently handled every
/// deployment would write the others' targets at the same time as they do); else none.
/// `env` reads an environment variable (a parameter so tests need not change the process's).
pub fn resolve(
    flag: Option<Shard>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<Shard>, String> {
    if flag.is_some() {
        return Ok(flag);
    }
    let index = env(INDEX_ENV).filter(|s| !s.trim().is_empty());
    let count = env(COUNT_ENV).filter(|s| !s.trim().is_empty());
    match (index, count) {
        (None, None) => Ok(None),
        (Some(i), None) => Err(format!(
            "{INDEX_ENV}={i} is set (a pod of an Indexed Job) but no shard count: set \
             {COUNT_ENV} to the Job's completions, or pass --shard INDEX/COUNT"
        )),
        (None, Some(n)) => Err(format!(
            "{COUNT_ENV}={n} is set but {INDEX_ENV} is not: pass --shard INDEX/COUNT outside \
             an Indexed Job"
        )),
        (Some(i), Some(n)) => {
            let i: u32 = i
                .trim()
                .parse()
                .map_err(|_| format!("{INDEX_ENV}=`{i}` is not a whole number"))?;
            let n: u32 = n
                .trim()
                .parse()
                .map_err(|_| format!("{COUNT_ENV}=`{n}` is not a whole number"))?;
            Shard::new(i, n)
                .map(Some)
                .map_err(|e| format!("{INDEX_ENV}/{COUNT_ENV}: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn name() -> impl Strategy<Value = String> {
        "[a-z0-9][a-z0-9._-]{0,20}"
    }

    proptest! {
        /// Any deployment set, any shard count: each deployment is in exactly one shard.
        #[test]
        fn each_deployment_in_exactly_one_shard(
            names in prop::collection::btree_set(name(), 0..40),
            count in 1u32..64,
        ) {
            for n in &names {
                let holders = (0..count)
                    .filter(|&i| Shard::new(i, count).unwrap().contains(n))
                    .count();
                prop_assert_eq!(holders, 1, "{} is in {} shards of {}", n, holders, count);
            }
        }

        /// Adding a deployment never moves another one: each shard's selection from the
        /// larger set is its selection from the smaller one, plus at most the new name.
        #[test]
        fn adding_a_deployment_moves_no_other(
            names in prop::collection::btree_set(name(), 1..30),
            extra in name(),
            count in 1u32..16,
        ) {
            let mut more: BTreeSet<String> = names.clone();
            more.insert(extra.clone());
            for i in 0..count {
                let s = Shard::new(i, count).unwrap();
                let small: BTreeSet<&String> = names.iter().filter(|n| s.contains(n)).collect();
                let mut big: BTreeSet<&String> = more.iter().filter(|n| s.contains(n)).collect();
                if !names.contains(&extra) {
                    big.remove(&extra);
                }
                prop_assert_eq!(small, big);
            }
        }

        /// Growing the count by one moves a deployment only into the new shard.
        #[test]
        fn growing_the_count_moves_only_into_the_new_shard(name in name(), count in 1u32..64) {
            let (a, b) = (shard_of(&name, count), shard_of(&name, count + 1));
            prop_assert!(a == b || b == count, "{name}: {a} -> {b} of {}", count + 1);
        }
    }

    #[test]
    fn parses_and_refuses() {
        assert_eq!(Shard::parse("0/3"), Ok(Shard { index: 0, count: 3 }));
        assert_eq!(Shard::parse("2/3").unwrap().to_string(), "2/3");
        for bad in ["0/0", "3/2", "x", "1", "/3", "1/", "-1/3", "1/3/4", ""] {
            assert!(Shard::parse(bad).is_err(), "{bad} accepted");
        }
        assert!(Shard::parse("3/2").unwrap_err().contains("not below"));
    }

    /// The assignment is part of the contract (pods of different releases must agree): these
    /// values only change with a documented, deliberate break.
    #[test]
    fn assignment_is_stable() {
        let got: Vec<u32> = ["us", "eu", "ap"].iter().map(|d| shard_of(d, 3)).collect();
        assert_eq!(got, STABLE);
    }
    const STABLE: [u32; 3] = [2, 0, 0];

    #[test]
    fn resolve_reads_the_indexed_job_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let flag = Some(Shard::new(1, 2).unwrap());
        assert_eq!(resolve(flag, env(&[(INDEX_ENV, "0")])), Ok(flag));
        assert_eq!(resolve(None, env(&[])), Ok(None));
        assert_eq!(
            resolve(None, env(&[(INDEX_ENV, "2"), (COUNT_ENV, "3")])),
            Ok(Some(Shard::new(2, 3).unwrap()))
        );
        assert!(resolve(None, env(&[(INDEX_ENV, "0")])).is_err());
        assert!(resolve(None, env(&[(COUNT_ENV, "3")])).is_err());
        assert!(resolve(None, env(&[(INDEX_ENV, "3"), (COUNT_ENV, "3")])).is_err());
        assert!(resolve(None, env(&[(INDEX_ENV, "x"), (COUNT_ENV, "3")])).is_err());
    }
}
