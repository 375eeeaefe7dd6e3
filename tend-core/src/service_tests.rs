//! Tests of the service state machine. Time is an argument: a test jumps `now`
//! to `deadline()` instead of sleeping, so every scenario runs in microseconds.
//!
//! `Sim` plays the loop: it holds the clock, hands out pids and answers
//! `Action::Spawn` the way the loop does (Spawned, then ExecConfirmed).

use super::*;
use proptest::prelude::*;

const SIGTERM: i32 = 15;
const SIGINT: i32 = 2;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Small values: first delay 100 ms, doubling up to 1 s; more than 3 failures
/// within 10 s is too many; SIGTERM, then SIGKILL after 2 s; exit codes 0 and
/// 3 are success.
fn config() -> Config {
    Config {
        restart: RestartPolicy::Always,
        success_exit_codes: vec![0, 3],
        restart_delay: ms(100),
        restart_delay_max: ms(1_000),
        start_limit_burst: 3,
        start_limit_interval: secs(10),
        stop_signal: SIGTERM,
        stop_timeout: secs(2),
        process_group: false,
        needs_ready_signal: false,
        oneshot: false,
        start_timeout: None,
        watchdog: None,
        oneshot_timeout: None,
        runtime_max: None,
    }
}

fn policy(restart: RestartPolicy) -> Config {
    Config { restart, ..config() }
}

/// No start limit in sight: for tests about the backoff alone.
fn unlimited() -> Config {
    Config { start_limit_burst: 1_000, ..config() }
}

fn grouped() -> Config {
    Config { process_group: true, ..config() }
}

// ---- statuses, events and actions, spelled short ----

fn code(n: i32) -> ExitStatus {
    ExitStatus::Code(n)
}

fn killed_by(signal: i32) -> ExitStatus {
    ExitStatus::Signaled { signal, core_dumped: false }
}

fn exit_of(pid: i32, status: ExitStatus) -> Event {
    Event::Exited { pid, status, group_remains: false }
}

fn start_failure(reason: &str) -> StartFailure {
    StartFailure { step: "exec".into(), errno: Some("not_found".into()), message: reason.to_string() }
}

fn spawn_failed(reason: &str) -> Event {
    Event::SpawnFailed { failure: start_failure(reason) }
}

fn signal(pid: i32, signal: i32) -> Action {
    Action::Signal { pid, signal, group: false }
}

fn group_signal(pid: i32, signal: i32) -> Action {
    Action::Signal { pid, signal, group: true }
}

fn started(pid: i32) -> Action {
    Action::Notice(Notice::Started { pid })
}

fn exited(status: ExitStatus) -> Action {
    Action::Notice(Notice::Exited { status })
}

fn restarting(delay: Duration, restarts: u32) -> Action {
    Action::Notice(Notice::Restarting { delay, restarts })
}

fn stopping_notice(signal: i32) -> Action {
    Action::Notice(Notice::Stopping { signal })
}

fn stopped(status: Option<ExitStatus>, killed: bool) -> Action {
    Action::Notice(Notice::Stopped { status, killed })
}

fn cannot_start(reason: &str) -> Action {
    Action::Notice(Notice::CannotStart { reason: reason.to_string() })
}

fn limit_hit(failures: u32, interval: Duration) -> Action {
    Action::Notice(Notice::StartLimitHit { failures, interval })
}

fn kill_after_timeout(timeout: Duration) -> Action {
    Action::Notice(Notice::KillAfterTimeout { timeout })
}

fn leftovers(signal: i32) -> Action {
    Action::Notice(Notice::LeftoversAfterExit { signal })
}

fn ended(exit_code: i32) -> Action {
    Action::Ended { exit_code }
}

const NOTHING: Vec<Action> = Vec::new();

// ---- the simulated loop ----

#[derive(Clone)]
struct Sim {
    svc: Service,
    now: Time,
    next_pid: i32,
}

impl Sim {
    fn new(config: Config) -> Sim {
        Sim { svc: Service::new(config), now: Time::ZERO, next_pid: 100 }
    }

    /// A service that was started by hand at t=0 and is running as pid 100.
    fn running(config: Config) -> Sim {
        let mut sim = Sim::new(config);
        assert_eq!(sim.start_running(), 100);
        sim
    }

    fn state(&self) -> &State {
        self.svc.state()
    }

    fn at(&mut self, t: Time) -> &mut Sim {
        assert!(t >= self.now, "time goes forward");
        self.now = t;
        self
    }

    fn after(&mut self, d: Duration) -> &mut Sim {
        self.now += d;
        self
    }

    fn send(&mut self, event: Event) -> Vec<Action> {
        self.svc.handle(self.now, event)
    }

    fn tick(&mut self) -> Vec<Action> {
        self.send(Event::Tick)
    }

    /// Jump the clock to the machine's deadline and deliver the Tick.
    fn tick_at_deadline(&mut self) -> Vec<Action> {
        let deadline = self.svc.deadline().expect("a deadline is set");
        self.at(deadline).tick()
    }

    /// The leader's pid (panics if none lives).
    fn pid(&self) -> i32 {
        self.svc.pid().expect("a leader is alive")
    }

    /// The loop forked: a new pid.
    fn fork(&mut self) -> i32 {
        let pid = self.next_pid;
        self.next_pid += 1;
        assert_eq!(self.send(Event::Spawned { pid }), NOTHING);
        assert_eq!(self.state(), &State::Starting { pid, since: self.now });
        pid
    }

    /// The loop forked and the exec succeeded.
    fn fork_and_exec(&mut self) -> i32 {
        let pid = self.fork();
        assert_eq!(self.send(Event::ExecConfirmed), vec![started(pid)]);
        assert_eq!(self.state(), &State::Running { pid, since: self.now, ready: true, timer: None });
        pid
    }

    /// Start by hand, and get to Running.
    fn start_running(&mut self) -> i32 {
        assert_eq!(self.send(Event::Start), vec![Action::Spawn]);
        self.fork_and_exec()
    }

    /// The leader exits (its group, if any, is empty).
    fn exit(&mut self, status: ExitStatus) -> Vec<Action> {
        let pid = self.pid();
        self.send(exit_of(pid, status))
    }

    /// The leader exits and leaves processes behind in its group.
    fn exit_leaving_group(&mut self, status: ExitStatus) -> Vec<Action> {
        let pid = self.pid();
        self.send(Event::Exited { pid, status, group_remains: true })
    }

    /// Run for `ran`, then crash with exit code 1; return what the policy said.
    fn crash_after(&mut self, ran: Duration) -> Vec<Action> {
        self.after(ran).exit(code(1))
    }

    /// Wait out a backoff and run again.
    fn restart_after_backoff(&mut self) -> i32 {
        assert!(matches!(self.state(), State::Backoff { .. }), "in backoff: {:?}", self.state());
        assert_eq!(self.tick_at_deadline(), vec![Action::Spawn]);
        self.fork_and_exec()
    }

    /// Send Stop and check the usual SIGTERM + SIGCONT to the leader.
    fn stop(&mut self) {
        let pid = self.pid();
        assert_eq!(
            self.send(Event::Stop),
            vec![stopping_notice(SIGTERM), signal(pid, SIGTERM), signal(pid, SIGCONT)]
        );
    }
}

// ======================================================================
// Starting
// ======================================================================

#[test]
fn a_new_service_is_stopped_with_no_pid_and_no_deadline() {
    let sim = Sim::new(config());
    assert_eq!(sim.state(), &State::Stopped);
    assert_eq!(sim.svc.pid(), None);
    assert_eq!(sim.svc.deadline(), None);
    assert!(sim.svc.is_down());
    assert_eq!(sim.svc.restarts(), 0);
    assert_eq!(sim.svc.last_ending(), None);
}

#[test]
fn start_asks_for_a_spawn_then_runs_once_exec_is_confirmed() {
    let mut sim = Sim::new(config());
    sim.at(secs(1));
    assert_eq!(sim.send(Event::Start), vec![Action::Spawn]);
    assert_eq!(sim.state(), &State::Stopped, "nothing forked yet");

    assert_eq!(sim.send(Event::Spawned { pid: 42 }), NOTHING);
    assert_eq!(sim.state(), &State::Starting { pid: 42, since: secs(1) });
    assert_eq!(sim.svc.pid(), Some(42));
    assert_eq!(sim.svc.deadline(), None);
    assert!(!sim.svc.is_down());

    sim.after(ms(5));
    assert_eq!(sim.send(Event::ExecConfirmed), vec![started(42)]);
    assert_eq!(
        sim.state(),
        &State::Running { pid: 42, since: secs(1), ready: true, timer: None },
        "since is the fork time"
    );
    assert_eq!(sim.svc.pid(), Some(42));
    assert_eq!(sim.svc.deadline(), None);
}

#[test]
fn start_and_stray_events_change_nothing_while_running() {
    let mut sim = Sim::running(config());
    let before = sim.state().clone();
    sim.after(secs(3600));
    for event in [
        Event::Start,
        Event::Spawned { pid: 999 },
        Event::ExecConfirmed,
        spawn_failed("late"),
        Event::GroupEmpty,
        Event::Tick,
    ] {
        assert_eq!(sim.send(event.clone()), NOTHING, "{event:?}");
        assert_eq!(sim.state(), &before, "{event:?}");
    }
}

#[test]
fn an_exit_before_the_exec_confirmation_still_counts_as_started() {
    let mut sim = Sim::new(config());
    sim.send(Event::Start);
    let pid = sim.fork();
    sim.after(ms(50));
    assert_eq!(sim.exit(code(1)), vec![started(pid), exited(code(1)), restarting(ms(100), 1)]);
    assert_eq!(sim.state(), &State::Backoff { until: ms(150) });
}

// ======================================================================
// Exit codes under each restart policy
// ======================================================================

/// What happens when a running service exits with `status` under `restart`.
fn outcome(restart: RestartPolicy, status: ExitStatus) -> (Vec<Action>, State) {
    let mut sim = Sim::running(policy(restart));
    let actions = sim.at(secs(1)).exit(status);
    (actions, sim.state().clone())
}

#[test]
fn always_restarts_after_an_exit_code_in_success_exit_codes() {
    let (actions, state) = outcome(RestartPolicy::Always, code(3));
    assert_eq!(actions, vec![exited(code(3)), restarting(ms(100), 1)]);
    assert_eq!(state, State::Backoff { until: secs(1) + ms(100) });
}

#[test]
fn always_restarts_after_an_exit_code_outside_success_exit_codes() {
    let (actions, state) = outcome(RestartPolicy::Always, code(1));
    assert_eq!(actions, vec![exited(code(1)), restarting(ms(100), 1)]);
    assert_eq!(state, State::Backoff { until: secs(1) + ms(100) });
}

#[test]
fn on_failure_restarts_after_an_exit_code_outside_success_exit_codes() {
    let (actions, state) = outcome(RestartPolicy::OnFailure, code(2));
    assert_eq!(actions, vec![exited(code(2)), restarting(ms(100), 1)]);
    assert_eq!(state, State::Backoff { until: secs(1) + ms(100) });
}

