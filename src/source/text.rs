//! Small text helpers the vendor mappings share: cutting a field to a byte
//! limit and reading epoch seconds.

use jiff::Timestamp;

/// `text` cut to at most `max` bytes, on a character boundary (so a limit
/// from events.md never splits a UTF-8 sequence).
pub(crate) fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Latest epoch accepted (year 5138): far enough for any real record, and far
/// enough from jiff's limit that adding a wait to it cannot overflow.
const MAX_EPOCH_SECS: i64 = 100_000_000_000;

/// Parses `1543602677` or `1543602677.25` (seconds since 1970, UTC); digits
/// only, a fraction kept to the nanosecond; anything else is `None`.
pub(crate) fn parse_epoch(text: &str) -> Option<Timestamp> {
    let (secs, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| !s.is_empty() && s.len() <= 12 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(secs) || !(fraction.is_empty() || fraction.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let nanos = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(9)
        .fold(0i32, |n, b| n * 10 + i32::from(b - b'0'));
    let secs: i64 = secs.parse().ok()?;
    if secs > MAX_EPOCH_SECS {
        return None;
    }
    Timestamp::new(secs, nanos).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_fall_on_character_boundaries() {
        assert_eq!(cut("abc", 5), "abc");
        assert_eq!(cut("abc", 2), "ab");
        assert_eq!(cut("aé", 2), "a");
        assert_eq!(cut("", 0), "");
    }

    #[test]
    fn epochs_keep_their_fraction() {
        let t = |s| parse_epoch(s).map(|t| t.as_nanosecond());
        assert_eq!(t("1"), Some(1_000_000_000));
        assert_eq!(t("1.25"), Some(1_250_000_000));
        assert_eq!(t("1.1234567891"), Some(1_123_456_789));
        assert_eq!(t("1."), Some(1_000_000_000));
        assert_eq!(t(""), None);
        assert_eq!(t("1e9"), None);
        assert_eq!(t("9999999999999"), None);
        assert_eq!(t("100000000001"), None);
    }
}
