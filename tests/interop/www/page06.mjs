// One P2P Media Loader 0.6.2 peer (hls.js 0.14.17 + p2p-media-loader-hlsjs/-core 0.6.2, globals
// from page06.html) for the interop runner. Query as page.mjs: src, tracker, peer (label), level
// (max|min|auto|<n>), core (JSON: extra 0.6 `loader` settings; a "segments" key in it goes to
// the engine's `segments` settings instead, e.g. forwardSegmentCount, swarmId), hls (JSON: extra
// hls.js config); plus debug (see page06.html), liar (liar.js) and sha (the segments-sha256 JSON
// URL: PeerTube's segment validator, peertube-validator.mjs).
// Counters, logs and runner events: stats.mjs, through its 0.6 adapter (hookEngine06).
import { S, now, report, hookEngine06, playerError, watchPlaying, pickLevel } from "/app/stats.mjs";
import { segmentValidator } from "/app/peertube-validator.mjs";

const { Hls, p2pml } = window;
const q = new URLSearchParams(location.search);
const src = q.get("src");
const tracker = q.get("tracker");
const levelParam = q.get("level") || "max";
const { segments: extraSegments = {}, ...extraCore } = q.get("core") ? JSON.parse(q.get("core")) : {};
const extraHls = q.get("hls") ? JSON.parse(q.get("hls")) : {};
S.label = q.get("peer") || "?";
S.player = { name: "hls.js", version: Hls.version };
S.pml = { core: p2pml.core.version, hlsjs: p2pml.hlsjs.version };

if (!p2pml.hlsjs.Engine.isSupported()) playerError({ type: "p2pml", details: "Engine.isSupported() is false", fatal: true });
const engine = new p2pml.hlsjs.Engine({
  loader: {
    trackerAnnounce: [tracker],
    // No STUN: inside the loopback-only namespace host candidates (127.0.0.1) are all there is.
    rtcConfig: { iceServers: [] },
    // ?sha=URL: PeerTube's segment validator (PeerTube <= 3.x ran 0.6.2 with it)
    ...(q.get("sha") ? { segmentValidator: segmentValidator(q.get("sha")).fork } : {}),
    ...extraCore,
  },
  segments: { ...extraSegments },
});
window.__engine = engine;
hookEngine06(engine);

const video = document.getElementById("v");
const hls = new Hls({
  ...extraHls,
  autoStartLoad: false, // started once the level is pinned (MANIFEST_PARSED)
  loader: engine.createLoaderClass(),
});
window.__hls = hls;
// hlsFragChanged -> engine.setPlayingSegment, hlsDestroying -> engine.destroy, stalls.
p2pml.hlsjs.initHlsJsPlayer(hls);

hls.on(Hls.Events.MANIFEST_PARSED, () => {
  S.levels = hls.levels.map((l, i) => ({ i, bitrate: l.bitrate, w: l.width, h: l.height, url: l.url?.[0] ?? l.url }));
  // Each level is its own swarm (0.6: "<master URL>+V<index in the master playlist>"): pin one.
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
  S.dataChannel = window.__dc; // see dc.js
  if (window.__liar) S.liar = window.__liar; // ?liar=1, see liar.js
}, 500);
report({ ev: "page-started", hls: Hls.version, pml: S.pml });
