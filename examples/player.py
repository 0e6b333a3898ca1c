#!/usr/bin/env python3
"""An application that embeds the element, in Python (PyGObject; Debian: python3-gi and
gir1.2-gstreamer-1.0): the same as examples/player.rs.

Plays an HLS or DASH manifest with playbin3, which picks p2phlssrc / p2pdashsrc for
p2phls+http(s):// / p2pdash+http(s):// URIs, and prints one status line per second from the
element's read-only `stats` property and the bus messages it posts (p2pmedia-peer-connected /
-closed, p2pmedia-segment-loaded). With --reject-every N it vetoes the first delivery of every
N-th segment through the `validate-segment` signal (the element then fetches it again from the
origin; the second delivery is accepted).

    python3 examples/player.py URL [--reject-every N] [--display] [--tracker WS_URL]... [--no-p2p]

The plugin must be installed (meson, cargo cinstall, the .deb) or on GST_PLUGIN_PATH (e.g.
GST_PLUGIN_PATH=target/debug after a build). Audio and video go to fakesink sync=true unless
--display. Exits 0 at end of stream, 1 with a message on an error, 2 on bad arguments.
"""

import argparse
import sys
import threading
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, GObject, Gst  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(prog="player.py", description="Play a manifest through p2pmedia.")
    p.add_argument("url", help="manifest URL: http(s)://.../master.m3u8, .../manifest.mpd, "
                   "or a p2phls+http(s):// / p2pdash+http(s):// URI")
    p.add_argument("--reject-every", type=int, metavar="N",
                   help="veto the first delivery of every N-th segment (validate-segment signal)")
    p.add_argument("--display", action="store_true",
                   help="play to the default audio/video outputs instead of fake sinks")
    p.add_argument("--tracker", action="append", default=[], metavar="WS_URL",
                   help="WebTorrent tracker to announce on (repeatable; default: the element's)")
    p.add_argument("--no-p2p", action="store_true",
                   help="HTTP only (p2p-enabled=false; validate-segment is then never emitted)")
    a = p.parse_args()
    if a.reject_every is not None and a.reject_every < 1:
        p.error("--reject-every needs a number >= 1")
    url = a.url
    if not url.startswith(("p2phls+", "p2pdash+")):
        if not url.startswith(("http://", "https://")):
            p.error("not an http(s) URL: " + url)
        path = url.split("?")[0].split("#")[0]
        url = ("p2pdash+" if path.endswith(".mpd") else "p2phls+") + url
    a.url = url
    return a


def set_string_list(obj, name, items):
    """Set a list-of-strings property whatever its type: a GStrv (a Python list) or a
    GstValueArray (parsed from <"a", "b">, as gst-launch-1.0 writes it)."""
    pspec = obj.find_property(name)
    if pspec is None:
        return
    if pspec.value_type == GObject.TYPE_STRV:
        obj.set_property(name, items)
    else:
        quoted = ['"%s"' % s.replace("\\", "\\\\").replace('"', '\\"') for s in items]
        Gst.util_set_object_arg(obj, name, "<%s>" % ", ".join(quoted))


