//! The head file: a lower bound on how far the log reached, kept outside sled.
//!
//! sled recovers its log up to the first message whose checksum fails and silently drops the
//! rest, as it would a torn write. A damaged byte in the middle of sled's file would so make
//! acknowledged flows vanish without an error. After every durable commit the writer records
//! the last sequence and block checksum here; on open a log that ends before that point is
//! `CORRUPTION`. Two 32-byte slots are written alternately, each with its own CRC, so a torn
//! write of one leaves the other readable. The file is written without an fsync of its own
//! (fsynced at creation and close): after a power loss it may lag, which keeps it a lower bound.
//!
//! ```text
//! slot (32 bytes): version u8 | sequence u64 BE | block checksum u32 BE | crc32 u32 BE | zeros
//! ```

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::Error;

pub(crate) const HEAD_FILE_NAME: &str = "purse-head";
const HEAD_VERSION: u8 = 1;
const SLOT_BYTES: usize = 32;
const SLOT_OFFSET_STEP: u64 = 32;
const _: () = assert!(SLOT_BYTES as u64 == SLOT_OFFSET_STEP);
const SLOT_USED_BYTES: usize = 17;

/// The furthest point of the log known to have been acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Head {
    pub sequence: u64,
    pub block_checksum: u32,
}

#[derive(Debug)]
pub(crate) struct HeadFile {
    file: File,
    next_slot: u64,
}

impl HeadFile {
    /// Opens the head file; `create` makes a new one (for a new ledger) holding `Head::default()`.
    pub fn open(dir: &Path, create: bool) -> Result<(HeadFile, Head), Error> {
        let path = dir.join(HEAD_FILE_NAME);
        let file =
            OpenOptions::new().read(true).write(true).create(create).truncate(false).open(&path).map_err(|error| {
                match error.kind() {
                    std::io::ErrorKind::NotFound => {
                        Error::Corruption(format!("{} is missing: the ledger's files are incomplete", path.display()))
                    }
                    _ => Error::Storage(format!("opening {}: {error}", path.display())),
                }
            })?;
        let mut head_file = HeadFile { file, next_slot: 0 };
        if create {
            head_file.write(Head::default())?;
            head_file.write(Head::default())?;
            head_file.sync()?;
            return Ok((head_file, Head::default()));
        }
        let slots = [head_file.read_slot(0)?, head_file.read_slot(1)?];
        let head = match slots {
            [Some(first), Some(second)] => {
                head_file.next_slot = u64::from(second.sequence < first.sequence);
                if first.sequence >= second.sequence {
                    first
                } else {
                    second
                }
            }
            [Some(head), None] | [None, Some(head)] => head,
            [None, None] => return Err(Error::Corruption(format!("{} has no readable slot", path.display()))),
        };
        Ok((head_file, head))
    }

    fn read_slot(&self, slot: u64) -> Result<Option<Head>, Error> {
        let mut bytes = [0u8; SLOT_USED_BYTES];
        match self.file.read_exact_at(&mut bytes, slot * SLOT_OFFSET_STEP) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(error) => return Err(error.into()),
        }
        let checksum = u32::from_be_bytes(bytes[13..17].try_into().expect("4 bytes"));
        if bytes[0] != HEAD_VERSION || crc32fast::hash(&bytes[..13]) != checksum {
            return Ok(None);
        }
        Ok(Some(Head {
            sequence: u64::from_be_bytes(bytes[1..9].try_into().expect("8 bytes")),
            block_checksum: u32::from_be_bytes(bytes[9..13].try_into().expect("4 bytes")),
        }))
    }

    /// Records `head` in the older slot. Not synced: see the module comment.
    pub fn write(&mut self, head: Head) -> Result<(), Error> {
        let mut bytes = [0u8; SLOT_BYTES];
        bytes[0] = HEAD_VERSION;
        bytes[1..9].copy_from_slice(&head.sequence.to_be_bytes());
        bytes[9..13].copy_from_slice(&head.block_checksum.to_be_bytes());
        let checksum = crc32fast::hash(&bytes[..13]);
        bytes[13..17].copy_from_slice(&checksum.to_be_bytes());
        self.file.write_all_at(&bytes, self.next_slot * SLOT_OFFSET_STEP)?;
        self.next_slot ^= 1;
        Ok(())
    }

    pub fn sync(&self) -> Result<(), Error> {
        self.file.sync_data().map_err(|error| Error::Storage(format!("fdatasync of the head file: {error}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_readable_slot_wins() {
        let dir = tempfile::tempdir().unwrap();
        let (mut file, head) = HeadFile::open(dir.path(), true).unwrap();
        assert_eq!(head, Head::default());
        for sequence in 1..=5 {
            file.write(Head { sequence, block_checksum: 7 }).unwrap();
        }
        drop(file);
        let (_, head) = HeadFile::open(dir.path(), false).unwrap();
        assert_eq!(head.sequence, 5);
        // tear the newest slot: the other one still answers
        let path = dir.path().join(HEAD_FILE_NAME);
        let mut bytes = std::fs::read(&path).unwrap();
        let newest = if bytes[1..9] == 5u64.to_be_bytes() { 0 } else { 32 };
        bytes[newest + 3] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let (_, head) = HeadFile::open(dir.path(), false).unwrap();
        assert_eq!(head.sequence, 4);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(HeadFile::open(dir.path(), false).unwrap_err().code(), purse_core::ErrorCode::Corruption);
    }
}
