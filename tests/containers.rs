//! tend in real containers (podman with runc): PID 1 for one command and for
//! a stack, `podman stop` and `podman kill`, the health check, the
//! shipped `packaging/Dockerfile` built for real, and the Kubernetes
//! manifests of `packaging/kubernetes/` run by `podman kube play`.
//!
//! No image registry is reachable, so images are made here: `podman import`
//! of a root file system with the static tend (packaging/build-static) and
//! Debian's static busybox. The Dockerfile's build stage runs on a builder
//! image whose toolchain is this machine's, mounted read-only (what the
//! `rust` image would provide: cargo, cc, the C library). Host facts
//! (runc, not crun, on a hybrid-cgroup host; ulimits at most the host's
//! hard limits) are in the README's Tests section.
//!
//! Every container, pod and image has a name with this process's pid and
//! is removed by the guard that made it. These tests need root and the
//! tools; in CI a missing tool fails the test instead of skipping it.

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// podman's flags for this host: runc (crun refuses hybrid cgroups), no
/// network, ulimits within the host's hard limits.
const RUN_FLAGS: [&str; 6] =
    ["--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"];

/// Longer than T: podman itself takes a moment per command on a busy host.
const PT: Duration = Duration::from_secs(60);

/// A release build of tend inside the build stage (about 1 min on 2 idle cores).
const BUILD_TIME: Duration = Duration::from_secs(900);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn podman(args: &[&str]) -> Out {
    let mut cmd = Command::new("podman");
    cmd.arg("--runtime").arg("runc").args(args).stdin(Stdio::null());
    run_cmd_within(cmd, &format!("podman {}", args.join(" ")), PT)
}

fn podman_ok(args: &[&str]) -> Out {
    let out = podman(args);
    assert_eq!(out.code, 0, "podman {} failed:\n{}", args.join(" "), out.show());
    out
}

/// Root and the tools, or a loud skip (a failure in CI: tests/common `skip`).
fn ready(test: &str) -> bool {
    if skip_unless_root(test) || skip_unless_installed(test, &["podman", "runc", "ldd"]) {
        return false;
    }
    // A static busybox (busybox-static): the images have no libc.
    let dynamic = Command::new("ldd").arg("/bin/busybox").output().is_ok_and(|o| o.status.success());
    if !Path::new("/bin/busybox").exists() || dynamic {
        return !skip(test, "no static /bin/busybox (package busybox-static)");
    }
    true
}

/// A unique name for this test's podman objects.
fn name(tag: &str) -> String {
    format!("tend-test-{tag}-{}", std::process::id())
}

