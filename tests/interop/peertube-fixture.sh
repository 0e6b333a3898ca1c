#!/usr/bin/env bash
# A PeerTube VOD as a PeerTube server stores and serves it (see the README, "PeerTube emulation"):
#   peertube-fixture.sh OUTDIR [SECS]          (SECS: 30 by default)
# writes, under OUTDIR/static/streaming-playlists/hls/<VID>/,
#   <A360>-360-fragmented.mp4, <A180>-180-fragmented.mp4   one fMP4 file per resolution (single_file),
#   <A360>-360.m3u8, <A180>-180.m3u8                        VOD playlists: EXT-X-MAP + EXT-X-BYTERANGE,
#                                                           4-s segments (fixed GOP), AAC muxed in
#   <B>-master.m3u8                                         PeerTube's master: #EXTM3U, #EXT-X-VERSION:3,
#                                                           a blank line, STREAM-INF ascending by resolution
#   <C>-segments-sha256.json                                {file: {"start-end": sha256 hex}} (end inclusive)
# with PeerTube's ffmpeg HLS options (-hls_time 4 -hls_list_size 0 -hls_playlist_type vod
# -hls_segment_type fmp4 -hls_flags single_file, run inside that directory so EXT-X-MAP holds the
# bare file name) and its file naming (a UUID per file; fixed ones here, so runs are deterministic),
# and OUTDIR/peertube.json: the master and hash-file paths under OUTDIR, the variant count, the
# files and segment counts. Serve OUTDIR as the origin root (run.mjs --fixtures OUTDIR
# --stream <master path>). The last line printed is `PEERTUBE_FIXTURE <OUTDIR>/peertube.json`.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 OUTDIR [SECS]" >&2; exit 2; }
OUT=$(mkdir -p "$1" && cd "$1" && pwd)
SECS=${2:-30}

VID=4b0c2f5e-8d3a-4e61-9a7b-2c5d8e1f0a93           # the video's UUID: its directory
A360=0d7f4c21-5b8e-4a39-b6c2-7e1a9f3d5c80          # one UUID per video file
A180=a3e95b07-2c4d-4f18-8e6a-5d0b7c9f1e24
B=f2c81d46-7a3b-4e5c-9d10-6b8e2a4f7c35             # the master (new each time PeerTube rewrites it)
C=58b3e0a9-1f6d-4c27-a8e4-3c9d7b2f0e61             # the segments-sha256 JSON
REL=static/streaming-playlists/hls/$VID
DIR=$OUT/$REL
rm -rf "$DIR"
mkdir -p "$DIR"

# One ffmpeg, two outputs: a keyframe exactly every 4 s (25 fps, GOP 100, no scene cuts), so every
# segment is 4 s; PeerTube's HLS options per output.
HLS=(-f hls -hls_time 4 -hls_list_size 0 -hls_playlist_type vod -hls_segment_type fmp4 -hls_flags single_file)
(cd "$DIR" && ffmpeg -hide_banner -loglevel error -nostdin -y \
  -f lavfi -t "$SECS" -i "testsrc2=size=640x360:rate=25" -f lavfi -t "$SECS" -i "sine=frequency=440:sample_rate=48000" \
  -filter_complex '[0:v]split=2[a][b];[b]scale=320:180[c]' \
  -map '[a]' -map 1:a -c:v libx264 -preset veryfast -profile:v high -pix_fmt yuv420p -r 25 \
    -g 100 -keyint_min 100 -sc_threshold 0 -b:v 600k -maxrate 660k -bufsize 1200k -c:a aac -b:a 64k -ac 2 \
    "${HLS[@]}" -hls_segment_filename "$A360-360-fragmented.mp4" "$A360-360.m3u8" \
  -map '[c]' -map 1:a -c:v libx264 -preset veryfast -profile:v high -pix_fmt yuv420p -r 25 \
    -g 100 -keyint_min 100 -sc_threshold 0 -b:v 200k -maxrate 220k -bufsize 400k -c:a aac -b:a 64k -ac 2 \
    "${HLS[@]}" -hls_segment_filename "$A180-180-fragmented.mp4" "$A180-180.m3u8")

