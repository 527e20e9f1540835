// Weeks of generated calls for the trends: a call centre open 08:00-18:00,
// busier on Mondays, quieter on Saturdays, closed on Sundays, with queue
// waits, abandons and IVR hang-ups drawn from a seeded generator (the same
// days every run). Used by trends.test.mjs, and as a script to fill a server
// for the README's screenshot:
//   node tests/browser/trends-data.mjs http://127.0.0.1:PORT [TODAY [TIME]]

const DAY_MS = 86400000;
// Calls a day by weekday (Sunday first): closed on Sundays.
const VOLUME = [0, 150, 125, 118, 112, 105, 50];

// mulberry32: a small seeded generator, so every run posts the same calls.
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Minutes past 08:00 of a call, drawn with a morning peak and a quiet lunch.
function minuteOfCall(rand) {
  for (;;) {
    const m = rand() * 600;
    const hour = 8 + m / 60;
    const weight = hour < 10 ? 0.6 + (hour - 8) * 0.4 : hour < 12 ? 1.4 : hour < 14 ? 0.8 : 1.0;
    if (rand() * 1.4 < weight) return m;
  }
}

// One call's events: [ms, line] pairs.
function callEvents(id, startMs, rand) {
  const at = (s) => startMs + Math.round(s * 1000);
  const line = (s, rest) => [at(s), JSON.stringify({ call: id, at: new Date(at(s)).toISOString(), ...rest })];
  const events = [line(0, { type: 'call_started', direction: 'inbound', channel: 'voice' }), line(2, { type: 'ivr_started' })];
  const r = rand();
  if (r < 0.05) return [...events, line(15 + rand() * 20, { type: 'ended' })];
  const wait = -Math.log(1 - rand()) * 16;
  events.push(line(12, { type: 'ivr_input', digits: '1' }), line(14, { type: 'queued', queue: rand() < 0.6 ? 'appointments' : 'prescriptions' }));
  if (r < 0.05 + 0.08 + wait / 600) return [...events, line(14 + wait, { type: 'ended' })];
  const agent = `agent-${1 + Math.floor(rand() * 8)}`;
  return [...events, line(14 + wait, { type: 'answered', agent }), line(14 + wait + 60 + rand() * 300, { type: 'ended' })];
}

// NDJSON batches, one a day, of the `days` days before `today` (YYYY-MM-DD,
// UTC) and of today up to `until` (HH:MM), then an agent's status at
// `until` so that a feed clock's "now" is then. `busier` scales today's calls.
export function batches(today, { days = 35, until = '11:00', busier = 1.12, seed = 14 } = {}) {
  const rand = random(seed);
  const todayMs = Date.parse(`${today}T00:00:00Z`);
  const [uh, um] = until.split(':').map(Number);
  const untilMs = todayMs + (uh * 60 + um) * 60000;
  const out = [];
  for (let back = days; back >= 0; back--) {
    const dayMs = todayMs - back * DAY_MS;
    const weekday = new Date(dayMs).getUTCDay();
    const n = Math.round(VOLUME[weekday] * (back === 0 ? busier : 0.9 + rand() * 0.2));
    const events = [];
    for (let i = 0; i < n; i++) {
      const start = dayMs + 8 * 3600000 + minuteOfCall(rand) * 60000;
      const id = `${new Date(dayMs).toISOString().slice(0, 10)}-${i}`;
      const call = callEvents(id, start, rand);
      // Today: only calls over by `until`.
      if (back === 0 && call[call.length - 1][0] > untilMs) continue;
      events.push(...call);
    }
    events.sort((a, b) => a[0] - b[0]);
    if (events.length) out.push(events.map(([, l]) => l).join('\n'));
  }
  out.push(JSON.stringify({ type: 'agent_status', at: new Date(untilMs).toISOString(), agent: 'agent-1', status: 'available' }));
  return out;
}

// Posts every batch to a server's /api/events, in order.
export async function post(base, lines) {
  for (const body of lines) {
    const response = await fetch(`${base}/api/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body });
    if (!response.ok) throw new Error(`POST /api/events: ${response.status} ${await response.text()}`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [base, today = '2026-11-20', until = '11:00'] = process.argv.slice(2);
  if (!base) {
    console.error('usage: node trends-data.mjs BASE_URL [TODAY [HH:MM]]');
    process.exit(2);
  }
  await post(base, batches(today, { until }));
  console.log(`posted ${today} and the 35 days before it, up to ${until}`);
}
