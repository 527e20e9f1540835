//! One `queue_log` row, read from Asterisk's pipe format or from the
//! database export (CSV), normalised so that both give the same row and so
//! the same events and ids.

use jiff::Timestamp;

use crate::source::text::parse_epoch;

/// Longest row read; a longer line is skipped (it cannot be a real row, and
/// a live reader must not buffer it forever).
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// A row as Asterisk means it: `epoch|callid|queue|agent|EVENT|data1|...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// When it happened (the epoch, fraction kept).
    pub at: Timestamp,
    /// The caller channel's unique id, or `NONE`, `MANAGER`...
    pub callid: String,
    /// The queue, or `NONE`.
    pub queue: String,
    /// The agent (member interface), or `NONE`.
    pub agent: String,
    /// The row type (`ENTERQUEUE`, `CONNECT`...).
    pub event: String,
    /// The data fields, in the pipe format's order.
    pub data: Vec<String>,
}

impl Row {
    /// The data field `i`, or `""` when the row has fewer.
    pub fn data(&self, i: usize) -> &str {
        self.data.get(i).map_or("", String::as_str)
    }

    /// The bytes event ids are made from: the row's fields that the mapping
    /// reads, in a fixed form. The pipe row and its CSV export hold the same
    /// such fields (the export drops or moves the others), so both give the
    /// same ids, and a restart reading either again drops the repeats.
    pub fn canonical(&self) -> Vec<u8> {
        let mut text = format!(
            "{}.{:09}|{}|{}|{}|{}",
            self.at.as_second(),
            self.at.subsec_nanosecond(),
            self.callid,
            self.queue,
            self.agent,
            self.event
        );
        for &i in used_data(&self.event) {
            text.push('|');
            text.push_str(self.data(i));
        }
        text.into_bytes()
    }
}

/// The data fields the mapping reads, by row type.
fn used_data(event: &str) -> &'static [usize] {
    match event {
        // ENTERQUEUE|url|callerid|pos: the caller id.
        "ENTERQUEUE" => &[1],
        // CONNECT|holdtime|bridgedid|ringtime: the ring time.
        "CONNECT" => &[2],
        // Ring time (ms), key pressed, pause reason, dialled number.
        "RINGNOANSWER" | "RINGCANCELED" | "EXITWITHKEY" | "PAUSE" | "PAUSEALL" | "DID" => &[0],
        _ => &[],
    }
}

/// Reads a pipe-format line (without its `\n`).
pub fn parse_pipe(line: &[u8]) -> Result<Row, String> {
    let text = text_of(line)?;
    let mut fields = text.split('|');
    let mut next = || fields.next().map(str::to_owned);
    let (Some(epoch), Some(callid), Some(queue), Some(agent), Some(event)) =
        (next(), next(), next(), next(), next())
    else {
        return Err("fewer than 5 fields".to_owned());
    };
    let data = fields.map(str::to_owned).collect();
    row(&epoch, callid, queue, agent, event, data)
}

fn text_of(line: &[u8]) -> Result<&str, String> {
    if line.len() > MAX_LINE_BYTES {
        return Err(format!("longer than {MAX_LINE_BYTES} bytes"));
    }
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = std::str::from_utf8(line).map_err(|_| "not UTF-8 text".to_owned())?;
    if text.chars().any(|c| c.is_control() && c != '\t') {
        return Err("holds control characters".to_owned());
    }
    Ok(text)
}

fn row(
    epoch: &str,
    callid: String,
    queue: String,
    agent: String,
    event: String,
    data: Vec<String>,
) -> Result<Row, String> {
    let at = parse_epoch(epoch).ok_or_else(|| format!("{epoch:?} is not an epoch time"))?;
    if event.is_empty() {
        return Err("no event name".to_owned());
    }
    Ok(Row {
        at,
        callid,
        queue,
        agent,
        event,
        data,
    })
}

/// The columns of a database export, found by name in its header line
/// (`uid,date_time,callid,queue_name,type,event,param1,...`).
#[derive(Debug, Clone)]
pub struct CsvHeader {
    columns: Vec<String>,
}

impl CsvHeader {
    /// The header, when `line` is one (it names `date_time`, `callid` and `event`).
    pub fn parse(line: &[u8]) -> Option<CsvHeader> {
        let text = std::str::from_utf8(line).ok()?;
        let columns: Vec<String> = split_csv(text.trim_end_matches('\r'))
            .into_iter()
            .map(|c| c.trim().to_ascii_lowercase())
            .collect();
        let has = |name: &str| columns.iter().any(|c| c == name);
        (has("date_time") && has("callid") && has("event")).then_some(CsvHeader { columns })
    }

