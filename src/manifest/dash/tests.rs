use super::*;
use crate::media::PlaylistKind;

const NOW: f64 = 1_800_000_000.0; // ignored by static MPDs

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

fn vod_url() -> Url {
    url("https://cdn.example.com/vod/a/manifest.mpd?token=abc")
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn p(xml: &str) -> Mpd {
    parse(xml.as_bytes(), &vod_url(), NOW).unwrap_or_else(|e| panic!("{e}"))
}

fn rep(m: &Mpd, period: usize, set: usize, r: usize) -> &Representation {
    &m.periods[period].adaptation_sets[set].representations[r]
}

fn segs(m: &Mpd, period: usize, set: usize, r: usize) -> &[Segment] {
    rep(m, period, set, r).segment_list()
}

fn urls(s: &[Segment]) -> Vec<String> {
    s.iter().map(|s| s.resource.url.to_string()).collect()
}

fn starts(s: &[Segment]) -> Vec<Duration> {
    s.iter().map(|s| s.start).collect()
}

fn durations(s: &[Segment]) -> Vec<Duration> {
    s.iter().map(|s| s.duration).collect()
}

fn numbers(s: &[Segment]) -> Vec<u64> {
    s.iter().map(|s| s.sequence).collect()
}

/// PML's DASH externalId (p2p::segment_id::dash_segment_id).
fn pml_id(start_seconds: f64) -> i64 {
    (start_seconds / 0.5).trunc() as i64
}

fn mpd(attrs: &str, body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" minBufferTime="PT2S" {attrs}>
{body}
</MPD>"#
    )
}

// ---------------------------------------------------------------------------------------------
// SegmentTemplate
// ---------------------------------------------------------------------------------------------

#[test]
fn static_number_template() {
    let m = p(&mpd(
        r#"type="static" mediaPresentationDuration="PT9.5S""#,
        r#"<Period id="p0">
  <AdaptationSet contentType="video" mimeType="video/mp4" frameRate="30000/1001" lang="und">
    <SegmentTemplate timescale="1000" duration="2000" startNumber="5"
        initialization="init-$RepresentationID$.mp4"
        media="seg-$RepresentationID$-$Bandwidth$-$Number%05d$.m4s"/>
    <Representation id="v1" bandwidth="800000" codecs="avc1.4d401e" width="640" height="360"/>
  </AdaptationSet>
</Period>"#,
    ));
    assert!(!m.dynamic);
    assert_eq!(m.media_presentation_duration, Some(ms(9500)));
    assert_eq!(m.periods.len(), 1);
    let per = &m.periods[0];
    assert_eq!(per.id.as_deref(), Some("p0"));
    assert_eq!(per.start, Duration::ZERO);
    assert_eq!(per.duration, Some(ms(9500)));
    let set = &per.adaptation_sets[0];
    assert_eq!(set.stream_type, MediaType::Video);
    let r = rep(&m, 0, 0, 0);
    assert_eq!(r.id, "v1");
    assert_eq!(r.bandwidth, 800_000);
    assert_eq!(r.codecs.as_deref(), Some("avc1.4d401e"));
    assert_eq!(r.mime_type.as_deref(), Some("video/mp4"));
    assert_eq!((r.width, r.height), (Some(640), Some(360)));
    assert_eq!(r.frame_rate, Some(30000.0 / 1001.0));
    let init = Resource {
        url: url("https://cdn.example.com/vod/a/init-v1.mp4"),
        range: None,
    };
    assert_eq!(r.init, Some(init.clone()));
    let s = r.segment_list();
    assert_eq!(
        urls(s),
        (5..=9)
            .map(|n| format!("https://cdn.example.com/vod/a/seg-v1-800000-{n:05}.m4s"))
            .collect::<Vec<_>>()
    );
    assert_eq!(numbers(s), vec![5, 6, 7, 8, 9]);
    assert_eq!(
        starts(s),
        vec![ms(0), ms(2000), ms(4000), ms(6000), ms(8000)]
    );
    // The last segment is clipped to the period end.
    assert_eq!(
        durations(s),
        vec![ms(2000), ms(2000), ms(2000), ms(2000), ms(1500)]
    );
    for (i, seg) in s.iter().enumerate() {
        assert_eq!(seg.init, Some(init.clone()));
        assert_eq!(seg.start_seconds, Some(i as f64 * 2.0 + 0.0));
        assert_eq!(seg.resource.range, None);
        assert!(!seg.discontinuity && !seg.gap && seg.key.is_none());
    }
    assert_eq!(m.max_segment_duration, ms(2000));
    assert_eq!(m.live_start(NOW), None);
    assert_eq!(m.reload_interval(), None);
    assert_eq!(r.segment_index_at(ms(3999)), Some(1));
    assert_eq!(r.segment_index_at(ms(4000)), Some(2));
    assert_eq!(r.segment_index_at(ms(9500)), None);
    let pl = r.to_media_playlist(&m).unwrap();
    assert_eq!(pl.kind, PlaylistKind::Vod);
    assert!(pl.end_list);
    assert_eq!(pl.media_sequence, 5);
    assert_eq!(pl.target_duration, ms(2000));
    assert_eq!(pl.segments, s);
}

#[test]
fn timeline_template_repeats_pto_and_period_end() {
    // Period 10 s..20 s; PTO = 2 s (96000 @ 48 kHz).
    let m = p(&mpd(
        r#"type="static" mediaPresentationDuration="PT20S""#,
        r#"<Period start="PT10S">
  <AdaptationSet mimeType="audio/mp4" lang="en" codecs="mp4a.40.2">
    <SegmentTemplate timescale="48000" presentationTimeOffset="96000" startNumber="0"
        media="a/$Time$-$Number$.m4s" initialization="a/init.mp4">
      <SegmentTimeline>
        <S t="96000" d="96000" r="1"/>
        <S d="48000" r="-1"/>
        <S t="432000" d="96000" r="-1"/>
      </SegmentTimeline>
    </SegmentTemplate>
    <Representation id="a1" bandwidth="128000"/>
  </AdaptationSet>
</Period>"#,
    ));
    assert_eq!(m.periods[0].start, secs(10.0));
    assert_eq!(m.periods[0].duration, Some(secs(10.0)));
    assert_eq!(
        m.periods[0].adaptation_sets[0].stream_type,
        MediaType::Audio
    );
    assert_eq!(m.periods[0].adaptation_sets[0].lang.as_deref(), Some("en"));
    let s = segs(&m, 0, 0, 0);
    let times = [96000u64, 192000, 288000, 336000, 384000, 432000, 528000];
    assert_eq!(
        urls(s),
        times
            .iter()
            .enumerate()
            .map(|(n, t)| format!("https://cdn.example.com/vod/a/a/{t}-{n}.m4s"))
            .collect::<Vec<_>>()
    );
    assert_eq!(numbers(s), (0..7).collect::<Vec<_>>());
    // Presentation start = period start + (t − PTO)/timescale.
    assert_eq!(
        starts(s),
        [10.0, 12.0, 14.0, 15.0, 16.0, 17.0, 19.0]
            .map(secs)
            .to_vec()
    );
    // Last one clipped from 2 s to the period end.
    assert_eq!(
        durations(s),
        [2.0, 2.0, 1.0, 1.0, 1.0, 2.0, 1.0].map(secs).to_vec()
    );
    for (seg, t) in s.iter().zip(times) {
        assert_eq!(
            seg.start_seconds,
            Some(10.0 + (t as f64 - 96000.0) / 48000.0)
        );
    }
}

#[test]
fn timeline_gaps_overlaps_and_number() {
    let m = p(&mpd(
        r#"type="static" mediaPresentationDuration="PT50S""#,
        r#"<Period>
  <AdaptationSet mimeType="video/mp4">
    <Representation id="v" bandwidth="1">
      <SegmentTemplate media="$Number$.m4s" startNumber="3">
        <SegmentTimeline><S t="0" d="10"/><S t="12" d="10"/><S t="21" d="9" r="3"/><S t="40" d="10"/></SegmentTimeline>
      </SegmentTemplate>
    </Representation>
  </AdaptationSet>
</Period>"#,
    ));
    let s = segs(&m, 0, 0, 0);
    // The overlap at t=40 drops the repeat of t=21 that would start at 48 and shrinks the one
    // starting at 39; a gap stretches the first segment (Shaka createTimeline).
    assert_eq!(numbers(s), vec![3, 4, 5, 6, 7, 8]);
    assert_eq!(
        starts(s),
        [0.0, 12.0, 21.0, 30.0, 39.0, 40.0].map(secs).to_vec()
    );
    assert_eq!(
        durations(s),
        [12.0, 9.0, 9.0, 9.0, 1.0, 10.0].map(secs).to_vec()
    );
}

