// The rules of the WebTorrent trackers people deploy, as one check per client message, shared by
// the strict tracker (strict.mjs, which enforces them) and the interop runner
// (../interop/run.mjs, which records what real browsers and our elements send through
// bittorrent-tracker and counts every breach):
//   aquatic_ws      frames <= 16 KiB (we check the message: our client sends one frame per
//                   message), messages <= 64 KiB; one peer id per info hash per socket; <= 10
//                   offers per announce; info_hash / peer_id / offer_id / to_peer_id strings of
//                   20 chars <= U+00FF;
//   wt-tracker,     `event` absent, "started", "stopped" or "completed" ("update" is refused);
//   OpenWebTorrent  answers carry no `event`; offers only with an integer `numwant`; <= 20
//                   offers; no connection without an Origin header (denyEmptyOrigin);
// and whatever else the WebTorrent protocol does not define (unknown actions or keys, non-JSON,
// binary frames).

export const MAX_FRAME = 16 * 1024
export const MAX_MESSAGE = 64 * 1024
export const MAX_OFFERS = 10
const EVENTS = new Set(['started', 'stopped', 'completed'])
const ANNOUNCE_KEYS = new Set(['action', 'info_hash', 'peer_id', 'numwant', 'uploaded', 'downloaded',
  'left', 'event', 'offers', 'answer', 'to_peer_id', 'offer_id', 'trackerid'])
const SCRAPE_KEYS = new Set(['action', 'info_hash'])

export const hex = (s) => Buffer.from(s, 'latin1').toString('hex')
export const id20 = (s) => typeof s === 'string' && s.length === 20 && [...s].every((c) => c.charCodeAt(0) <= 0xff)

/// Per-socket state the rules need: the peer id used for each info hash.
export function socketState () {
  return { peers: new Map() }
}

/// Checks one connection's `Origin` header: the violations (maybe none).
export function checkOpen (origin) {
  return origin ? [] : [['origin', 'no Origin header']]
}

/// Checks one message of a socket. Returns `{ m, violations, verdict }`: the parsed message (or
/// null), the rules it broke as [rule, detail] pairs, and what a strict tracker does with it:
/// 'ok' (process it), 'fail' (answer with a failure reason), 'drop' (ignore it) or 'close'
/// (close the socket).
export function checkMessage (state, data, isBinary) {
  const violations = []
  const v = (rule, detail) => violations.push([rule, detail])
  const done = (m, verdict) => ({ m, violations, verdict })
  if (isBinary) {
    v('binary', `${data.length} bytes`)
    return done(null, 'drop')
  }
  const text = String(data)
  const size = Buffer.byteLength(text)
  if (size > MAX_MESSAGE) {
    // aquatic_ws closes the connection.
    v('message-size', `${size} bytes`)
    return done(null, 'close')
  }
  if (size > MAX_FRAME) v('frame-size', `${size} bytes`)
  let m
  try {
    m = JSON.parse(text)
  } catch {
    v('json', text.slice(0, 80))
    return done(null, 'close')
  }
  if (m === null || typeof m !== 'object' || Array.isArray(m)) {
    v('json', 'not an object')
    return done(null, 'drop')
  }
  if (m.action === 'scrape') {
    for (const k of Object.keys(m)) if (!SCRAPE_KEYS.has(k)) v('unknown-key', k)
    for (const h of m.info_hash === undefined ? [] : [].concat(m.info_hash)) {
      if (!id20(h)) {
        v('info_hash', JSON.stringify(h))
        return done(m, 'drop')
      }
    }
    return done(m, 'ok')
  }
  if (m.action !== 'announce') {
    v('action', JSON.stringify(m.action))
    return done(m, 'drop')
  }
  for (const k of Object.keys(m)) if (!ANNOUNCE_KEYS.has(k)) v('unknown-key', k)
  if (!id20(m.info_hash)) {
    v('info_hash', JSON.stringify(m.info_hash))
    return done(m, 'drop')
  }
  if (!id20(m.peer_id)) {
    v('peer_id', JSON.stringify(m.peer_id))
    return done(m, 'drop')
  }
  if (m.event !== undefined && !EVENTS.has(m.event)) {
    // wt-tracker and OpenWebTorrent answer with a failure and ignore the announce.
    v('event', JSON.stringify(m.event))
    return done(m, 'fail')
  }
  // One peer id per info hash per socket (aquatic_ws closes the connection).
  const mine = state.peers.get(m.info_hash)
  if (mine !== undefined && mine !== m.peer_id) {
    v('peer-id-switch', `${hex(m.info_hash)} ${hex(mine)} -> ${hex(m.peer_id)}`)
    return done(m, 'close')
  }
  if (m.event === 'stopped') state.peers.delete(m.info_hash)
  else state.peers.set(m.info_hash, m.peer_id)

  if (m.answer !== undefined) {
    if (m.event !== undefined) v('answer-event', m.event)
    if (!id20(m.to_peer_id)) {
      v('to_peer_id', JSON.stringify(m.to_peer_id))
      return done(m, 'drop')
    }
    if (!id20(m.offer_id)) {
      v('offer_id', JSON.stringify(m.offer_id))
      return done(m, 'drop')
    }
    if (typeof m.answer !== 'object' || m.answer?.type !== 'answer' || typeof m.answer.sdp !== 'string') {
      v('answer', JSON.stringify(m.answer).slice(0, 80))
      return done(m, 'drop')
    }
    if (m.offers !== undefined || m.numwant !== undefined) v('answer-fields', 'offers/numwant next to an answer')
    return done(m, 'ok')
  }
  if (m.offers !== undefined) {
    if (!Array.isArray(m.offers)) {
      v('offers', 'not an array')
    } else {
      // wt-tracker forwards offers only with an integer numwant.
      if (!Number.isInteger(m.numwant)) v('numwant', JSON.stringify(m.numwant))
      if (m.offers.length > MAX_OFFERS) v('offer-count', String(m.offers.length))
      for (const o of m.offers) {
        if (!id20(o?.offer_id) || o?.offer?.type !== 'offer' || typeof o?.offer?.sdp !== 'string') {
          v('offer', JSON.stringify(o).slice(0, 80))
        }
      }
    }
  }
  return done(m, 'ok')
}
