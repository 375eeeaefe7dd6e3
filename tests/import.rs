//! README "Importing from other tools": `tend import` on real files — a
//! Procfile as foreman documents it (with its .env), a docker-compose.yml
//! with command, environment, env_file, working_dir, user, depends_on
//! conditions and a healthcheck, a supervisord.conf with several programs,
//! and the .service files Debian ships for redis-server and nginx. Each
//! import passes `tend check`; the Procfile and compose stacks also run
//! under `tend up`; what cannot be translated is printed with its line; an
//! existing unit is never overwritten without --force.

mod common;

use common::*;
use std::fs;
use std::path::Path;
use std::process::Command;

/// `tend import ARGS` with cwd = the test's dir.
fn import(env: &Env, args: &[&str]) -> Out {
    let mut cmd = Command::new(tend_bin());
    cmd.arg("import").args(args).current_dir(env.root()).env_remove("TEND_UNITS");
    run_cmd(cmd, &format!("tend import {}", args.join(" ")))
}

fn check(dir: &Path) -> Out {
    let mut cmd = Command::new(tend_bin());
    cmd.arg("check").arg(dir);
    run_cmd(cmd, "tend check")
}

/// The line a service wrote to `path` (by `echo … > path`), once it is
/// whole: the shell creates the file before echo writes into it.
fn await_line(tend: &Tend, path: &Path) -> String {
    tend.wait_until(T, &format!("a line in {}", path.display()), || read(path).ends_with('\n'));
    read(path).trim().to_owned()
}

