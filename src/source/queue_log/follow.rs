//! Following a log file as it grows, across rotations: complete lines only,
//! a bounded line buffer, and a position (file identity and offset) that a
//! restart resumes from. Blocking I/O: the live source runs it off the async
//! threads.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::row::MAX_LINE_BYTES;

/// Bytes read in one read call.
const CHUNK_BYTES: usize = 64 * 1024;
/// Directory entries looked at when searching for a rotated file.
const MAX_DIR_ENTRIES: usize = 10_000;
/// Bytes kept from just before the read position, to tell a file truncated
/// and written again past that position from the one we were reading.
const TAIL_BYTES: usize = 32;

/// Which file: its device and inode (a renamed file keeps them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The device.
    pub dev: u64,
    /// The inode.
    pub ino: u64,
}

impl Identity {
    #[cfg(unix)]
    fn of(meta: &std::fs::Metadata) -> Identity {
        use std::os::unix::fs::MetadataExt;
        Identity {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }

    /// Without inodes a renamed file cannot be told from a new one: only
    /// truncation is seen as rotation.
    #[cfg(not(unix))]
    fn of(_meta: &std::fs::Metadata) -> Identity {
        Identity { dev: 0, ino: 0 }
    }
}

/// Where the next unread line starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The file.
    pub file: Identity,
    /// The byte offset in it.
    pub offset: u64,
    /// The last bytes before the offset, to tell on resuming whether the
    /// file was truncated and written again while we were away.
    #[serde(default)]
    pub before: Vec<u8>,
}

/// What a poll read, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    /// A complete line (without its `\n`) starting at this offset.
    Line(u64, Vec<u8>),
    /// A line longer than the limit, skipped, starting at this offset.
    TooLong(u64),
    /// The unfinished last line of a file that was rotated away.
    Unfinished(u64),
}

/// What one poll gave.
#[derive(Debug)]
pub struct Batch {
    /// The lines read.
    pub pieces: Vec<Piece>,
    /// Whether everything written so far has been read.
    pub at_end: bool,
    /// Where to resume once these lines are stored.
    pub position: Option<Position>,
}

struct Open {
    file: File,
    identity: Identity,
    /// Where the next read starts.
    read_at: u64,
    /// Where the line being gathered starts.
    line_at: u64,
    /// The line being gathered (bounded).
    line: Vec<u8>,
    /// Whether the line being gathered is too long and dropped.
    dropping: bool,
    /// The last bytes read, which must still be there before `read_at`.
    tail: Vec<u8>,
}

impl Open {
    fn at(file: File, identity: Identity, offset: u64) -> std::io::Result<Open> {
        let mut file = file;
        file.seek(SeekFrom::Start(offset))?;
        Ok(Open {
            file,
            identity,
            read_at: offset,
            line_at: offset,
            line: Vec::new(),
            dropping: false,
            tail: Vec::new(),
        })
    }

    fn position(&self) -> Position {
        // The bytes read before `read_at` end with the unfinished line; those
        // before it end at `line_at` (unknown while a long line is dropped).
        let before = match self.tail.len().checked_sub(self.line.len()) {
            Some(end) if !self.dropping => self.tail[..end].to_vec(),
            _ => Vec::new(),
        };
        Position {
            file: self.identity,
            offset: self.line_at,
            before,
        }
    }

    /// Whether `before` is what the file holds just before `offset`.
    fn holds(&mut self, offset: u64, before: &[u8]) -> std::io::Result<bool> {
        let Some(start) = offset.checked_sub(before.len() as u64) else {
            return Ok(false);
        };
        let mut now = vec![0u8; before.len()];
        self.file.seek(SeekFrom::Start(start))?;
        self.file.read_exact(&mut now)?;
        Ok(now == before)
    }

    /// Reads up to `budget` bytes; `true` when the end of the file was reached.
    fn read(&mut self, budget: usize, pieces: &mut Vec<Piece>) -> std::io::Result<bool> {
        let mut chunk = vec![0u8; CHUNK_BYTES];
        let mut read = 0;
        while read < budget {
            let n = self.file.read(&mut chunk)?;
            if n == 0 {
                return Ok(true);
            }
            self.take(&chunk[..n], pieces);
            read += n;
        }
        Ok(false)
    }

    fn take(&mut self, bytes: &[u8], pieces: &mut Vec<Piece>) {
        let base = self.read_at;
        let mut start = 0;
        while let Some(i) = bytes[start..].iter().position(|&b| b == b'\n') {
            let end = start + i;
            if !self.dropping {
                self.line.extend_from_slice(&bytes[start..end]);
            }
            if self.dropping || self.line.len() > MAX_LINE_BYTES {
                pieces.push(Piece::TooLong(self.line_at));
                self.line.clear();
            } else {
                pieces.push(Piece::Line(self.line_at, std::mem::take(&mut self.line)));
            }
            self.dropping = false;
            start = end + 1;
            self.line_at = base + start as u64;
        }
        if !self.dropping {
            self.line.extend_from_slice(&bytes[start..]);
            if self.line.len() > MAX_LINE_BYTES {
                self.line = Vec::new();
                self.dropping = true;
            }
        }
        self.read_at = base + bytes.len() as u64;
        let keep = bytes.len().min(TAIL_BYTES);
        self.tail.extend_from_slice(&bytes[bytes.len() - keep..]);
        let excess = self.tail.len().saturating_sub(TAIL_BYTES);
        self.tail.drain(..excess);
    }

