//! The Debian package, built as a user builds it (`packaging/deb/build`:
//! cargo-deb over the static binary, its man pages and completions), read
//! back with dpkg-deb, checked by lintian, then installed, removed and
//! purged with dpkg in a scratch root (a chroot with dpkg and busybox, so
//! this machine's own package database is never touched).

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const BUILD_TIME: Duration = Duration::from_secs(300);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn cmd(program: &str, args: &[&str]) -> Out {
    let mut c = Command::new(program);
    c.args(args);
    run_cmd_within(c, &format!("{program} {}", args.join(" ")), BUILD_TIME)
}

fn ok(out: Out, what: &str) -> Out {
    assert_eq!(out.code, 0, "{what} failed:\n{}", out.show());
    out
}

/// `packaging/deb/build --no-build` (the static binary CI built): the .deb.
fn build_package() -> PathBuf {
    static_tend();
    let out =
        ok(cmd(repo().join("packaging/deb/build").to_str().unwrap(), &["--no-build"]), "packaging/deb/build");
    let deb = out
        .stdout
        .lines()
        .rev()
        .find(|l| l.ends_with(".deb"))
        .unwrap_or_else(|| panic!("no .deb named in the output:\n{}", out.show()));
    let path = repo().join(deb.trim());
    assert!(path.exists(), "{} missing", path.display());
    path
}

/// Copy `program` and the libraries `ldd` lists into `root`.
fn copy_with_libraries(program: &str, root: &Path) {
    let target = root.join(program.trim_start_matches('/'));
    fs::create_dir_all(target.parent().unwrap()).unwrap();
    fs::copy(program, &target).unwrap_or_else(|e| panic!("copy {program}: {e}"));
    let ldd = cmd("ldd", &[program]);
    for word in ldd.stdout.split_whitespace().filter(|w| w.starts_with('/')) {
        let to = root.join(word.trim_start_matches('/'));
        if !to.exists() {
            fs::create_dir_all(to.parent().unwrap()).unwrap();
            fs::copy(word, &to).unwrap_or_else(|e| panic!("copy {word}: {e}"));
        }
    }
}