#[test]
fn template_identifier_formatting() {
    let f = |t: &str| fill_template(t, "rep 1", Some(42), Some(5000), Some(255)).unwrap();
    assert_eq!(f("$RepresentationID$/$Number$"), "rep 1/42");
    assert_eq!(f("$Number%05d$"), "00042");
    assert_eq!(f("$Number%01d$"), "42");
    assert_eq!(f("$Number%00d$"), "42");
    assert_eq!(f("$Time%x$"), "$Time%x$"); // not the %0N form: left alone
    assert_eq!(f("$Time%08x$-$Time%04X$-$Time%05o$"), "000000ff-00FF-00377");
    assert_eq!(f("$Bandwidth%07i$"), "0005000");
    assert_eq!(f("$RepresentationID%05d$"), "rep 1"); // width ignored (as Shaka)
    assert_eq!(f("a$$b"), "a$b");
    assert_eq!(f("$Foo$Number$"), "$Foo42");
    assert_eq!(f("$SubNumber$"), "$SubNumber$");
    assert_eq!(f("$%05d$"), "$%05d$");
    assert_eq!(f("x$"), "x$");
    assert_eq!(f("ünï$Number$çødé"), "ünï42çødé");
    // Missing values stay as written.
    assert_eq!(
        fill_template("$Number$-$Time$", "r", None, None, None).unwrap(),
        "$Number$-$Time$"
    );
    // Absurd widths are refused instead of allocated.
    assert!(matches!(
        fill_template("$Number%0999999999d$", "r", Some(1), None, None),
        Err(ManifestError::InvalidMpd(_))
    ));
    assert!(fill_template(
        "$Number%099999999999999999999999d$",
        "r",
        Some(1),
        None,
        None
    )
    .is_err());
    assert_eq!(
        fill_template("$Number%0255d$", "r", Some(1), None, None)
            .unwrap()
            .len(),
        255
    );
}

#[test]
fn number_template_time_and_fractional_duration() {
    // $Time$ without timeline = position × @duration (no PTO), as Shaka.
    let m = p(&mpd(
        r#"mediaPresentationDuration="PT5S""#,
        r#"<Period><AdaptationSet mimeType="video/mp4">
  <SegmentTemplate timescale="10" duration="25" presentationTimeOffset="7" media="$Time$.m4s"/>
  <Representation id="v" bandwidth="1"/>
</AdaptationSet></Period>"#,
    ));
    let s = segs(&m, 0, 0, 0);
    assert_eq!(urls(s).len(), 2);
    assert!(urls(s)[1].ends_with("/25.m4s"));
    assert_eq!(starts(s), [0.0, 2.5].map(secs).to_vec());
    // Fractional @duration (seen in the wild).
    let m = p(&mpd(
        r#"mediaPresentationDuration="PT5S""#,
        r#"<Period><AdaptationSet mimeType="video/mp4">
  <SegmentTemplate duration="2.5" media="$Number$.m4s"/>
  <Representation id="v" bandwidth="1"/>
</AdaptationSet></Period>"#,
    ));
    let s = segs(&m, 0, 0, 0);
    assert_eq!(starts(s), [0.0, 2.5].map(secs).to_vec());
    assert_eq!(durations(s), [2.5, 2.5].map(secs).to_vec());
}

#[test]
fn end_number_limits_segments() {
    let m = p(&mpd(
        r#"mediaPresentationDuration="PT100S""#,
        r#"<Period><AdaptationSet mimeType="video/mp4">
  <SegmentTemplate duration="10" startNumber="3" endNumber="5" media="$Number$.m4s"/>
  <Representation id="v" bandwidth="1"/>
</AdaptationSet></Period>"#,
    ));
    assert_eq!(numbers(segs(&m, 0, 0, 0)), vec![3, 4, 5]);
}

// ---------------------------------------------------------------------------------------------
// SegmentList
// ---------------------------------------------------------------------------------------------

#[test]
fn segment_list_media_range_and_shaka_rounding() {
    let urls_xml: String = (0..30)
        .map(|i| {
            format!(
                r#"<SegmentURL mediaRange="{}-{}"/>"#,
                100 + 100 * i,
                199 + 100 * i
            )
        })
        .collect();
    let m = p(&mpd(
        r#"mediaPresentationDuration="PT3S""#,
        &format!(
            r#"<Period><BaseURL>media/</BaseURL>
  <AdaptationSet mimeType="video/mp4">
    <Representation id="r" bandwidth="1000">
      <BaseURL>file.mp4</BaseURL>
      <SegmentList timescale="10" duration="1">
        <Initialization range="0-99"/>
        {urls_xml}
      </SegmentList>
    </Representation>
  </AdaptationSet>
</Period>"#
        ),
    ));
    let r = rep(&m, 0, 0, 0);
    let file = url("https://cdn.example.com/vod/a/media/file.mp4");
    assert_eq!(
        r.init,
        Some(Resource {
            url: file.clone(),
            range: Some(ByteRange {
                offset: 0,
                length: 100
            })
        })
    );
    let s = r.segment_list();
    assert_eq!(s.len(), 30);
    for (i, seg) in s.iter().enumerate() {
        assert_eq!(seg.resource.url, file);
        assert_eq!(
            seg.resource.range,
            Some(ByteRange {
                offset: 100 + 100 * i as u64,
                length: 100
            })
        );
        assert_eq!(seg.start, ms(100 * i as u64));
        assert_eq!(seg.duration, ms(100));
        assert_eq!(seg.sequence, 1 + i as u64);
    }
    assert_eq!(s[0].resource.range.unwrap().http_header(), "bytes=100-199");
    // Shaka accumulates 0.1 ten times: 0.9999999999999999, so the PML id of the segment that
    // exactly starts at 1.0 s is 1, not 2. start_seconds reproduces that; `start` stays exact.
    assert_eq!(s[10].start, secs(1.0));
    assert_eq!(s[10].start_seconds, Some(0.9999999999999999));
    assert_eq!(pml_id(s[10].start_seconds.unwrap()), 1);
    assert_eq!(pml_id(s[10].start.as_secs_f64()), 2);
    assert_eq!(s[10].start_seconds_f64(), 0.9999999999999999);
}

#[test]
fn segment_list_with_timeline_and_single_segment() {
    let m = p(&mpd(
        r#"mediaPresentationDuration="PT20S""#,
        r#"<Period>
  <AdaptationSet mimeType="video/mp4">
    <Representation id="r" bandwidth="1">
      <SegmentList timescale="2">
        <SegmentTimeline><S t="0" d="8" r="2"/></SegmentTimeline>
        <SegmentURL media="s1.m4s"/><SegmentURL media="s2.m4s"/>
        <SegmentURL media="s3.m4s"/><SegmentURL media="s4.m4s"/>
      </SegmentList>
    </Representation>
  </AdaptationSet>
  <AdaptationSet mimeType="text/vtt" lang="fr">
    <Representation id="sub" bandwidth="100"><BaseURL>subs/fr.vtt</BaseURL></Representation>
  </AdaptationSet>
</Period>"#,
    ));
    let s = segs(&m, 0, 0, 0);
    // Timeline has 3 entries, the list 4 URLs: truncated to 3 (as Shaka).
    assert_eq!(urls(s).len(), 3);
    assert!(urls(s)[2].ends_with("/vod/a/s3.m4s"));
    assert_eq!(starts(s), [0.0, 4.0, 8.0].map(secs).to_vec());
    assert_eq!(durations(s), [4.0, 4.0, 4.0].map(secs).to_vec());
    // A Representation without addressing is one segment spanning the period.
    let set = &m.periods[0].adaptation_sets[1];
    assert_eq!(set.stream_type, MediaType::Subtitles);
    let sub = set.representations[0].segment_list();
    assert_eq!(sub.len(), 1);
    assert_eq!(
        sub[0].resource.url.as_str(),
        "https://cdn.example.com/vod/a/subs/fr.vtt"
    );
    assert_eq!(sub[0].duration, secs(20.0));
}

// ---------------------------------------------------------------------------------------------
// SegmentBase + sidx
// ---------------------------------------------------------------------------------------------

fn segment_base_mpd(extra: &str) -> String {
    mpd(
        r#"mediaPresentationDuration="PT3S""#,
        &format!(
            r#"<Period>
  <AdaptationSet mimeType="audio/mp4" codecs="mp4a.40.2">
    <Representation id="a" bandwidth="128000">
      <BaseURL>audio.mp4</BaseURL>
      <SegmentBase indexRange="800-899" timescale="10" presentationTimeOffset="2">
        <Initialization range="0-799"/>
        {extra}
      </SegmentBase>
    </Representation>
  </AdaptationSet>
</Period>"#
        ),
    )
}