/// A root file system: static busybox (with the applets the tests use),
/// the static tend at /usr/bin/tend, and `files` (path → contents).
fn rootfs_tar(env: &Env, with_tend: bool, files: &[(&str, String)]) -> PathBuf {
    let root = env.p("rootfs");
    for dir in ["bin", "usr/bin", "etc/tend/units", "tmp", "run", "proc", "sys", "dev"] {
        fs::create_dir_all(root.join(dir)).unwrap();
    }
    fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for applet in
        ["sh", "sleep", "cat", "echo", "ls", "ps", "grep", "date", "rm", "true", "env", "wc", "kill"]
    {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    if with_tend {
        fs::copy(static_tend(), root.join("usr/bin/tend")).unwrap();
    }
    fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n")
        .unwrap();
    fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
    for (path, text) in files {
        let target = root.join(path);
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        fs::write(target, text).unwrap();
    }
    fs::set_permissions(root.join("tmp"), std::os::unix::fs::PermissionsExt::from_mode(0o1777)).unwrap();
    let tar = tar_of(&root, &env.p("rootfs.tar"));
    fs::remove_dir_all(&root).unwrap();
    tar
}

/// `tar -cf TAR -C ROOT .`: a root file system for `podman import`.
fn tar_of(root: &Path, tar: &Path) -> PathBuf {
    let mut c = Command::new("tar");
    c.arg("-C").arg(root).arg("-cf").arg(tar).arg(".");
    let out = run_cmd(c, "tar");
    assert_eq!(out.code, 0, "{}", out.show());
    tar.to_path_buf()
}

/// Removes the podman objects a test made, whatever happened.
#[derive(Default)]
struct Cleanup {
    containers: Vec<String>,
    images: Vec<String>,
    kube: Vec<(PathBuf, PathBuf)>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for (conf, manifest) in &self.kube {
            let _ = Command::new("podman")
                .env("CONTAINERS_CONF", conf)
                .args(["kube", "down"])
                .arg(manifest)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        for c in &self.containers {
            let _ = Command::new("podman").args(["rm", "-f", "-t", "0", c]).output();
        }
        for i in &self.images {
            let _ = Command::new("podman").args(["rmi", "-f", i]).output();
        }
    }
}

/// `podman import` of `tar` as a new image.
fn import(cleanup: &mut Cleanup, tar: &Path, tag: &str) -> String {
    let image = format!("localhost/{}:latest", name(tag));
    podman_ok(&[
        "import",
        "--change",
        "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin",
        tar.to_str().unwrap(),
        &image,
    ]);
    cleanup.images.push(image.clone());
    image
}

fn exit_code_of(container: &str) -> i32 {
    let out = podman_ok(&["inspect", container, "--format", "{{.State.ExitCode}}"]);
    out.stdout.trim().parse().unwrap_or_else(|_| panic!("exit code of {container}: {}", out.show()))
}

fn is_running(container: &str) -> bool {
    podman(&["inspect", container, "--format", "{{.State.Running}}"]).stdout.trim() == "true"
}

/// Start a detached container running `cmd` in `image`.
fn run_detached(cleanup: &mut Cleanup, image: &str, tag: &str, cmd: &[&str]) -> String {
    let container = name(tag);
    cleanup.containers.push(container.clone());
    let mut args = vec!["run", "-d", "--name", &container];
    args.extend(RUN_FLAGS);
    args.push(image);
    args.extend(cmd);
    podman_ok(&args);
    container
}

fn poll(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn run_as_pid1_passes_the_exit_code_on_and_reaps_orphans() {
    if !ready("run_as_pid1_passes_the_exit_code_on_and_reaps_orphans") {
        return;
    }
    let env = Env::new();
    let mut cleanup = Cleanup::default();
    let image = import(&mut cleanup, &rootfs_tar(&env, true, &[]), "run");
    // Two orphans (their parent subshells exit at once) end a moment later;
    // then the main process counts zombies until none is left (bounded),
    // and exits 42. Only PID 1 can reap the orphans.
    let script = r#"
        echo "pid1: $(cat /proc/1/comm)"
        ( sleep 0.3 & ) ; ( sleep 0.3 & )
        i=0; z=1
        while [ $i -lt 200 ]; do
            z=$(grep -l '^[0-9]* ([^)]*) Z' /proc/[0-9]*/stat 2>/dev/null | wc -l)
            orphans=$(grep -l '(sleep)' /proc/[0-9]*/stat 2>/dev/null | wc -l)
            [ "$orphans" -eq 0 ] && [ "$z" -eq 0 ] && break
            sleep 0.05; i=$((i+1))
        done
        echo "zombies: $z after $i polls"
        exit 42
    "#;
    let container = name("run");
    cleanup.containers.push(container.clone());
    let mut args = vec!["run", "--name", &container];
    args.extend(RUN_FLAGS);
    args.extend([image.as_str(), "/usr/bin/tend", "run", "--", "sh", "-c", script]);
    let out = podman(&args);
    assert_eq!(out.code, 42, "the command's exit code is the container's:\n{}", out.show());
    assert!(out.stdout.contains("pid1: tend"), "tend is PID 1:\n{}", out.show());
    assert!(out.stdout.contains("zombies: 0"), "orphans reaped:\n{}", out.show());
}

#[test]
fn run_forwards_podman_stops_sigterm_and_exits_within_the_grace_period() {
    if !ready("run_forwards_podman_stops_sigterm_and_exits_within_the_grace_period") {
        return;
    }
    let env = Env::new();
    let mut cleanup = Cleanup::default();
    let image = import(&mut cleanup, &rootfs_tar(&env, true, &[]), "stop");
    let script = "trap 'echo got TERM; exit 7' TERM; echo up; while :; do sleep 0.05; done";
    let container =
        run_detached(&mut cleanup, &image, "stop", &["/usr/bin/tend", "run", "--", "sh", "-c", script]);
    poll("the command to start", PT, || podman(&["logs", &container]).stdout.contains("up"));
    let start = Instant::now();
    podman_ok(&["stop", "-t", "20", &container]);
    let took = start.elapsed();
    assert_eq!(exit_code_of(&container), 7, "the handler's exit status, not SIGKILL's 137");
    assert!(took < Duration::from_secs(15), "stopped within the grace period (took {took:?})");
    assert!(podman(&["logs", &container]).stdout.contains("got TERM"));
}

const THREE_UNITS: [(&str, &str); 3] = [
    (
        "etc/tend/units/db.yaml",
        "command: [sh, -c, \"trap 'echo db: clean stop; exit 0' TERM; while :; do sleep 0.05; done\"]\nstop_timeout: 5s\n",
    ),
    (
        "etc/tend/units/web.yaml",
        "command: [sh, -c, \"trap 'echo web: clean stop; exit 0' TERM; while :; do sleep 0.05; done\"]\ndepends_on: [db]\nstop_timeout: 5s\n",
    ),
    (
        "etc/tend/units/worker.yaml",
        "command: [sh, -c, \"trap 'echo worker: clean stop; exit 0' TERM; while :; do sleep 0.05; done\"]\nstop_timeout: 5s\n",
    ),
];

#[test]
fn up_as_pid1_with_three_services_health_checks_survives_usr1_and_stops_gracefully() {
    if !ready("up_as_pid1_with_three_services_health_checks_survives_usr1_and_stops_gracefully") {
        return;
    }
    let env = Env::new();
    let mut cleanup = Cleanup::default();
    let files: Vec<(&str, String)> = THREE_UNITS.iter().map(|(p, t)| (*p, t.to_string())).collect();
    let image = import(&mut cleanup, &rootfs_tar(&env, true, &files), "up");
    let container =
        run_detached(&mut cleanup, &image, "up", &["/usr/bin/tend", "up", "--units", "/etc/tend/units"]);
    // `tend status` as the health check: exit 0 once all three run.
    poll("tend status to exit 0 in the container", PT, || {
        podman(&["exec", &container, "tend", "status"]).code == 0
    });
    let out = podman_ok(&["exec", &container, "tend", "status", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 3, "{}", out.stdout);
    assert!(list.as_array().unwrap().iter().all(|s| s["state"] == "running"), "{}", out.stdout);
    // Unhealthy → exit 1: the health check reports it.
    podman_ok(&["exec", &container, "tend", "stop", "worker"]);
    assert_eq!(podman(&["exec", &container, "tend", "status"]).code, 1);
    podman_ok(&["exec", &container, "tend", "start", "worker"]);
    assert_eq!(podman(&["exec", &container, "tend", "status"]).code, 0);

    // A stray SIGUSR1 (a logrotate postrotate habit) does not end PID 1.
    podman_ok(&["kill", "-s", "USR1", &container]);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(1) {
        assert!(
            is_running(&container),
            "SIGUSR1 ended the container:\n{}",
            podman(&["logs", &container]).show()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(podman(&["exec", &container, "tend", "status"]).code, 0, "services untouched by SIGUSR1");

    let start = Instant::now();
    podman_ok(&["stop", "-t", "30", &container]);
    let took = start.elapsed();
    assert_eq!(exit_code_of(&container), 0, "{}", podman(&["logs", &container]).show());
    assert!(took < Duration::from_secs(20), "stopped within the grace period (took {took:?})");
    let logs = podman(&["logs", &container]);
    let text = format!("{}{}", logs.stdout, logs.stderr);
    for service in ["db", "web", "worker"] {
        assert!(
            text.contains(&format!("{service}: clean stop")),
            "{service} stopped by its handler:\n{text}"
        );
    }
    assert!(!text.contains("SIGKILL"), "nothing needed SIGKILL:\n{text}");
    // Dependents first: web's clean stop before db's.
    let (web, db) = (text.find("web: clean stop").unwrap(), text.find("db: clean stop").unwrap());
    assert!(web < db, "web (depends on db) stopped before db:\n{text}");
}

/// A builder image that stands for the `rust` image: the host's toolchain
/// and C library, mounted read-only into its RUN steps.
fn builder_image(env: &Env, cleanup: &mut Cleanup) -> (String, Vec<String>) {
    let root = env.p("builder");
    for dir in ["usr", "etc/alternatives", "tmp", "cargo/bin", "cargo/registry", "rustup", "root"] {
        fs::create_dir_all(root.join(dir)).unwrap();
    }
    // Debian's merged /usr.
    for (link, to) in [("bin", "usr/bin"), ("lib", "usr/lib"), ("lib64", "usr/lib64"), ("sbin", "usr/sbin")] {
        std::os::unix::fs::symlink(to, root.join(link)).unwrap();
    }
    fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(root.join("etc/ld.so.cache"), "").unwrap();
    let tar = tar_of(&root, &env.p("builder.tar"));
    let image = format!("localhost/{}:latest", name("builder"));
    podman_ok(&[
        "import",
        "--change",
        "ENV PATH=/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "--change",
        "ENV CARGO_HOME=/cargo",
        "--change",
        "ENV RUSTUP_HOME=/rustup",
        tar.to_str().unwrap(),
        &image,
    ]);
    cleanup.images.push(image.clone());
    let home = PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()));
    let cargo_home = std::env::var_os("CARGO_HOME").map(PathBuf::from).unwrap_or_else(|| home.join(".cargo"));
    let rustup_home =
        std::env::var_os("RUSTUP_HOME").map(PathBuf::from).unwrap_or_else(|| home.join(".rustup"));
    let volumes = vec![
        "/usr:/usr:ro".to_string(),
        "/etc/alternatives:/etc/alternatives:ro".to_string(),
        "/etc/ld.so.cache:/etc/ld.so.cache:ro".to_string(),
        format!("{}:/rustup:ro", rustup_home.display()),
        format!("{}:/cargo/bin:ro", cargo_home.join("bin").display()),
        // Crates come from the host's cache (no network in the build).
        format!("{}:/cargo/registry", cargo_home.join("registry").display()),
    ];
    (image, volumes)
}

#[test]
fn the_shipped_dockerfile_builds_and_its_image_runs_the_stack() {
    if !ready("the_shipped_dockerfile_builds_and_its_image_runs_the_stack") {
        return;
    }
    let env = Env::new();
    let mut cleanup = Cleanup::default();
    let base = import(&mut cleanup, &rootfs_tar(&env, false, &[]), "base");
    let (builder, volumes) = builder_image(&env, &mut cleanup);
    let image = format!("localhost/{}:latest", name("built"));
    cleanup.images.push(image.clone());
    let commit = String::from_utf8_lossy(&Command::new(tend_bin()).arg("--version").output().unwrap().stdout)
        .trim()
        .to_string();
    let commit = commit.split("commit ").nth(1).unwrap_or("unknown").trim_end_matches(')').to_string();
    let mut args: Vec<String> = [
        "build",
        "--pull=never",
        // No cache layers left behind (a run compiles from scratch anyway).
        "--layers=false",
        "--format",
        "docker",
        "--network",
        "none",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        "-f",
        "packaging/Dockerfile",
    ]
    .map(String::from)
    .to_vec();
    for v in &volumes {
        args.extend(["-v".to_string(), v.clone()]);
    }
    for (k, v) in [
        ("RUST_IMAGE", builder.as_str()),
        ("BASE_IMAGE", base.as_str()),
        ("CARGO_FLAGS", "--locked --offline"),
        ("TEND_COMMIT", commit.as_str()),
    ] {
        args.extend(["--build-arg".to_string(), format!("{k}={v}")]);
    }
    args.extend(["-t".to_string(), image.clone(), repo().to_str().unwrap().to_string()]);
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = Command::new("podman");
    cmd.args(["--runtime", "runc"]).args(&arg_refs).current_dir(repo()).stdin(Stdio::null());
    let out = run_cmd_within(cmd, "podman build", BUILD_TIME);
    assert_eq!(out.code, 0, "podman build -f packaging/Dockerfile failed:\n{}", out.show());

    // .dockerignore kept the host's build output and .git out of the
    // context: the same context, copied whole into a throwaway image.
    let probe_file = env.p("Containerfile.context");
    fs::write(&probe_file, format!("FROM {base}\nCOPY . /ctx\n")).unwrap();
    let probe = format!("localhost/{}:latest", name("context"));
    cleanup.images.push(probe.clone());
    let out = podman(&[
        "build",
        "--pull=never",
        "--layers=false",
        "--network",
        "none",
        "-f",
        probe_file.to_str().unwrap(),
        "-t",
        &probe,
        repo().to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.show());
    let mut ls_args = vec!["run", "--rm"];
    ls_args.extend(RUN_FLAGS);
    ls_args.extend([probe.as_str(), "ls", "-a", "/ctx"]);
    let listing = podman_ok(&ls_args).stdout;
    assert!(listing.lines().any(|l| l == "Cargo.toml"), "the context is the repository:\n{listing}");
    for kept_out in [".git", "target"] {
        assert!(!listing.lines().any(|l| l == kept_out), "the context had {kept_out}:\n{listing}");
    }

    // The image: HEALTHCHECK, STOPSIGNAL, the entrypoint; then the example stack.
    let config = podman_ok(&["inspect", &image, "--format", "{{json .Config}}"]).stdout;
    let healthcheck = podman_ok(&["inspect", &image, "--format", "{{json .HealthCheck}}"]).stdout;
    assert!(healthcheck.contains("/usr/bin/tend") && healthcheck.contains("status"), "{healthcheck}");
    assert!(config.contains("SIGTERM"), "STOPSIGNAL: {config}");
    let container = run_detached(&mut cleanup, &image, "built", &[]);
    let version = podman_ok(&["exec", &container, "tend", "--version"]).stdout;
    assert!(version.contains(&commit), "tend --version names the commit {commit}: {version}");
    let file = podman_ok(&["exec", &container, "ls", "-l", "/usr/bin/tend"]).stdout;
    assert!(file.contains("tend"), "{file}");
    // The example stack: web is ready after db and migrate.
    poll("the example stack to be healthy", PT, || podman(&["healthcheck", "run", &container]).code == 0);
    podman_ok(&["stop", "-t", "30", &container]);
    assert_eq!(exit_code_of(&container), 0, "{}", podman(&["logs", &container]).show());
}

#[test]
fn kubernetes_manifest_runs_under_kube_play_and_kube_down_stops_it_gracefully() {
    if !ready("kubernetes_manifest_runs_under_kube_play_and_kube_down_stops_it_gracefully") {
        return;
    }
    let env = Env::new();
    let mut cleanup = Cleanup::default();
    let image = import(&mut cleanup, &rootfs_tar(&env, true, &[]), "kube");
    // kube play has no --ulimit flag: the defaults come from containers.conf.
    let conf = env.p("containers.conf");
    fs::write(
        &conf,
        "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n[engine]\nruntime = \"runc\"\n",
    )
    .unwrap();
    // The manifest as shipped, with the image a user would set (kustomize
    // `images:` does the same).
    let shipped = fs::read_to_string(repo().join("packaging/kubernetes/tend.yaml")).unwrap();
    assert!(
        shipped.contains("image: tend-example:latest"),
        "the manifest's image line changed; update this test"
    );
    let deployment = format!("tend-example-{}", std::process::id());
    let manifest_text = shipped
        .replace("image: tend-example:latest", &format!("image: {image}"))
        .replace("name: tend-example\n", &format!("name: {deployment}\n"))
        .replace("name: tend-example-units", &format!("name: {deployment}-units"));
    let manifest = env.p("tend.yaml");
    fs::write(&manifest, &manifest_text).unwrap();
    cleanup.kube.push((conf.clone(), manifest.clone()));

    let kube = |args: &[&str]| {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", &conf).args(args).stdin(Stdio::null());
        run_cmd_within(c, &format!("podman {}", args.join(" ")), PT)
    };
    let out = kube(&["kube", "play", "--network", "none", manifest.to_str().unwrap()]);
    assert_eq!(out.code, 0, "kube play:\n{}", out.show());
    // Our container (beside the pod's infra container): `DEPLOYMENT-pod…-app`.
    let ps = kube(&["ps", "-a", "--format", "{{.Names}}"]);
    let container = ps
        .stdout
        .lines()
        .find(|n| n.starts_with(&deployment) && n.ends_with("-app"))
        .unwrap_or_else(|| panic!("no container of {deployment}:\n{}", ps.show()))
        .to_string();
    let pod = kube(&["inspect", &container, "--format", "{{.Pod}}"]).stdout.trim().to_string();
    // The readiness probe's command, by hand: every service healthy.
    poll("tend status to exit 0 in the pod", PT, || {
        kube(&["exec", &container, "/usr/bin/tend", "status"]).code == 0
    });
    let out = kube(&["exec", &container, "/usr/bin/tend", "status", "--json"]);
    let list: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|_| panic!("{}", out.show()));
    let mut names: Vec<&str> = list.as_array().unwrap().iter().filter_map(|s| s["name"].as_str()).collect();
    names.sort();
    assert_eq!(names, ["cache", "web", "worker"], "the units from the ConfigMap");

    // Going down gracefully. podman before 5.1 SIGKILLs every container on
    // `kube down` without a stop signal or grace period (podman issues
    // #19135, #21767; fixed by PR #22398): there, `podman pod stop` (which
    // sends each container's stop signal and waits its stop timeout) comes
    // first, as podman's own advice is. Either way tend gets SIGTERM, stops
    // web before cache, and exits 0 (it would exit 1 had it needed SIGKILL;
    // the runtime's SIGKILL would be 137).
    let version = kube(&["version", "--format", "{{.Client.Version}}"]).stdout;
    let mut parts = version.trim().split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    let kube_down_is_graceful = (major, minor) >= (5, 1);
    let start = Instant::now();
    if !kube_down_is_graceful {
        let out = kube(&["pod", "stop", &pod]);
        assert_eq!(out.code, 0, "pod stop:\n{}", out.show());
        let logs = kube(&["logs", &container]);
        let text = format!("{}{}", logs.stdout, logs.stderr);
        assert!(text.contains("shutting down (SIGTERM)"), "tend got SIGTERM:\n{text}");
        assert!(!text.contains("SIGKILL"), "nothing needed SIGKILL:\n{text}");
        let (web, cache) = (text.find("web: stopped"), text.find("cache: stopped"));
        assert!(web.is_some() && cache.is_some() && web < cache, "web stopped before cache:\n{text}");
        assert_eq!(exit_code_of(&container), 0, "tend exited 0 (graceful):\n{text}");
    }
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() - 1;
    let out = kube(&["kube", "down", manifest.to_str().unwrap()]);
    assert_eq!(out.code, 0, "kube down:\n{}", out.show());
    let took = start.elapsed();
    assert!(took < Duration::from_secs(45), "down within terminationGracePeriodSeconds (took {took:?})");
    if kube_down_is_graceful {
        let events = kube(&[
            "events",
            "--stream=false",
            "--since",
            &since.to_string(),
            "--filter",
            "event=died",
            "--format",
            "{{.Name}} {{.ContainerExitCode}}",
        ]);
        assert!(
            events.stdout.lines().any(|l| l == format!("{container} 0")),
            "tend exited 0 on kube down:\n{}",
            events.show()
        );
    } else {
        // The pod was already down; kube down removed it.
        assert!(kube(&["inspect", &container]).code != 0, "kube down removed the container");
    }
}

/// A ConfigMap volume as the kubelet lays it out (podman kube play writes
/// plain files instead): each key a symlink through `..data` into a
/// timestamped folder, swapped atomically on update. The units must load
/// through those links, and the dot folders must not count as units.
#[test]
fn units_load_from_a_configmap_volume_as_the_kubelet_lays_it_out() {
    let env = Env::new();
    let units = env.units();
    let stamp = units.join("..2026_12_02_00_00_00.000000001");
    fs::create_dir(&stamp).unwrap();
    for (name, yaml) in
        [("web.yaml", "command: [sleep, '600']\n"), ("worker.yaml", "command: [sleep, '600']\n")]
    {
        fs::write(stamp.join(name), yaml).unwrap();
        std::os::unix::fs::symlink(Path::new("..data").join(name), units.join(name)).unwrap();
    }
    std::os::unix::fs::symlink(stamp.file_name().unwrap(), units.join("..data")).unwrap();
    let (code, stderr) = env.check();
    assert_eq!(code, 0, "{stderr}");
    let mut tend = env.up();
    wait_running(&env, &tend, &["web", "worker"]);
    let (_, list) = status_json(&env, &[]);
    assert_eq!(list.len(), 2, "only the two keys are units: {list:?}");
    tend.signal(libc::SIGTERM);
    assert_eq!(tend.exit_code(T), 0, "{}", tend.dump());
}
