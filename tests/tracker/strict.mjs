#!/usr/bin/env node
// A strict WebTorrent tracker for tests: it relays offers and answers like any WebTorrent
// tracker, and enforces at once every rule the trackers people deploy enforce (issue 14):
//   aquatic_ws      frames <= 16 KiB (we check the message: our client sends one frame per
//                   message), messages <= 64 KiB; one peer id per info hash per socket; <= 10
//                   offers per announce; info_hash / peer_id / offer_id / to_peer_id strings of
//                   20 chars <= U+00FF;
//   wt-tracker,     `event` absent, "started", "stopped" or "completed" ("update" is refused);
//   OpenWebTorrent  answers carry no `event`; offers only with an integer `numwant`; <= 20
//                   offers; no connection without an Origin header (denyEmptyOrigin); a peer id
//                   seen on a new connection drops the old one;
// and refuses whatever else the WebTorrent protocol does not define (unknown actions or keys,
// non-JSON, binary frames). Every breach is one `VIOLATION` line; a client that behaves
// produces none. Peers that do not re-announce within `evict` are dropped from their swarms, as
// real trackers do (wt-tracker: 2 x interval; aquatic_ws: 1.5 x).
//
// Usage: node tests/tracker/strict.mjs [PORT|0] [INTERVAL_MS] [EVICT_MS|0] [MODE]
// MODE, for failover tests: `relay` (default), `fail` (every announce gets a failure reason,
// nothing is relayed) or `blackhole` (TCP is accepted, the WebSocket handshake never answered).
// stdout, one fact per line (the format of server.mjs, plus VIOLATION and EVICT):
//   LISTENING <port>
//   OPEN <conn> | CLOSE <conn>
//   IN <conn> <raw JSON>
//   EVENT <start|update|stop|complete> <info_hash hex> <peer_id hex>
//   VIOLATION <rule> <conn> <detail>
//   EVICT <info_hash hex> <peer_id hex>
// Needs only `ws` (installed with bittorrent-tracker: npm ci --ignore-scripts --prefix tests/tracker).
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

const here = path.dirname(fileURLToPath(import.meta.url))
const require = createRequire(path.join(here, 'node_modules/'))
const { WebSocketServer } = require('ws')

const port = Number(process.argv[2] || 0)
const intervalMs = Number(process.argv[3] || 120_000)
const evictMs = Number(process.argv[4]) || Math.round(intervalMs * 1.5)
const mode = process.argv[5] || 'relay'
const out = line => process.stdout.write(line + '\n')

const MAX_FRAME = 16 * 1024
const MAX_MESSAGE = 64 * 1024
const MAX_OFFERS = 10
const EVENTS = new Set(['started', 'stopped', 'completed'])
const ANNOUNCE_KEYS = new Set(['action', 'info_hash', 'peer_id', 'numwant', 'uploaded', 'downloaded',
  'left', 'event', 'offers', 'answer', 'to_peer_id', 'offer_id', 'trackerid'])
const SCRAPE_KEYS = new Set(['action', 'info_hash'])

const hex = s => Buffer.from(s, 'latin1').toString('hex')
const id20 = s => typeof s === 'string' && s.length === 20 && [...s].every(c => c.charCodeAt(0) <= 0xff)

// info_hash -> Map(peer_id -> { socket, conn, seen })
const swarms = new Map()
let conns = 0

function violation (rule, conn, detail) {
  out(`VIOLATION ${rule} ${conn} ${detail}`)
}

function swarmOf (infoHash) {
  let s = swarms.get(infoHash)
  if (!s) swarms.set(infoHash, (s = new Map()))
  return s
}

function leave (infoHash, peerId) {
  const s = swarms.get(infoHash)
  if (!s) return
  s.delete(peerId)
  if (s.size === 0) swarms.delete(infoHash)
}

function send (socket, msg) {
  if (socket.readyState === 1) socket.send(JSON.stringify(msg))
}

