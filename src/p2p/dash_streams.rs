//! Which streams p2p-media-loader-shaka (PML's Shaka Player integration) creates for a DASH
//! Period, and what it feeds into their swarm identity (reference §5.2, §5.4): every Shaka
//! video stream is a `main` swarm, every audio stream a `secondary` one (audio-only content:
//! `main`); text and image streams are never P2P.
//!
//! Verified from source (not guessed):
//!
//! * **Enumeration** — p2p-media-loader-shaka `src/manifest-parser-decorator.ts`
//!   (`processStreams`, identical loop at tag `2.2.2`, npm 2.2.2 `lib/`+`dist/`, and HEAD/2.3):
//!   right after Shaka's own `DashParser.start()` returns, it walks `manifest.variants` in
//!   array order; per variant first `video` then `audio`, each Shaka stream once (keyed by
//!   `stream.id`). 2.2.2 passes running counters `videoCount++` / `audioCount++` as the index
//!   (the audio counter is shared by `main` audio-only and `secondary` audio); HEAD passes
//!   `generateStreamShortId(props)`. No sorting happens in between: the variants are
//!   `PeriodCombiner.getVariants()` as built (shaka-player `lib/dash/dash_parser.js:839,903`
//!   at v4.16.9, the version p2p-media-loader-shaka 2.2.2 was developed against — its
//!   devDependency `^4.16.9`, lockfile `4.16.9`; Shaka sorts/filters variants only later, in
//!   the Player, after PML has registered the streams).
//! * **Variant order** — shaka-player v4.16.9 `lib/util/periods.js` `combinePeriods`:
//!   audio-only or video-only content gets one variant per stream (bandwidth = the stream's);
//!   otherwise `for (audio of audioStreams) for (video of videoStreams)` with
//!   `bandwidth = audio.bandwidth + video.bandwidth`. So each type's 2.2 position is simply its
//!   ordinal among that type's streams, and a video's first variant is the one with the
//!   *first* audio stream.
//! * **Stream lists** — `dash_parser.js` `parsePeriod_`/`getStreamsFromSets_`: AdaptationSets
//!   in MPD order, Representations in MPD order within each (trick-mode sets excluded). Then
//!   `periods.js` `getStreamsPerPeriod_` de-duplicates through `new Map([key, stream])`: a
//!   later stream with an equal key *replaces the value at the earlier position*
//!   (`generateVideoKey_`: fastSwitching, width, frameRate, codecs, mimeType, label, roles,
//!   closedCaptions, bandwidth, dependency, keyIds — note: not height; `generateAudioKey_`:
//!   fastSwitching, channelsCount, language, bandwidth, label, codecs, mimeType, roles,
//!   audioSamplingRate, primary, dependency, keyIds). This applies to static single-Period
//!   MPDs and to the first Period of the combining path (dynamic / multi-Period) alike.
//! * **Stream fields** — `dash_parser.js` `parseAdaptationSet_`/`parseRepresentation_`/
//!   `createFrame_`: `bandwidth` = Representation@bandwidth (0 if missing); `codecs` =
//!   Representation@codecs else the AdaptationSet's; `frameRate` evaluated ("30000/1001");
//!   `language = LanguageUtils.normalize(AdaptationSet@lang || "und")` — the
//!   **AdaptationSet's** lang only (Representation@lang is ignored), ISO 639-2 → 639-1
//!   (`"eng"`→`"en"`, `"ger"`→`"de"`, `"jpn"`→`"ja"`); `label` = the **AdaptationSet's**
//!   first non-empty `Label` (else its non-standard `@label`), `null` if none;
//!   `originalId` = Representation@id; `channelsCount` from AudioChannelConfiguration;
//!   `hdr` = "PQ" for the dash-if hevc-hdr-pq10 profile, else the AdaptationSet's
//!   transfer-characteristics property.
//! * **2.3 props** — HEAD `manifest-parser-decorator.ts`: video: `bitrate` = bandwidth of the
//!   first variant containing it; if that is 0 only the bitrate is hashed; else `codecs` =
//!   `video.codecs` split on `,`, trimmed, lower-cased, minus entries starting with
//!   `mp4a|ac-3|ec-3|ec+3|opus|vorb|flac`; `width`, `height`, `frameRate`,
//!   `videoRange = video.hdr`. Audio with video present (`secondary`): bitrate 0, `codecs`,
//!   `language`, `channels = channelsCount`, `name = label ?? originalId` (so an unlabelled
//!   audio stream hashes its Representation@id). Audio-only (`main`): `bitrate` = the
//!   variant's bandwidth (= the audio's) and nothing else.
//!
//! * **Checked in a browser** — the real p2p-media-loader-shaka 2.2.2 + p2p-media-loader-core
//!   2.2.2 + shaka-player 4.16.9 in headless Chromium on three ffmpeg-made MPDs (2 video + 1
//!   audio; German labelled audio first + 2 video + English audio; audio-only): every 2.2
//!   info-hash PML computed, and every 2.3 index that HEAD's `processStreams` logic with core
//!   2.3.1's `generateStreamShortId` gives on the real Shaka manifest, equals this module's
//!   (test `matches_real_shaka_and_pml`). p2p-media-loader-shaka 2.3 is not on npm (latest is
//!   2.2.2), so the 2.3 side is HEAD source logic replayed on real Shaka streams.
//!
//! * **videoRange** — `Representation::video_range`, Shaka's `hdr` as the parser computes it
//!   (v4.16.9 `dash_parser.js`): the `hevc-hdr-pq10` MPD profile with its codec, else the
//!   AdaptationSet's cicp TransferCharacteristics property.
//! * **Several Periods or live** — `periods.js` `PeriodCombiner` (dynamic MPDs always go
//!   through it): a combined stream keeps its first Period's fields and takes the highest
//!   bandwidth of the streams matched to it in every Period ([`shaka_streams_in`]).
//!
//! Not reproduced (the parsed model lacks the data): trick-mode AdaptationSets (Shaka drops
//! them; keep them out of the MPD), AdaptationSets with an EssentialProperty Shaka does not
//! know (dropped by it), supplementalCodecs duplicates, dependencyId streams,
//! DRM-incompatible audio/video pairs, the key fields fastSwitching/closedCaptions/keyIds/
//! audioSamplingRate in de-duplication; across Periods, Shaka's full best-match scoring
//! (ours: same key, else nearest resolution / language) and streams that only a later Period
//! has (Shaka gives them swarms of their own); a live start in a later Period takes that
//! Period's streams as the first.

