#!/usr/bin/env bash
# Seeds fuzz/corpus/TARGET (git-ignored) for one target, or all without an argument.
# Sources: the test fixtures the suite generates (set FIXTURES to a target/tmp holding
# hls-fixtures-*/dash-fixtures-*; default: ../target/tmp), the playlists in the unit tests of
# src/manifest/hls.rs, sample files of the m3u8-rs and dash-mpd crates in the cargo registry,
# the tracker messages of the protocol reference (/work/shared/reference), and a few written here.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
fixtures=${FIXTURES:-../target/tmp}
registry=${CARGO_HOME:-$HOME/.cargo}/registry/src
reference=${REFERENCE:-/work/shared/reference/p2p-media-loader-protocol.md}

n=0
put() { # put TARGET FILE: copy one seed (content-named, so re-seeding is idempotent)
    local d=corpus/$1; mkdir -p "$d"
    cp "$2" "$d/$(sha1sum "$2" | cut -c1-16)"; n=$((n + 1))
}
putstr() { # putstr TARGET STRING (printf format: \r\n, \x00 ...)
    local f; f=$(mktemp); printf "$2" >"$f"; put "$1" "$f"; rm -f "$f"
}
# 12-byte SidxContext header of sidx_parse: timescale, presentationTimeOffset (u32 BE),
# Period start (100 ms units, u16 BE), Period length (s), flags (1: has end, 2: external index).
sidx_header='\x00\x00\x03\xe8\x00\x00\x00\x00\x00\x00\x3c\x01'

seed_hls() {
    local f
    for f in "$fixtures"/hls-fixtures-*/*/*.m3u8 "$fixtures"/hls-fixtures-*/*/*/*.m3u8 \
        "$registry"/*/m3u8-rs-*/sample-playlists/*.m3u8; do
        [ -f "$f" ] && put hls_parse "$f"
    done
    # The unit tests' playlists: every string literal of src/manifest/hls.rs holding #EXTM3U.
    python3 - ../src/manifest/hls.rs corpus/hls_parse <<'PY'
import hashlib, os, re, sys
src = open(sys.argv[1], encoding="utf-8").read()
out = sys.argv[2]
os.makedirs(out, exist_ok=True)
lits = re.findall(r'r#"(#EXTM3U.*?)"#', src, re.S) + [
    bytes(m, "utf-8").decode("unicode_escape").replace("\\\n", "")
    for m in re.findall(r'"(#EXTM3U(?:[^"\\]|\\.)*)"', src, re.S)]
for lit in lits:
    data = lit.encode("utf-8", "replace")
    open(os.path.join(out, hashlib.sha1(data).hexdigest()[:16]), "wb").write(data)
print(f"hls_parse: {len(lits)} playlists from the unit tests")
PY
    # Old playlist, NUL, refreshed playlist: exercises update/align/rebase.
    putstr hls_parse '#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n#EXTINF:2,\na.ts\n#EXTINF:2,\nb.ts\n\x00#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:8\n#EXTINF:2,\nb.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:1.5,\nc.ts\n'
    putstr hls_parse '#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI="init.mp4",BYTERANGE="700@0"\n#EXT-X-KEY:METHOD=AES-128,URI="k.bin",IV=0x0102030405060708090a0b0c0d0e0f10\n#EXT-X-BYTERANGE:1000@700\n#EXTINF:4,\nv.mp4\n#EXT-X-BYTERANGE:1000\n#EXT-X-GAP\n#EXTINF:4,\nv.mp4\n#EXT-X-DEFINE:NAME="p",VALUE="seg"\n#EXTINF:4,\n{$p}3.ts\n#EXT-X-ENDLIST\n'
}

seed_dash() {
    local f
    for f in "$fixtures"/dash-fixtures-*/*/*.mpd "$registry"/*/dash-mpd-*/tests/fixtures/*.mpd; do
        [ -f "$f" ] && put dash_parse "$f"
    done
    # SegmentBase MPDs with their media's first bytes (where the sidx is) after a NUL.
    for f in "$fixtures"/dash-fixtures-*/base/manifest.mpd; do
        [ -f "$f" ] || continue
        local m; m=$(mktemp)
        { cat "$f"; printf '\x00'; head -c 16384 "$(dirname "$f")/$(ls "$(dirname "$f")" | grep -m1 '\.mp4$')"; } >"$m"
        put dash_parse "$m"; rm -f "$m"
    done
}

