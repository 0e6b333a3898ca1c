//! Which properties hls.js + PML's hls.js integration feed into a stream's swarm identity
//! (reference §5.1): levels are `main` streams, EXT-X-MEDIA audio tracks `secondary` ones.

use super::identity::StreamProperties;
use crate::media::{MasterPlaylist, MediaType, Rendition, Variant};

/// Sample-entry codes hls.js classifies as video (`utils/codecs.ts`).
const VIDEO_CODECS: &[&str] = &[
    "avc1", "avc2", "avc3", "avc4", "avcp", "av01", "drac", "dva1", "dvav", "dvh1", "dvhe", "encv",
    "hev1", "hvc1", "mjp2", "mp4v", "mvc1", "mvc2", "mvc3", "mvc4", "resv", "rv60", "s263", "svc1",
    "svc2", "vc-1", "vp08", "vp09",
];

fn is_video_codec(codec: &str) -> bool {
    let fourcc = codec
        .trim()
        .split('.')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    VIDEO_CODECS.contains(&fourcc.as_str())
}

/// The CODECS entries of one kind, each cut at `/`, joined by `,` (hls.js videoCodec/audioCodec).
fn codecs_of(codecs: Option<&str>, video: bool) -> Option<String> {
    let list: Vec<&str> = codecs?
        .split(',')
        .map(|c| c.split('/').next().unwrap_or("").trim())
        .filter(|c| !c.is_empty() && is_video_codec(c) == video)
        .collect();
    (!list.is_empty()).then(|| list.join(","))
}

/// Properties of an hls.js level. A level without bandwidth hashes as bitrate 0 only.
pub fn level_properties(v: &Variant) -> StreamProperties {
    let bitrate = if v.bandwidth > 0 {
        v.bandwidth
    } else {
        v.average_bandwidth.unwrap_or(0)
    };
    if bitrate == 0 {
        return StreamProperties::default();
    }
    StreamProperties {
        bitrate,
        codecs: codecs_of(v.codecs.as_deref(), true),
        width: v.resolution.map(|(w, _)| w as u32),
        height: v.resolution.map(|(_, h)| h as u32),
        frame_rate: v.frame_rate,
        video_range: v.video_range.clone(),
        ..Default::default()
    }
}

/// Properties of an hls.js audio track: its codec is the audio codec of the first level in
/// its group (else of the first level).
pub fn audio_track_properties(master: &MasterPlaylist, r: &Rendition) -> StreamProperties {
    let level = master
        .variants
        .iter()
        .find(|v| v.audio_group.as_deref() == Some(r.group_id.as_str()))
        .or_else(|| master.variants.first());
    StreamProperties {
        bitrate: 0,
        codecs: level.and_then(|v| codecs_of(v.codecs.as_deref(), false)),
        language: r.language.clone(),
        channels: r.channels.clone(),
        name: Some(r.name.clone())
            .filter(|n| !n.is_empty())
            .or_else(|| r.language.clone()),
        ..Default::default()
    }
}

/// 2.2-family position of an audio track: its order among the master's audio renditions.
pub fn audio_track_position(master: &MasterPlaylist, r: &Rendition) -> usize {
    master
        .renditions
        .iter()
        .filter(|x| x.stream_type == MediaType::Audio)
        .position(|x| x == r)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::p2p::identity::{stream_swarm, Compat, StreamType};

    fn variant(bw: u64, codecs: &str) -> Variant {
        Variant {
            uri: "https://example.com/live/v.m3u8".parse().unwrap(),
            bandwidth: bw,
            average_bandwidth: None,
            codecs: Some(codecs.into()),
            resolution: Some((1280, 720)),
            frame_rate: Some(29.97),
            video_range: Some("SDR".into()),
            audio_group: Some("aud".into()),
            subtitles_group: None,
            master_index: 0,
        }
    }

    /// The reference's §1.1.1 vectors, reached from parsed playlist attributes.
    #[test]
    fn reference_vectors_from_playlist_attributes() {
        let swarm = "https://example.com/live/master.m3u8";
        let v = variant(1_500_000, "avc1.64001f,mp4a.40.2");
        let s = stream_swarm(
            Compat::Pml23,
            swarm,
            StreamType::Main,
            &level_properties(&v),
            0,
        );
        assert_eq!(s.info_hash, "J3KjvNhSbLlKe91dpkWw");

        let r = Rendition {
            stream_type: MediaType::Audio,
            group_id: "aud".into(),
            name: "English".into(),
            language: Some("en".into()),
            channels: Some("2".into()),
            default: true,
            autoselect: true,
            uri: None,
        };
        let master = MasterPlaylist {
            url: swarm.parse().unwrap(),
            variants: vec![v],
            renditions: vec![r.clone()],
        };
        let p = audio_track_properties(&master, &r);
        let s = stream_swarm(Compat::Pml23, swarm, StreamType::Secondary, &p, 0);
        assert_eq!(s.info_hash, "inmRsbVmWfbvgnlkL4BJ");

        let zero = level_properties(&variant(0, "avc1.64001f"));
        let s = stream_swarm(Compat::Pml23, swarm, StreamType::Main, &zero, 0);
        assert_eq!(s.info_hash, "RJhoUxftMVvf2gSHwVVX");
    }

    #[test]
    fn codec_classification() {
        assert_eq!(
            codecs_of(Some("avc1.64001f, mp4a.40.2"), true).as_deref(),
            Some("avc1.64001f")
        );
        assert_eq!(
            codecs_of(Some("avc1.64001f,mp4a.40.2"), false).as_deref(),
            Some("mp4a.40.2")
        );
        assert_eq!(
            codecs_of(Some("hvc1.1.6.L93.B0,ec-3"), true).as_deref(),
            Some("hvc1.1.6.L93.B0")
        );
        assert_eq!(codecs_of(Some("mp4a.40.2"), true), None);
    }
}
