//! What marks the objects intentwall writes, on every cloud: the description prefix that names
//! a rule's flow, the hash that shortens names that do not fit a cloud's limits, and the name
//! of the custom role it asks for.
//!
//! They are kept here once because generated names and markers are read back from the
//! cloud's state on the next run: a second copy that drifted would rename rules or lose the
//! flow names plans show.

/// The prefix of the description intentwall writes on its rules, followed by the flow's name.
/// It labels plans and audit events; it never decides ownership (that goes by the container's
/// tag on AWS and by reserved name prefixes on Azure and GCP), so a hand-edited description
/// cannot take a rule out of intentwall's hands, nor a copied one put a rule into them.
pub const MARKER: &str = "intentwall:";

/// Name of the custom role `intentwall permissions` defines where the cloud has custom roles
/// (Azure, GCP).
pub const ROLE_NAME: &str = "intentwall";

/// FNV-1a, 64 bits, over `bytes`, starting from the standard offset basis XOR `seed` (0 for
/// the plain hash). A small, stable hash for shortening names and deriving placeholder ids;
/// not for security. The seed lets one input give independent hashes (two seeds, 128 bits).
pub fn fnv1a64(seed: u64, bytes: impl IntoIterator<Item = u8>) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .into_iter()
        .fold(OFFSET ^ seed, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_gives_the_published_values() {
        // test vectors of the FNV reference implementation
        assert_eq!(fnv1a64(0, *b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(0, *b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(0, "foobar".bytes()), 0x8594_4171_f739_67e8);
        assert_ne!(fnv1a64(0x9e37_79b9, *b"a"), fnv1a64(0, *b"a"));
    }
}
