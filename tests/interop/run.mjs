#!/usr/bin/env node
// Interop runner: a real WebTorrent tracker (bittorrent-tracker 11.2.3 Server, WebSocket only), a
// static origin for the fixture streams and the peer page, N headless-Chromium P2P Media Loader
// peers (hls.js + PML 2.3.1 or 2.2.2, hls.js 0.14.17 + PML 0.6.2, Shaka Player + PML 2.2.2, or
// Shaka Player 2.5.1 + PML 0.6.2)
// and optional external peer commands (the element), all on 127.0.0.1.
//
// Run it only inside a private network namespace whose only interface is loopback
// (tests/interop/netns.sh does `unshare --net --pid --fork` + `ip link set lo up`); it refuses
// to start browsers if any other interface is up, unless --allow-host-net.
//
//   node run.mjs --fixtures DIR --out DIR [options]
//   --stream PATH         playlist/MPD path under the origin (vod/master.m3u8); live/... = live
//                         view (HLS: sliding window; MPD: dynamic, $Number$ templates only)
//   --player hls|shaka    the page's player: hls.js + p2p-media-loader-hlsjs, or Shaka Player +
//                         p2p-media-loader-shaka (families 22, 06) (shaka for a .mpd, else hls);
//                         shaka + 06 = Shaka Player 2.5.1 + PML 0.6.2 (www/shaka06.html)
//   --browsers N          browser peers (2)
//   --pml LIST            library family per browser, cycled: 23 | 22 | 06 | pt | pt22 | 23,22,... (23;
//                         22 for shaka). 06 = P2P Media Loader 0.6.2 + hls.js 0.14.17 (www/page06.html);
//                         pt = PeerTube's player of the fork era: @peertube/p2p-media-loader 1.0.20 +
//                         hls.js 1.5.20 (www/pagept.html); pt22 = PeerTube's player of the 2.x era:
//                         PML 2.2.2 with PeerTube's settings (swarmId = the master URL; index.html)
//   --sha PATH|URL        PeerTube's segments-sha256 JSON (path under the origin, or a URL): every
//                         page validates its segments with it (PeerTube's segment validator)
//   --liar LIST           browser indexes (0,2) whose uploads are garbled (?liar=1): same lengths,
//                         random bytes; labels get "-liar"
//   --level L             max | min | auto | <index> level pin (max)
//   --core JSON           extra p2p-media-loader core config for every browser (06: `loader`
//                         settings; its "segments" key goes to the engine's `segments`)
//   --hls JSON            extra hls.js config for every hls.js page (e.g. {"liveSyncDurationCount":11})
//   --external CMD        external peer command (repeatable); runs `sh -c CMD` in this namespace
//                         with TRACKER_URL STREAM_URL ORIGIN_URL INTEROP_PEER_INDEX INTEROP_OUT
//   --external-after-browser K:CMD  an external peer started once browser K is ready (launched,
//                         first segment, data channel), before browser K+1 (repeatable)
//   --external-lead S     seconds of head start for external peers before the first browser (0)
//   --wait-external 1|0   with external peers, every browser waits (launch-timeout) for a data
//                         channel at launch, and --until-p2p counts every browser (1)
//   --until-externals 1   also stop once every external peer has exited (and --until-p2p, if set,
//                         is met); --duration still bounds it
//   --until-p2p K         stop once every browser that has an earlier peer of its family has
//                         loaded >= K segments over P2P (0 = off: run the full --duration)
//   --duration S          seconds after the last launch (upper bound with --until-p2p) (30)
//   --launch-timeout S    max wait for each browser's launch milestones (20)
//   --deadline S          hard limit for the whole run (duration + 40 per browser + 60)
//   --live-window N       segments in the live sliding window (6)
//   --mode process|context  one Chromium per browser, or one Chromium with N contexts (context)
//   --origin-port P / --tracker-port P  (8080 / 8000; 0 = any free port)
//   --tracker-cmd CMD     run this tracker instead of ours (`sh -c CMD`, once the origin listens,
//                         with TRACKER_PORT, INTEROP_OUT, STREAM_URL, ORIGIN_URL set; it must listen
//                         on 127.0.0.1:TRACKER_PORT, not 0), e.g. a PeerTube tracker:
//                         'node tests/interop/peertube-tracker.mjs --era fork'
//   --tracker-path P      path of TRACKER_URL (ws://127.0.0.1:PORT/P), e.g. /tracker/socket (PeerTube)
//   --tracker-record FILE what a --tracker-cmd tracker saw, read into result.json's `tracker`
//                         (peertube-tracker.mjs's format; default OUT/tracker-record.jsonl if there)
// Output: OUT/result.json, OUT/tracker.jsonl, OUT/origin.jsonl, OUT/browser-<i>.console.log,
// OUT/external-<k>.log, a table on stdout and a last line `INTEROP_RESULT <path>`.
// Exit code 0 when the run completed (assertions are the caller's job), 2 on bad usage,
// 3 on an infrastructure failure (browser launch, deadline).
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const NM = path.join(HERE, 'node_modules')
const t0 = Date.now()
const secs = () => ((Date.now() - t0) / 1000).toFixed(1)
const log = (...a) => console.log(`[interop +${secs()}s]`, ...a)

