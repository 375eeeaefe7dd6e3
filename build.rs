//! Build script: records the commit tend is built from, for `tend --version`.
//!
//! In order: `$TEND_COMMIT` (a build without `.git`, as in a container build:
//! `--build-arg TEND_COMMIT=$(git rev-parse --short=12 HEAD)`); the checkout's
//! `git rev-parse HEAD`; the `.cargo_vcs_info.json` cargo puts in a packaged
//! crate; else "unknown". Never fails the build.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=TEND_COMMIT");
    let from_env = std::env::var("TEND_COMMIT").ok().filter(|c| !c.trim().is_empty());
    let commit = from_env
        .or_else(|| {
            let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
            // Rebuild when HEAD moves: HEAD itself (a checkout), the branch it
            // names (a commit), and packed-refs (a gc).
            if let Some(git_dir) = git(&["rev-parse", "--git-dir"]) {
                println!("cargo:rerun-if-changed={git_dir}/HEAD");
            }
            if let (Some(common), Some(head_ref)) =
                (git(&["rev-parse", "--git-common-dir"]), git(&["symbolic-ref", "-q", "HEAD"]))
            {
                println!("cargo:rerun-if-changed={common}/{head_ref}");
                println!("cargo:rerun-if-changed={common}/packed-refs");
            }
            Some(commit)
        })
        .or_else(|| {
            let info = std::fs::read_to_string(Path::new(".cargo_vcs_info.json")).ok()?;
            let at = info.find("\"sha1\"")?;
            let sha: String = info[at + 6..]
                .chars()
                .skip_while(|c| !c.is_ascii_hexdigit())
                .take_while(|c| c.is_ascii_hexdigit())
                .take(12)
                .collect();
            (!sha.is_empty()).then_some(sha)
        })
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=TEND_COMMIT={commit}");
}