    /// Reads one exported row back into the pipe row it came from.
    pub fn row(&self, line: &[u8]) -> Result<Row, String> {
        let text = text_of(line)?;
        let values = split_csv(text);
        if values.len() < self.columns.len() {
            return Err(format!(
                "{} fields where the header has {}",
                values.len(),
                self.columns.len()
            ));
        }
        let get = |name: &str| -> String {
            self.columns
                .iter()
                .position(|c| c == name)
                .map(|i| values[i].clone())
                .unwrap_or_default()
        };
        // The exporter calls the agent column `type` (some call it `agent`).
        let agent = match self.columns.iter().any(|c| c == "agent") {
            true => get("agent"),
            false => get("type"),
        };
        let event = get("event");
        let data = export_data(&event, &get);
        row(
            &get("date_time"),
            get("callid"),
            get("queue_name"),
            agent,
            event,
            data,
        )
    }
}

/// The pipe row's data fields, put back from where the exporter spread them
/// (read off the shared sample, row by row against its pipe original).
fn export_data(event: &str, get: &impl Fn(&str) -> String) -> Vec<String> {
    let fields = |names: &[&str]| names.iter().map(|n| get(n)).collect();
    match event {
        // ENTERQUEUE|url|callerid|pos: the url is not exported.
        "ENTERQUEUE" => vec![String::new(), get("param1"), get("entpos")],
        "RINGNOANSWER" | "RINGCANCELED" => fields(&["htime"]),
        "CONNECT" => fields(&["htime", "param2", "param3"]),
        "COMPLETECALLER" | "COMPLETEAGENT" => fields(&["htime", "ttime", "entpos"]),
        "ABANDON" | "EXITWITHTIMEOUT" | "EXITEMPTY" => fields(&["expos", "entpos", "htime"]),
        _ => fields(&["param1", "param2", "param3"]),
    }
}

/// Splits one CSV line (RFC 4180 quoting: `"a,b"`, `""` for a quote).
fn split_csv(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipe_rows_and_their_faults() {
        let r =
            parse_pipe(b"1543602677.5|1543602660.197|IT|NONE|ENTERQUEUE||12025550100|1\r").unwrap();
        assert_eq!(r.at, "2018-11-30T18:31:17.5Z".parse().unwrap());
        assert_eq!(
            (r.callid.as_str(), r.queue.as_str()),
            ("1543602660.197", "IT")
        );
        assert_eq!(r.data, ["", "12025550100", "1"]);
        assert_eq!(
            parse_pipe(b"1543602677|c|q|a|QUEUESTART")
                .unwrap()
                .data
                .len(),
            0
        );
        for bad in [
            &b"1543602677|c|q|a"[..],
            b"12:00|c|q|a|ENTERQUEUE",
            b"-5|c|q|a|ENTERQUEUE",
            b"1.2.3|c|q|a|ENTERQUEUE",
            b"1543602677|c|q|a|",
            b"\xff\xfe|c|q|a|ENTERQUEUE",
            b"1543602677|c\x00|q|a|ENTERQUEUE",
            b"",
        ] {
            assert!(parse_pipe(bad).is_err(), "{bad:?}");
        }
        let long = [b'1'; MAX_LINE_BYTES + 1];
        assert!(parse_pipe(&long).unwrap_err().contains("longer"));
    }

    #[test]
    fn export_rows_read_back_as_their_pipe_rows() {
        let header = CsvHeader::parse(
            b"uid,date_time,callid,queue_name,type,event,param1,param2,param3,entpos,expos,htime,ttime,time",
        )
        .unwrap();
        let pairs: [(&[u8], &[u8]); 3] = [
            (
                b"19,1543602753,1543602660.197,IT,Agent/1127,CONNECT,,1543602746.232,6,0,0,76,0,\"2018-11-30 13:32:34\"",
                b"1543602753|1543602660.197|IT|Agent/1127|CONNECT|76|1543602746.232|6",
            ),
            (
                b"14,1543602687,1543602660.197,IT,Agent/1141,RINGNOANSWER,12025550100,,,1,1,10000,0,\"x\"",
                b"1543602687|1543602660.197|IT|Agent/1141|RINGNOANSWER|10000",
            ),
            (
                b"294,1543852202,1543852000.1574,IT,NONE,ABANDON,12025550126,,,1,1,191,0,\"x, y\"",
                b"1543852202|1543852000.1574|IT|NONE|ABANDON|1|1|191",
            ),
        ];
        for (csv, pipe) in pairs {
            let (a, b) = (header.row(csv).unwrap(), parse_pipe(pipe).unwrap());
            assert_eq!(a, b);
            assert_eq!(a.canonical(), b.canonical());
        }
        assert!(CsvHeader::parse(b"1543602753|c|q|a|CONNECT").is_none());
        assert!(header.row(b"1,2,3").is_err());
        assert_eq!(split_csv(r#"a,"b,""c""",,d"#), ["a", "b,\"c\"", "", "d"]);
    }
}
