//! Pure text shared by the core and the rest of tend: durations and sizes
//! as people write them, Linux signal names, and did-you-mean suggestions.
//!
//! Every message tend shows about time, signals or names goes through here,
//! so that `tend status`, the log and the unit loader spell them alike.

use std::time::Duration;

/// The shortest readable spelling that the unit loader's `parse_duration` reads back exactly:
/// `0s`, `100ms`, `2s`, `1.5s`, `2m`, `1h30m`, `1m30.25s`.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let nanos = d.subsec_nanos();
    if secs == 0 {
        return match nanos {
            0 => "0s".into(),
            n if n % 1_000_000 == 0 => format!("{}ms", n / 1_000_000),
            n if n % 1_000 == 0 => format!("{}us", n / 1_000),
            n => format!("{n}ns"),
        };
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || nanos > 0 {
        out.push_str(&s.to_string());
        if nanos > 0 {
            let frac = format!("{nanos:09}");
            out.push('.');
            out.push_str(frac.trim_end_matches('0'));
        }
        out.push('s');
    }
    out
}

/// `256M`, `1.5G`, `512K`, `100B`: sizes as units write them.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [(u64, &str); 4] = [(1 << 40, "T"), (1 << 30, "G"), (1 << 20, "M"), (1 << 10, "K")];
    for (size, suffix) in UNITS {
        if bytes >= size {
            let value = bytes as f64 / size as f64;
            return if bytes % size == 0 {
                format!("{}{suffix}", bytes / size)
            } else {
                format!("{value:.1}{suffix}")
            };
        }
    }
    format!("{bytes}B")
}

