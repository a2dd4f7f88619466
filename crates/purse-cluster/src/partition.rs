//! Which partition an account's flows live in: a stable hash of the account id, modulo the
//! partition count fixed when the cluster is made. The hash is part of the stored format (it
//! decides where every existing account is), so it is pinned by the golden values below and
//! recorded in the cluster's meta by name.

/// The name of the hash below, as the cluster meta records it.
pub const HASH_NAME: &str = "fnv1a64";

/// FNV-1a, 64 bits, of the account id's UTF-8 bytes.
fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(PRIME))
}

/// The partition (0-based) of `account_id` among `partitions` (at least 1).
pub fn partition_of(account_id: &str, partitions: u32) -> u32 {
    let partitions = u64::from(partitions.max(1));
    u32::try_from(fnv1a64(account_id.as_bytes()) % partitions).expect("below a u32 partition count")
}

/// The JetStream stream holding partition `partition` of cluster `cluster`.
pub fn stream_name(cluster: &str, partition: u32) -> String {
    format!("PURSE_{cluster}_P{partition:04}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(account: &str, hash: u64, of_4: u32, of_16: u32) {
        assert_eq!(fnv1a64(account.as_bytes()), hash, "{account}");
        assert_eq!(partition_of(account, 4), of_4, "{account}");
        assert_eq!(partition_of(account, 16), of_16, "{account}");
        assert_eq!(partition_of(account, 1), 0);
    }

    /// Golden values (FNV-1a 64's published vectors for "" and "a", the others computed apart
    /// from this code): a change of the hash
    /// would move existing accounts to other partitions.
    #[test]
    fn the_partition_of_an_account_never_changes() {
        check("", 0xcbf2_9ce4_8422_2325, 1, 5);
        check("a", 0xaf63_dc4c_8601_ec8c, 0, 12);
        check("alice", 0x508b_2abb_65a0_3907, 3, 7);
        check("会员-0001", 0x3eb7_ac60_ae26_9257, 3, 7);
    }

    #[test]
    fn stream_names_are_zero_padded() {
        assert_eq!(stream_name("shop", 3), "PURSE_shop_P0003");
    }
}
