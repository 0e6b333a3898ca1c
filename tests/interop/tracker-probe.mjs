#!/usr/bin/env node
// A bare WebTorrent tracker client for checking a tracker's rules (peertube-tracker.mjs's
// whitelist, socket close and IP block): one `started` announce of one info-hash, no offers, then
// what happened; optionally a second connection from the same address.
//   node tracker-probe.mjs [--url WS_URL] [--hash HEX40|random] [--local ADDR] [--again 1]
//                          [--wait-ms MS]
// --url     default $TRACKER_URL (run.mjs sets it for --external commands)
// --hash    the info-hash, 40 hex digits, sent as a 20-char latin1 string (random by default)
// --local   the local address to connect from (e.g. 127.0.0.2: any 127/8 address works on
//           loopback, so a blocked probe does not block the browsers' 127.0.0.1)
// --again 1 then connect once more from the same address (a blocked IP gets HTTP 403)
// --wait-ms how long to wait for an answer or a close (3000)
// stdout: one JSON object per step: {step: "connect"|"again", url, local, status (HTTP status
// when the upgrade was refused), open, response (the tracker's answer), failure (its failure
// reason), closed (close code), hung (no upgrade answer within wait-ms), ms}; last line
// `PROBE_DONE`.
import crypto from 'node:crypto'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const { WebSocket } = await import(path.join(HERE, 'node_modules/ws/wrapper.mjs'))
const argv = process.argv.slice(2)
const o = {}
for (let i = 0; i + 1 < argv.length; i += 2) o[argv[i].replace(/^--/, '')] = argv[i + 1]
const url = o.url ?? process.env.TRACKER_URL
if (!url) { console.error('--url or TRACKER_URL'); process.exit(2) }
const hash = !o.hash || o.hash === 'random' ? crypto.randomBytes(20).toString('hex') : o.hash.toLowerCase()
const WAIT = Number(o['wait-ms'] ?? 3000)
const peerId = '-PR0001-' + crypto.randomBytes(6).toString('hex')

function probe (step, announce) {
  return new Promise((resolve) => {
    const t0 = Date.now()
    const r = { step, url, local: o.local ?? null, hash: announce ? hash : undefined }
    const done = () => { clearTimeout(timer); r.ms = Date.now() - t0; resolve(r) }
    const ws = new WebSocket(url, { localAddress: o.local, handshakeTimeout: WAIT })
    const timer = setTimeout(() => { if (!r.open) r.hung = true; try { ws.terminate() } catch {} ; done() }, WAIT + 500)
    ws.on('unexpected-response', (_req, res) => { r.status = res.statusCode; done() })
    ws.on('error', (e) => { r.error = e.message; if (/time(d)? ?out/i.test(e.message)) r.hung = true; done() })
    ws.on('open', () => {
      r.open = true
      if (!announce) { ws.close(); return }
      ws.send(JSON.stringify({
        action: 'announce', event: 'started', numwant: 0, uploaded: 0, downloaded: 0, left: 1,
        info_hash: Buffer.from(hash, 'hex').toString('latin1'), peer_id: peerId
      }))
    })
    ws.on('message', (d) => {
      let m = null
      try { m = JSON.parse(String(d)) } catch {}
      if (m?.['failure reason']) r.failure = m['failure reason']
      else r.response = m
      // A tracker that accepts keeps the socket open: that is the answer.
      if (!r.failure) { r.closedByUs = true; ws.close() }
    })
    ws.on('close', (code) => { r.closed = code; done() })
  })
}

console.log(JSON.stringify(await probe('connect', true)))
if (o.again === '1') console.log(JSON.stringify(await probe('again', false)))
console.log('PROBE_DONE')
