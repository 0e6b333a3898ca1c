// What every interop peer page (hls.js in page.mjs, Shaka in shaka.mjs, PML 0.6 in page06.mjs)
// reports, in one place so run.mjs reads them all the same way. Everything the runner asserts on
// is kept in window.__stats; milestones are also pushed to the runner through
// window.__interopEvent (a Playwright binding) so it can wait on events, not sleeps.
const t0 = Date.now();
export const now = () => Date.now() - t0;
const MAX_LOG = 2000;

export const S = (window.__stats = {
  label: "?",
  player: null, // { name, version }
  bytes: { http: 0, p2p: 0, upload: 0 },
  // remote peer id -> bytes it supplied / we sent it (from onChunkDownloaded/onChunkUploaded)
  downloadedFromPeer: {},
  uploadedToPeer: {},
  segments: { http: 0, p2p: 0 },
  chunkLog: [],
  segmentLog: [],
  segmentErrors: [],
  peerEvents: [],
  peersEverConnected: [],
  trackerErrors: [],
  // hls.js ERROR events / Shaka "error" events: { t, type, details, fatal }
  playerErrors: [],
  levels: [],
  pinnedLevel: null,
  firstFrameAt: null,
  playback: {},
});
export const push = (arr, v) => arr.length < MAX_LOG && arr.push(v);
export const report = (ev) => {
  try {
    window.__interopEvent?.({ t: now(), ...ev });
  } catch {}
};

/// A player error: kept, and reported to the runner when fatal.
export function playerError(rec) {
  rec = { t: now(), ...rec };
  push(S.playerErrors, rec);
  if (rec.fatal) report({ ev: "fatal", ...rec });
}

/// The P2P Media Loader core events (the same CoreEventMap in 2.2 and 2.3, forwarded unchanged by
/// HlsJsP2PEngine and ShakaP2PEngine) -> counters and logs.
export function hookEngine(e) {
  e.addEventListener("onChunkDownloaded", (n, source, peerId) => {
    S.bytes[source] += n;
    if (peerId) S.downloadedFromPeer[peerId] = (S.downloadedFromPeer[peerId] || 0) + n;
    // compact: [ms since start, bytes, "http"|"p2p", remote peer id or null]
    if (S.chunkLog.length < 50000) S.chunkLog.push([now(), n, source, peerId ?? null]);
  });
  e.addEventListener("onChunkUploaded", (n, peerId) => {
    S.bytes.upload += n;
    S.uploadedToPeer[peerId] = (S.uploadedToPeer[peerId] || 0) + n;
  });
  e.addEventListener("onSegmentLoaded", (d) => {
    S.segments[d.downloadSource] += 1;
    const rec = {
      t: now(),
      url: d.segmentUrl.replace(location.origin, ""),
      bytes: d.bytesLength,
      src: d.downloadSource,
      peer: d.peerId ?? null,
      type: d.streamType,
    };
    push(S.segmentLog, rec);
    report({ ev: "segment", ...rec });
  });
  e.addEventListener("onSegmentError", (d) => {
    const rec = {
      t: now(),
      type: d.error?.type,
      msg: String(d.error?.message || ""),
      src: d.downloadSource,
      peer: d.peerId ?? null,
      url: d.segment?.url?.replace(location.origin, ""),
    };
    push(S.segmentErrors, rec);
    report({ ev: "segment-error", ...rec });
    // P2P Media Loader 2.x: a segment its validateP2PSegment/validateHTTPSegment refused
    // (peertube-validator.mjs recorded it without a peer id: the validator is not told).
    if (/segment-validation-failed/.test(rec.type ?? "") && S.validationErrors) {
      const v = [...S.validationErrors].reverse().find((x) => x.peer === null && x.src === rec.src && !x.matched);
      if (v) { v.peer = rec.peer; v.matched = true; v.type = rec.type; }
      else push(S.validationErrors, { t: rec.t, src: rec.src, peer: rec.peer, file: rec.url?.split("/").pop(), type: rec.type, msg: rec.msg });
    }
  });
  e.addEventListener("onPeerConnect", (d) => {
    if (!S.peersEverConnected.includes(d.peerId)) S.peersEverConnected.push(d.peerId);
    push(S.peerEvents, { t: now(), ev: "connect", peer: d.peerId, type: d.streamType });
    report({ ev: "peer-connect", peer: d.peerId, type: d.streamType });
  });
  e.addEventListener("onPeerClose", (d) => {
    push(S.peerEvents, { t: now(), ev: "close", peer: d.peerId, type: d.streamType });
  });
  e.addEventListener("onPeerError", (d) => {
    const msg = String(d.error?.message || d.error);
    push(S.peerEvents, { t: now(), ev: "error", peer: d.peerId, type: d.streamType, msg });
  });
  e.addEventListener("onTrackerError", (d) => {
    push(S.trackerErrors, { t: now(), type: d.streamType, msg: String(d.error?.message || d.error) });
  });
}

