//! The checker can fail: a disk that loses a synced write (an acknowledged flow) must be caught.
//! A checker that cannot fail proves nothing.

use purse_sim::{Breakage, Options};

#[test]
fn a_disk_that_loses_synced_writes_is_caught() {
    let options = Options { steps: 100, breakage: Some(Breakage::LoseSyncedWrite) };
    let caught: Vec<String> =
        (0..20).filter_map(|seed| purse_sim::run(seed, &options).err()).map(|failure| failure.to_string()).collect();
    println!("{} of 20 seeds caught the lost write; first: {:?}", caught.len(), caught.first());
    assert!(caught.len() >= 10, "only {} of 20 seeds caught a disk that loses synced writes", caught.len());
}
