// What goes over this page's WebRTC data channels (a classic script, loaded before the libraries;
// the page copies window.__dc into __stats.dataChannel): messages sent/received as text or
// binary; among the binary ones the 0.6-family JSON commands ({"c":..}: `commands`), among the
// text ones the same (`textCommands`: the PeerTube fork sends its commands as text); the first few
// commands of each code; the channels' createDataChannel options. Used by page06.html, pagept.html.
(() => {
  const dc = (window.__dc = {
    channels: [],
    sent: { text: 0, binary: 0, commands: 0, textCommands: 0 },
    received: { text: 0, binary: 0, commands: 0, textCommands: 0 },
    samples: [],
  });
  const seen = {};
  const sample = (dir, text, kind) => {
    try {
      const code = JSON.parse(text).c;
      const k = `${dir}:${code}`;
      seen[k] = (seen[k] || 0) + 1;
      if (seen[k] <= 3 && dc.samples.length < 40) dc.samples.push({ dir, code, kind, text: text.slice(0, 300) });
    } catch {}
  };
  const note = (dir, data) => {
    const c = dc[dir];
    if (typeof data === "string") {
      c.text++;
      if (data.startsWith('{"') && data.endsWith("}")) { c.textCommands++; sample(dir, data, "text"); }
      return;
    }
    c.binary++;
    const u8 = data instanceof ArrayBuffer ? new Uint8Array(data) : data instanceof Blob ? null
      : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (!u8 || u8.length < 2 || u8[0] !== 0x7b || u8[1] !== 0x22 || u8[u8.length - 1] !== 0x7d) return;
    c.commands++;
    sample(dir, new TextDecoder().decode(u8), "binary");
  };
  const send = RTCDataChannel.prototype.send;
  RTCDataChannel.prototype.send = function (data) { note("sent", data); return send.call(this, data); };
  const create = RTCPeerConnection.prototype.createDataChannel;
  RTCPeerConnection.prototype.createDataChannel = function (label, init) {
    const ch = create.call(this, label, init);
    if (dc.channels.length < 20) dc.channels.push({ label, init: init ?? null, binaryType: ch.binaryType });
    return ch;
  };
  const add = RTCDataChannel.prototype.addEventListener;
  const onRecv = (ev) => note("received", ev.data);
  RTCDataChannel.prototype.addEventListener = function (type, fn, o) {
    if (type === "message" && !this.__dcHooked) { this.__dcHooked = true; add.call(this, "message", onRecv); }
    return add.call(this, type, fn, o);
  };
  const desc = Object.getOwnPropertyDescriptor(RTCDataChannel.prototype, "onmessage");
  Object.defineProperty(RTCDataChannel.prototype, "onmessage", {
    configurable: true,
    get () { return desc.get.call(this); },
    set (fn) {
      if (!this.__dcHooked) { this.__dcHooked = true; add.call(this, "message", onRecv); }
      desc.set.call(this, fn);
    },
  });
})();