#[test]
fn segment_base_sidx_v0() {
    let m = p(&segment_base_mpd(""));
    let r = rep(&m, 0, 0, 0);
    let media = url("https://cdn.example.com/vod/a/audio.mp4");
    assert_eq!(
        r.index,
        Some(Resource {
            url: media.clone(),
            range: Some(ByteRange {
                offset: 800,
                length: 100
            })
        })
    );
    let SegmentSource::NeedsIndex(ctx) = &r.segments else {
        panic!("expected NeedsIndex");
    };
    assert!(!ctx.index_is_external);
    assert_eq!(r.segment_list(), &[]);
    assert!(r.to_media_playlist(&m).is_none());
    let sidx = sidx::build(
        0,
        10,
        7,
        20,
        &[(false, 1000, 10), (false, 2000, 10), (false, 500, 10)],
    );
    assert_eq!(sidx.len(), 68);
    let s = segments_from_sidx(&sidx, ctx).unwrap();
    // first_offset is anchored after the sidx box: 800 + 68 + 20.
    let ranges: Vec<_> = s.iter().map(|s| s.resource.range.unwrap()).collect();
    assert_eq!(
        ranges,
        vec![
            ByteRange {
                offset: 888,
                length: 1000
            },
            ByteRange {
                offset: 1888,
                length: 2000
            },
            ByteRange {
                offset: 3888,
                length: 500
            },
        ]
    );
    assert!(s.iter().all(|s| s.resource.url == media));
    assert_eq!(numbers(&s), vec![1, 2, 3]);
    // (ept + Σd)/10 − PTO/10; the last one is clipped to the 3 s period.
    assert_eq!(starts(&s), [0.5, 1.5, 2.5].map(secs).to_vec());
    assert_eq!(durations(&s), [1.0, 1.0, 0.5].map(secs).to_vec());
    assert_eq!(s[0].init, r.init);
    // Shaka: 7/10 + (0 − 2/10) = 0.49999999999999994 → PML id 0 (exact start 0.5 would be 1).
    assert_eq!(s[0].start_seconds, Some(7.0 / 10.0 + (0.0 - 2.0 / 10.0)));
    assert_eq!(s[0].start_seconds, Some(0.49999999999999994));
    assert_eq!(pml_id(s[0].start_seconds.unwrap()), 0);
    assert_eq!(pml_id(s[0].start.as_secs_f64()), 1);
    assert_eq!(s[1].start_seconds, Some(17.0 / 10.0 + (0.0 - 2.0 / 10.0)));
}

