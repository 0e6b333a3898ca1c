//! Writes the plugin description `docs/plugins/gst_plugins_cache.json` from the BUILT plugin, in
//! the form hotdoc's GStreamer extension keeps (`gst_plugins_cache.json`, as gst-plugins-rs
//! commits it): per plugin its description, filename, license, package, source and url; per
//! element its author, description, hierarchy, interfaces, klass, long-name, pad templates
//! (caps, direction, presence), properties (type, flags, mutability, range, default), rank
//! and signals (arguments, return type, when); the shared base class `GstP2pMediaSrc` (which
//! owns the properties and signals both elements have) and the enums under `other-types`.
//!
//!   cargo build --example plugin_cache
//!   target/debug/examples/plugin_cache [PATH/libgstp2pmedia.so] > docs/plugins/gst_plugins_cache.json
//!
//! `scripts/plugin-cache.sh` runs it (`--check`: compares with the committed file). The
//! output is deterministic: sorted keys, no paths, no build-dependent versions; defaults are
//! the values a new element reports (what `gst-inspect-1.0` prints).

use std::collections::BTreeSet;
use std::path::PathBuf;

use gst::glib;
use gst::glib::translate::IntoGlib;
use gst::prelude::*;
use serde_json::{json, Map, Value};

fn main() {
    let so = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // target/<profile>/examples/plugin_cache -> target/<profile>/libgstp2pmedia.so
            let exe = std::env::current_exe().unwrap();
            exe.parent()
                .unwrap()
                .parent()
                .unwrap()
                .join("libgstp2pmedia.so")
        });
    // Only this file: no system plugins, no GST_PLUGIN_PATH, a throw-away registry. The
    // process is single-threaded until gst::init.
    let registry = std::env::temp_dir().join(format!("p2pmedia-cache-{}.bin", std::process::id()));
    std::env::set_var("GST_PLUGIN_SYSTEM_PATH_1_0", "");
    std::env::set_var("GST_PLUGIN_SYSTEM_PATH", "");
    std::env::set_var("GST_PLUGIN_PATH_1_0", "");
    std::env::set_var("GST_PLUGIN_PATH", "");
    std::env::set_var("GST_REGISTRY_1_0", &registry);
    std::env::set_var("GST_REGISTRY", &registry);
    gst::init().expect("gst::init");
    let plugin =
        gst::Plugin::load_file(&so).unwrap_or_else(|e| panic!("cannot load {}: {e}", so.display()));
    let _ = std::fs::remove_file(&registry);

    let mut other_types = Map::new();
    let mut elements = Map::new();
    let mut features: Vec<gst::ElementFactory> = gst::Registry::get()
        .features_by_plugin(plugin.plugin_name().as_str())
        .into_iter()
        .filter_map(|f| f.downcast::<gst::ElementFactory>().ok())
        .collect();
    features.sort_by_key(|f| f.name().to_string());
    let instances: Vec<gst::Element> = features
        .iter()
        .map(|f| f.create().build().expect("create element"))
        .collect();
    for (factory, element) in features.iter().zip(&instances) {
        elements.insert(
            factory.name().to_string(),
            element_json(factory, element, &instances, &mut other_types),
        );
    }

    let filename = so
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .trim_start_matches("lib")
        .to_string();
    let mut p = Map::new();
    p.insert("description".into(), json!(plugin.description().as_str()));
    p.insert("elements".into(), Value::Object(elements));
    p.insert("filename".into(), json!(filename));
    p.insert("license".into(), json!(plugin.license().as_str()));
    p.insert("other-types".into(), Value::Object(other_types));
    p.insert("package".into(), json!(plugin.package().as_str()));
    p.insert("source".into(), json!(plugin.source().as_str()));
    p.insert("tracers".into(), json!({}));
    p.insert("url".into(), json!(plugin.origin().as_str()));
    let mut root = Map::new();
    root.insert(plugin.plugin_name().to_string(), Value::Object(p));

    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    serde::Serialize::serialize(&Value::Object(root), &mut ser).unwrap();
    out.push(b'\n');
    use std::io::Write;
    std::io::stdout().write_all(&out).unwrap();
}

/// The types from `t` up to (not including) GstElement that this plugin defines.
fn own_types(t: glib::Type) -> Vec<glib::Type> {
    let mut v = Vec::new();
    let mut t = Some(t);
    while let Some(ty) = t {
        if ty == gst::Element::static_type() {
            break;
        }
        v.push(ty);
        t = ty.parent();
    }
    v
}

fn hierarchy(t: glib::Type) -> Value {
    let mut v = Vec::new();
    let mut t = Some(t);
    while let Some(ty) = t {
        v.push(json!(ty.name()));
        t = ty.parent();
    }
    Value::Array(v)
}

