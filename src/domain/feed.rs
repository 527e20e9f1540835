//! A batch of events: one JSON object, a JSON array, or NDJSON, parsed whole or not at all.

use serde_json::Value;

use crate::event::{Event, EventError};

/// Why a batch was refused: where (event index and, for NDJSON, line) and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}", self.place(), self.error)]
pub struct FeedError {
    /// 0-based position of the offending event in the batch.
    pub index: usize,
    /// 1-based line of the input where that event starts, when known.
    pub line: Option<usize>,
    /// What is wrong with it.
    pub error: EventError,
}

impl FeedError {
    fn place(&self) -> String {
        match self.line {
            Some(line) => format!("line {line} (event {}): ", self.index),
            None => format!("event {}: ", self.index),
        }
    }

    /// The offending field, if one is to blame.
    pub fn field(&self) -> Option<&str> {
        self.error.field.as_deref()
    }
}

/// Why a feed file could not be read: its name, and what went wrong.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Read {
        /// The file (`<stdin>` for standard input).
        file: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds an invalid event.
    #[error("{file}: {source}")]
    Parse {
        /// The file.
        file: String,
        /// Where and what.
        source: FeedError,
    },
}

/// Reads a whole feed file (`-` is standard input), all valid or an error
/// naming the file, line and field.
pub fn read_file(path: &std::path::Path) -> Result<Vec<Event>, FileError> {
    let (file, bytes) = read_bytes(path)?;
    parse_batch(&bytes, Layout::Sniff).map_err(|source| FileError::Parse { file, source })
}

/// Bytes of a file read at a time by [`read_file_each`] and [`each_value`].
const BLOCK_BYTES: usize = 4 << 20;

/// Reads a feed file (not standard input) a block at a time, handing its
/// events to `each` in order, a block's worth at a time, so that a reader
/// that needs them once holds no more than a block. A JSON array is read
/// whole. Errors are [`read_file`]'s, word for word (on the first one, the
/// file is read again whole to name it as `read_file` does).
pub fn read_file_each(
    path: &std::path::Path,
    each: impl FnMut(Vec<Event>),
) -> Result<(), FileError> {
    read_each_in_blocks(path, BLOCK_BYTES, each)
}

fn read_each_in_blocks(
    path: &std::path::Path,
    block: usize,
    mut each: impl FnMut(Vec<Event>),
) -> Result<(), FileError> {
    let events = std::cell::RefCell::new(Vec::new());
    let whole = each_value_in_blocks(
        path,
        block,
        |value: Value, index, line| {
            let event = Event::from_json(&value).map_err(|error| FeedError {
                index,
                line: Some(line),
                error,
            })?;
            events.borrow_mut().push(event);
            Ok(())
        },
        |_| each(events.take()),
    );
    match whole {
        Ok(true) => Ok(()),
        // An array, or a bad event: as `read_file` reads and words it.
        Ok(false) | Err(_) => {
            let all = read_file(path);
            match (all, whole) {
                (Ok(all), Ok(false)) => {
                    each(all);
                    Ok(())
                }
                (Err(e), _) | (Ok(_), Err(e)) => Err(e),
                (Ok(_), Ok(true)) => Ok(()),
            }
        }
    }
}

/// Reads NDJSON from the file at `path` a block at a time: each value as a
/// `T`, with its 0-based index and the 1-based line it starts on, to
/// `value`, then `block_done` after each block's values. `Ok(false)`, having
/// read nothing, for a JSON array (it cannot be cut into blocks).
pub fn each_value<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
    value: impl FnMut(T, usize, usize) -> Result<(), FeedError>,
    block_done: impl FnMut(usize),
) -> Result<bool, FileError> {
    each_value_in_blocks(path, BLOCK_BYTES, value, block_done)
}