// ------------------------------------------------------------------ options
const argv = process.argv.slice(2)
const opts = { external: [], late: [] }
for (let i = 0; i < argv.length; i++) {
  const a = argv[i]
  if (!a.startsWith('--')) usage(`unexpected argument ${a}`)
  const k = a.slice(2)
  if (k === 'allow-host-net' || k === 'help') { opts[k] = true; continue }
  if (i + 1 >= argv.length) usage(`${a} needs a value`)
  if (k === 'external') opts.external.push(argv[++i])
  else if (k === 'external-after-browser') {
    const m = /^(\d+):(.+)$/s.exec(argv[++i] ?? '')
    if (!m) usage('--external-after-browser K:CMD')
    opts.late.push({ after: Number(m[1]), cmd: m[2] })
  }
  else opts[k] = argv[++i]
}
function usage (msg) {
  if (msg) console.error(msg)
  const lines = fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1)
  console.error(lines.slice(0, lines.findIndex((l) => !l.startsWith('//'))).join('\n')) // the header comment
  process.exit(msg ? 2 : 0)
}
if (opts.help) usage()
if (!opts.fixtures || !opts.out) usage('--fixtures and --out are required')
const FIXTURES = path.resolve(opts.fixtures)
const OUT = path.resolve(opts.out)
const STREAM = opts.stream ?? 'vod/master.m3u8'
const BROWSERS = Number(opts.browsers ?? 2)
const PLAYER = opts.player ?? (/\.mpd$/.test(STREAM) ? 'shaka' : 'hls')
const PML = String(opts.pml ?? (PLAYER === 'shaka' ? '22' : '23')).split(',').map((s) => s.trim())
const LEVEL = opts.level ?? 'max'
const UNTIL_EXTERNALS = opts['until-externals'] === '1'
const CORE = opts.core ?? ''
const HLS = opts.hls ?? ''
const EXTERNAL_LEAD = Number(opts['external-lead'] ?? 0)
const WAIT_EXTERNAL = (opts['wait-external'] ?? '1') !== '0' && opts.external.length + opts.late.length > 0
const UNTIL_P2P = Number(opts['until-p2p'] ?? 0)
const DURATION = Number(opts.duration ?? 30)
const LAUNCH_TIMEOUT = Number(opts['launch-timeout'] ?? 20)
const DEADLINE = Number(opts.deadline ?? DURATION + 40 * BROWSERS + 60)
const LIVE_WINDOW = Number(opts['live-window'] ?? 6)
const MODE = opts.mode ?? 'context'
const ORIGIN_PORT = Number(opts['origin-port'] ?? 8080)
const TRACKER_PORT = Number(opts['tracker-port'] ?? 8000)
for (const v of PML) if (!['23', '22', '06', 'pt', 'pt22'].includes(v)) usage(`--pml: unknown family ${v}`)
const SHA = opts.sha ?? ''
const LIARS = new Set(String(opts.liar ?? '').split(',').filter((x) => x !== '').map(Number))
const TRACKER_PATH = opts['tracker-path'] ?? ''
if (TRACKER_PATH && !TRACKER_PATH.startsWith('/')) usage('--tracker-path: a path starting with /')
if (!['hls', 'shaka'].includes(PLAYER)) usage('--player: hls or shaka')
if (PLAYER === 'shaka' && PML.some((v) => v !== '22' && v !== '06')) usage('--player shaka: only --pml 22 (p2p-media-loader-shaka 2.2.2) or 06 (0.6.2 + Shaka Player 2.5.1, www/shaka06.html)')
if (!['process', 'context'].includes(MODE)) usage('--mode: process or context')

// Browsers must never see a real network: WebRTC would gather candidates on every interface.
// /proc/self/net/dev lists this process's namespace (/sys/class/net shows the mounter's).
const ifaces = fs.readFileSync('/proc/self/net/dev', 'utf8').split('\n').slice(2)
  .map((l) => l.split(':')[0].trim()).filter((n) => n && n !== 'lo')
if (ifaces.length && !opts['allow-host-net']) {
  console.error(`refusing to run: network interfaces other than lo exist (${ifaces.join(', ')}); run inside tests/interop/netns.sh`)
  process.exit(2)
}

for (const need of ['bittorrent-tracker/server.js', 'playwright-core/package.json', 'hls.js/dist/hls.mjs',
  'p2p-media-loader-hlsjs/dist/p2p-media-loader-hlsjs.es.js', 'p2p-media-loader-hlsjs-22/dist/p2p-media-loader-hlsjs.es.js',
  'shaka-player/dist/shaka-player.compiled.js', 'p2p-media-loader-shaka/dist/p2p-media-loader-shaka.es.js',
  'hls.js-0/dist/hls.js', 'p2p-media-loader-core-06/build/p2p-media-loader-core.js', 'p2p-media-loader-hlsjs-06/build/p2p-media-loader-hlsjs.js',
  'shaka-player-2/dist/shaka-player.compiled.js', 'p2p-media-loader-shaka-06/build/p2p-media-loader-shaka.js',
  'hls.js-15/dist/hls.mjs', '@peertube/p2p-media-loader-core/dist/index.js', '@peertube/p2p-media-loader-hlsjs/dist/index.js']) {
  if (!fs.existsSync(path.join(NM, need))) {
    console.error(`missing ${need}: run \`npm ci --ignore-scripts --prefix tests/interop\``)
    process.exit(2)
  }
}
const { chromium } = await import('playwright-core')

fs.mkdirSync(OUT, { recursive: true })