    /// Whether the file was truncated: shorter than what was read, or the
    /// bytes just before the read position changed (truncated and written
    /// again past it between two polls, as copytruncate may).
    fn truncated(&mut self, len: u64) -> std::io::Result<bool> {
        if len < self.read_at {
            return Ok(true);
        }
        let mut now = vec![0u8; self.tail.len()];
        self.file
            .seek(SeekFrom::Start(self.read_at - self.tail.len() as u64))?;
        self.file.read_exact(&mut now)?;
        Ok(now != self.tail)
    }

    /// Back to the start of the file (it was truncated).
    fn restart(&mut self) -> std::io::Result<()> {
        self.file.seek(SeekFrom::Start(0))?;
        self.read_at = 0;
        self.line_at = 0;
        self.line.clear();
        self.dropping = false;
        self.tail.clear();
        Ok(())
    }
}

/// Follows the file at a path, whatever file is there over time.
pub struct Follower {
    path: PathBuf,
    open: Option<Open>,
    /// Where the previous run stopped (used at the first open).
    resume: Option<Position>,
    /// Whether the first open skips what the file already holds.
    from_end: bool,
}

impl Follower {
    /// A follower of `path`, resuming at `resume` when given, else from the
    /// start of the file or (`from_end`) from its end as first found.
    pub fn new(path: PathBuf, resume: Option<Position>, from_end: bool) -> Follower {
        Follower {
            path,
            open: None,
            resume,
            from_end,
        }
    }

    /// The path followed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads what was written since the last poll, about `budget` bytes at
    /// most. An error means the file cannot be opened (yet); retry later.
    pub fn poll(&mut self, budget: usize) -> std::io::Result<Batch> {
        if self.open.is_none() {
            self.open = Some(self.first_open()?);
        }
        let mut pieces = Vec::new();
        let open = self.open.as_mut().expect("opened above");
        // Before reading on: what is past our position may be a new start.
        let len = open.file.metadata()?.len();
        if open.truncated(len)? {
            tracing::info!("queue_log: {} was truncated", self.path.display());
            open.restart()?;
        }
        let mut at_end = open.read(budget, &mut pieces)?;
        if at_end {
            at_end = self.rotate(&mut pieces)?;
        }
        Ok(Batch {
            pieces,
            at_end,
            position: self.open.as_ref().map(Open::position),
        })
    }

    fn first_open(&mut self) -> std::io::Result<Open> {
        let file = File::open(&self.path)?;
        let meta = file.metadata()?;
        let identity = Identity::of(&meta);
        let from_end = std::mem::take(&mut self.from_end);
        let Some(resume) = self.resume.take() else {
            let offset = if from_end { meta.len() } else { 0 };
            return Open::at(file, identity, offset);
        };
        if resume.file == identity {
            // Shorter than where we stopped, or other bytes before that
            // point: truncated (and written again) while we were away.
            let mut open = Open::at(file, identity, 0)?;
            if resume.offset <= meta.len() && open.holds(resume.offset, &resume.before)? {
                let mut resumed = Open::at(open.file, identity, resume.offset)?;
                resumed.tail = resume.before;
                return Ok(resumed);
            }
            tracing::info!("queue_log: {} was truncated", self.path.display());
            open.restart()?;
            return Ok(open);
        }
        // Rotated while we were away: finish the old file first if it is
        // still beside the new one; the new one is then read from its start.
        if let Some(old) = find_file(&self.path, resume.file) {
            tracing::info!(
                "queue_log: finishing {} before {}",
                old.display(),
                self.path.display()
            );
            let old_file = File::open(&old)?;
            let offset = resume.offset.min(old_file.metadata()?.len());
            return Open::at(old_file, resume.file, offset);
        }
        Open::at(file, identity, 0)
    }

    /// At the end of the file read: moves to a new file at the path once the
    /// writer has moved to it, or to the start of a truncated file. `true`
    /// when there is nothing more to read for now.
    fn rotate(&mut self, pieces: &mut Vec<Piece>) -> std::io::Result<bool> {
        let Some(open) = self.open.as_mut() else {
            return Ok(true);
        };
        let meta = match std::fs::metadata(&self.path) {
            Ok(meta) => meta,
            // Renamed and not created again yet: keep reading the old one.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
            Err(e) => return Err(e),
        };
        let identity = Identity::of(&meta);
        if identity == open.identity {
            return Ok(true);
        }
        // A new file: the writer may still append to the old one until it
        // reopens, so switch only once the new one has something in it, and
        // after reading the old one to its end.
        if meta.len() == 0 {
            return Ok(true);
        }
        open.read(usize::MAX, pieces)?;
        if !open.line.is_empty() || open.dropping {
            pieces.push(Piece::Unfinished(open.line_at));
        }
        let file = File::open(&self.path)?;
        let identity = Identity::of(&file.metadata()?);
        tracing::info!("queue_log: {} was rotated", self.path.display());
        self.open = Some(Open::at(file, identity, 0)?);
        Ok(false)
    }
}