function onAnnounce (socket, conn, m) {
  if (mode === 'fail') {
    return send(socket, { action: 'announce', 'failure reason': 'failing on purpose', info_hash: m.info_hash })
  }
  for (const k of Object.keys(m)) if (!ANNOUNCE_KEYS.has(k)) violation('unknown-key', conn, k)
  if (!id20(m.info_hash)) return violation('info_hash', conn, JSON.stringify(m.info_hash))
  if (!id20(m.peer_id)) return violation('peer_id', conn, JSON.stringify(m.peer_id))
  if (m.event !== undefined && !EVENTS.has(m.event)) {
    // wt-tracker and OpenWebTorrent answer with a failure and ignore the announce.
    violation('event', conn, JSON.stringify(m.event))
    return send(socket, { action: 'announce', 'failure reason': 'invalid event', info_hash: m.info_hash })
  }
  // One peer id per info hash per socket (aquatic_ws closes the connection).
  const mine = socket.peers.get(m.info_hash)
  if (mine !== undefined && mine !== m.peer_id) {
    violation('peer-id-switch', conn, `${hex(m.info_hash)} ${hex(mine)} -> ${hex(m.peer_id)}`)
    return socket.close(1008, 'peer id changed')
  }
  socket.peers.set(m.info_hash, m.peer_id)
  const swarm = swarmOf(m.info_hash)
  const known = swarm.get(m.peer_id)
  if (known && known.socket !== socket) {
    // The same peer on a new connection: the old one is dropped (wt-tracker).
    known.socket.peers.delete(m.info_hash)
  }

  if (m.answer !== undefined) {
    if (m.event !== undefined) violation('answer-event', conn, m.event)
    if (!id20(m.to_peer_id)) return violation('to_peer_id', conn, JSON.stringify(m.to_peer_id))
    if (!id20(m.offer_id)) return violation('offer_id', conn, JSON.stringify(m.offer_id))
    if (typeof m.answer !== 'object' || m.answer?.type !== 'answer' || typeof m.answer.sdp !== 'string') {
      return violation('answer', conn, JSON.stringify(m.answer).slice(0, 80))
    }
    if (m.offers !== undefined || m.numwant !== undefined) violation('answer-fields', conn, 'offers/numwant next to an answer')
    const to = swarm.get(m.to_peer_id)
    // An answer whose offerer left is dropped, as every tracker does.
    if (to) send(to.socket, { action: 'announce', answer: m.answer, offer_id: m.offer_id, peer_id: m.peer_id, info_hash: m.info_hash })
    return
  }

  const response = () => send(socket, {
    action: 'announce',
    interval: Math.round(intervalMs / 1000),
    info_hash: m.info_hash,
    complete: 0,
    incomplete: swarms.get(m.info_hash)?.size ?? 0
  })
  if (m.event === 'stopped') {
    out(`EVENT stop ${hex(m.info_hash)} ${hex(m.peer_id)}`)
    leave(m.info_hash, m.peer_id)
    socket.peers.delete(m.info_hash)
    return response()
  }
  out(`EVENT ${m.event === 'started' ? 'start' : m.event === 'completed' ? 'complete' : 'update'} ${hex(m.info_hash)} ${hex(m.peer_id)}`)
  swarm.set(m.peer_id, { socket, conn, seen: Date.now() })
  response()

  if (m.offers === undefined) return
  if (!Array.isArray(m.offers)) return violation('offers', conn, 'not an array')
  if (!Number.isInteger(m.numwant)) {
    // wt-tracker forwards offers only with an integer numwant.
    return violation('numwant', conn, JSON.stringify(m.numwant))
  }
  if (m.offers.length > MAX_OFFERS) violation('offer-count', conn, String(m.offers.length))
  const others = [...swarm.entries()].filter(([id]) => id !== m.peer_id)
  others.sort(() => Math.random() - 0.5)
  const offers = m.offers.slice(0, Math.min(MAX_OFFERS, m.numwant))
  for (let i = 0; i < offers.length; i++) {
    const o = offers[i]
    if (!id20(o?.offer_id) || o?.offer?.type !== 'offer' || typeof o?.offer?.sdp !== 'string') {
      violation('offer', conn, JSON.stringify(o).slice(0, 80))
      continue
    }
    const peer = others[i]
    if (!peer) break
    send(peer[1].socket, { action: 'announce', offer: o.offer, offer_id: o.offer_id, peer_id: m.peer_id, info_hash: m.info_hash })
  }
}