// ------------------------------------------------------------------ cleanup (by PID)
const externals = [] // { index, cmd, child, pid, exit }
const browsers = [] // see launchBrowser
let sharedBrowser = null
let finishing = false
async function stopAll () {
  await Promise.all(browsers.map(async (b) => { try { await b.context.close() } catch {} }))
  if (sharedBrowser) try { await sharedBrowser.close() } catch {}
  // External peers run in their own process group (detached): signal the group by its PID.
  for (const e of externals) if (e.exit === null) try { process.kill(-e.pid, 'SIGTERM') } catch {}
  const until = Date.now() + 5000
  while (externals.some((e) => e.exit === null) && Date.now() < until) await sleep(100)
  for (const e of externals) if (e.exit === null) try { process.kill(-e.pid, 'SIGKILL') } catch {}
  // A browser that did not close: kill it by its PID (known from launch).
  for (const b of browsers) if (b.browserPid) try { process.kill(b.browserPid, 'SIGKILL') } catch {}
  await new Promise((resolve) => trackerServer ? trackerServer.close(() => resolve()) : resolve())
  if (trackerProc && trackerProc.exitCode === null) {
    // SIGTERM first: a tracker that keeps a record (peertube-tracker.mjs) flushes it then.
    try { process.kill(-trackerProc.pid, 'SIGTERM') } catch {}
    const until = Date.now() + 3000
    while (trackerProc.exitCode === null && trackerProc.signalCode === null && Date.now() < until) await sleep(50)
    if (trackerProc.exitCode === null && trackerProc.signalCode === null) try { process.kill(-trackerProc.pid, 'SIGKILL') } catch {}
  }
  await new Promise((resolve) => originServer ? originServer.close(() => resolve()) : resolve())
  originServer?.closeAllConnections?.()
}
const hardDeadline = setTimeout(async () => {
  console.error(`[interop] hard deadline (${DEADLINE}s) hit`)
  finishing = true
  try { writeResult(await Promise.race([collectBrowsers(), sleep(5000).then(() => [])]), { aborted: `deadline ${DEADLINE}s` }) } catch {}
  await Promise.race([stopAll(), sleep(10000)])
  process.exit(3)
}, DEADLINE * 1000)
hardDeadline.unref()
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, async () => {
    finishing = true
    await Promise.race([stopAll(), sleep(10000)])
    process.exit(143)
  })
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// ------------------------------------------------------------------ tracker
const trackerLog = fs.createWriteStream(path.join(OUT, 'tracker.jsonl'))
const announces = [] // every announce message received: who announced which info_hash
const trackerEvents = [] // start/update/stop/complete as the server saw them
const trackerViolations = [] // rules of deployed trackers broken, by peer id (rules.mjs)
const { socketState, checkOpen, checkMessage } = await import(path.join(HERE, '../tracker/rules.mjs'))
const bin2str = (s) => (typeof s === 'string' ? s : null)
const hex = (s) => (typeof s === 'string' ? Buffer.from(s, 'latin1').toString('hex') : undefined)
// An info_hash / peer_id for a log line: as it is when printable ASCII (2.x), else `hex:` + its
// 40 hex digits (0.6 info-hashes are raw SHA-1 bytes sent as a latin1 "binary string").
const printable = (s) => (typeof s === 'string' && !/^[\x20-\x7e]*$/.test(s) ? `hex:${hex(s)}` : s)
// What a tracker saw, from our own (below) or, after the run, from a --tracker-cmd tracker's
// record (--tracker-record, e.g. peertube-tracker.mjs's): `at` = when (Date.now()).
const tOf = (at) => Number(((at - t0) / 1000).toFixed(1))
const ruleStates = new Map() // conn -> rules.mjs per-socket state
function trackerOpen (conn, origin, at = Date.now()) {
  // The rules of the trackers people deploy (../tracker/rules.mjs), counted per peer id:
  // bittorrent-tracker lets everything through, so this is where a breach would show.
  ruleStates.set(conn, socketState())
  for (const [rule, detail] of checkOpen(origin)) trackerViolations.push({ t: tOf(at), conn, peer_id: null, rule, detail })
}
function trackerIn (conn, data, isBinary, at = Date.now()) {
  if (!ruleStates.has(conn)) ruleStates.set(conn, socketState())
  const checked = checkMessage(ruleStates.get(conn), data, isBinary)
  for (const [rule, detail] of checked.violations) trackerViolations.push({ t: tOf(at), conn, peer_id: bin2str(checked.m?.peer_id), rule, detail })
  let m = null
  try { m = JSON.parse(String(data)) } catch {}
  if (m && m.action === 'announce') {
    announces.push({
      t: tOf(at),
      ms: at - t0,
      conn,
      info_hash: bin2str(m.info_hash),
      info_hash_hex: hex(m.info_hash),
      peer_id: bin2str(m.peer_id),
      peer_id_hex: hex(m.peer_id),
      event: m.event ?? null,
      offers: Array.isArray(m.offers) ? m.offers.length : 0,
      answer: Boolean(m.answer),
      to_peer_id: bin2str(m.to_peer_id) ?? undefined
    })
  }
}
// A --tracker-cmd tracker's record: peertube-tracker.mjs's JSONL (see its header), read once at
// the end into the same announces/events/violations as our own tracker's, plus what only a
// PeerTube tracker does (rejections, blocked upgrades, ignored paths, its whitelist); each line
// is also copied into OUT/tracker.jsonl with the run's `t`.
const TRACKER_RECORD = opts['tracker-record'] ? path.resolve(opts['tracker-record']) : path.join(OUT, 'tracker-record.jsonl')
if (opts['tracker-cmd'] && !opts['tracker-record']) fs.rmSync(TRACKER_RECORD, { force: true })
const trackerExtra = { source: opts['tracker-cmd'] ? null : 'run.mjs', rejections: [], blocked: [], ignoredUpgrades: [], whitelist: null }
let trackerRecordRead = false
function readTrackerRecord () {
  if (trackerRecordRead || !opts['tracker-cmd']) return
  trackerRecordRead = true
  let lines = []
  try { lines = fs.readFileSync(TRACKER_RECORD, 'utf8').split('\n').filter(Boolean) } catch { return }
  trackerExtra.source = TRACKER_RECORD
  const latin1 = (h) => (typeof h === 'string' ? Buffer.from(h, 'hex').toString('latin1') : null)
  const copy = []
  for (const line of lines) {
    let r
    try { r = JSON.parse(line) } catch { continue }
    const at = r.wall ?? Date.now()
    const t = tOf(at)
    if (r.dir === 'open') trackerOpen(r.conn, r.origin, at)
    else if (r.dir === 'in') trackerIn(r.conn, r.raw, Boolean(r.binary), at)
    else if (r.dir === 'event') trackerEvents.push({ t, event: r.event, info_hash: latin1(r.info_hash_hex), info_hash_hex: r.info_hash_hex, peer_id: latin1(r.peer_id_hex) })
    else if (r.dir === 'reject') trackerExtra.rejections.push({ t, conn: r.conn, ip: r.ip, info_hash: latin1(r.info_hash_hex), info_hash_hex: r.info_hash_hex, peer_id: latin1(r.peer_id_hex), reason: r.reason })
    else if (r.dir === 'blocked') trackerExtra.blocked.push({ t, ip: r.ip, url: r.url })
    else if (r.dir === 'ignored') trackerExtra.ignoredUpgrades.push({ t, ip: r.ip, url: r.url })
    else if (r.dir === 'listening') trackerExtra.whitelist = { era: r.era, master: r.master, count: r.count, blockMs: r.blockMs, hashes: r.whitelist }
    const { wall: _w, ...rest } = r
    copy.push(JSON.stringify({ t, ...rest }) + '\n')
  }
  // Synchronously: the runner exits right after the result is written.
  fs.appendFileSync(path.join(OUT, 'tracker.jsonl'), copy.join(''))
}
// --tracker-cmd: another tracker (aquatic_ws, peertube-tracker.mjs) started here, in this
// namespace, instead of ours; what it sees is known only from its record, if it writes one.
let trackerServer = null
let trackerProc = null
let TRACKER_URL
if (!opts['tracker-cmd']) {
const { default: TrackerServer } = await import(path.join(NM, 'bittorrent-tracker/server.js'))
trackerServer = new TrackerServer({ http: false, udp: false, ws: true, stats: false, interval: 10 * 60 * 1000 })
let trackerConns = 0
const origOnConn = trackerServer.onWebSocketConnection.bind(trackerServer)
trackerServer.onWebSocketConnection = (socket, o) => {
  const conn = ++trackerConns
  trackerLog.write(JSON.stringify({ t: secs(), dir: 'open', conn }) + '\n')
  trackerOpen(conn, socket.upgradeReq?.headers?.origin)
  socket.on('message', (data, isBinary) => {
    trackerLog.write(JSON.stringify({ t: secs(), dir: 'in', conn, raw: String(data) }) + '\n')
    trackerIn(conn, data, isBinary)
  })
  socket.on('close', (code) => trackerLog.write(JSON.stringify({ t: secs(), dir: 'close', conn, code }) + '\n'))
  const origSend = socket.send.bind(socket)
  socket.send = (data, ...rest) => {
    trackerLog.write(JSON.stringify({ t: secs(), dir: 'out', conn, raw: String(data) }) + '\n')
    return origSend(data, ...rest)
  }
  return origOnConn(socket, o)
}
for (const ev of ['start', 'update', 'complete', 'stop']) {
  // The server hands these over as hex.
  trackerServer.on(ev, (_addr, p) => {
    const rec = {
      t: Number(secs()),
      event: ev,
      info_hash: p?.info_hash ? Buffer.from(p.info_hash, 'hex').toString('latin1') : null,
      info_hash_hex: p?.info_hash ?? null,
      peer_id: p?.peer_id ? Buffer.from(p.peer_id, 'hex').toString('latin1') : null
    }
    trackerEvents.push(rec)
    trackerLog.write(JSON.stringify({ dir: 'event', ...rec }) + '\n')
  })
}
trackerServer.on('warning', (e) => trackerLog.write(JSON.stringify({ t: secs(), dir: 'warning', msg: String(e?.message || e) }) + '\n'))
trackerServer.on('error', (e) => trackerLog.write(JSON.stringify({ t: secs(), dir: 'error', msg: String(e?.message || e) }) + '\n'))
await new Promise((resolve, reject) => {
  trackerServer.once('error', reject)
  trackerServer.listen(TRACKER_PORT, '127.0.0.1', resolve)
})
TRACKER_URL = `ws://127.0.0.1:${trackerServer.ws.address().port}${TRACKER_PATH}`
}

