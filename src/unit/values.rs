//! Value parsers for unit files: durations, sizes, signals, octal modes, shell
//! words, and did-you-mean suggestions.
//!
//! Pure string → value functions, shared with the CLI and the control protocol
//! (`tend stop --signal`, `tend status` rendering), so their error texts are
//! complete sentences without a key prefix: the caller adds `key: `.

use std::time::Duration;

/// Formatting and the signal table live in the pure core, shared with the
/// supervisor's messages.
pub use tend_core::text::{did_you_mean, format_duration, parse_signal, signal_name, signal_names};

// ---------------------------------------------------------------- durations

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Units accepted in durations, longest spelling first so that `ms` is not
/// read as `m` followed by garbage.
const DURATION_UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("ms", 1_000_000),
    ("s", NANOS_PER_SEC),
    ("m", 60 * NANOS_PER_SEC),
    ("h", 3_600 * NANOS_PER_SEC),
    ("d", 86_400 * NANOS_PER_SEC),
];

/// Parse `250ms`, `10s`, `1.5s`, `2m`, `1h`, `1m30s`, `0`.
///
/// A bare number other than 0 is refused: `10` could mean seconds or
/// milliseconds, and guessing wrong turns a 10 s timeout into 10 ms.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    let shown = printable(text);
    let invalid = |why: &str| format!("invalid duration '{shown}': {why}");
    if text.is_empty() {
        return Err("invalid duration '': expected a number with a unit, e.g. 10s".into());
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        if text.bytes().all(|b| b == b'0') {
            return Ok(Duration::ZERO);
        }
        return Err(invalid(&format!("missing unit (write {text}s)")));
    }
    let mut total: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number = &rest[..digits];
        rest = &rest[digits..];
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && frac.is_empty()) || frac.contains('.') {
            return Err(invalid("expected a number before each unit, e.g. 1m30s"));
        }
        rest = rest.trim_start(); // `10 s` reads as `10s`
        let unit_len = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = rest[unit_len..].trim_start();
        let Some(&(_, scale)) = DURATION_UNITS.iter().find(|(name, _)| *name == unit) else {
            if unit.is_empty() {
                return Err(invalid(&format!("missing unit (write {number}s)")));
            }
            return Err(invalid(&format!("unknown unit '{}' (use ms, s, m, h or d)", printable(unit))));
        };
        let too_large = || invalid("too large");
        let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| too_large())? };
        let mut nanos = whole.checked_mul(scale).ok_or_else(too_large)?;
        // Fractions are exact decimal arithmetic, not floats: 0.1s is 100ms.
        let mut place = scale;
        for digit in frac.bytes() {
            place /= 10;
            if place == 0 {
                break; // below a nanosecond: dropped
            }
            nanos += u128::from(digit - b'0') * place;
        }
        total = total.checked_add(nanos).ok_or_else(too_large)?;
    }
    let secs = u64::try_from(total / NANOS_PER_SEC).map_err(|_| invalid("too large"))?;
    Ok(Duration::new(secs, (total % NANOS_PER_SEC) as u32))
}

// ---------------------------------------------------------------- sizes

/// Parse a byte count: `4096`, `512K`, `64M`, `1G`, `2T` (powers of 1024,
/// case-insensitive, optionally followed by `B` or `iB`: `64MiB`, `1gb`).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let text = s.trim();
    let invalid = || {
        format!("invalid size '{text}': expected a number of bytes with an optional K, M, G or T suffix, e.g. 64M")
    };
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    if digits == 0 {
        return Err(invalid());
    }
    let number: u64 = text[..digits].parse().map_err(|_| format!("invalid size '{text}': too large"))?;
    let suffix = text[digits..].trim_start().to_ascii_lowercase();
    let (prefix, rest) = match suffix.chars().next() {
        Some(c @ ('k' | 'm' | 'g' | 't' | 'p' | 'e')) => (Some(c), &suffix[1..]),
        _ => (None, suffix.as_str()),
    };
    let shift = match prefix {
        None => 0,
        Some('k') => 10,
        Some('m') => 20,
        Some('g') => 30,
        Some('t') => 40,
        Some('p') => 50,
        Some(_) => 60,
    };
    let unit_ok = match rest {
        "" => true,
        "b" => true,
        "ib" => prefix.is_some(),
        _ => false,
    };
    if !unit_ok {
        return Err(invalid());
    }
    number.checked_mul(1u64 << shift).ok_or_else(|| format!("invalid size '{text}': too large"))
}