fn element_json(
    factory: &gst::ElementFactory,
    element: &gst::Element,
    instances: &[gst::Element],
    other_types: &mut Map<String, Value>,
) -> Value {
    let t = element.type_();
    let mut e = Map::new();
    e.insert(
        "author".into(),
        json!(factory
            .metadata(gst::ELEMENT_METADATA_AUTHOR)
            .unwrap_or_default()),
    );
    e.insert(
        "description".into(),
        json!(factory
            .metadata(gst::ELEMENT_METADATA_DESCRIPTION)
            .unwrap_or_default()),
    );
    e.insert("hierarchy".into(), hierarchy(t));
    let interfaces: BTreeSet<String> = t
        .interfaces()
        .iter()
        .map(|i| i.name().to_string())
        .collect();
    e.insert("interfaces".into(), json!(interfaces));
    e.insert(
        "klass".into(),
        json!(factory
            .metadata(gst::ELEMENT_METADATA_KLASS)
            .unwrap_or_default()),
    );
    e.insert(
        "long-name".into(),
        json!(factory
            .metadata(gst::ELEMENT_METADATA_LONGNAME)
            .unwrap_or_default()),
    );
    let mut pads = Map::new();
    for tmpl in factory.static_pad_templates() {
        let caps = tmpl.caps();
        let caps_text = if caps.is_any() {
            "ANY".to_string()
        } else {
            caps.iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(";\n")
        };
        pads.insert(
            tmpl.name_template().to_string(),
            json!({
                "caps": caps_text,
                "direction": match tmpl.direction() {
                    gst::PadDirection::Src => "src",
                    gst::PadDirection::Sink => "sink",
                    _ => "unknown",
                },
                "presence": match tmpl.presence() {
                    gst::PadPresence::Always => "always",
                    gst::PadPresence::Sometimes => "sometimes",
                    gst::PadPresence::Request => "request",
                },
            }),
        );
    }
    e.insert("pad-templates".into(), Value::Object(pads));
    let props = properties(t, element, other_types);
    if !props.is_empty() {
        e.insert("properties".into(), Value::Object(props));
    }
    e.insert(
        "rank".into(),
        json!(rank_name(factory.rank()).unwrap_or_else(|| factory.rank().into_glib().to_string())),
    );
    let sigs = signals(t);
    if !sigs.is_empty() {
        e.insert("signals".into(), Value::Object(sigs));
    }
    // Parent types of ours (the shared base class) with what they own.
    for parent in own_types(t).into_iter().skip(1) {
        if other_types.contains_key(parent.name()) {
            continue;
        }
        let instance = instances
            .iter()
            .find(|i| i.type_().is_a(parent))
            .unwrap_or(element);
        let mut o = Map::new();
        o.insert("hierarchy".into(), hierarchy(parent));
        o.insert("kind".into(), json!("object"));
        let props = properties(parent, instance, other_types);
        if !props.is_empty() {
            o.insert("properties".into(), Value::Object(props));
        }
        let sigs = signals(parent);
        if !sigs.is_empty() {
            o.insert("signals".into(), Value::Object(sigs));
        }
        other_types.insert(parent.name().to_string(), Value::Object(o));
    }
    Value::Object(e)
}

fn rank_name(rank: gst::Rank) -> Option<String> {
    Some(
        match rank {
            gst::Rank::NONE => "none",
            gst::Rank::MARGINAL => "marginal",
            gst::Rank::SECONDARY => "secondary",
            gst::Rank::PRIMARY => "primary",
            _ => return None,
        }
        .to_string(),
    )
}

fn serialize(v: &glib::Value) -> String {
    if let Ok(s) = v.get::<Option<String>>() {
        return s.unwrap_or_else(|| "NULL".into());
    }
    if let Ok(b) = v.get::<bool>() {
        return b.to_string();
    }
    if let Ok(d) = v.get::<f64>() {
        // Shortest form ("0.8", "1"); exponent form for the extremes.
        return if d.abs() >= 1e16 {
            format!("{d:e}")
        } else {
            d.to_string()
        };
    }
    if let Ok(s) = v.get::<Option<gst::Structure>>() {
        return s.map_or_else(|| "NULL".into(), |s| s.to_string());
    }
    v.serialize()
        .map(|s| s.to_string())
        .unwrap_or_else(|_| "NULL".into())
}

