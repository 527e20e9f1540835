//! A day's finished calls as a file for spreadsheets and scripts: the
//! columns (stable names, listed in the README), one row per call, encoded
//! as JSON or CSV (RFC 4180, UTF-8, safe against formula injection).
//! Rows are encoded one at a time into a buffer the caller drains, so a day
//! of any size passes through in bounded memory. No I/O, no clock.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde_json::{Map, Value};

use crate::definition::Definition;
use crate::outcome::Verdict;

/// How the file is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON document: `{"day", "timezone", "calls": [ROW, ...]}`.
    Json,
    /// A header row, then one row per call.
    Csv,
}

impl Format {
    /// Reads a `format` parameter: `json` or `csv`.
    pub fn from_name(name: &str) -> Option<Format> {
        match name {
            "json" => Some(Format::Json),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }

    /// The media type it is served as.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8; header=present",
        }
    }

    /// The file name extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Csv => "csv",
        }
    }
}

/// The columns before the boxes, in order: the call, each moment in the
/// site's zone (with its offset) and in UTC, then what became of it.
pub const COLUMNS: [&str; 14] = [
    "call",
    "started_at",
    "started_at_utc",
    "queued_at",
    "queued_at_utc",
    "answered_at",
    "answered_at_utc",
    "finished_at",
    "finished_at_utc",
    "queue",
    "agent",
    "caller",
    "outcome",
    "wait_secs",
];

/// Prefix of a definition's box column in CSV (`box_reachable`...).
pub const BOX_PREFIX: &str = "box_";

/// The first characters a spreadsheet reads as the start of a formula (the
/// four of the issue, plus tab and carriage return as OWASP lists them).
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A cell as a spreadsheet may open it: one starting like a formula gets a
/// leading `'`, so it shows as the text it is (`+44 20…` reads `'+44 20…`).
pub fn safe_cell(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(FORMULA_STARTS) {
        format!("'{text}").into()
    } else {
        text.into()
    }
}

/// The UTF-8 byte order mark: without it, Excel reads a CSV file in the
/// machine's legacy code page and mangles every non-ASCII name.
const BOM: &str = "\u{feff}";

/// One day's file being written: rows go in, encoded bytes come out.
pub struct Encoder {
    format: Format,
    zone: TimeZone,
    definitions: Vec<Definition>,
    out: Out,
    rows: u64,
}

enum Out {
    Json(Vec<u8>),
    // Boxed: the writer carries its own buffer state, 15 times the size of a Vec.
    Csv(Box<csv::Writer<Vec<u8>>>),
}

impl Encoder {
    /// Starts the file of `day`, its times shown in `zone`, with a box per
    /// definition (in the order given).
    pub fn new(format: Format, day: Date, zone: TimeZone, definitions: Vec<Definition>) -> Self {
        let out = match format {
            Format::Json => {
                let head = serde_json::json!({"day": day, "timezone": zone_name(&zone)});
                // The head object, left open for the calls.
                let mut text = head.to_string();
                text.pop();
                text.push_str(",\"calls\":[");
                Out::Json(text.into_bytes())
            }
            Format::Csv => Out::Csv(Box::new(csv_writer(BOM.as_bytes().to_vec()))),
        };
        let mut encoder = Encoder {
            format,
            zone,
            definitions,
            out,
            rows: 0,
        };
        if let Out::Csv(writer) = &mut encoder.out {
            let header = Encoder::csv_columns(&encoder.definitions);
            write_record(writer, header.iter().map(|c| safe_cell(c)));
        }
        encoder
    }

    /// The column names of a CSV file with these definitions.
    pub fn csv_columns(definitions: &[Definition]) -> Vec<String> {
        let boxes = definitions
            .iter()
            .map(|d| format!("{BOX_PREFIX}{}", d.name()));
        COLUMNS.iter().map(|c| c.to_string()).chain(boxes).collect()
    }

