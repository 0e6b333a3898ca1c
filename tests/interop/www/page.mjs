// One P2P Media Loader peer (hls.js + p2p-media-loader-hlsjs/-core, 2.3.x or 2.2.x) for the
// interop runner. Query: src, tracker, peer (label), level (max|min|auto|<n>), core (JSON).
// Everything the runner asserts on is kept in window.__stats; milestones are also pushed to the
// runner through window.__interopEvent (a Playwright binding) so it can wait on events, not sleeps.
import Hls from "hls.js";
import { HlsJsP2PEngine } from "p2p-media-loader-hlsjs";

const q = new URLSearchParams(location.search);
const src = q.get("src");
const tracker = q.get("tracker");
const label = q.get("peer") || "?";
const levelParam = q.get("level") || "max";
const extraCore = q.get("core") ? JSON.parse(q.get("core")) : {};
const t0 = Date.now();
const now = () => Date.now() - t0;
const MAX_LOG = 2000;

const S = (window.__stats = {
  label,
  hlsVersion: Hls.version,
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
  hlsErrors: [],
  levels: [],
  pinnedLevel: null,
  firstFrameAt: null,
  playback: {},
});
const push = (arr, v) => arr.length < MAX_LOG && arr.push(v);
const report = (ev) => {
  try {
    window.__interopEvent?.({ t: now(), ...ev });
  } catch {}
};

function onCreated(hls) {
  const e = hls.p2pEngine;
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

const HlsWithP2P = HlsJsP2PEngine.injectMixin(Hls);
const video = document.getElementById("v");
const hls = new HlsWithP2P({
  autoStartLoad: false, // started once the level is pinned (MANIFEST_PARSED)
  p2p: {
    core: {
      announceTrackers: [tracker],
      // No STUN: inside the loopback-only namespace host candidates (127.0.0.1) are all there is.
      rtcConfig: { iceServers: [] },
      ...extraCore,
    },
    onHlsJsCreated: onCreated,
  },
});
window.__hls = hls;

hls.on(Hls.Events.MANIFEST_PARSED, () => {
  S.levels = hls.levels.map((l, i) => ({ i, bitrate: l.bitrate, w: l.width, h: l.height, url: l.url?.[0] ?? l.url }));
  // Each level is its own swarm: pin one so all peers meet in the same swarm.
  let n = -1;
  const by = (better) => hls.levels.reduce((b, l, i) => (better(l.bitrate, hls.levels[b].bitrate) ? i : b), 0);
  if (levelParam === "max") n = by((a, b) => a > b);
  else if (levelParam === "min") n = by((a, b) => a < b);
  else if (levelParam !== "auto") n = Number(levelParam);
  if (n >= 0) {
    hls.startLevel = n;
    hls.loadLevel = n;
  }
  S.pinnedLevel = n;
  report({ ev: "manifest", levels: S.levels, pinned: n });
  hls.startLoad(-1);
});
hls.on(Hls.Events.ERROR, (_e, d) => {
  const rec = { t: now(), type: d.type, details: d.details, fatal: d.fatal };
  push(S.hlsErrors, rec);
  if (d.fatal) report({ ev: "fatal", ...rec });
});
video.addEventListener("playing", () => {
  if (S.firstFrameAt === null) {
    S.firstFrameAt = now();
    report({ ev: "playing" });
  }
});

hls.attachMedia(video);
hls.loadSource(src);
video.play().catch(() => {}); // autoplay is allowed by a Chromium switch; "playing" reports it

setInterval(() => {
  S.playback = {
    t: now(),
    currentTime: video.currentTime,
    paused: video.paused,
    ended: video.ended,
    currentLevel: hls.currentLevel,
  };
}, 500);
report({ ev: "page-started", hls: Hls.version });