// ---------------------------------------------------------------- umask

/// Parse an octal file mode creation mask: `"0027"`, `"077"`, `"0o022"`.
pub fn parse_umask(s: &str) -> Result<u32, String> {
    let text = s.trim();
    let digits = text.strip_prefix("0o").unwrap_or(text);
    let invalid = || format!("invalid umask '{text}': expected an octal number from 0000 to 0777");
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(invalid());
    }
    let mask = u32::from_str_radix(digits, 8).map_err(|_| invalid())?;
    if mask > 0o777 {
        return Err(invalid());
    }
    Ok(mask)
}

// ---------------------------------------------------------------- shell words

/// Split a command line into words the way a POSIX shell does, without
/// running one: no expansion, no globbing, no operators. Single quotes keep
/// everything; inside double quotes a backslash escapes only `"` `\` `$` and
/// backtick (and joins lines); outside quotes a backslash escapes any
/// character. `''` is an empty word.
pub fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    // A word exists once anything, even an empty pair of quotes, started it.
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' | '\r' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(c) => {
                    in_word = true;
                    word.push(c);
                }
                None => return Err("a backslash at the end escapes nothing".into()),
            },
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// Quote a word so that [`split_words`] (and a POSIX shell) reads it back
/// unchanged. Words made only of safe characters are left bare.
pub fn quote_word(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        return word.to_owned();
    }
    format!("'{}'", word.replace('\'', r#"'\''"#))
}

/// `s` for quoting in a message: control characters (newlines, NUL, escape
/// sequences) are escaped so a message stays on one line and cannot drive the
/// terminal; everything else, quotes included, is shown as is.
pub(crate) fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(4 * EXCERPT_CHARS));
    for (count, c) in s.chars().enumerate() {
        if count == EXCERPT_CHARS {
            // A short excerpt is enough to find the place; a 50 MB value
            // must not be echoed whole (and read by whoever sees the error).
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

/// The most characters of a value quoted in a message.
pub(crate) const EXCERPT_CHARS: usize = 60;

/// The syslog facilities a unit may name (RFC 5424 section 6.2.1, as syslog(3) names them).
pub const SYSLOG_FACILITIES: &[&str] = &[
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp",
    "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];

// ---------------------------------------------------------------- capabilities

/// Every capability the caps crate knows (capabilities(7)), in number
/// order: one table for the parser, `tend schema`, `tend check` and the
/// sandbox's messages.
fn all_capabilities() -> Vec<caps::Capability> {
    let mut all: Vec<caps::Capability> = caps::all().into_iter().collect();
    tend_core::sort::sort_by_key(&mut all, |c| c.index());
    all
}

/// The capability names without `CAP_` (`CHOWN`, …), in number order.
pub fn capability_names() -> Vec<String> {
    all_capabilities().iter().map(|c| c.to_string().trim_start_matches("CAP_").to_string()).collect()
}

/// `CAP_NET_BIND_SERVICE` for 10; `CAP_63` for a number without a name.
pub fn capability_name(number: u32) -> String {
    all_capabilities()
        .into_iter()
        .find(|c| u32::from(c.index()) == number)
        .map(|c| c.to_string())
        .unwrap_or_else(|| format!("CAP_{number}"))
}

/// A capability by name, with or without the `CAP_` prefix, in any case:
/// `NET_BIND_SERVICE`, `cap_net_bind_service` → 10.
pub fn parse_capability(s: &str) -> Result<u8, String> {
    let text = s.trim();
    let upper = text.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    if let Ok(cap) = format!("CAP_{bare}").parse::<caps::Capability>() {
        return Ok(cap.index());
    }
    let mut message = format!("unknown capability '{}'", printable(text));
    let names = capability_names();
    if let Some(best) = did_you_mean(bare, names.iter().map(String::as_str)) {
        message.push_str(&format!(" (did you mean '{best}'?)"));
    }
    Err(message)
}

// ---------------------------------------------------------------- network addresses

/// Why `host` cannot be a host name: letters, digits, `-` and `.`, at most
/// 253 characters, no empty label, no label starting or ending with `-`.
/// IPv4 addresses pass (they are made of digits and dots).
pub fn check_hostname(host: &str) -> Result<(), String> {
    let shown = printable(host);
    if host.is_empty() {
        return Err("host name is empty".into());
    }
    if host.len() > 253 {
        return Err(format!("host name '{shown}' is longer than 253 characters"));
    }
    if let Some(c) = host.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.')) {
        return Err(format!(
            "invalid host name '{shown}': '{}' is not allowed (letters, digits, '-' and '.' only)",
            c.escape_debug()
        ));
    }
    // A trailing dot (fully qualified `example.com.`) is fine.
    let name = host.strip_suffix('.').unwrap_or(host);
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!("invalid host name '{shown}': empty label"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("invalid host name '{shown}': a label starts or ends with '-'"));
        }
        if label.len() > 63 {
            return Err(format!("invalid host name '{shown}': a label is longer than 63 characters"));
        }
    }
    Ok(())
}

