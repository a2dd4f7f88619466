//! The head: a lower bound on how far the log reached, kept outside sled.
//!
//! sled recovers its log up to the first message whose checksum fails and silently drops the
//! rest, as it would a torn write. A damaged byte in the middle of sled's file would so make
//! acknowledged flows vanish without an error. After every durable commit the writer records
//! the last sequence and block checksum here; on open a log that ends before that point is
//! `CORRUPTION`. The same head is written into both of two 32-byte slots, each with its own
//! CRC, so one damaged slot loses nothing: the other holds the same point (or, if the process
//! died between the two writes, the point before, which was not yet acknowledged). Head format 1
//! wrote the slots alternately; reading takes the furthest readable slot either way. The slots
//! are written without an fsync of their own (fsynced at creation and close): after a power loss
//! they may lag, which keeps them a lower bound.
//!
//! ```text
//! slot (32 bytes): version u8 | sequence u64 BE | block checksum u32 BE | crc32 u32 BE | zeros
//! ```

use crate::error::Error;
use crate::storage::{Storage, HEAD_SLOT_BYTES};

const HEAD_VERSION: u8 = 1;
const SLOT_USED_BYTES: usize = 17;
const SLOTS: usize = 2;
const _: () = assert!(SLOT_USED_BYTES <= HEAD_SLOT_BYTES);

/// The furthest point of the log known to have been acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Head {
    pub sequence: u64,
    pub block_checksum: u32,
}

/// What the head's slots say: the furthest readable point, and a warning per slot that could
/// not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeadRead {
    pub head: Head,
    pub warnings: Vec<String>,
}

fn encode(head: Head) -> [u8; HEAD_SLOT_BYTES] {
    let mut bytes = [0u8; HEAD_SLOT_BYTES];
    bytes[0] = HEAD_VERSION;
    bytes[1..9].copy_from_slice(&head.sequence.to_be_bytes());
    bytes[9..13].copy_from_slice(&head.block_checksum.to_be_bytes());
    let checksum = crc32fast::hash(&bytes[..13]);
    bytes[13..17].copy_from_slice(&checksum.to_be_bytes());
    bytes
}

fn decode(bytes: &[u8; HEAD_SLOT_BYTES]) -> Option<Head> {
    let checksum = u32::from_be_bytes(bytes[13..17].try_into().expect("4 bytes"));
    if bytes[0] != HEAD_VERSION || crc32fast::hash(&bytes[..13]) != checksum {
        return None;
    }
    Some(Head {
        sequence: u64::from_be_bytes(bytes[1..9].try_into().expect("8 bytes")),
        block_checksum: u32::from_be_bytes(bytes[9..13].try_into().expect("4 bytes")),
    })
}

/// Creates the head of a new ledger, holding `Head::default()`, durably.
pub(crate) fn create(storage: &mut dyn Storage) -> Result<(), Error> {
    storage.head_create()?;
    write(storage, Head::default())?;
    storage.head_sync()
}

/// Records `head` in both slots. Not synced: see the module comment.
pub(crate) fn write(storage: &mut dyn Storage, head: Head) -> Result<(), Error> {
    let bytes = encode(head);
    for slot in 0..SLOTS {
        storage.head_write(slot, &bytes)?;
    }
    Ok(())
}

/// Reads both slots. A slot that cannot be read is a warning; none readable is `CORRUPTION`.
pub(crate) fn read(storage: &dyn Storage) -> Result<HeadRead, Error> {
    let mut furthest: Option<Head> = None;
    let mut warnings = Vec::new();
    for slot in 0..SLOTS {
        match storage.head_read(slot)?.as_ref().and_then(decode) {
            Some(head) => {
                if furthest.is_none_or(|known| head.sequence > known.sequence) {
                    furthest = Some(head);
                }
            }
            None => warnings.push(format!("head slot {slot} is damaged or missing; the other slot is used")),
        }
    }
    let head = furthest.ok_or_else(|| Error::Corruption("the head file has no readable slot".into()))?;
    Ok(HeadRead { head, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sled_storage::{SledStorage, HEAD_FILE_NAME};

    /// Writes heads 1..=5 into a new ledger directory's head file, damages the slots `damage`
    /// names, and reads it back.
    fn check(damage: &[usize], expect: Result<(u64, usize), purse_core::ErrorCode>) {
        let dir = tempfile::tempdir().unwrap();
        let (mut storage, _) = SledStorage::open(dir.path(), true, crate::sled_storage::SLED_CACHE_BYTES).unwrap();
        create(&mut storage).unwrap();
        for sequence in 1..=5 {
            write(&mut storage, Head { sequence, block_checksum: 7 }).unwrap();
        }
        drop(storage);
        let path = dir.path().join(HEAD_FILE_NAME);
        let mut bytes = std::fs::read(&path).unwrap();
        for slot in damage {
            bytes[slot * HEAD_SLOT_BYTES + 3] ^= 0xff;
        }
        std::fs::write(&path, &bytes).unwrap();
        let (storage, _) = SledStorage::open(dir.path(), true, crate::sled_storage::SLED_CACHE_BYTES).unwrap();
        let got = read(&storage).map(|read| (read.head.sequence, read.warnings.len())).map_err(|error| error.code());
        assert_eq!(got, expect, "damaged slots {damage:?}");
    }

    #[test]
    fn one_damaged_slot_loses_nothing_and_warns() {
        use purse_core::ErrorCode::Corruption;
        check(&[], Ok((5, 0)));
        check(&[0], Ok((5, 1)));
        check(&[1], Ok((5, 1)));
        check(&[0, 1], Err(Corruption));
    }

    #[test]
    fn head_format_1_alternating_slots_read_the_furthest() {
        let dir = tempfile::tempdir().unwrap();
        let (mut storage, _) = SledStorage::open(dir.path(), true, crate::sled_storage::SLED_CACHE_BYTES).unwrap();
        storage.head_create().unwrap();
        storage.head_write(0, &encode(Head { sequence: 9, block_checksum: 1 })).unwrap();
        storage.head_write(1, &encode(Head { sequence: 8, block_checksum: 2 })).unwrap();
        assert_eq!(
            read(&storage).unwrap(),
            HeadRead { head: Head { sequence: 9, block_checksum: 1 }, warnings: vec![] }
        );
    }
}