/// First "playing" of the media element -> firstFrameAt + a "playing" event.
export function watchPlaying(video) {
  video.addEventListener("playing", () => {
    if (S.firstFrameAt === null) {
      S.firstFrameAt = now();
      report({ ev: "playing" });
    }
  });
}

/// Index of the level to pin among `levels` ({ bitrate }) for ?level= max | min | auto | <n>
/// (-1 = auto, no pin).
export function pickLevel(levels, param) {
  const by = (better) => levels.reduce((b, l, i) => (better(l.bitrate, levels[b].bitrate) ? i : b), 0);
  if (param === "max") return by((a, b) => a > b);
  if (param === "min") return by((a, b) => a < b);
  if (param === "auto") return -1;
  return Number(param);
}

/// A 0.6-family remote peer id as the 20-char peer id string (`-WW0006-...`): the libraries hand
/// them over as 40 hex chars (bittorrent-tracker's binaryToHex). Anything else unchanged; null for
/// none.
export const peerId20 = (h) => (typeof h === "string" && /^[0-9a-f]{40}$/i.test(h)
  ? String.fromCharCode(...h.match(/../g).map((x) => parseInt(x, 16)))
  : h ?? null);

/// P2P Media Loader 0.6 (`p2pml.hlsjs.Engine`, a Node-style EventEmitter) seen through the 2.x
/// event API above, so hookEngine counts it the same way; also the PeerTube fork
/// (@peertube/p2p-media-loader-hlsjs 1.0.x: the same events, piece_bytes_* with the segment as their
/// second argument, told apart at run time). 0.6 events: piece_bytes_downloaded
/// (method, bytes, peerId?), piece_bytes_uploaded (method, bytes, peerId), segment_loaded
/// (segment, peerId?: absent = HTTP), segment_error (segment, error, peerId?), peer_connect
/// ({id, remoteAddress}), peer_close (peerId). Remote peer ids come as 40 hex chars
/// (bittorrent-tracker 9's binaryToHex); they are turned back into the 20-char peer id string
/// (`-WW0006-...`), as the 2.x pages report them and as the runner's ownPeerIds hold them.
/// 0.6 has no peer/tracker error events: peer errors are not seen; tracker errors are taken
/// from the engine's P2P manager (not public API) when it is there. Each segment's stream swarm
/// id (the segment id without its "+<sequence>") is kept in S.swarmIds.
export function hookEngine06(engine) {
  const peer = (h) => peerId20(h) ?? undefined;
  const type = (segment) => segment?.streamId ?? null;
  S.swarmIds = [];
  const on = {
    // 0.6.2: (method, bytes, peerId); the PeerTube fork: (method, segment, bytes, peerId).
    onChunkDownloaded: (fn) => engine.on("piece_bytes_downloaded", (method, a, b, c) =>
      typeof a === "object" ? fn(b, method, peer(c)) : fn(a, method, peer(b))),
    onChunkUploaded: (fn) => engine.on("piece_bytes_uploaded", (_method, a, b, c) =>
      typeof a === "object" ? fn(b, peer(c)) : fn(a, peer(b))),
    onSegmentLoaded: (fn) => engine.on("segment_loaded", (segment, id) => {
      const swarm = String(segment.id).replace(/\+[^+]*$/, "");
      if (!S.swarmIds.includes(swarm)) S.swarmIds.push(swarm);
      fn({
        segmentUrl: segment.url,
        bytesLength: segment.data?.byteLength ?? 0,
        downloadSource: id ? "p2p" : "http",
        peerId: peer(id),
        streamType: type(segment),
      });
    }),
    onSegmentError: (fn) => engine.on("segment_error", (segment, error, id) => fn({
      error: { type: typeof error === "string" ? error : error?.name, message: String(error?.message ?? error) },
      segment,
      downloadSource: id ? "p2p" : "http",
      peerId: peer(id),
      streamType: type(segment),
    })),
    onPeerConnect: (fn) => engine.on("peer_connect", (p) => fn({ peerId: peer(p?.id), streamType: null })),
    onPeerClose: (fn) => engine.on("peer_close", (id) => fn({ peerId: peer(id), streamType: null })),
    onPeerError: () => {},
    onTrackerError: (fn) => {
      const pm = engine.loader?.p2pManager;
      if (!pm || typeof pm.onTrackerError !== "function") return;
      // Read by createClient() at each swarm change, so replacing the bound handlers works.
      const err = pm.onTrackerError;
      pm.onTrackerError = (e) => { fn({ streamType: null, error: e }); err(e); };
    },
  };
  hookEngine({ addEventListener: (name, fn) => on[name]?.(fn) });
}