/// An error's text without the ` (os error N)` std appends to system
/// errors: `Permission denied (os error 13)` → `Permission denied`. The
/// one place that does this, for every message tend shows.
pub fn without_os_errors(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(" (os error ") {
        out.push_str(&rest[..at]);
        let after = &rest[at + " (os error ".len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with(')') {
            rest = &after[digits + 1..];
        } else {
            out.push_str(" (os error ");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// An I/O error's text without its ` (os error N)`.
pub fn error_text(error: &std::io::Error) -> String {
    without_os_errors(&error.to_string())
}

// ---------------------------------------------------------------- signals

/// The signal numbers the core names in its decisions (Linux numbering,
/// kept here so that the core needs no libc).
pub const SIGQUIT: i32 = 3;

/// Linux signal numbers (x86, arm and the generic table used by arm64 and
/// riscv). Names without the `SIG` prefix; the first name of a number is the
/// one [`signal_name`] prints.
const SIGNALS: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("POLL", 29),
    ("PWR", 30),
    ("SYS", 31),
];

/// SIGRTMIN as the kernel numbers it (glibc reserves 32 and 33 for itself
/// and reports 34; a process started by tend sees the kernel numbering).
const SIGRTMIN: i32 = 34;
const SIGRTMAX: i32 = 64;

/// Parse `SIGTERM`, `term`, `Sigterm`, `15`, `SIGRTMIN+3`, `RTMAX-1`.
pub fn parse_signal(s: &str) -> Result<i32, String> {
    let text = s.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<i32>() {
            Ok(n @ 1..=SIGRTMAX) => Ok(n),
            _ => Err(format!("invalid signal '{text}': signal numbers go from 1 to {SIGRTMAX}")),
        };
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(&(_, n)) = SIGNALS.iter().find(|(known, _)| *known == name) {
        return Ok(n);
    }
    let realtime = |base: &str, sign: i32| -> Option<Result<i32, String>> {
        let rest = name.strip_prefix(base)?;
        let offset = if rest.is_empty() {
            0
        } else {
            let digits = rest.strip_prefix(if sign > 0 { '+' } else { '-' })?;
            digits.parse::<i32>().ok()?
        };
        let n = if sign > 0 { SIGRTMIN } else { SIGRTMAX } + sign * offset;
        Some(if (SIGRTMIN..=SIGRTMAX).contains(&n) {
            Ok(n)
        } else {
            Err(format!(
                "invalid signal '{text}': real-time signals go from SIGRTMIN ({SIGRTMIN}) to SIGRTMAX ({SIGRTMAX})"
            ))
        })
    };
    if let Some(result) = realtime("RTMIN", 1).or_else(|| realtime("RTMAX", -1)) {
        return result;
    }
    let names = SIGNALS.iter().map(|(n, _)| *n).chain(["RTMIN", "RTMAX"]);
    let mut message = format!("unknown signal '{text}'");
    if let Some(best) = did_you_mean(name, names) {
        message.push_str(&format!(" (did you mean 'SIG{best}'?)"));
    }
    Err(message)
}

/// Every signal name [`parse_signal`] knows, as `SIGTERM`, in number order
/// (aliases included), then `SIGRTMIN` and `SIGRTMAX`: for completion.
pub fn signal_names() -> Vec<String> {
    SIGNALS
        .iter()
        .map(|(name, _)| format!("SIG{name}"))
        .chain(["SIGRTMIN".into(), "SIGRTMAX".into()])
        .collect()
}

/// `SIGTERM`, `SIGRTMIN`, `SIGRTMIN+2`, `SIGRTMAX-1`, or the bare number for
/// numbers without a name (32, 33, out of range).
pub fn signal_name(n: i32) -> String {
    if let Some((name, _)) = SIGNALS.iter().find(|(_, num)| *num == n) {
        return format!("SIG{name}");
    }
    // Same split as `kill -l`: the lower half counts up from RTMIN, the upper
    // half down from RTMAX.
    match n {
        SIGRTMIN => "SIGRTMIN".into(),
        SIGRTMAX => "SIGRTMAX".into(),
        n if n > SIGRTMIN && n <= (SIGRTMIN + SIGRTMAX) / 2 => format!("SIGRTMIN+{}", n - SIGRTMIN),
        n if n > SIGRTMIN && n < SIGRTMAX => format!("SIGRTMAX-{}", SIGRTMAX - n),
        n => n.to_string(),
    }
}

// ---------------------------------------------------------------- suggestions

/// The candidate closest to `input` (case-insensitive optimal string
/// alignment distance: insertions, deletions, substitutions, transpositions),
/// if it is close enough to be a plausible typo: at most 2 edits, and fewer
/// edits than `input` has characters.
pub fn did_you_mean<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let input_lower = input.to_lowercase();
    let max = 2.min(input.chars().count().saturating_sub(1));
    candidates
        .into_iter()
        .map(|c| (edit_distance(&input_lower, &c.to_lowercase()), c))
        .filter(|&(d, _)| d <= max)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Optimal string alignment distance (Damerau-Levenshtein without
/// multiple edits of one substring), over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows: two back (for transpositions), previous, current.
    let mut prev2 = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(prev2[j - 2] + 1);
            }
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        for (text, n) in [
            ("SIGTERM", 15),
            ("term", 15),
            ("SigKill", 9),
            ("HUP", 1),
            ("9", 9),
            ("64", 64),
            ("SIGIO", 29),
            ("poll", 29),
            ("SIGRTMIN", 34),
            ("SIGRTMIN+3", 37),
            ("rtmax-1", 63),
            ("SIGRTMAX", 64),
        ] {
            assert_eq!(parse_signal(text), Ok(n), "{text}");
        }
        assert_eq!(
            parse_signal("SIGTREM").unwrap_err(),
            "unknown signal 'SIGTREM' (did you mean 'SIGTERM'?)"
        );
        assert_eq!(parse_signal("0").unwrap_err(), "invalid signal '0': signal numbers go from 1 to 64");
        assert!(parse_signal("65").is_err());
        assert!(parse_signal("SIGRTMIN+31").is_err());
        assert!(parse_signal("SIGRTMIN-1").is_err());
        assert!(parse_signal("").is_err());
        assert_eq!(parse_signal("bogus").unwrap_err(), "unknown signal 'bogus' (did you mean 'SIGBUS'?)");
        assert_eq!(parse_signal("xyzzy").unwrap_err(), "unknown signal 'xyzzy'");
    }

    #[test]
    fn signal_names_round_trip() {
        assert_eq!(signal_name(15), "SIGTERM");
        assert_eq!(signal_name(6), "SIGABRT");
        assert_eq!(signal_name(29), "SIGIO");
        assert_eq!(signal_name(34), "SIGRTMIN");
        assert_eq!(signal_name(36), "SIGRTMIN+2");
        assert_eq!(signal_name(63), "SIGRTMAX-1");
        assert_eq!(signal_name(32), "32");
        for n in (1..=31).chain(34..=64) {
            assert_eq!(parse_signal(&signal_name(n)), Ok(n), "{n}");
        }
    }

    #[test]
    fn suggestions() {
        let keys = ["environment", "env_file", "command", "restart"];
        assert_eq!(did_you_mean("enviroment", keys), Some("environment"));
        assert_eq!(did_you_mean("Command", keys), Some("command"));
        assert_eq!(did_you_mean("comand", keys), Some("command"));
        assert_eq!(did_you_mean("rsetart", keys), Some("restart"));
        assert_eq!(did_you_mean("banana", keys), None);
        assert_eq!(did_you_mean("x", ["as"]), None);
        assert_eq!(edit_distance("ca", "abc"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn os_error_numbers_are_left_out() {
        assert_eq!(without_os_errors("No such file or directory (os error 2)"), "No such file or directory");
        assert_eq!(
            without_os_errors("a: Permission denied (os error 13); b: Busy (os error 16)"),
            "a: Permission denied; b: Busy"
        );
        assert_eq!(without_os_errors("odd (os error x)"), "odd (os error x)");
        assert_eq!(without_os_errors("plain"), "plain");
    }

    #[test]
    fn sizes_format() {
        assert_eq!(format_bytes(256 << 20), "256M");
        assert_eq!(format_bytes(3 << 29), "1.5G");
        assert_eq!(format_bytes(100), "100B");
    }
}
