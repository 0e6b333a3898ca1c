//! Properties shared by the adaptive-streaming sources: names and meanings follow
//! adaptivedemux2 (ABR, buffering) and souphttpsrc (HTTP), which users already know.

use std::time::Duration;

use gst::glib;
use gst::prelude::*;

use crate::abr::AbrSettings;
use crate::engine::EngineConfig;
use crate::net::http::HttpConfig;

#[derive(Debug, Clone)]
pub struct Settings {
    pub location: Option<String>,
    /// kbit/s; 0 = measure.
    pub connection_speed: u32,
    pub bandwidth_target_ratio: f64,
    pub min_bitrate: u32,
    pub max_bitrate: u32,
    pub start_bitrate: u32,
    pub max_buffering_time: gst::ClockTime,
    pub user_agent: String,
    pub extra_headers: Option<gst::Structure>,
    pub cookies: Vec<String>,
    pub proxy: Option<String>,
    /// Seconds.
    pub timeout: u32,
    pub retries: i32,
}

impl Default for Settings {
    fn default() -> Self {
        let http = HttpConfig::default();
        Settings {
            location: None,
            connection_speed: 0,
            bandwidth_target_ratio: 0.8,
            min_bitrate: 0,
            max_bitrate: 0,
            start_bitrate: 0,
            max_buffering_time: gst::ClockTime::from_seconds(30),
            user_agent: http.user_agent,
            extra_headers: None,
            cookies: Vec::new(),
            proxy: None,
            timeout: http.timeout.as_secs() as u32,
            retries: http.retries,
        }
    }
}

pub fn properties() -> Vec<glib::ParamSpec> {
    let d = Settings::default();
    vec![
        glib::ParamSpecString::builder("location")
            .nick("Location")
            .blurb("URL of the manifest (plain http:// or https://)")
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("connection-speed")
            .nick("Connection Speed")
            .blurb("Network connection speed to use in kbit/s (0 = measure it)")
            .maximum(u32::MAX / 1000)
            .default_value(d.connection_speed)
            .mutable_playing()
            .build(),
        glib::ParamSpecDouble::builder("bandwidth-target-ratio")
            .nick("Ratio of target bandwidth / available bandwidth")
            .blurb("Limit of the available bitrate to use when switching to alternates")
            .minimum(0.0)
            .maximum(1.0)
            .default_value(d.bandwidth_target_ratio)
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("min-bitrate")
            .nick("Minimum Bitrate")
            .blurb("Minimum bitrate to use when switching to alternates (bit/s)")
            .default_value(d.min_bitrate)
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("max-bitrate")
            .nick("Maximum Bitrate")
            .blurb("Maximum bitrate to use when switching to alternates (bit/s, 0 = no limit)")
            .default_value(d.max_bitrate)
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("start-bitrate")
            .nick("Starting Bitrate")
            .blurb("Initial bitrate estimate used to pick the first variant (bit/s, 0 = first variant)")
            .default_value(d.start_bitrate)
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("current-bandwidth")
            .nick("Current download bandwidth")
            .blurb("Measured download bandwidth in bit/s (HTTP and P2P)")
            .read_only()
            .build(),
        glib::ParamSpecUInt64::builder("max-buffering-time")
            .nick("Maximum buffering time")
            .blurb("Maximum media time buffered ahead per output stream (nanoseconds)")
            .minimum(gst::ClockTime::SECOND.nseconds())
            .default_value(d.max_buffering_time.nseconds())
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("user-agent")
            .nick("User-Agent")
            .blurb("Value of the User-Agent HTTP request header")
            .default_value(Some(d.user_agent.as_str()))
            .mutable_ready()
            .build(),
        glib::ParamSpecBoxed::builder::<gst::Structure>("extra-headers")
            .nick("Extra Headers")
            .blurb("Extra headers to append to the HTTP request: every field becomes a header")
            .mutable_ready()
            .build(),
        glib::ParamSpecBoxed::builder::<Vec<String>>("cookies")
            .nick("Cookies")
            .blurb("HTTP request cookies, each as name=value")
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("proxy")
            .nick("Proxy")
            .blurb("HTTP proxy server URI (default: from the http_proxy/https_proxy environment)")
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("timeout")
            .nick("Timeout")
            .blurb("Seconds without data before an HTTP attempt fails")
            .minimum(1)
            .maximum(3600)
            .default_value(d.timeout)
            .mutable_ready()
            .build(),
        glib::ParamSpecInt::builder("retries")
            .nick("Retries")
            .blurb("Retries of a failed HTTP request before giving up (-1 = unlimited)")
            .minimum(-1)
            .default_value(d.retries)
            .mutable_ready()
            .build(),
        glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
            .nick("Statistics")
            .blurb("Transfer statistics: http-bytes, http-segments, p2p-bytes, p2p-upload-bytes, \
                    p2p-segments, peers, variant-bitrate, bandwidth, buffered-time")
            .read_only()
            .build(),
    ]
}