// ------------------------------------------------------------------ origin
// Static files from --fixtures; /app/ = the peer page; /vendor/ = library builds copied into OUT
// at test time. /live/<p> serves the fixture file <p>, but media playlists are cut to a sliding
// window that advances in real time from the origin's start: a live stream without an encoder.
const VENDOR = path.join(OUT, 'vendor')
fs.rmSync(VENDOR, { recursive: true, force: true })
// p2p-media-loader-shaka 2.2.2 imports "p2p-media-loader-core" by name: shaka.html maps it to the
// 2.2.2 core in pml22/ (the alias p2p-media-loader-core-22), as index.html does for hlsjs 2.2.
for (const [dir, files] of [['', ['hls.js/dist/hls.mjs', 'shaka-player/dist/shaka-player.compiled.js']],
  ['pml23', ['p2p-media-loader-core/dist/p2p-media-loader-core.es.js', 'p2p-media-loader-hlsjs/dist/p2p-media-loader-hlsjs.es.js']],
  ['pml22', ['p2p-media-loader-core-22/dist/p2p-media-loader-core.es.js', 'p2p-media-loader-hlsjs-22/dist/p2p-media-loader-hlsjs.es.js',
    'p2p-media-loader-shaka/dist/p2p-media-loader-shaka.es.js']],
  // The 0.6.2 family: classic-script builds (page06.html, shaka06.html), hls.js 0.x and Shaka
  // Player 2.5.1 beside them.
  ['pml06', ['hls.js-0/dist/hls.js', 'p2p-media-loader-core-06/build/p2p-media-loader-core.js',
    'p2p-media-loader-hlsjs-06/build/p2p-media-loader-hlsjs.js', 'shaka-player-2/dist/shaka-player.compiled.js',
    'p2p-media-loader-shaka-06/build/p2p-media-loader-shaka.js']]]) {
  fs.mkdirSync(path.join(VENDOR, dir), { recursive: true })
  for (const f of files) fs.copyFileSync(path.join(NM, f), path.join(VENDOR, dir, path.basename(f)))
}
// PeerTube's fork era (pagept.html): hls.js 1.5.20 + the @peertube/p2p-media-loader ESM bundles
// (both dist/index.js: renamed; the importmap maps the bare names onto them).
fs.mkdirSync(path.join(VENDOR, 'pt'), { recursive: true })
for (const [f, name] of [['hls.js-15/dist/hls.mjs', 'hls.mjs'], ['@peertube/p2p-media-loader-core/dist/index.js', 'p2p-media-loader-core.js'],
  ['@peertube/p2p-media-loader-hlsjs/dist/index.js', 'p2p-media-loader-hlsjs.js']]) fs.copyFileSync(path.join(NM, f), path.join(VENDOR, 'pt', name))
const versions = Object.fromEntries(['hls.js', 'p2p-media-loader-core', 'p2p-media-loader-hlsjs', 'p2p-media-loader-core-22',
  'p2p-media-loader-hlsjs-22', 'shaka-player', 'p2p-media-loader-shaka', 'hls.js-0', 'p2p-media-loader-core-06',
  'p2p-media-loader-hlsjs-06', 'shaka-player-2', 'p2p-media-loader-shaka-06', 'hls.js-15', '@peertube/p2p-media-loader-core', '@peertube/p2p-media-loader-hlsjs',
  '@peertube/bittorrent-tracker-server', 'playwright-core', 'bittorrent-tracker'].map((n) => [n, JSON.parse(fs.readFileSync(path.join(NM, n, 'package.json'), 'utf8')).version]))

const originLog = fs.createWriteStream(path.join(OUT, 'origin.jsonl'))
const originBytes = {} // X-Interop-Peer label -> bytes of media served
const liveStart = Date.now()
const MIME = { '.m3u8': 'application/vnd.apple.mpegurl', '.mpd': 'application/dash+xml', '.ts': 'video/mp2t', '.m4s': 'video/iso.segment', '.mp4': 'video/mp4', '.html': 'text/html; charset=utf-8', '.mjs': 'text/javascript', '.js': 'text/javascript', '.json': 'application/json' }