function onScrape (socket, conn, m) {
  for (const k of Object.keys(m)) if (!SCRAPE_KEYS.has(k)) violation('unknown-key', conn, k)
  const hashes = m.info_hash === undefined ? [] : [].concat(m.info_hash)
  const files = {}
  for (const h of hashes) {
    if (!id20(h)) return violation('info_hash', conn, JSON.stringify(h))
    files[h] = { complete: 0, incomplete: swarms.get(h)?.size ?? 0, downloaded: 0 }
  }
  send(socket, { action: 'scrape', files })
}

if (mode === 'blackhole') {
  const net = await import('node:net')
  const held = []
  const server = net.createServer(socket => {
    held.push(socket)
    out(`OPEN ${++conns}`)
    socket.on('error', () => {})
  })
  server.listen(port, '127.0.0.1', () => out(`LISTENING ${server.address().port}`))
  process.stdin.on('end', () => process.exit(0))
  process.stdin.resume()
  await new Promise(() => {})
}

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port,
  maxPayload: MAX_MESSAGE,
  perMessageDeflate: false,
  // denyEmptyOrigin: a client without an Origin header is refused at the upgrade.
  verifyClient: (info, cb) => {
    if (!info.origin) {
      violation('origin', 0, 'no Origin header')
      return cb(false, 403, 'Origin required')
    }
    cb(true)
  }
})

wss.on('connection', socket => {
  const conn = ++conns
  socket.peers = new Map() // info_hash -> our peer id on this socket
  out(`OPEN ${conn}`)
  socket.on('message', (data, isBinary) => {
    const text = String(data)
    out(`IN ${conn} ${text.replace(/\n/g, '\\n')}`)
    if (isBinary) return violation('binary', conn, `${data.length} bytes`)
    if (data.length > MAX_FRAME) violation('frame-size', conn, `${data.length} bytes`)
    let m
    try {
      m = JSON.parse(text)
    } catch {
      violation('json', conn, text.slice(0, 80))
      return socket.close(1003, 'not JSON')
    }
    if (m === null || typeof m !== 'object' || Array.isArray(m)) return violation('json', conn, 'not an object')
    if (m.action === 'announce') onAnnounce(socket, conn, m)
    else if (m.action === 'scrape') onScrape(socket, conn, m)
    else violation('action', conn, JSON.stringify(m.action))
  })
  socket.on('error', err => out(`ERROR ${conn} ${err?.message || err}`))
  socket.on('close', () => {
    out(`CLOSE ${conn}`)
    for (const [infoHash, peerId] of socket.peers) {
      if (swarms.get(infoHash)?.get(peerId)?.socket === socket) leave(infoHash, peerId)
    }
  })
})

// Peers that stopped announcing leave their swarms.
setInterval(() => {
  const now = Date.now()
  for (const [infoHash, swarm] of swarms) {
    for (const [peerId, p] of swarm) {
      if (now - p.seen > evictMs) {
        out(`EVICT ${hex(infoHash)} ${hex(peerId)}`)
        leave(infoHash, peerId)
      }
    }
  }
}, Math.max(100, Math.min(5000, evictMs / 4))).unref()

wss.on('listening', () => out(`LISTENING ${wss.address().port}`))
wss.on('error', err => {
  out(`ERROR ${err?.message || err}`)
  process.exit(1)
})

const stop = () => wss.close(() => process.exit(0))
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
// Never outlive the test that spawned us (stdin is a pipe the test holds).
process.stdin.on('end', () => process.exit(0))
process.stdin.resume()
