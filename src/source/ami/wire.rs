//! The AMI wire format: `Key: Value` lines in blocks that a blank line ends,
//! split with bounded buffers (a peer that never sends a newline or a blank
//! line cannot grow our memory). Lines that are not headers (console output
//! around a capture, junk) are counted, not kept.

/// Longest line kept; a longer one spoils its block.
pub const MAX_LINE_BYTES: usize = 8 * 1024;
/// Largest block kept; a larger one is dropped whole.
pub const MAX_BLOCK_BYTES: usize = 64 * 1024;

/// One block of headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Block {
    /// The headers in order, values trimmed.
    pub headers: Vec<(String, String)>,
    /// Lines in it that were not headers.
    pub other_lines: usize,
    /// The number of its first line (from 1), to say where a skipped one was.
    pub line: u64,
}

impl Block {
    /// The first value of `key` (compared without case: Asterisk 11 wrote
    /// `Holdtime` where later versions write `HoldTime`).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// The first non-empty value of `key`.
    pub fn present(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    /// The event's name, for an event block.
    pub fn event(&self) -> Option<&str> {
        self.present("Event")
    }

    /// Whether it answers one of our actions (`Response: ...`).
    pub fn is_response(&self) -> bool {
        self.present("Response").is_some()
    }
}

/// What the splitter makes of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The first line of a session (`Asterisk Call Manager/5.0.1`).
    Banner(String),
    /// A block within bounds.
    Block(Block),
    /// A block over [`MAX_BLOCK_BYTES`] or with a line over
    /// [`MAX_LINE_BYTES`], dropped whole; `line` is where it started.
    Oversized {
        /// The number of its first line.
        line: u64,
    },
}

/// Splits bytes, as they arrive, into frames.
#[derive(Debug, Default)]
pub struct Framer {
    banner_due: bool,
    /// The line read so far (never over [`MAX_LINE_BYTES`]).
    partial: Vec<u8>,
    /// The current line is too long: drop it up to its newline.
    line_too_long: bool,
    lines: u64,
    block: Block,
    block_bytes: usize,
    oversized: bool,
}

impl Framer {
    /// A splitter for a file: blocks only.
    pub fn new() -> Framer {
        Framer::default()
    }

    /// A splitter for a live session, whose first line is the banner.
    pub fn with_banner() -> Framer {
        Framer {
            banner_due: true,
            ..Framer::default()
        }
    }

    /// Takes more input, appending the frames it completes to `out`.
    pub fn push(&mut self, mut bytes: &[u8], out: &mut Vec<Frame>) {
        while !bytes.is_empty() {
            let (chunk, rest, ended) = match bytes.iter().position(|&b| b == b'\n') {
                Some(i) => (&bytes[..i], &bytes[i + 1..], true),
                None => (bytes, &[][..], false),
            };
            bytes = rest;
            if !self.line_too_long {
                if self.partial.len() + chunk.len() > MAX_LINE_BYTES {
                    self.line_too_long = true;
                    self.partial.clear();
                } else {
                    self.partial.extend_from_slice(chunk);
                }
            }
            self.block_bytes = self.block_bytes.saturating_add(chunk.len() + 1);
            if ended {
                self.end_line(out);
            }
        }
    }

    /// The input is over: completes a last block that no blank line ended.
    pub fn finish(&mut self, out: &mut Vec<Frame>) {
        if !self.partial.is_empty() || self.line_too_long {
            self.end_line(out);
        }
        self.end_block(out);
    }

    fn end_line(&mut self, out: &mut Vec<Frame>) {
        self.lines += 1;
        let too_long = std::mem::take(&mut self.line_too_long);
        let bytes = std::mem::take(&mut self.partial);
        let text = String::from_utf8_lossy(&bytes);
        let text = text.strip_suffix('\r').unwrap_or(&text);
        if self.banner_due {
            self.banner_due = false;
            self.block_bytes = 0;
            out.push(Frame::Banner(text.trim().to_owned()));
            return;
        }
        if text.trim().is_empty() && !too_long {
            self.block_bytes = 0;
            self.end_block(out);
            return;
        }
        if self.block.headers.is_empty() && self.block.other_lines == 0 && !self.oversized {
            self.block.line = self.lines;
        }
        if too_long || self.block_bytes > MAX_BLOCK_BYTES {
            self.oversized = true;
        }
        if self.oversized {
            // Nothing more of it is kept: its size is already past bounds.
            self.block.headers.clear();
            return;
        }
        match header(text) {
            Some((key, value)) => self.block.headers.push((key.to_owned(), value.to_owned())),
            None => self.block.other_lines += 1,
        }
    }

