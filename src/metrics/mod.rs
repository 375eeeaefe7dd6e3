//! `tend metrics` and `GET /metrics`: the supervisor's state in the
//! Prometheus text exposition format (version 0.0.4, the "classic" one that
//! `promtool check metrics` reads).
//!
//! A small encoder of our own rather than the `prometheus-client` crate:
//! that one writes OpenMetrics, whose counter families are named without
//! `_total`, which `promtool check metrics` rejects (see DESIGN.md). Here a
//! family is written whole (`# HELP`, `# TYPE`, then every sample), counters
//! are named with their `_total`, label values are escaped as the format
//! says, and the tests check the text against promtool itself.
//!
//! What is measured comes from the core (states, counters, uptimes:
//! `tend_core::Core::metrics`) and from the loop (cgroup CPU and memory,
//! dropped lines, connections): this module only writes it out.

pub mod http;

use std::fmt::Write;
use tend_core::proto::ServiceState;
use tend_core::ServiceMetrics;

/// The `Content-Type` of the format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the loop adds to the core's figures for one service.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// CPU time of its cgroup, in microseconds.
    pub cpu_usec: Option<u64>,
    /// Memory of its cgroup, in bytes.
    pub memory_bytes: Option<u64>,
    /// Lines its log file could not take (a full disk), and those its
    /// syslog sink dropped.
    pub file_dropped: Option<u64>,
    pub syslog_dropped: Option<u64>,
}

/// The supervisor's own figures.
#[derive(Debug, Clone, Default)]
pub struct Supervisor {
    pub version: String,
    pub events_total: u64,
    /// Lines of services' output tend's own stdout and stderr dropped (a reader too slow).
    pub stdout_dropped: u64,
    pub stderr_dropped: u64,
    pub control_connections: usize,
    pub metrics_connections: usize,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
}

/// The text being written, one family at a time.
struct Exposition {
    out: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{label}=\"{}\"", escape_label(value));
            }
            self.out.push('}');
        }
        self.out.push(' ');
        self.out.push_str(&format_value(value));
        self.out.push('\n');
    }

    /// A family with one sample per service that has a value.
    fn per_service(
        &mut self,
        name: &str,
        kind: Kind,
        help: &str,
        services: &[(ServiceMetrics, Measured)],
        value: impl Fn(&ServiceMetrics, &Measured) -> Option<f64>,
    ) {
        let values: Vec<(&str, f64)> =
            services.iter().filter_map(|(s, m)| Some((s.name.as_str(), value(s, m)?))).collect();
        if values.is_empty() {
            return;
        }
        self.family(name, kind, help);
        for (service, value) in values {
            self.sample(name, &[("service", service)], value);
        }
    }
}