function livePlaylist (text) {
  // Sliding window over a VOD media playlist: at first LIVE_WINDOW segments are out, then one
  // more per segment duration; never ENDLIST (the run ends before the source does).
  const lines = text.split(/\r?\n/)
  const head = []; const segs = []; let cur = []
  for (const l of lines) {
    if (l === '#EXT-X-ENDLIST' || l.startsWith('#EXT-X-PLAYLIST-TYPE')) continue
    if (!segs.length && !cur.length && !l.startsWith('#EXTINF') && l.startsWith('#') && !l.startsWith('#EXT-X-DISCONTINUITY')) { head.push(l); continue }
    if (l === '') continue
    cur.push(l)
    if (!l.startsWith('#')) { segs.push(cur); cur = [] }
  }
  const durs = segs.map((s) => Number(/#EXTINF:([\d.]+)/.exec(s.join('\n'))?.[1] ?? 2))
  let elapsed = (Date.now() - liveStart) / 1000
  let avail = Math.min(LIVE_WINDOW, segs.length)
  while (avail < segs.length && elapsed >= durs[avail - 1]) { elapsed -= durs[avail - 1]; avail++ }
  const first = Math.max(0, avail - LIVE_WINDOW)
  return [...head.filter((l) => !l.startsWith('#EXT-X-MEDIA-SEQUENCE')), `#EXT-X-MEDIA-SEQUENCE:${first}`,
    ...segs.slice(first, avail).flat(), ''].join('\n')
}

function liveMpd (text) {
  // A static MPD with SegmentTemplate@duration ($Number$) as a dynamic one: availabilityStartTime
  // such that LIVE_WINDOW segments are out at the origin's start, then one more per segment
  // duration (Shaka derives availability from the clock; the origin serves every file). The
  // Period keeps the VOD's duration, so players stop at the end instead of asking for more.
  const sec = (iso) => Number(/PT(?:([\d.]+)H)?(?:([\d.]+)M)?(?:([\d.]+)S)?/.exec(iso ?? '')?.slice(1).reduce((a, v, k) => a + Number(v ?? 0) * [3600, 60, 1][k], 0) ?? 0)
  const segDur = sec(/maxSegmentDuration="([^"]+)"/.exec(text)?.[1]) || 2
  const total = sec(/mediaPresentationDuration="([^"]+)"/.exec(text)?.[1])
  const iso = (ms) => new Date(ms).toISOString()
  return text
    .replace('type="static"', `type="dynamic" availabilityStartTime="${iso(liveStart - LIVE_WINDOW * segDur * 1000)}" ` +
      `publishTime="${iso(liveStart)}" minimumUpdatePeriod="PT${segDur}S" timeShiftBufferDepth="PT${LIVE_WINDOW * segDur}S"`)
    .replace(/\s*mediaPresentationDuration="[^"]*"/, '')
    .replace(/<Period([^>]*?) start="[^"]*"/, `<Period$1 start="PT0S"${total ? ` duration="PT${total}S"` : ''}`)
}

const originServer = http.createServer((req, res) => {
  const u = new URL(req.url, 'http://x')
  const peer = req.headers['x-interop-peer'] || null
  let p = decodeURIComponent(u.pathname)
  let file = null; let body = null; let type
  if (p.includes('..')) return end(400)
  // /redirect/<path>: a 302 to /<path> (query kept): which manifest URL a library takes, the one
  // it asked for or the one it got (0.6: requested; 2.x: response).
  if (p.startsWith('/redirect/')) {
    res.setHeader('Access-Control-Allow-Origin', '*')
    res.setHeader('Location', p.slice(9) + u.search)
    originLog.write(JSON.stringify({ t: secs(), path: u.pathname, status: 302, bytes: 0, peer }) + '\n')
    return end(302)
  }
  if (p === '/app/index.html' || p === '/app/shaka.html') {
    const pml = u.searchParams.get('pml') === '22' ? '22' : '23'
    body = Buffer.from(fs.readFileSync(path.join(HERE, 'www', p.slice(5)), 'utf8').replaceAll('__PML__', pml))
    type = MIME['.html']
  } else if (p.startsWith('/app/')) file = path.join(HERE, 'www', p.slice(5))
  else if (p.startsWith('/vendor/')) file = path.join(VENDOR, p.slice(8))
  else {
    const isLive = p.startsWith('/live/')
    if (isLive) p = p.slice(5)
    file = path.join(FIXTURES, p)
    if (isLive && p.endsWith('.m3u8')) {
      try {
        const text = fs.readFileSync(file, 'utf8')
        body = Buffer.from(text.includes('#EXTINF') ? livePlaylist(text) : text)
        type = MIME['.m3u8']
      } catch { return end(404) }
    } else if (isLive && p.endsWith('.mpd')) {
      try { body = Buffer.from(liveMpd(fs.readFileSync(file, 'utf8'))) } catch { return end(404) }
      type = MIME['.mpd']
    }
  }
  if (!body) {
    try { body = fs.readFileSync(file) } catch { return end(404) }
    type = MIME[path.extname(file)] || 'application/octet-stream'
  }
  res.setHeader('Access-Control-Allow-Origin', '*')
  res.setHeader('Access-Control-Allow-Headers', '*')
  res.setHeader('Access-Control-Expose-Headers', '*')
  res.setHeader('Cache-Control', 'no-cache')
  res.setHeader('Content-Type', type)
  if (req.method === 'OPTIONS') return end(204)
  let status = 200
  const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range || '')
  if (range) {
    const s = Number(range[1]); const e = range[2] ? Math.min(Number(range[2]), body.length - 1) : body.length - 1
    if (s >= body.length || e < s) { res.setHeader('Content-Range', `bytes */${body.length}`); return end(416) }
    res.setHeader('Content-Range', `bytes ${s}-${e}/${body.length}`)
    body = body.subarray(s, e + 1); status = 206
  }
  res.setHeader('Content-Length', body.length)
  res.writeHead(status)
  res.end(req.method === 'HEAD' ? undefined : body)
  if (!p.startsWith('/app/') && !p.startsWith('/vendor/')) {
    if (peer) originBytes[peer] = (originBytes[peer] || 0) + body.length
    originLog.write(JSON.stringify({ t: secs(), path: u.pathname, status, bytes: body.length, peer }) + '\n')
  }
  function end (code) { res.writeHead(code); res.end() }
})
await new Promise((resolve, reject) => { originServer.once('error', reject); originServer.listen(ORIGIN_PORT, '127.0.0.1', resolve) })
const ORIGIN = `http://127.0.0.1:${originServer.address().port}`
const STREAM_URL = `${ORIGIN}/${STREAM}`
const SHA_URL = !SHA ? '' : /^https?:/.test(SHA) ? SHA : `${ORIGIN}/${SHA.replace(/^\//, '')}`
// --tracker-cmd: started now that the origin listens, so it can be told the stream's URL (a
// PeerTube tracker whitelists the info-hashes of that master playlist).
async function startTrackerCmd () {
  const logFd = fs.openSync(path.join(OUT, 'tracker.log'), 'w')
  trackerProc = spawn('sh', ['-c', opts['tracker-cmd']], {
    detached: true,
    stdio: ['ignore', logFd, logFd],
    env: { ...process.env, TRACKER_PORT: String(TRACKER_PORT), INTEROP_OUT: OUT, STREAM_URL, ORIGIN_URL: ORIGIN }
  })
  const { connect } = await import('node:net')
  const until = Date.now() + 15000
  for (;;) {
    const ok = await new Promise((resolve) => {
      const c = connect(TRACKER_PORT, '127.0.0.1', () => { c.destroy(); resolve(true) })
      c.on('error', () => resolve(false))
    })
    if (ok) break
    if (Date.now() > until || trackerProc.exitCode !== null) {
      console.error(`[interop] --tracker-cmd never listened on ${TRACKER_PORT}`)
      process.exit(3)
    }
    await sleep(100)
  }
  TRACKER_URL = `ws://127.0.0.1:${TRACKER_PORT}${TRACKER_PATH}`
}
if (opts['tracker-cmd']) await startTrackerCmd()
log(`tracker ${TRACKER_URL}, origin ${ORIGIN}, stream ${STREAM_URL}`)

