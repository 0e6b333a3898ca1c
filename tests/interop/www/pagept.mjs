// One PeerTube player peer of the fork era (hls.js 1.5.20 + @peertube/p2p-media-loader-hlsjs/-core
// 1.0.20, pagept.html) for the interop runner, configured as PeerTube's web player
// (client hls-options-builder.ts, VOD): segments.swarmId = the master playlist URL,
// forwardSegmentCount 50, PeerTube's VOD loader options, rtcConfig {iceServers: []}, the
// segment validator (peertube-validator.mjs) when a hash file is given, and the engine's loader
// class as hls.js's global `loader` (the engine only knows playlists it loaded itself).
// Query as page06.mjs: src, tracker, peer (label), level (max|min|auto|<n>), core (JSON: extra
// `loader` settings; its "segments" key goes to the engine's `segments` settings), hls (JSON),
// debug, repin (0: no re-pin after hls.js switches level on an error); plus sha (the segments-sha256 JSON URL: without it PeerTube turns P2P off; here it only
// means no validator), swarm (segments.swarmId; default src, as PeerTube's playlistUrl) and liar.
// Counters, logs and runner events: stats.mjs, through its 0.6 adapter (hookEngine06: the fork
// has the 0.6 events).
import Hls from "hls.js";
import { Engine, initHlsJsPlayer, version } from "@peertube/p2p-media-loader-hlsjs";
import { S, now, report, hookEngine06, playerError, watchPlaying, pickLevel } from "/app/stats.mjs";
import { segmentValidator } from "/app/peertube-validator.mjs";

const q = new URLSearchParams(location.search);
const src = q.get("src");
const tracker = q.get("tracker");
const sha = q.get("sha");
const levelParam = q.get("level") || "max";
const { segments: extraSegments = {}, ...extraCore } = q.get("core") ? JSON.parse(q.get("core")) : {};
const extraHls = q.get("hls") ? JSON.parse(q.get("hls")) : {};
S.label = q.get("peer") || "?";
S.player = { name: "hls.js", version: Hls.version };
S.pml = { hlsjs: version, fork: "@peertube/p2p-media-loader 1.0.20" };
S.peertube = { era: "fork", swarmId: q.get("swarm") || src, sha: sha || null, liar: q.get("liar") === "1" };

if (!Engine.isSupported()) playerError({ type: "p2pml", details: "Engine.isSupported() is false", fatal: true });
const validator = sha ? segmentValidator(sha).fork : undefined;
const engine = new Engine({
  loader: {
    trackerAnnounce: [tracker],
    // PeerTube: getRtcConfig(stunServers); no STUN inside the loopback-only namespace.
    rtcConfig: { iceServers: [] },
    simultaneousHttpDownloads: 1,
    httpFailedSegmentTimeout: 1000,
    useP2P: true,
    consumeOnly: false,
    segmentValidator: validator,
    // PeerTube's VOD options
    requiredSegmentsPriority: 3,
    skipSegmentBuilderPriority: 1,
    cachedSegmentExpiration: 86400000,
    cachedSegmentsCount: 100,
    httpDownloadMaxPriority: 9,
    httpDownloadProbability: 0.06,
    httpDownloadProbabilitySkipIfNoPeers: true,
    p2pDownloadMaxPriority: 50,
    ...extraCore,
  },
  segments: {
    swarmId: S.peertube.swarmId,
    forwardSegmentCount: 50,
    ...extraSegments,
  },
});
window.__engine = engine;
hookEngine06(engine);

const video = document.getElementById("v");
const hls = new Hls({
  liveSyncDurationCount: 5,
  ...extraHls,
  autoStartLoad: false, // started once the level is pinned (MANIFEST_PARSED)
  loader: engine.createLoaderClass(),
});
window.__hls = hls;
// PeerTube passes its video.js player; the fork needs on/off("seeking") and .media.
initHlsJsPlayer({
  on: (e, f) => video.addEventListener(e, f),
  off: (e, f) => video.removeEventListener(e, f),
  media: video,
}, hls);

hls.on(Hls.Events.MANIFEST_PARSED, () => {
  S.levels = hls.levels.map((l, i) => ({ i, bitrate: l.bitrate, w: l.width, h: l.height, url: l.url?.[0] ?? l.url }));
  // Each level is its own swarm ("<master URL>+V<index in the master playlist>"): pin one.
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
// A segment the validator refused reaches hls.js as a fragLoadError without a status, which
// hls.js 1.5 answers by switching level even when one is pinned: that would move this peer to
// another swarm. Pin it back (each time recorded in S.levelRepins); ?repin=0 leaves hls.js be.
S.levelRepins = [];
hls.on(Hls.Events.LEVEL_SWITCHED, (_e, d) => {
  if (q.get("repin") === "0" || S.pinnedLevel === null || S.pinnedLevel < 0 || d.level === S.pinnedLevel) return;
  S.levelRepins.push({ t: now(), from: d.level, to: S.pinnedLevel });
  setTimeout(() => { hls.loadLevel = S.pinnedLevel; }, 0);
});
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
  S.dataChannel = window.__dc; // see dc.js
  if (window.__liar) S.liar = window.__liar; // see liar.js
}, 500);
report({ ev: "page-started", hls: Hls.version, pml: S.pml });
