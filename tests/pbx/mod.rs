//! A test Asterisk manager: a real TCP listener on 127.0.0.1:0 that speaks
//! AMI (banner, `Login`, `Ping`, `QueueStatus`) and plays a recorded trace
//! of event blocks, one slice per connection, so tests can drop the line in
//! the middle of a call and see what the source rebuilds. It parses what it
//! needs itself: it shares no code with the client it tests.

// Each test uses its own subset of these helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// What one logged-in connection plays.
#[derive(Debug, Clone)]
pub struct Session {
    /// The first block of the trace it plays...
    pub from: usize,
    /// ...and the block it stops before. Blocks between one session's `to`
    /// and the next one's `from` happen while the source is away.
    pub to: usize,
    /// Close the connection once played (else stay, answering actions).
    pub close: bool,
    /// Answer `Ping` (else let pings go unanswered).
    pub answer_pings: bool,
}

/// What the manager does.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The secret `Login` must give.
    pub secret: String,
    /// Event blocks as Asterisk writes them, each ending with a blank line.
    pub trace: Vec<String>,
    /// One per successful login; past the last, logins get nothing new.
    pub sessions: Vec<Session>,
}

#[derive(Debug, Default)]
struct Counters {
    connections: AtomicUsize,
    logins: AtomicUsize,
    pings: AtomicUsize,
}

/// A running test manager.
pub struct Pbx {
    /// Its port on 127.0.0.1.
    pub port: u16,
    counters: Arc<Counters>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Pbx {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Pbx {
    /// Starts listening; every connection is served by `plan`.
    pub async fn start(plan: Plan) -> Pbx {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Pbx::start_on(listener, plan)
    }

    /// Serves on a listener bound earlier: connections made to it before are
    /// waiting in its backlog and are answered now.
    pub fn start_on(listener: TcpListener, plan: Plan) -> Pbx {
        let port = listener.local_addr().expect("addr").port();
        let counters = Arc::new(Counters::default());
        let plan = Arc::new(plan);
        let shared = counters.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                shared.connections.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(socket, plan.clone(), shared.clone()));
            }
        });
        Pbx {
            port,
            counters,
            task,
        }
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.counters.connections.load(Ordering::SeqCst)
    }

    /// Successful logins so far.
    pub fn logins(&self) -> usize {
        self.counters.logins.load(Ordering::SeqCst)
    }

    /// Pings received so far.
    pub fn pings(&self) -> usize {
        self.counters.pings.load(Ordering::SeqCst)
    }
}