/// A root with an empty dpkg database, dpkg, GNU tar and busybox for the
/// shell and the rest of what dpkg expects in PATH.
fn scratch_root(env: &Env) -> PathBuf {
    let root = env.p("root");
    for dir in [
        "bin",
        "sbin",
        "tmp",
        "etc/dpkg",
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "var/lib/dpkg/triggers",
    ] {
        fs::create_dir_all(root.join(dir)).unwrap();
    }
    fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    fs::write(root.join("var/lib/dpkg/available"), "").unwrap();
    fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for applet in
        ["sh", "rm", "mv", "cp", "ls", "cat", "mkdir", "rmdir", "ln", "chmod", "find", "sed", "grep", "diff"]
    {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    // dpkg insists on finding these in PATH; nothing here needs them.
    std::os::unix::fs::symlink("/bin/busybox", root.join("sbin/start-stop-daemon")).unwrap();
    fs::write(root.join("sbin/ldconfig"), "#!/bin/sh\nexit 0\n").unwrap();
    fs::set_permissions(root.join("sbin/ldconfig"), std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .unwrap();
    for program in
        ["/usr/bin/dpkg", "/usr/bin/dpkg-deb", "/usr/bin/dpkg-query", "/usr/bin/dpkg-split", "/usr/bin/tar"]
    {
        copy_with_libraries(program, &root);
    }
    root
}

fn in_root(root: &Path, args: &[&str]) -> Out {
    let mut c = Command::new("chroot");
    c.arg(root).args(args).env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    run_cmd_within(c, &format!("chroot {} {}", root.display(), args.join(" ")), BUILD_TIME)
}

/// Every file and folder under `root`, relative, sorted.
fn tree(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(root).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn debian_package_builds_passes_lintian_installs_and_purges_cleanly() {
    let test = "debian_package_builds_passes_lintian_installs_and_purges_cleanly";
    if skip_unless_root(test)
        || skip_unless_installed(test, &["cargo-deb", "dpkg", "dpkg-deb", "lintian", "chroot", "ldd"])
        || (!Path::new("/bin/busybox").exists() && skip(test, "no /bin/busybox (busybox-static)"))
    {
        return;
    }
    let deb = build_package();
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        deb.file_name().unwrap().to_str().unwrap().starts_with(&format!("tend_{version}-1_")),
        "{}",
        deb.display()
    );

    // What is in it.
    let contents = ok(cmd("dpkg-deb", &["--contents", deb.to_str().unwrap()]), "dpkg-deb --contents").stdout;
    let paths: Vec<&str> = contents
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(|p| p.trim_start_matches("./"))
        .collect();
    for want in [
        "usr/bin/tend",
        "lib/systemd/system/tend.service",
        "usr/share/man/man1/tend.1.gz",
        "usr/share/man/man1/tend-up.1.gz",
        "usr/share/man/man5/tend.unit.5.gz",
        "usr/share/bash-completion/completions/tend",
        "usr/share/zsh/vendor-completions/_tend",
        "usr/share/fish/vendor_completions.d/tend.fish",
        "etc/tend/units/README",
        "usr/share/doc/tend/copyright",
        "usr/share/doc/tend/changelog.Debian.gz",
    ] {
        assert!(paths.contains(&want), "{want} not in the package:\n{contents}");
    }
    let control = ok(cmd("dpkg-deb", &["--info", deb.to_str().unwrap()]), "dpkg-deb --info").stdout;
    assert!(control.contains("Package: tend"), "{control}");
    assert!(!control.contains("Depends:"), "the static binary needs no library:\n{control}");
    let conffiles = ok(cmd("dpkg-deb", &["--info", deb.to_str().unwrap(), "conffiles"]), "conffiles").stdout;
    assert_eq!(conffiles.trim(), "/etc/tend/units/README");

    // lintian: no error and no warning (overrides are shipped, with why).
    let lint = cmd("lintian", &[deb.to_str().unwrap()]);
    let complaints: Vec<&str> =
        lint.stdout.lines().filter(|l| l.starts_with("E:") || l.starts_with("W:")).collect();
    assert!(complaints.is_empty() && lint.code == 0, "lintian:\n{}", lint.show());

    // Install into a scratch root.
    let env = Env::new();
    let root = scratch_root(&env);
    let before = tree(&root);
    fs::copy(&deb, root.join("tmp/tend.deb")).unwrap();
    ok(in_root(&root, &["dpkg", "-i", "/tmp/tend.deb"]), "dpkg -i");
    let version_line = ok(in_root(&root, &["/usr/bin/tend", "--version"]), "tend --version").stdout;
    let ours = ok(cmd(tend_bin(), &["--version"]), "tend --version").stdout;
    assert_eq!(version_line, ours, "the packaged binary is this build");
    for file in ["usr/share/man/man1/tend.1.gz", "etc/tend/units/README", "lib/systemd/system/tend.service"] {
        assert!(root.join(file).is_file(), "{file} not installed");
    }
    assert_eq!(
        fs::read(root.join("lib/systemd/system/tend.service")).unwrap(),
        fs::read(repo().join("systemd/tend.service")).unwrap(),
        "the unit is installed as shipped"
    );
    // The installed binary reads the installed (empty) units folder.
    let check = in_root(&root, &["/usr/bin/tend", "check", "/etc/tend/units"]);
    assert!(
        check.code == 0 || check.stderr.contains("no units"),
        "tend check in the root:\n{}",
        check.show()
    );
    // The installed man pages answer the unit's Documentation= (verify runs
    // man(1) with this MANPATH), and its ExecStart= paths exist in the root.
    if have("systemd-analyze") {
        let unit = fs::read_to_string(root.join("lib/systemd/system/tend.service")).unwrap();
        let tend_in_root = root.join("usr/bin/tend");
        let copy = env.p("tend.service");
        fs::write(&copy, unit.replace("/usr/bin/tend", tend_in_root.to_str().unwrap())).unwrap();
        let mut c = Command::new("systemd-analyze");
        c.args(["verify", "--man=yes"]).arg(&copy).env("MANPATH", root.join("usr/share/man"));
        let verify = run_cmd_within(c, "systemd-analyze verify", BUILD_TIME);
        let missing: Vec<&str> = verify.stderr.lines().filter(|l| l.contains("man ")).collect();
        assert!(missing.is_empty(), "Documentation= pages the package does not install: {missing:?}");
    }

    // Remove: everything but the conffile goes; purge: that too.
    ok(in_root(&root, &["dpkg", "-r", "tend"]), "dpkg -r");
    assert!(!root.join("usr/bin/tend").exists() && !root.join("usr/share/man/man1/tend.1.gz").exists());
    assert!(root.join("etc/tend/units/README").exists(), "a removed package keeps its conffile");
    ok(in_root(&root, &["dpkg", "-P", "tend"]), "dpkg -P");
    let query = in_root(&root, &["dpkg-query", "-W", "tend"]);
    assert_ne!(query.code, 0, "tend still known to dpkg:\n{}", query.show());
    fs::remove_file(root.join("tmp/tend.deb")).unwrap();
    let after: Vec<String> = tree(&root).into_iter().filter(|p| !p.starts_with("var/lib/dpkg")).collect();
    let before: Vec<String> = before.into_iter().filter(|p| !p.starts_with("var/lib/dpkg")).collect();
    let left: Vec<&String> = after.iter().filter(|p| !before.contains(p)).collect();
    assert!(left.is_empty(), "left behind after purge: {left:?}");
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let out = ok(cmd(tend_bin(), &["--version"]), "tend --version");
    let version = out.stdout.trim();
    assert!(version.starts_with(&format!("tend {} (commit ", env!("CARGO_PKG_VERSION"))), "{version}");
    let head = cmd("git", &["-C", repo().to_str().unwrap(), "rev-parse", "--short=12", "HEAD"]);
    if head.code != 0 {
        // A source tree without git: build.rs took TEND_COMMIT, the crate's
        // .cargo_vcs_info.json, or said "unknown"; never nothing.
        let commit = version.split("(commit ").nth(1).unwrap_or("").trim_end_matches(')');
        assert!(!commit.is_empty(), "{version}");
        return;
    }
    assert_eq!(version, format!("tend {} (commit {})", env!("CARGO_PKG_VERSION"), head.stdout.trim()));
}
