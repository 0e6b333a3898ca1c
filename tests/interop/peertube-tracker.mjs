#!/usr/bin/env node
// A PeerTube instance's WebTorrent tracker, as `server/core/controllers/tracker.ts` runs it:
// `@peertube/bittorrent-tracker-server` 11.1.2 with `{http: false, udp: false, ws: false, filter}`
// behind a `ws` WebSocketServer({noServer: true}) that takes the HTTP upgrade only for the exact
// URL `/tracker/socket` (no query string; other paths are left hanging, as PeerTube leaves them
// to Socket.IO), sets `ws.ip` from the socket, and a filter that lets through only the info-hashes
// of the video's streaming playlist. An unknown info-hash gets a failure reason, its socket is
// closed and the IP is blocked for 3 minutes: a blocked IP's upgrades get `HTTP/1.1 403`.
// (PeerTube's per-IP announce rate limit is off by default and not emulated.)
//
//   node peertube-tracker.mjs --era fork|pml22[,..] [--master URL] [--count N] [--port P]
//        [--out DIR] [--record FILE] [--block-ms MS] [--allow HEX,...] [--other-paths hang|destroy]
//
// --era fork   whitelist sha1("2" + MASTER + "+V" + i), hex, i = 0..count-1 (PeerTube <= 7.0:
//              P2P_MEDIA_LOADER_PEER_VERSION 2, the @peertube/p2p-media-loader fork)
// --era pml22  the P2P Media Loader 2.2 info-hash of "v2-" + MASTER + "-main-" + i (PeerTube >= 7.1):
//              base64(md5(s)[1..16]), 20 ASCII chars, as the server's bin2hex sees it
// --master     the master playlist URL = the swarm id (default $PT_MASTER_URL, else $STREAM_URL:
//              run.mjs starts a --tracker-cmd once its origin listens and passes STREAM_URL)
// --count      files of the video (default: the #EXT-X-STREAM-INF lines of the master, fetched)
// --port       default $TRACKER_PORT (run.mjs sets it), else 8000; listens on 127.0.0.1 only
// --out        default $INTEROP_OUT, else the current directory
// --record     the record file (default OUT/tracker-record.jsonl), one JSON object per line, each
//              with `wall` (Date.now()) and `dir`:
//                listening {port, era, master, whitelist: [{era, i, swarm, info_hash_hex}]}
//                open {conn, ip, origin}  in {conn, raw, binary}  out {conn, raw}  close {conn, code}
//                event {event: start|update|stop|complete, info_hash_hex, peer_id_hex}
//                reject {conn, ip, info_hash_hex, peer_id_hex, reason}   (filter refused it)
//                blocked {ip, url}     (403 on upgrade)   ignored {ip, url}   (upgrade, other path)
//              run.mjs --tracker-record reads it into result.json's `tracker` section.
// --block-ms   how long a rejected IP stays blocked (180000, PeerTube's BLOCK_IP_LIFETIME; 0 = never)
// --allow      extra whitelisted info-hashes (40 hex digits)
// stdout: `LISTENING <port>`, `WHITELIST <era> <i> <hex>`, `REJECT <ip> <hex>`, `BLOCKED <ip>`.
import crypto from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const NM = path.join(HERE, 'node_modules')
const { default: Server } = await import(path.join(NM, '@peertube/bittorrent-tracker-server/index.js'))
const { WebSocketServer } = await import(path.join(NM, 'ws/wrapper.mjs'))

const argv = process.argv.slice(2)
const o = {}
for (let i = 0; i < argv.length; i++) {
  if (!argv[i].startsWith('--') || i + 1 >= argv.length) { console.error(`bad argument ${argv[i]} (see the header of ${fileURLToPath(import.meta.url)})`); process.exit(2) }
  o[argv[i].slice(2)] = argv[++i]
}
const ERAS = String(o.era ?? process.env.PT_ERA ?? 'fork').split(',')
for (const e of ERAS) if (!['fork', 'pml22'].includes(e)) { console.error(`--era: fork or pml22, not ${e}`); process.exit(2) }
const MASTER = o.master ?? process.env.PT_MASTER_URL ?? process.env.STREAM_URL
if (!MASTER) { console.error('--master URL (or PT_MASTER_URL / STREAM_URL) is required'); process.exit(2) }
const PORT = Number(o.port ?? process.env.TRACKER_PORT ?? 8000)
const OUT = o.out ?? process.env.INTEROP_OUT ?? '.'
const RECORD = o.record ?? path.join(OUT, 'tracker-record.jsonl')
const BLOCK_MS = Number(o['block-ms'] ?? 180000)
const OTHER = o['other-paths'] ?? 'hang'
let COUNT = o.count !== undefined ? Number(o.count) : null
if (COUNT === null) {
  // PeerTube whitelists one hash per HLS file; the master lists one STREAM-INF per video file.
  const res = await fetch(MASTER)
  if (!res.ok) { console.error(`GET ${MASTER}: ${res.status}`); process.exit(2) }
  COUNT = (await res.text()).split(/\r?\n/).filter((l) => l.startsWith('#EXT-X-STREAM-INF')).length
}