// ------------------------------------------------------------------ external peers
function startExternal (cmd, index) {
  const logFile = path.join(OUT, `external-${index}.log`)
  const fd = fs.openSync(logFile, 'w')
  const child = spawn('sh', ['-c', cmd], {
    detached: true, // own process group, so stopAll can signal everything it started
    stdio: ['ignore', fd, fd],
    env: { ...process.env, TRACKER_URL, STREAM_URL, ORIGIN_URL: ORIGIN, INTEROP_PEER_INDEX: String(index), INTEROP_OUT: OUT }
  })
  fs.closeSync(fd)
  const e = { index, cmd, pid: child.pid, startedAt: Number(secs()), exit: null, log: logFile }
  child.on('exit', (code, signal) => { e.exit = { code, signal, at: Number(secs()) } })
  externals.push(e)
  log(`external ${index} pid ${child.pid}: ${cmd}`)
}
opts.external.forEach((cmd, k) => startExternal(cmd, k))
if (opts.external.length && EXTERNAL_LEAD > 0) await sleep(EXTERNAL_LEAD * 1000)

// ------------------------------------------------------------------ browsers
const chromeArgs = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
  // WebRTC skips loopback unless told; in the namespace loopback is the only network.
  '--allow-loopback-in-peer-connection'
]

// Runs in every page before its scripts: records the announces this page sends to the tracker
// (its own peer id per info_hash, as seen from the browser side).
function initScript () {
  const ws = (window.__wsAnnounces = [])
  const send = WebSocket.prototype.send
  WebSocket.prototype.send = function (data) {
    try {
      const m = JSON.parse(data)
      if (m && m.action === 'announce' && ws.length < 1000) {
        ws.push({ url: this.url, info_hash: m.info_hash, peer_id: m.peer_id, event: m.event ?? null, offers: m.offers?.length ?? 0, answer: Boolean(m.answer) })
        if (m.event === 'started') window.__interopEvent?.({ ev: 'announce', info_hash: m.info_hash, peer_id: m.peer_id })
      }
    } catch {}
    return send.call(this, data)
  }
}

function waitFor (b, pred, timeoutS, what) {
  const hit = b.events.find(pred)
  if (hit) return Promise.resolve(hit)
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      b.waiters.delete(w)
      b.problems.push(`no ${what} within ${timeoutS}s`)
      resolve(null)
    }, timeoutS * 1000)
    const w = (ev) => { if (pred(ev)) { clearTimeout(timer); b.waiters.delete(w); resolve(ev) } }
    b.waiters.add(w)
  })
}

async function launchBrowser (i) {
  const pml = PML[i % PML.length]
  const liar = LIARS.has(i)
  const label = (PLAYER === 'shaka' ? `b${i}-shaka${pml}` : `b${i}-pml${pml}`) + (liar ? '-liar' : '')
  const b = { i, label, pml, player: PLAYER, liar, events: [], waiters: new Set(), problems: [], browserPid: null }
  let context
  if (MODE === 'process') {
    const profile = path.join(OUT, 'profiles', label)
    fs.rmSync(profile, { recursive: true, force: true })
    context = await chromium.launchPersistentContext(profile, { executablePath: '/usr/bin/chromium', headless: true, chromiumSandbox: false, args: chromeArgs })
    b.browserPid = context.browser()?.process?.()?.pid ?? findPid(`--user-data-dir=${profile}`)
  } else {
    if (!sharedBrowser) {
      sharedBrowser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, chromiumSandbox: false, args: chromeArgs })
      sharedBrowser.__pid = sharedBrowser.process?.()?.pid ?? null
    }
    context = await sharedBrowser.newContext()
    b.browserPid = sharedBrowser.__pid
  }
  b.context = context
  browsers.push(b)
  // Without camera/microphone permission Chromium enumerates no interfaces for WebRTC and the
  // offers carry no candidates at all in a loopback-only namespace.
  await context.grantPermissions(['camera', 'microphone'])
  await context.addInitScript(initScript)
  // Tag every request of this browser so the origin can attribute its bytes.
  await context.setExtraHTTPHeaders({ 'X-Interop-Peer': label })
  await context.exposeFunction('__interopEvent', (ev) => {
    ev.ms = Date.now() - t0 // when the runner heard of it, on the tracker's clock
    b.events.push(ev)
    if (ev.ev !== 'segment') log(`${label}: ${ev.ev}${ev.peer ? ' ' + ev.peer : ''}${ev.info_hash ? ' ' + printable(ev.info_hash) + ' as ' + printable(ev.peer_id) : ''}${ev.details ? ' ' + ev.details : ''}`)
    for (const w of [...b.waiters]) w(ev)
  })
  const page = context.pages()[0] || await context.newPage()
  b.page = page
  const consoleLog = fs.createWriteStream(path.join(OUT, `browser-${i}.console.log`))
  b.consoleLog = consoleLog
  page.on('console', (m) => consoleLog.write(`[${secs()}] ${m.type()}: ${m.text()}\n`))
  page.on('pageerror', (e) => { consoleLog.write(`[${secs()}] pageerror: ${e.message}\n`); b.problems.push(`pageerror: ${e.message}`) })
  // pt22 = index.html with the 2.2.2 build (pml=22) and PeerTube's settings (peertube=1).
  const q = new URLSearchParams({ pml: pml === 'pt22' ? '22' : pml, src: STREAM_URL, tracker: TRACKER_URL, peer: label, level: LEVEL,
    ...(pml === 'pt22' ? { peertube: '1' } : {}), ...(SHA_URL ? { sha: SHA_URL } : {}), ...(liar ? { liar: '1' } : {}),
    ...(CORE ? { core: CORE } : {}), ...(HLS ? { hls: HLS } : {}) })
  b.url = `${ORIGIN}/app/${PLAYER === 'shaka' ? (pml === '06' ? 'shaka06' : 'shaka') : pml === '06' ? 'page06' : pml === 'pt' ? 'pagept' : 'index'}.html?${q}`
  b.launchedAt = Number(secs())
  await page.goto(b.url, { waitUntil: 'load' })
  log(`${label} launched`)
  // Launch milestones: its first segment, and — when an earlier peer of its family (or an
  // external peer) is there to meet — a connected data channel.
  await waitFor(b, (e) => e.ev === 'segment', LAUNCH_TIMEOUT, 'segment loaded')
  const hasMate = browsers.some((o) => o !== b && o.pml === pml) || (WAIT_EXTERNAL && externals.length > 0)
  if (hasMate) await waitFor(b, (e) => e.ev === 'peer-connect', LAUNCH_TIMEOUT, 'peer connection')
  b.readyAt = Number(secs())
  return b
}
function findPid (marker) {
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try { const c = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8'); if (c.includes(marker) && !c.includes('--type=')) return Number(d) } catch {}
  }
  return null
}