#[test]
fn on_failure_restarts_after_a_death_by_signal() {
    let (actions, state) = outcome(RestartPolicy::OnFailure, killed_by(SIGINT));
    assert_eq!(actions, vec![exited(killed_by(SIGINT)), restarting(ms(100), 1)]);
    assert_eq!(state, State::Backoff { until: secs(1) + ms(100) });
}

#[test]
fn on_failure_ends_after_an_exit_code_in_success_exit_codes() {
    // 3 is listed: the service ended well, and hands over 0 (tini's -e).
    let (actions, state) = outcome(RestartPolicy::OnFailure, code(3));
    assert_eq!(actions, vec![exited(code(3)), ended(0)]);
    assert_eq!(state, State::Exited { status: code(3), at: secs(1) });
}

#[test]
fn on_failure_treats_zero_as_a_failure_when_it_is_not_listed() {
    let mut sim =
        Sim::running(Config { restart: RestartPolicy::OnFailure, success_exit_codes: vec![3], ..config() });
    assert_eq!(sim.at(secs(1)).exit(code(0)), vec![exited(code(0)), restarting(ms(100), 1)]);
    assert!(matches!(sim.state(), State::Backoff { .. }));
}

#[test]
fn never_ends_after_a_success() {
    let (actions, state) = outcome(RestartPolicy::Never, code(0));
    assert_eq!(actions, vec![exited(code(0)), ended(0)]);
    assert_eq!(state, State::Exited { status: code(0), at: secs(1) });
}

#[test]
fn never_ends_after_a_failure_with_its_exit_code() {
    let (actions, state) = outcome(RestartPolicy::Never, code(1));
    assert_eq!(actions, vec![exited(code(1)), ended(1)]);
    assert_eq!(state, State::Exited { status: code(1), at: secs(1) });
}

#[test]
fn never_ends_after_a_death_by_signal_with_128_plus_the_signal() {
    let (actions, state) = outcome(RestartPolicy::Never, killed_by(SIGKILL));
    assert_eq!(actions, vec![exited(killed_by(SIGKILL)), ended(128 + SIGKILL)]);
    assert_eq!(state, State::Exited { status: killed_by(SIGKILL), at: secs(1) });
}

#[test]
fn a_listed_code_hands_over_zero_and_128_plus_n_counts() {
    // `success_exit_codes: [0, 143]` on a JVM: its 143 after SIGTERM, or a
    // kill by SIGTERM, ends a critical service cleanly (tend exits 0).
    let jvm = || {
        Sim::running(Config { restart: RestartPolicy::Never, success_exit_codes: vec![0, 143], ..config() })
    };
    assert_eq!(jvm().at(secs(1)).exit(code(143)), vec![exited(code(143)), ended(0)]);
    assert_eq!(jvm().at(secs(1)).exit(killed_by(SIGTERM)), vec![exited(killed_by(SIGTERM)), ended(0)]);
    assert_eq!(jvm().at(secs(1)).exit(code(1)), vec![exited(code(1)), ended(1)]);
    assert_eq!(jvm().at(secs(1)).exit(killed_by(SIGKILL)), vec![exited(killed_by(SIGKILL)), ended(137)]);
}

#[test]
fn the_restart_matrix() {
    use RestartPolicy::{Always, Never, OnFailure};
    // (policy, status, restarts?)
    let table = [
        (Always, code(0), true),
        (Always, code(3), true),
        (Always, code(1), true),
        (Always, killed_by(SIGTERM), true),
        (OnFailure, code(0), false),
        (OnFailure, code(3), false),
        (OnFailure, code(1), true),
        (OnFailure, killed_by(SIGTERM), true),
        (Never, code(0), false),
        (Never, code(3), false),
        (Never, code(1), false),
        (Never, killed_by(SIGTERM), false),
    ];
    for (restart, status, restarts) in table {
        let (actions, state) = outcome(restart, status);
        if restarts {
            assert_eq!(actions, vec![exited(status), restarting(ms(100), 1)], "{restart:?} {status:?}");
            assert!(matches!(state, State::Backoff { .. }), "{restart:?} {status:?}: {state:?}");
        } else {
            let code = status.handed_over(&config().success_exit_codes);
            assert_eq!(actions, vec![exited(status), ended(code)], "{restart:?} {status:?}");
            assert_eq!(state, State::Exited { status, at: secs(1) }, "{restart:?} {status:?}");
        }
    }
}

#[test]
fn an_exited_service_stays_down_until_started_by_hand() {
    let mut sim = Sim::running(policy(RestartPolicy::Never));
    sim.at(secs(1)).exit(code(0));
    let down = State::Exited { status: code(0), at: secs(1) };
    assert_eq!(sim.svc.deadline(), None);
    assert_eq!(sim.svc.pid(), None);
    assert!(sim.svc.is_down());
    sim.after(secs(3600));
    for event in [Event::Tick, Event::Stop, Event::Kill, exit_of(100, code(0)), Event::GroupEmpty] {
        assert_eq!(sim.send(event.clone()), NOTHING, "{event:?}");
        assert_eq!(sim.state(), &down, "{event:?}");
    }
    assert_eq!(sim.start_running(), 101);
}

// ======================================================================
// Backoff
// ======================================================================

#[test]
fn backoff_spawns_at_its_deadline_and_not_before() {
    let mut sim = Sim::running(config());
    assert_eq!(sim.crash_after(secs(1)), vec![exited(code(1)), restarting(ms(100), 1)]);
    let backoff = State::Backoff { until: ms(1_100) };
    assert_eq!(sim.state(), &backoff);
    assert_eq!(sim.svc.deadline(), Some(ms(1_100)));
    assert_eq!(sim.svc.pid(), None);
    assert!(sim.svc.is_down());

    assert_eq!(sim.at(ms(1_099)).tick(), NOTHING);
    assert_eq!(sim.state(), &backoff);

    assert_eq!(sim.at(ms(1_100)).tick(), vec![Action::Spawn]);
    assert_eq!(sim.state(), &State::Stopped);
    assert_eq!(sim.svc.deadline(), None);
    assert_eq!(sim.fork_and_exec(), 101);
}

#[test]
fn a_late_tick_in_backoff_still_spawns_once() {
    let mut sim = Sim::running(config());
    sim.crash_after(secs(1));
    assert_eq!(sim.at(secs(60)).tick(), vec![Action::Spawn]);
    assert_eq!(sim.tick(), NOTHING);
}

#[test]
fn backoff_doubles_after_each_quick_failure_up_to_restart_delay_max() {
    let mut sim = Sim::running(unlimited());
    let expected = [100, 200, 400, 800, 1_000, 1_000, 1_000];
    for (n, delay) in expected.into_iter().enumerate() {
        let crash_at = sim.now + secs(1);
        assert_eq!(
            sim.crash_after(secs(1)),
            vec![exited(code(1)), restarting(ms(delay), n as u32 + 1)],
            "failure {}",
            n + 1
        );
        assert_eq!(sim.state(), &State::Backoff { until: crash_at + ms(delay) });
        sim.restart_after_backoff();
    }
    assert_eq!(sim.svc.restarts(), expected.len() as u32);
}

#[test]
fn backoff_goes_back_to_restart_delay_after_running_ten_seconds() {
    let mut sim = Sim::running(unlimited());
    for delay in [100, 200, 400] {
        assert_eq!(sim.crash_after(secs(1))[1], restarting(ms(delay), sim.svc.restarts()));
        sim.restart_after_backoff();
    }
    // The next quick failure would wait 800 ms; this run lasted long enough.
    assert_eq!(sim.crash_after(BACKOFF_RESET_AFTER), vec![exited(code(1)), restarting(ms(100), 4)]);
    sim.restart_after_backoff();
    // And quick failures grow from there again.
    assert_eq!(sim.crash_after(secs(1)), vec![exited(code(1)), restarting(ms(200), 5)]);
}

#[test]
fn backoff_keeps_growing_after_a_run_just_under_ten_seconds() {
    let mut sim = Sim::running(unlimited());
    for _ in 0..3 {
        sim.crash_after(secs(1));
        sim.restart_after_backoff();
    }
    assert_eq!(sim.crash_after(BACKOFF_RESET_AFTER - ms(1)), vec![exited(code(1)), restarting(ms(800), 4)]);
}

#[test]
fn the_run_time_is_counted_from_the_fork_not_the_exec_confirmation() {
    let mut sim = Sim::new(unlimited());
    for _ in 0..2 {
        sim.send(Event::Start);
        sim.fork_and_exec();
        sim.crash_after(secs(1));
        sim.restart_after_backoff();
        sim.crash_after(secs(1));
    }
    // Grow the delay, then fork at t, confirm exec 1 s later and crash 10 s
    // after the fork: that run lasted 10 s.
    sim.tick_at_deadline();
    let pid = sim.fork();
    sim.after(secs(1));
    assert_eq!(sim.send(Event::ExecConfirmed), vec![started(pid)]);
    let restarts = sim.svc.restarts();
    assert_eq!(sim.after(secs(9)).exit(code(1)), vec![exited(code(1)), restarting(ms(100), restarts + 1)]);
}

#[test]
fn a_restart_delay_above_restart_delay_max_is_never_shortened() {
    let mut sim = Sim::running(Config { restart_delay: ms(500), restart_delay_max: ms(300), ..unlimited() });
    for n in 1..=3 {
        assert_eq!(sim.crash_after(secs(1)), vec![exited(code(1)), restarting(ms(500), n)]);
        sim.restart_after_backoff();
    }
}

/// `unit::values::parse_duration` accepts up to u64::MAX seconds, so a unit
/// can ask for a stop timeout or a restart delay this long.
#[test]
fn huge_configured_durations_do_not_overflow_the_clock() {
    let huge = Duration::MAX;
    let mut sim = Sim::running(Config {
        stop_timeout: huge,
        restart_delay: huge,
        restart_delay_max: huge,
        ..unlimited()
    });
    // The first failure already doubles the delay for next time.
    assert_eq!(sim.crash_after(secs(1)), vec![exited(code(1)), restarting(huge, 1)]);
    assert_eq!(sim.state(), &State::Backoff { until: Duration::MAX });
    assert_eq!(sim.after(secs(3600)).tick(), NOTHING);
    assert_eq!(sim.send(Event::Start), vec![Action::Spawn]);
    sim.fork_and_exec();
    sim.after(secs(1)).stop();
    assert_eq!(sim.svc.deadline(), Some(Duration::MAX));
    assert_eq!(sim.after(secs(3600)).tick(), NOTHING);
    assert_eq!(sim.exit(code(0)), vec![exited(code(0)), stopped(Some(code(0)), false)]);
}

#[test]
fn restart_delay_zero_spawns_at_once_without_a_backoff_state() {
    let mut sim = Sim::running(Config { restart_delay: Duration::ZERO, ..unlimited() });
    for n in 1..=3 {
        assert_eq!(
            sim.crash_after(ms(10)),
            vec![exited(code(1)), restarting(Duration::ZERO, n), Action::Spawn]
        );
        assert_eq!(sim.state(), &State::Stopped);
        assert_eq!(sim.svc.deadline(), None);
        sim.fork_and_exec();
    }
}