seed_sidx() {
    local f m
    for f in "$fixtures"/dash-fixtures-*/*/*.mp4 "$fixtures"/dash-fixtures-*/*/*.m4s; do
        [ -f "$f" ] || continue
        m=$(mktemp); { printf "$sidx_header"; head -c 16384 "$f"; } >"$m"; put sidx_parse "$m"; rm -f "$m"
    done
    # A minimal version-0 and version-1 sidx: 2 references of 1000 bytes / 2 s at timescale 1000.
    putstr sidx_parse "$sidx_header"'\x00\x00\x00\x34sidx\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x03\xe8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x03\xe8\x00\x00\x07\xd0\x90\x00\x00\x00\x00\x00\x03\xe8\x00\x00\x07\xd0\x90\x00\x00\x00'
    putstr sidx_parse "$sidx_header"'\x00\x00\x00\x10styp\x69\x73\x6f\x36\x00\x00\x00\x00\x00\x00\x00\x30sidx\x01\x00\x00\x00\x00\x00\x00\x01\x00\x00\x03\xe8\x00\x00\x00\x00\x00\x00\x00\x0a\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x03\xe8\x00\x00\x07\xd0\x90\x00\x00\x00'
}

seed_tracker() {
    local id='-PM0203-AAAAAAAAAAAA' ih='J3KjvNhSbLlKe91dpkWw'
    putstr tracker_proto '{"action":"announce","interval":120,"info_hash":"'$ih'","complete":0,"incomplete":2}'
    putstr tracker_proto '{"action":"announce","info_hash":"'$ih'","offer_id":"A\\u00b6#\\u00a1\\u001e\\u001c\\u00de\\u00b6\\u00ce\\u00c0E%%\\u000b9\\u0016(\\u0000xyz","peer_id":"'$id'","offer":{"type":"offer","sdp":"v=0\\r\\no=- 1 2 IN IP4 127.0.0.1\\r\\n"}}'
    putstr tracker_proto '{"action":"announce","info_hash":"'$ih'","peer_id":"'$id'","answer":{"type":"answer","sdp":"v=0\\r\\n"},"offer_id":"\\u00b7;g\\u00ee\\u0012\\u00ad\\u00ceQ\\u00e3=\\\\F\\u0017V\\u00fc\\u00aeP\\u0080\\u0085\\u009f"}'
    putstr tracker_proto '{"failure reason":"unknown info_hash"}'
    putstr tracker_proto '{"action":"announce","warning message":"slow down","min interval":"30","tracker id":"t1","info_hash":"'$ih'"}'
    # Encoder half: 60 id bytes, then an SDP.
    putstr tracker_proto '\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f\x90\x91\x92\x93"\\\xff\xfe\x00\x7f\x1f\x20\x41\x42\x43\x44\x45\x46\x47\x48\x49\x4a\x4b\x4cv=0\r\na=x\r\n'
    if [ -f "$reference" ]; then
        grep -o '{"action"[^`]*}' "$reference" | while IFS= read -r line; do
            local f; f=$(mktemp); printf '%s' "$line" >"$f"; put tracker_proto "$f"; rm -f "$f"
        done
    fi
}

seed_sdp() {
    # A data-channel offer in the shape browsers send through the trackers (non-trickle: the
    # candidates are inside), one with an mDNS host candidate, and one without m=application.
    local head='v=0\r\no=- 4611731710000000000 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS\r\n'
    local app='m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:Ab1c\r\na=ice-pwd:0123456789abcdefghijklmn\r\na=ice-options:trickle\r\na=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\na=setup:actpass\r\na=mid:0\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n'
    putstr sdp_remote "$head$app"'a=candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host generation 0\r\na=end-of-candidates\r\n'
    putstr sdp_remote "$head$app"'a=candidate:2 1 udp 2122260223 3f2a1c9e-0000-4000-8000-123456789abc.local 50001 typ host\r\na=candidate:3 1 udp 1686052607 203.0.113.7 61000 typ srflx raddr 0.0.0.0 rport 0\r\n'
    putstr sdp_remote "$head"'m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\na=mid:0\r\n'
}

seed_wire() {
    # Driver scripts (see src/p2p/fuzz_driver.rs): FRAMED (op 1) with a small body, a TIMER,
    # a REQUEST and an ANSWER.
    putstr wire_decode '\x01\x06\x00\x00\x00\x00\x01\x00\x00\x04\x05\x05\x01\x00\x00\x07\x10'
    putstr wire_decode '\x00\x0c\x00cstr\x00\x00\x00\x01\x00cend\x02\x03\x00\x01\x00\x00\x03\x03\x00\x00\x00\x00\x01'
}

targets=${1:-all}
case $targets in
all) seed_hls; seed_dash; seed_sidx; seed_tracker; seed_sdp; seed_wire ;;
hls_parse) seed_hls ;;
dash_parse) seed_dash ;;
sidx_parse) seed_sidx ;;
tracker_proto) seed_tracker ;;
sdp_remote) seed_sdp ;;
wire_decode) seed_wire ;;
*) echo "unknown target $targets" >&2; exit 2 ;;
esac
echo "seeded $n files"; for d in corpus/*; do echo "$d: $(ls "$d" | wc -l)"; done