async function collect (b) {
  let stats = null; let ws = []
  try { stats = await b.page.evaluate(() => window.__stats) } catch (e) { stats = { error: String(e) } }
  try { ws = await b.page.evaluate(() => window.__wsAnnounces) } catch {}
  return { stats, ws }
}

function p2pSegments (b) {
  return b.events.filter((e) => e.ev === 'segment' && e.src === 'p2p').length
}

// ------------------------------------------------------------------ UDP drops
// Everything runs in this private network namespace, so the kernel's UDP counters are this
// run's alone. Losses on loopback are receive buffers overflowing; which socket dropped tells
// whose side was too slow to read (a browser starved of CPU, or an element), and when.
const udpDrops = {} // inode -> { port, drops, owner, firstAt, lastAt }
function udpOwner (inode) {
  const want = `socket:[${inode}]`
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
        if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === want) {
          const comm = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim()
          const ext = externals.find((e) => e.pid === Number(pid))
          return ext ? `external ${ext.index}` : `${comm} ${pid}`
        }
      }
    } catch {}
  }
  return null
}
function sampleUdpDrops () {
  for (const file of ['/proc/net/udp', '/proc/net/udp6']) {
    let lines = []
    try { lines = fs.readFileSync(file, 'utf8').split('\n').slice(1) } catch { continue }
    for (const line of lines) {
      const f = line.trim().split(/\s+/)
      if (f.length < 13) continue
      const drops = Number(f[12]); const inode = f[9]
      if (!drops) continue
      const d = udpDrops[inode] ??= { port: parseInt(f[1].split(':')[1], 16), drops: 0, owner: udpOwner(inode), firstAt: Number(secs()) }
      if (drops > d.drops) { d.drops = drops; d.lastAt = Number(secs()) }
    }
  }
}
function udpCounters () {
  try {
    const l = fs.readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((x) => x.startsWith('Udp:'))
    const [k, v] = [l[0].split(/\s+/).slice(1), l[1].split(/\s+/).slice(1).map(Number)]
    return Object.fromEntries(k.map((n, i) => [n, v[i]]))
  } catch { return null }
}
const udpSampler = setInterval(sampleUdpDrops, 250)

// ------------------------------------------------------------------ run
let infraError = null
try {
  for (let i = 0; i < BROWSERS; i++) {
    await launchBrowser(i)
    for (const l of opts.late.filter((l) => l.after === i)) startExternal(l.cmd, externals.length)
  }
  const lastReady = Date.now()
  log(`all ${BROWSERS} browsers launched; running ${UNTIL_P2P ? `until each joiner has ${UNTIL_P2P} P2P segments, at most ` : ''}${DURATION}s`)
  const joiners = browsers.filter((b) => browsers.some((o) => o.i < b.i && o.pml === b.pml) || (WAIT_EXTERNAL && externals.some((e) => e.startedAt <= b.launchedAt)))
  while (!finishing && Date.now() - lastReady < DURATION * 1000) {
    const p2pDone = UNTIL_P2P > 0 && joiners.length && joiners.every((b) => p2pSegments(b) >= UNTIL_P2P)
    if (UNTIL_EXTERNALS && externals.length && externals.every((e) => e.exit !== null) && (UNTIL_P2P === 0 || p2pDone)) {
      log('all external peers exited')
      break
    }
    if (!UNTIL_EXTERNALS && p2pDone) {
      log('P2P goal reached')
      break
    }
    await sleep(250)
  }
} catch (e) {
  infraError = String(e?.stack || e)
  console.error('[interop] infrastructure failure:', infraError)
}

async function collectBrowsers () {
  const per = []
  for (const b of browsers) {
    const { stats, ws } = await collect(b)
    const s = stats || {}
    per.push({
      index: b.i,
      label: b.label,
      pml: b.pml,
      player: b.player,
      liar: b.liar,
      url: b.url,
      launchedAt: b.launchedAt,
      readyAt: b.readyAt ?? null,
      problems: b.problems,
      httpBytes: s.bytes?.http ?? 0,
      p2pBytes: s.bytes?.p2p ?? 0,
      uploadBytes: s.bytes?.upload ?? 0,
      originBytes: originBytes[b.label] ?? 0,
      segments: s.segments ?? null,
      peersSeen: s.peersEverConnected ?? [],
      downloadedFromPeer: s.downloadedFromPeer ?? {},
      uploadedToPeer: s.uploadedToPeer ?? {},
      // own announces, from the page's WebSocket: info_hash -> the peer id it used there
      ownPeerIds: Object.fromEntries((ws || []).filter((a) => a.event === 'started').map((a) => [a.info_hash, a.peer_id])),
      announcedInfoHashes: [...new Set((ws || []).map((a) => a.info_hash))],
      // the same as 40 hex digits (0.6 info-hashes are raw bytes: announcedInfoHashes holds them
      // as latin1 "binary strings")
      announcedInfoHashesHex: [...new Set((ws || []).map((a) => hex(a.info_hash)))],
      // 0.6 pages: the stream swarm ids of the segments loaded ("<master URL>+V<i>")
      ...(s.swarmIds ? { swarmIds: s.swarmIds } : {}),
      // 0.6 pages: data channel messages sent/received as text or binary, JSON commands, samples
      ...(s.dataChannel ? { dataChannel: s.dataChannel } : {}),
      // Shaka + 0.6 pages (shaka06): segment ids loaded (first 20) and their URLs, what the segment
      // manager queued (swarm ids, first 20 segments), ids in the commands it sent, Shaka's streams
      ...(s.segmentIds ? { segmentIds: s.segmentIds, segmentIdUrls: s.segmentIdUrls } : {}),
      ...(s.queued ? { queued: s.queued } : {}),
      ...(s.wire06 ? { wire06: s.wire06 } : {}),
      ...(s.shakaStreams ? { shakaStreams: s.shakaStreams, assetUri: s.assetUri } : {}),
      // PeerTube pages (pt, pt22, or any page given --sha): {era, swarmId, sha, liar}; the segment
      // validator's counts {ok: {http, p2p}, failed: {http, p2p}, refetches}; a liar's garbling
      // counts {chunks, bytes, commands}
      ...(s.peertube ? { peertube: s.peertube } : {}),
      ...(s.validation ? { validation: s.validation } : {}),
      ...(s.liar ? { liarStats: s.liar } : {}),
      // pt pages: hls.js left the pinned level (after a refused segment) and was pinned back
      ...(s.levelRepins ? { levelRepins: s.levelRepins } : {}),
      // errors.validation: segments the validator refused (hash mismatch or unknown), each with
      // src (http/p2p) and the remote `peer` id that sent it
      errors: { player: s.playerErrors ?? [], segment: s.segmentErrors ?? [], tracker: s.trackerErrors ?? [], peer: (s.peerEvents ?? []).filter((e) => e.ev === 'error'), validation: s.validationErrors ?? [], page: stats?.error ? [stats.error] : [] },
      fatal: (s.playerErrors ?? []).some((e) => e.fatal),
      levels: s.levels ?? [],
      pinnedLevel: s.pinnedLevel ?? null,
      firstFrameAt: s.firstFrameAt ?? null,
      playback: s.playback ?? {},
      segmentLog: s.segmentLog ?? [],
      chunkLog: s.chunkLog ?? [],
      peerEvents: s.peerEvents ?? [],
      // data channels open, as the runner heard of them (`ms` on the tracker's clock)
      connects: b.events.filter((e) => e.ev === 'peer-connect').map(({ peer, type, ms }) => ({ peer, type, ms }))
    })
  }
  return per
}