class Player:
    def __init__(self, args):
        self.args = args
        self.loop = GLib.MainLoop()
        self.source = None
        self.lock = threading.Lock()
        self.checked = []  # segment URLs seen by the validator, in order of first delivery
        self.rejected = 0
        self.loaded = {"http": 0, "p2p": 0}
        self.peers_connected = 0
        self.peers_closed = 0
        self.exit_code = 1
        self.t0 = time.monotonic()

        plugin = Gst.Registry.get().find_plugin("p2pmedia")
        if plugin is None or Gst.ElementFactory.find("p2phlssrc") is None:
            raise RuntimeError("the p2pmedia plugin is not installed "
                               "(install it, or set GST_PLUGIN_PATH to the directory of libgstp2pmedia.so)")
        self.playbin = Gst.ElementFactory.make("playbin3", None)
        if self.playbin is None:
            raise RuntimeError("no playbin3 (gstreamer1.0-plugins-base)")
        self.playbin.set_property("uri", args.url)
        if not args.display:
            for prop in ("video-sink", "audio-sink"):
                sink = Gst.ElementFactory.make("fakesink", None)
                sink.set_property("sync", True)
                self.playbin.set_property(prop, sink)
        self.playbin.connect("source-setup", self.on_source_setup)
        bus = self.playbin.get_bus()
        bus.add_signal_watch()
        bus.connect("message", self.on_message)
        print("playing %s with playbin3 (%s, %s%s)" % (
            args.url, plugin.get_filename(), "HTTP only" if args.no_p2p else "HTTP + P2P",
            ", vetoing every %dth segment" % args.reject_every if args.reject_every else ""),
            flush=True)

    def on_source_setup(self, _playbin, src):
        if src.find_property("stats") is None:
            return  # not ours
        src.set_property("p2p-enabled", not self.args.no_p2p)
        if self.args.tracker:
            set_string_list(src, "trackers", self.args.tracker)
        if self.args.reject_every:
            # Emitted from the element's own threads, before a segment is used or shared.
            src.connect("validate-segment", self.on_validate_segment)
        with self.lock:
            self.source = src

    def on_validate_segment(self, _src, url, segment_id, source, data):
        with self.lock:
            if url in self.checked:
                ok = True  # a re-delivery, after our veto or a refetch
            else:
                self.checked.append(url)
                ok = len(self.checked) % self.args.reject_every != 0
            if not ok:
                self.rejected += 1
        if not ok:
            print("rejected segment %d (%d bytes from %s): %s" % (segment_id, data.get_size(), source, url),
                  flush=True)
        return ok

    def on_message(self, _bus, msg):
        t = msg.type
        if t == Gst.MessageType.EOS:
            print("end of stream: " + self.status(), flush=True)
            self.exit_code = 0
            self.loop.quit()
        elif t == Gst.MessageType.ERROR:
            err, debug = msg.parse_error()
            print("player.py: error: %s from %s%s" % (err.message, msg.src.get_path_string(),
                                                      " (%s)" % debug if debug else ""),
                  file=sys.stderr, flush=True)
            self.exit_code = 1
            self.loop.quit()
        elif t == Gst.MessageType.WARNING:
            err, _ = msg.parse_warning()
            print("warning: " + err.message, flush=True)
        elif t == Gst.MessageType.ELEMENT:
            s = msg.get_structure()
            name = s.get_name() if s else ""
            if name == "p2pmedia-segment-loaded":
                self.loaded["p2p" if s.get_string("source") == "p2p" else "http"] += 1
            elif name == "p2pmedia-peer-connected":
                self.peers_connected += 1
                print("peer connected: %s" % s.get_string("peer-id"), flush=True)
            elif name == "p2pmedia-peer-closed":
                self.peers_closed += 1
                print("peer closed: %s" % s.get_string("peer-id"), flush=True)
        return True

    def status(self):
        def secs(r):
            ok, v = r
            return "%.1f" % (v / Gst.SECOND) if ok and v >= 0 else "-"

        pos = secs(self.playbin.query_position(Gst.Format.TIME))
        dur = secs(self.playbin.query_duration(Gst.Format.TIME))
        with self.lock:
            src, rejected = self.source, self.rejected
        stats = src.get_property("stats") if src is not None else None

        def num(field):
            if stats is None or not stats.has_field(field):
                return 0
            return int(stats.get_value(field))

        def mib(field):
            return num(field) / 1024.0 / 1024.0

        return ("[%3ds] %s/%s s | http %.2f MiB %d seg | p2p %.2f MiB %d seg | up %.2f MiB | "
                "peers %d (%d connected, %d closed) | loaded %d http %d p2p | rejected %d") % (
            int(time.monotonic() - self.t0), pos, dur, mib("http-bytes"), num("http-segments"),
            mib("p2p-bytes"), num("p2p-segments"), mib("p2p-upload-bytes"), num("peers"),
            self.peers_connected, self.peers_closed, self.loaded["http"], self.loaded["p2p"], rejected)

    def tick(self):
        print(self.status(), flush=True)
        return True

    def run(self):
        if self.playbin.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            print("player.py: error: cannot start playing %s" % self.args.url, file=sys.stderr)
            return 1
        GLib.timeout_add_seconds(1, self.tick)
        try:
            self.loop.run()
        finally:
            self.playbin.set_state(Gst.State.NULL)
        return self.exit_code


def main():
    args = parse_args()
    Gst.init(None)
    try:
        player = Player(args)
    except RuntimeError as e:
        print("player.py: error: %s" % e, file=sys.stderr)
        return 1
    return player.run()


if __name__ == "__main__":
    sys.exit(main())
