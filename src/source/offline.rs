//! Vendor files read offline (`classify --format`, `replay --format`) through
//! the same mappings the live sources use. Records that cannot be read are
//! skipped and summed up on stderr, never fatal: a log always holds rows we
//! do not use. A file that cannot be read at all is an error.

use std::path::Path;

use super::{Format, Mapped, Naming, hosted};
use crate::event::Event;
use crate::feed::{self, FileError};

/// Skipped records named one by one on stderr; the rest are only counted.
const NAMED_SKIPS: usize = 5;

/// Reads `path` (`-` is standard input) in `format`, as events.
pub fn read_file(format: Format, path: &Path) -> Result<Vec<Event>, FileError> {
    match format {
        Format::Events => feed::read_file(path),
        Format::QueueLog => read_vendor(path, super::queue_log::map_offline),
        Format::Ami => read_vendor(path, |bytes| {
            super::ami::map_file(bytes, &super::Naming::offline("ami"))
        }),
        Format::Esl => super::esl::read_file(path),
        Format::Connect => read_vendor(path, |bytes| {
            let (naming, settings) = (Naming::offline("connect"), Default::default());
            hosted::connect::Mapper::new(&naming, &settings).map_file(bytes)
        }),
        Format::Taskrouter => read_vendor(path, |bytes| {
            let (naming, activities) = (Naming::offline("taskrouter"), Default::default());
            hosted::taskrouter::Mapper::new(&naming, &activities).map_file(bytes)
        }),
    }
}

/// Reads a vendor file whole and maps it with `map` (which may look ahead:
/// it has the whole file), summing up what it skipped on stderr.
pub fn read_vendor(
    path: &Path,
    map: impl FnOnce(&[u8]) -> Mapped,
) -> Result<Vec<Event>, FileError> {
    let (file, bytes) = feed::read_bytes(path)?;
    let mapped = map(&bytes);
    report_skipped(&file, &mapped);
    Ok(mapped.events)
}

fn report_skipped(file: &str, mapped: &Mapped) {
    if mapped.skipped.is_empty() {
        return;
    }
    for skip in mapped.skipped.iter().take(NAMED_SKIPS) {
        eprintln!("{file}: skipped {}: {}", skip.position, skip.why);
    }
    eprintln!(
        "{file}: {} records skipped, {} events read",
        mapped.skipped.len(),
        mapped.events.len()
    );
}
