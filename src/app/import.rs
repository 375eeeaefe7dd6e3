//! `tend import FORMAT FILE… [-o DIR] [--force]`: read the files, translate
//! them (`crate::import`), write one unit file per draft, print what was
//! not translated (each with its source line), then load the folder as
//! `tend check` does.
//!
//! Never overwrites: without --force, if any unit to write exists already,
//! nothing is written. Files are created with O_EXCL (or, with --force,
//! written beside and renamed over), so a unit is never half-written.

use crate::import::{self, Format, Note};
use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub fn import(format: Format, files: Vec<PathBuf>, out_dir: PathBuf, force: bool) -> i32 {
    let mut drafts = Vec::new();
    let mut notes: Vec<Note> = Vec::new();
    for file in &files {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(err) => {
                super::out::say_err(&format!("tend: cannot read {}: {err}", file.display()));
                return crate::exit::USAGE;
            }
        };
        match import::translate(format, file, &text) {
            Ok(mut translation) => {
                drafts.append(&mut translation.drafts);
                notes.append(&mut translation.notes);
            }
            Err(note) => {
                super::out::say_err(&format!("{}:{}: {}", note.file.display(), note.line, note.why));
                return crate::exit::USAGE;
            }
        }
    }
    let mut seen = BTreeSet::new();
    for draft in &drafts {
        if !seen.insert(draft.name.clone()) {
            super::out::say_err(&format!(
                "tend: two units would be called {} (from {}); import those files separately, into different folders",
                draft.name,
                draft.file.display()
            ));
            return crate::exit::USAGE;
        }
    }
    let existing = unit_names(&out_dir);
    import::resolve_dependencies(&mut drafts, &existing);
    // Refuse before writing anything.
    let conflicts: Vec<PathBuf> = drafts
        .iter()
        .flat_map(|d| [out_dir.join(format!("{}.yaml", d.name)), out_dir.join(format!("{}.yml", d.name))])
        .filter(|path| std::fs::symlink_metadata(path).is_ok())
        .filter(|path| !force || path.extension().is_some_and(|e| e == "yml"))
        .collect();
    if !conflicts.is_empty() {
        for path in &conflicts {
            super::out::say_err(&format!("tend: {} exists", path.display()));
        }
        super::out::say_err(&format!(
            "tend: nothing written; {}",
            if force {
                "remove the .yml files (a unit may have only one file)"
            } else {
                "use --force to replace them"
            }
        ));
        return crate::exit::FAILURE;
    }
    if let Err(err) = std::fs::create_dir_all(&out_dir) {
        super::out::say_err(&format!("tend: cannot create {}: {err}", out_dir.display()));
        return crate::exit::FAILURE;
    }
    let mut stdout = std::io::stdout();
    for draft in &drafts {
        let path = out_dir.join(format!("{}.yaml", draft.name));
        if let Err(err) = write_unit(&path, &draft.render(), force) {
            super::out::say_err(&format!("tend: cannot write {}: {err}", path.display()));
            return crate::exit::FAILURE;
        }
        let _ = writeln!(stdout, "wrote {}", path.display());
    }
    notes.extend(drafts.iter().flat_map(|d| d.notes.iter().cloned()));
    tend_core::sort::sort_by(&mut notes, |a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    for note in &notes {
        super::out::say_err(&format!(
            "{}:{}: {}",
            note.file.display(),
            note.line,
            import::escaped(&note.source)
        ));
        super::out::say_err(&format!("  not translated: {}", note.why));
    }
    if !notes.is_empty() {
        super::out::say_err(&format!(
            "tend: {} unit{} written; {} thing{} not translated (above, and as comments in the units)",
            drafts.len(),
            if drafts.len() == 1 { "" } else { "s" },
            notes.len(),
            if notes.len() == 1 { "" } else { "s" }
        ));
    }
    if drafts.is_empty() {
        super::out::say_err("tend: no unit written");
        return crate::exit::FAILURE;
    }
    // What tend check would say about the folder now.
    match super::load(&out_dir) {
        Ok(_) => crate::exit::OK,
        Err(_) => {
            super::out::say_err(&format!(
                "tend: {} does not load as it is (above): edit the units before tend up",
                out_dir.display()
            ));
            crate::exit::FAILURE
        }
    }
}

/// Names of the units in `dir` (`NAME.yaml`, `NAME.yml`).
fn unit_names(dir: &Path) -> BTreeSet<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return BTreeSet::new() };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let (stem, ext) = name.rsplit_once('.')?;
            matches!(ext, "yaml" | "yml").then(|| stem.to_owned())
        })
        .collect()
}

fn write_unit(path: &Path, text: &str, replace: bool) -> std::io::Result<()> {
    let target = if replace { path.with_extension("yaml.tend-import") } else { path.to_owned() };
    if replace {
        // A leftover of an import that died half-way.
        let _ = std::fs::remove_file(&target);
    }
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o644).open(&target)?;
    let written = file.write_all(text.as_bytes()).and_then(|()| file.sync_all());
    if let Err(err) = written {
        let _ = std::fs::remove_file(&target);
        return Err(err);
    }
    if replace {
        std::fs::rename(&target, path)?;
    }
    Ok(())
}
