// ?liar=1: a peer that lies when it uploads (a classic script, loaded before the libraries). Every
// binary data-channel message this page SENDS that is not a protocol command is replaced by random
// bytes of the same length: the segment payload chunks. Commands pass unchanged: text messages
// (the PeerTube fork's JSON commands), binary {"..."} JSON (P2P Media Loader 0.6.2's commands) and
// binary messages framed "cstr"/"dstr" ... "cend"/"dend" (P2P Media Loader 2.x's commands). So the
// byte counts and the protocol stay right and only the content is wrong, which only a hash check
// catches. What the page itself downloads, validates, stores and plays is untouched (the random
// bytes are a new buffer, never written into the library's). Counts in window.__liar ->
// __stats.liar: {chunks, bytes} garbled, {commands} passed.
(() => {
  if (new URLSearchParams(location.search).get("liar") !== "1") return;
  const L = (window.__liar = { chunks: 0, bytes: 0, commands: 0 });
  const tag = (u8, at) => String.fromCharCode(u8[at], u8[at + 1], u8[at + 2], u8[at + 3]);
  const isCommand = (u8) =>
    (u8.length >= 2 && u8[0] === 0x7b && u8[1] === 0x22 && u8[u8.length - 1] === 0x7d) ||
    (u8.length >= 8 && ["cstr", "dstr"].includes(tag(u8, 0)) && ["cend", "dend"].includes(tag(u8, u8.length - 4)));
  const send = RTCDataChannel.prototype.send;
  RTCDataChannel.prototype.send = function (data) {
    if (typeof data !== "string" && !(data instanceof Blob)) {
      const u8 = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      if (!isCommand(u8)) {
        const junk = new Uint8Array(u8.length);
        for (let o = 0; o < junk.length; o += 65536) crypto.getRandomValues(junk.subarray(o, o + 65536));
        L.chunks++;
        L.bytes += junk.length;
        return send.call(this, junk);
      }
      L.commands++;
    }
    return send.call(this, data);
  };
})();