#[test]
fn stop_during_backoff_stays_down() {
    let mut sim = Sim::running(config());
    sim.crash_after(secs(1));
    let until = sim.svc.deadline().unwrap();
    assert_eq!(sim.after(ms(10)).send(Event::Stop), vec![stopped(None, false)]);
    assert_eq!(sim.state(), &State::Stopped);
    assert_eq!(sim.svc.deadline(), None);
    assert!(sim.svc.is_down());
    assert_eq!(sim.at(until).tick(), NOTHING);
    assert_eq!(sim.at(until + secs(60)).tick(), NOTHING);
    assert_eq!(sim.state(), &State::Stopped);
}

#[test]
fn kill_during_backoff_stays_down() {
    let mut sim = Sim::running(config());
    sim.crash_after(secs(1));
    let until = sim.svc.deadline().unwrap();
    assert_eq!(sim.send(Event::Kill), NOTHING);
    assert_eq!(sim.state(), &State::Stopped);
    assert_eq!(sim.svc.deadline(), None);
    assert_eq!(sim.at(until).tick(), NOTHING);
}

#[test]
fn start_during_backoff_spawns_at_once_and_forgets_the_delay() {
    let mut sim = Sim::running(config());
    sim.crash_after(secs(1));
    sim.restart_after_backoff();
    sim.crash_after(secs(1));
    assert_eq!(sim.state(), &State::Backoff { until: sim.now + ms(200) });
    assert_eq!(sim.send(Event::Start), vec![Action::Spawn]);
    assert_eq!(sim.state(), &State::Stopped);
    assert_eq!(sim.svc.restarts(), 0);
    sim.fork_and_exec();
    assert_eq!(sim.crash_after(secs(1)), vec![exited(code(1)), restarting(ms(100), 1)]);
}

#[test]
fn restart_during_backoff_spawns_at_once() {
    let mut sim = Sim::running(config());
    sim.crash_after(secs(1));
    assert_eq!(sim.send(Event::Restart), vec![Action::Spawn]);
    assert_eq!(sim.state(), &State::Stopped);
    assert_eq!(sim.svc.deadline(), None);
}

// ======================================================================
// Start limit
// ======================================================================

#[test]
fn more_failures_than_burst_within_interval_fail_the_service() {
    let mut sim = Sim::running(config());
    for (n, delay) in [100, 200, 400].into_iter().enumerate() {
        assert_eq!(sim.crash_after(secs(1)), vec![exited(code(1)), restarting(ms(delay), n as u32 + 1)]);
        sim.restart_after_backoff();
    }
    // Four failures in under 5 s; the burst is 3.
    let now = sim.now + secs(1);
    assert_eq!(sim.crash_after(secs(1)), vec![exited(code(1)), limit_hit(4, secs(10)), ended(1)]);
    assert_eq!(
        sim.state(),
        &State::Failed { reason: FailReason::StartLimit { failures: 4, interval: secs(10) }, at: now }
    );
    assert_eq!(sim.svc.deadline(), None);
    assert_eq!(sim.svc.pid(), None);
    assert!(sim.svc.is_down());
}

/// A service that has just hit the start limit (burst 3).
fn failed_service() -> Sim {
    let mut sim = Sim::running(config());
    for _ in 0..3 {
        sim.crash_after(secs(1));
        sim.restart_after_backoff();
    }
    sim.crash_after(secs(1));
    assert!(matches!(sim.state(), State::Failed { .. }));
    sim
}

#[test]
fn a_failed_service_stays_down_whatever_happens() {
    let mut sim = failed_service();
    let failed = sim.state().clone();
    sim.after(secs(24 * 3600));
    for event in [
        Event::Tick,
        Event::Stop,
        Event::Kill,
        Event::GroupEmpty,
        Event::ExecConfirmed,
        Event::Spawned { pid: 7 },
        spawn_failed("late"),
        exit_of(103, code(1)),
    ] {
        assert_eq!(sim.send(event.clone()), NOTHING, "{event:?}");
        assert_eq!(sim.state(), &failed, "{event:?}");
    }
    assert_eq!(sim.svc.deadline(), None);
}

#[test]
fn start_by_hand_after_failed_forgets_the_past_failures() {
    let mut sim = failed_service();
    sim.after(ms(1));
    assert_eq!(sim.start_running(), 104);
    assert_eq!(sim.svc.restarts(), 0);
    // Still inside the old interval, a full burst of new failures is allowed,
    // and the delay starts over.
    for (n, delay) in [100, 200, 400].into_iter().enumerate() {
        assert_eq!(sim.crash_after(ms(10)), vec![exited(code(1)), restarting(ms(delay), n as u32 + 1)]);
        sim.restart_after_backoff();
    }
    assert_eq!(sim.crash_after(ms(10)), vec![exited(code(1)), limit_hit(4, secs(10)), ended(1)]);
}

#[test]
fn restart_by_hand_after_failed_also_starts_over() {
    let mut sim = failed_service();
    assert_eq!(sim.send(Event::Restart), vec![Action::Spawn]);
    sim.fork_and_exec();
    assert_eq!(sim.crash_after(ms(10)), vec![exited(code(1)), restarting(ms(100), 1)]);
}

#[test]
fn failures_further_apart_than_interval_do_not_add_up() {
    let config = Config { start_limit_burst: 1, start_limit_interval: secs(5), ..unlimited() };
    let mut sim = Sim::running(config);
    // First failure at t=1 s.
    assert_eq!(sim.crash_after(secs(1)), vec![exited(code(1)), restarting(ms(100), 1)]);
    sim.restart_after_backoff(); // runs from 1.1 s
    let second = sim.clone();

    // Second failure at exactly t=6 s: the first one is out of the window.
    sim.at(secs(6));
    assert_eq!(sim.exit(code(1)), vec![exited(code(1)), restarting(ms(200), 2)]);

    // Second failure 1 ms earlier: two failures within 5 s, burst is 1.
    let mut sim = second;
    sim.at(secs(6) - ms(1));
    assert_eq!(sim.exit(code(1)), vec![exited(code(1)), limit_hit(2, secs(5)), ended(1)]);
}

#[test]
fn burst_zero_fails_at_the_first_failure_with_its_exit_code() {
    let mut sim = Sim::running(Config { start_limit_burst: 0, ..config() });
    assert_eq!(
        sim.at(secs(1)).exit(killed_by(SIGKILL)),
        vec![exited(killed_by(SIGKILL)), limit_hit(1, secs(10)), ended(128 + SIGKILL)]
    );
    assert!(matches!(sim.state(), State::Failed { reason: FailReason::StartLimit { failures: 1, .. }, .. }));
}

#[test]
fn successful_exits_under_always_do_not_count_toward_the_start_limit() {
    let mut sim = Sim::running(Config { start_limit_burst: 0, ..unlimited() });
    for n in 1..=5 {
        let actions = sim.after(ms(10)).exit(code(0));
        assert_eq!(actions[0], exited(code(0)));
        assert_eq!(actions.len(), 2, "a restart, no start limit: {actions:?}");
        assert!(matches!(actions[1], Action::Notice(Notice::Restarting { restarts, .. }) if restarts == n));
        sim.restart_after_backoff();
    }
}

// ======================================================================
// Spawn failures
// ======================================================================

const NO_FILE: &str = "cannot execute /usr/bin/nope: No such file or directory";

#[test]
fn a_spawn_failure_under_never_fails_at_once_with_127() {
    let mut sim = Sim::new(policy(RestartPolicy::Never));
    sim.at(secs(1)).send(Event::Start);
    assert_eq!(sim.send(spawn_failed(NO_FILE)), vec![cannot_start(NO_FILE), ended(127)]);
    assert_eq!(
        sim.state(),
        &State::Failed { reason: FailReason::CannotStart(NO_FILE.to_string()), at: secs(1) }
    );
    assert_eq!(sim.svc.last_ending(), Some(&(Ending::CannotStart(start_failure(NO_FILE)), secs(1))));
    assert_eq!(sim.svc.deadline(), None);
    assert_eq!(sim.svc.pid(), None);
    assert_eq!(sim.after(secs(60)).tick(), NOTHING);
}

#[test]
fn a_failed_child_step_under_never_fails_the_same_way() {
    let mut sim = Sim::new(policy(RestartPolicy::Never));
    sim.send(Event::Start);
    sim.fork();
    assert_eq!(sim.send(spawn_failed(NO_FILE)), vec![cannot_start(NO_FILE), ended(127)]);
    assert!(matches!(sim.state(), State::Failed { reason: FailReason::CannotStart(_), .. }));
    assert_eq!(sim.svc.pid(), None);
}

#[test]
fn a_spawn_failure_under_always_or_on_failure_backs_off() {
    for restart in [RestartPolicy::Always, RestartPolicy::OnFailure] {
        let mut sim = Sim::new(policy(restart));
        sim.at(secs(1)).send(Event::Start);
        sim.fork();
        assert_eq!(sim.send(spawn_failed(NO_FILE)), vec![cannot_start(NO_FILE), restarting(ms(100), 1)]);
        assert_eq!(sim.state(), &State::Backoff { until: ms(1_100) }, "{restart:?}");
        assert_eq!(sim.tick_at_deadline(), vec![Action::Spawn], "{restart:?}");
        // A failed fork (no pid at all) is handled alike, with a longer delay.
        assert_eq!(
            sim.send(spawn_failed("fork: EAGAIN")),
            vec![cannot_start("fork: EAGAIN"), restarting(ms(200), 2)]
        );
    }
}

#[test]
fn repeated_spawn_failures_hit_the_start_limit_with_127() {
    let mut sim = Sim::new(config());
    sim.send(Event::Start);
    for n in 1..=3 {
        let actions = sim.send(spawn_failed(NO_FILE));
        assert_eq!(actions[0], cannot_start(NO_FILE));
        assert!(matches!(actions[1], Action::Notice(Notice::Restarting { restarts, .. }) if restarts == n));
        assert_eq!(sim.tick_at_deadline(), vec![Action::Spawn]);
    }
    assert_eq!(
        sim.send(spawn_failed(NO_FILE)),
        vec![cannot_start(NO_FILE), limit_hit(4, secs(10)), ended(127)]
    );
    assert!(matches!(sim.state(), State::Failed { reason: FailReason::StartLimit { failures: 4, .. }, .. }));
}

// ======================================================================
// Stop, stop timeout and Kill
// ======================================================================

#[test]
fn stop_sends_the_stop_signal_and_sigcont_to_the_pid_and_arms_the_kill() {
    let mut sim = Sim::running(config());
    sim.at(secs(5));
    assert_eq!(
        sim.send(Event::Stop),
        vec![stopping_notice(SIGTERM), signal(100, SIGTERM), signal(100, SIGCONT)]
    );
    assert_eq!(
        sim.state(),
        &State::Stopping {
            leader: 100,
            leader_alive: true,
            kill_at: Some(secs(7)),
            killed: false,
            then: Then::StayDown,
        }
    );
    assert_eq!(sim.svc.deadline(), Some(secs(7)));
    assert_eq!(sim.svc.pid(), Some(100));
    assert!(!sim.svc.is_down());
}

#[test]
fn stop_with_a_process_group_signals_the_group() {
    let mut sim = Sim::running(grouped());
    assert_eq!(
        sim.send(Event::Stop),
        vec![stopping_notice(SIGTERM), group_signal(100, SIGTERM), group_signal(100, SIGCONT)]
    );
}

