// One P2P Media Loader 0.6.2 peer with Shaka Player 2.5.1 (p2p-media-loader-shaka/-core 0.6.2,
// globals from shaka06.html) for the interop runner. Query as shaka.mjs: src, tracker, peer
// (label), level (max|min|auto|<n>, over Shaka's variant tracks), core (JSON: extra 0.6 `loader`
// settings; a "segments" key in it goes to the engine's `segments` settings, e.g.
// forwardSegmentCount, swarmId); plus debug (see shaka06.html). Wiring as 0.6.2's README:
// new p2pml.shaka.Engine(settings), new shaka.Player(video), engine.initShakaPlayer(player),
// player.load(src). 0.6.2 P2P-loads video segments only (integration.ts:106); audio is HTTP.
// Counters, logs and runner events: stats.mjs, through its 0.6 adapter (hookEngine06). Ids for
// the runner: S.segmentIds (segment_loaded ids), S.queued (what the segment manager hands the
// loader: swarm ids and the first segment ids), S.wire06 (ids in the commands this page sent),
// S.shakaStreams (Shaka's stream ids per Period).
import { S, now, report, hookEngine06, playerError, watchPlaying, pickLevel } from "/app/stats.mjs";

const { shaka, p2pml } = window;
const q = new URLSearchParams(location.search);
const src = q.get("src");
const tracker = q.get("tracker");
const levelParam = q.get("level") || "max";
const { segments: extraSegments = {}, ...extraCore } = q.get("core") ? JSON.parse(q.get("core")) : {};
S.label = q.get("peer") || "?";
S.player = { name: "shaka-player", version: shaka.Player.version };
S.pml = { core: p2pml.core.version, shaka: p2pml.shaka.version };

const shakaError = (e, fatal) => {
  const critical = e?.severity === shaka.util.Error.Severity.CRITICAL;
  playerError({
    type: "shaka",
    details: e?.code !== undefined ? `code ${e.code} category ${e.category} ${JSON.stringify(e.data ?? []).slice(0, 300)}` : String(e?.message || e),
    fatal: fatal || critical,
  });
};

shaka.polyfill.installAll();
if (!p2pml.shaka.Engine.isSupported()) playerError({ type: "p2pml", details: "Engine.isSupported() is false", fatal: true });
if (!shaka.Player.isBrowserSupported()) playerError({ type: "shaka", details: "Player.isBrowserSupported() is false", fatal: true });
const engine = new p2pml.shaka.Engine({
  loader: {
    trackerAnnounce: [tracker],
    // No STUN: inside the loopback-only namespace host candidates (127.0.0.1) are all there is.
    rtcConfig: { iceServers: [] },
    ...extraCore,
  },
  segments: { ...extraSegments },
});
window.__engine = engine;
hookEngine06(engine);

// The segment ids: as loaded (segment_loaded) and as queued (SegmentManager -> HybridLoader.load
// (segments, streamSwarmId): the same loader object, wrapped on the instance).
S.segmentIds = [];
S.segmentIdUrls = {};
engine.on("segment_loaded", (segment) => {
  if (S.segmentIds.length < 20 && !S.segmentIds.includes(segment.id)) {
    S.segmentIds.push(segment.id);
    S.segmentIdUrls[segment.id] = String(segment.url).replace(location.origin, "");
  }
});
S.queued = { swarmIds: [], segmentIds: [] };
const load = engine.loader.load.bind(engine.loader);
engine.loader.load = (segments, swarmId) => {
  if (!S.queued.swarmIds.includes(swarmId)) S.queued.swarmIds.push(swarmId);
  for (const s of segments) {
    if (S.queued.segmentIds.length < 20 && !S.queued.segmentIds.some((x) => x.id === s.id)) {
      S.queued.segmentIds.push({ id: s.id, url: String(s.url).replace(location.origin, ""), streamId: s.streamId, sequence: s.sequence, range: s.range ?? null });
    }
  }
  return load(segments, swarmId);
};

const video = document.getElementById("v");
watchPlaying(video);
const player = new shaka.Player(video);
window.__shaka = player;
player.addEventListener("error", (ev) => shakaError(ev.detail, false));
// Each video stream is its own swarm: pin one level so all peers meet in the same swarm (as
// shaka.mjs: ABR off, the initial choice by the bandwidth estimate, selectVariantTrack after load).
player.configure({
  abr: {
    enabled: levelParam === "auto",
    ...(levelParam === "max" ? { defaultBandwidthEstimate: 1e10 } : {}),
    ...(levelParam === "min" ? { defaultBandwidthEstimate: 1 } : {}),
  },
});
// Parser proxies, http(s) scheme plugins, the request filter and the "loading" handler.
engine.initShakaPlayer(player);
report({ ev: "page-started", shaka: shaka.Player.version, pml: S.pml });

const mime = /\.mpd(\?|$)/.test(src) ? "application/dash+xml" : undefined;
try {
  await player.load(src, null, mime);
} catch (e) {
  shakaError(e, true);
}
// Shaka 2.x stream ids (what 0.6.2 puts in the DASH stream identity, `V<id>` / `A<id>`).
const manifest = player.getManifest();
S.shakaStreams = (manifest?.periods ?? []).map((p, pi) => {
  const seen = new Map();
  for (const v of p.variants) {
    for (const st of [v.video, v.audio]) {
      if (st && !seen.has(st.id)) {
        seen.set(st.id, { period: pi, periodStart: p.startTime, id: st.id, originalId: st.originalId ?? null, type: st.type, width: st.width ?? null, height: st.height ?? null, bandwidth: st.bandwidth ?? null, codecs: st.codecs, presentationTimeOffset: st.presentationTimeOffset ?? null });
      }
    }
  }
  for (const st of p.textStreams ?? []) seen.set(`t${st.id}`, { period: pi, id: st.id, originalId: st.originalId ?? null, type: st.type });
  return [...seen.values()];
}).flat();
S.assetUri = player.getAssetUri ? player.getAssetUri() : player.getManifestUri();
const tracks = () => player.getVariantTracks().slice().sort((a, b) => a.bandwidth - b.bandwidth || a.id - b.id);
const all = tracks();
S.levels = all.map((t, i) => ({ i, bitrate: t.bandwidth, w: t.width, h: t.height, videoId: t.videoId, audioId: t.audioId, codecs: t.codecs }));
const n = all.length ? pickLevel(S.levels, levelParam) : -1;
if (n >= 0 && all[n] && !all[n].active) player.selectVariantTrack(all[n], true);
S.pinnedLevel = n;
report({ ev: "manifest", levels: S.levels, pinned: n, streams: S.shakaStreams });
video.play().catch(() => {}); // autoplay is allowed by a Chromium switch; "playing" reports it

setInterval(() => {
  const active = player.getVariantTracks().find((t) => t.active);
  S.playback = {
    t: now(),
    currentTime: video.currentTime,
    paused: video.paused,
    ended: video.ended,
    live: player.isLive(),
    currentLevel: active ? S.levels.findIndex((l) => l.videoId === active.videoId && l.audioId === active.audioId) : -1,
    activeVariant: active ? { bandwidth: active.bandwidth, w: active.width, h: active.height, videoId: active.videoId, audioId: active.audioId } : null,
  };
  S.dataChannel = window.__dc; // dc.js
  S.wire06 = window.__wire06; // shaka06.html
}, 500);
