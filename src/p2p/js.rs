//! JavaScript semantics that PML's identifiers depend on (number printing,
//! `trim`, UTF-16 string ops). Reproduced exactly so hashed strings match.

/// JS `Number.prototype.toString()` (radix 10) for an `f64`.
pub fn number_to_string(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x == 0.0 {
        return "0".into(); // also -0, as in JS
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    // Rust's `{:e}` yields the shortest round-tripping digits, like JS.
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let k = digits.len() as i32;
    let n = exp + 1; // value = 0.digits × 10^n
    let mut out = String::new();
    if x < 0.0 {
        out.push('-');
    }
    if k <= n && n <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        out.push_str(&digits[..n as usize]);
        out.push('.');
        out.push_str(&digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-n) as usize));
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if n > 0 { '+' } else { '-' });
        out.push_str(&(n - 1).abs().to_string());
    }
    out
}

/// JS `Number(string)` for decimal, hex/octal/binary literals, `Infinity`;
/// NaN for anything else (e.g. Rust-only spellings like `inf`).
pub fn parse_js_number(s: &str) -> f64 {
    let t = trim(s);
    if t.is_empty() {
        return 0.0;
    }
    for (prefix, radix) in [
        ("0x", 16),
        ("0X", 16),
        ("0o", 8),
        ("0O", 8),
        ("0b", 2),
        ("0B", 2),
    ] {
        if let Some(rest) = t.strip_prefix(prefix) {
            if rest.is_empty() || !rest.chars().all(|c| c.is_digit(radix)) {
                return f64::NAN;
            }
            // Accumulate in f64 like JS does for long literals.
            return rest.chars().fold(0.0, |acc, c| {
                acc * radix as f64 + c.to_digit(radix).unwrap_or(0) as f64
            });
        }
    }
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    if unsigned == "Infinity" {
        return if t.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
    }
    if !is_decimal_literal(unsigned) {
        return f64::NAN;
    }
    t.parse().unwrap_or(f64::NAN)
}

fn is_decimal_literal(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || !digits(frac) || (int.is_empty() && frac.is_empty()) {
        return false;
    }
    match exponent {
        None => true,
        Some(e) => {
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            !e.is_empty() && digits(e)
        }
    }
}

/// JS `String.prototype.trim` whitespace (differs from Rust's: has U+FEFF, lacks U+0085).
fn is_js_whitespace(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{B}' | '\u{C}' | '\r' | ' ' | '\u{A0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200A}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202F}'
                | '\u{205F}'
                | '\u{3000}'
                | '\u{FEFF}'
    )
}

/// JS `trim()`.
pub fn trim(s: &str) -> &str {
    s.trim_matches(is_js_whitespace)
}

/// JS `s.slice(0, n)` (UTF-16 units); a cut surrogate pair becomes U+FFFD,
/// which is what `TextEncoder` later makes of a lone surrogate.
pub fn utf16_prefix(s: &str, n: usize) -> String {
    let units: Vec<u16> = s.encode_utf16().take(n).collect();
    String::from_utf16_lossy(&units)
}

/// JS default `Array.prototype.sort` order (UTF-16 code unit order).
pub fn utf16_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// JS `s.length` (UTF-16 units).
pub fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_to_string_matches_js() {
        let cases: &[(f64, &str)] = &[
            (29.97, "29.97"),
            (30.0, "30"),
            (23.976, "23.976"),
            (0.5, "0.5"),
            (-1.5, "-1.5"),
            (1e21, "1e+21"),
            (1.5e21, "1.5e+21"),
            (123456789012345680000.0, "123456789012345680000"),
            (0.000001, "0.000001"),
            (0.0000001, "1e-7"),
            (1.2345e-7, "1.2345e-7"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1500000.0, "1500000"),
            (9007199254740993.0, "9007199254740992"),
            (-0.0, "0"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
        ];
        for (x, want) in cases {
            assert_eq!(number_to_string(*x), *want, "{x:?}");
        }
    }

    #[test]
    fn parse_js_number_cases() {
        assert_eq!(parse_js_number("29.970"), 29.97);
        assert_eq!(parse_js_number(" 30 "), 30.0);
        assert_eq!(parse_js_number(""), 0.0);
        assert_eq!(parse_js_number("0x1E"), 30.0);
        assert_eq!(parse_js_number(".5"), 0.5);
        assert_eq!(parse_js_number("5."), 5.0);
        assert_eq!(parse_js_number("-Infinity"), f64::NEG_INFINITY);
        assert!(parse_js_number("inf").is_nan());
        assert!(parse_js_number("nan").is_nan());
        assert!(parse_js_number("1_0").is_nan());
        assert!(parse_js_number("30fps").is_nan());
        assert!(parse_js_number("-0x10").is_nan());
    }

    #[test]
    fn string_helpers() {
        assert_eq!(trim("\u{FEFF} a \u{3000}"), "a");
        assert_eq!(trim("\u{85}a"), "\u{85}a");
        assert_eq!(utf16_prefix("eng", 2), "en");
        assert_eq!(utf16_prefix("😀x", 1), "\u{FFFD}");
        assert_eq!(utf16_len("😀"), 2);
        // U+FF5E sorts after U+1F600 by UTF-8 bytes but before it by UTF-16 units.
        assert_eq!(utf16_cmp("\u{FF5E}", "😀"), std::cmp::Ordering::Greater);
        assert!("\u{FF5E}" < "😀");
    }
}