impl Settings {
    /// Applies a write to one of `properties()`; returns false for names it does not own.
    pub fn set(&mut self, value: &glib::Value, pspec: &glib::ParamSpec) -> bool {
        match pspec.name() {
            "location" => self.location = value.get().expect("type checked upstream"),
            "connection-speed" => {
                self.connection_speed = value.get().expect("type checked upstream")
            }
            "bandwidth-target-ratio" => {
                self.bandwidth_target_ratio = value.get().expect("type checked upstream")
            }
            "min-bitrate" => self.min_bitrate = value.get().expect("type checked upstream"),
            "max-bitrate" => self.max_bitrate = value.get().expect("type checked upstream"),
            "start-bitrate" => self.start_bitrate = value.get().expect("type checked upstream"),
            "max-buffering-time" => {
                self.max_buffering_time =
                    gst::ClockTime::from_nseconds(value.get().expect("type checked upstream"))
            }
            "user-agent" => {
                self.user_agent = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .unwrap_or_default()
            }
            "extra-headers" => self.extra_headers = value.get().expect("type checked upstream"),
            "cookies" => self.cookies = value.get::<Vec<String>>().unwrap_or_default(),
            "proxy" => self.proxy = value.get().expect("type checked upstream"),
            "timeout" => self.timeout = value.get().expect("type checked upstream"),
            "retries" => self.retries = value.get().expect("type checked upstream"),
            _ => return false,
        }
        true
    }

    /// Reads one of the writable `properties()`.
    pub fn get(&self, pspec: &glib::ParamSpec) -> Option<glib::Value> {
        Some(match pspec.name() {
            "location" => self.location.to_value(),
            "connection-speed" => self.connection_speed.to_value(),
            "bandwidth-target-ratio" => self.bandwidth_target_ratio.to_value(),
            "min-bitrate" => self.min_bitrate.to_value(),
            "max-bitrate" => self.max_bitrate.to_value(),
            "start-bitrate" => self.start_bitrate.to_value(),
            "max-buffering-time" => self.max_buffering_time.nseconds().to_value(),
            "user-agent" => self.user_agent.to_value(),
            "extra-headers" => self.extra_headers.to_value(),
            "cookies" => self.cookies.to_value(),
            "proxy" => self.proxy.to_value(),
            "timeout" => self.timeout.to_value(),
            "retries" => self.retries.to_value(),
            _ => return None,
        })
    }

    pub fn abr(&self) -> AbrSettings {
        AbrSettings {
            connection_speed_bps: self.connection_speed as u64 * 1000,
            bandwidth_target_ratio: self.bandwidth_target_ratio,
            min_bitrate: self.min_bitrate as u64,
            max_bitrate: self.max_bitrate as u64,
            start_bitrate: self.start_bitrate as u64,
        }
    }

    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            http: HttpConfig {
                user_agent: self.user_agent.clone(),
                extra_headers: self
                    .extra_headers
                    .as_ref()
                    .map(|s| header_pairs(s))
                    .unwrap_or_default(),
                cookies: self.cookies.clone(),
                proxy: self.proxy.clone(),
                timeout: Duration::from_secs(self.timeout.max(1) as u64),
                retries: self.retries,
            },
            abr: self.abr(),
            max_buffering_time: Duration::from_nanos(self.max_buffering_time.nseconds()),
        }
    }
}

/// souphttpsrc semantics: every field is a header; arrays give the header several times.
fn header_pairs(s: &gst::StructureRef) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, value) in s.iter() {
        let values: Vec<glib::SendValue> = if let Ok(a) = value.get::<gst::Array>() {
            a.iter().cloned().collect()
        } else if let Ok(l) = value.get::<gst::List>() {
            l.iter().cloned().collect()
        } else {
            vec![value.clone()]
        };
        for v in values {
            let text = match v.get::<String>() {
                Ok(s) => s,
                Err(_) => match v.transform::<String>() {
                    Ok(t) => t.get::<String>().unwrap_or_default(),
                    Err(_) => continue,
                },
            };
            out.push((name.to_string(), text));
        }
    }
    out
}