# The master playlist, the hash file and peertube.json.
python3 - "$OUT" "$REL" "$B" "$C" "$A180:180:320x180" "$A360:360:640x360" <<'PY'
import hashlib, json, math, os, re, subprocess, sys
out, rel, b, c, *files = sys.argv[1:]
d = os.path.join(out, rel)
variants = []
for spec in files:                       # ascending resolution, as PeerTube sorts them
    uuid, res, wh = spec.split(':')
    mp4 = f'{uuid}-{res}-fragmented.mp4'
    m3u8 = f'{uuid}-{res}.m3u8'
    text = open(os.path.join(d, m3u8)).read()
    assert f'#EXT-X-MAP:URI="{mp4}"' in text, f'{m3u8}: EXT-X-MAP does not name the bare file'
    data = open(os.path.join(d, mp4), 'rb').read()
    # PeerTube's updateSha256VODSegments: only the ^#EXT-X-BYTERANGE:(\d+)@(\d+)$ lines (not the map)
    ranges = {}
    for m in re.finditer(r'^#EXT-X-BYTERANGE:(\d+)@(\d+)$', text, re.M):
        n, off = int(m.group(1)), int(m.group(2))
        assert off + n <= len(data)
        ranges[f'{off}-{off + n - 1}'] = hashlib.sha256(data[off:off + n]).hexdigest()
    durs = [float(x) for x in re.findall(r'^#EXTINF:([\d.]+),', text, re.M)]
    p = json.loads(subprocess.check_output(['ffprobe', '-v', 'error', '-show_streams', '-of', 'json',
                                            os.path.join(d, mp4)]))
    v = next(s for s in p['streams'] if s['codec_type'] == 'video')
    prof = {'Baseline': 0x42, 'Constrained Baseline': 0x42, 'Main': 0x4d, 'High': 0x64}[v['profile']]
    num, den = (int(x) for x in v['r_frame_rate'].split('/'))
    variants.append({
        'resolution': int(res), 'file': mp4, 'playlist': m3u8, 'bytes': len(data), 'segments': len(ranges),
        'durations': durs, 'sha256': ranges,
        'bandwidth': math.ceil(len(data) * 8 / sum(durs)),
        'wh': wh, 'fps': round(num / den),
        'codecs': f'avc1.{prof:02x}00{int(v["level"]):02x},mp4a.40.2',
    })
# PeerTube's updateMasterHLSPlaylist: #EXTM3U, #EXT-X-VERSION:3, '' then per file (ascending
# resolution) STREAM-INF + the resolution playlist's name.
lines = ['#EXTM3U', '#EXT-X-VERSION:3', '']
for v in variants:
    lines += [f'#EXT-X-STREAM-INF:BANDWIDTH={v["bandwidth"]},RESOLUTION={v["wh"]},FRAME-RATE={v["fps"]},CODECS="{v["codecs"]}"',
              v['playlist']]
master = f'{b}-master.m3u8'
open(os.path.join(d, master), 'w').write('\n'.join(lines) + '\n')
sha = f'{c}-segments-sha256.json'
json.dump({v['file']: v['sha256'] for v in variants}, open(os.path.join(d, sha), 'w'))
info = {
    'video_uuid': rel.rsplit('/', 1)[1],
    'dir': rel,
    'master': f'{rel}/{master}',          # paths under OUTDIR (= the origin's root)
    'sha': f'{rel}/{sha}',
    'variants': len(variants),             # = the info-hash count a PeerTube tracker whitelists
    'files': [{k: v[k] for k in ('resolution', 'file', 'playlist', 'bytes', 'segments', 'bandwidth', 'codecs', 'durations')}
              for v in variants],
}
json.dump(info, open(os.path.join(out, 'peertube.json'), 'w'), indent=1)
print(f'master {info["master"]}')
print(f'sha {info["sha"]}')
print(f'variants {info["variants"]} (' + ', '.join(f'{v["resolution"]}p: {v["segments"]} segments, {v["bytes"]} B' for v in variants) + ')')
print(f'PEERTUBE_FIXTURE {os.path.join(out, "peertube.json")}')
PY