#[test]
fn stop_uses_the_configured_stop_signal() {
    let mut sim = Sim::running(Config { stop_signal: SIGINT, ..config() });
    assert_eq!(
        sim.send(Event::Stop),
        vec![stopping_notice(SIGINT), signal(100, SIGINT), signal(100, SIGCONT)]
    );
}

#[test]
fn an_exit_while_stopping_stays_down_whatever_the_code() {
    for status in [code(0), code(1), killed_by(SIGTERM)] {
        let mut sim = Sim::running(config());
        sim.stop();
        sim.after(ms(30));
        assert_eq!(sim.exit(status), vec![exited(status), stopped(Some(status), false)], "{status:?}");
        assert_eq!(sim.state(), &State::Stopped);
        assert_eq!(sim.svc.deadline(), None);
        assert_eq!(sim.svc.pid(), None);
        assert!(!sim.svc.was_killed());
        assert_eq!(sim.svc.last_ending(), Some(&(Ending::Exited(status), sim.now)));
        assert_eq!(sim.svc.restarts(), 0);
        assert_eq!(sim.after(secs(60)).tick(), NOTHING);
    }
}

#[test]
fn an_exit_while_stopping_under_never_does_not_end_the_service() {
    let mut sim = Sim::running(policy(RestartPolicy::Never));
    sim.stop();
    assert_eq!(sim.exit(code(143)), vec![exited(code(143)), stopped(Some(code(143)), false)]);
    assert_eq!(sim.state(), &State::Stopped);
}

#[test]
fn a_stop_timeout_sends_sigkill_at_the_deadline_and_not_a_millisecond_before() {
    let mut sim = Sim::running(config());
    sim.at(secs(5)).stop();
    let deadline = sim.svc.deadline().unwrap();
    assert_eq!(deadline, secs(7));
    let waiting = sim.state().clone();

    assert_eq!(sim.at(deadline - ms(1)).tick(), NOTHING);
    assert_eq!(sim.state(), &waiting);

    assert_eq!(sim.at(deadline).tick(), vec![kill_after_timeout(secs(2)), signal(100, SIGKILL)]);
    assert_eq!(
        sim.state(),
        &State::Stopping {
            leader: 100,
            leader_alive: true,
            kill_at: None,
            killed: true,
            then: Then::StayDown,
        }
    );
    assert_eq!(sim.svc.deadline(), None);
    assert_eq!(sim.after(secs(60)).tick(), NOTHING, "SIGKILL is sent once");

    assert_eq!(
        sim.exit(killed_by(SIGKILL)),
        vec![exited(killed_by(SIGKILL)), stopped(Some(killed_by(SIGKILL)), true)]
    );
    assert_eq!(sim.state(), &State::Stopped);
    assert!(sim.svc.was_killed());
}

#[test]
fn a_stop_timeout_kills_the_group() {
    let mut sim = Sim::running(grouped());
    sim.send(Event::Stop);
    assert_eq!(sim.tick_at_deadline(), vec![kill_after_timeout(secs(2)), group_signal(100, SIGKILL)]);
}

#[test]
fn was_killed_is_forgotten_after_a_clean_stop() {
    let mut sim = Sim::running(config());
    sim.stop();
    sim.tick_at_deadline();
    sim.exit(killed_by(SIGKILL));
    assert!(sim.svc.was_killed());
    sim.start_running();
    sim.stop();
    sim.exit(code(0));
    assert!(!sim.svc.was_killed());
}

#[test]
fn sigkill_as_stop_signal_sends_no_sigcont_and_arms_no_deadline() {
    let mut sim = Sim::running(Config { stop_signal: SIGKILL, ..config() });
    assert_eq!(sim.send(Event::Stop), vec![stopping_notice(SIGKILL), signal(100, SIGKILL)]);
    assert!(matches!(sim.state(), State::Stopping { kill_at: None, killed: true, .. }));
    assert_eq!(sim.svc.deadline(), None);
    assert_eq!(sim.send(Event::Kill), NOTHING, "SIGKILL already sent");
    assert_eq!(
        sim.exit(killed_by(SIGKILL)),
        vec![exited(killed_by(SIGKILL)), stopped(Some(killed_by(SIGKILL)), true)]
    );
}

#[test]
fn a_zero_stop_timeout_kills_at_the_next_tick() {
    let mut sim = Sim::running(Config { stop_timeout: Duration::ZERO, ..config() });
    sim.at(secs(1)).stop();
    assert_eq!(sim.svc.deadline(), Some(secs(1)));
    assert_eq!(sim.tick(), vec![kill_after_timeout(Duration::ZERO), signal(100, SIGKILL)]);
}

#[test]
fn a_second_stop_while_stopping_sends_nothing() {
    let mut sim = Sim::running(config());
    sim.stop();
    let stopping = sim.state().clone();
    assert_eq!(sim.after(secs(1)).send(Event::Stop), NOTHING);
    assert_eq!(sim.state(), &stopping, "the deadline is not pushed back");
}

#[test]
fn stop_before_the_exec_confirmation_signals_the_pid() {
    let mut sim = Sim::new(config());
    sim.send(Event::Start);
    let pid = sim.fork();
    sim.stop();
    assert_eq!(sim.send(Event::ExecConfirmed), NOTHING, "no Started notice while stopping");
    assert_eq!(sim.exit(code(0)), vec![exited(code(0)), stopped(Some(code(0)), false)]);
    assert_eq!(sim.state(), &State::Stopped);
    assert_eq!(pid, 100);
}

#[test]
fn a_child_step_failing_while_stopping_completes_the_stop() {
    let mut sim = Sim::new(config());
    sim.send(Event::Start);
    sim.fork();
    sim.stop();
    assert_eq!(sim.send(spawn_failed(NO_FILE)), vec![stopped(None, false)]);
    assert_eq!(sim.state(), &State::Stopped);
    assert_eq!(sim.svc.last_ending(), Some(&(Ending::CannotStart(start_failure(NO_FILE)), sim.now)));
}

#[test]
fn stop_and_kill_change_nothing_when_idle() {
    let mut sim = Sim::new(config());
    assert_eq!(sim.send(Event::Stop), NOTHING);
    assert_eq!(sim.send(Event::Kill), NOTHING);
    assert_eq!(sim.send(Event::Tick), NOTHING);
    assert_eq!(sim.state(), &State::Stopped);
}

#[test]
fn kill_while_running_sends_sigkill_at_once() {
    let mut sim = Sim::running(config());
    assert_eq!(sim.at(secs(1)).send(Event::Kill), vec![signal(100, SIGKILL)]);
    assert_eq!(
        sim.state(),
        &State::Stopping {
            leader: 100,
            leader_alive: true,
            kill_at: None,
            killed: true,
            then: Then::StayDown,
        }
    );
    assert_eq!(sim.svc.deadline(), None);
    assert_eq!(sim.send(Event::Kill), NOTHING);
    assert_eq!(
        sim.exit(killed_by(SIGKILL)),
        vec![exited(killed_by(SIGKILL)), stopped(Some(killed_by(SIGKILL)), true)]
    );
    assert!(sim.svc.was_killed());
}

#[test]
fn kill_while_running_with_a_process_group_kills_the_group() {
    let mut sim = Sim::running(grouped());
    assert_eq!(sim.send(Event::Kill), vec![group_signal(100, SIGKILL)]);
}

#[test]
fn kill_during_stopping_sends_sigkill_once() {
    let mut sim = Sim::running(config());
    sim.stop();
    let deadline = sim.svc.deadline().unwrap();
    assert_eq!(sim.after(ms(100)).send(Event::Kill), vec![signal(100, SIGKILL)]);
    assert!(matches!(sim.state(), State::Stopping { kill_at: None, killed: true, leader_alive: true, .. }));
    assert_eq!(sim.svc.deadline(), None);
    assert_eq!(sim.send(Event::Kill), NOTHING);
    assert_eq!(sim.at(deadline).tick(), NOTHING, "no second SIGKILL at the old deadline");
    assert_eq!(
        sim.exit(killed_by(SIGKILL)),
        vec![exited(killed_by(SIGKILL)), stopped(Some(killed_by(SIGKILL)), true)]
    );
}

#[test]
fn kill_after_the_timeout_escalation_sends_nothing_more() {
    let mut sim = Sim::running(config());
    sim.stop();
    assert_eq!(sim.tick_at_deadline(), vec![kill_after_timeout(secs(2)), signal(100, SIGKILL)]);
    assert_eq!(sim.send(Event::Kill), NOTHING);
}

// ======================================================================
// Restart (and Start while stopping)
// ======================================================================

#[test]
fn restart_while_running_stops_then_spawns_without_backoff() {
    let mut sim = Sim::running(config());
    sim.at(secs(5));
    assert_eq!(
        sim.send(Event::Restart),
        vec![stopping_notice(SIGTERM), signal(100, SIGTERM), signal(100, SIGCONT)]
    );
    assert!(matches!(sim.state(), State::Stopping { then: Then::Start, kill_at: Some(_), .. }));
    assert_eq!(
        sim.after(ms(20)).exit(killed_by(SIGTERM)),
        vec![exited(killed_by(SIGTERM)), stopped(Some(killed_by(SIGTERM)), false), Action::Spawn]
    );
    assert_eq!(sim.state(), &State::Stopped);
    assert_eq!(sim.svc.restarts(), 0, "a restart by hand is not the policy's");
    assert_eq!(sim.fork_and_exec(), 101);
}

#[test]
fn restart_while_stopping_spawns_once_the_stop_completes() {
    let mut sim = Sim::running(config());
    sim.stop();
    let deadline = sim.svc.deadline();
    assert_eq!(sim.send(Event::Restart), NOTHING, "no second signal");
    assert!(matches!(sim.state(), State::Stopping { then: Then::Start, .. }));
    assert_eq!(sim.svc.deadline(), deadline);
    assert_eq!(sim.exit(code(0)), vec![exited(code(0)), stopped(Some(code(0)), false), Action::Spawn]);
    assert_eq!(sim.state(), &State::Stopped);
}

#[test]
fn start_while_stopping_spawns_once_the_stop_completes() {
    let mut sim = Sim::running(config());
    sim.stop();
    assert_eq!(sim.send(Event::Start), NOTHING);
    assert_eq!(sim.exit(code(0)), vec![exited(code(0)), stopped(Some(code(0)), false), Action::Spawn]);
}

#[test]
fn a_restart_that_needs_sigkill_still_spawns() {
    let mut sim = Sim::running(config());
    sim.send(Event::Restart);
    assert_eq!(sim.tick_at_deadline(), vec![kill_after_timeout(secs(2)), signal(100, SIGKILL)]);
    assert_eq!(
        sim.exit(killed_by(SIGKILL)),
        vec![exited(killed_by(SIGKILL)), stopped(Some(killed_by(SIGKILL)), true), Action::Spawn]
    );
}

#[test]
fn stop_after_restart_cancels_the_start() {
    let mut sim = Sim::running(config());
    sim.send(Event::Restart);
    assert_eq!(sim.send(Event::Stop), NOTHING);
    assert!(matches!(sim.state(), State::Stopping { then: Then::StayDown, .. }));
    assert_eq!(sim.exit(code(0)), vec![exited(code(0)), stopped(Some(code(0)), false)]);
    assert_eq!(sim.state(), &State::Stopped);
}