use super::identity::{StreamProperties, StreamType};
use crate::manifest::dash::{AdaptationSet, Mpd, Period, Representation};
use crate::media::MediaType;

/// One Representation as p2p-media-loader-shaka sees it: which swarm type, what it hashes
/// (2.3) and its ordinal (2.2).
#[derive(Debug, Clone, PartialEq)]
pub struct ShakaStream {
    /// Index into `period.adaptation_sets`.
    pub adaptation_set: usize,
    /// Index into `adaptation_set.representations`.
    pub representation: usize,
    /// `Main` (video, or audio of audio-only content) or `Secondary` (audio next to video).
    pub stream_type: StreamType,
    /// What PML 2.3 hashes into the stream index.
    pub props: StreamProperties,
    /// PML 2.2 ordinal (separate counters for video and audio streams).
    pub position: usize,
}

/// Audio codec prefixes PML 2.3 strips from a video stream's codecs.
const AUDIO_CODECS: &[&str] = &["mp4a", "ac-3", "ec-3", "ec+3", "opus", "vorb", "flac"];

/// Shaka's `LanguageUtils.isoMap_` (ISO 639-2 → ISO 639-1), shaka-player v4.16.9.
const ISO_639_2_TO_1: &[(&str, &str)] = &[
    ("aar", "aa"),
    ("abk", "ab"),
    ("afr", "af"),
    ("aka", "ak"),
    ("alb", "sq"),
    ("amh", "am"),
    ("ara", "ar"),
    ("arg", "an"),
    ("arm", "hy"),
    ("asm", "as"),
    ("ava", "av"),
    ("ave", "ae"),
    ("aym", "ay"),
    ("aze", "az"),
    ("bak", "ba"),
    ("bam", "bm"),
    ("baq", "eu"),
    ("bel", "be"),
    ("ben", "bn"),
    ("bih", "bh"),
    ("bis", "bi"),
    ("bod", "bo"),
    ("bos", "bs"),
    ("bre", "br"),
    ("bul", "bg"),
    ("bur", "my"),
    ("cat", "ca"),
    ("ces", "cs"),
    ("cha", "ch"),
    ("che", "ce"),
    ("chi", "zh"),
    ("chu", "cu"),
    ("chv", "cv"),
    ("cor", "kw"),
    ("cos", "co"),
    ("cre", "cr"),
    ("cym", "cy"),
    ("cze", "cs"),
    ("dan", "da"),
    ("deu", "de"),
    ("div", "dv"),
    ("dut", "nl"),
    ("dzo", "dz"),
    ("ell", "el"),
    ("eng", "en"),
    ("epo", "eo"),
    ("est", "et"),
    ("eus", "eu"),
    ("ewe", "ee"),
    ("fao", "fo"),
    ("fas", "fa"),
    ("fij", "fj"),
    ("fin", "fi"),
    ("fra", "fr"),
    ("fre", "fr"),
    ("fry", "fy"),
    ("ful", "ff"),
    ("geo", "ka"),
    ("ger", "de"),
    ("gla", "gd"),
    ("gle", "ga"),
    ("glg", "gl"),
    ("glv", "gv"),
    ("gre", "el"),
    ("grn", "gn"),
    ("guj", "gu"),
    ("hat", "ht"),
    ("hau", "ha"),
    ("heb", "he"),
    ("her", "hz"),
    ("hin", "hi"),
    ("hmo", "ho"),
    ("hrv", "hr"),
    ("hun", "hu"),
    ("hye", "hy"),
    ("ibo", "ig"),
    ("ice", "is"),
    ("ido", "io"),
    ("iii", "ii"),
    ("iku", "iu"),
    ("ile", "ie"),
    ("ina", "ia"),
    ("ind", "id"),
    ("ipk", "ik"),
    ("isl", "is"),
    ("ita", "it"),
    ("jav", "jv"),
    ("jpn", "ja"),
    ("kal", "kl"),
    ("kan", "kn"),
    ("kas", "ks"),
    ("kat", "ka"),
    ("kau", "kr"),
    ("kaz", "kk"),
    ("khm", "km"),
    ("kik", "ki"),
    ("kin", "rw"),
    ("kir", "ky"),
    ("kom", "kv"),
    ("kon", "kg"),
    ("kor", "ko"),
    ("kua", "kj"),
    ("kur", "ku"),
    ("lao", "lo"),
    ("lat", "la"),
    ("lav", "lv"),
    ("lim", "li"),
    ("lin", "ln"),
    ("lit", "lt"),
    ("ltz", "lb"),
    ("lub", "lu"),
    ("lug", "lg"),
    ("mac", "mk"),
    ("mah", "mh"),
    ("mal", "ml"),
    ("mao", "mi"),
    ("mar", "mr"),
    ("may", "ms"),
    ("mkd", "mk"),
    ("mlg", "mg"),
    ("mlt", "mt"),
    ("mon", "mn"),
    ("mri", "mi"),
    ("msa", "ms"),
    ("mya", "my"),
    ("nau", "na"),
    ("nav", "nv"),
    ("nbl", "nr"),
    ("nde", "nd"),
    ("ndo", "ng"),
    ("nep", "ne"),
    ("nld", "nl"),
    ("nno", "nn"),
    ("nob", "nb"),
    ("nor", "no"),
    ("nya", "ny"),
    ("oci", "oc"),
    ("oji", "oj"),
    ("ori", "or"),
    ("orm", "om"),
    ("oss", "os"),
    ("pan", "pa"),
    ("per", "fa"),
    ("pli", "pi"),
    ("pol", "pl"),
    ("por", "pt"),
    ("pus", "ps"),
    ("que", "qu"),
    ("roh", "rm"),
    ("ron", "ro"),
    ("rum", "ro"),
    ("run", "rn"),
    ("rus", "ru"),
    ("sag", "sg"),
    ("san", "sa"),
    ("sin", "si"),
    ("slk", "sk"),
    ("slo", "sk"),
    ("slv", "sl"),
    ("sme", "se"),
    ("smo", "sm"),
    ("sna", "sn"),
    ("snd", "sd"),
    ("som", "so"),
    ("sot", "st"),
    ("spa", "es"),
    ("sqi", "sq"),
    ("srd", "sc"),
    ("srp", "sr"),
    ("ssw", "ss"),
    ("sun", "su"),
    ("swa", "sw"),
    ("swe", "sv"),
    ("tah", "ty"),
    ("tam", "ta"),
    ("tat", "tt"),
    ("tel", "te"),
    ("tgk", "tg"),
    ("tgl", "tl"),
    ("tha", "th"),
    ("tib", "bo"),
    ("tir", "ti"),
    ("ton", "to"),
    ("tsn", "tn"),
    ("tso", "ts"),
    ("tuk", "tk"),
    ("tur", "tr"),
    ("twi", "tw"),
    ("uig", "ug"),
    ("ukr", "uk"),
    ("urd", "ur"),
    ("uzb", "uz"),
    ("ven", "ve"),
    ("vie", "vi"),
    ("vol", "vo"),
    ("wel", "cy"),
    ("wln", "wa"),
    ("wol", "wo"),
    ("xho", "xh"),
    ("yid", "yi"),
    ("yor", "yo"),
    ("zha", "za"),
    ("zho", "zh"),
    ("zul", "zu"),
];

