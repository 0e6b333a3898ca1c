//! Which tracks of a manifest to play, and a DASH track over every Period as one media
//! playlist. Pure decisions (no I/O): the engine's front-ends fetch what these name.
//!
//! DASH Period boundaries: the same track continues in the next Period (matched by adaptation
//! set id, else by position among its kind; Representation by id, else by position). Its first
//! segment is marked discontinuous, so the fetch loop sends DISCONT and the new init segment.
//! Segment numbers restart per Period, so each segment's `sequence` is made unique and
//! increasing as `Period@start seconds << 32 | number`.

use std::time::Duration;

use url::Url;

use super::dash::{AdaptationSet, Mpd, Period, Representation};
use crate::media::{MasterPlaylist, MediaPlaylist, MediaType, Rendition, Segment, Variant};
use crate::p2p::dash_streams::shaka_normalize_language;

/// HLS: the rendition of the variant's audio group that has its own playlist in the first of
/// `languages` (`audio-language`) one has, else the default one, else an autoselect one, else
/// the first.
pub fn pick_audio<'a>(
    master: &'a MasterPlaylist,
    variant: &Variant,
    languages: &[String],
) -> Option<&'a Rendition> {
    let candidates = renditions(master, MediaType::Audio, variant.audio_group.as_deref()?);
    if let Some(r) = by_language(&candidates, languages, |r| r.language.as_deref()) {
        return Some(r);
    }
    candidates
        .iter()
        .find(|r| r.default)
        .or_else(|| candidates.iter().find(|r| r.autoselect))
        .or_else(|| candidates.first())
        .copied()
}

/// The renditions of `kind` in `group` that have a playlist of their own, in master order:
/// what an application may choose among (`select-streams`).
pub fn renditions<'a>(
    master: &'a MasterPlaylist,
    kind: MediaType,
    group: &str,
) -> Vec<&'a Rendition> {
    master
        .renditions
        .iter()
        .filter(|r| r.stream_type == kind && r.group_id == group && r.uri.is_some())
        .collect()
}

/// DASH: one output stream, an adaptation set picked in the first Period played, followed
/// through the other Periods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    pub kind: MediaType,
    pub adaptation_set_id: Option<String>,
    /// Position among the adaptation sets of its kind.
    pub position: usize,
    /// Representation ids of the first Period (the variants' order).
    pub representation_ids: Vec<String>,
}

/// A track picked in a Period, with the adaptation set it starts on.
#[derive(Debug, Clone)]
pub struct Picked<'a> {
    /// Index of `set` among the Period's adaptation sets.
    pub adaptation_set: usize,
    pub set: &'a AdaptationSet,
    pub track: Track,
}

/// The Period a presentation starts in: for a live start, the last one starting at or before
/// it; else the first.
pub fn start_period(mpd: &Mpd, live_start: Option<Duration>) -> usize {
    match live_start {
        Some(t) => mpd.periods.iter().rposition(|p| p.start <= t).unwrap_or(0),
        None => 0,
    }
}

/// HLS: the subtitles rendition (EXT-X-MEDIA TYPE=SUBTITLES with a playlist) of the variant's
/// SUBTITLES group in the first of `languages` (`text-language`) one has, else its DEFAULT=YES
/// one; none otherwise (subtitles nobody asked for are not fetched).
pub fn pick_subtitles<'a>(
    master: &'a MasterPlaylist,
    variant: &Variant,
    languages: &[String],
) -> Option<&'a Rendition> {
    let group = variant.subtitles_group.as_deref()?;
    let candidates = renditions(master, MediaType::Subtitles, group);
    by_language(&candidates, languages, |r| r.language.as_deref())
        .or_else(|| candidates.iter().find(|r| r.default).copied())
}