#[test]
fn kill_after_restart_cancels_the_start() {
    let mut sim = Sim::running(config());
    sim.send(Event::Restart);
    assert_eq!(sim.send(Event::Kill), vec![signal(100, SIGKILL)]);
    assert_eq!(
        sim.exit(killed_by(SIGKILL)),
        vec![exited(killed_by(SIGKILL)), stopped(Some(killed_by(SIGKILL)), true)]
    );
    assert_eq!(sim.state(), &State::Stopped);
}

#[test]
fn restart_after_the_service_exited_spawns_at_once() {
    let mut sim = Sim::running(policy(RestartPolicy::Never));
    sim.exit(code(0));
    assert_eq!(sim.send(Event::Restart), vec![Action::Spawn]);
    assert_eq!(sim.state(), &State::Stopped);
}

// ======================================================================
// Process groups: leftovers after the leader exits
// ======================================================================

#[test]
fn a_leader_exit_leaving_its_group_signals_the_leftovers_and_waits() {
    let mut sim = Sim::running(grouped());
    sim.at(secs(1));
    assert_eq!(
        sim.exit_leaving_group(code(1)),
        vec![exited(code(1)), leftovers(SIGTERM), group_signal(100, SIGTERM), group_signal(100, SIGCONT),]
    );
    assert_eq!(
        sim.state(),
        &State::Stopping {
            leader: 100,
            leader_alive: false,
            kill_at: Some(secs(3)),
            killed: false,
            then: Then::Decide { status: code(1), ran_for: secs(1) },
        }
    );
    assert_eq!(sim.svc.pid(), None, "the leader is gone");
    assert_eq!(sim.svc.deadline(), Some(secs(3)));
    assert!(!sim.svc.is_down());

    // Once the group is empty, the policy decides on the leader's exit.
    assert_eq!(sim.at(ms(1_500)).send(Event::GroupEmpty), vec![restarting(ms(100), 1)]);
    assert_eq!(sim.state(), &State::Backoff { until: ms(1_600) });
}

#[test]
fn leftovers_under_never_end_the_service_only_once_the_group_is_empty() {
    let mut sim = Sim::running(Config { restart: RestartPolicy::Never, ..grouped() });
    let actions = sim.at(secs(1)).exit_leaving_group(code(1));
    assert!(!actions.contains(&ended(1)), "not ended while leftovers run: {actions:?}");
    assert_eq!(sim.at(secs(2)).send(Event::GroupEmpty), vec![ended(1)]);
    assert_eq!(sim.state(), &State::Exited { status: code(1), at: secs(2) });
}

#[test]
fn leftovers_that_ignore_the_stop_signal_are_killed_and_the_leaders_exit_decides() {
    let mut sim = Sim::running(Config { restart: RestartPolicy::OnFailure, ..grouped() });
    sim.at(secs(1)).exit_leaving_group(code(0));
    assert_eq!(sim.at(secs(3) - ms(1)).tick(), NOTHING);
    assert_eq!(sim.at(secs(3)).tick(), vec![kill_after_timeout(secs(2)), group_signal(100, SIGKILL)]);
    assert_eq!(sim.svc.deadline(), None);
    // The leader exited 0: a success, whatever became of its leftovers.
    assert_eq!(sim.send(Event::GroupEmpty), vec![ended(0)]);
    assert_eq!(sim.state(), &State::Exited { status: code(0), at: secs(3) });
    assert!(sim.svc.was_killed());
}

#[test]
fn the_run_time_of_a_leader_with_leftovers_ends_at_the_leaders_exit() {
    let mut sim = Sim::running(Config { start_limit_burst: 1_000, ..grouped() });
    for _ in 0..2 {
        sim.crash_after(secs(1));
        sim.restart_after_backoff();
    }
    // Next quick failure waits 400 ms. The leader runs 9 s, the leftovers
    // take 5 s more: the run was still quick.
    sim.after(secs(9)).exit_leaving_group(code(1));
    assert_eq!(sim.after(secs(5)).send(Event::GroupEmpty), vec![restarting(ms(400), 3)]);
}

#[test]
fn group_remains_is_not_waited_for_without_a_process_group() {
    let mut sim = Sim::running(config());
    assert_eq!(sim.at(secs(1)).exit_leaving_group(code(1)), vec![exited(code(1)), restarting(ms(100), 1)]);
    assert_eq!(sim.state(), &State::Backoff { until: ms(1_100) });
}

#[test]
fn a_stop_with_a_process_group_completes_only_when_the_group_is_empty() {
    let mut sim = Sim::running(grouped());
    sim.at(secs(1)).send(Event::Stop);
    assert_eq!(sim.after(ms(10)).exit_leaving_group(killed_by(SIGTERM)), vec![exited(killed_by(SIGTERM))]);
    assert_eq!(
        sim.state(),
        &State::Stopping {
            leader: 100,
            leader_alive: false,
            kill_at: Some(secs(3)),
            killed: false,
            then: Then::StayDown,
        }
    );
    assert_eq!(sim.svc.pid(), None);
    assert_eq!(sim.svc.deadline(), Some(secs(3)));
    assert_eq!(sim.send(Event::GroupEmpty), vec![stopped(Some(killed_by(SIGTERM)), false)]);
    assert_eq!(sim.state(), &State::Stopped);
}

#[test]
fn a_stop_with_leftovers_escalates_to_sigkill_on_the_group() {
    let mut sim = Sim::running(grouped());
    sim.send(Event::Stop);
    sim.exit_leaving_group(killed_by(SIGTERM));
    assert_eq!(sim.tick_at_deadline(), vec![kill_after_timeout(secs(2)), group_signal(100, SIGKILL)]);
    assert_eq!(sim.send(Event::GroupEmpty), vec![stopped(Some(killed_by(SIGTERM)), true)]);
}

#[test]
fn group_empty_while_the_leader_lives_is_ignored() {
    let mut sim = Sim::running(grouped());
    sim.send(Event::Stop);
    let stopping = sim.state().clone();
    assert_eq!(sim.send(Event::GroupEmpty), NOTHING);
    assert_eq!(sim.state(), &stopping);
}

#[test]
fn stop_while_clearing_leftovers_stays_down() {
    let mut sim = Sim::running(grouped());
    sim.at(secs(1)).exit_leaving_group(code(1));
    assert_eq!(sim.send(Event::Stop), NOTHING);
    assert!(matches!(sim.state(), State::Stopping { then: Then::StayDown, .. }));
    assert_eq!(sim.send(Event::GroupEmpty), vec![stopped(Some(code(1)), false)]);
    assert_eq!(sim.state(), &State::Stopped);
}

#[test]
fn restart_while_clearing_leftovers_spawns_once_the_group_is_empty() {
    let mut sim = Sim::running(Config { restart: RestartPolicy::Never, ..grouped() });
    sim.at(secs(1)).exit_leaving_group(code(1));
    assert_eq!(sim.send(Event::Restart), NOTHING);
    assert_eq!(sim.send(Event::GroupEmpty), vec![stopped(Some(code(1)), false), Action::Spawn]);
}

#[test]
fn kill_while_clearing_leftovers_kills_the_group_once() {
    let mut sim = Sim::running(grouped());
    sim.exit_leaving_group(code(1));
    assert_eq!(sim.send(Event::Kill), vec![group_signal(100, SIGKILL)]);
    assert_eq!(sim.send(Event::Kill), NOTHING);
    assert_eq!(sim.svc.deadline(), None);
}

// ======================================================================
// Stale pids
// ======================================================================

#[test]
fn the_exit_of_a_stale_pid_is_ignored() {
    let mut sim = Sim::running(config());
    sim.crash_after(secs(1));
    assert_eq!(sim.send(exit_of(100, code(1))), NOTHING, "in backoff");
    sim.tick_at_deadline();
    assert_eq!(sim.send(exit_of(100, code(1))), NOTHING, "spawn pending");
    let pid = sim.fork();
    assert_eq!(pid, 101);
    assert_eq!(sim.send(exit_of(100, code(1))), NOTHING, "starting");
    assert_eq!(sim.state(), &State::Starting { pid: 101, since: sim.now });
    sim.send(Event::ExecConfirmed);
    let running = sim.state().clone();
    assert_eq!(sim.send(exit_of(100, code(1))), NOTHING, "running");
    assert_eq!(sim.state(), &running);
    sim.stop();
    let stopping = sim.state().clone();
    assert_eq!(sim.send(exit_of(100, code(1))), NOTHING, "stopping");
    assert_eq!(sim.send(Event::Exited { pid: 100, status: code(1), group_remains: true }), NOTHING);
    assert_eq!(sim.state(), &stopping);
    assert_eq!(sim.exit(code(0)), vec![exited(code(0)), stopped(Some(code(0)), false)]);
}

#[test]
fn a_second_exit_of_a_leader_already_reaped_is_ignored() {
    let mut sim = Sim::running(grouped());
    sim.exit_leaving_group(code(1));
    let clearing = sim.state().clone();
    assert_eq!(sim.send(exit_of(100, code(1))), NOTHING);
    assert_eq!(sim.state(), &clearing);
}

// ======================================================================
// Ended and deadline()
// ======================================================================

fn count_ended(actions: &[Action]) -> usize {
    actions.iter().filter(|a| matches!(a, Action::Ended { .. })).count()
}

#[test]
fn ended_is_not_emitted_while_a_restart_is_coming_or_after_a_stop() {
    let mut sim = Sim::running(config());
    let mut all = Vec::new();
    all.extend(sim.crash_after(secs(1)));
    all.extend(sim.tick_at_deadline());
    sim.fork_and_exec();
    all.extend(sim.after(secs(1)).exit(code(0)));
    all.extend(sim.tick_at_deadline());
    sim.fork_and_exec();
    all.extend(sim.send(Event::Restart));
    all.extend(sim.exit(code(0)));
    sim.fork_and_exec();
    all.extend(sim.send(Event::Stop));
    all.extend(sim.tick_at_deadline());
    all.extend(sim.exit(killed_by(SIGKILL)));
    assert_eq!(count_ended(&all), 0, "{all:?}");
}

#[test]
fn ended_is_emitted_once_when_the_service_ends_for_good() {
    let mut sim = Sim::running(policy(RestartPolicy::Never));
    let mut all = sim.exit(code(4));
    for event in [Event::Tick, Event::Stop, Event::Kill, Event::GroupEmpty] {
        all.extend(sim.send(event));
    }
    assert_eq!(all, vec![exited(code(4)), ended(4)]);
}

