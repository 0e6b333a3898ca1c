// One P2P Media Loader peer with Shaka Player (p2p-media-loader-shaka + -core 2.2.x) for the
// interop runner; same query and the same reports as the hls.js page (page.mjs): src, tracker,
// peer (label), level (max|min|auto|<n>, over Shaka's variant tracks), core (JSON).
// Counters, logs and runner events: stats.mjs.
import { ShakaP2PEngine } from "p2p-media-loader-shaka";
import { S, now, report, hookEngine, playerError, watchPlaying, pickLevel } from "/app/stats.mjs";

const shaka = window.shaka;
const q = new URLSearchParams(location.search);
const src = q.get("src");
const tracker = q.get("tracker");
const levelParam = q.get("level") || "max";
const extraCore = q.get("core") ? JSON.parse(q.get("core")) : {};
S.label = q.get("peer") || "?";
S.player = { name: "shaka-player", version: shaka.Player.version };

const shakaError = (e, fatal) => {
  const critical = e?.severity === shaka.util.Error.Severity.CRITICAL;
  playerError({
    type: "shaka",
    details: e?.code !== undefined ? `code ${e.code} category ${e.category} ${JSON.stringify(e.data ?? []).slice(0, 300)}` : String(e?.message || e),
    fatal: fatal || critical,
  });
};

const video = document.getElementById("v");
watchPlaying(video);
shaka.polyfill.installAll();
// Before the player exists: P2PML's manifest parsers and http(s) scheme plugins.
ShakaP2PEngine.registerPlugins(shaka);
const engine = new ShakaP2PEngine(
  {
    core: {
      announceTrackers: [tracker],
      // No STUN: inside the loopback-only namespace host candidates (127.0.0.1) are all there is.
      rtcConfig: { iceServers: [] },
      ...extraCore,
    },
  },
  shaka,
);
hookEngine(engine);
report({ ev: "page-started", shaka: shaka.Player.version });
const player = new shaka.Player();
window.__shaka = player;
player.addEventListener("error", (ev) => shakaError(ev.detail, false));
await player.attach(video);
// Each video stream is its own swarm: pin one level so all peers meet in the same swarm. ABR off;
// the initial choice follows the bandwidth estimate (huge = highest variant, 1 = lowest), and the
// pin is enforced after load (selectVariantTrack) for <n> or a different choice.
player.configure({
  abr: {
    enabled: levelParam === "auto",
    ...(levelParam === "max" ? { defaultBandwidthEstimate: 1e10 } : {}),
    ...(levelParam === "min" ? { defaultBandwidthEstimate: 1 } : {}),
  },
});
engine.bindShakaPlayer(player);

const mime = /\.mpd(\?|$)/.test(src) ? "application/dash+xml" : undefined;
try {
  await player.load(src, null, mime);
} catch (e) {
  shakaError(e, true);
}
const tracks = () => player.getVariantTracks().slice().sort((a, b) => a.bandwidth - b.bandwidth || a.id - b.id);
const all = tracks();
S.levels = all.map((t, i) => ({ i, bitrate: t.bandwidth, w: t.width, h: t.height, videoId: t.videoId, audioId: t.audioId, codecs: t.codecs }));
const n = all.length ? pickLevel(S.levels, levelParam) : -1;
if (n >= 0 && all[n] && !all[n].active) player.selectVariantTrack(all[n], true);
S.pinnedLevel = n;
report({ ev: "manifest", levels: S.levels, pinned: n });
video.play().catch(() => {}); // autoplay is allowed by a Chromium switch; "playing" reports it

setInterval(() => {
  const active = player.getVariantTracks().find((t) => t.active);
  S.playback = {
    t: now(),
    currentTime: video.currentTime,
    paused: video.paused,
    ended: video.ended,
    currentLevel: active ? S.levels.findIndex((l) => l.videoId === active.videoId && l.audioId === active.audioId) : -1,
    activeVariant: active ? { bandwidth: active.bandwidth, w: active.width, h: active.height, videoId: active.videoId, audioId: active.audioId } : null,
  };
}, 500);