/// `\` and newline escaped (the format's rule for HELP text).
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// `\`, `"` and newline escaped (the format's rule for label values).
fn escape_label(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Integers without a fraction; `+Inf`, `-Inf`, `NaN` as the format spells them.
fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

/// Every state a service can be in, for the labelled `tend_service_state`.
const STATES: [ServiceState; 11] = [
    ServiceState::Stopped,
    ServiceState::Waiting,
    ServiceState::Blocked,
    ServiceState::Starting,
    ServiceState::Running,
    ServiceState::Ready,
    ServiceState::Stopping,
    ServiceState::Exited,
    ServiceState::Completed,
    ServiceState::Backoff,
    ServiceState::Failed,
];

fn flag(on: bool) -> f64 {
    if on {
        1.0
    } else {
        0.0
    }
}

/// The whole exposition.
pub fn render(tend: &Supervisor, services: &[(ServiceMetrics, Measured)]) -> String {
    let mut x = Exposition { out: String::with_capacity(1024 + services.len() * 1024) };
    x.family("tend_info", Kind::Gauge, "Always 1; the version of tend in a label.");
    x.sample("tend_info", &[("version", &tend.version)], 1.0);
    x.family("tend_services", Kind::Gauge, "Services defined (units loaded).");
    x.sample("tend_services", &[], services.len() as f64);
    x.family(
        "tend_events_total",
        Kind::Counter,
        "Events sent to followers of `tend events` since tend started (sent whether or not anyone follows).",
    );
    x.sample("tend_events_total", &[], tend.events_total as f64);
    x.family(
        "tend_output_dropped_lines_total",
        Kind::Counter,
        "Lines of services' output dropped from tend's own stdout or stderr because its reader was too slow (the history, log files and syslog still got them).",
    );
    x.sample("tend_output_dropped_lines_total", &[("stream", "stdout")], tend.stdout_dropped as f64);
    x.sample("tend_output_dropped_lines_total", &[("stream", "stderr")], tend.stderr_dropped as f64);
    x.family(
        "tend_control_connections",
        Kind::Gauge,
        "Connections open on the control socket (followers of logs and events included).",
    );
    x.sample("tend_control_connections", &[], tend.control_connections as f64);
    x.family(
        "tend_metrics_connections",
        Kind::Gauge,
        "Connections open on the metrics listener (this one included).",
    );
    x.sample("tend_metrics_connections", &[], tend.metrics_connections as f64);

    x.per_service(
        "tend_service_up",
        Kind::Gauge,
        "1 while the service's process runs (state running or ready), else 0.",
        services,
        |s, _| Some(flag(matches!(s.state, ServiceState::Running | ServiceState::Ready))),
    );
    if !services.is_empty() {
        x.family(
            "tend_service_state",
            Kind::Gauge,
            "The service's state as tend status shows it: 1 for the state it is in, 0 for the others.",
        );
        for (s, _) in services {
            for state in STATES {
                x.sample(
                    "tend_service_state",
                    &[("service", &s.name), ("state", state.as_str())],
                    flag(s.state == state),
                );
            }
        }
    }
    x.per_service("tend_service_ready", Kind::Gauge, "1 while the service is ready (running, for one without a readiness signal; completed, for a oneshot).", services, |s, _| {
        Some(flag(s.ready))
    });
    x.per_service(
        "tend_service_healthy",
        Kind::Gauge,
        "1 when the service is in a good state (what tend status exits 0 for): running, ready, or completed.",
        services,
        |s, _| Some(flag(s.healthy)),
    );
    x.per_service(
        "tend_service_restarts_total",
        Kind::Counter,
        "Restarts tend made by the service's restart policy since tend started.",
        services,
        |s, _| Some(s.restarts_total as f64),
    );
    let failures: Vec<(&str, &str, u64)> = services
        .iter()
        .flat_map(|(s, _)| s.failures_total.iter().map(move |(kind, n)| (s.name.as_str(), kind.as_str(), *n)))
        .collect();
    if !failures.is_empty() {
        x.family(
            "tend_service_start_failures_total",
            Kind::Counter,
            "Runs that ended in failure, what the start limit counts, by kind: exited, killed, exec_failed, oom, start_timeout, watchdog, timeout, health.",
        );
        for (service, kind, n) in failures {
            x.sample("tend_service_start_failures_total", &[("service", service), ("kind", kind)], n as f64);
        }
    }
    x.per_service("tend_service_last_exit_code", Kind::Gauge, "How the service's last process ended: its exit code, or 128+N for a kill by signal N (127: it never ran).", services, |s, _| {
        s.last_exit_code.map(f64::from)
    });
    x.per_service(
        "tend_service_uptime_seconds",
        Kind::Gauge,
        "Seconds since the service's current process started; 0 without one.",
        services,
        |s, _| Some(s.uptime_secs.unwrap_or(0.0)),
    );
    x.per_service(
        "tend_service_cpu_seconds_total",
        Kind::Counter,
        "CPU time used by the service's cgroup (where tend gives it one).",
        services,
        |_, m| m.cpu_usec.map(|u| u as f64 / 1e6),
    );
    x.per_service(
        "tend_service_memory_bytes",
        Kind::Gauge,
        "Memory in use by the service's cgroup (where tend gives it one).",
        services,
        |_, m| m.memory_bytes.map(|b| b as f64),
    );
    let sinks: Vec<(&str, &str, u64)> = services
        .iter()
        .flat_map(|(s, m)| {
            [("file", m.file_dropped), ("syslog", m.syslog_dropped)]
                .into_iter()
                .filter_map(move |(sink, n)| Some((s.name.as_str(), sink, n?)))
        })
        .collect();
    if !sinks.is_empty() {
        x.family(
            "tend_service_log_dropped_lines_total",
            Kind::Counter,
            "Lines of the service's output its log sinks could not take: the file (a full disk), syslog (no daemon listening).",
        );
        for (service, sink, n) in sinks {
            x.sample(
                "tend_service_log_dropped_lines_total",
                &[("service", service), ("sink", sink)],
                n as f64,
            );
        }
    }
    x.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tend_core::proto::ExitKind;

    #[test]
    fn values_and_labels_are_written_as_the_format_says() {
        assert_eq!(format_value(3.0), "3");
        assert_eq!(format_value(0.25), "0.25");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(escape_label("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        assert_eq!(escape_help("x\\y\nz"), "x\\\\y\\nz");
    }

    #[test]
    fn every_family_is_whole_with_its_help_and_type_and_counters_end_in_total() {
        let web = ServiceMetrics {
            name: "web".into(),
            state: ServiceState::Backoff,
            ready: false,
            healthy: false,
            restarts_total: 4,
            failures_total: vec![(ExitKind::Exited, 3), (ExitKind::Oom, 1)],
            last_exit_code: Some(137),
            uptime_secs: None,
        };
        let measured = Measured {
            cpu_usec: Some(1_500_000),
            memory_bytes: Some(4096),
            file_dropped: Some(2),
            syslog_dropped: None,
        };
        let tend = Supervisor { version: "1.2.3".into(), events_total: 9, ..Supervisor::default() };
        let text = render(&tend, &[(web, measured)]);
        assert!(text.contains("tend_service_restarts_total{service=\"web\"} 4\n"), "{text}");
        assert!(text.contains("tend_service_start_failures_total{service=\"web\",kind=\"oom\"} 1\n"));
        assert!(text.contains("tend_service_state{service=\"web\",state=\"backoff\"} 1\n"));
        assert!(text.contains("tend_service_state{service=\"web\",state=\"running\"} 0\n"));
        assert!(text.contains("tend_service_cpu_seconds_total{service=\"web\"} 1.5\n"));
        assert!(text.contains("tend_service_log_dropped_lines_total{service=\"web\",sink=\"file\"} 2\n"));
        assert!(text.contains("tend_info{version=\"1.2.3\"} 1\n"));
        // Each family once, its samples together right after its HELP and TYPE.
        let mut seen = Vec::new();
        let mut current = String::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(!seen.contains(&name.to_string()), "{name} twice");
                assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
                seen.push(name.to_string());
                current = name.to_string();
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert_eq!(name, current, "a sample out of its family: {line}");
            }
        }
    }
}