#[test]
fn deadline_is_set_exactly_in_backoff_and_in_stopping_before_sigkill() {
    let mut sim = Sim::new(config());
    assert_eq!(sim.svc.deadline(), None, "stopped");
    sim.send(Event::Start);
    sim.fork();
    assert_eq!(sim.svc.deadline(), None, "starting");
    sim.send(Event::ExecConfirmed);
    assert_eq!(sim.svc.deadline(), None, "running");
    sim.crash_after(secs(1));
    assert_eq!(sim.svc.deadline(), Some(ms(1_100)), "backoff");
    sim.restart_after_backoff();
    sim.at(secs(2)).send(Event::Stop);
    assert_eq!(sim.svc.deadline(), Some(secs(4)), "stopping, SIGKILL pending");
    sim.tick_at_deadline();
    assert_eq!(sim.svc.deadline(), None, "stopping, SIGKILL sent");
    sim.exit(killed_by(SIGKILL));
    assert_eq!(sim.svc.deadline(), None, "stopped");
    let mut sim = failed_service();
    assert_eq!(sim.svc.deadline(), None, "failed");
    sim.send(Event::Start);
    sim.fork_and_exec();
    std::sync::Arc::make_mut(&mut sim.svc.config).restart = RestartPolicy::Never;
    sim.exit(code(0));
    assert_eq!(sim.svc.deadline(), None, "exited");
}

// ======================================================================
// Readiness, the watchdog, timeouts and health checks
// ======================================================================

/// A service that signals readiness (type notify, or a ready_check).
fn notify() -> Config {
    Config { needs_ready_signal: true, ..config() }
}

fn ready_notice() -> Action {
    Action::Notice(Notice::Ready)
}

impl Sim {
    /// Start by hand, fork at `now` and confirm the exec: running, not yet ready.
    fn start_waiting(&mut self) -> i32 {
        assert_eq!(self.send(Event::Start), vec![Action::Spawn]);
        let pid = self.fork();
        assert_eq!(self.send(Event::ExecConfirmed), vec![started(pid)]);
        assert!(matches!(self.state(), State::Running { ready: false, .. }), "{:?}", self.state());
        pid
    }

    /// The leader ends on the SIGTERM of a stop.
    fn exit_on_sigterm(&mut self) -> Vec<Action> {
        let leader = match self.state() {
            State::Stopping { leader, .. } => *leader,
            other => panic!("not stopping: {other:?}"),
        };
        self.send(exit_of(leader, killed_by(SIGTERM)))
    }

    fn stop_signals(&self, pid: i32) -> Vec<Action> {
        vec![stopping_notice(SIGTERM), signal(pid, SIGTERM), signal(pid, SIGCONT)]
    }
}

/// What a stop for `failure` under `restart: never` ends with, once the
/// process ended on the SIGTERM: its exit, the failure, and Ended.
fn failed_after_sigterm(failure: &Failure) -> Vec<Action> {
    vec![exited(killed_by(SIGTERM)), Action::Notice(Notice::Failed { failure: failure.clone() }), ended(1)]
}

fn then(mut first: Vec<Action>, rest: Vec<Action>) -> Vec<Action> {
    first.extend(rest);
    first
}

#[test]
fn ready_moves_a_started_service_to_ready_once() {
    let mut sim = Sim::new(notify());
    let pid = sim.start_waiting();
    assert_eq!(sim.svc.state_name().as_str(), "starting");
    assert!(!sim.svc.is_ready());
    assert_eq!(sim.after(ms(300)).send(Event::Ready), vec![ready_notice()]);
    assert_eq!(sim.state(), &State::Running { pid, since: Time::ZERO, ready: true, timer: None });
    assert_eq!(sim.svc.state_name().as_str(), "ready");
    assert!(sim.svc.is_ready());
    assert_eq!(sim.send(Event::Ready), NOTHING, "a second READY=1 changes nothing");
}

#[test]
fn ready_before_the_exec_confirmation_means_it_ran_and_is_ready() {
    let mut sim = Sim::new(notify());
    sim.send(Event::Start);
    let pid = sim.fork();
    assert_eq!(sim.send(Event::Ready), vec![started(pid), ready_notice()]);
    assert!(matches!(sim.state(), State::Running { ready: true, .. }));
}

#[test]
fn ready_watchdog_and_health_events_change_nothing_without_a_running_process() {
    let mut states = vec![Sim::new(notify()), failed_service()];
    let mut backoff = Sim::running(config());
    backoff.crash_after(secs(1));
    states.push(backoff);
    let mut exited = Sim::running(policy(RestartPolicy::Never));
    exited.exit(code(0));
    states.push(exited);
    let mut stopping = Sim::new(notify());
    stopping.start_waiting();
    stopping.stop();
    states.push(stopping);
    for mut sim in states {
        let before = sim.state().clone();
        for event in [Event::Ready, Event::WatchdogPing, Event::HealthFailed { failures: 3 }] {
            assert_eq!(sim.send(event.clone()), NOTHING, "{before:?} + {event:?}");
            assert_eq!(sim.state(), &before, "{event:?}");
        }
    }
    // A service without a readiness signal is ready at once: READY=1 is moot.
    let mut sim = Sim::running(config());
    let before = sim.state().clone();
    assert_eq!(sim.send(Event::Ready), NOTHING);
    assert_eq!(sim.state(), &before);
}

#[test]
fn start_timeout_stops_the_service_and_the_exit_is_told_and_kept() {
    let config = Config { start_timeout: Some(secs(5)), ..notify() };
    let mut sim = Sim::new(config);
    let pid = sim.start_waiting();
    assert_eq!(sim.svc.deadline(), Some(secs(5)), "counted from the fork");
    assert_eq!(sim.at(secs(5) - ms(1)).tick(), NOTHING);
    assert_eq!(
        sim.at(secs(5)).tick(),
        then(vec![Action::Notice(Notice::NotReadyInTime { timeout: secs(5) })], sim.stop_signals(pid))
    );
    // The exit line is logged as for any end, then the restart policy.
    assert_eq!(sim.after(ms(10)).exit_on_sigterm(), vec![exited(killed_by(SIGTERM)), restarting(ms(100), 1)]);
    let failure = Failure::StartTimeout(secs(5));
    assert_eq!(
        sim.svc.last_ending(),
        Some(&(Ending::Stopped { failure, status: Some(killed_by(SIGTERM)) }, secs(5) + ms(10)))
    );
    assert!(matches!(sim.state(), State::Backoff { .. }));
}

#[test]
fn start_timeout_under_never_fails_with_the_reason_and_says_so() {
    let config = Config { start_timeout: Some(secs(5)), restart: RestartPolicy::Never, ..notify() };
    let mut sim = Sim::new(config);
    sim.start_waiting();
    sim.tick_at_deadline();
    let failure = Failure::StartTimeout(secs(5));
    assert_eq!(sim.exit_on_sigterm(), failed_after_sigterm(&failure));
    assert_eq!(sim.state(), &State::Failed { reason: FailReason::Failure(failure), at: secs(5) });
    let report = super::super::ending::exit_report(&sim.svc.last_ending().unwrap().0, secs(5), false, None);
    assert_eq!((report.kind.as_str(), report.message.as_str()), ("start_timeout", "start timeout after 5s"));
}

#[test]
fn ready_ends_the_start_timeout_and_arms_the_watchdog() {
    let config = Config { start_timeout: Some(secs(5)), watchdog: Some(secs(1)), ..notify() };
    let mut sim = Sim::new(config);
    let pid = sim.start_waiting();
    assert_eq!(sim.at(secs(2)).send(Event::Ready), vec![ready_notice()]);
    assert_eq!(
        sim.state(),
        &State::Running { pid, since: Time::ZERO, ready: true, timer: Some((secs(3), Timer::Watchdog)) }
    );
    // Each WATCHDOG=1 pushes the deadline one watchdog period from now.
    assert_eq!(sim.at(secs(2) + ms(500)).send(Event::WatchdogPing), NOTHING);
    assert_eq!(sim.svc.deadline(), Some(secs(3) + ms(500)));
    assert_eq!(sim.at(secs(3) + ms(499)).tick(), NOTHING);
    assert_eq!(
        sim.at(secs(3) + ms(500)).tick(),
        then(vec![Action::Notice(Notice::WatchdogExpired { timeout: secs(1) })], sim.stop_signals(pid))
    );
    assert_eq!(sim.exit_on_sigterm(), vec![exited(killed_by(SIGTERM)), restarting(ms(100), 1)]);
}

#[test]
fn a_watchdog_ping_without_a_watchdog_changes_nothing() {
    let mut sim = Sim::new(notify());
    sim.start_waiting();
    sim.send(Event::Ready);
    let before = sim.state().clone();
    assert_eq!(sim.after(secs(1)).send(Event::WatchdogPing), NOTHING);
    assert_eq!(sim.state(), &before);
    assert_eq!(sim.svc.deadline(), None);
}

#[test]
fn repeated_watchdog_failures_hit_the_start_limit() {
    let config = Config { watchdog: Some(secs(1)), ..notify() };
    let mut sim = Sim::new(config);
    sim.start_waiting();
    sim.send(Event::Ready);
    for round in 1..=3 {
        sim.tick_at_deadline();
        let actions = sim.exit_on_sigterm();
        assert!(
            matches!(actions.last(), Some(Action::Notice(Notice::Restarting { .. }))),
            "{round}: {actions:?}"
        );
        assert_eq!(sim.tick_at_deadline(), vec![Action::Spawn]);
        let pid = sim.fork();
        assert_eq!(sim.send(Event::ExecConfirmed), vec![started(pid)]);
        sim.send(Event::Ready);
    }
    sim.tick_at_deadline();
    assert_eq!(sim.exit_on_sigterm(), vec![exited(killed_by(SIGTERM)), limit_hit(4, secs(10)), ended(1)]);
    assert!(matches!(sim.state(), State::Failed { reason: FailReason::StartLimit { .. }, .. }));
}

#[test]
fn extend_pushes_the_current_deadline_and_never_pulls_it_in() {
    let config = Config { start_timeout: Some(secs(5)), ..notify() };
    let mut sim = Sim::new(config);
    sim.start_waiting();
    assert_eq!(sim.at(secs(1)).send(Event::Extend { by: secs(10) }), NOTHING);
    assert_eq!(sim.svc.deadline(), Some(secs(11)));
    assert_eq!(sim.send(Event::Extend { by: secs(1) }), NOTHING);
    assert_eq!(sim.svc.deadline(), Some(secs(11)), "a shorter extension does not shorten it");
    assert_eq!(sim.at(secs(6)).tick(), NOTHING, "the original 5 s no longer apply");
}

#[test]
fn a_oneshot_past_its_timeout_is_stopped_as_timed_out() {
    let config =
        Config { oneshot: true, oneshot_timeout: Some(secs(1)), restart: RestartPolicy::Never, ..config() };
    let mut sim = Sim::new(config);
    let pid = sim.start_waiting();
    assert_eq!(sim.svc.state_name().as_str(), "running", "a oneshot is running, not starting");
    assert_eq!(
        sim.tick_at_deadline(),
        then(vec![Action::Notice(Notice::TimedOut { timeout: secs(1) })], sim.stop_signals(pid))
    );
    let failure = Failure::Timeout(secs(1));
    assert_eq!(sim.exit_on_sigterm(), failed_after_sigterm(&failure));
    assert_eq!(sim.state(), &State::Failed { reason: FailReason::Failure(failure), at: secs(1) });
}