/// One connection, as Asterisk's manager serves it.
async fn serve(socket: TcpStream, plan: Arc<Plan>, counters: Arc<Counters>) {
    let (read, mut write) = socket.into_split();
    let mut read = BufReader::new(read);
    if write
        .write_all(b"Asterisk Call Manager/5.0.1\r\n")
        .await
        .is_err()
    {
        return;
    }
    let mut session: Option<Session> = None;
    while let Some(action) = read_action(&mut read).await {
        let name = get(&action, "Action")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let id = get(&action, "ActionID").unwrap_or_default().to_owned();
        let reply = match (name.as_str(), &session) {
            ("login", _) => {
                if get(&action, "Secret") != Some(plan.secret.as_str()) {
                    // Asterisk answers, then ends the session.
                    let refusal = format!(
                        "Response: Error\r\nActionID: {id}\r\nMessage: Authentication failed\r\n\r\n"
                    );
                    let _ = write.write_all(refusal.as_bytes()).await;
                    return;
                }
                let n = counters.logins.fetch_add(1, Ordering::SeqCst);
                let s = plan.sessions.get(n).cloned().unwrap_or(Session {
                    from: plan.trace.len(),
                    to: plan.trace.len(),
                    close: false,
                    answer_pings: true,
                });
                let booted = now_of(&plan.trace[..s.from]);
                session = Some(s);
                format!(
                    "Response: Success\r\nActionID: {id}\r\nMessage: Authentication accepted\r\n\r\n\
                     Event: FullyBooted\r\nPrivilege: system,all\r\nTimestamp: {booted:.6}\r\nStatus: Fully Booted\r\n\r\n"
                )
            }
            (_, None) => {
                format!("Response: Error\r\nActionID: {id}\r\nMessage: Permission denied\r\n\r\n")
            }
            ("ping", Some(s)) => {
                counters.pings.fetch_add(1, Ordering::SeqCst);
                if !s.answer_pings {
                    continue;
                }
                format!(
                    "Response: Success\r\nActionID: {id}\r\nPing: Pong\r\nTimestamp: {:.6}\r\n\r\n",
                    now_of(&plan.trace[..s.from])
                )
            }
            ("queuestatus", Some(s)) => {
                let mut reply = queue_status(&plan.trace[..s.from], &id);
                reply.extend(plan.trace[s.from..s.to].iter().map(String::as_str));
                if write.write_all(reply.as_bytes()).await.is_err() || s.close {
                    return;
                }
                continue;
            }
            _ => format!(
                "Response: Error\r\nActionID: {id}\r\nMessage: Invalid/unknown command\r\n\r\n"
            ),
        };
        if write.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Reads one action (header lines up to a blank line); `None` at the end.
async fn read_action(
    read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> Option<Vec<(String, String)>> {
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if read.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            if headers.is_empty() {
                continue;
            }
            return Some(headers);
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
}

fn get<'a>(headers: &'a [(String, String)], key: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
}

/// The headers of a block of the trace.
pub fn headers(block: &str) -> Vec<(String, String)> {
    block
        .lines()
        .filter_map(|l| {
            l.split_once(": ")
                .or_else(|| l.strip_suffix(':').map(|k| (k, "")))
        })
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect()
}

/// "Now" at the end of a played stretch: the time of its last block.
fn now_of(trace: &[String]) -> f64 {
    trace
        .iter()
        .rev()
        .find_map(|b| get(&headers(b), "Timestamp").and_then(|t| t.parse().ok()))
        .unwrap_or(0.0)
}

/// The answer to `QueueStatus` after `past` happened: the queues, their
/// members as last reported, and the callers still waiting.
fn queue_status(past: &[String], id: &str) -> String {
    let now = now_of(past);
    let mut queues: BTreeMap<String, ()> = BTreeMap::new();
    let mut members: BTreeMap<(String, String), Vec<(String, String)>> = BTreeMap::new();
    let mut waiting: Vec<(String, String, f64, String)> = Vec::new();
    for block in past {
        let h = headers(block);
        let (Some(event), Some(queue)) = (get(&h, "Event"), get(&h, "Queue")) else {
            continue;
        };
        queues.insert(queue.to_owned(), ());
        let uid = get(&h, "Uniqueid").unwrap_or_default().to_owned();
        let member = get(&h, "Interface").unwrap_or_default().to_owned();
        match event {
            "QueueCallerJoin" => waiting.push((
                queue.to_owned(),
                uid,
                get(&h, "Timestamp")
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(now),
                get(&h, "CallerIDNum").unwrap_or_default().to_owned(),
            )),
            "QueueCallerLeave" | "QueueCallerAbandon" => {
                waiting.retain(|w| !(w.0 == queue && w.1 == uid));
            }
            "QueueMemberAdded" | "QueueMemberStatus" | "QueueMemberPause" => {
                let fields = members.entry((queue.to_owned(), member)).or_default();
                for key in [
                    "MemberName",
                    "Interface",
                    "Status",
                    "Paused",
                    "PausedReason",
                ] {
                    if let Some(value) = get(&h, key) {
                        fields.retain(|(k, _)| k != key);
                        fields.push((key.to_owned(), value.to_owned()));
                    }
                }
            }
            "QueueMemberRemoved" => {
                members.remove(&(queue.to_owned(), member));
            }
            _ => {}
        }
    }
    let mut out = format!(
        "Response: Success\r\nActionID: {id}\r\nEventList: start\r\nMessage: Queue status will follow\r\n\r\n"
    );
    let mut items = 0;
    for queue in queues.keys() {
        items += 1;
        out += &format!(
            "Event: QueueParams\r\nQueue: {queue}\r\nMax: 0\r\nStrategy: ringall\r\nCalls: {}\r\nHoldtime: 0\r\nTalkTime: 0\r\nCompleted: 0\r\nAbandoned: 0\r\nServiceLevel: 0\r\nServicelevelPerf: 0.0\r\nWeight: 0\r\nActionID: {id}\r\n\r\n",
            waiting.iter().filter(|w| &w.0 == queue).count()
        );
        for ((q, _), fields) in &members {
            if q != queue {
                continue;
            }
            items += 1;
            out += &format!("Event: QueueMember\r\nQueue: {queue}\r\n");
            for (k, v) in fields {
                out += &format!("{k}: {v}\r\n");
            }
            out += &format!(
                "Membership: dynamic\r\nPenalty: 0\r\nCallsTaken: 0\r\nActionID: {id}\r\n\r\n"
            );
        }
        for (position, (q, uid, joined, from)) in
            waiting.iter().filter(|w| &w.0 == queue).enumerate()
        {
            items += 1;
            let wait = (now - joined).max(0.0).floor();
            out += &format!(
                "Event: QueueEntry\r\nQueue: {q}\r\nPosition: {}\r\nChannel: SIP/trunk-{uid}\r\nUniqueid: {uid}\r\nCallerIDNum: {from}\r\nCallerIDName: unknown\r\nWait: {wait}\r\nPriority: 0\r\nActionID: {id}\r\n\r\n",
                position + 1
            );
        }
    }
    out + &format!(
        "Event: QueueStatusComplete\r\nActionID: {id}\r\nEventList: Complete\r\nListItems: {items}\r\n\r\n"
    )
}
