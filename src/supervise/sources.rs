//! The registry of event sources: one slab, one typed entry per token the
//! poller can report, holding what the loop needs to act on that event.
//! A token is the entry's place, reused once the entry is removed (the
//! entry is deregistered from the poller first, so a stale event cannot
//! reach its successor within the turn).

use super::checks::Probe;
use super::spawner::ExecWatch;
use super::streams::OutputStream;
use crate::ctl::server::Conn;
use crate::metrics::http::HttpConn;
use mio::Token;
use std::os::fd::OwnedFd;
use tend_core::ServiceId;

pub(super) enum Source {
    /// The signal self-pipe.
    Signals,
    /// The control socket's listener.
    Listener,
    /// The sd_notify socket.
    Notify,
    /// tend's own stdout/stderr became writable again.
    TendOutput,
    /// The reload thread has loaded the units folder.
    Reload,
    /// A service's stdout or stderr pipe.
    Output(OutputStream),
    /// A child's exec-status pipe, until its exec is confirmed.
    ExecStatus(Box<ExecWatch>),
    /// A tcp or http check in flight.
    Probe(Box<Probe>),
    /// A service's s6 readiness pipe (`notify_fd`), until it is ready.
    ReadyPipe { service: ServiceId, fd: OwnedFd },
    /// A control connection.
    Conn(Box<Conn>),
    /// The metrics listener (`--metrics-listen`).
    MetricsListener,
    /// A connection to it.
    MetricsConn(Box<HttpConn>),
}

/// What kind of source a token is, without borrowing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Signals,
    Listener,
    Notify,
    TendOutput,
    Reload,
    Output,
    ExecStatus,
    Probe,
    ReadyPipe,
    Conn,
    MetricsListener,
    MetricsConn,
}

#[derive(Default)]
pub(super) struct Sources {
    entries: Vec<Option<Source>>,
    free: Vec<usize>,
}

impl Sources {
    /// Add a source; its token is where it went.
    pub(super) fn insert(&mut self, source: Source) -> Token {
        match self.free.pop() {
            Some(index) => {
                self.entries[index] = Some(source);
                Token(index)
            }
            None => {
                self.entries.push(Some(source));
                Token(self.entries.len() - 1)
            }
        }
    }

    pub(super) fn remove(&mut self, token: Token) -> Option<Source> {
        let source = self.entries.get_mut(token.0)?.take()?;
        self.free.push(token.0);
        Some(source)
    }

    pub(super) fn get_mut(&mut self, token: Token) -> Option<&mut Source> {
        self.entries.get_mut(token.0)?.as_mut()
    }

    pub(super) fn kind(&self, token: Token) -> Option<Kind> {
        Some(match self.entries.get(token.0)?.as_ref()? {
            Source::Signals => Kind::Signals,
            Source::Listener => Kind::Listener,
            Source::Notify => Kind::Notify,
            Source::TendOutput => Kind::TendOutput,
            Source::Reload => Kind::Reload,
            Source::Output(_) => Kind::Output,
            Source::ExecStatus(_) => Kind::ExecStatus,
            Source::Probe(_) => Kind::Probe,
            Source::ReadyPipe { .. } => Kind::ReadyPipe,
            Source::Conn(_) => Kind::Conn,
            Source::MetricsListener => Kind::MetricsListener,
            Source::MetricsConn(_) => Kind::MetricsConn,
        })
    }

    /// Every token of this kind.
    pub(super) fn tokens(&self, kind: Kind) -> Vec<Token> {
        (0..self.entries.len()).map(Token).filter(|&t| self.kind(t) == Some(kind)).collect()
    }

    /// How many control connections there are.
    pub(super) fn conn_count(&self) -> usize {
        self.entries.iter().filter(|e| matches!(e, Some(Source::Conn(_)))).count()
    }

    /// Every control connection.
    pub(super) fn conns(&self) -> impl Iterator<Item = (Token, &Conn)> {
        self.entries.iter().enumerate().filter_map(|(i, entry)| match entry {
            Some(Source::Conn(conn)) => Some((Token(i), &**conn)),
            _ => None,
        })
    }

    /// Every connection to the metrics listener.
    pub(super) fn metrics_conns(&self) -> impl Iterator<Item = (Token, &HttpConn)> {
        self.entries.iter().enumerate().filter_map(|(i, entry)| match entry {
            Some(Source::MetricsConn(conn)) => Some((Token(i), &**conn)),
            _ => None,
        })
    }

    pub(super) fn conns_mut(&mut self) -> impl Iterator<Item = (Token, &mut Conn)> {
        self.entries.iter_mut().enumerate().filter_map(|(i, entry)| match entry {
            Some(Source::Conn(conn)) => Some((Token(i), &mut **conn)),
            _ => None,
        })
    }

    /// The service an output stream is of.
    pub(super) fn output_service(&mut self, token: Token) -> Option<ServiceId> {
        match self.get_mut(token)? {
            Source::Output(stream) => Some(stream.service),
            _ => None,
        }
    }

    pub(super) fn conn_mut(&mut self, token: Token) -> Option<&mut Conn> {
        match self.get_mut(token)? {
            Source::Conn(conn) => Some(conn),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_reused_after_removal_and_kinds_are_kept() {
        let mut sources = Sources::default();
        let signals = sources.insert(Source::Signals);
        let listener = sources.insert(Source::Listener);
        assert_eq!((signals, listener), (Token(0), Token(1)));
        assert_eq!(sources.kind(listener), Some(Kind::Listener));
        assert!(matches!(sources.remove(signals), Some(Source::Signals)));
        assert_eq!(sources.kind(signals), None);
        assert!(sources.remove(signals).is_none(), "removed once");
        assert_eq!(sources.insert(Source::Notify), Token(0));
        assert_eq!(sources.tokens(Kind::Notify), vec![Token(0)]);
        assert_eq!(sources.kind(Token(9)), None);
    }
}
