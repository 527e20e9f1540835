//! `Key: Value` header lines, as AMI blocks and the event socket write them
//! (one reading for both, so a console capture reads the same either way).

/// Splits a `Key: Value` line: the key starts the line and is printable
/// ASCII without spaces; the value is trimmed (a trailing `\r` too). Any
/// other line (console output, a body's text) is no header.
pub fn split(line: &[u8]) -> Option<(&str, &[u8])> {
    let colon = line.iter().position(|&b| b == b':')?;
    let (key, value) = (&line[..colon], &line[colon + 1..]);
    if key.is_empty() || !key.iter().all(u8::is_ascii_graphic) {
        return None;
    }
    // Printable ASCII is UTF-8: this never fails.
    let key = std::str::from_utf8(key).ok()?;
    Some((key, value.trim_ascii()))
}

#[cfg(test)]
mod tests {
    use super::split;

    /// A line, and what it splits into.
    type Case = (&'static [u8], Option<(&'static str, &'static [u8])>);

    #[test]
    fn headers_are_split_and_anything_else_is_not_one() {
        let cases: &[Case] = &[
            (b"Event: Hangup", Some(("Event", b"Hangup"))),
            (b"Queue:  Q1 \r", Some(("Queue", b"Q1"))),
            (b"Value:", Some(("Value", b""))),
            (b"Time: 10:42:00", Some(("Time", b"10:42:00"))),
            (
                b"CC-Queue: support%40default",
                Some(("CC-Queue", b"support%40default")),
            ),
            (b"[Dec 25] VERBOSE: noise", None),
            (b" Event: indented", None),
            (b": no key", None),
            (b"no colon at all", None),
            (b"", None),
        ];
        for (line, want) in cases {
            assert_eq!(split(line), *want, "{:?}", String::from_utf8_lossy(line));
        }
    }
}
