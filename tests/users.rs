//! The user database, end to end: the static binary reads `/etc/passwd`
//! and `/etc/group` itself (src/sys/passwd.rs), the dynamic one asks
//! glibc. Both run the same units against the same crafted files, bind-
//! mounted over /etc in a mount namespace of their own (`unshare -m`, so
//! the host's files are untouched), and every service reports the
//! identity it got from inside (`id`, HOME, USER): the two must agree with
//! each other and with what the files say.

mod common;
use common::*;

use std::path::Path;
use std::process::Command;

/// Edge cases nss_files reads in its own way: comments, blank and indented
/// lines, a line without a gid, NIS compat markers, a name twice (the
/// first wins), a uid twice.
const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/sh
# tendalice:x:1:1::/commented:/bin/sh
short:x:4100

   tendalice:x:4101:4201:Alice,,,:/home/tendalice:/bin/sh
+tendnis::::::
-tendbob:x:4102:4202::/nis:/bin/sh
tendbob:x:4103:4203::/home/tendbob:/bin/sh
tendalice:x:4999:4999:second alice:/home/second:/bin/sh
tendtwin:x:4101:4204::/home/twin:/bin/sh
tendbare:x:4105:4205
tendquirk:x:4106:4206::/home/tendquirk:/bin/sh
";

/// Members with blanks before (dropped) and after (kept: `tendalice ` is
/// not tendalice), a look-alike name, the primary group listing its own
/// user, a gid twice, a bad gid, an indented line; and for tendquirk the
/// lines glibc's getgrouplist reads but its getgrnam skips (a comment, NIS
/// markers), the one place the two builds differ (src/sys/passwd.rs).
const GROUP: &str = "\
root:x:0:
tendalice:x:4201:tendalice
tendstaff:x:4301: tendbob,tendalice ,tendcarol
tendsudo:x:4302:tendalicex,xtendalice
tendbad:x:43o4:tendalice
  tendlast:x:4305:tendalice
tendsolo:x:4306
tenddup:x:4310:tendbob
tenddup2:x:4310:tendbob
# tendhidden:x:4303:tendquirk
+tendnisgrp:x:4307:tendquirk
-tendminus:x:4308:tendquirk
";

/// (unit, extra YAML, what the static build's service reports, what the
/// dynamic build's reports where glibc differs): uid, gid, the groups of
/// `id -G` sorted, HOME, USER.
const CASES: &[(&str, &str, &str, Option<&str>)] = &[
    ("alice", "user: tendalice\n", "4101 4201 4201,4305 /home/tendalice tendalice", None),
    ("bob", "user: tendbob\n", "4103 4203 4203,4301,4310 /home/tendbob tendbob", None),
    ("byuid", "user: 4101\n", "4101 4201 4201,4305 /home/tendalice tendalice", None),
    ("bare", "user: tendbare\n", "4105 4205 4205 tendbare", None),
    (
        "groups",
        "user: tendbob\ngroup: tendsolo\nsupplementary_groups: [tendlast, 7]\n",
        "4103 4306 7,4305,4306 /home/tendbob tendbob",
        None,
    ),
    (
        "quirk",
        "user: tendquirk\n",
        "4106 4206 4206 /home/tendquirk tendquirk",
        Some("4106 4206 4206,4303,4307,4308 /home/tendquirk tendquirk"),
    ),
];

fn files(env: &Env) -> [(String, &'static str); 3] {
    let write = |name: &str, text: &str| {
        let path = env.p(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    [
        (write("passwd", PASSWD), "/etc/passwd"),
        (write("group", GROUP), "/etc/group"),
        // glibc then asks only the files, as the static build does.
        (write("nsswitch.conf", "passwd: files\ngroup: files\n"), "/etc/nsswitch.conf"),
    ]
}

/// `BIN ARGS` in a mount namespace where the crafted files are /etc's.
fn in_namespace(env: &Env, bin: &Path, args: &[&str]) -> Command {
    let mounts: Vec<String> =
        files(env).iter().map(|(from, to)| format!("mount --bind {from} {to} && ")).collect();
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!("{}exec \"$0\" \"$@\"", mounts.concat()))
        .arg(bin)
        .args(args)
        .current_dir(env.root());
    cmd
}

/// What each case's service saw, under one binary.
fn reports(bin: &Path) -> Vec<String> {
    let env = Env::new();
    let report = "echo $(id -u) $(id -g) $(id -G | tr ' ' '\\n' | sort -n | paste -sd,) $HOME $USER";
    for (name, extra, _, _) in CASES {
        let script = put(report, &env.p(name));
        env.unit(name, &format!("{}restart: never\nclear_env: true\n{extra}", sh(&script)));
    }
    let units = env.units();
    let cmd = in_namespace(&env, bin, &["up", "--units", units.to_str().unwrap()]);
    let mut tend = Tend::spawn(cmd, env.root(), &format!("unshare -m {} up", bin.display()));
    let got = CASES.iter().map(|(name, _, _, _)| env.await_file(&tend, name).trim().to_string()).collect();
    shutdown(&env, &mut tend);
    got
}

/// `tend check` of one unit: (exit code, stderr).
fn check(bin: &Path, yaml: &str) -> (i32, String) {
    let env = Env::new();
    env.unit("svc", &format!("command: [\"true\"]\n{yaml}"));
    let units = env.units();
    let cmd = in_namespace(&env, bin, &["check", units.to_str().unwrap()]);
    let mut tend = Tend::spawn(cmd, env.root(), &format!("unshare -m {} check", bin.display()));
    let code = tend.exit_code(T);
    (code, tend.stderr())
}

#[test]
fn the_static_builds_user_database_gives_what_glibc_gives() {
    if skip_unless_root("the_static_builds_user_database_gives_what_glibc_gives") {
        return;
    }
    let static_bin = static_tend();
    let dynamic_bin = Path::new(tend_bin()).to_path_buf();
    for (bin, glibc) in [(&dynamic_bin, true), (&static_bin, false)] {
        let want: Vec<&str> =
            CASES.iter().map(|(_, _, want, differs)| differs.filter(|_| glibc).unwrap_or(want)).collect();
        assert_eq!(reports(bin), want, "identities under {}", bin.display());
        // Names nss_files never matches: commented, malformed, NIS markers.
        for (yaml, error) in [
            ("user: short\n", "no such user 'short'"),
            ("user: tendnis\n", "no such user 'tendnis'"),
            ("user: +tendnis\n", "no such user '+tendnis'"),
            ("group: tendhidden\n", "no such group 'tendhidden'"),
            ("group: tendbad\n", "no such group 'tendbad'"),
            ("user: 4102\n", "uid 4102 has no entry"),
        ] {
            let (code, stderr) = check(bin, yaml);
            assert_eq!(code, 2, "{yaml} under {}:\n{stderr}", bin.display());
            assert!(stderr.contains(error), "{yaml} under {}: want {error:?}:\n{stderr}", bin.display());
        }
        let (code, stderr) = check(bin, "user: tendalice\ngroup: tenddup\n");
        assert_eq!(code, 0, "under {}:\n{stderr}", bin.display());
    }
}