    /// Adds one finished call.
    pub fn push(&mut self, call: &str, finished_at: Timestamp, verdict: &Verdict) {
        let times = &verdict.times;
        let moments = [
            times.started_at,
            times.queued_at,
            times.answered_at,
            Some(finished_at),
        ];
        let mut cells: Vec<(&str, Option<String>)> = Vec::with_capacity(COLUMNS.len());
        cells.push((COLUMNS[0], Some(call.to_owned())));
        for (i, moment) in moments.into_iter().enumerate() {
            cells.push((COLUMNS[1 + 2 * i], moment.map(|t| self.local(t))));
            cells.push((COLUMNS[2 + 2 * i], moment.map(|t| t.to_string())));
        }
        cells.push((COLUMNS[9], verdict.queue.clone()));
        cells.push((COLUMNS[10], verdict.agent.clone()));
        cells.push((COLUMNS[11], verdict.caller.clone()));
        cells.push((COLUMNS[12], Some(verdict.outcome.as_str().to_owned())));
        let wait_secs = verdict.wait_ms.map(|ms| ms as f64 / 1000.0);
        let boxes = self.definitions.iter().map(|d| {
            let index = d.box_of(verdict.outcome, verdict.wait_ms, verdict.reached_staff);
            (d.name(), d.boxes()[index].as_str())
        });
        match &mut self.out {
            Out::Json(bytes) => {
                let mut row: Map<String, Value> = cells
                    .into_iter()
                    .map(|(name, value)| (name.to_owned(), value.into()))
                    .collect();
                row.insert(COLUMNS[13].to_owned(), wait_secs.into());
                let boxes: Map<String, Value> =
                    boxes.map(|(d, b)| (d.to_owned(), b.into())).collect();
                row.insert("boxes".to_owned(), boxes.into());
                if self.rows > 0 {
                    bytes.push(b',');
                }
                bytes.push(b'\n');
                serde_json::to_writer(&mut *bytes, &row).expect("a map of strings serializes");
            }
            Out::Csv(writer) => {
                let wait = wait_secs.map(|s| s.to_string()).unwrap_or_default();
                let row = cells
                    .into_iter()
                    .map(|(_, value)| value.unwrap_or_default())
                    .chain(std::iter::once(wait))
                    .chain(boxes.map(|(_, b)| b.to_owned()))
                    .collect::<Vec<String>>();
                write_record(writer, row.iter().map(|c| safe_cell(c)));
            }
        }
        self.rows += 1;
    }

    /// Ends the file (closes the JSON document); push nothing after.
    pub fn finish(&mut self) {
        if let Out::Json(bytes) = &mut self.out {
            bytes.extend_from_slice(b"\n]}\n");
        }
    }

    /// Bytes encoded and not yet taken (CSV keeps a few KiB more inside).
    pub fn buffered(&self) -> usize {
        match &self.out {
            Out::Json(bytes) => bytes.len(),
            Out::Csv(writer) => writer.get_ref().len(),
        }
    }

    /// Takes the bytes encoded so far.
    pub fn take(&mut self) -> Vec<u8> {
        match &mut self.out {
            Out::Json(bytes) => std::mem::take(bytes),
            Out::Csv(writer) => {
                // A writer cannot hand out its buffer: a fresh one takes over.
                let done = std::mem::replace(&mut **writer, csv_writer(Vec::new()));
                done.into_inner()
                    .map_err(|e| e.into_error())
                    .expect("flushing into memory cannot fail")
            }
        }
    }

    /// Rows pushed so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The format being written.
    pub fn format(&self) -> Format {
        self.format
    }

    /// `at` in the site's zone, as RFC 3339 with its offset (no zone name:
    /// spreadsheets and most parsers read only the offset).
    fn local(&self, at: Timestamp) -> String {
        at.display_with_offset(self.zone.to_offset(at)).to_string()
    }
}

/// RFC 4180: CRLF between records, quotes only where a cell needs them.
fn csv_writer(into: Vec<u8>) -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(into)
}

fn write_record<'a>(
    writer: &mut csv::Writer<Vec<u8>>,
    cells: impl Iterator<Item = std::borrow::Cow<'a, str>>,
) {
    // Into memory, every record as long as the header: it cannot fail.
    writer
        .write_record(cells.map(|c| c.into_owned()))
        .expect("writing a record into memory cannot fail");
}

