#!/usr/bin/env node
// Real WebTorrent tracker for tests/tracker.rs: bittorrent-tracker 11.2.3's Server, WebSocket
// only, on 127.0.0.1. Install once with `npm ci --ignore-scripts --prefix tests/tracker`.
//
// Usage: node tests/tracker/server.mjs [PORT|0] [INTERVAL_MS]
// Prints one line per fact on stdout, for the test to assert on:
//   LISTENING <port>
//   OPEN <conn>                    a WebSocket connected
//   IN <conn> <raw JSON>           a message from a client, verbatim
//   EVENT <start|update|stop|complete> <info_hash> <peer_id>   (binary ids printed as hex)
//   WARNING <message>              the server rejected something
//   CLOSE <conn>
//
// server.js is imported by path: the package entry also loads the WebRTC client, whose native
// addon is not installed with --ignore-scripts (and the CLI crashes for the same reason).
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const { default: Server } = await import(path.join(here, 'node_modules/bittorrent-tracker/server.js'))

const port = Number(process.argv[2] || 0)
const intervalMs = Number(process.argv[3] || 10 * 60 * 1000)
const out = line => process.stdout.write(line + '\n')

const server = new Server({ http: false, udp: false, ws: true, stats: false, interval: intervalMs })

let conns = 0
const origOnConn = server.onWebSocketConnection.bind(server)
server.onWebSocketConnection = (socket, opts) => {
  const conn = ++conns
  out(`OPEN ${conn}`)
  socket.on('message', data => out(`IN ${conn} ${String(data).replace(/\n/g, '\\n')}`))
  socket.on('close', () => out(`CLOSE ${conn}`))
  return origOnConn(socket, opts)
}

for (const ev of ['start', 'update', 'complete', 'stop']) {
  // The server passes info_hash/peer_id as hex already.
  server.on(ev, (_addr, params) => out(`EVENT ${ev} ${params?.info_hash} ${params?.peer_id}`))
}
server.on('warning', err => out(`WARNING ${err?.message || err}`))
server.on('error', err => out(`ERROR ${err?.message || err}`))

server.listen(port, '127.0.0.1', () => out(`LISTENING ${server.ws.address().port}`))

const stop = () => server.close(() => process.exit(0))
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
// Never outlive the test that spawned us (stdin is a pipe the test holds).
process.stdin.on('end', () => process.exit(0))
process.stdin.resume()
