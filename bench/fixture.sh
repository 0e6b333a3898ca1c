# Sourced by the browser benchmarks: `bench_fixture DIR SECS` encodes the interop suite's HLS
# ladder (tests/interop.rs `encode`: 640x360 600k + 320x180 200k, AAC 64k, 2-s segments,
# master.m3u8) of SECS seconds into DIR, unless DIR/master.m3u8 is there already.
bench_fixture () {
  [ -f "$1/master.m3u8" ] && return 0
  mkdir -p "$1"
  (cd "$1" && ffmpeg -hide_banner -loglevel error -nostdin -y -f lavfi -i testsrc2=size=640x360:rate=25 \
    -f lavfi -i sine=frequency=440:sample_rate=48000 -t "$2" \
    -filter_complex '[0:v]split=2[a][b];[b]scale=320:180[c]' -map '[a]' -map 1:a -map '[c]' -map 1:a \
    -c:v libx264 -preset veryfast -profile:v main -pix_fmt yuv420p -g 50 -keyint_min 50 -sc_threshold 0 \
    -b:v:0 600k -maxrate:v:0 660k -bufsize:v:0 1200k -b:v:1 200k -maxrate:v:1 220k -bufsize:v:1 400k \
    -c:a aac -b:a 64k -ac 2 -f hls -hls_time 2 -hls_playlist_type vod \
    -hls_flags independent_segments -hls_segment_type mpegts -master_pl_name master.m3u8 \
    -var_stream_map 'v:0,a:0,name:360p v:1,a:1,name:180p' \
    -hls_segment_filename 'v%v/seg%03d.ts' 'v%v/index.m3u8')
}