function writeResult (per, extra = {}) {
  readTrackerRecord()
  const result = {
    startedAt: new Date(t0).toISOString(),
    elapsedS: Number(secs()),
    versions,
    chromium: sharedBrowser?.version?.() ?? browsers[0]?.context?.browser?.()?.version?.() ?? null,
    options: { STREAM, PLAYER, BROWSERS, PML, LEVEL, CORE, HLS, UNTIL_P2P, DURATION, MODE, LIVE_WINDOW, external: opts.external, externalAfterBrowser: opts.late, WAIT_EXTERNAL, SHA: SHA_URL, LIARS: [...LIARS], TRACKER_PATH, trackerCmd: opts['tracker-cmd'] ?? null },
    trackerUrl: TRACKER_URL,
    originUrl: ORIGIN,
    streamUrl: STREAM_URL,
    browsers: per,
    externals: externals.map(({ index, cmd, pid, startedAt, exit, log: l }) => ({ index, cmd, pid, startedAt, exit, log: l })),
    tracker: {
      announces,
      events: trackerEvents,
      violations: trackerViolations,
      infoHashes: [...new Set(announces.map((a) => a.info_hash))],
      infoHashesHex: [...new Set(announces.map((a) => a.info_hash_hex))],
      // announcers that are not one of our browsers: the external peers (element)
      otherPeerIds: [...new Set(announces.map((a) => a.peer_id))].filter((id) => !per.some((b) => Object.values(b.ownPeerIds).includes(id))),
      // where this section comes from: 'run.mjs' (our tracker), a --tracker-cmd's record file, or
      // null (a --tracker-cmd without one); then what only a PeerTube tracker does: rejected
      // announces {t, conn, ip, info_hash, info_hash_hex, peer_id, reason}, 403'd upgrades of
      // blocked IPs {t, ip, url}, upgrades on other paths {t, ip, url}, its whitelist {era, master,
      // count, blockMs, hashes: [{era, i, swarm, info_hash_hex}]}
      ...trackerExtra
    },
    // every browser's own peer ids -> its label (to read peer ids in segment logs and errors)
    peerLabels: Object.fromEntries(per.flatMap((b) => Object.values(b.ownPeerIds).map((id) => [id, b.label]))),
    originBytes,
    infraError,
    ...extra
  }
  fs.writeFileSync(path.join(OUT, 'result.json'), JSON.stringify(result, null, 1))
  return result
}

finishing = true
// Browser stats first (pages must be alive), then stop everything so external exits are known.
const per = await collectBrowsers()
sampleUdpDrops()
clearInterval(udpSampler)
const udp = { counters: udpCounters(), sockets: Object.values(udpDrops) }
await stopAll()
clearTimeout(hardDeadline)
const result = writeResult(per, { udp })

// ------------------------------------------------------------------ table
const mb = (n) => (n / 1e6).toFixed(2)
const rows = [['browser', 'pml', 'http MB', 'p2p MB', 'up MB', 'p2p %', 'segs h/p', 'peers', 'from peers (MB)', 'errors']]
for (const b of result.browsers) {
  const tot = b.httpBytes + b.p2pBytes
  const errs = b.errors.player.length + b.errors.segment.length + b.errors.peer.length + b.problems.length
  rows.push([b.label, b.pml, mb(b.httpBytes), mb(b.p2pBytes), mb(b.uploadBytes), tot ? (100 * b.p2pBytes / tot).toFixed(1) : '-',
    `${b.segments?.http ?? 0}/${b.segments?.p2p ?? 0}`, String(b.peersSeen.length),
    Object.entries(b.downloadedFromPeer).map(([p, n]) => `${p}:${mb(n)}`).join(' ') || '-', String(errs)])
}
const w = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)))
for (const r of rows) console.log(r.map((c, k) => c.padEnd(w[k])).join('  '))
for (const b of result.browsers) {
  if (b.validation) {
    const from = {}
    for (const e of b.errors.validation) { const k = result.peerLabels[e.peer] ?? e.peer ?? '?'; from[k] = (from[k] || 0) + 1 }
    console.log(`${b.label}: validator ok http/p2p ${b.validation.ok.http}/${b.validation.ok.p2p}, refused http/p2p ${b.validation.failed.http}/${b.validation.failed.p2p}${Object.keys(from).length ? ' (from ' + Object.entries(from).map(([k, n]) => `${k}: ${n}`).join(', ') + ')' : ''}`)
  }
  if (b.liarStats) console.log(`${b.label}: liar, garbled ${b.liarStats.chunks} chunks / ${mb(b.liarStats.bytes)} MB uploaded`)
}
if (result.tracker.rejections?.length || result.tracker.blocked?.length) console.log(`tracker: rejected ${result.tracker.rejections.map((r) => `${r.ip} ${r.info_hash_hex}`).join(', ') || 'none'}; blocked upgrades ${result.tracker.blocked.length}`)
console.log(`tracker: ${result.tracker.announces.length} announces; info_hashes ${result.tracker.infoHashes.map(printable).join(' ')}; externals ${result.externals.length}; ${result.elapsedS}s`)
console.log(`udp: RcvbufErrors ${result.udp.counters?.RcvbufErrors ?? '?'}; drops ${result.udp.sockets.map((d) => `${d.owner ?? '?'} :${d.port} ${d.drops} (${d.firstAt}-${d.lastAt ?? d.firstAt}s)`).join(', ') || 'none'}`)
console.log(`INTEROP_RESULT ${path.join(OUT, 'result.json')}`)
process.exit(infraError ? 3 : 0)
