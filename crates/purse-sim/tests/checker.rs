//! The checker can fail: a disk that loses a synced write must be caught, and a damaged meta
//! value must never open as another ledger.

use purse_core::ErrorCode;
use purse_ledger::sim_support::{SimRequest, SyncLedger};
use purse_sim::disk::{Flip, FlipTarget};
use purse_sim::rng::Rng;
use purse_sim::{Breakage, CrashKind, Faults, Options, SimDisk};

#[test]
fn a_disk_that_loses_synced_writes_is_caught() {
    let options = Options { steps: 100, breakage: Some(Breakage::LoseSyncedWrite) };
    let caught: Vec<String> =
        (0..20).filter_map(|seed| purse_sim::run(seed, &options).err()).map(|failure| failure.to_string()).collect();
    println!("{} of 20 seeds caught the lost write; first: {:?}", caught.len(), caught.first());
    assert!(caught.len() >= 10, "only {} of 20 seeds caught a disk that loses synced writes", caught.len());
}