fn each_value_in_blocks<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
    block: usize,
    mut value: impl FnMut(T, usize, usize) -> Result<(), FeedError>,
    mut block_done: impl FnMut(usize),
) -> Result<bool, FileError> {
    use std::io::Read as _;
    let file = path.display().to_string();
    let read_error = |source| FileError::Read {
        file: file.clone(),
        source,
    };
    let mut reader = std::fs::File::open(path).map_err(read_error)?;
    // Bytes read but not parsed yet: a value cut by the end of a block waits here.
    let mut pending: Vec<u8> = Vec::new();
    let (mut index, mut line, mut first) = (0, 1, true);
    loop {
        let held = pending.len();
        pending.resize(held + block, 0);
        let read = reader.read(&mut pending[held..]).map_err(read_error)?;
        pending.truncate(held + read);
        let at_end = read == 0;
        let mut from = 0;
        if first {
            // Too few bytes to tell a byte-order mark yet.
            if pending.len() < 3 && !at_end {
                continue;
            }
            from = pending.len() - strip_bom(&pending).len();
            match pending[from..].iter().find(|b| !b.is_ascii_whitespace()) {
                None if !at_end => continue,
                Some(b'[') => return Ok(false),
                _ => first = false,
            }
        }
        let body = &pending[from..];
        let mut stream = serde_json::Deserializer::from_slice(body).into_iter::<T>();
        let mut lines = LineCounter::new(body);
        let mut consumed = body.len();
        loop {
            let start = skip_whitespace(body, stream.byte_offset());
            let Some(next) = stream.next() else { break };
            let at = lines.line_at(start);
            match next {
                Ok(v) => value(v, index, line + at - 1).map_err(|source| FileError::Parse {
                    file: file.clone(),
                    source,
                })?,
                // Cut by the block's end: parsed with the next block.
                Err(e) if e.is_eof() && !at_end => {
                    consumed = start;
                    break;
                }
                Err(e) => {
                    let source = syntax_error(index, Some(line + at - 1), &e);
                    return Err(FileError::Parse { file, source });
                }
            }
            index += 1;
        }
        line += lines.line_at(consumed) - 1;
        block_done(index);
        if at_end {
            return Ok(true);
        }
        pending.drain(..from + consumed);
    }
}

/// Reads a whole file (`-` is standard input): its name for messages, and its bytes.
pub fn read_bytes(path: &std::path::Path) -> Result<(String, Vec<u8>), FileError> {
    use std::io::Read as _;
    let stdin = path.as_os_str() == "-";
    let file = if stdin {
        "<stdin>".to_owned()
    } else {
        path.display().to_string()
    };
    let mut bytes = Vec::new();
    let read = if stdin {
        std::io::stdin().read_to_end(&mut bytes).map(|_| ())
    } else {
        std::fs::read(path).map(|b| bytes = b)
    };
    match read {
        Ok(()) => Ok((file, bytes)),
        Err(source) => Err(FileError::Read { file, source }),
    }
}

/// How the bytes of a batch are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Decide from the first character: `[` is an array, anything else a stream of objects.
    Sniff,
    /// Newline-delimited JSON, one object per line.
    Ndjson,
}

/// Parses a whole batch; the first bad event rejects it.
pub fn parse_batch(bytes: &[u8], layout: Layout) -> Result<Vec<Event>, FeedError> {
    parse_batch_within(bytes, layout, BatchLimits::default())
}

/// Limits on one batch from a network client (files read offline have none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchLimits {
    /// Most events in the batch.
    pub max_events: Option<usize>,
    /// Deepest nesting of `[` and `{` within one event (the event's own object is 1).
    pub max_depth: Option<usize>,
}

/// Parses a whole batch within `limits`; the first bad event rejects it.
pub fn parse_batch_within(
    bytes: &[u8],
    layout: Layout,
    limits: BatchLimits,
) -> Result<Vec<Event>, FeedError> {
    let body = strip_bom(bytes);
    let first = body.iter().copied().find(|b| !b.is_ascii_whitespace());
    let array = layout == Layout::Sniff && first == Some(b'[');
    if limits != BatchLimits::default() {
        check_shape(body, array, limits)?;
    }
    let events = match first {
        None => Vec::new(),
        Some(_) if array => parse_array(body)?,
        Some(_) => parse_lines(body)?,
    };
    match limits.max_events {
        Some(max) if events.len() > max => Err(too_many(max, None)),
        _ => Ok(events),
    }
}

fn too_many(max: usize, line: Option<usize>) -> FeedError {
    FeedError {
        index: max,
        line,
        error: EventError {
            field: None,
            message: format!(
                "the batch has more than {max} events (limits.max_events_per_batch); send it in parts"
            ),
        },
    }
}

