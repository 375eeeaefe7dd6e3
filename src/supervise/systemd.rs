//! tend as a systemd service (`Type=notify`): when `NOTIFY_SOCKET` is set,
//! tell the service manager what the stack is doing, over sd_notify(3)
//! datagrams. The loop calls this module at four points: after each turn
//! ([`Notifier::turn`]), when a reload begins, when the shutdown begins, and
//! at its deadline (the watchdog ping).
//!
//! Owns the datagram socket to the manager and the watchdog timer. What to
//! send and when is decided by the core's `systemd` module (pure, tested there); this
//! module only reads the environment, keeps time and sends. Must not decide
//! anything about services.
//!
//! `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` are tend's: services
//! never inherit them (`app::NOT_INHERITED`, as sd_notify(3)'s
//! `unset_environment`), so a service cannot speak to systemd in tend's
//! name, and a service with `ready: notify` gets tend's own socket instead.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;
use tend_core::proto::ServiceState;
use tend_core::systemd::{encode, watchdog_period, Announcer, Field};
use tend_core::Time;

/// How soon to try again when the manager's queue was full.
const RETRY: Duration = Duration::from_millis(50);

pub struct Notifier {
    socket: UnixDatagram,
    address: SocketAddr,
    announcer: Announcer,
    /// The ping period (half of WATCHDOG_USEC) and when the next ping is due.
    watchdog: Option<(Duration, Time)>,
    /// A datagram the manager's full queue refused, sent again first, and
    /// when to try again.
    unsent: String,
    retry_at: Option<Time>,
    /// A send failed for another reason: said once, on stderr.
    warned: bool,
}

/// The notifier, when tend runs under a manager that listens
/// (`NOTIFY_SOCKET` in tend's own environment).
pub fn from_environment() -> Option<Notifier> {
    let get = |key: &str| std::env::var_os(key).map(|v| v.to_string_lossy().into_owned());
    let path = get("NOTIFY_SOCKET").filter(|p| !p.is_empty())?;
    let watchdog =
        watchdog_period(get("WATCHDOG_USEC").as_deref(), get("WATCHDOG_PID").as_deref(), std::process::id());
    match Notifier::connect(&path, watchdog) {
        Ok(notifier) => Some(notifier),
        Err(err) => {
            eprintln!("tend: warning: NOTIFY_SOCKET={path}: {err}; not notifying the service manager");
            None
        }
    }
}

impl Notifier {
    fn connect(path: &str, watchdog: Option<Duration>) -> std::io::Result<Notifier> {
        let address = if let Some(name) = path.strip_prefix('@') {
            // An abstract socket (sd_notify(3)): "@" stands for the leading NUL.
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name.as_bytes())?
        } else if path.starts_with('/') {
            SocketAddr::from_pathname(path)?
        } else {
            return Err(std::io::Error::other("not an absolute path nor an abstract socket (@NAME)"));
        };
        // Unbound, close-on-exec (std), non-blocking: a stuck manager must
        // not stall the loop.
        let socket = UnixDatagram::unbound()?;
        socket.set_nonblocking(true)?;
        let now = crate::sys::monotonic_now();
        Ok(Notifier {
            socket,
            address,
            announcer: Announcer::new(),
            watchdog: watchdog.map(|period| (period, now)),
            unsent: String::new(),
            retry_at: None,
            warned: false,
        })
    }

    /// After a turn of the loop: `states` are the listed services' states
    /// as `tend status` names them; `reload_in_flight` while a reload's
    /// units are still being loaded.
    pub fn turn(&mut self, states: &[ServiceState], reload_in_flight: bool) {
        let fields = self.announcer.turn(states, reload_in_flight);
        self.send(&fields);
    }

    pub fn reload_begins(&mut self) {
        let usec = crate::sys::monotonic_now().as_micros() as u64;
        let fields = self.announcer.reload_begins(usec);
        self.send(&fields);
    }

    pub fn shutdown_begins(&mut self) {
        let fields = self.announcer.shutdown_begins();
        self.send(&fields);
    }

    /// When the loop must call [`fire`](Self::fire): the next watchdog ping,
    /// or a retry of an unsent datagram.
    pub fn deadline(&self) -> Option<Time> {
        let ping = self.watchdog.map(|(_, at)| at);
        [ping, self.retry_at].into_iter().flatten().min()
    }

    pub fn fire(&mut self, now: Time) {
        let mut fields = Vec::new();
        if let Some((period, at)) = &mut self.watchdog {
            if *at <= now {
                fields.push(Field::Watchdog);
                *at = now + *period;
            }
        }
        self.send(&fields);
    }

    fn send(&mut self, fields: &[Field]) {
        if fields.is_empty() && self.unsent.is_empty() {
            return;
        }
        let mut datagram = std::mem::take(&mut self.unsent);
        datagram.push_str(&encode(fields));
        self.retry_at = None;
        match self.socket.send_to_addr(datagram.as_bytes(), &self.address) {
            Ok(_) => {}
            Err(err)
                if matches!(err.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted) =>
            {
                self.unsent = datagram;
                self.retry_at = Some(crate::sys::monotonic_now() + RETRY);
            }
            Err(err) => {
                if !self.warned {
                    self.warned = true;
                    eprintln!("tend: warning: cannot notify the service manager: {err}");
                }
            }
        }
    }
}