const rec = fs.createWriteStream(RECORD, { flags: 'a' })
const note = (m) => rec.write(JSON.stringify({ wall: Date.now(), ...m }) + '\n')
const say = (l) => process.stdout.write(l + '\n')

// ------------------------------------------------------------------ the whitelist
const sha1hex = (s) => crypto.createHash('sha1').update(s).digest('hex')
const pml22 = (s) => Buffer.from(crypto.createHash('md5').update(s).digest().subarray(1, 16).toString('base64'), 'latin1').toString('hex')
const whitelist = []
for (const era of ERAS) {
  for (let i = 0; i < COUNT; i++) {
    const swarm = era === 'fork' ? `2${MASTER}+V${i}` : `v2-${MASTER}-main-${i}`
    whitelist.push({ era, i, swarm, info_hash_hex: era === 'fork' ? sha1hex(swarm) : pml22(swarm) })
  }
}
for (const h of String(o.allow ?? '').split(',').filter(Boolean)) whitelist.push({ era: 'extra', i: null, swarm: null, info_hash_hex: h.toLowerCase() })
const allowed = new Set(whitelist.map((w) => w.info_hash_hex))
for (const w of whitelist) say(`WHITELIST ${w.era} ${w.i} ${w.info_hash_hex}`)

// ------------------------------------------------------------------ tracker.ts
const blockedIPs = new Map() // ip -> blocked until (ms)
const isBlocked = (ip) => {
  const until = blockedIPs.get(ip)
  if (until === undefined) return false
  if (BLOCK_MS > 0 && Date.now() > until) { blockedIPs.delete(ip); return false }
  return true
}

const trackerServer = new Server({
  http: false,
  udp: false,
  ws: false,
  filter (infoHash, params, cb) {
    if (allowed.has(infoHash)) return cb()
    const ip = params.ip
    cb(new Error(`Unknown infoHash ${infoHash} requested by ip ${ip}`))
    note({ dir: 'reject', conn: params.socket?.conn ?? null, ip, info_hash_hex: infoHash, peer_id_hex: params.peer_id, reason: 'unknown infoHash' })
    say(`REJECT ${ip} ${infoHash}`)
    // Close the socket and block the IP for a while (setTimeout: after the filter's answer).
    if (params.type === 'ws') {
      blockedIPs.set(ip, Date.now() + BLOCK_MS)
      setTimeout(() => params.socket.close(), 0)
    }
  }
})
trackerServer.on('warning', (err) => note({ dir: 'warning', msg: String(err?.message ?? err) }))
trackerServer.on('error', (err) => note({ dir: 'error', msg: String(err?.message ?? err) }))
for (const ev of ['start', 'update', 'complete', 'stop']) {
  // The server hands these over as hex (info_hash, peer_id).
  trackerServer.on(ev, (_peerId, p) => note({ dir: 'event', event: ev, info_hash_hex: p?.info_hash ?? null, peer_id_hex: p?.peer_id ?? null }))
}

const server = http.createServer((_req, res) => { res.writeHead(404); res.end() })
const wss = new WebSocketServer({ noServer: true })
let conns = 0
wss.on('connection', (ws, req) => {
  ws.ip = req.socket.remoteAddress
  const conn = (ws.conn = ++conns)
  note({ dir: 'open', conn, ip: ws.ip, origin: req.headers.origin ?? null })
  // Registered before the tracker's own listener: the record has each message before its effects.
  ws.on('message', (data, isBinary) => note({ dir: 'in', conn, raw: String(data), binary: isBinary }))
  ws.on('close', (code) => note({ dir: 'close', conn, code }))
  const send = ws.send.bind(ws)
  ws.send = (data, ...rest) => { note({ dir: 'out', conn, raw: String(data) }); return send(data, ...rest) }
  trackerServer.onWebSocketConnection(ws)
})
server.on('upgrade', (req, socket, head) => {
  const ip = req.socket.remoteAddress
  if (req.url === '/tracker/socket') {
    if (isBlocked(ip)) {
      note({ dir: 'blocked', ip, url: req.url })
      say(`BLOCKED ${ip}`)
      socket.write('HTTP/1.1 403 Forbidden\r\n\r\n')
      socket.destroy()
      return
    }
    return wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req))
  }
  // PeerTube leaves other upgrades to Socket.IO: here nobody answers them.
  note({ dir: 'ignored', ip, url: req.url })
  if (OTHER === 'destroy') socket.destroy()
})
server.listen(PORT, '127.0.0.1', () => {
  const port = server.address().port
  note({ dir: 'listening', port, era: ERAS.join(','), master: MASTER, count: COUNT, blockMs: BLOCK_MS, whitelist })
  say(`LISTENING ${port}`)
})
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => rec.end(() => process.exit(0)))