/// The first candidate in the first of `languages` (preferences such as `de` or `deu`, matched
/// on the primary language subtag, ISO 639-2 codes as their ISO 639-1 equivalents) that one
/// of them has.
fn by_language<'a, T>(
    candidates: &[&'a T],
    languages: &[String],
    language_of: impl Fn(&T) -> Option<&str>,
) -> Option<&'a T> {
    let primary = |l: &str| {
        let n = shaka_normalize_language(l.trim());
        n.split('-').next().unwrap_or("").to_owned()
    };
    languages.iter().map(|l| primary(l)).find_map(|want| {
        candidates
            .iter()
            .find(|c| language_of(c).is_some_and(|l| !want.is_empty() && primary(l) == want))
            .copied()
    })
}

/// The tracks to play in `period`: a video one, then an audio one, each the adaptation set of
/// its kind with Role "main", else the first (audio: in the first of `audio_languages` one
/// has, before that); then a text one only if asked for (in the first of `text_languages`
/// one has) or with Role "main". DRM-protected ones are skipped (no decryption here), and so
/// is a kind whose chosen set has no Representation.
pub fn pick_tracks<'a>(
    period: &'a Period,
    audio_languages: &[String],
    text_languages: &[String],
) -> Vec<Picked<'a>> {
    [MediaType::Video, MediaType::Audio, MediaType::Subtitles]
        .into_iter()
        .filter_map(|kind| {
            let languages = match kind {
                MediaType::Audio => audio_languages,
                MediaType::Subtitles => text_languages,
                _ => &[],
            };
            let (index, set) = pick_adaptation_set(period, kind, languages)?;
            if kind == MediaType::Subtitles {
                let asked = by_language(&[set], languages, |a| a.lang.as_deref()).is_some();
                if !asked && !set.roles.iter().any(|r| r == "main") {
                    return None;
                }
            }
            if set.representations.is_empty() {
                return None;
            }
            Some(Picked {
                adaptation_set: index,
                set,
                track: track_at(period, index),
            })
        })
        .collect()
}

/// The track of adaptation set `index` of `period`.
fn track_at(period: &Period, index: usize) -> Track {
    let set = &period.adaptation_sets[index];
    Track {
        kind: set.stream_type,
        adaptation_set_id: set.id.clone(),
        position: period
            .adaptation_sets
            .iter()
            .take(index)
            .filter(|a| a.stream_type == set.stream_type)
            .count(),
        representation_ids: set.representations.iter().map(|r| r.id.clone()).collect(),
    }
}

/// What an application may select instead of `picked` (`select-streams`): every adaptation
/// set of its kind in the Period that can be played (not encrypted, with Representations),
/// `picked`'s own included, in MPD order.
pub fn alternatives<'a>(period: &'a Period, picked: &Picked) -> Vec<Picked<'a>> {
    period
        .adaptation_sets
        .iter()
        .enumerate()
        .filter(|(_, a)| {
            a.stream_type == picked.track.kind && !a.encrypted && !a.representations.is_empty()
        })
        .map(|(index, set)| Picked {
            adaptation_set: index,
            set,
            track: track_at(period, index),
        })
        .collect()
}

fn pick_adaptation_set<'a>(
    period: &'a Period,
    kind: MediaType,
    languages: &[String],
) -> Option<(usize, &'a AdaptationSet)> {
    let candidates = || {
        period
            .adaptation_sets
            .iter()
            .enumerate()
            .filter(move |(_, a)| a.stream_type == kind && !a.encrypted)
    };
    let all: Vec<(usize, &AdaptationSet)> = candidates().collect();
    let refs: Vec<&(usize, &AdaptationSet)> = all.iter().collect();
    by_language(&refs, languages, |(_, a)| a.lang.as_deref())
        .copied()
        .or_else(|| candidates().find(|(_, a)| a.roles.iter().any(|r| r == "main")))
        .or_else(|| candidates().next())
}

/// An adaptation set's Representations as the variants ABR chooses among. DASH has no
/// playlist per variant: every `uri` is the MPD's.
pub fn variants(set: &AdaptationSet, mpd_url: &Url) -> Vec<Variant> {
    set.representations
        .iter()
        .map(|r| Variant {
            bandwidth: r.bandwidth,
            codecs: r.codecs.clone(),
            resolution: r.width.zip(r.height),
            frame_rate: r.frame_rate,
            ..Variant::with_uri(mpd_url.clone())
        })
        .collect()
}