    fn end_block(&mut self, out: &mut Vec<Frame>) {
        let block = std::mem::take(&mut self.block);
        if std::mem::take(&mut self.oversized) {
            out.push(Frame::Oversized { line: block.line });
        } else if !block.headers.is_empty() || block.other_lines > 0 {
            out.push(Frame::Block(block));
        }
        self.block_bytes = 0;
    }
}

/// `Key: Value`, where the key starts the line and is printable ASCII
/// without spaces; anything else (console output) is no header.
fn header(line: &str) -> Option<(&str, &str)> {
    let (key, value) = crate::source::header::split(line.as_bytes())?;
    // Cut at ASCII bytes of a `str`: still UTF-8.
    Some((key, std::str::from_utf8(value).ok()?))
}

/// Every frame of a whole input.
pub fn frames(bytes: &[u8]) -> Vec<Frame> {
    let mut framer = Framer::new();
    let mut out = Vec::new();
    framer.push(bytes, &mut out);
    framer.finish(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(frames: &[Frame]) -> Vec<&Block> {
        frames
            .iter()
            .filter_map(|f| match f {
                Frame::Block(b) => Some(b),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn blocks_split_on_blank_lines_and_ignore_console_lines() {
        let text = "  == Manager 'x' logged on\r\n<-- Examining AMI event: -->\r\nEvent: Hangup\r\nUniqueid: 1.2\r\nValue: sip:a@b:5060\r\nAccountCode: \r\n\r\n    -- Executing [s@x:1] NoOp(\"a\")\n\nEvent: Newstate";
        let frames = frames(text.as_bytes());
        let b = blocks(&frames);
        assert_eq!(b.len(), 3, "{frames:?}");
        assert_eq!(b[0].event(), Some("Hangup"));
        assert_eq!(
            b[0].get("uniqueid"),
            Some("1.2"),
            "keys compare without case"
        );
        assert_eq!(
            b[0].get("Value"),
            Some("sip:a@b:5060"),
            "split at the first colon"
        );
        assert_eq!(b[0].get("AccountCode"), Some(""));
        assert_eq!(b[0].present("AccountCode"), None);
        assert_eq!((b[0].other_lines, b[0].line), (2, 1));
        assert_eq!((b[1].headers.len(), b[1].other_lines), (0, 1));
        assert_eq!(
            b[2].event(),
            Some("Newstate"),
            "a last block needs no blank line"
        );
    }

    #[test]
    fn the_banner_is_the_first_line_and_input_may_arrive_in_any_pieces() {
        let text = b"Asterisk Call Manager/5.0.1\r\nResponse: Success\r\nMessage: Authentication accepted\r\n\r\n";
        let mut framer = Framer::with_banner();
        let mut out = Vec::new();
        for byte in text {
            framer.push(std::slice::from_ref(byte), &mut out);
        }
        assert_eq!(out[0], Frame::Banner("Asterisk Call Manager/5.0.1".into()));
        let Frame::Block(b) = &out[1] else {
            panic!("{out:?}")
        };
        assert!(b.is_response());
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn oversized_blocks_and_lines_are_dropped_whole_and_the_next_block_is_read() {
        let long_line = format!("Event: X\r\nJunk: {}\r\n\r\n", "a".repeat(MAX_LINE_BYTES));
        let mut big = String::from("Event: Y\r\n");
        while big.len() <= MAX_BLOCK_BYTES {
            big.push_str("Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        big.push_str("\r\n");
        let text = format!("{long_line}{big}Event: Z\r\n\r\n");
        let frames = frames(text.as_bytes());
        assert_eq!(
            frames,
            vec![
                Frame::Oversized { line: 1 },
                Frame::Oversized { line: 4 },
                Frame::Block(Block {
                    headers: vec![("Event".into(), "Z".into())],
                    other_lines: 0,
                    line: frames
                        .iter()
                        .filter_map(|f| match f {
                            Frame::Block(b) => Some(b.line),
                            _ => None,
                        })
                        .next()
                        .unwrap_or(0),
                }),
            ]
        );
        // A line that never ends is bounded too.
        let mut framer = Framer::new();
        let mut out = Vec::new();
        for _ in 0..100 {
            framer.push(&[b'x'; 4096], &mut out);
        }
        assert!(framer.partial.len() <= MAX_LINE_BYTES);
        framer.finish(&mut out);
        assert_eq!(out, vec![Frame::Oversized { line: 1 }]);
    }
}
