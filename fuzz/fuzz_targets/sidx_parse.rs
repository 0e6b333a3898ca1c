//! `sidx` box parser (`manifest::sidx`) and `dash::segments_from_sidx`. The first 12 input
//! bytes choose the `SidxContext` (timescale, presentationTimeOffset, Period bounds, external
//! index), the rest is the index data. Checks, besides "no panic": the box lies inside the
//! data, references never outnumber what the bytes can describe (12 bytes each), memory stays
//! proportional to the input, and the segments are sorted, within the Period, with byte ranges
//! that do not overflow.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use std::time::Duration;

use gstp2pmedia::manifest::dash::{self, SidxContext};
use gstp2pmedia::manifest::sidx;
use gstp2pmedia::media::Resource;
use libfuzzer_sys::fuzz_target;

fn ctx(h: &[u8; 12]) -> SidxContext {
    let media_url = url::Url::parse("https://origin.test/dash/video.mp4").unwrap();
    let timescale = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    let pto = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
    let period_start = Duration::from_millis(u64::from(u16::from_be_bytes([h[8], h[9]])) * 100);
    let period_end = (h[11] & 1 == 1).then(|| period_start + Duration::from_secs(u64::from(h[10])));
    SidxContext {
        index: Resource {
            url: media_url.clone(),
            range: None,
        },
        media_url,
        index_is_external: h[11] & 2 == 2,
        init: None,
        period_index: 0,
        period_start,
        period_start_seconds: period_start.as_secs_f64(),
        period_end,
        timescale: u64::from(timescale),
        presentation_time_offset: u64::from(pto),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((h, bytes)) = data.split_first_chunk::<12>() else {
        return;
    };
    let (r, peak) = common::peak(|| sidx::parse(bytes));
    assert!(
        peak <= 4096 + 4 * bytes.len(),
        "sidx of {} bytes held {peak}",
        bytes.len()
    );
    if let Ok(s) = r {
        assert!(s
            .box_offset
            .checked_add(s.box_size)
            .is_some_and(|e| e <= bytes.len() as u64));
        assert!(s.references.len() * 12 <= bytes.len());
    }
    let ctx = ctx(h);
    let (r, peak) = common::peak(|| dash::segments_from_sidx(bytes, &ctx));
    assert!(
        peak <= 64 * 1024 + 128 * bytes.len(),
        "{} sidx bytes → {peak} bytes",
        bytes.len()
    );
    let Ok(segs) = r else { return };
    assert!(segs.len() * 12 <= bytes.len());
    for w in segs.windows(2) {
        assert!(w[0].start <= w[1].start, "sidx segments not sorted");
    }
    for s in &segs {
        if let Some(end) = ctx.period_end {
            assert!(
                s.start < end && s.end() <= end,
                "segment beyond the Period end"
            );
        }
        if let Some(r) = s.resource.range {
            assert!(r.offset.checked_add(r.length).is_some());
        }
    }
});
