//! Procfile → units, as foreman runs them (and Heroku documents them).
//!
//! Each line `name: command` is a process type. foreman runs the command
//! through `sh -c` in the Procfile's folder, with the variables of a `.env`
//! file next to it, and gives each process type its own `PORT`: 5000 for
//! the first, then 5100, 5200, … (foreman's `--port` default and step).
//! Blank lines and `#` comments are skipped; any other line is reported.

use super::{absolute, command_line, unit_name, Draft, Note, Translation, Yaml};
use std::path::Path;

/// foreman's first port and the step between process types.
const BASE_PORT: i64 = 5000;
const PORT_STEP: i64 = 100;

pub fn translate(file: &Path, text: &str) -> Translation {
    let mut out = Translation::default();
    let dir = absolute(file, ".");
    let env_file = dir.join(".env");
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        // foreman: /^([A-Za-z0-9_-]+):\s*(.+)$/
        let parsed = trimmed.split_once(':').filter(|(name, command)| {
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                && !command.trim().is_empty()
        });
        let Some((name, command)) = parsed else {
            out.notes.push(Note {
                file: file.to_owned(),
                line,
                source: trimmed.to_owned(),
                why: "not a `name: command` line".into(),
            });
            continue;
        };
        let unit = unit_name(name);
        let mut draft = Draft::new(&unit, file);
        draft.comments.push(format!("Imported from {} line {line} by tend import procfile.", file.display()));
        if unit != name {
            draft.comments.push(format!("Process type '{name}', renamed to a valid unit name."));
        }
        let port = BASE_PORT + PORT_STEP * out.drafts.len() as i64;
        draft.set("command", command_line(command));
        draft.set("working_dir", Yaml::str(dir.display().to_string()));
        if env_file.is_file() {
            draft.set("env_file", Yaml::str(env_file.display().to_string()));
        }
        // After env_file, as foreman's own PORT wins over .env.
        draft.set("environment", Yaml::Map(vec![("PORT".into(), Yaml::str(port.to_string()))]));
        draft.set("restart", Yaml::str("always"));
        out.drafts.push(draft);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_process_type_is_a_unit_with_its_own_port() {
        let text = "# comment\nweb: bundle exec puma -p $PORT\n\nworker:   bundle exec sidekiq -q default\nnot a process\n";
        let out = translate(Path::new("/srv/app/Procfile"), text);
        assert_eq!(out.drafts.len(), 2);
        let web = &out.drafts[0];
        assert_eq!(web.get("command"), Some(&Yaml::words(&["sh", "-c", "bundle exec puma -p $PORT"])));
        assert_eq!(web.get("working_dir"), Some(&Yaml::str("/srv/app")));
        assert_eq!(web.get("environment"), Some(&Yaml::Map(vec![("PORT".into(), Yaml::str("5000"))])));
        let worker = &out.drafts[1];
        assert_eq!(
            worker.get("command"),
            Some(&Yaml::words(&["bundle", "exec", "sidekiq", "-q", "default"]))
        );
        assert_eq!(worker.get("environment"), Some(&Yaml::Map(vec![("PORT".into(), Yaml::str("5100"))])));
        assert_eq!(out.notes.len(), 1);
        assert_eq!((out.notes[0].line, out.notes[0].source.as_str()), (5, "not a process"));
    }
}
