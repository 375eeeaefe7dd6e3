//! `tend check [DIR]`: validate without starting anything.

use std::path::PathBuf;

pub fn check(dir: Option<PathBuf>) -> i32 {
    let dir = super::units_dir(dir);
    match super::load(&dir) {
        Ok(units) => {
            let names: Vec<&str> = units.iter().map(|u| u.name.as_str()).collect();
            println!(
                "{}: {} unit{} ok: {}",
                dir.display(),
                units.len(),
                if units.len() == 1 { "" } else { "s" },
                names.join(", ")
            );
            crate::exit::OK
        }
        Err(_) => crate::exit::USAGE,
    }
}