/// A file in the same directory as `path` with this identity (the rotated
/// file, as `queue_log.1` or `queue_log-20261207`).
fn find_file(path: &Path, identity: Identity) -> Option<PathBuf> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::read_dir(dir)
        .ok()?
        .take(MAX_DIR_ENTRIES)
        .filter_map(Result::ok)
        .find(|entry| {
            entry
                .metadata()
                .is_ok_and(|m| m.is_file() && Identity::of(&m) == identity)
        })
        .map(|entry| entry.path())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn lines(batch: &Batch) -> Vec<String> {
        batch
            .pieces
            .iter()
            .map(|p| match p {
                Piece::Line(_, l) => String::from_utf8_lossy(l).into_owned(),
                Piece::TooLong(at) => format!("too long at {at}"),
                Piece::Unfinished(at) => format!("unfinished at {at}"),
            })
            .collect()
    }

    fn dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wb-follow-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn append(path: &Path, text: &[u8]) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text).unwrap();
    }

    #[test]
    fn complete_lines_only_long_lines_skipped_rotation_and_truncation() {
        let dir = dir("rot");
        let path = dir.join("queue_log");
        append(&path, b"old\n");
        let mut f = Follower::new(path.clone(), None, true);
        assert!(lines(&f.poll(1 << 20).unwrap()).is_empty(), "from the end");
        append(&path, b"a\nb");
        let batch = f.poll(1 << 20).unwrap();
        assert_eq!(lines(&batch), ["a"]);
        assert_eq!(batch.position.unwrap().offset, 6, "before the partial line");
        let mut long = vec![b'x'; MAX_LINE_BYTES * 3];
        long.push(b'\n');
        append(&path, b"\n");
        append(&path, &long);
        append(&path, b"c\n");
        assert_eq!(
            lines(&f.poll(1 << 20).unwrap()),
            ["b", "too long at 8", "c"]
        );
        // Rotation: renamed, written to a little more, then a new file.
        std::fs::rename(&path, dir.join("queue_log.1")).unwrap();
        append(&dir.join("queue_log.1"), b"d\npart");
        assert_eq!(lines(&f.poll(1 << 20).unwrap()), ["d"]);
        append(&path, b"");
        assert!(f.poll(1 << 20).unwrap().at_end, "an empty new file waits");
        append(&path, b"e\n");
        let batch = f.poll(1 << 20).unwrap();
        assert!(!batch.at_end);
        assert_eq!(
            lines(&batch),
            [format!("unfinished at {}", 12 + long.len())]
        );
        assert_eq!(lines(&f.poll(1 << 20).unwrap()), ["e"]);
        // Truncation: read again from the start.
        std::fs::write(&path, b"").unwrap();
        assert_eq!(f.poll(1 << 20).unwrap().position.unwrap().offset, 0);
        append(&path, b"f\n");
        assert_eq!(lines(&f.poll(1 << 20).unwrap()), ["f"]);
        // Truncated and written past the old position between two polls.
        std::fs::write(&path, b"gg\nhh\n").unwrap();
        assert_eq!(lines(&f.poll(1 << 20).unwrap()), ["gg", "hh"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn resumes_in_the_old_file_after_a_rotation_while_away() {
        let dir = dir("resume");
        let path = dir.join("queue_log");
        append(&path, b"a\nb\n");
        let mut f = Follower::new(path.clone(), None, false);
        let batch = f.poll(1 << 20).unwrap();
        assert_eq!(lines(&batch), ["a", "b"]);
        let stopped = batch.position.unwrap();
        append(&path, b"c\n");
        std::fs::rename(&path, dir.join("queue_log-20261207")).unwrap();
        append(&path, b"d\n");
        let mut f = Follower::new(path.clone(), Some(stopped), true);
        assert_eq!(lines(&f.poll(1 << 20).unwrap()), ["c"]);
        assert_eq!(lines(&f.poll(1 << 20).unwrap()), ["d"]);
        // The same file, resumed; and a missing file is an error to retry.
        let stopped = f.poll(1).unwrap().position;
        let mut f = Follower::new(path.clone(), stopped.clone(), true);
        append(&path, b"e\n");
        assert_eq!(lines(&f.poll(1 << 20).unwrap()), ["e"]);
        // Truncated and written again past where we stopped, while away.
        std::fs::write(&path, b"ffff\ngg\n").unwrap();
        let mut f = Follower::new(path.clone(), stopped, true);
        assert_eq!(lines(&f.poll(1 << 20).unwrap()), ["ffff", "gg"]);
        assert!(Follower::new(dir.join("nope"), None, true).poll(1).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