/// `host`, or `[v6]` → the host without brackets. `whole` is the value
/// as written, for messages.
fn parse_host(host: &str, whole: &str) -> Result<String, String> {
    if let Some(inner) = host.strip_prefix('[') {
        let Some(addr) = inner.strip_suffix(']') else {
            return Err(format!("invalid address '{}': unclosed '['", printable(whole)));
        };
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!(
                "invalid address '{}': '{}' is not an IPv6 address",
                printable(whole),
                printable(addr)
            ));
        }
        return Ok(addr.to_owned());
    }
    if host.contains(':') {
        return Err(format!(
            "invalid address '{}': write IPv6 addresses in brackets, e.g. [::1]:80",
            printable(whole)
        ));
    }
    check_hostname(host).map_err(|why| format!("invalid address '{}': {why}", printable(whole)))?;
    Ok(host.to_owned())
}

fn parse_port(port: &str, whole: &str) -> Result<u16, String> {
    if port.is_empty() {
        return Err(format!("invalid address '{}': the port is missing", printable(whole)));
    }
    match port.parse::<u16>() {
        Ok(n) if n > 0 && port.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(format!("invalid address '{}': the port must be from 1 to 65535", printable(whole))),
    }
}

/// Split `host:port`, `[v6]:port`: at the last `:` outside brackets.
/// `None` when there is no port.
fn split_host_port(text: &str) -> Option<(&str, &str)> {
    if text.starts_with('[') {
        let end = text.find(']')?;
        let rest = &text[end + 1..];
        return rest.strip_prefix(':').map(|port| (&text[..=end], port));
    }
    match text.rsplit_once(':') {
        // A bare IPv6 address has several colons: not a port.
        Some((host, _)) if host.contains(':') => None,
        other => other,
    }
}

/// A TCP check target: `127.0.0.1:5432`, `localhost:6379`, `[::1]:80`.
/// The host comes back without brackets (`::1`), ready for
/// `(host, port).to_socket_addrs()`.
pub fn parse_tcp_address(s: &str) -> Result<(String, u16), String> {
    let text = s.trim();
    if text.is_empty() {
        return Err("address is empty: expected host:port, e.g. 127.0.0.1:5432".into());
    }
    let Some((host, port)) = split_host_port(text) else {
        if text.contains("://") {
            return Err(format!(
                "invalid address '{}': expected host:port, not a URL (use an http check for http://)",
                printable(text)
            ));
        }
        return Err(format!(
            "invalid address '{}': expected host:port, e.g. 127.0.0.1:5432",
            printable(text)
        ));
    };
    let port = parse_port(port, text)?;
    let host = parse_host(host, text)?;
    Ok((host, port))
}