#[test]
fn a_health_failure_under_never_leaves_the_service_down_and_failed() {
    let mut sim = Sim::running(policy(RestartPolicy::Never));
    let pid = sim.pid();
    assert_eq!(
        sim.at(secs(3)).send(Event::HealthFailed { failures: 3 }),
        then(vec![Action::Notice(Notice::Unhealthy { failures: 3 })], sim.stop_signals(pid))
    );
    let failure = Failure::Health { failures: 3 };
    assert_eq!(sim.exit_on_sigterm(), failed_after_sigterm(&failure));
    assert_eq!(sim.state(), &State::Failed { reason: FailReason::Failure(failure), at: secs(3) });
    assert_eq!(
        FailReason::Failure(Failure::Health { failures: 3 }).describe(),
        "health check failed (3 times)"
    );
    assert_eq!(sim.svc.restarts(), 0);
    for event in [Event::Tick, Event::HealthFailed { failures: 3 }, Event::GroupEmpty] {
        assert_eq!(sim.send(event), NOTHING, "it stays down");
    }
}

#[test]
fn a_health_failure_restarts_through_the_backoff_not_at_once() {
    let mut sim = Sim::running(unlimited());
    for (round, delay) in [(1, ms(100)), (2, ms(200)), (3, ms(400))] {
        let pid = sim.pid();
        sim.after(secs(1)).send(Event::HealthFailed { failures: 3 });
        assert_eq!(sim.exit_on_sigterm(), vec![exited(killed_by(SIGTERM)), restarting(delay, round)]);
        assert_eq!(sim.state(), &State::Backoff { until: sim.now + delay }, "waits restart_delay");
        assert_eq!(sim.svc.restarts(), round);
        assert_ne!(sim.restart_after_backoff(), pid);
    }
    // After a long healthy run, the delay starts over.
    sim.after(secs(20)).send(Event::HealthFailed { failures: 3 });
    assert_eq!(sim.exit_on_sigterm(), vec![exited(killed_by(SIGTERM)), restarting(ms(100), 4)]);
}

#[test]
fn health_failures_count_toward_the_start_limit() {
    let mut sim = Sim::running(config());
    for _ in 0..3 {
        sim.after(ms(500)).send(Event::HealthFailed { failures: 2 });
        sim.exit_on_sigterm();
        sim.restart_after_backoff();
    }
    sim.after(ms(500)).send(Event::HealthFailed { failures: 2 });
    assert_eq!(sim.exit_on_sigterm(), vec![exited(killed_by(SIGTERM)), limit_hit(4, secs(10)), ended(1)]);
    assert!(matches!(sim.state(), State::Failed { reason: FailReason::StartLimit { .. }, .. }));
}

#[test]
fn a_stop_asked_during_a_failure_stop_just_stays_down() {
    let mut sim = Sim::running(config());
    sim.send(Event::HealthFailed { failures: 3 });
    assert_eq!(sim.send(Event::Stop), NOTHING);
    assert_eq!(
        sim.exit_on_sigterm(),
        vec![exited(killed_by(SIGTERM)), stopped(Some(killed_by(SIGTERM)), false)]
    );
    assert_eq!(sim.state(), &State::Stopped);
}

#[test]
fn up_since_is_the_fork_time_while_a_process_lives() {
    let mut sim = Sim::new(notify());
    assert_eq!(sim.svc.up_since(), None);
    sim.at(secs(2)).send(Event::Start);
    sim.fork();
    assert_eq!(sim.svc.up_since(), Some(secs(2)), "starting");
    sim.after(ms(10)).send(Event::ExecConfirmed);
    assert_eq!(sim.svc.up_since(), Some(secs(2)), "running, not ready");
    sim.after(secs(1)).send(Event::Ready);
    assert_eq!(sim.svc.up_since(), Some(secs(2)), "ready");
    sim.stop();
    assert_eq!(sim.svc.up_since(), Some(secs(2)), "stopping");
    sim.exit_on_sigterm();
    assert_eq!(sim.svc.up_since(), None, "stopped");
}

// ======================================================================
// Random event sequences
// ======================================================================

#[derive(Debug, Clone)]
enum Step {
    Start,
    Stop,
    Restart,
    Kill,
    /// The loop forked (a fresh pid).
    Spawned,
    ExecConfirmed,
    SpawnFailed,
    /// The current leader (or, when there is none, some pid) exits.
    ExitLeader {
        status: ExitStatus,
        group_remains: bool,
    },
    /// A pid that is not the leader exits.
    ExitStale {
        status: ExitStatus,
        group_remains: bool,
    },
    GroupEmpty,
    Tick,
    /// Jump to the deadline (if any) and tick.
    TickAtDeadline,
    Ready,
    WatchdogPing,
    HealthFailed,
    Extend(Duration),
}

fn arb_status() -> impl Strategy<Value = ExitStatus> {
    prop_oneof![
        (0..5i32).prop_map(ExitStatus::Code),
        (1..32i32).prop_map(|signal| ExitStatus::Signaled { signal, core_dumped: false }),
    ]
}

fn arb_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => Just(Step::Start),
        1 => Just(Step::Stop),
        1 => Just(Step::Restart),
        1 => Just(Step::Kill),
        3 => Just(Step::Spawned),
        2 => Just(Step::ExecConfirmed),
        1 => Just(Step::SpawnFailed),
        4 => (arb_status(), any::<bool>())
            .prop_map(|(status, group_remains)| Step::ExitLeader { status, group_remains }),
        1 => (arb_status(), any::<bool>())
            .prop_map(|(status, group_remains)| Step::ExitStale { status, group_remains }),
        2 => Just(Step::GroupEmpty),
        1 => Just(Step::Tick),
        3 => Just(Step::TickAtDeadline),
        2 => Just(Step::Ready),
        1 => Just(Step::WatchdogPing),
        2 => Just(Step::HealthFailed),
        1 => (0..5_000u64).prop_map(|n| Step::Extend(ms(n))),
    ]
}

/// How far time moves before a step: often not at all, sometimes past the
/// backoff reset or the start-limit interval.
fn arb_elapsed() -> impl Strategy<Value = Duration> {
    prop_oneof![
        3 => Just(Duration::ZERO),
        3 => (0..3_000u64).prop_map(Duration::from_millis),
        1 => (0..30_000u64).prop_map(Duration::from_millis),
    ]
}

fn arb_config() -> impl Strategy<Value = Config> {
    (
        prop_oneof![Just(RestartPolicy::Always), Just(RestartPolicy::OnFailure), Just(RestartPolicy::Never)],
        prop_oneof![Just(vec![0]), Just(vec![0, 3]), Just(vec![])],
        // 3 s is above restart_delay_max (2 s): the delay must not shrink.
        prop_oneof![Just(0u64), Just(100), Just(700), Just(3_000)],
        0..4u32,
        prop_oneof![Just(SIGTERM), Just(SIGKILL), Just(SIGCONT)],
        prop_oneof![Just(0u64), Just(2_000)],
        any::<bool>(),
        // Readiness: none, a signal (notify, ready_check), or a oneshot.
        prop_oneof![Just((false, false)), Just((true, false)), Just((false, true))],
        (
            prop::option::of((1..4_000u64).prop_map(ms)),
            prop::option::of((1..4_000u64).prop_map(ms)),
            prop::option::of((1..4_000u64).prop_map(ms)),
            prop::option::of((1..8_000u64).prop_map(ms)),
        ),
    )
        .prop_map(
            |(
                restart,
                success_exit_codes,
                delay,
                burst,
                stop_signal,
                timeout,
                process_group,
                (needs_ready_signal, oneshot),
                (start_timeout, watchdog, oneshot_timeout, runtime_max),
            )| Config {
                restart,
                success_exit_codes,
                restart_delay: ms(delay),
                restart_delay_max: ms(2_000),
                start_limit_burst: burst,
                start_limit_interval: secs(10),
                stop_signal,
                stop_timeout: ms(timeout),
                process_group,
                needs_ready_signal,
                oneshot,
                start_timeout,
                watchdog,
                oneshot_timeout,
                runtime_max,
            },
        )
}

