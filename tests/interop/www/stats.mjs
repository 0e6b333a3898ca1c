// What every interop peer page (hls.js in page.mjs, Shaka in shaka.mjs) reports, in one place so
// run.mjs reads both the same way. Everything the runner asserts on is kept in window.__stats;
// milestones are also pushed to the runner through window.__interopEvent (a Playwright binding)
// so it can wait on events, not sleeps.
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