/// The zone's IANA name, or its offset for a fixed one.
fn zone_name(zone: &TimeZone) -> String {
    match (zone.iana_name(), zone.to_fixed_offset()) {
        (Some(name), _) => name.to_owned(),
        (None, Ok(offset)) => offset.to_string(),
        (None, Err(_)) => "UTC".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::BuiltInSettings;
    use crate::outcome::{CallTimes, Outcome};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn verdict(queue: &str, caller: &str) -> Verdict {
        Verdict {
            outcome: Outcome::Answered,
            wait_ms: Some(12_500),
            reached_staff: true,
            queue: Some(queue.into()),
            agent: Some("Zoë, \"the\" lead".into()),
            caller: Some(caller.into()),
            times: CallTimes {
                started_at: Some(ts("2026-07-01T09:00:00Z")),
                queued_at: Some(ts("2026-07-01T09:00:10Z")),
                answered_at: Some(ts("2026-07-01T09:00:22.5Z")),
            },
        }
    }

    fn encoder(format: Format) -> Encoder {
        let defs = Definition::built_ins(&BuiltInSettings::default());
        let zone = TimeZone::get("Europe/London").unwrap();
        Encoder::new(format, "2026-07-01".parse().unwrap(), zone, defs)
    }

    /// Reads CSV back with the `csv` crate's reader: RFC 4180 as a
    /// spreadsheet reads it, not our writer checking itself.
    fn read_csv(bytes: &[u8]) -> Vec<Vec<String>> {
        let text = std::str::from_utf8(bytes).unwrap();
        let text = text.strip_prefix(BOM).expect("a UTF-8 BOM first");
        csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(text.as_bytes())
            .records()
            .map(|r| r.unwrap().iter().map(str::to_owned).collect())
            .collect()
    }

    #[test]
    fn cells_that_look_like_formulas_are_prefixed() {
        let table = [
            ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
            ("+44 20 7946 0000", "'+44 20 7946 0000"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("0044 20 7946 0000", "0044 20 7946 0000"),
            ("a=b", "a=b"),
            ("", ""),
            ("Zoë", "Zoë"),
        ];
        for (cell, shown) in table {
            assert_eq!(safe_cell(cell), shown, "{cell:?}");
        }
    }

    #[test]
    fn csv_quotes_as_rfc_4180_says_and_defuses_formulas() {
        let mut e = encoder(Format::Csv);
        e.push(
            "c1",
            ts("2026-07-01T09:05:00Z"),
            &verdict("=cmd", "+44 20 7946 0000"),
        );
        e.push(
            "c,2",
            ts("2026-07-01T09:06:00Z"),
            &verdict("line\nbreak", "-1"),
        );
        e.finish();
        let bytes = e.take();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("\r\n"), "CRLF records");
        assert!(text.contains("\"Zoë, \"\"the\"\" lead\""), "{text}");
        let rows = read_csv(&bytes);
        let header = &rows[0];
        let defs = Definition::built_ins(&BuiltInSettings::default());
        assert_eq!(header, &Encoder::csv_columns(&defs));
        let col = |name: &str| header.iter().position(|h| h == name).unwrap();
        assert_eq!(rows.len(), 3);
        let first = &rows[1];
        assert_eq!(first[col("queue")], "'=cmd");
        assert_eq!(first[col("caller")], "'+44 20 7946 0000");
        assert_eq!(first[col("agent")], "Zoë, \"the\" lead");
        assert_eq!(first[col("started_at")], "2026-07-01T10:00:00+01:00");
        assert_eq!(first[col("started_at_utc")], "2026-07-01T09:00:00Z");
        assert_eq!(first[col("answered_at")], "2026-07-01T10:00:22.5+01:00");
        assert_eq!(first[col("finished_at_utc")], "2026-07-01T09:05:00Z");
        assert_eq!(first[col("outcome")], "answered");
        assert_eq!(first[col("wait_secs")], "12.5");
        assert_eq!(first[col("box_reachable")], "answered");
        assert_eq!(rows[2][col("call")], "c,2");
        assert_eq!(rows[2][col("queue")], "line\nbreak");
        assert_eq!(rows[2][col("caller")], "'-1");
        for row in &rows {
            for cell in row {
                assert!(!cell.starts_with(FORMULA_STARTS), "{cell:?}");
            }
        }
    }

    #[test]
    fn json_is_one_document_with_raw_values() {
        let mut e = encoder(Format::Json);
        let mut bytes = e.take();
        let mut empty = verdict("=cmd", "+44 20 7946 0000");
        empty.times = CallTimes::default();
        empty.wait_ms = None;
        e.push(
            "a",
            ts("2026-07-01T09:05:00Z"),
            &verdict("=cmd", "+44 20 7946 0000"),
        );
        bytes.extend(e.take());
        e.push("b", ts("2026-07-01T09:06:00Z"), &empty);
        e.finish();
        bytes.extend(e.take());
        let doc: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(doc["day"], "2026-07-01");
        assert_eq!(doc["timezone"], "Europe/London");
        let calls = doc["calls"].as_array().unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0]["queue"], "=cmd", "JSON values are not prefixed");
        assert_eq!(calls[0]["caller"], "+44 20 7946 0000");
        assert_eq!(calls[0]["wait_secs"], 12.5);
        assert_eq!(calls[0]["finished_at"], "2026-07-01T10:05:00+01:00");
        assert_eq!(calls[0]["boxes"]["reachable"], "answered");
        assert_eq!(calls[1]["started_at"], Value::Null);
        assert_eq!(calls[1]["wait_secs"], Value::Null);
        assert_eq!(e.rows(), 2);
    }

    #[test]
    fn an_empty_day_is_a_header_or_an_empty_list() {
        let mut csv = encoder(Format::Csv);
        csv.finish();
        assert_eq!(read_csv(&csv.take()).len(), 1);
        let mut json = encoder(Format::Json);
        json.finish();
        let doc: Value = serde_json::from_slice(&json.take()).unwrap();
        assert_eq!(doc["calls"], serde_json::json!([]));
    }
}
