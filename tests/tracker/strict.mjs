#!/usr/bin/env node
// A strict WebTorrent tracker for tests: it relays offers and answers like any WebTorrent
// tracker, and enforces at once every rule the trackers people deploy enforce (issue 14; the
// rules are in rules.mjs: aquatic_ws's sizes, peer ids, offer count and id strings, wt-tracker's
// and OpenWebTorrent's events, answers, numwant and Origin, and nothing the WebTorrent protocol
// does not define). A peer id seen on a new connection drops the old one (wt-tracker). Every
// breach is one `VIOLATION` line; a client that behaves produces none. Peers that do not re-announce within `evict` are dropped from their swarms, as
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

const { MAX_MESSAGE, MAX_OFFERS, hex, id20, socketState, checkOpen, checkMessage } =
  await import(path.join(here, 'rules.mjs'))

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

// `m` passed the rules (rules.mjs); this is what any WebTorrent tracker does with it.
function onAnnounce (socket, conn, m) {
  if (mode === 'fail') {
    return send(socket, { action: 'announce', 'failure reason': 'failing on purpose', info_hash: m.info_hash })
  }
  const swarm = swarmOf(m.info_hash)
  const known = swarm.get(m.peer_id)
  if (known && known.socket !== socket) {
    // The same peer on a new connection: the old one is dropped (wt-tracker).
    known.socket.state.peers.delete(m.info_hash)
  }
  if (m.answer !== undefined) {
    const to = swarm.get(m.to_peer_id)
    // An answer whose offerer left is dropped, as every tracker does.
    if (to) send(to.socket, { action: 'announce', answer: m.answer, offer_id: m.offer_id, peer_id: m.peer_id, info_hash: m.info_hash })
    if (swarm.size === 0) swarms.delete(m.info_hash)
    return
  }
  const response = () => send(socket, {
    action: 'announce',
    interval: Math.max(1, Math.ceil(intervalMs / 1000)),
    info_hash: m.info_hash,
    complete: 0,
    incomplete: swarms.get(m.info_hash)?.size ?? 0
  })
  if (m.event === 'stopped') {
    out(`EVENT stop ${hex(m.info_hash)} ${hex(m.peer_id)}`)
    leave(m.info_hash, m.peer_id)
    return response()
  }
  out(`EVENT ${m.event === 'started' ? 'start' : m.event === 'completed' ? 'complete' : 'update'} ${hex(m.info_hash)} ${hex(m.peer_id)}`)
  swarm.set(m.peer_id, { socket, conn, seen: Date.now() })
  response()
  if (!Array.isArray(m.offers) || !Number.isInteger(m.numwant)) return
  const others = [...swarm.entries()].filter(([id]) => id !== m.peer_id)
  others.sort(() => Math.random() - 0.5)
  const offers = m.offers.slice(0, Math.min(MAX_OFFERS, m.numwant))
  for (let i = 0, k = 0; i < offers.length && k < others.length; i++) {
    const o = offers[i]
    if (!id20(o?.offer_id) || o?.offer?.type !== 'offer') continue
    send(others[k++][1].socket, { action: 'announce', offer: o.offer, offer_id: o.offer_id, peer_id: m.peer_id, info_hash: m.info_hash })
  }
}

function onScrape (socket, m) {
  const files = {}
  for (const h of m.info_hash === undefined ? [] : [].concat(m.info_hash)) {
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
  // Larger than the rule (rules.mjs flags > 64 KiB), so that an oversized message is seen
  // and reported rather than ending the socket with only an error.
  maxPayload: 4 * MAX_MESSAGE,
  perMessageDeflate: false,
  // denyEmptyOrigin: a client without an Origin header is refused at the upgrade.
  verifyClient: (info, cb) => {
    const bad = checkOpen(info.origin)
    for (const [rule, detail] of bad) violation(rule, 0, detail)
    if (bad.length) return cb(false, 403, 'Origin required')
    cb(true)
  }
})

wss.on('connection', socket => {
  const conn = ++conns
  socket.state = socketState() // info_hash -> our peer id on this socket
  out(`OPEN ${conn}`)
  socket.on('message', (data, isBinary) => {
    out(`IN ${conn} ${String(data).replace(/\n/g, '\\n')}`)
    const { m, violations, verdict } = checkMessage(socket.state, data, isBinary)
    for (const [rule, detail] of violations) violation(rule, conn, detail)
    if (verdict === 'close') return socket.close(1008, 'rule broken')
    if (verdict === 'fail') {
      return send(socket, { action: 'announce', 'failure reason': 'invalid event', info_hash: m.info_hash })
    }
    if (verdict !== 'ok') return
    if (m.action === 'scrape') onScrape(socket, m)
    else onAnnounce(socket, conn, m)
  })
  socket.on('error', err => out(`ERROR ${conn} ${err?.message || err}`))
  socket.on('close', () => {
    out(`CLOSE ${conn}`)
    for (const [infoHash, peerId] of socket.state.peers) {
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