/// Properties `owner` defines itself (not inherited ones), as hotdoc lists them.
fn properties(
    owner: glib::Type,
    instance: &gst::Element,
    other_types: &mut Map<String, Value>,
) -> Map<String, Value> {
    let mut out = Map::new();
    for pspec in instance.list_properties().iter() {
        if pspec.owner_type() != owner {
            continue;
        }
        let f = pspec.flags();
        let mut p = Map::new();
        p.insert("blurb".into(), json!(pspec.blurb().unwrap_or_default()));
        p.insert(
            "conditionally-available".into(),
            json!(f.contains(glib::ParamFlags::from_bits_truncate(
                gst::ffi::GST_PARAM_CONDITIONALLY_AVAILABLE as u32
            ))),
        );
        p.insert(
            "construct".into(),
            json!(f.contains(glib::ParamFlags::CONSTRUCT)),
        );
        p.insert(
            "construct-only".into(),
            json!(f.contains(glib::ParamFlags::CONSTRUCT_ONLY)),
        );
        p.insert(
            "controllable".into(),
            json!(f.contains(glib::ParamFlags::from_bits_truncate(
                gst::ffi::GST_PARAM_CONTROLLABLE as u32
            ))),
        );
        if f.contains(glib::ParamFlags::READABLE) {
            let v = instance.property_value(pspec.name());
            let default = if let Ok(ev) = v.get::<&glib::EnumValue>() {
                format!("{} ({})", ev.nick(), ev.value())
            } else {
                serialize(&v)
            };
            p.insert("default".into(), json!(default));
        }
        let flag = |bits| f.contains(glib::ParamFlags::from_bits_truncate(bits));
        let mutable = if flag(gst::ffi::GST_PARAM_MUTABLE_PLAYING as u32) {
            "playing"
        } else if flag(gst::ffi::GST_PARAM_MUTABLE_PAUSED as u32) {
            "paused"
        } else if flag(gst::ffi::GST_PARAM_MUTABLE_READY as u32) {
            "ready"
        } else {
            "null"
        };
        p.insert("mutable".into(), json!(mutable));
        p.insert(
            "readable".into(),
            json!(f.contains(glib::ParamFlags::READABLE)),
        );
        macro_rules! range {
            ($spec:ty) => {
                if let Some(s) = pspec.downcast_ref::<$spec>() {
                    p.insert("min".into(), json!(serialize(&s.minimum().to_value())));
                    p.insert("max".into(), json!(serialize(&s.maximum().to_value())));
                }
            };
        }
        range!(glib::ParamSpecUInt);
        range!(glib::ParamSpecInt);
        range!(glib::ParamSpecUInt64);
        range!(glib::ParamSpecInt64);
        range!(glib::ParamSpecDouble);
        if let Some(e) = pspec.downcast_ref::<glib::ParamSpecEnum>() {
            let class = e.enum_class();
            let values: Vec<Value> = class
                .values()
                .iter()
                .map(|v| {
                    json!({
                        "desc": v.name(),
                        "name": v.nick(),
                        "value": v.value().to_string(),
                    })
                })
                .collect();
            other_types.insert(
                pspec.value_type().name().to_string(),
                json!({ "kind": "enum", "values": values }),
            );
        }
        p.insert("type".into(), json!(pspec.value_type().name()));
        p.insert(
            "writable".into(),
            json!(f.contains(glib::ParamFlags::WRITABLE)),
        );
        out.insert(pspec.name().to_string(), Value::Object(p));
    }
    out
}

/// Signals `t` defines itself.
fn signals(t: glib::Type) -> Map<String, Value> {
    let mut out = Map::new();
    let mut n = 0u32;
    let ids = unsafe {
        let p = glib::gobject_ffi::g_signal_list_ids(t.into_glib(), &mut n);
        if p.is_null() || n == 0 {
            glib::ffi::g_free(p as *mut _);
            return out;
        }
        let v = std::slice::from_raw_parts(p, n as usize).to_vec();
        glib::ffi::g_free(p as *mut _);
        v
    };
    for id in ids {
        let name = unsafe {
            std::ffi::CStr::from_ptr(glib::gobject_ffi::g_signal_name(id))
                .to_string_lossy()
                .into_owned()
        };
        let Some(sid) = glib::subclass::SignalId::lookup(&name, t) else {
            continue;
        };
        let q = sid.query();
        let args: Vec<Value> = q
            .param_types()
            .iter()
            .enumerate()
            .map(|(i, st)| json!({ "name": format!("arg{i}"), "type": st.type_().name() }))
            .collect();
        let flags = q.flags();
        let mut s = Map::new();
        if flags.contains(glib::SignalFlags::ACTION) {
            s.insert("action".into(), json!(true));
        }
        s.insert("args".into(), Value::Array(args));
        s.insert("return-type".into(), json!(q.return_type().type_().name()));
        let when = if flags.contains(glib::SignalFlags::RUN_FIRST) {
            "first"
        } else if flags.contains(glib::SignalFlags::RUN_CLEANUP) {
            "cleanup"
        } else {
            "last"
        };
        s.insert("when".into(), json!(when));
        out.insert(name, Value::Object(s));
    }
    out
}