/// One Period's part of a track: the Period's index and itself, the Representation played
/// and its segments (expanded, or read from its segment index).
pub type PeriodPart<'a> = (usize, &'a Period, &'a Representation, Vec<Segment>);

impl Track {
    /// Representation `index` of this track in every Period where the track goes on.
    pub fn representations<'a>(
        &self,
        mpd: &'a Mpd,
        index: usize,
    ) -> Vec<(usize, &'a Period, &'a Representation)> {
        mpd.periods
            .iter()
            .enumerate()
            .filter_map(|(p, period)| {
                let set = self.adaptation_set_in(period)?;
                Some((p, period, self.representation_in(set, index)?))
            })
            .collect()
    }

    fn adaptation_set_in<'a>(&self, period: &'a Period) -> Option<&'a AdaptationSet> {
        let of_kind = || {
            period
                .adaptation_sets
                .iter()
                .filter(|a| a.stream_type == self.kind && !a.encrypted)
        };
        self.adaptation_set_id
            .as_ref()
            .and_then(|id| of_kind().find(|a| a.id.as_ref() == Some(id)))
            .or_else(|| of_kind().nth(self.position))
            .or_else(|| of_kind().next())
    }

    fn representation_in<'a>(
        &self,
        set: &'a AdaptationSet,
        index: usize,
    ) -> Option<&'a Representation> {
        let reps = &set.representations;
        self.representation_ids
            .get(index)
            .and_then(|id| reps.iter().find(|r| &r.id == id))
            .or_else(|| reps.get(index.min(reps.len().saturating_sub(1))))
    }
}

/// A track's Representation over every Period (`parts`, in Period order) as one media
/// playlist: sequences made unique across Periods, each Period's first segment discontinuous,
/// fMP4 times mapped by the Period's offset, overlapping segments dropped.
pub fn flatten<'a>(mpd: &Mpd, parts: impl IntoIterator<Item = PeriodPart<'a>>) -> MediaPlaylist {
    let mut segments: Vec<Segment> = Vec::new();
    for (_, period, rep, period_segments) in parts {
        let key = (period.start.as_secs() & 0xFFFF_FFFF) << 32;
        let media_offset = signed_ns(rep.presentation_time_offset) - signed_ns(period.start);
        for (i, mut s) in period_segments.into_iter().enumerate() {
            s.media_offset_ns = Some(media_offset);
            // Live: the presentation timeline starts at availabilityStartTime, so each
            // segment's wall clock is known (a `GstReferenceTimestampMeta` downstream).
            s.program_date_time_ns = wall_clock_ns(mpd, s.start);
            s.sequence = key | (s.sequence & 0xFFFF_FFFF);
            // The Period's start, not its index: an index shifts when a live MPD drops its
            // oldest Period, and what was learned of one Period would judge another's segments.
            s.discontinuity_sequence = period.start.as_millis() as u64;
            s.discontinuity |= i == 0 && !segments.is_empty();
            if segments.last().is_some_and(|l| l.sequence >= s.sequence) {
                continue; // overlapping Periods: keep the timeline increasing
            }
            segments.push(s);
        }
    }
    MediaPlaylist::from_segments(
        mpd.url.clone(),
        mpd.dynamic,
        segments,
        mpd.max_segment_duration,
    )
}

/// `availabilityStartTime` + `start` in ns since the epoch, for a dynamic MPD.
fn wall_clock_ns(mpd: &Mpd, start: Duration) -> Option<i64> {
    let ast = mpd.availability_start.filter(|_| mpd.dynamic)?;
    let ast_ns = (ast.floor() as i64)
        .checked_mul(1_000_000_000)?
        .checked_add(((ast - ast.floor()) * 1e9).round() as i64)?;
    ast_ns.checked_add(i64::try_from(start.as_nanos()).ok()?)
}

