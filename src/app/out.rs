//! A client command's output: stdout closed (`tend check | true`) or full
//! (`tend status > /dev/full`) ends the command with a status that says so,
//! never with a panic (`println!` aborts: exit 134).
//!
//! Owns only how text reaches stdout and stderr; what is printed is the
//! commands'.

use crate::exit;
use std::io::{self, Write};

/// Write `text` to stdout and flush it. `Err(status)` when it cannot be
/// written: [`exit::BROKEN_PIPE`] quietly when the reader went away,
/// [`exit::FAILURE`] with a message otherwise (a full disk).
pub fn emit(text: &str) -> Result<(), i32> {
    let mut stdout = io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(err) => Err(write_failed(&err)),
    }
}

/// The status for a failed write to stdout (and the message, if any).
pub fn write_failed(err: &io::Error) -> i32 {
    if err.kind() == io::ErrorKind::BrokenPipe {
        return exit::BROKEN_PIPE;
    }
    let text = tend_core::text::error_text(err);
    say_err(&format!("tend: cannot write to standard output: {text}"));
    exit::FAILURE
}

/// One line to stderr; a stderr that cannot be written is ignored (there is
/// nowhere left to say so).
pub fn say_err(line: &str) {
    let mut stderr = io::stderr().lock();
    let _ = stderr.write_all(line.as_bytes()).and_then(|()| stderr.write_all(b"\n"));
}

/// `emit!("{}", x)?`-style: format, then [`emit`].
#[macro_export]
macro_rules! emit {
    ($($arg:tt)*) => {
        $crate::app::out::emit(&format!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_reader_is_its_own_status() {
        assert_eq!(write_failed(&io::Error::from(io::ErrorKind::BrokenPipe)), exit::BROKEN_PIPE);
        assert_eq!(write_failed(&io::Error::from_raw_os_error(28)), exit::FAILURE);
    }
}
