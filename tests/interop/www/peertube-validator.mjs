// PeerTube's segment validator (client segment-validator.ts: fork era, and the P2P Media Loader 2.x
// era), for the interop pages, with what it decides recorded in window.__stats:
// * it fetches the segments-sha256 JSON ({file name: sha256 hex | {"start-end": sha256 hex}}) once;
// * the key is the segment URL's file name (query removed); for byte ranges "<start>-<end>", end
//   inclusive (fork: parsed from segment.range "bytes=S-E"; 2.x: the byteRange {start, end});
// * it compares the lower-case hex SHA-256 of the data (crypto.subtle);
// * an unknown file name refetches the JSON, up to 10 tries 500 ms apart.
// The fork's validator throws to reject (then the library drops that peer's segment, emits
// segment_error and closes the peer); 2.x's returns false (p2p-segment-validation-failed /
// http-segment-validation-failed, and the peer is destroyed).
// Recorded: S.validation {ok: {http, p2p}, failed: {http, p2p}, refetches} and, per rejected
// segment, S.validationErrors [{t, src, peer, file, range, expected, got, msg}] (2.x validators get
// no peer id: stats.mjs fills `peer` in from the onSegmentError event that follows).
import { S, now, push, report, peerId20 } from "/app/stats.mjs";

const MAX_RETRIES = 10;
const wait = (ms) => new Promise((r) => setTimeout(r, ms));
const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");

export function segmentValidator(shaUrl) {
  S.validation = { shaUrl, ok: { http: 0, p2p: 0 }, failed: { http: 0, p2p: 0 }, refetches: 0 };
  S.validationErrors = [];
  const fetchJson = () => fetch(shaUrl).then((r) => {
    if (!r.ok) throw new Error(`GET ${shaUrl}: ${r.status}`);
    return r.json();
  });
  let json = fetchJson();
  json.catch(() => {});

  // -> undefined when valid; throws when not (a message starting "Hashes does not correspond"
  // or "Unknown segment name", PeerTube's words).
  async function check(url, range, data, src, peer, retry = 1) {
    const file = url.split("?")[0].split("/").pop();
    const value = (await json)[file];
    if (!value) {
      if (retry > MAX_RETRIES) throw fail(src, peer, file, range, undefined, undefined, `Unknown segment name ${file} in segment validator`);
      await wait(500);
      S.validation.refetches++;
      json = fetchJson();
      return check(url, range, data, src, peer, retry + 1);
    }
    const expected = typeof value === "string" ? value : value[range];
    if (expected === undefined) throw fail(src, peer, file, range, undefined, undefined, `Unknown segment name ${file}/${range} in segment validator`);
    const got = hex(await crypto.subtle.digest("SHA-256", data));
    if (got !== expected) throw fail(src, peer, file, range, expected, got, `Hashes does not correspond for segment ${file}/${range} (expected: ${expected} instead of ${got})`);
    S.validation.ok[src]++;
  }
  function fail(src, peer, file, range, expected, got, msg) {
    S.validation.failed[src]++;
    const rec = { t: now(), src, peer: peer ?? null, file, range, expected: expected ?? null, got: got ?? null, msg };
    push(S.validationErrors, rec);
    report({ ev: "validation-failed", src, peer: rec.peer ?? undefined, details: `${file}/${range}` });
    return new Error(msg);
  }

  return {
    // The fork (and 0.6.2): segmentValidator(segment, method, peerId) -> throws to reject.
    // segment.range is "bytes=S-E" for byte-range segments; peerId is 40 hex digits.
    fork: async (segment, method, peerId) => {
      const m = /bytes=(\d+)-(\d+)/.exec(segment.range ?? "");
      await check(segment.url, m ? `${m[1]}-${m[2]}` : "", segment.data, method === "p2p" ? "p2p" : "http", peerId20(peerId));
    },
    // P2P Media Loader 2.x: (url, byteRange {start, end inclusive} | undefined, data) -> boolean.
    validateHTTPSegment: (url, byteRange, data) =>
      check(url, byteRange ? `${byteRange.start}-${byteRange.end}` : "", data, "http", null).then(() => true, () => false),
    validateP2PSegment: (url, byteRange, data) =>
      check(url, byteRange ? `${byteRange.start}-${byteRange.end}` : "", data, "p2p", null).then(() => true, () => false),
  };
}