fn is_idle(state: &State) -> bool {
    matches!(state, State::Exited { .. } | State::Failed { .. })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_event_sequences_keep_the_invariants(
        config in arb_config(),
        steps in prop::collection::vec((arb_elapsed(), arb_step()), 0..80),
    ) {
        let mut svc = Service::new(config.clone());
        let mut now = Time::ZERO;
        let mut next_pid = 100;
        // An Ended was emitted and no Start or Restart came since.
        let mut ended_for_good = false;
        // SIGKILLs sent since the current stop began.
        let mut sigkills_this_stop = 0;
        // A Start or Restart came since the last Spawn.
        let mut start_asked = false;

        for (elapsed, step) in steps {
            now += elapsed;
            let event = match step {
                Step::Start => Event::Start,
                Step::Stop => Event::Stop,
                Step::Restart => Event::Restart,
                Step::Kill => Event::Kill,
                Step::Spawned => {
                    next_pid += 1;
                    Event::Spawned { pid: next_pid }
                }
                Step::ExecConfirmed => Event::ExecConfirmed,
                Step::SpawnFailed => Event::SpawnFailed { failure: start_failure("boom") },
                Step::ExitLeader { status, group_remains } => {
                    let pid = match svc.state() {
                        State::Stopping { leader, .. } => *leader,
                        _ => svc.pid().unwrap_or(next_pid),
                    };
                    Event::Exited { pid, status, group_remains }
                }
                Step::ExitStale { status, group_remains } => Event::Exited { pid: 1, status, group_remains },
                Step::GroupEmpty => Event::GroupEmpty,
                Step::Tick => Event::Tick,
                Step::TickAtDeadline => {
                    if let Some(deadline) = svc.deadline() {
                        now = now.max(deadline);
                    }
                    Event::Tick
                }
                Step::Ready => Event::Ready,
                Step::WatchdogPing => Event::WatchdogPing,
                Step::HealthFailed => Event::HealthFailed { failures: 3 },
                Step::Extend(by) => Event::Extend { by },
            };
            let before = svc.state().clone();
            let deadline_before = svc.deadline();
            if matches!(event, Event::Start | Event::Restart) {
                ended_for_good = false;
                start_asked = true;
            }

            let actions = svc.handle(now, event.clone());
            let after = svc.state().clone();
            let ctx = || format!("{before:?} + {event:?} at {now:?} -> {after:?}, {actions:?}");

            // At most one Spawn per call, and a Spawn leaves the state waiting for Spawned.
            let spawns = actions.iter().filter(|a| **a == Action::Spawn).count();
            prop_assert!(spawns <= 1, "{}", ctx());
            if spawns == 1 {
                prop_assert_eq!(&after, &State::Stopped, "{}", ctx());
                prop_assert!(!ended_for_good, "Spawn after Ended without Start/Restart: {}", ctx());
                // A Spawn has a reason: asked by hand with nothing running, a
                // backoff that ran out, an immediate restart, or a stop that
                // was asked to start again.
                let asked = matches!(event, Event::Start | Event::Restart)
                    && matches!(
                        before,
                        State::Stopped | State::Exited { .. } | State::Failed { .. } | State::Backoff { .. }
                    );
                let backoff_over = matches!(before, State::Backoff { .. }) && matches!(event, Event::Tick);
                let immediate = actions.iter().any(|a| {
                    matches!(a, Action::Notice(Notice::Restarting { delay, .. }) if delay.is_zero())
                });
                let start_after_stop = matches!(before, State::Stopping { then: Then::Start, .. });
                prop_assert!(asked || backoff_over || immediate || start_after_stop, "unasked Spawn: {}", ctx());
                // Under `never`, nothing but a request starts it again (not
                // a failed health check, not a timer).
                if config.restart == RestartPolicy::Never {
                    prop_assert!(start_asked, "a Spawn under restart: never that nobody asked for: {}", ctx());
                }
                start_asked = false;
            }

            // Ended exactly when the service goes down for good.
            let ends = actions.iter().filter(|a| matches!(a, Action::Ended { .. })).count();
            let goes_down_for_good = is_idle(&after) && !is_idle(&before);
            prop_assert_eq!(ends, usize::from(goes_down_for_good), "{}", ctx());
            if ends == 1 {
                ended_for_good = true;
            }

            // pid() is Some iff a leader lives, and it is that leader.
            let expected_pid = match &after {
                State::Starting { pid, .. } | State::Running { pid, .. } => Some(*pid),
                State::Stopping { leader, leader_alive: true, .. } => Some(*leader),
                _ => None,
            };
            prop_assert_eq!(svc.pid(), expected_pid, "{}", ctx());

            // deadline() is Some exactly in Backoff, in Stopping before
            // SIGKILL, and while a running service's timer is armed.
            let expected_deadline = match &after {
                State::Backoff { until } => Some(*until),
                State::Stopping { kill_at, .. } => *kill_at,
                State::Running { timer, since, .. } => {
                    let runtime = config.runtime_max.map(|limit| *since + limit);
                    match (timer.map(|(at, _)| at), runtime) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    }
                }
                _ => None,
            };
            prop_assert_eq!(svc.deadline(), expected_deadline, "{}", ctx());
            // runtime_max: a process that reached it is being stopped.
            if let (State::Running { since, .. }, Some(limit)) = (&after, config.runtime_max) {
                prop_assert!(
                    now < *since + limit || !matches!(event, Event::Tick),
                    "ran past runtime_max: {}", ctx()
                );
            }
            // A deadline set by this call is not in the past (a running
            // service's timers count from its fork, so they may be due at once).
            if let Some(deadline) = svc.deadline() {
                if Some(deadline) != deadline_before && !matches!(after, State::Running { .. }) {
                    prop_assert!(deadline >= now, "{}", ctx());
                }
            }

            // A failure (health, a timer) never restarts at once: it stops
            // the process, and the restart policy decides once it is gone.
            if matches!(event, Event::HealthFailed { .. } | Event::Tick)
                && matches!(before, State::Running { .. })
            {
                prop_assert_eq!(spawns, 0, "{}", ctx());
            }
            // A health failure stops a running service and nothing else.
            if matches!(event, Event::HealthFailed { .. }) {
                let stops = matches!(before, State::Running { .. });
                prop_assert_eq!(matches!(after, State::Stopping { .. }), stops || matches!(before, State::Stopping { .. }), "{}", ctx());
                if !stops {
                    prop_assert!(actions.is_empty(), "{}", ctx());
                }
            }
            // Ready only after a readiness signal, for services that need one;
            // a oneshot is never "ready" while it runs.
            if let State::Running { ready: true, .. } = &after {
                prop_assert!(!config.oneshot, "{}", ctx());
                if config.needs_ready_signal {
                    let was_ready = matches!(before, State::Running { ready: true, .. });
                    prop_assert!(was_ready || matches!(event, Event::Ready), "{}", ctx());
                }
            }
            // The state a failure leaves under `never` says why.
            if let (State::Failed { reason: FailReason::Failure(_), .. }, false) = (&after, is_idle(&before)) {
                prop_assert_eq!(config.restart, RestartPolicy::Never, "{}", ctx());
            }
            // up_since() is the fork time exactly while a leader lives.
            prop_assert_eq!(svc.up_since().is_some(), svc.pid().is_some(), "{}", ctx());
            if let (Some(since), State::Starting { since: fork, .. } | State::Running { since: fork, .. }) =
                (svc.up_since(), &after)
            {
                prop_assert_eq!(since, *fork, "{}", ctx());
            }

            // A Tick before the deadline (or with none) does nothing.
            let early = match deadline_before {
                Some(deadline) => now < deadline,
                None => true,
            };
            if matches!(event, Event::Tick) && early {
                prop_assert!(actions.is_empty(), "{}", ctx());
                prop_assert_eq!(&after, &before, "{}", ctx());
            }

            // is_down() agrees with the state.
            prop_assert_eq!(
                svc.is_down(),
                matches!(after, State::Stopped | State::Exited { .. } | State::Failed { .. } | State::Backoff { .. }),
                "{}", ctx()
            );

            if let State::Stopping { leader_alive, kill_at, killed, .. } = &after {
                // SIGKILL pending xor sent.
                prop_assert_eq!(kill_at.is_none(), *killed, "{}", ctx());
                // Leftovers are waited for only in a group of our own.
                prop_assert!(*leader_alive || config.process_group, "{}", ctx());
            }

            // Signals go to the leader of the stop in progress, to its group
            // exactly when the service has one, and SIGKILL at most once a stop.
            if !matches!(before, State::Stopping { .. }) {
                sigkills_this_stop = 0;
            }
            for action in &actions {
                if let Action::Signal { pid, signal, group } = action {
                    let State::Stopping { leader, .. } = &after else {
                        return Err(TestCaseError::fail(format!("signal outside a stop: {}", ctx())));
                    };
                    prop_assert_eq!(pid, leader, "{}", ctx());
                    prop_assert_eq!(*group, config.process_group, "{}", ctx());
                    prop_assert!(
                        [config.stop_signal, SIGCONT, SIGKILL].contains(signal),
                        "{}", ctx()
                    );
                    if *signal == SIGKILL {
                        sigkills_this_stop += 1;
                    }
                }
            }
            prop_assert!(sigkills_this_stop <= 1, "{}", ctx());

            // Restart notices count the policy's restarts and stay within bounds.
            for action in &actions {
                if let Action::Notice(Notice::Restarting { delay, restarts }) = action {
                    prop_assert_ne!(config.restart, RestartPolicy::Never, "{}", ctx());
                    prop_assert_eq!(*restarts, svc.restarts(), "{}", ctx());
                    prop_assert!(*delay >= config.restart_delay, "{}", ctx());
                    prop_assert!(*delay <= config.restart_delay_max.max(config.restart_delay), "{}", ctx());
                    match &after {
                        State::Backoff { until } => prop_assert_eq!(*until, now + *delay, "{}", ctx()),
                        State::Stopped => prop_assert!(delay.is_zero() && spawns == 1, "{}", ctx()),
                        other => prop_assert!(false, "restarting into {:?}: {}", other, ctx()),
                    }
                }
            }
        }
    }
}

// ======================================================================
// runtime_max
// ======================================================================

fn runtime(limit: Duration) -> Config {
    Config { runtime_max: Some(limit), ..config() }
}

fn runtime_reached(limit: Duration) -> Action {
    Action::Notice(Notice::RuntimeMaxReached { limit })
}

#[test]
fn runtime_max_stops_gracefully_at_the_limit_counted_from_the_fork() {
    let mut sim = Sim::new(runtime(secs(60)));
    sim.at(secs(5));
    let pid = sim.start_running();
    assert_eq!(sim.svc.deadline(), Some(secs(65)), "from the fork, not from now");
    assert_eq!(sim.at(secs(64)).tick(), NOTHING, "not before");
    assert_eq!(sim.tick_at_deadline(), then(vec![runtime_reached(secs(60))], sim.stop_signals(pid)));
    assert!(matches!(sim.state(), State::Stopping { kill_at: Some(at), .. } if *at == secs(67)));
    // Past stop_timeout: SIGKILL, as for any stop.
    assert_eq!(sim.tick_at_deadline(), vec![kill_after_timeout(secs(2)), signal(pid, SIGKILL)]);
}

#[test]
fn runtime_max_restarts_under_on_failure_with_the_first_delay_and_no_start_limit() {
    // Burst 3: a fourth failure within 10 s would fail it. Recycling every
    // second is not a failure of that kind: it never counts.
    let config = Config { restart: RestartPolicy::OnFailure, ..runtime(secs(1)) };
    let mut sim = Sim::new(config);
    sim.start_running();
    for round in 1..=8 {
        let pid = sim.pid();
        assert_eq!(sim.tick_at_deadline(), then(vec![runtime_reached(secs(1))], sim.stop_signals(pid)));
        assert_eq!(
            sim.exit_on_sigterm(),
            vec![exited(killed_by(SIGTERM)), restarting(ms(100), round)],
            "round {round}: the first delay every time"
        );
        assert_ne!(sim.restart_after_backoff(), pid);
    }
    let (ending, _) = sim.svc.last_ending().unwrap();
    assert_eq!(ending.describe(), "runtime_max reached (1s)");
    let report = crate::ending::exit_report(ending, Time::ZERO, false, None);
    assert_eq!(report.kind.as_str(), "runtime_max");
    assert_eq!(report.status, Some(killed_by(SIGTERM)), "how the process then ended is kept");
}

#[test]
fn runtime_max_under_never_leaves_the_service_failed_with_the_reason() {
    let mut sim = Sim::new(Config { restart: RestartPolicy::Never, ..runtime(secs(3)) });
    let pid = sim.start_running();
    assert_eq!(sim.tick_at_deadline(), then(vec![runtime_reached(secs(3))], sim.stop_signals(pid)));
    let failure = Failure::RuntimeMax(secs(3));
    assert_eq!(sim.exit_on_sigterm(), failed_after_sigterm(&failure));
    assert_eq!(sim.state(), &State::Failed { reason: FailReason::Failure(failure), at: secs(3) });
}

#[test]
fn runtime_max_and_the_watchdog_each_fire_at_their_own_time() {
    let config =
        Config { watchdog: Some(secs(2)), ..Config { needs_ready_signal: true, ..runtime(secs(5)) } };
    let mut sim = Sim::new(config.clone());
    let pid = sim.start_waiting();
    assert_eq!(sim.send(Event::Ready), vec![ready_notice()]);
    // Pinged in time, the watchdog never fires; runtime_max does, at 5 s.
    for t in [1, 2, 3, 4] {
        assert_eq!(sim.at(secs(t)).send(Event::WatchdogPing), NOTHING);
        assert_eq!(sim.tick(), NOTHING);
    }
    assert_eq!(sim.svc.deadline(), Some(secs(5)), "runtime_max is the earlier deadline");
    assert_eq!(sim.tick_at_deadline(), then(vec![runtime_reached(secs(5))], sim.stop_signals(pid)));
    // Without pings the watchdog (2 s) comes first.
    let mut sim = Sim::new(config);
    let pid = sim.start_waiting();
    sim.send(Event::Ready);
    assert_eq!(sim.svc.deadline(), Some(secs(2)));
    let watchdog = Action::Notice(Notice::WatchdogExpired { timeout: secs(2) });
    assert_eq!(sim.tick_at_deadline(), then(vec![watchdog], sim.stop_signals(pid)));
}

#[test]
fn without_runtime_max_a_running_service_has_no_deadline() {
    let sim = Sim::running(config());
    assert_eq!(sim.svc.deadline(), None);
}