/// Shaka's `LanguageUtils.normalize` (v4.16.9): keep language, region and private-use
/// parts; lower-case the language and map ISO 639-2 codes to ISO 639-1; upper-case the region.
pub fn shaka_normalize_language(locale: &str) -> String {
    let (language_region, private_use) = match locale.split_once("-x-") {
        Some((lr, pu)) => (lr, pu.split("-x-").next().unwrap_or("")),
        None => (locale, ""),
    };
    let mut parts = language_region.split('-');
    let language = parts.next().unwrap_or("").to_lowercase();
    let region = parts.next().unwrap_or("").to_uppercase();
    let language = ISO_639_2_TO_1
        .iter()
        .find(|(three, _)| *three == language)
        .map_or(language.clone(), |(_, two)| (*two).to_owned());
    let mut out = if region.is_empty() {
        language
    } else {
        format!("{language}-{region}")
    };
    if !private_use.is_empty() {
        out.push_str("-x-");
        out.push_str(private_use);
    }
    out
}

/// Shaka's `stream.language` for a Representation of this AdaptationSet.
fn stream_language(a: &AdaptationSet) -> String {
    shaka_normalize_language(a.lang.as_deref().filter(|l| !l.is_empty()).unwrap_or("und"))
}

/// Shaka's `stream.label`: the AdaptationSet's label, `null` when empty.
fn stream_label(a: &AdaptationSet) -> Option<&str> {
    a.label.as_deref().filter(|l| !l.is_empty())
}

/// Shaka's `stream.codecs` (Representation@codecs else the AdaptationSet's, trimmed).
fn stream_codecs(r: &Representation) -> String {
    r.codecs.as_deref().unwrap_or("").trim().to_owned()
}

/// `PeriodCombiner.generateVideoKey_`/`generateAudioKey_`, restricted to the fields the
/// parsed model carries.
fn dedup_key(a: &AdaptationSet, r: &Representation) -> String {
    match a.stream_type {
        MediaType::Video => format!(
            "{:?}|{:?}|{}|{:?}|{:?}|{:?}|{}",
            r.width,
            r.frame_rate.map(f64::to_bits),
            stream_codecs(r),
            r.mime_type,
            stream_label(a),
            a.roles,
            r.bandwidth
        ),
        _ => format!(
            "{:?}|{}|{}|{:?}|{}|{:?}|{:?}",
            r.channels,
            stream_language(a),
            r.bandwidth,
            stream_label(a),
            stream_codecs(r),
            r.mime_type,
            a.roles
        ),
    }
}

