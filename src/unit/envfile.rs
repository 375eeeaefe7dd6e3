//! `env_file` contents: `KEY=VALUE` lines, and the rule for valid variable names.
//!
//! The format is the common denominator of systemd's EnvironmentFile, Docker's
//! `--env-file` and dotenv: `#` comment lines, blank lines, an optional
//! `export ` prefix, and an optional pair of single quotes (taken literally)
//! or double quotes (where `\"` `\\` `\$` and backtick are escaped and `\n` is
//! a newline) around the value. Nothing is expanded: `$HOME` stays `$HOME`.

use super::values::printable;

/// Why a variable name cannot be passed to execve(2): empty, containing `=`
/// (the separator in `envp`) or NUL (the terminator).
pub(crate) fn check_env_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        Err("variable name is empty".into())
    } else if name.contains('=') {
        Err(format!("invalid variable name '{}': it contains '='", printable(name)))
    } else if name.contains('\0') {
        Err(format!("invalid variable name '{}': it contains a NUL byte", printable(name)))
    } else {
        Ok(())
    }
}

/// One bad line: 1-based line and column, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LineError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Parse an env file. Returns every variable in file order, or every bad line.
pub(crate) fn parse_env_file(text: &str) -> Result<Vec<(String, String)>, Vec<LineError>> {
    let mut vars = Vec::new();
    let mut errors = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let mut error =
            |column: usize, message: String| errors.push(LineError { line: index + 1, column, message });
        let body = line.trim_start();
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        let body = body.strip_prefix("export ").map_or(body, str::trim_start);
        // Columns are counted in characters, like the YAML positions.
        let column_of = |part: &str| line[..line.len() - part.len()].chars().count() + 1;
        let Some((key, value)) = body.split_once('=') else {
            error(column_of(body), format!("expected KEY=VALUE, got '{}'", printable(body)));
            continue;
        };
        let key = key.trim_end();
        if let Err(why) = check_env_name(key) {
            error(column_of(body), why);
            continue;
        }
        if key.contains(char::is_whitespace) {
            error(
                column_of(body),
                format!("invalid variable name '{}': it contains a space", printable(key)),
            );
            continue;
        }
        let value_text = value.trim_start();
        match unquote(value_text) {
            // execve(2) would cut the value there: refused at load, not at start.
            Ok(value) if value.contains('\0') => {
                error(column_of(value_text), format!("{}: the value contains a NUL byte", printable(key)));
            }
            Ok(value) => vars.push((key.to_owned(), value)),
            Err((offset, why)) => {
                let at = &value_text[offset..];
                error(column_of(at), why);
            }
        }
    }
    if errors.is_empty() {
        Ok(vars)
    } else {
        Err(errors)
    }
}

/// The value after `=`: bare (trailing spaces dropped), or quoted. On error,
/// the byte offset in `text` of the problem.
fn unquote(text: &str) -> Result<String, (usize, String)> {
    let quote = match text.chars().next() {
        Some(q @ ('\'' | '"')) => q,
        _ => return Ok(text.trim_end().to_owned()),
    };
    let mut value = String::new();
    let mut chars = text.char_indices().skip(1);
    let end = loop {
        match chars.next() {
            None => {
                let kind = if quote == '"' { "double" } else { "single" };
                return Err((0, format!("unterminated {kind} quote")));
            }
            Some((i, c)) if c == quote => break i + 1,
            Some((_, '\\')) if quote == '"' => match chars.next() {
                Some((_, c @ ('"' | '\\' | '$' | '`'))) => value.push(c),
                Some((_, 'n')) => value.push('\n'),
                Some((_, c)) => {
                    value.push('\\');
                    value.push(c);
                }
                None => return Err((0, "unterminated double quote".into())),
            },
            Some((_, c)) => value.push(c),
        }
    };
    let rest = &text[end..];
    let trailing = rest.trim_start();
    if !(trailing.is_empty() || (trailing.starts_with('#') && trailing.len() < rest.len())) {
        return Err((
            text.len() - trailing.len(),
            format!("unexpected text after the closing quote: '{}'", printable(trailing)),
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn text_after_closing_quote() {
        let text = "A=1\nC='it''s $X'\n";
        // `C='it''s $X'` is not valid: text after the closing quote.
        let errors = parse_env_file(text).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 2);
        assert_eq!(errors[0].column, 7);
        assert_eq!(errors[0].message, "unexpected text after the closing quote: ''s $X''");
    }

    #[test]
    fn good_file() {
        let text = "A=1\nexport B = two words  \nC='it s $X'\nD=\"q \\\"x\\\" \\$Y \\n\" # note\nE=\nF='a#b'\r\n  G=x=y\n";
        assert_eq!(
            parse_env_file(text),
            Ok(pairs(&[
                ("A", "1"),
                ("B", "two words"),
                ("C", "it s $X"),
                ("D", "q \"x\" $Y \n"),
                ("E", ""),
                ("F", "a#b"),
                ("G", "x=y"),
            ]))
        );
    }

    #[test]
    fn reports_every_bad_line() {
        let text = "OK=1\nnot a pair\n=empty\nA B=1\nQ=\"open\n";
        let errors = parse_env_file(text).unwrap_err();
        let got: Vec<_> = errors.iter().map(|e| (e.line, e.column, e.message.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (2, 1, "expected KEY=VALUE, got 'not a pair'"),
                (3, 1, "variable name is empty"),
                (4, 1, "invalid variable name 'A B': it contains a space"),
                (5, 3, "unterminated double quote"),
            ]
        );
    }

    #[test]
    fn names() {
        assert!(check_env_name("PATH").is_ok());
        assert!(check_env_name("").is_err());
        assert!(check_env_name("A=B").is_err());
        assert!(check_env_name("A\0").is_err());
    }
}
