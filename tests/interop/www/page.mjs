// One P2P Media Loader peer (hls.js + p2p-media-loader-hlsjs/-core, 2.3.x or 2.2.x) for the
// interop runner. Query: src, tracker, peer (label), level (max|min|auto|<n>), core (JSON),
// hls (JSON: extra hls.js config); PeerTube (>= 7.1, P2P Media Loader 2.x era): sha (the
// segments-sha256 JSON URL: PeerTube's validator as validateP2PSegment + validateHTTPSegment,
// peertube-validator.mjs), peertube=1 (PeerTube's player settings: swarmId = the master URL,
// highDemandTimeWindow 15, segmentMemoryStorageLimit 1024), swarm (swarmId), liar (liar.js).
// Counters, logs and runner events: stats.mjs (shared with the Shaka page, shaka.mjs).
import Hls from "hls.js";
import { HlsJsP2PEngine } from "p2p-media-loader-hlsjs";
import { S, now, report, hookEngine, playerError, watchPlaying, pickLevel } from "/app/stats.mjs";
import { segmentValidator } from "/app/peertube-validator.mjs";

const q = new URLSearchParams(location.search);
const src = q.get("src");
const tracker = q.get("tracker");
const levelParam = q.get("level") || "max";
const extraCore = q.get("core") ? JSON.parse(q.get("core")) : {};
const extraHls = q.get("hls") ? JSON.parse(q.get("hls")) : {};
const sha = q.get("sha");
const validator = sha ? segmentValidator(sha) : null;
const peertube = q.get("peertube") === "1";
if (peertube || sha) S.peertube = { era: "pml2", swarmId: q.get("swarm") || (peertube ? src : null), sha: sha || null, liar: q.get("liar") === "1" };
S.label = q.get("peer") || "?";
S.player = { name: "hls.js", version: Hls.version };

const HlsWithP2P = HlsJsP2PEngine.injectMixin(Hls);
const video = document.getElementById("v");
const hls = new HlsWithP2P({
  ...extraHls,
  autoStartLoad: false, // started once the level is pinned (MANIFEST_PARSED)
  p2p: {
    core: {
      announceTrackers: [tracker],
      // No STUN: inside the loopback-only namespace host candidates (127.0.0.1) are all there is.
      rtcConfig: { iceServers: [] },
      // PeerTube's hls-options-builder (P2P Media Loader 2.x era), VOD
      ...(peertube ? { swarmId: src, highDemandTimeWindow: 15, segmentMemoryStorageLimit: 1024 } : {}),
      ...(q.get("swarm") ? { swarmId: q.get("swarm") } : {}),
      ...(validator ? { validateP2PSegment: validator.validateP2PSegment, validateHTTPSegment: validator.validateHTTPSegment } : {}),
      ...extraCore,
    },
    onHlsJsCreated: (h) => hookEngine(h.p2pEngine),
  },
});
window.__hls = hls;

hls.on(Hls.Events.MANIFEST_PARSED, () => {
  S.levels = hls.levels.map((l, i) => ({ i, bitrate: l.bitrate, w: l.width, h: l.height, url: l.url?.[0] ?? l.url }));
  // Each level is its own swarm: pin one so all peers meet in the same swarm.
  const n = pickLevel(hls.levels, levelParam);
  if (n >= 0) {
    hls.startLevel = n;
    hls.loadLevel = n;
  }
  S.pinnedLevel = n;
  report({ ev: "manifest", levels: S.levels, pinned: n });
  hls.startLoad(-1);
});
hls.on(Hls.Events.ERROR, (_e, d) => playerError({ type: d.type, details: d.details, fatal: d.fatal }));
watchPlaying(video);

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
  if (window.__liar) S.liar = window.__liar; // ?liar=1, see liar.js
}, 500);
report({ ev: "page-started", hls: Hls.version });