/// Before parsing, one scan of the brackets outside strings: rejects an event
/// nested deeper than the limit, or a batch of too many events, cheaply.
fn check_shape(body: &[u8], array: bool, limits: BatchLimits) -> Result<(), FeedError> {
    let max_depth = limits.max_depth.unwrap_or(usize::MAX);
    let max_events = limits.max_events.unwrap_or(usize::MAX);
    let base = usize::from(array);
    let (mut depth, mut index, mut line) = (0usize, 0usize, 1usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in body {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'\n' => line += 1,
            b'"' => in_string = true,
            b'[' | b'{' => {
                if depth == base && index >= max_events {
                    return Err(too_many(max_events, (!array).then_some(line)));
                }
                depth += 1;
                if depth - base > max_depth {
                    return Err(FeedError {
                        index,
                        line: (!array).then_some(line),
                        error: EventError {
                            field: None,
                            message: format!(
                                "nested deeper than {max_depth} levels (limits.max_json_depth)"
                            ),
                        },
                    });
                }
            }
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                if !array && depth == 0 {
                    index += 1;
                }
            }
            // Counted at the comma too: `[1,1,1,…]` holds no `[`/`{` per element.
            b',' if array && depth == 1 => {
                index += 1;
                if index >= max_events {
                    return Err(too_many(max_events, None));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

fn syntax_error(index: usize, line: Option<usize>, err: &serde_json::Error) -> FeedError {
    FeedError {
        index,
        line,
        error: EventError {
            field: None,
            message: format!("invalid JSON: {err}"),
        },
    }
}

fn parse_array(body: &[u8]) -> Result<Vec<Event>, FeedError> {
    let values: Vec<Value> =
        serde_json::from_slice(body).map_err(|e| syntax_error(0, Some(e.line()), &e))?;
    values
        .iter()
        .enumerate()
        .map(|(index, value)| {
            Event::from_json(value).map_err(|error| FeedError {
                index,
                line: None,
                error,
            })
        })
        .collect()
}

/// NDJSON, which also covers a single (even pretty-printed) object: JSON values
/// separated by whitespace. Errors carry the line the value starts on.
fn parse_lines(body: &[u8]) -> Result<Vec<Event>, FeedError> {
    let mut events = Vec::new();
    let mut stream = serde_json::Deserializer::from_slice(body).into_iter::<Value>();
    let mut line_counter = LineCounter::new(body);
    loop {
        let start = skip_whitespace(body, stream.byte_offset());
        let index = events.len();
        let Some(next) = stream.next() else { break };
        let line = line_counter.line_at(start);
        let value = next.map_err(|e| syntax_error(index, Some(line), &e))?;
        let event = Event::from_json(&value).map_err(|error| FeedError {
            index,
            line: Some(line),
            error,
        })?;
        events.push(event);
    }
    Ok(events)
}

fn skip_whitespace(body: &[u8], mut offset: usize) -> usize {
    while offset < body.len() && body[offset].is_ascii_whitespace() {
        offset += 1;
    }
    offset
}

/// Counts newlines incrementally as offsets only move forward.
struct LineCounter<'a> {
    body: &'a [u8],
    offset: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(body: &'a [u8]) -> Self {
        LineCounter {
            body,
            offset: 0,
            line: 1,
        }
    }

    fn line_at(&mut self, offset: usize) -> usize {
        let end = offset.min(self.body.len());
        if end > self.offset {
            self.line += self.body[self.offset..end]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            self.offset = end;
        }
        self.line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Read a block at a time, however small, a file gives what reading it
    /// whole gives: the same events, or the same error word for word.
    #[test]
    fn reading_in_blocks_equals_reading_whole() {
        let journeys = include_str!("../../tests/data/journeys.ndjson");
        let lines: Vec<&str> = journeys.lines().collect();
        let bad_field = lines.join("\n").replacen(r#""at""#, r#""att""#, 30);
        let mut bad_syntax = lines.clone();
        bad_syntax[40] = "{\"id\": \"x\",";
        let files = [
            ("plain", journeys.to_owned()),
            (
                "bom, blank lines",
                format!("\u{feff}\n\n{}\n\n", lines.join("\n\n")),
            ),
            ("multi-line objects", journeys.replace(", ", ",\n  ")),
            ("array", format!("[{}]", lines.join(","))),
            ("bad field", bad_field),
            ("bad syntax", bad_syntax.join("\n")),
            ("empty", String::new()),
        ];
        let dir =
            std::env::temp_dir().join(format!("wallboard-feed-blocks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in files {
            let path = dir.join("events.ndjson");
            std::fs::write(&path, &text).unwrap();
            let whole = read_file(&path).map_err(|e| e.to_string());
            for block in [1, 7, 100, 4096, BLOCK_BYTES] {
                let mut read = Vec::new();
                let blocks = read_each_in_blocks(&path, block, |events| read.extend(events))
                    .map(|()| read)
                    .map_err(|e| e.to_string());
                assert_eq!(blocks, whole, "{name}, blocks of {block} bytes");
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    const A: &str = r#"{"type":"closed","call":"c1","at":"2026-11-20T09:00:00Z"}"#;
    const B: &str = r#"{"type":"ended","call":"c1","at":"2026-11-20T09:00:05Z"}"#;

    #[test]
    fn reads_object_array_and_ndjson() {
        assert_eq!(parse_batch(A.as_bytes(), Layout::Sniff).unwrap().len(), 1);
        let array = format!("[{A},\n{B}]");
        assert_eq!(
            parse_batch(array.as_bytes(), Layout::Sniff).unwrap().len(),
            2
        );
        let nd = format!("\u{feff}{A}\n\n  \n{B}\n");
        assert_eq!(parse_batch(nd.as_bytes(), Layout::Ndjson).unwrap().len(), 2);
        let pretty =
            "{\n \"type\": \"closed\",\n \"call\": \"c\",\n \"at\": \"2026-11-20T09:00:00Z\"\n}";
        assert_eq!(
            parse_batch(pretty.as_bytes(), Layout::Sniff).unwrap().len(),
            1
        );
        assert!(parse_batch(b"  \n", Layout::Sniff).unwrap().is_empty());
    }

    #[test]
    fn errors_name_line_index_and_field() {
        let nd = format!("{A}\n\n{}\n", B.replace("ended", "ending"));
        let err = parse_batch(nd.as_bytes(), Layout::Sniff).unwrap_err();
        assert_eq!(
            (err.index, err.line, err.field()),
            (1, Some(3), Some("type"))
        );
        assert!(
            err.to_string()
                .starts_with("line 3 (event 1): field `type`"),
            "{err}"
        );

        let array = format!("[{A},{}]", B.replace("\"at\"", "\"when\""));
        let err = parse_batch(array.as_bytes(), Layout::Sniff).unwrap_err();
        assert_eq!((err.index, err.line, err.field()), (1, None, Some("at")));

        let truncated = format!("{A}\n{{\"type\":\"clo");
        let err = parse_batch(truncated.as_bytes(), Layout::Sniff).unwrap_err();
        assert_eq!((err.index, err.line, err.field()), (1, Some(2), None));

        let err =
            parse_batch(b"{\"type\":\"closed\",\"call\":\"\xff\"}", Layout::Sniff).unwrap_err();
        assert!(err.to_string().contains("invalid JSON"), "{err}");

        let deep = "[".repeat(10_000);
        assert!(parse_batch(deep.as_bytes(), Layout::Sniff).is_err());
    }

    #[test]
    fn limits_name_the_event() {
        let limits = BatchLimits {
            max_events: Some(2),
            max_depth: Some(3),
        };
        let parse = |text: &str| parse_batch_within(text.as_bytes(), Layout::Sniff, limits);
        let nested = A.replace("\"type\"", "\"x\":[{\"y\":\"[[[[\"}],\"type\"");
        assert_eq!(parse(&format!("{A}\n{nested}")).unwrap().len(), 2);
        let deep = A.replace("\"type\"", "\"x\":[[[1]]],\"type\"");
        let err = parse(&format!("{A}\n{deep}")).unwrap_err();
        assert_eq!((err.index, err.line), (1, Some(2)));
        assert!(err.to_string().contains("limits.max_json_depth"), "{err}");
        // Scalars in an array are counted before anything is built from them.
        let err = parse("[1,1,1,1]").unwrap_err();
        assert!(
            err.to_string().contains("limits.max_events_per_batch"),
            "{err}"
        );
        assert_eq!(err.index, 2);
        let err = parse(&format!("[{A},{A},{deep}]")).unwrap_err();
        assert_eq!((err.index, err.line), (2, None));
        assert!(
            err.to_string().contains("limits.max_events_per_batch"),
            "{err}"
        );
        let err = parse(&format!("[{A},{deep}]")).unwrap_err();
        assert_eq!(err.index, 1);
        assert!(parse_batch(format!("[{A},{A},{A}]").as_bytes(), Layout::Sniff).is_ok());
    }
}