fn signed_ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::dash::{parse, SegmentSource};
    use crate::manifest::hls::{self, Playlist};

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn url() -> Url {
        Url::parse("https://cdn.example.com/vod/manifest.mpd").unwrap()
    }

    fn mpd(attrs: &str, body: &str) -> Mpd {
        let xml = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" minBufferTime="PT2S" {attrs}>
{body}
</MPD>"#
        );
        parse(xml.as_bytes(), &url(), 0.0).unwrap_or_else(|e| panic!("{e}"))
    }

    fn master(text: &str) -> MasterPlaylist {
        let base = Url::parse("https://cdn.example.com/live/master.m3u8").unwrap();
        match hls::parse(text.as_bytes(), &base).unwrap() {
            Playlist::Master(m) => m,
            Playlist::Media(_) => panic!("expected a master playlist"),
        }
    }

    /// Every part of a track's Representation, with its expanded segments.
    fn parts<'a>(m: &'a Mpd, track: &Track, index: usize) -> Vec<PeriodPart<'a>> {
        track
            .representations(m, index)
            .into_iter()
            .map(|(p, period, rep)| match &rep.segments {
                SegmentSource::List(s) => (p, period, rep, s.clone()),
                SegmentSource::NeedsIndex(_) => panic!("no sidx in these tests"),
            })
            .collect()
    }

    #[test]
    fn hls_audio_rendition() {
        let m = master(
            r#"#EXTM3U
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="muxed"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="en",AUTOSELECT=YES,URI="en.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="de",DEFAULT=YES,URI="de.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="b",NAME="fr",URI="fr.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="b",NAME="it",URI="it.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="c",NAME="c",AUTOSELECT=YES
#EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO="a"
a.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=2,AUDIO="b"
b.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=3,AUDIO="c"
c.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=4
d.m3u8
"#,
        );
        let name = |v: usize| pick_audio(&m, &m.variants[v], &[]).map(|r| r.name.as_str());
        // DEFAULT beats AUTOSELECT; a rendition without URI is muxed in, never picked.
        assert_eq!(name(0), Some("de"));
        assert_eq!(name(1), Some("fr"));
        assert_eq!(name(2), None);
        assert_eq!(name(3), None);
    }

    #[test]
    fn audio_language_preferences_pick_the_rendition_and_adaptation_set() {
        let m = master(
            r#"#EXTM3U
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="English",LANGUAGE="en-US",DEFAULT=YES,URI="en.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="Deutsch",LANGUAGE="de",URI="de.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="Français",LANGUAGE="fra",URI="fr.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO="a"
a.m3u8
"#,
        );
        let name = |prefs: &[&str]| {
            let prefs: Vec<String> = prefs.iter().map(|s| s.to_string()).collect();
            pick_audio(&m, &m.variants[0], &prefs).map(|r| r.name.clone())
        };
        assert_eq!(name(&[]).as_deref(), Some("English"));
        assert_eq!(name(&["de"]).as_deref(), Some("Deutsch"));
        // ISO 639-2 either side, the first preference that exists wins.
        assert_eq!(name(&["ger"]).as_deref(), Some("Deutsch"));
        assert_eq!(name(&["ja", "fr", "de"]).as_deref(), Some("Français"));
        assert_eq!(name(&["en-GB"]).as_deref(), Some("English"));
        // Nothing matches: the default.
        assert_eq!(name(&["ja"]).as_deref(), Some("English"));

        let d = mpd(
            r#"type="static" mediaPresentationDuration="PT10S""#,
            r#"<Period>
  <AdaptationSet id="v" mimeType="video/mp4">
    <SegmentTemplate duration="5" media="v/$Number$.m4s"/><Representation id="v" bandwidth="1"/>
  </AdaptationSet>
  <AdaptationSet id="en" mimeType="audio/mp4" lang="en">
    <Role schemeIdUri="urn:mpeg:dash:role:2011" value="main"/>
    <SegmentTemplate duration="5" media="en/$Number$.m4s"/><Representation id="en" bandwidth="1"/>
  </AdaptationSet>
  <AdaptationSet id="de" mimeType="audio/mp4" lang="deu">
    <SegmentTemplate duration="5" media="de/$Number$.m4s"/><Representation id="de" bandwidth="1"/>
  </AdaptationSet>
</Period>"#,
        );
        let audio = |prefs: &[&str]| {
            let prefs: Vec<String> = prefs.iter().map(|s| s.to_string()).collect();
            pick_tracks(&d.periods[0], &prefs, &[])[1]
                .track
                .adaptation_set_id
                .clone()
        };
        assert_eq!(audio(&[]).as_deref(), Some("en"));
        assert_eq!(audio(&["de"]).as_deref(), Some("de"));
        assert_eq!(audio(&["it"]).as_deref(), Some("en"));
        // The video track is not affected.
        let prefs = vec!["de".to_string()];
        assert_eq!(
            pick_tracks(&d.periods[0], &prefs, &[])[0]
                .track
                .adaptation_set_id
                .as_deref(),
            Some("v")
        );
    }

    #[test]
    fn dash_picks_main_video_then_audio_skipping_drm() {
        let m = mpd(
            r#"type="static" mediaPresentationDuration="PT10S""#,
            r#"<Period>
  <AdaptationSet id="drm" mimeType="video/mp4">
    <ContentProtection schemeIdUri="urn:mpeg:dash:mp4protection:2011" value="cenc"/>
    <Role schemeIdUri="urn:mpeg:dash:role:2011" value="main"/>
    <SegmentTemplate duration="5" media="d/$Number$.m4s"/>
    <Representation id="d" bandwidth="1"/>
  </AdaptationSet>
  <AdaptationSet id="en" mimeType="audio/mp4" lang="en">
    <SegmentTemplate duration="5" media="en/$Number$.m4s"/>
    <Representation id="en" bandwidth="1"/>
  </AdaptationSet>
  <AdaptationSet id="alt" mimeType="video/mp4">
    <SegmentTemplate duration="5" media="alt/$Number$.m4s"/>
    <Representation id="alt" bandwidth="1"/>
  </AdaptationSet>
  <AdaptationSet id="main" mimeType="video/mp4">
    <Role schemeIdUri="urn:mpeg:dash:role:2011" value="main"/>
    <SegmentTemplate duration="5" media="v/$Number$.m4s"/>
    <Representation id="hi" bandwidth="2000" width="1280" height="720"/>
    <Representation id="lo" bandwidth="500"/>
  </AdaptationSet>
</Period>"#,
        );
        let picked = pick_tracks(&m.periods[0], &[], &[]);
        let got: Vec<_> = picked
            .iter()
            .map(|p| (p.adaptation_set, p.track.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    3,
                    Track {
                        kind: MediaType::Video,
                        adaptation_set_id: Some("main".into()),
                        position: 2,
                        representation_ids: vec!["hi".into(), "lo".into()],
                    }
                ),
                (
                    1,
                    Track {
                        kind: MediaType::Audio,
                        adaptation_set_id: Some("en".into()),
                        position: 0,
                        representation_ids: vec!["en".into()],
                    }
                ),
            ]
        );
        let v = variants(picked[0].set, &url());
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].bandwidth, v[0].resolution), (2000, Some((1280, 720))));
        assert_eq!((v[1].bandwidth, v[1].resolution), (500, None));
        assert!(v.iter().all(|v| v.uri == url()));
    }

    #[test]
    fn dash_period_to_start_in() {
        let m = mpd(
            r#"type="static" mediaPresentationDuration="PT30S""#,
            r#"<Period id="a" duration="PT10S"><AdaptationSet mimeType="video/mp4">
  <SegmentTemplate duration="5" media="a/$Number$.m4s"/><Representation id="v" bandwidth="1"/>
</AdaptationSet></Period>
<Period id="b" duration="PT20S"><AdaptationSet mimeType="video/mp4">
  <SegmentTemplate duration="5" media="b/$Number$.m4s"/><Representation id="v" bandwidth="1"/>
</AdaptationSet></Period>"#,
        );
        assert_eq!(start_period(&m, None), 0);
        assert_eq!(start_period(&m, Some(secs(9))), 0);
        assert_eq!(start_period(&m, Some(secs(10))), 1);
        assert_eq!(start_period(&m, Some(secs(99))), 1);
    }

    #[test]
    fn dash_periods_flatten_into_one_playlist() {
        // The second Period renames the set and reorders the Representations: the track
        // follows the set by position, the Representation by id; the third has no video.
        let m = mpd(
            r#"type="static" mediaPresentationDuration="PT25S""#,
            r#"<BaseURL>https://media.example.net/</BaseURL>
<Period id="a" duration="PT10S">
  <AdaptationSet id="1" mimeType="video/mp4">
    <SegmentTemplate duration="5" media="a/$RepresentationID$/$Number$.m4s"/>
    <Representation id="hi" bandwidth="2"/>
    <Representation id="lo" bandwidth="1"/>
  </AdaptationSet>
</Period>
<Period id="b" duration="PT10S">
  <AdaptationSet id="9" mimeType="video/mp4">
    <SegmentTemplate timescale="10" duration="50" presentationTimeOffset="30"
        media="b/$RepresentationID$/$Number$.m4s"/>
    <Representation id="lo" bandwidth="1"/>
    <Representation id="hi" bandwidth="2"/>
  </AdaptationSet>
</Period>
<Period id="c" duration="PT5S">
  <AdaptationSet mimeType="audio/mp4">
    <SegmentTemplate duration="5" media="c/$Number$.m4s"/>
    <Representation id="x" bandwidth="1"/>
  </AdaptationSet>
</Period>"#,
        );
        let track = pick_tracks(&m.periods[0], &[], &[]).remove(0).track;
        let p = flatten(&m, parts(&m, &track, 1));
        let got: Vec<_> = p
            .segments
            .iter()
            .map(|s| {
                (
                    s.resource.url.path().to_string(),
                    s.sequence,
                    s.start,
                    s.discontinuity,
                    s.discontinuity_sequence,
                    s.media_offset_ns,
                )
            })
            .collect();
        let b = 10 << 32;
        let offset_b = Some(3_000_000_000 - 10_000_000_000);
        assert_eq!(
            got,
            vec![
                ("/a/lo/1.m4s".into(), 1, secs(0), false, 0, Some(0)),
                ("/a/lo/2.m4s".into(), 2, secs(5), false, 0, Some(0)),
                // Discontinuities are numbered by Period start (ms): stable when a live MPD
                // drops its oldest Period.
                (
                    "/b/lo/1.m4s".into(),
                    b | 1,
                    secs(10),
                    true,
                    10_000,
                    offset_b
                ),
                (
                    "/b/lo/2.m4s".into(),
                    b | 2,
                    secs(15),
                    false,
                    10_000,
                    offset_b
                ),
            ]
        );
        assert!(!p.is_live());
        assert_eq!(p.target_duration, secs(5));
    }

    #[test]
    fn overlapping_periods_keep_the_timeline_increasing() {
        // Both Periods start within the same second: their keys collide, and the second
        // Period's segments numbered at or below the first's last one are dropped.
        let m = mpd(
            r#"type="static" mediaPresentationDuration="PT20S""#,
            r#"<Period id="a" start="PT0S"><AdaptationSet mimeType="video/mp4">
  <SegmentTemplate duration="5" startNumber="1" media="a/$Number$.m4s"/>
  <Representation id="v" bandwidth="1"/>
</AdaptationSet></Period>
<Period id="b" start="PT0.5S"><AdaptationSet mimeType="video/mp4">
  <SegmentTemplate duration="5" startNumber="1" media="b/$Number$.m4s"/>
  <Representation id="v" bandwidth="1"/>
</AdaptationSet></Period>"#,
        );
        let track = pick_tracks(&m.periods[0], &[], &[]).remove(0).track;
        let p = flatten(&m, parts(&m, &track, 0));
        let got: Vec<_> = p
            .segments
            .iter()
            .map(|s| (s.resource.url.path().to_string(), s.sequence))
            .collect();
        assert_eq!(
            got,
            vec![
                ("/vod/a/1.m4s".into(), 1),
                ("/vod/b/2.m4s".into(), 2),
                ("/vod/b/3.m4s".into(), 3),
                ("/vod/b/4.m4s".into(), 4),
            ]
        );
    }
}