#[test]
fn segment_base_sidx_v1_external_index_and_errors() {
    let m = p(&segment_base_mpd(
        r#"<RepresentationIndex sourceURL="audio.sidx"/>"#,
    ));
    let r = rep(&m, 0, 0, 0);
    let SegmentSource::NeedsIndex(ctx) = &r.segments else {
        panic!("expected NeedsIndex");
    };
    assert!(ctx.index_is_external);
    assert_eq!(
        ctx.index.url.as_str(),
        "https://cdn.example.com/vod/a/audio.sidx"
    );
    assert_eq!(
        ctx.media_url.as_str(),
        "https://cdn.example.com/vod/a/audio.mp4"
    );
    let sidx = sidx::build(1, 10, 2, 20, &[(false, 1000, 10), (false, 2000, 10)]);
    let s = segments_from_sidx(&sidx, ctx).unwrap();
    // External index: first_offset counts from the start of the media resource.
    assert_eq!(s[0].resource.range.unwrap().offset, 20);
    assert_eq!(s[1].resource.range.unwrap().offset, 1020);
    assert_eq!(starts(&s), [0.0, 1.0].map(secs).to_vec());
    // Hierarchical sidx and garbage are errors.
    let h = sidx::build(0, 10, 0, 0, &[(true, 100, 10)]);
    assert!(matches!(
        segments_from_sidx(&h, ctx),
        Err(ManifestError::UnsupportedDash(_))
    ));
    assert!(matches!(
        segments_from_sidx(b"<html>", ctx),
        Err(ManifestError::InvalidSidx(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// Periods, BaseURL, inheritance
// ---------------------------------------------------------------------------------------------

#[test]
fn multiple_periods() {
    let m = p(&mpd(
        r#"type="static" mediaPresentationDuration="PT30S""#,
        r#"<BaseURL>https://media.example.net/root/</BaseURL>
<Period id="a" duration="PT10S">
  <AdaptationSet mimeType="video/mp4">
    <SegmentTemplate duration="5" media="a/$Number$.m4s"/>
    <Representation id="v" bandwidth="1"/>
  </AdaptationSet>
</Period>
<Period id="b">
  <BaseURL>b/</BaseURL>
  <AdaptationSet mimeType="video/mp4">
    <SegmentTemplate duration="5" media="$Number$.m4s"/>
    <Representation id="v" bandwidth="1"/>
  </AdaptationSet>
</Period>
<Period id="c" start="PT25S">
  <AdaptationSet mimeType="video/mp4">
    <SegmentTemplate duration="5" media="c/$Number$.m4s"/>
    <Representation id="v" bandwidth="1"/>
  </AdaptationSet>
</Period>"#,
    ));
    let ps: Vec<_> = m
        .periods
        .iter()
        .map(|p| (p.id.clone().unwrap(), p.start, p.duration))
        .collect();
    assert_eq!(
        ps,
        vec![
            ("a".into(), secs(0.0), Some(secs(10.0))),
            ("b".into(), secs(10.0), Some(secs(15.0))),
            ("c".into(), secs(25.0), Some(secs(5.0))),
        ]
    );
    assert_eq!(m.periods[1].end(), Some(secs(25.0)));
    let b = segs(&m, 1, 0, 0);
    assert_eq!(
        urls(b),
        vec![
            "https://media.example.net/root/b/1.m4s",
            "https://media.example.net/root/b/2.m4s",
            "https://media.example.net/root/b/3.m4s"
        ]
    );
    assert_eq!(starts(b), [10.0, 15.0, 20.0].map(secs).to_vec());
    assert_eq!(b[0].start_seconds, Some(10.0));
    assert_eq!(b[2].start_seconds, Some(2.0 * 5.0 + 10.0));
    // Period boundaries are flagged; discontinuity_sequence = period index.
    assert!(!segs(&m, 0, 0, 0)[0].discontinuity);
    assert!(b[0].discontinuity && !b[1].discontinuity);
    assert_eq!(b[1].discontinuity_sequence, 1);
    let c = segs(&m, 2, 0, 0);
    assert_eq!(urls(c), vec!["https://media.example.net/root/c/1.m4s"]);
    assert_eq!(c[0].start, secs(25.0));
}

#[test]
fn base_url_hierarchy() {
    let final_url = url("https://cdn.example.com/path/to/manifest.mpd?tok=1");
    let xml = mpd(
        r#"mediaPresentationDuration="PT2S""#,
        r#"<BaseURL>../base/</BaseURL>
<Period>
  <BaseURL>p/</BaseURL>
  <AdaptationSet mimeType="video/mp4">
    <SegmentTemplate duration="2" media="s.m4s" initialization="i.mp4"/>
    <Representation id="rel" bandwidth="1"><BaseURL> r/ </BaseURL></Representation>
    <Representation id="abs" bandwidth="1"><BaseURL>https://other.example.org/x/</BaseURL></Representation>
    <Representation id="none" bandwidth="1"/>
  </AdaptationSet>
  <AdaptationSet mimeType="audio/mp4">
    <BaseURL>/abs/</BaseURL>
    <SegmentTemplate duration="2" media="s.m4s"/>
    <Representation id="a" bandwidth="1"><BaseURL>r/</BaseURL></Representation>
  </AdaptationSet>
</Period>"#,
    );
    let m = parse(xml.as_bytes(), &final_url, NOW).unwrap();
    let u = |s: usize, r: usize| segs(&m, 0, s, r)[0].resource.url.to_string();
    assert_eq!(u(0, 0), "https://cdn.example.com/path/base/p/r/s.m4s");
    assert_eq!(
        rep(&m, 0, 0, 0).init.as_ref().unwrap().url.as_str(),
        "https://cdn.example.com/path/base/p/r/i.mp4"
    );
    assert_eq!(u(0, 1), "https://other.example.org/x/s.m4s");
    assert_eq!(u(0, 2), "https://cdn.example.com/path/base/p/s.m4s");
    assert_eq!(u(1, 0), "https://cdn.example.com/abs/r/s.m4s");
    assert_eq!(m.url, final_url);

    // Without any BaseURL: relative to the MPD's final URL (its query is not inherited).
    let m = p(&mpd(
        r#"mediaPresentationDuration="PT2S""#,
        r#"<Period><AdaptationSet mimeType="video/mp4">
  <SegmentTemplate duration="2" media="seg/$Number$.m4s?x=$Bandwidth$"/>
  <Representation id="v" bandwidth="7"/></AdaptationSet></Period>"#,
    ));
    assert_eq!(
        urls(segs(&m, 0, 0, 0)),
        vec!["https://cdn.example.com/vod/a/seg/1.m4s?x=7"]
    );
}

#[test]
fn inheritance_per_attribute() {
    let m = p(&mpd(
        r#"mediaPresentationDuration="PT4S""#,
        r#"<Period>
  <SegmentTemplate timescale="1000" duration="2000" media="$RepresentationID$/$Number$.m4s"
      initialization="$RepresentationID$/init.mp4"/>
  <AdaptationSet mimeType="video/mp4">
    <SegmentTemplate startNumber="10"/>
    <Representation id="a" bandwidth="1"/>
    <Representation id="b" bandwidth="1">
      <SegmentTemplate media="b-$Number$.m4s"/>
    </Representation>
  </AdaptationSet>
  <AdaptationSet mimeType="audio/mp4">
    <SegmentBase timescale="1000"><Initialization sourceURL="init.mp4" range="0-9"/></SegmentBase>
    <Representation id="c" bandwidth="1">
      <BaseURL>c.mp4</BaseURL>
      <SegmentBase indexRange="10-99"/>
    </Representation>
  </AdaptationSet>
</Period>"#,
    ));
    assert_eq!(
        urls(segs(&m, 0, 0, 0)),
        vec![
            "https://cdn.example.com/vod/a/a/10.m4s",
            "https://cdn.example.com/vod/a/a/11.m4s"
        ]
    );
    assert_eq!(
        rep(&m, 0, 0, 1).init.as_ref().unwrap().url.as_str(),
        "https://cdn.example.com/vod/a/b/init.mp4"
    );
    assert_eq!(
        urls(segs(&m, 0, 0, 1)),
        vec![
            "https://cdn.example.com/vod/a/b-10.m4s",
            "https://cdn.example.com/vod/a/b-11.m4s"
        ]
    );
    // SegmentBase: Initialization from the AdaptationSet, indexRange from the Representation.
    let c = rep(&m, 0, 1, 0);
    assert_eq!(
        c.init,
        Some(Resource {
            url: url("https://cdn.example.com/vod/a/init.mp4"),
            range: Some(ByteRange {
                offset: 0,
                length: 10
            })
        })
    );
    let SegmentSource::NeedsIndex(ctx) = &c.segments else {
        panic!()
    };
    assert_eq!(ctx.timescale, 1000);
    assert_eq!(
        ctx.index.range,
        Some(ByteRange {
            offset: 10,
            length: 90
        })
    );
    assert_eq!(
        ctx.media_url.as_str(),
        "https://cdn.example.com/vod/a/c.mp4"
    );
}

#[test]
fn stream_types_and_attributes() {
    let m = p(&mpd(
        r#"mediaPresentationDuration="PT2S""#,
        r#"<Period>
  <AdaptationSet id="1" mimeType="video/mp4" codecs="avc1.64001f,mp4a.40.2">
    <ContentProtection schemeIdUri="urn:mpeg:dash:mp4protection:2011" value="cenc"/>
    <SegmentTemplate duration="2" media="$Number$"/>
    <Representation id="muxed" bandwidth="1"/>
  </AdaptationSet>
  <AdaptationSet lang="de">
    <Role schemeIdUri="urn:mpeg:dash:role:2011" value="main"/>
    <Label>Deutsch</Label>
    <SegmentTemplate duration="2" media="$Number$"/>
    <Representation id="a" bandwidth="1" codecs="ec-3">
      <AudioChannelConfiguration schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011" value="6"/>
    </Representation>
  </AdaptationSet>
  <AdaptationSet contentType="text" mimeType="application/mp4" codecs="stpp">
    <SegmentTemplate duration="2" media="$Number$"/>
    <Representation id="t" bandwidth="1"/>
  </AdaptationSet>
  <AdaptationSet mimeType="application/mp4">
    <SegmentTemplate duration="2" media="$Number$"/>
    <Representation id="w" bandwidth="1" codecs="wvtt"/>
  </AdaptationSet>
  <AdaptationSet contentType="image" mimeType="image/jpeg">
    <SegmentTemplate duration="2" media="$Number$.jpg"/>
    <Representation id="thumbs" bandwidth="1"/>
  </AdaptationSet>
  <AdaptationSet mimeType="application/octet-stream">
    <Representation id="unknown" bandwidth="1"/>
  </AdaptationSet>
</Period>"#,
    ));
    let sets = &m.periods[0].adaptation_sets;
    let types: Vec<_> = sets.iter().map(|s| s.stream_type).collect();
    assert_eq!(
        types,
        vec![
            MediaType::Video,
            MediaType::Audio,
            MediaType::Subtitles,
            MediaType::Subtitles
        ]
    );
    assert!(sets[0].encrypted && !sets[1].encrypted);
    assert_eq!(sets[0].id.as_deref(), Some("1"));
    assert_eq!(sets[1].lang.as_deref(), Some("de"));
    assert_eq!(sets[1].label.as_deref(), Some("Deutsch"));
    assert_eq!(sets[1].roles, vec!["main".to_string()]);
    let a = &sets[1].representations[0];
    assert_eq!(a.channels, Some(6));
    assert_eq!(a.lang.as_deref(), Some("de"));
    assert_eq!(a.label.as_deref(), Some("Deutsch"));
}

// ---------------------------------------------------------------------------------------------
// Live
// ---------------------------------------------------------------------------------------------

const AST: &str = "2026-01-01T00:00:00Z";
const AST_UNIX: f64 = 1_767_225_600.0;

fn live_number_mpd(extra_attrs: &str) -> String {
    mpd(
        &format!(
            r#"type="dynamic" availabilityStartTime="{AST}" publishTime="{AST}" timeShiftBufferDepth="PT30S" minimumUpdatePeriod="PT2S" {extra_attrs}"#
        ),
        r#"<Location>https://edge.example.com/live/manifest.mpd</Location>
<Period id="live" start="PT10S">
  <AdaptationSet mimeType="video/mp4">
    <SegmentTemplate timescale="90000" duration="180000" startNumber="1" media="v/$Number$.m4s" initialization="v/init.mp4"/>
    <Representation id="v" bandwidth="1000000"/>
  </AdaptationSet>
</Period>"#,
    )
}

#[test]
fn live_number_template_window() {
    let xml = live_number_mpd("");
    let now = AST_UNIX + 100.5;
    let m = parse(xml.as_bytes(), &vod_url(), now).unwrap();
    assert!(m.dynamic);
    assert_eq!(m.availability_start, Some(AST_UNIX));
    assert_eq!(m.publish_time, Some(AST_UNIX));
    assert_eq!(m.time_shift_buffer_depth, Some(secs(30.0)));
    assert_eq!(m.min_update_period, Some(secs(2.0)));
    assert_eq!(m.reload_interval(), Some(secs(2.0)));
    assert_eq!(
        m.location.as_ref().map(Url::as_str),
        Some("https://edge.example.com/live/manifest.mpd")
    );
    assert_eq!(m.now_unix, now);
    let s = segs(&m, 0, 0, 0);
    // Edge in the period: 90.5 s → 45 complete 2-s segments (numbers 1..=45); the 30-s window
    // starts at 60.5 s, so segments ending before it (numbers ≤ 30) are gone.
    assert_eq!(numbers(s), (31..=45).collect::<Vec<_>>());
    assert_eq!(s[0].start, secs(70.0));
    assert_eq!(s.last().unwrap().end(), secs(100.0));
    assert_eq!(s[0].start_seconds, Some(30.0 * 2.0 + 10.0));
    assert!(urls(s)[0].ends_with("/v/31.m4s"));
    // Live start: edge − 3 × 2 s (no suggestedPresentationDelay).
    assert_eq!(m.live_edge(now), Some(secs(100.5)));
    assert_eq!(m.presentation_delay(), secs(6.0));
    assert_eq!(m.live_start(now), Some(secs(94.5)));
    let r = rep(&m, 0, 0, 0);
    assert_eq!(r.segments_number_at(secs(94.5)), Some(43));
    let pl = r.to_media_playlist(&m).unwrap();
    assert_eq!(pl.kind, PlaylistKind::Live);
    assert!(!pl.end_list);
    assert_eq!(pl.media_sequence, 31);
    assert_eq!(pl.target_duration, secs(2.0));
    assert_eq!(pl.segments.len(), 15);

    // A segment ending exactly at the edge is available; one ending later is not.
    let m = parse(xml.as_bytes(), &vod_url(), AST_UNIX + 10.0 + 46.0).unwrap();
    assert_eq!(numbers(segs(&m, 0, 0, 0)).last(), Some(&23));
    let m = parse(xml.as_bytes(), &vod_url(), AST_UNIX + 10.0 + 45.999).unwrap();
    assert_eq!(numbers(segs(&m, 0, 0, 0)).last(), Some(&22));
    // Before the period starts: nothing yet.
    let m = parse(xml.as_bytes(), &vod_url(), AST_UNIX + 5.0).unwrap();
    assert!(segs(&m, 0, 0, 0).is_empty());
    assert_eq!(m.live_start(AST_UNIX + 5.0), Some(Duration::ZERO));

    // suggestedPresentationDelay wins, bounded by the window.
    let xml = live_number_mpd(r#"suggestedPresentationDelay="PT10S""#);
    let m = parse(xml.as_bytes(), &vod_url(), now).unwrap();
    assert_eq!(m.suggested_presentation_delay, Some(secs(10.0)));
    assert_eq!(m.live_start(now), Some(secs(90.5)));
    let xml = live_number_mpd(r#"suggestedPresentationDelay="PT100S""#);
    let m = parse(xml.as_bytes(), &vod_url(), now).unwrap();
    assert_eq!(m.presentation_delay(), secs(30.0));
    assert_eq!(m.live_start(now), Some(secs(70.5)));
}

impl Representation {
    /// Test helper: segment number at `t` via start_index_for.
    fn segments_number_at(&self, t: Duration) -> Option<u64> {
        self.segment_list()
            .get(self.start_index_for(t))
            .map(|s| s.sequence)
    }
}

#[test]
fn live_unbounded_window_is_capped_not_allocated() {
    // AST at the epoch, 1-s segments, no timeShiftBufferDepth: 1.8e9 segments exist.
    let xml = mpd(
        r#"type="dynamic" availabilityStartTime="1970-01-01T00:00:00Z""#,
        r#"<Period start="PT0S"><AdaptationSet mimeType="video/mp4">
  <SegmentTemplate duration="1" media="$Number$.m4s"/>
  <Representation id="v" bandwidth="1"/></AdaptationSet></Period>"#,
    );
    let m = parse(xml.as_bytes(), &vod_url(), NOW + 0.25).unwrap();
    let s = segs(&m, 0, 0, 0);
    assert_eq!(s.len(), MAX_LIVE_SEGMENTS);
    assert_eq!(s.last().unwrap().sequence, NOW as u64);
    assert_eq!(s.last().unwrap().end(), secs(NOW));
    assert_eq!(s.last().unwrap().start_seconds, Some(NOW - 1.0));
    assert_eq!(m.reload_interval(), None);
    // Shaka-style large live ids still fit easily.
    assert_eq!(
        pml_id(s[0].start_seconds.unwrap()),
        ((NOW - MAX_LIVE_SEGMENTS as f64) * 2.0) as i64
    );
}

#[test]
fn live_timeline_window_and_open_last_period() {
    let xml = mpd(
        &format!(
            r#"type="dynamic" availabilityStartTime="{AST}" timeShiftBufferDepth="PT10S" minimumUpdatePeriod="PT0S""#
        ),
        r#"<Period start="PT0S"><AdaptationSet mimeType="video/mp4">
  <SegmentTemplate media="$Time$.m4s">
    <SegmentTimeline><S t="0" d="2" r="49"/><S d="2" r="-1"/></SegmentTimeline>
  </SegmentTemplate>
  <Representation id="v" bandwidth="1"/></AdaptationSet></Period>"#,
    );
    let m = parse(xml.as_bytes(), &vod_url(), AST_UNIX + 100.0).unwrap();
    // MUP 0 is clamped; the trailing r="-1" of an open period is ignored (as Shaka).
    assert_eq!(m.reload_interval(), Some(secs(1.0)));
    let s = segs(&m, 0, 0, 0);
    assert_eq!(
        starts(s),
        [88.0, 90.0, 92.0, 94.0, 96.0, 98.0].map(secs).to_vec()
    );
    assert_eq!(numbers(s), (45..=50).collect::<Vec<_>>());
    assert!(urls(s)[0].ends_with("/88.m4s"));
}

#[test]
fn huge_repeat_counts() {
    // Static: more than MAX_SEGMENTS is an error (not a giant allocation).
    let xml = mpd(
        r#"mediaPresentationDuration="PT1000000000S""#,
        r#"<Period><AdaptationSet mimeType="video/mp4">
  <SegmentTemplate media="$Time$"><SegmentTimeline><S t="0" d="1" r="9223372036854775806"/></SegmentTimeline></SegmentTemplate>
  <Representation id="v" bandwidth="1"/></AdaptationSet></Period>"#,
    );
    assert!(matches!(
        parse(xml.as_bytes(), &vod_url(), NOW),
        Err(ManifestError::InvalidMpd(_))
    ));
    // Live with a window: only the window is materialised.
    let xml = mpd(
        &format!(r#"type="dynamic" availabilityStartTime="{AST}" timeShiftBufferDepth="PT5S""#),
        r#"<Period start="PT0S"><AdaptationSet mimeType="video/mp4">
  <SegmentTemplate media="$Time$"><SegmentTimeline><S t="0" d="1" r="9223372036854775806"/></SegmentTimeline></SegmentTemplate>
  <Representation id="v" bandwidth="1"/></AdaptationSet></Period>"#,
    );
    let m = parse(xml.as_bytes(), &vod_url(), AST_UNIX + 50.0).unwrap();
    let s = segs(&m, 0, 0, 0);
    // Explicit timelines are trusted (even beyond our clock): garbage in, but bounded.
    assert_eq!(s.len(), MAX_LIVE_SEGMENTS);
    assert!(s[0].start > secs(44.0));
    // Overflowing S@r × S@d.
    let xml = mpd(
        r#"mediaPresentationDuration="PT10S""#,
        r#"<Period><AdaptationSet mimeType="video/mp4">
  <SegmentTemplate media="$Time$"><SegmentTimeline><S t="0" d="18446744073709551615" r="9223372036854775806"/></SegmentTimeline></SegmentTemplate>
  <Representation id="v" bandwidth="1"/></AdaptationSet></Period>"#,
    );
    assert!(parse(xml.as_bytes(), &vod_url(), NOW).is_err());
}

// ---------------------------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------------------------

fn err(xml: &str) -> ManifestError {
    parse(xml.as_bytes(), &vod_url(), NOW).unwrap_err()
}

fn simple(tpl: &str, rep_attrs: &str) -> String {
    mpd(
        r#"mediaPresentationDuration="PT10S""#,
        &format!(
            r#"<Period><AdaptationSet mimeType="video/mp4">{tpl}<Representation {rep_attrs}/></AdaptationSet></Period>"#
        ),
    )
}

#[test]
fn bad_input_is_a_clear_error() {
    let tpl = r#"<SegmentTemplate duration="2" media="$Number$"/>"#;
    assert!(matches!(
        err("<html><body>404</body></html>"),
        ManifestError::NotMpd(_)
    ));
    assert!(matches!(err(""), ManifestError::NotMpd(_)));
    assert!(matches!(err("<MPD><Period>"), ManifestError::NotMpd(_)));
    assert!(matches!(
        parse(b"<MPD>\xff\xfe</MPD>", &vod_url(), NOW).unwrap_err(),
        ManifestError::NotMpd(_)
    ));
    assert!(matches!(
        err(&simple(tpl, r#"bandwidth="1""#)),
        ManifestError::InvalidMpd(m) if m.contains("@id")
    ));
    assert!(matches!(
        err(&simple(tpl, r#"id="v""#)),
        ManifestError::InvalidMpd(m) if m.contains("@bandwidth")
    ));
    let ok = r#"id="v" bandwidth="1""#;
    for bad_tpl in [
        r#"<SegmentTemplate timescale="0" duration="2" media="$Number$"/>"#,
        r#"<SegmentTemplate duration="0" media="$Number$"/>"#,
        r#"<SegmentTemplate duration="-2" media="$Number$"/>"#,
        r#"<SegmentTemplate duration="NaN" media="$Number$"/>"#,
        r#"<SegmentTemplate duration="1" timescale="18446744073709551615" media="$Number$"/>"#,
        r#"<SegmentTemplate media="$Number$"/>"#,
        r#"<SegmentTemplate duration="2"/>"#,
        r#"<SegmentTemplate media="$Time$"><SegmentTimeline><S t="0"/></SegmentTimeline></SegmentTemplate>"#,
        r#"<SegmentTemplate media="$Time$"><SegmentTimeline><S t="10" d="1"/><S t="5" d="1"/></SegmentTimeline></SegmentTemplate>"#,
        r#"<SegmentTemplate duration="2" media="$Number%01000d$"/>"#,
        r#"<SegmentList duration="0"><SegmentURL media="a"/></SegmentList>"#,
        r#"<SegmentList><SegmentURL media="a"/><SegmentURL media="b"/></SegmentList>"#,
        r#"<SegmentList duration="1"><SegmentURL media="a" mediaRange="9-1"/></SegmentList>"#,
        r#"<SegmentBase indexRange="abc"/>"#,
        r#"<SegmentBase timescale="0" indexRange="0-1"/>"#,
    ] {
        let e = err(&simple(bad_tpl, ok));
        assert!(
            matches!(e, ManifestError::InvalidMpd(_)),
            "{bad_tpl}: {e:?}"
        );
        assert!(!e.to_string().is_empty());
    }
    // Attribute syntax errors come from the XML layer.
    assert!(matches!(
        err(&simple(tpl, r#"id="v" bandwidth="lots""#)),
        ManifestError::NotMpd(_)
    ));
    // Absurd xs:durations are refused before they can overflow inside the XML layer.
    assert!(matches!(
        err(&mpd(
            r#"mediaPresentationDuration="PT99999999999999999H""#,
            "<Period/>"
        )),
        ManifestError::InvalidMpd(_)
    ));
    assert!(matches!(
        err(&mpd(
            r#"mediaPresentationDuration="P9999999999999Y""#,
            "<Period/>"
        )),
        ManifestError::InvalidMpd(_)
    ));
    // Dynamic without availabilityStartTime, unknown type, no Period.
    assert!(matches!(
        err(&mpd(r#"type="dynamic""#, "<Period/>")),
        ManifestError::InvalidMpd(_)
    ));
    assert!(matches!(
        err(&mpd(r#"type="live""#, "<Period/>")),
        ManifestError::InvalidMpd(_)
    ));
    assert!(matches!(err(&mpd("", "")), ManifestError::InvalidMpd(_)));
    // Static $Number$ template without any duration to bound it.
    assert!(matches!(
        err(&mpd(
            "",
            &format!(
                r#"<Period><AdaptationSet mimeType="video/mp4">{tpl}<Representation {ok}/></AdaptationSet></Period>"#
            )
        )),
        ManifestError::InvalidMpd(_)
    ));
    // Too many segments for a static MPD.
    assert!(matches!(
        err(&mpd(r#"mediaPresentationDuration="PT1000000S""#, &format!(r#"<Period><AdaptationSet mimeType="video/mp4"><SegmentTemplate duration="1" media="$Number$"/><Representation {ok}/></AdaptationSet></Period>"#))),
        ManifestError::InvalidMpd(m) if m.contains("100000")
    ));
    // xlink.
    assert!(matches!(
        err(&mpd(
            r#"mediaPresentationDuration="PT1S""#,
            r#"<Period xlink:href="https://x/p.xml" xmlns:xlink="http://www.w3.org/1999/xlink"/>"#
        )),
        ManifestError::UnsupportedDash(_)
    ));
    // Non-finite clock input.
    assert!(parse(simple(tpl, ok).as_bytes(), &vod_url(), f64::NAN).is_err());
    // Oversized body.
    let big = vec![b' '; MAX_MPD_BYTES + 1];
    assert!(matches!(
        parse(&big, &vod_url(), NOW),
        Err(ManifestError::InvalidMpd(_))
    ));
}

#[test]
fn root_element_check() {
    assert!(check_root("<?xml version='1.0'?><!-- c --><!DOCTYPE x><MPD/>").is_ok());
    assert!(check_root("<dash:MPD xmlns:dash='x'/>").is_ok());
    assert!(check_root("<MPDX/>").is_err());
    assert!(check_root("<!-- unterminated").is_err());
    assert!(check_root("plain text").is_err());
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn mutated_mpds_never_panic() {
    let seeds = [
        live_number_mpd(""),
        segment_base_mpd(""),
        mpd(
            r#"mediaPresentationDuration="PT20S""#,
            r#"<Period start="PT1S"><BaseURL>b/</BaseURL><AdaptationSet mimeType="audio/mp4">
  <SegmentTemplate timescale="48000" presentationTimeOffset="96000" media="a/$Time$-$Number%03d$.m4s" initialization="i.mp4">
  <SegmentTimeline><S t="96000" d="96000" r="1"/><S d="48000" r="-1"/><S t="432000" d="96000" r="-1"/></SegmentTimeline>
  </SegmentTemplate><Representation id="a1" bandwidth="128000"/></AdaptationSet>
  <AdaptationSet mimeType="video/mp4"><Representation id="l" bandwidth="5"><SegmentList timescale="10" duration="20">
  <Initialization sourceURL="i.mp4" range="0-9"/><SegmentURL media="x" mediaRange="10-19"/><SegmentURL media="y"/></SegmentList></Representation></AdaptationSet></Period>
  <Period start="PT10S"><AdaptationSet mimeType="video/mp4"><SegmentTemplate duration="3" media="$Number$"/><Representation id="v" bandwidth="1"/></AdaptationSet></Period>"#,
        ),
    ];
    // Tokens that tend to produce interesting numbers.
    let tokens: [&str; 16] = [
        "0",
        "-1",
        "-2",
        "18446744073709551615",
        "9223372036854775807",
        "99999999999",
        "PT0S",
        "P99999Y",
        "PT1.0000000001S",
        "$Number%0200d$",
        "$Time$",
        "1e308",
        "NaN",
        "\"",
        "<",
        "<S d=\"1\" r=\"-1\"/>",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let base = vod_url();
    let mut ok = 0;
    for iter in 0..3000 {
        let seed = &seeds[iter % seeds.len()];
        let mut b: Vec<u8> = seed.as_bytes().to_vec();
        for _ in 0..1 + rng.below(4) {
            let pos = rng.below(b.len());
            match rng.below(5) {
                0 => b[pos] = rng.next() as u8,
                1 => {
                    let t = tokens[rng.below(tokens.len())];
                    b.splice(pos..pos, t.bytes());
                }
                2 => {
                    // Replace a run of digits at/after pos by a token.
                    let start = (pos..b.len()).find(|&i| b[i].is_ascii_digit());
                    if let Some(s) = start {
                        let e = (s..b.len())
                            .find(|&i| !b[i].is_ascii_digit())
                            .unwrap_or(b.len());
                        let t = tokens[rng.below(tokens.len())];
                        b.splice(s..e, t.bytes());
                    }
                }
                3 => {
                    let end = (pos + rng.below(40)).min(b.len());
                    b.drain(pos..end);
                }
                _ => {
                    let end = (pos + rng.below(200)).min(b.len());
                    let chunk: Vec<u8> = b[pos..end].to_vec();
                    b.splice(pos..pos, chunk);
                }
            }
        }
        let now = AST_UNIX + rng.below(1000) as f64;
        if let Ok(m) = parse(&b, &base, now) {
            ok += 1;
            // Exercise the helpers on whatever came out.
            let _ = m.live_start(now);
            let _ = m.reload_interval();
            for per in &m.periods {
                for set in &per.adaptation_sets {
                    for r in &set.representations {
                        let l = r.segment_list();
                        assert!(l.len() <= MAX_SEGMENTS);
                        // Sorted, so the engine's binary searches hold.
                        assert!(l.windows(2).all(|w| w[0].start <= w[1].start));
                        let _ = r.to_media_playlist(&m);
                        if let SegmentSource::NeedsIndex(ctx) = &r.segments {
                            let sidx = sidx::build(1, 10, 5, 7, &[(false, 10, 10), (false, 5, 3)]);
                            let _ = segments_from_sidx(&sidx, ctx);
                        }
                    }
                }
            }
        }
    }
    // The mutations must not all be fatal, or the test would prove little.
    assert!(ok > 100, "only {ok} mutated MPDs parsed");
}

// ---------------------------------------------------------------------------------------------
// Real MPDs written by ffmpeg (skipped when ffmpeg is not installed)
// ---------------------------------------------------------------------------------------------

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ffmpeg(dir: &std::path::Path, args: &[&str]) -> bool {
    let base = [
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        "testsrc=duration=4:size=160x120:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=duration=4",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-g",
        "25",
        "-c:a",
        "aac",
    ];
    match std::process::Command::new("ffmpeg")
        .current_dir(dir)
        .args(base)
        .args(args)
        .status()
    {
        Ok(s) => s.success(),
        Err(_) => {
            eprintln!("ffmpeg not available: skipping");
            false
        }
    }
}

fn temp_dir(name: &str) -> TempDir {
    let d = std::env::temp_dir().join(format!("p2pmedia-dash-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    TempDir(d)
}

fn local_path(dir: &std::path::Path, u: &Url) -> std::path::PathBuf {
    dir.join(u.path_segments().unwrap().next_back().unwrap())
}

#[test]
fn ffmpeg_dash_timeline_and_number_templates() {
    for (name, timeline) in [("tl", "1"), ("num", "0")] {
        let dir = temp_dir(name);
        if !ffmpeg(
            &dir.0,
            &[
                "-seg_duration",
                "1",
                "-use_timeline",
                timeline,
                "-use_template",
                "1",
                "-f",
                "dash",
                "out.mpd",
            ],
        ) {
            return;
        }
        let bytes = std::fs::read(dir.0.join("out.mpd")).unwrap();
        let m = parse(&bytes, &url("http://127.0.0.1:8080/x/out.mpd"), NOW).unwrap();
        assert!(!m.dynamic);
        let sets = &m.periods[0].adaptation_sets;
        assert_eq!(sets.len(), 2);
        assert_eq!(sets[0].stream_type, MediaType::Video);
        assert_eq!(sets[1].stream_type, MediaType::Audio);
        assert_eq!(sets[1].representations[0].channels, Some(1));
        for set in sets {
            let r = &set.representations[0];
            assert!(local_path(&dir.0, &r.init.as_ref().unwrap().url).exists());
            let s = r.segment_list();
            assert!(s.len() >= 4 && s.len() <= 5, "{name}: {} segments", s.len());
            assert_eq!(s[0].start, Duration::ZERO);
            for w in s.windows(2) {
                assert_eq!(w[0].end(), w[1].start, "{name}: contiguous");
            }
            let total = s.last().unwrap().end();
            assert!(
                total <= secs(4.0) && total >= secs(3.9),
                "{name}: {total:?}"
            );
            for seg in s {
                let f = local_path(&dir.0, &seg.resource.url);
                assert!(f.exists(), "{name}: {f:?} missing");
                assert!(seg
                    .resource
                    .url
                    .as_str()
                    .starts_with("http://127.0.0.1:8080/x/chunk-stream"));
            }
        }
    }
}

fn box_type_at(data: &[u8], offset: u64) -> &[u8] {
    &data[offset as usize + 4..offset as usize + 8]
}

#[test]
fn ffmpeg_single_file_segment_list_and_segment_base() {
    // Single-file DASH: SegmentList with mediaRange, each range a moof+mdat.
    let dir = temp_dir("sf");
    if !ffmpeg(
        &dir.0,
        &[
            "-an",
            "-seg_duration",
            "1",
            "-single_file",
            "1",
            "-f",
            "dash",
            "out.mpd",
        ],
    ) {
        return;
    }
    let m = parse(
        &std::fs::read(dir.0.join("out.mpd")).unwrap(),
        &url("http://127.0.0.1/out.mpd"),
        NOW,
    )
    .unwrap();
    let r = rep(&m, 0, 0, 0);
    let file = std::fs::read(local_path(&dir.0, &r.init.as_ref().unwrap().url)).unwrap();
    let s = r.segment_list();
    assert_eq!(s.len(), 4);
    let mut expect = r.init.as_ref().unwrap().range.unwrap().length;
    for seg in s {
        let br = seg.resource.range.unwrap();
        assert_eq!(br.offset, expect, "ranges are contiguous");
        assert!(matches!(
            box_type_at(&file, br.offset),
            b"sidx" | b"moof" | b"styp"
        ));
        expect = br.offset + br.length;
    }
    assert_eq!(expect, file.len() as u64);
    assert_eq!(starts(s), [0.0, 1.0, 2.0, 3.0].map(secs).to_vec());

    // Fragmented MP4 with a global sidx, described by a hand-written SegmentBase MPD.
    if !ffmpeg(
        &dir.0,
        &[
            "-an",
            "-movflags",
            "frag_keyframe+empty_moov+default_base_moof+global_sidx",
            "-f",
            "mp4",
            "gs.mp4",
        ],
    ) {
        return;
    }
    let file = std::fs::read(dir.0.join("gs.mp4")).unwrap();
    // Locate the sidx box to write the MPD like a packager would.
    let mut off = 0usize;
    let (mut sidx_off, mut sidx_len) = (0, 0);
    while off + 8 <= file.len() {
        let size = u32::from_be_bytes(file[off..off + 4].try_into().unwrap()) as usize;
        if &file[off + 4..off + 8] == b"sidx" {
            (sidx_off, sidx_len) = (off, size);
        }
        off += size.max(8);
    }
    assert!(sidx_len > 0, "ffmpeg wrote no sidx");
    let xml = mpd(
        r#"mediaPresentationDuration="PT4S""#,
        &format!(
            r#"<Period><AdaptationSet mimeType="video/mp4"><Representation id="v" bandwidth="1">
<BaseURL>gs.mp4</BaseURL><SegmentBase indexRange="{}-{}"><Initialization range="0-{}"/></SegmentBase>
</Representation></AdaptationSet></Period>"#,
            sidx_off,
            sidx_off + sidx_len - 1,
            sidx_off - 1
        ),
    );
    let m = parse(xml.as_bytes(), &url("http://127.0.0.1/m.mpd"), NOW).unwrap();
    let SegmentSource::NeedsIndex(ctx) = &rep(&m, 0, 0, 0).segments else {
        panic!()
    };
    let range = ctx.index.range.unwrap();
    let bytes = &file[range.offset as usize..(range.offset + range.length) as usize];
    let s = segments_from_sidx(bytes, ctx).unwrap();
    assert_eq!(s.len(), 4);
    assert_eq!(
        s[0].resource.range.unwrap().offset,
        (sidx_off + sidx_len) as u64
    );
    for seg in &s {
        assert_eq!(
            box_type_at(&file, seg.resource.range.unwrap().offset),
            b"moof"
        );
    }
    let last = s.last().unwrap().resource.range.unwrap();
    assert!(last.offset + last.length <= file.len() as u64);
    assert_eq!(s[0].start, Duration::ZERO);
    assert_eq!(s[1].start, secs(1.0));
    assert_eq!(s[3].end(), secs(4.0));
}

#[test]
fn live_multi_period_and_utc_timing() {
    let xml = mpd(
        &format!(
            r#"type="dynamic" availabilityStartTime="{AST}" timeShiftBufferDepth="PT20S" maxSegmentDuration="PT4S""#
        ),
        r#"<UTCTiming schemeIdUri="urn:mpeg:dash:utc:http-iso:2014" value="https://time.example.com/now"/>
<Period id="p1" start="PT0S"><AdaptationSet mimeType="video/mp4">
  <SegmentTemplate duration="2" media="p1/$Number$.m4s"/><Representation id="v" bandwidth="1"/></AdaptationSet></Period>
<Period id="p2" start="PT30S"><AdaptationSet mimeType="video/mp4">
  <SegmentTemplate duration="2" media="p2/$Number$.m4s"/><Representation id="v" bandwidth="1"/></AdaptationSet></Period>"#,
    );
    let m = parse(xml.as_bytes(), &vod_url(), AST_UNIX + 45.0).unwrap();
    assert_eq!(
        m.utc_timing,
        vec![(
            "urn:mpeg:dash:utc:http-iso:2014".to_string(),
            "https://time.example.com/now".to_string()
        )]
    );
    assert_eq!(m.max_segment_duration, secs(4.0));
    // Window [25, 45]: period 1 keeps segments ending at/after 25 (26..30), period 2 (open)
    // has 7 complete segments up to 44.
    let p1 = segs(&m, 0, 0, 0);
    assert_eq!(starts(p1), [24.0, 26.0, 28.0].map(secs).to_vec());
    assert!(p1.iter().all(|s| !s.discontinuity));
    let p2 = segs(&m, 1, 0, 0);
    assert_eq!(numbers(p2), (1..=7).collect::<Vec<_>>());
    assert_eq!(p2[0].start, secs(30.0));
    assert!(p2[0].discontinuity && p2[0].discontinuity_sequence == 1);
    // Later, the window has slid into period 2: its first listed segment is not a boundary.
    let m = parse(xml.as_bytes(), &vod_url(), AST_UNIX + 75.0).unwrap();
    assert!(segs(&m, 0, 0, 0).is_empty());
    let p2 = segs(&m, 1, 0, 0);
    assert_eq!(p2[0].start, secs(54.0));
    assert!(!p2[0].discontinuity);
    assert_eq!(m.live_start(AST_UNIX + 75.0), Some(secs(63.0)));
    assert_eq!(
        m.utc_source(),
        Some(UtcSource::Http(url("https://time.example.com/now")))
    );
    // Each flattened segment's wall clock is availabilityStartTime + its start.
    let track = crate::manifest::tracks::pick_tracks(&m.periods[1], &[], &[])[0]
        .track
        .clone();
    let parts: Vec<_> = track
        .representations(&m, 0)
        .into_iter()
        .map(|(i, period, rep)| match &rep.segments {
            SegmentSource::List(s) => (i, period, rep, s.clone()),
            SegmentSource::NeedsIndex(_) => unreachable!(),
        })
        .collect();
    let flat = crate::manifest::tracks::flatten(&m, parts);
    for s in &flat.segments {
        assert_eq!(
            s.program_date_time_ns,
            Some(1_767_225_600_000_000_000 + s.start.as_nanos() as i64)
        );
    }
}

#[test]
fn utc_timing_sources_in_mpd_order_and_times() {
    let with = |timing: &str| {
        let xml = mpd(
            &format!(r#"type="dynamic" availabilityStartTime="{AST}""#),
            &format!(
                r#"{timing}<Period id="p1" start="PT0S"><AdaptationSet mimeType="video/mp4">
  <SegmentTemplate duration="2" media="$Number$.m4s"/><Representation id="v" bandwidth="1"/></AdaptationSet></Period>"#
            ),
        );
        parse(xml.as_bytes(), &vod_url(), AST_UNIX + 45.0)
            .unwrap()
            .utc_source()
    };
    assert_eq!(with(""), None);
    // Unsupported schemes are passed over; relative URLs resolve against the MPD.
    assert_eq!(
        with(
            r#"<UTCTiming schemeIdUri="urn:mpeg:dash:utc:ntp:2014" value="pool.ntp.org"/>
<UTCTiming schemeIdUri="urn:mpeg:dash:utc:http-head:2014" value="/"/>
<UTCTiming schemeIdUri="urn:mpeg:dash:utc:http-xsdate:2014" value="../time"/>"#
        ),
        Some(UtcSource::Http(vod_url().join("../time").unwrap()))
    );
    assert_eq!(
        with(
            r#"<UTCTiming schemeIdUri="urn:mpeg:dash:utc:direct:2014" value="2026-01-01T00:00:45.5Z"/>"#
        ),
        Some(UtcSource::Direct(AST_UNIX + 45.5))
    );
    assert_eq!(
        parse_utc_time(" 2026-01-01T00:00:01.250Z\n"),
        Some(AST_UNIX + 1.25)
    );
    assert_eq!(parse_utc_time("2026-01-01T01:00:00+01:00"), Some(AST_UNIX));
    assert_eq!(parse_utc_time("tomorrow"), None);
}

#[test]
fn period_starts_follow_shaka_float_sums() {
    // Shaka: start(b) = start(a) + duration(a) in f64 = 0.1 + 0.2 = 0.30000000000000004.
    let m = p(&mpd(
        "",
        r#"<Period id="a" start="PT0.1S" duration="PT0.2S"><AdaptationSet mimeType="video/mp4">
  <SegmentTemplate duration="1" timescale="10" media="a$Number$"/><Representation id="v" bandwidth="1"/></AdaptationSet></Period>
<Period id="b" duration="PT1S"><AdaptationSet mimeType="video/mp4">
  <SegmentTemplate duration="1" timescale="10" media="b$Number$"/><Representation id="v" bandwidth="1"/></AdaptationSet></Period>"#,
    ));
    assert_eq!(m.periods[0].start_seconds, 0.1);
    assert_eq!(m.periods[1].start, ms(300));
    assert_eq!(m.periods[1].start_seconds, 0.1 + 0.2);
    assert_ne!(m.periods[1].start_seconds, 0.3);
    let b = segs(&m, 1, 0, 0);
    assert_eq!(b.len(), 10);
    assert_eq!(b[2].start, ms(500));
    // position × (1/10) + periodStart, in that order.
    assert_eq!(b[2].start_seconds, Some(2.0 * (1.0 / 10.0) + (0.1 + 0.2)));
    assert_eq!(pml_id(b[2].start_seconds.unwrap()), 1);
    // Segments of a/b: 2 in period a (0.1..0.3), periods chained without gaps.
    assert_eq!(urls(segs(&m, 0, 0, 0)).len(), 2);
    assert_eq!(segs(&m, 0, 0, 0)[1].end(), ms(300));
}

// ---------------------------------------------------------------------------------------------
// Memory: every segment owns its URLs (found while writing fuzz/fuzz_targets/dash_parse.rs)
// ---------------------------------------------------------------------------------------------

fn long_base_mpd(base: &str, addressing: &str) -> String {
    mpd(
        r#"mediaPresentationDuration="PT20000S""#,
        &format!(
            r#"<BaseURL>https://cdn.example.com/{base}/</BaseURL>
<Period><AdaptationSet mimeType="video/mp4" codecs="avc1.4d401f">
  <Representation id="v" bandwidth="1000">{addressing}</Representation>
</AdaptationSet></Period>"#
        ),
    )
}

/// A 20 KB BaseURL over a template of 20 000 segments asked for 800 MB of URL copies (a
/// 100 KB one over 100 000 segments: 20 GB); over 20 000 `<SegmentURL/>`s, 400 MB.
#[test]
fn long_base_url_over_many_segments_is_refused() {
    let template = r#"<SegmentTemplate media="s$Number$.m4s" initialization="init.mp4" duration="1" timescale="1"/>"#;
    let list = format!(
        r#"<SegmentList duration="1" timescale="1">{}</SegmentList>"#,
        "<SegmentURL/>".repeat(20_000)
    );
    let long = "b".repeat(20_000);
    for addressing in [template, list.as_str()] {
        let xml = long_base_mpd(&long, addressing);
        let e = parse(xml.as_bytes(), &vod_url(), NOW).unwrap_err();
        assert!(
            matches!(&e, ManifestError::InvalidMpd(w) if w.contains("segment URLs")),
            "{e}"
        );
        // The same addressing under an ordinary BaseURL is fine.
        let m = p(&long_base_mpd("vod/a", addressing));
        assert_eq!(segs(&m, 0, 0, 0).len(), 20_000);
    }
}

/// A long media URL over a sidx of many references: refused before the copies are made.
#[test]
fn long_media_url_over_many_sidx_references_is_refused() {
    let m = p(&segment_base_mpd(""));
    let SegmentSource::NeedsIndex(ctx) = &rep(&m, 0, 0, 0).segments else {
        panic!("expected NeedsIndex");
    };
    let refs = vec![(false, 1000, 1); 3000];
    let sidx = sidx::build(0, 10, 0, 0, &refs);
    assert_eq!(segments_from_sidx(&sidx, ctx).unwrap().len(), 30);
    let mut long = (**ctx).clone();
    long.media_url = url(&format!("https://cdn.example.com/{}", "m".repeat(100_000)));
    let e = segments_from_sidx(&sidx, &long).unwrap_err();
    assert!(
        matches!(&e, ManifestError::InvalidMpd(w) if w.contains("segment URLs")),
        "{e}"
    );
}

/// Found by `fuzz/fuzz_targets/sidx_parse.rs`: a v1 sidx whose first_offset puts the first
/// subsegment at 2^64 − 248 gave a byte range whose end overflows u64.
#[test]
fn sidx_byte_range_end_overflow_is_an_error() {
    let m = p(&segment_base_mpd(""));
    let SegmentSource::NeedsIndex(ctx) = &rep(&m, 0, 0, 0).segments else {
        panic!("expected NeedsIndex");
    };
    let mut ext = (**ctx).clone();
    ext.index_is_external = true;
    let sidx = sidx::build(1, 10, 0, u64::MAX - 248, &[(false, 1000, 10)]);
    assert_eq!(
        segments_from_sidx(&sidx, &ext),
        Err(ManifestError::InvalidSidx("offset overflow".into()))
    );
    // Ending exactly at 2^64 − 1 is still addressable.
    let sidx = sidx::build(1, 10, 0, u64::MAX - 1000, &[(false, 1000, 10)]);
    let s = segments_from_sidx(&sidx, &ext).unwrap();
    assert_eq!(s[0].resource.range.unwrap().offset, u64::MAX - 1000);
}
