//! The event socket's wire format: header sections (`Key: Value` lines ended
//! by a blank line), `Content-Length` bodies, and the percent-encoded values
//! of `event plain`. Shared by the live client and the offline reader.

/// A frame's body larger than this is skipped, not buffered.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// A header section larger than this means the framing is lost.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// The headers of one section, in order, values as they were sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// Parses a header section; lines that are not `Key: Value` are ignored
    /// (console captures hold such lines), and so are `\r`s.
    pub fn parse(section: &[u8]) -> Headers {
        Self::parse_with(section, |v| String::from_utf8_lossy(v).into_owned())
    }

    /// Parses an `event plain` body: its values are percent-encoded.
    pub fn parse_event(section: &[u8]) -> Headers {
        Self::parse_with(section, percent_decode)
    }

    fn parse_with(section: &[u8], value: impl Fn(&[u8]) -> String) -> Headers {
        let headers = section
            .split(|&b| b == b'\n')
            .filter_map(|line| {
                let (key, raw) = crate::source::header::split(line)?;
                Some((key.to_owned(), value(raw)))
            })
            .collect();
        Headers(headers)
    }

    /// The first value of `key` (exact case, as FreeSWITCH writes its keys).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `key`, when present and not empty.
    pub fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    /// Whether there is no header at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `Content-Length`: `None` when absent, `Err` when not a number.
    pub fn content_length(&self) -> Result<Option<usize>, String> {
        match self.get("Content-Length") {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| format!("Content-Length {v:?} is not a number")),
        }
    }
}

/// Decodes `%XX` escapes (FreeSWITCH's url encoding); anything else,
/// including a broken escape, is kept as it is.
pub fn percent_decode(raw: &[u8]) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%'
            && let (Some(h), Some(l)) = (
                raw.get(i + 1).copied().and_then(hex),
                raw.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(h << 4 | l);
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One event read from a file, with where it started (for skip reports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBlock<'a> {
    /// Byte offset of the block in the file.
    pub offset: usize,
    /// The event's own bytes (its header section; a body of its own is not kept).
    pub bytes: &'a [u8],
}

/// Splits a file into event blocks. It holds either bare `event plain`
/// bodies separated by blank lines, or a capture of the socket itself
/// (`Content-Type` framing headers and `Content-Length` bodies): framed
/// events are unwrapped, other frames (replies, notices) dropped.
pub fn file_blocks(bytes: &[u8]) -> Vec<EventBlock<'_>> {
    let mut blocks = Vec::new();
    let mut at = 0;
    while let Some(start) = skip_blank_lines(bytes, at) {
        let (section, after) = section_at(bytes, start);
        let headers = Headers::parse(section);
        let length = headers.content_length().ok().flatten().unwrap_or(0);
        let end = after.saturating_add(length).min(bytes.len());
        let body = &bytes[after..end];
        match headers.get("Content-Type") {
            Some(t) if t.trim() == "text/event-plain" => {
                let (event, _) = section_at(body, skip_blank_lines(body, 0).unwrap_or(0));
                blocks.push(EventBlock {
                    offset: after,
                    bytes: event,
                });
            }
            // Socket chatter (auth, replies, notices): no event in it.
            Some(_) => {}
            // A bare event; a body of its own (rare for events) is skipped.
            None => blocks.push(EventBlock {
                offset: start,
                bytes: section,
            }),
        }
        at = end;
    }
    blocks
}

/// The first non-blank line at or after `at`, if any.
fn skip_blank_lines(bytes: &[u8], mut at: usize) -> Option<usize> {
    loop {
        match bytes.get(at..)? {
            [b'\n', ..] => at += 1,
            [b'\r', b'\n', ..] => at += 2,
            [] => return None,
            _ => return Some(at),
        }
    }
}

/// The header section starting at `start` (up to its blank line, or the
/// end), and where what follows it starts.
fn section_at(bytes: &[u8], start: usize) -> (&[u8], usize) {
    let rest = &bytes[start..];
    let mut line = 0;
    while line < rest.len() {
        let end = rest[line..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| line + i + 1);
        let text = &rest[line..end];
        if text == b"\n" || text == b"\r\n" {
            return (&rest[..line], start + end);
        }
        line = end;
    }
    (rest, bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_percent_decoded_and_odd_lines_ignored() {
        let h = Headers::parse_event(
            b"Event-Name: CUSTOM\r\nCC-Queue: support%40default\nnoise line\nCC-Member-CID-Name: Jos%C3%A9%20P\nBad: 100%\n",
        );
        assert_eq!(h.get("Event-Name"), Some("CUSTOM"));
        assert_eq!(h.get("CC-Queue"), Some("support@default"));
        assert_eq!(h.get("CC-Member-CID-Name"), Some("José P"));
        assert_eq!(h.get("Bad"), Some("100%"));
        assert_eq!(h.get("noise line"), None);
        assert_eq!(percent_decode(b"a%2"), "a%2");
        assert_eq!(percent_decode(b"%zz+"), "%zz+");
    }

    #[test]
    fn files_of_bare_blocks_and_socket_captures_give_the_same_events() {
        let bare = b"Event-Name: CUSTOM\nA: 1\n\n\nEvent-Name: CHANNEL_HANGUP_COMPLETE\nB: 2\n";
        let blocks = file_blocks(bare);
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].bytes, b"Event-Name: CUSTOM\nA: 1\n");
        assert_eq!(
            blocks[1].bytes,
            b"Event-Name: CHANNEL_HANGUP_COMPLETE\nB: 2\n"
        );

        let one = "Event-Name: CUSTOM\nA: 1\n\n";
        let two = "Event-Name: CHANNEL_HANGUP_COMPLETE\nB: 2\n\n";
        let capture = format!(
            "Content-Type: auth/request\n\nContent-Type: command/reply\nReply-Text: +OK accepted\n\n\
             Content-Length: {}\nContent-Type: text/event-plain\n\n{one}\
             Content-Type: text/disconnect-notice\nContent-Length: 5\n\nbye.\n\
             Content-Length: {}\nContent-Type: text/event-plain\n\n{two}",
            one.len(),
            two.len()
        );
        let blocks = file_blocks(capture.as_bytes());
        assert_eq!(blocks.len(), 2, "{blocks:?}");
        assert_eq!(blocks[0].bytes, b"Event-Name: CUSTOM\nA: 1\n");
        assert_eq!(
            blocks[1].bytes,
            b"Event-Name: CHANNEL_HANGUP_COMPLETE\nB: 2\n"
        );
    }

    #[test]
    fn a_bare_event_with_a_body_skips_the_body() {
        let text = b"Event-Name: BACKGROUND_JOB\nContent-Length: 10\n\n+OK\n\nX: 1\nEvent-Name: CUSTOM\n\n";
        let blocks = file_blocks(text);
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[1].bytes, b"Event-Name: CUSTOM\n");
    }
}