/// The text of units/NAME.yaml.
fn sh_out(script: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn unit(env: &Env, name: &str) -> String {
    read(env.units().join(format!("{name}.yaml")))
}

#[test]
fn procfile_as_foreman_runs_it() {
    let env = Env::new();
    let app = env.p("app");
    fs::create_dir(&app).unwrap();
    // foreman reads .env beside the Procfile; PORT is its own, per process type.
    fs::write(app.join(".env"), "GREETING=hello\n").unwrap();
    fs::write(
        app.join("Procfile"),
        "# foreman format: NAME: COMMAND, run by sh in this folder\nweb: echo \"web on $PORT says $GREETING\" > web.out; exec sleep 1000\nworker:   exec sleep 1000\n\nclock: sh -c 'echo tick $PORT > clock.out; exec sleep 1000'\n",
    )
    .unwrap();
    let out = import(&env, &["procfile", "app/Procfile", "-o", "units"]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert_eq!(out.stdout.lines().count(), 3, "{}", out.show());
    assert!(out.stderr.is_empty(), "nothing is left untranslated:\n{}", out.show());
    assert!(unit(&env, "worker").contains("command: [sleep, \"1000\"]"), "{}", unit(&env, "worker"));
    let checked = check(&env.units());
    assert_eq!(checked.code, 0, "{}", checked.show());
    let mut tend = env.up();
    assert_eq!(await_line(&tend, &app.join("web.out")), "web on 5000 says hello");
    assert_eq!(await_line(&tend, &app.join("clock.out")), "tick 5200");
    wait_running(&env, &tend, &["web", "worker", "clock"]);
    shutdown(&env, &mut tend);
}

#[test]
fn compose_with_conditions_healthcheck_and_env_runs_in_order() {
    if skip_unless_root("compose_with_conditions_healthcheck_and_env_runs_in_order") {
        return;
    }
    let env = Env::new();
    // The compose project (with its env_file) in a folder only root can
    // write; the services report into the test's dir (web runs as nobody).
    let project = env.p("project");
    fs::create_dir(&project).unwrap();
    let reports = env.root().to_path_buf();
    let dir = reports.display();
    fs::write(project.join("web.env"), "# env_file, compose style\nMODE=production\n").unwrap();
    let compose = format!(
        r#"name: shop
services:
  db:
    image: postgres:16
    command: ["sh", "-c", "sleep 0.3; touch {dir}/db.ready; exec sleep 1000"]
    environment:
      POSTGRES_PASSWORD: example
    healthcheck:
      test: ["CMD", "test", "-e", "{dir}/db.ready"]
      interval: 200ms
      timeout: 2s
      retries: 5
    volumes:
      - pgdata:/var/lib/postgresql/data
  migrate:
    image: shop:latest
    command: sh -c 'echo migrated > {dir}/migrate.out'
    depends_on:
      db:
        condition: service_healthy
  web:
    build: .
    command: ["sh", "-c", "id -un > {dir}/web.user; echo $$MODE $$LEVEL > {dir}/web.env.out; pwd > {dir}/web.pwd; exec sleep 1000"]
    working_dir: /tmp
    user: nobody
    environment:
      - LEVEL=debug
    env_file: web.env
    depends_on:
      db:
        condition: service_healthy
      migrate:
        condition: service_completed_successfully
    ports:
      - "8000:8000"
    restart: unless-stopped
    stop_grace_period: 30s
volumes:
  pgdata:
"#
    );
    fs::write(project.join("docker-compose.yml"), &compose).unwrap();
    let out = import(&env, &["compose", "project/docker-compose.yml", "-o", "units"]);
    assert_eq!(out.code, 0, "{}", out.show());
    // What could not be translated, each with its line.
    for (line, text) in [
        (4, "image: postgres:16"),
        (13, "volumes:"),
        (16, "image: shop:latest"),
        (22, "build: ."),
        (34, "ports:"),
        (38, "volumes:"),
    ] {
        assert!(
            out.stderr.contains(&format!("docker-compose.yml:{line}: {text}")),
            "no note for line {line}:\n{}",
            out.show()
        );
    }
    // `$$` is compose's escape for a `$`: the shell sees $MODE, no note.
    assert!(!out.stderr.contains("substitutes"), "{}", out.show());
    let web = unit(&env, "web");
    assert!(web.contains("depends_on: {db: ready, migrate: completed}"), "{web}");
    assert!(unit(&env, "migrate").contains("type: oneshot"), "{}", unit(&env, "migrate"));
    assert!(unit(&env, "db").contains("ready_check:"), "{}", unit(&env, "db"));
    let checked = check(&env.units());
    assert_eq!(checked.code, 0, "{}", checked.show());
    let mut tend = env.up();
    assert_eq!(await_line(&tend, &reports.join("web.pwd")), "/tmp");
    // migrate's echo finished before it exited, and it had to complete first.
    assert_eq!(read(reports.join("migrate.out")).trim(), "migrated", "web started before migrate completed");
    assert!(reports.join("db.ready").exists(), "web started before db was healthy");
    assert_eq!(await_line(&tend, &reports.join("web.user")), "nobody");
    assert_eq!(await_line(&tend, &reports.join("web.env.out")), "production debug");
    shutdown(&env, &mut tend);
}

/// compose's `scale` and `deploy.replicas` become a pool (`instances:`),
/// 0 becomes `enabled: false`; a `%` in a pool's command is kept literal.
#[test]
fn compose_scale_and_replicas_become_instances() {
    let env = Env::new();
    let dir = env.root().display().to_string();
    let compose = format!(
        r#"services:
  worker:
    command: ["sh", "-c", "echo $$TEND_INSTANCE $$(date +%Y) > {dir}/w-$$TEND_INSTANCE.out; exec sleep 1000"]
    scale: 3
  batch:
    command: ["sleep", "1000"]
    deploy:
      replicas: 2
  spare:
    command: ["sh", "-c", "touch {dir}/spare.started; exec sleep 1000"]
    deploy: {{replicas: 0}}
"#
    );
    fs::write(env.p("docker-compose.yml"), compose).unwrap();
    let out = import(&env, &["compose", "docker-compose.yml", "-o", "units"]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(out.stderr.is_empty(), "nothing is left untranslated:\n{}", out.show());
    assert!(unit(&env, "worker").contains("instances: 3"), "{}", unit(&env, "worker"));
    assert!(unit(&env, "batch").contains("instances: 2"), "{}", unit(&env, "batch"));
    assert!(unit(&env, "spare").contains("enabled: false"), "{}", unit(&env, "spare"));
    let checked = check(&env.units());
    assert_eq!(checked.code, 0, "{}", checked.show());
    let mut tend = env.up();
    wait_running(&env, &tend, &["worker@1", "worker@2", "worker@3", "batch@1", "batch@2"]);
    let year = sh_out("date +%Y");
    for i in 1..=3 {
        let line = await_line(&tend, &env.p(&format!("w-{i}.out")));
        assert_eq!(line, format!("{i} {year}"), "TEND_INSTANCE, and date's own %Y");
    }
    assert_eq!(state(&env, "spare"), "stopped");
    assert!(!env.p("spare.started").exists(), "replicas: 0 is not started");
    shutdown(&env, &mut tend);
}

#[test]
fn supervisord_programs_numprocs_and_settings() {
    let env = Env::new();
    let conf = env.p("supervisord.conf");
    fs::write(
        &conf,
        r#"; supervisord.conf (as in supervisord's documentation)
[unix_http_server]
file=/tmp/supervisor.sock   ; the path to the socket file

[supervisord]
logfile=/tmp/supervisord.log
nodaemon=true

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[program:web]
command=/bin/sh -c "echo $A $B > %(here)s/web.out; exec sleep 1000"
directory=%(here)s
environment=A="1",B="two words"
autorestart=true
startsecs=5
stopsignal=INT
stopwaitsecs=3
priority=10

[program:worker]
command=/bin/sleep 10%(process_num)d
process_name=%(program_name)s_%(process_num)02d
numprocs=2
autorestart=unexpected
exitcodes=0,2
stopsignal=TERM
stdout_logfile=%(here)s/worker-%(process_num)d.log
stdout_logfile_maxbytes=1MB
stdout_logfile_backups=3

[program:once]
command=/bin/true
autorestart=false
startretries=0

[group:all]
programs=web,worker
"#,
    )
    .unwrap();
    let out = import(&env, &["supervisord", "supervisord.conf", "-o", "units"]);
    assert_eq!(out.code, 0, "{}", out.show());
    let wrote: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(wrote.len(), 4, "web, worker_00, worker_01, once:\n{}", out.show());
    for (line, text) in [
        (2, "[unix_http_server]"),
        (5, "[supervisord]"),
        (9, "[rpcinterface:supervisor]"),
        (17, "startsecs=5"),
        (20, "priority=10"),
        (38, "[group:all]"),
    ] {
        assert!(
            out.stderr.contains(&format!("supervisord.conf:{line}: {text}")),
            "no note for line {line}:\n{}",
            out.show()
        );
    }
    let web = unit(&env, "web");
    for want in [
        "restart: always",
        "stop_signal: SIGINT",
        "stop_timeout: 3s",
        "environment: {A: \"1\", B: \"two words\"}",
    ] {
        assert!(web.contains(want), "{want}:\n{web}");
    }
    let worker = unit(&env, "worker_01");
    for want in ["command: [/bin/sleep, \"101\"]", "success_exit_codes: [0, 2]", "max_size: 1M", "keep: 3"] {
        assert!(worker.contains(want), "{want}:\n{worker}");
    }
    assert!(unit(&env, "once").contains("restart: never"), "{}", unit(&env, "once"));
    let checked = check(&env.units());
    assert_eq!(checked.code, 0, "{}", checked.show());
    let mut tend = env.up();
    assert_eq!(await_line(&tend, &env.p("web.out")), "1 two words");
    shutdown(&env, &mut tend);
}

#[test]
fn debians_redis_and_nginx_services() {
    let test = "debians_redis_and_nginx_services";
    let redis = Path::new("/lib/systemd/system/redis-server.service");
    let nginx = Path::new("/lib/systemd/system/nginx.service");
    if !(redis.exists() && nginx.exists()) && skip(test, "redis-server and nginx packages not installed") {
        return;
    }
    if skip_unless_root(test) {
        return;
    }
    let env = Env::new();
    let out = import(&env, &["systemd", redis.to_str().unwrap(), nginx.to_str().unwrap(), "-o", "units"]);
    assert_eq!(out.code, 0, "{}", out.show());
    let mut wrote: Vec<&str> = out.stdout.lines().collect();
    wrote.sort();
    assert_eq!(wrote.len(), 3, "{}", out.show());
    let redis_unit = unit(&env, "redis-server");
    for want in [
        "type: notify",
        "command: [/usr/bin/redis-server, /etc/redis/redis.conf, --supervised, systemd, --daemonize, \"no\"]",
        "user: redis",
        "umask: \"007\"",
        "rlimits: {nofile: 65535}",
        "restart: always",
        "no_new_privileges: true",
        "private_tmp: true",
        "capabilities: []",
        "read_only_paths: [/]",
    ] {
        assert!(redis_unit.contains(want), "{want}:\n{redis_unit}");
    }
    let nginx_unit = unit(&env, "nginx");
    assert!(nginx_unit.contains("\"daemon off; master_process on;\""), "{nginx_unit}");
    assert!(nginx_unit.contains("depends_on: {nginx-pre: completed}"), "{nginx_unit}");
    assert!(nginx_unit.contains("stop_timeout: 5s"), "{nginx_unit}");
    let pre = unit(&env, "nginx-pre");
    assert!(pre.contains("type: oneshot") && pre.contains("/usr/sbin/nginx, -t, -q"), "{pre}");
    // Untranslated settings are named with their lines.
    let text = fs::read_to_string(redis).unwrap();
    for key in ["PIDFile=", "PrivateDevices=", "RuntimeDirectory=", "SystemCallFilter="] {
        let (n, line) = text.lines().enumerate().find(|(_, l)| l.starts_with(key)).unwrap();
        assert!(
            out.stderr.contains(&format!("redis-server.service:{}: {}", n + 1, line.trim())),
            "{key}\n{}",
            out.show()
        );
    }
    assert!(
        out.stderr.contains("nginx.service") && out.stderr.contains("PIDFile=/run/nginx.pid"),
        "{}",
        out.show()
    );
    let checked = check(&env.units());
    assert_eq!(checked.code, 0, "{}", checked.show());
    // And the imported redis runs: as user redis, type notify, in its
    // sandbox, answering PING. Changes for a test machine: its own port,
    // no snapshot in /var/lib/redis (--save ""), and no nofile limit (65535 may be above the hard limit here,
    // and raising a hard limit needs CAP_SYS_RESOURCE).
    if skip_unless_installed(test, &["redis-cli"]) {
        return;
    }
    let port = free_port();
    let run = Env::new();
    let yaml = redis_unit
        .lines()
        .filter(|l| !l.starts_with("rlimits:"))
        .map(|l| {
            l.replace(
                "--daemonize, \"no\"]",
                &format!("--daemonize, \"no\", --port, \"{port}\", --save, \"\"]"),
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(yaml.contains(&format!("--port, \"{port}\"")), "{yaml}");
    run.unit("redis-server", &yaml);
    let mut tend = run.up();
    wait_state(&run, &tend, "redis-server", "ready");
    let ping = Command::new("redis-cli").args(["-p", &port.to_string(), "ping"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&ping.stdout).trim(), "PONG", "{}", tend.dump());
    let pid = pid_of(&status_list(&run), "redis-server");
    let status = read(format!("/proc/{pid}/status"));
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap_or_default().to_owned();
    let redis_uid = Command::new("id").args(["-u", "redis"]).output().unwrap();
    assert!(uid.contains(String::from_utf8_lossy(&redis_uid.stdout).trim()), "{uid}");
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    shutdown(&run, &mut tend);
}

#[test]
fn never_overwrites_without_force() {
    let env = Env::new();
    fs::write(env.p("Procfile"), "web: sleep 1000\nworker: sleep 2000\n").unwrap();
    env.unit("web", "command: [my, own, web]\n");
    let out = import(&env, &["procfile", "Procfile", "-o", "units"]);
    assert_eq!(out.code, 1, "{}", out.show());
    assert!(out.stderr.contains("units/web.yaml exists"), "{}", out.show());
    assert_eq!(unit(&env, "web"), "command: [my, own, web]\n");
    assert!(
        !env.units().join("worker.yaml").exists(),
        "nothing is written when anything would be overwritten"
    );
    let out = import(&env, &["procfile", "Procfile", "-o", "units", "--force"]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(unit(&env, "web").contains("command: [sleep, \"1000\"]"), "{}", unit(&env, "web"));
    assert!(unit(&env, "worker").contains("command: [sleep, \"2000\"]"));
}

#[test]
fn unreadable_or_invalid_input_is_a_usage_error() {
    let env = Env::new();
    let out = import(&env, &["compose", "missing.yml"]);
    assert_eq!(out.code, 2, "{}", out.show());
    fs::write(env.p("bad.yml"), "services: [unclosed\n").unwrap();
    let out = import(&env, &["compose", "bad.yml", "-o", "units"]);
    assert_eq!(out.code, 2, "{}", out.show());
    assert!(out.stderr.starts_with("bad.yml:"), "{}", out.show());
    assert!(!env.units().join("bad.yaml").exists());
}