/// Shaka's de-duplicated stream list of one type: `(adaptation set, representation)` in
/// MPD order; a duplicate replaces the earlier entry in place (JS `Map` semantics).
fn streams_of(period: &Period, kind: MediaType) -> Vec<(usize, usize)> {
    let mut keys: Vec<String> = Vec::new();
    let mut out: Vec<(usize, usize)> = Vec::new();
    for (ai, a) in period.adaptation_sets.iter().enumerate() {
        if a.stream_type != kind {
            continue;
        }
        for (ri, r) in a.representations.iter().enumerate() {
            let key = dedup_key(a, r);
            match keys.iter().position(|k| *k == key) {
                Some(i) => out[i] = (ai, ri),
                None => {
                    keys.push(key);
                    out.push((ai, ri));
                }
            }
        }
    }
    out
}

/// PML 2.3 video codecs: split, trim, lower-case, drop audio entries.
fn video_codecs(codecs: &str) -> Option<String> {
    if codecs.is_empty() {
        return None;
    }
    Some(
        codecs
            .split(',')
            .map(|c| c.trim().to_lowercase())
            .filter(|c| !AUDIO_CODECS.iter().any(|p| c.starts_with(p)))
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// PML 0.6 with Shaka Player 2.x names a DASH stream's swarm `<master>+V<Shaka's stream id>`
/// (0.6.2 `parser-segment.ts`, `manifest-parser-proxy.ts`). Shaka 2.5 numbers streams per
/// `load` from 1: +1 per Representation in MPD order (AdaptationSets in order), and +1 after
/// an AdaptationSet without `@id` (`dash_parser.js`); the Period's variants take the next
/// numbers. So in the first Period the id of Representation `rep` of AdaptationSet `set` is
/// known from the MPD alone (checked in a browser on the interop fixture: 640x360 = 1,
/// 320x180 = 2, audio = 3). Later Periods: None (0.6 does not share them reliably either).
pub fn shaka2_stream_id(period: &Period, set: usize, rep: usize) -> Option<usize> {
    let mut id = 1;
    for (i, s) in period.adaptation_sets.iter().enumerate() {
        if i == set {
            return (rep < s.representations.len()).then_some(id + rep);
        }
        id += s.representations.len() + usize::from(s.id.is_none());
    }
    None
}

/// Streams of one Period (the engine passes the first Period it plays) in the order
/// Shaka/PML would enumerate them: videos, then audios (each type in Shaka's stream order;
/// that is also the order of first appearance in `manifest.variants` per type). Shaka's fast
/// path: a static single-Period MPD (for others see [`shaka_streams_in`]).
pub fn shaka_streams(period: &Period) -> Vec<ShakaStream> {
    let bandwidth = |ai: usize, ri: usize| period.adaptation_sets[ai].representations[ri].bandwidth;
    streams_with(period, &bandwidth)
}

/// [`shaka_streams`] of Period `index` of `mpd` as Shaka's `PeriodCombiner` gives them when
/// it combines (a dynamic MPD, or several Periods): each stream's bandwidth is the highest of
/// the streams matched to it in every Period (v4.16.9 `periods.js` `concatenateStreams_`;
/// only where both are non-zero); its other fields stay the first Period's.
pub fn shaka_streams_in(mpd: &Mpd, index: usize) -> Vec<ShakaStream> {
    let Some(period) = mpd.periods.get(index) else {
        return Vec::new();
    };
    if !mpd.dynamic && mpd.periods.len() == 1 {
        return shaka_streams(period);
    }
    // Each Period's de-duplicated streams with their keys, computed once.
    let lists: Vec<Vec<Keyed>> = mpd
        .periods
        .iter()
        .map(|p| {
            [MediaType::Video, MediaType::Audio]
                .into_iter()
                .flat_map(|kind| streams_of(p, kind))
                .map(|(ai, ri)| {
                    let a = &p.adaptation_sets[ai];
                    let r = &a.representations[ri];
                    (dedup_key(a, r), a, r)
                })
                .collect()
        })
        .collect();
    let bandwidth = |ai: usize, ri: usize| {
        let (a, r) = (
            &period.adaptation_sets[ai],
            &period.adaptation_sets[ai].representations[ri],
        );
        let key = dedup_key(a, r);
        lists
            .iter()
            .filter_map(|other| matched(a, r, &key, other))
            .fold(r.bandwidth, |out, b| {
                if out != 0 && b != 0 {
                    out.max(b)
                } else {
                    out
                }
            })
    };
    streams_with(period, &bandwidth)
}

/// The bandwidth of the stream of `other` the combiner matches to (`a`, `r`)
/// (`findBestMatchInPeriod_`): an equal one (same de-duplication key), else among those of
/// the same codecs (else all): video the closest resolution (a lower one before a higher
/// one), then frame rate, then bandwidth; audio the same language, then label, then channel
/// count, then the closest bandwidth. A simplification of Shaka's scoring for the ladders
/// real multi-Period content repeats.
/// A stream of a Period with its de-duplication key.
type Keyed<'a> = (String, &'a AdaptationSet, &'a Representation);

fn matched(a: &AdaptationSet, r: &Representation, key: &str, other: &[Keyed<'_>]) -> Option<u64> {
    let same_kind = || {
        other
            .iter()
            .filter(|(_, ca, _)| ca.stream_type == a.stream_type)
    };
    if let Some((_, _, c)) = same_kind().find(|(k, _, _)| k == key) {
        return Some(c.bandwidth);
    }
    let candidates: Vec<(&AdaptationSet, &Representation)> =
        same_kind().map(|(_, ca, cr)| (*ca, *cr)).collect();
    let codecs = stream_codecs(r);
    let same: Vec<_> = candidates
        .iter()
        .filter(|(_, c)| stream_codecs(c) == codecs)
        .copied()
        .collect();
    let pool = if same.is_empty() { candidates } else { same };
    let bw = |c: &Representation| c.bandwidth.abs_diff(r.bandwidth);
    match a.stream_type {
        MediaType::Video => {
            let pixels =
                |c: &Representation| c.width.unwrap_or(0).saturating_mul(c.height.unwrap_or(0));
            let want = pixels(r);
            pool.into_iter()
                .min_by(|(_, x), (_, y)| {
                    let rank = |c: &Representation| {
                        let p = pixels(c);
                        (p.abs_diff(want), p > want)
                    };
                    let fr = |c: &Representation| {
                        (c.frame_rate.unwrap_or(0.0) - r.frame_rate.unwrap_or(0.0)).abs()
                    };
                    rank(x)
                        .cmp(&rank(y))
                        .then(fr(x).total_cmp(&fr(y)))
                        .then(bw(x).cmp(&bw(y)))
                })
                .map(|(_, c)| c.bandwidth)
        }
        _ => pool
            .into_iter()
            .min_by_key(|(ca, c)| {
                (
                    stream_language(ca) != stream_language(a),
                    stream_label(ca) != stream_label(a),
                    c.channels != r.channels,
                    bw(c),
                )
            })
            .map(|(_, c)| c.bandwidth),
    }
}

fn streams_with(period: &Period, bandwidth: &dyn Fn(usize, usize) -> u64) -> Vec<ShakaStream> {
    let videos = streams_of(period, MediaType::Video);
    let audios = streams_of(period, MediaType::Audio);
    let rep = |(ai, ri): (usize, usize)| {
        let a = &period.adaptation_sets[ai];
        (a, &a.representations[ri])
    };
    // Bandwidth of the first variant each video appears in: with the first audio stream.
    let first_audio_bw = audios.first().map_or(0, |&(ai, ri)| bandwidth(ai, ri));
    let mut out = Vec::with_capacity(videos.len() + audios.len());
    for (position, &(ai, ri)) in videos.iter().enumerate() {
        let (_, r) = rep((ai, ri));
        let bitrate = bandwidth(ai, ri) + first_audio_bw;
        let props = if bitrate == 0 {
            StreamProperties::default()
        } else {
            StreamProperties {
                bitrate,
                codecs: video_codecs(&stream_codecs(r)),
                width: r.width.and_then(|w| u32::try_from(w).ok()),
                height: r.height.and_then(|h| u32::try_from(h).ok()),
                frame_rate: r.frame_rate,
                video_range: r.video_range.clone(),
                ..Default::default()
            }
        };
        out.push(ShakaStream {
            adaptation_set: ai,
            representation: ri,
            stream_type: StreamType::Main,
            props,
            position,
        });
    }
    let audio_only = videos.is_empty();
    for (position, &(ai, ri)) in audios.iter().enumerate() {
        let (a, r) = rep((ai, ri));
        let props = if audio_only {
            StreamProperties {
                bitrate: bandwidth(ai, ri),
                ..Default::default()
            }
        } else {
            let codecs = stream_codecs(r);
            StreamProperties {
                bitrate: 0,
                codecs: Some(codecs).filter(|c| !c.is_empty()),
                language: Some(stream_language(a)),
                channels: r.channels.map(|c| c.to_string()),
                name: Some(stream_label(a).unwrap_or(&r.id).to_owned()),
                ..Default::default()
            }
        };
        out.push(ShakaStream {
            adaptation_set: ai,
            representation: ri,
            stream_type: if audio_only {
                StreamType::Main
            } else {
                StreamType::Secondary
            },
            props,
            position,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::dash::parse;
    use crate::p2p::identity::{normalized_stream_properties, stream_swarm, Compat};

    const SWARM: &str = "https://example.com/vod/out.mpd";

    fn period(sets: &str) -> Period {
        let mpd = format!(
            r#"<?xml version="1.0"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT4S"
     profiles="urn:mpeg:dash:profile:isoff-live:2011" minBufferTime="PT2S">
 <Period id="0" start="PT0S">{sets}</Period>
</MPD>"#
        );
        let url = url::Url::parse(&format!("{SWARM}?token=1")).unwrap();
        parse(mpd.as_bytes(), &url, 0.0).unwrap().periods.remove(0)
    }

    const TPL: &str = r#"<SegmentTemplate timescale="1000" duration="2000" initialization="i$RepresentationID$.m4s" media="c$RepresentationID$-$Number$.m4s" startNumber="1"/>"#;

    /// Shaka's `hdr` from the cicp TransferCharacteristics properties and the DASH-IF UHD
    /// profile, and into the 2.3 props as `videoRange`.
    #[test]
    fn video_range_from_cicp_properties_and_the_pq10_profile() {
        const TC: &str = "urn:mpeg:mpegB:cicp:TransferCharacteristics";
        let range = |profiles: &str, props: &str, codecs: &str| {
            let mpd = format!(
                r#"<?xml version="1.0"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT4S"
     profiles="{profiles}" minBufferTime="PT2S">
 <Period id="0" start="PT0S"><AdaptationSet mimeType="video/mp4" codecs="{codecs}">{props}{TPL}
  <Representation id="v" bandwidth="1000" width="640" height="360"/></AdaptationSet></Period>
</MPD>"#
            );
            let url = url::Url::parse(SWARM).unwrap();
            let m = parse(mpd.as_bytes(), &url, 0.0).unwrap();
            let rep = &m.periods[0].adaptation_sets[0].representations[0];
            let streams = shaka_streams(&m.periods[0]);
            assert_eq!(streams[0].props.video_range, rep.video_range);
            rep.video_range.clone()
        };
        let live = "urn:mpeg:dash:profile:isoff-live:2011";
        let prop = |kind: &str, v: &str| format!(r#"<{kind} schemeIdUri="{TC}" value="{v}"/>"#);
        assert_eq!(range(live, "", "avc1.64001f"), None);
        assert_eq!(
            range(
                live,
                &prop("SupplementalProperty", "16"),
                "hvc1.2.4.L153.B0"
            )
            .as_deref(),
            Some("PQ")
        );
        assert_eq!(
            range(live, &prop("EssentialProperty", "18"), "hvc1.2.4.L153.B0").as_deref(),
            Some("HLG")
        );
        for sdr in ["1", "6", "13", "14", "15"] {
            assert_eq!(
                range(live, &prop("SupplementalProperty", sdr), "avc1").as_deref(),
                Some("SDR")
            );
        }
        // Supplemental is read after Essential and overwrites it, an unmapped value too.
        let both = prop("EssentialProperty", "18") + &prop("SupplementalProperty", "1");
        assert_eq!(range(live, &both, "avc1").as_deref(), Some("SDR"));
        let cleared = prop("EssentialProperty", "16") + &prop("SupplementalProperty", "2");
        assert_eq!(range(live, &cleared, "avc1"), None);
        // The profile says PQ for its codec, over the property.
        let pq10 = format!("{live},http://dashif.org/guidelines/dash-if-uhd#hevc-hdr-pq10");
        assert_eq!(
            range(
                &pq10,
                &prop("SupplementalProperty", "1"),
                "hev1.2.4.L153.B0"
            )
            .as_deref(),
            Some("PQ")
        );
        assert_eq!(range(&pq10, "", "avc1.64001f"), None);
        // Into the 2.3 hash input, last field.
        let mut props = StreamProperties {
            bitrate: 1,
            video_range: Some(" pq ".into()),
            ..Default::default()
        };
        assert!(normalized_stream_properties(&props).ends_with("-PQ"));
        props.video_range = None;
        assert!(normalized_stream_properties(&props).ends_with("--"));
    }

    /// Several Periods: the combined stream's bandwidth is the highest matched to it in any
    /// Period, the audio's too (so a video's variant bandwidth follows); one static Period
    /// takes Shaka's fast path.
    #[test]
    fn several_periods_take_the_highest_bandwidth_of_the_matched_streams() {
        let period = |id: &str, start: u32, hi: u32, lo: u32, audio: u32| {
            format!(
                r#"<Period id="{id}" start="PT{start}S" duration="PT4S">
  <AdaptationSet mimeType="video/mp4" codecs="avc1.64001f">{TPL}
   <Representation id="hi" bandwidth="{hi}" width="1280" height="720"/>
   <Representation id="lo" bandwidth="{lo}" width="640" height="360"/></AdaptationSet>
  <AdaptationSet mimeType="audio/mp4" codecs="mp4a.40.2" lang="en">{TPL}
   <Representation id="a" bandwidth="{audio}"/></AdaptationSet></Period>"#
            )
        };
        let mpd = |periods: &str| {
            let xml = format!(
                r#"<?xml version="1.0"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT8S"
     profiles="urn:mpeg:dash:profile:isoff-live:2011" minBufferTime="PT2S">{periods}</MPD>"#
            );
            parse(xml.as_bytes(), &url::Url::parse(SWARM).unwrap(), 0.0).unwrap()
        };
        let two = mpd(&(period("a", 0, 1_000_000, 500_000, 128_000)
            + &period("b", 4, 1_200_000, 480_000, 96_000)));
        let bitrates: Vec<u64> = shaka_streams_in(&two, 0)
            .iter()
            .map(|s| s.props.bitrate)
            .collect();
        // hi: max(1.0, 1.2) M + audio max(128, 96) k; lo: max(500, 480) k + 128 k; audio 0.
        assert_eq!(bitrates, [1_328_000, 628_000, 0]);
        let one = mpd(&period("a", 0, 1_000_000, 500_000, 128_000));
        assert_eq!(
            props(&shaka_streams_in(&one, 0)),
            props(&shaka_streams(&one.periods[0]))
        );
    }

    fn video_set() -> String {
        format!(
            r#"<AdaptationSet id="0" contentType="video" frameRate="30/1" mimeType="video/mp4">
  <Representation id="0" codecs="avc1.64001e" bandwidth="800000" width="640" height="360">{TPL}</Representation>
  <Representation id="1" codecs="avc1.64001e" bandwidth="300000" width="320" height="180">{TPL}</Representation>
 </AdaptationSet>"#
        )
    }

    fn audio_set(id: &str, lang: &str, label: &str, rep: &str, bw: u32) -> String {
        format!(
            r#"<AdaptationSet id="{id}" contentType="audio" lang="{lang}" mimeType="audio/mp4">{label}
  <Representation id="{rep}" codecs="mp4a.40.2" bandwidth="{bw}" audioSamplingRate="48000">
   <AudioChannelConfiguration schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011" value="2"/>{TPL}</Representation>
 </AdaptationSet>"#
        )
    }

    fn props(s: &[ShakaStream]) -> Vec<(StreamType, String, usize)> {
        s.iter()
            .map(|s| {
                (
                    s.stream_type,
                    normalized_stream_properties(&s.props),
                    s.position,
                )
            })
            .collect()
    }

    #[test]
    fn two_videos_one_audio() {
        let p = period(&format!(
            "{}{}",
            video_set(),
            audio_set("1", "eng", "", "2", 128_000)
        ));
        let s = shaka_streams(&p);
        assert_eq!(
            props(&s),
            vec![
                // bitrate = video + first audio (Shaka's first variant with that video)
                (
                    StreamType::Main,
                    "928000-avc1.64001e-640-360----30-".into(),
                    0
                ),
                (
                    StreamType::Main,
                    "428000-avc1.64001e-320-180----30-".into(),
                    1
                ),
                // name = label ?? originalId (Representation@id)
                (StreamType::Secondary, "0-mp4a.40.2---en-2-2--".into(), 0),
            ]
        );
        assert_eq!(
            s.iter()
                .map(|s| (s.adaptation_set, s.representation))
                .collect::<Vec<_>>(),
            vec![(0, 0), (0, 1), (1, 0)]
        );
        // Expected hashes from /work/shared/reference/pml-ids-reference.py.
        let hashes = |compat| {
            s.iter()
                .map(|s| stream_swarm(compat, SWARM, s.stream_type, &s.props, s.position).info_hash)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            hashes(Compat::Pml23),
            [
                "6eJ8kIz7Obl/iCUGvD5N",
                "2amWlFsBDVW2+WFocHoE",
                "Bib/cZPnSxA94G62nV47"
            ]
        );
        assert_eq!(
            hashes(Compat::Pml22),
            [
                "qXliozSi0SKg2piAvd0x",
                "cJWIv5u+WBxgDxhR/7n8",
                "b+gdrKsZJ/Ag9VLTRAFA"
            ]
        );
    }

    #[test]
    fn audio_label_language_and_first_audio_bandwidth() {
        let p = period(&format!(
            "{}{}{}",
            audio_set("1", "ger", "<Label>Deutsch </Label>", "de", 96_000),
            video_set(),
            audio_set("2", "jpn", "", "ja", 64_000),
        ));
        assert_eq!(
            props(&shaka_streams(&p)),
            vec![
                (
                    StreamType::Main,
                    "896000-avc1.64001e-640-360----30-".into(),
                    0
                ),
                (
                    StreamType::Main,
                    "396000-avc1.64001e-320-180----30-".into(),
                    1
                ),
                (
                    StreamType::Secondary,
                    "0-mp4a.40.2---de-2-deutsch--".into(),
                    0
                ),
                (StreamType::Secondary, "0-mp4a.40.2---ja-2-ja--".into(), 1),
            ]
        );
    }

    #[test]
    fn audio_only_is_main_with_bitrate_only() {
        let p = period(&format!(
            "{}{}",
            audio_set("1", "eng", "", "2", 128_000),
            audio_set("2", "fre", "", "3", 64_000)
        ));
        assert_eq!(
            props(&shaka_streams(&p)),
            vec![
                (StreamType::Main, "128000--------".into(), 0),
                (StreamType::Main, "64000--------".into(), 1),
            ]
        );
    }

    #[test]
    fn no_audio_and_text_ignored() {
        let text = format!(
            r#"<AdaptationSet id="9" contentType="text" mimeType="application/mp4" codecs="stpp" lang="en">
  <Representation id="t" bandwidth="1000">{TPL}</Representation></AdaptationSet>"#
        );
        let p = period(&format!("{text}{}", video_set()));
        assert_eq!(
            props(&shaka_streams(&p)),
            vec![
                (
                    StreamType::Main,
                    "800000-avc1.64001e-640-360----30-".into(),
                    0
                ),
                (
                    StreamType::Main,
                    "300000-avc1.64001e-320-180----30-".into(),
                    1
                ),
            ]
        );
    }

    #[test]
    fn duplicates_collapse_like_a_js_map() {
        // Same generateVideoKey_ fields (height is not one): the later Representation takes
        // the earlier one's place.
        let p = period(&format!(
            r#"<AdaptationSet id="0" contentType="video" mimeType="video/mp4" codecs="avc1.4d401e">
  <Representation id="a" bandwidth="500000" width="640" height="360">{TPL}</Representation>
  <Representation id="b" bandwidth="200000" width="320" height="180">{TPL}</Representation>
  <Representation id="c" bandwidth="500000" width="640" height="480">{TPL}</Representation>
 </AdaptationSet>"#
        ));
        let s = shaka_streams(&p);
        assert_eq!(
            s.iter()
                .map(|s| (s.representation, s.position))
                .collect::<Vec<_>>(),
            vec![(2, 0), (1, 1)]
        );
        assert_eq!(
            normalized_stream_properties(&s[0].props),
            "500000-avc1.4d401e-640-480-----"
        );
    }

    #[test]
    fn zero_bandwidth_video_hashes_bitrate_only_and_audio_codecs_stripped() {
        let p = period(&format!(
            r#"<AdaptationSet id="0" contentType="video" mimeType="video/mp4">
  <Representation id="m" codecs="avc1.64001f, MP4A.40.2" bandwidth="0" width="640" height="360">{TPL}</Representation>
  <Representation id="n" codecs="avc1.64001f, MP4A.40.2" bandwidth="1" width="640" height="360">{TPL}</Representation>
 </AdaptationSet>"#
        ));
        assert_eq!(
            props(&shaka_streams(&p)),
            vec![
                (StreamType::Main, "0--------".into(), 0),
                (StreamType::Main, "1-avc1.64001f-640-360-----".into(), 1),
            ]
        );
    }

    #[test]
    fn shaka_language_normalisation() {
        assert_eq!(shaka_normalize_language("eng"), "en");
        assert_eq!(shaka_normalize_language("GER"), "de");
        assert_eq!(shaka_normalize_language("en-us"), "en-US");
        assert_eq!(shaka_normalize_language("por-br-x-foo"), "pt-BR-x-foo");
        assert_eq!(shaka_normalize_language("und"), "und");
    }
    /// ffmpeg-made MPD (German labelled audio AdaptationSet first, then 2 videos, then English
    /// audio), loaded from `http://127.0.0.1:8080/dash/out2a.mpd?tok=abc` by the real
    /// p2p-media-loader-shaka 2.2.2 + core 2.2.2 + shaka-player 4.16.9 in headless Chromium:
    /// the info-hashes are the ones PML logged ("create new client; stream: main-0; hash: …"),
    /// the 2.3 indices what HEAD's `processStreams` logic + core 2.3.1 `generateStreamShortId`
    /// gave on that real Shaka manifest.
    #[test]
    fn matches_real_shaka_and_pml() {
        const MPD: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
 xmlns="urn:mpeg:dash:schema:mpd:2011"
 xmlns:xlink="http://www.w3.org/1999/xlink"
 xsi:schemaLocation="urn:mpeg:DASH:schema:MPD:2011 http://standards.iso.org/ittf/PubliclyAvailableStandards/MPEG-DASH_schema_files/DASH-MPD.xsd"
 profiles="urn:mpeg:dash:profile:isoff-live:2011"
 type="static"
 mediaPresentationDuration="PT20.0S"
 maxSegmentDuration="PT2.0S"
 minBufferTime="PT4.0S">
 <Period id="0" start="PT0.0S">
  <AdaptationSet id="2" contentType="audio" startWithSAP="1" segmentAlignment="true" bitstreamSwitching="true" lang="ger">
   <Label>Deutsch</Label>
   <Representation id="3" mimeType="audio/mp4" codecs="mp4a.40.2" bandwidth="96000" audioSamplingRate="48000">
    <AudioChannelConfiguration schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011" value="2" />
    <SegmentTemplate timescale="1000000" duration="2000000" initialization="init-stream$RepresentationID$.m4s" media="chunk-stream$RepresentationID$-$Number%05d$.m4s" startNumber="1">
    </SegmentTemplate>
   </Representation>
  </AdaptationSet>
  <AdaptationSet id="0" contentType="video" startWithSAP="1" segmentAlignment="true" bitstreamSwitching="true" frameRate="30/1" maxWidth="640" maxHeight="360" par="16:9">
   <Representation id="0" mimeType="video/mp4" codecs="avc1.64001e" bandwidth="800000" width="640" height="360" sar="1:1">
    <SegmentTemplate timescale="1000000" duration="2000000" initialization="init-stream$RepresentationID$.m4s" media="chunk-stream$RepresentationID$-$Number%05d$.m4s" startNumber="1">
    </SegmentTemplate>
   </Representation>
   <Representation id="1" mimeType="video/mp4" codecs="avc1.64000d" bandwidth="300000" width="320" height="180" sar="1:1">
    <SegmentTemplate timescale="1000000" duration="2000000" initialization="init-stream$RepresentationID$.m4s" media="chunk-stream$RepresentationID$-$Number%05d$.m4s" startNumber="1">
    </SegmentTemplate>
   </Representation>
  </AdaptationSet>
  <AdaptationSet id="1" contentType="audio" startWithSAP="1" segmentAlignment="true" bitstreamSwitching="true" lang="eng">
   <Representation id="2" mimeType="audio/mp4" codecs="mp4a.40.2" bandwidth="128000" audioSamplingRate="48000">
    <AudioChannelConfiguration schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011" value="2" />
    <SegmentTemplate timescale="1000000" duration="2000000" initialization="init-stream$RepresentationID$.m4s" media="chunk-stream$RepresentationID$-$Number%05d$.m4s" startNumber="1">
    </SegmentTemplate>
   </Representation>
  </AdaptationSet>
 </Period>
</MPD>"#;
        let u = "http://127.0.0.1:8080/dash/out2a.mpd?tok=abc";
        let mpd = parse(MPD.as_bytes(), &url::Url::parse(u).unwrap(), 0.0).unwrap();
        let swarm = crate::p2p::identity::swarm_id(u, None);
        let got: Vec<(String, String)> = shaka_streams(&mpd.periods[0])
            .iter()
            .map(|s| {
                (
                    stream_swarm(Compat::Pml22, &swarm, s.stream_type, &s.props, s.position)
                        .info_hash,
                    crate::p2p::identity::stream_short_id(&s.props),
                )
            })
            .collect();
        let want = [
            ("pYJEgJmhW46eax7uJHLM", "1hTSJffBGHGOhkHw64ZEVbipO9I="), // main-0
            ("8Z4yoxtf5GOmSj8aOlxy", "9HRyzGmoQyffneBqxzrbnNVjSDI="), // main-1
            ("DeFlW7+BhcQmyLrsMNyJ", "w44Qxy5omHOBGG7MogP5sTukQq4="), // secondary-0 (ger)
            ("NJNdQWmvvNJigv0jJ5yv", "b6siwWlD5+az/IiQKcpbItV68Zg="), // secondary-1 (eng)
        ];
        assert_eq!(
            got,
            want.map(|(a, b)| (a.to_owned(), b.to_owned())).to_vec()
        );
    }
}