/// An HTTP check target: `http://host[:port][/path]`. Returns (host without
/// brackets, port (default 80), path (default `/`, query kept, fragment
/// dropped)).
pub fn parse_http_url(s: &str) -> Result<(String, u16, String), String> {
    let text = s.trim();
    let shown = printable(text);
    let lower = text.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return Err("https is not supported, use a tcp check or exec with curl".into());
    }
    let Some(rest) = lower.starts_with("http://").then(|| &text["http://".len()..]) else {
        return Err(format!("invalid URL '{shown}': expected http://host[:port]/path"));
    };
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.contains('@') {
        return Err(format!("invalid URL '{shown}': user names and passwords are not supported"));
    }
    if authority.is_empty() {
        return Err(format!("invalid URL '{shown}': the host is missing"));
    }
    let (host, port) = match split_host_port(authority) {
        Some((host, port)) => (host, parse_port(port, text)?),
        None => (authority, 80),
    };
    let host = parse_host(host, text)?;
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("invalid URL '{shown}': the path contains spaces or control characters"));
    }
    let path = if path.is_empty() {
        "/".to_owned()
    } else if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_owned()
    };
    Ok((host, port, path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn durations_parse() {
        let cases = [
            ("250ms", ms(250)),
            ("10s", ms(10_000)),
            ("2m", ms(120_000)),
            ("1h", ms(3_600_000)),
            ("1.5s", ms(1_500)),
            ("0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("1m30s", ms(90_000)),
            ("1h 30m", ms(5_400_000)),
            ("1d", ms(86_400_000)),
            (".5s", ms(500)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
        assert_eq!(parse_duration("100us"), Ok(Duration::from_micros(100)));
        assert_eq!(parse_duration("0.1s"), Ok(ms(100)));
    }

    #[test]
    fn duration_errors() {
        assert_eq!(parse_duration("10").unwrap_err(), "invalid duration '10': missing unit (write 10s)");
        assert_eq!(parse_duration("1.5").unwrap_err(), "invalid duration '1.5': missing unit (write 1.5s)");
        assert_eq!(
            parse_duration("10 sec").unwrap_err(),
            "invalid duration '10 sec': unknown unit 'sec' (use ms, s, m, h or d)"
        );
        assert_eq!(parse_duration("1m30").unwrap_err(), "invalid duration '1m30': missing unit (write 30s)");
        assert!(parse_duration("").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("1..2s").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("99999999999999999999999999999999999999h").is_err());
        assert!(parse_duration("18446744073709551616s").is_err());
    }

    #[test]
    fn durations_format() {
        let cases = [
            (Duration::ZERO, "0s"),
            (ms(100), "100ms"),
            (ms(2_000), "2s"),
            (ms(1_500), "1.5s"),
            (ms(120_000), "2m"),
            (ms(5_400_000), "1h30m"),
            (ms(90_250), "1m30.25s"),
            (ms(3_600_001), "1h0.001s"),
            (Duration::from_micros(1_500), "1500us"),
            (Duration::from_nanos(7), "7ns"),
        ];
        for (d, text) in cases {
            assert_eq!(format_duration(d), text);
            assert_eq!(parse_duration(text), Ok(d));
        }
    }

    #[test]
    fn sizes() {
        let cases = [
            ("4096", 4096),
            ("512K", 512 << 10),
            ("512k", 512 << 10),
            ("64M", 64 << 20),
            ("64MiB", 64 << 20),
            ("64mb", 64 << 20),
            ("1G", 1 << 30),
            ("2T", 2 << 40),
            ("100B", 100),
            ("0", 0),
        ];
        for (text, want) in cases {
            assert_eq!(parse_size(text), Ok(want), "{text}");
        }
        assert_eq!(
            parse_size("12X").unwrap_err(),
            "invalid size '12X': expected a number of bytes with an optional K, M, G or T suffix, e.g. 64M"
        );
        for bad in ["", "K", "1.5G", "100iB", "-1", "1GG"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_size("100000000000T").unwrap_err(), "invalid size '100000000000T': too large");
    }

    #[test]
    fn umasks() {
        assert_eq!(parse_umask("0027"), Ok(0o027));
        assert_eq!(parse_umask("077"), Ok(0o077));
        assert_eq!(parse_umask("0o022"), Ok(0o022));
        assert_eq!(parse_umask("0777"), Ok(0o777));
        assert_eq!(
            parse_umask("0999").unwrap_err(),
            "invalid umask '0999': expected an octal number from 0000 to 0777"
        );
        for bad in ["", "1000", "00000", "abc", "-1"] {
            assert!(parse_umask(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn words() {
        let ok = |s: &str| split_words(s).unwrap();
        assert_eq!(ok("nginx -g 'daemon off;'"), ["nginx", "-g", "daemon off;"]);
        assert_eq!(ok(r#"echo "a \"b\" \$HOME \` \\ \n""#), ["echo", r#"a "b" $HOME ` \ \n"#]);
        assert_eq!(ok(r"a\ b c\\d \'"), ["a b", r"c\d", "'"]);
        assert_eq!(ok("a '' \"\" b"), ["a", "", "", "b"]);
        assert_eq!(ok("x'y'\"z\"w"), ["xyzw"]);
        assert_eq!(ok("  \t a\n  b  "), ["a", "b"]);
        assert_eq!(ok("a\\\nb"), ["ab"]);
        assert_eq!(ok("'$HOME' *.c"), ["$HOME", "*.c"]);
        assert!(ok("   ").is_empty());
        assert_eq!(split_words("echo 'abc").unwrap_err(), "unterminated single quote");
        assert_eq!(split_words("echo \"abc").unwrap_err(), "unterminated double quote");
        assert_eq!(split_words("echo \\").unwrap_err(), "a backslash at the end escapes nothing");
    }

    proptest! {
        #[test]
        fn duration_round_trip(millis in 0u64..10_000_000_000_000) {
            let d = Duration::from_millis(millis);
            prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }

        #[test]
        fn any_duration_round_trips(secs in 0u64..u64::MAX / 2, nanos in 0u32..1_000_000_000) {
            let d = Duration::new(secs, nanos);
            prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }

        #[test]
        fn quoted_words_round_trip(words in proptest::collection::vec(any::<String>(), 0..6)) {
            let line = words.iter().map(|w| quote_word(w)).collect::<Vec<_>>().join(" ");
            prop_assert_eq!(split_words(&line), Ok(words));
        }

        #[test]
        fn double_quoted_words_round_trip(words in proptest::collection::vec("[ -~\t\n]*", 0..6)) {
            // Escape what double quotes give meaning to, as a user would.
            let quote = |w: &String| {
                let mut out = String::from("\"");
                for c in w.chars() {
                    if matches!(c, '"' | '\\' | '$' | '`') {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('"');
                out
            };
            let line = words.iter().map(quote).collect::<Vec<_>>().join(" ");
            prop_assert_eq!(split_words(&line), Ok(words));
        }

        #[test]
        fn value_parsers_never_panic(s in "\\PC*") {
            let _ = parse_duration(&s);
            let _ = parse_size(&s);
            let _ = parse_signal(&s);
            let _ = parse_umask(&s);
            let _ = split_words(&s);
        }
    }

    #[test]
    fn capabilities() {
        assert_eq!(parse_capability("NET_BIND_SERVICE"), Ok(10));
        assert_eq!(parse_capability("cap_net_bind_service"), Ok(10));
        assert_eq!(parse_capability(" Cap_Chown "), Ok(0));
        assert_eq!(parse_capability("CHECKPOINT_RESTORE"), Ok(40));
        assert_eq!(
            parse_capability("SYS_ADMN").unwrap_err(),
            "unknown capability 'SYS_ADMN' (did you mean 'SYS_ADMIN'?)"
        );
        assert_eq!(parse_capability("CAP_").unwrap_err(), "unknown capability 'CAP_'");
        assert_eq!(capability_name(10), "CAP_NET_BIND_SERVICE");
        assert_eq!(capability_name(63), "CAP_63");
        assert_eq!(capability_names().len(), 41);
        for n in 0..41u8 {
            assert_eq!(parse_capability(&capability_name(n.into())), Ok(n));
        }
    }

    #[test]
    fn addresses() {
        assert_eq!(parse_tcp_address("127.0.0.1:5432"), Ok(("127.0.0.1".into(), 5432)));
        assert_eq!(parse_tcp_address("[::1]:80"), Ok(("::1".into(), 80)));
        assert_eq!(parse_tcp_address("db.local.:1"), Ok(("db.local.".into(), 1)));
        assert!(parse_tcp_address("").is_err());
        assert!(parse_tcp_address(":80").is_err());
        assert!(parse_tcp_address("[::1:80").is_err());
        assert!(parse_tcp_address("a..b:80").is_err());
        assert_eq!(parse_http_url("http://a"), Ok(("a".into(), 80, "/".into())));
        assert_eq!(parse_http_url("http://a:8080/x/y?z"), Ok(("a".into(), 8080, "/x/y?z".into())));
        assert_eq!(
            parse_http_url("https://a/").unwrap_err(),
            "https is not supported, use a tcp check or exec with curl"
        );
        assert!(parse_http_url("ftp://a/").is_err());
        assert_eq!(check_hostname("sandbox"), Ok(()));
        assert!(check_hostname("a_b").is_err());
        assert!(check_hostname(&"a".repeat(64)).is_err(), "label too long");
    }

    proptest! {
        #[test]
        fn address_parsers_never_panic(s in "\\PC{0,40}") {
            let _ = parse_tcp_address(&s);
            let _ = parse_http_url(&s);
            let _ = parse_capability(&s);
            let _ = check_hostname(&s);
        }
    }
}
