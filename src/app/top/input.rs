//! The keyboard of `tend top`: bytes a terminal in raw mode sends, as the
//! keys the view knows. Pure: `mod.rs` reads the bytes.
//!
//! A terminal sends a printable key as its UTF-8 bytes, Enter as CR,
//! Backspace as DEL (or BS), Ctrl-letter as the letter's control code,
//! and the arrows and the paging keys as escape sequences: CSI (`ESC [`)
//! or, in the cursor-key application mode, SS3 (`ESC O`), per xterm's
//! "ctlseqs". A lone ESC is the Escape key: a terminal writes a whole
//! sequence at once, so an ESC at the end of what one read gave is taken
//! as the key (as crossterm, vim and less do, without their wait).

use super::model::Key;

/// What one key press asks of `tend top`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Typed {
    Key(Key),
    /// Ctrl-Z: give the terminal back and stop.
    Suspend,
    /// Ctrl-L: draw the whole screen again.
    Redraw,
}

/// Turns the bytes of successive reads into keys; keeps a UTF-8
/// character split between two reads until its end comes.
#[derive(Debug, Default)]
pub struct Decoder {
    pending: Vec<u8>,
}

impl Decoder {
    /// The keys in `bytes` (one read's worth), in order. Keys the view
    /// does not use (function keys, Tab, other control codes, mouse
    /// reports) are left out.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Typed> {
        self.pending.extend_from_slice(bytes);
        let input = std::mem::take(&mut self.pending);
        let mut keys = Vec::new();
        let mut at = 0;
        while at < input.len() {
            let byte = input[at];
            at += 1;
            let key = match byte {
                0x1b => match input.get(at) {
                    Some(b'[') | Some(b'O') => {
                        let (key, used) = escape(&input[at + 1..]);
                        at += 1 + used;
                        key
                    }
                    // Alt and a key: the key.
                    Some(_) => None,
                    None => Some(Typed::Key(Key::Esc)),
                },
                b'\r' | b'\n' => Some(Typed::Key(Key::Enter)),
                0x7f | 0x08 => Some(Typed::Key(Key::Backspace)),
                0x03 => Some(Typed::Key(Key::Interrupt)),
                0x1a => Some(Typed::Suspend),
                0x0c => Some(Typed::Redraw),
                0x00..=0x1f => None,
                _ => {
                    let length = match byte {
                        0xc0..=0xdf => 2,
                        0xe0..=0xef => 3,
                        0xf0..=0xf7 => 4,
                        _ => 1,
                    };
                    let start = at - 1;
                    if start + length > input.len() {
                        // The rest of the character comes with the next read.
                        self.pending = input[start..].to_vec();
                        break;
                    }
                    at = start + length;
                    std::str::from_utf8(&input[start..at])
                        .ok()
                        .and_then(|s| s.chars().next())
                        .map(|c| Typed::Key(Key::Char(c)))
                }
            };
            keys.extend(key);
        }
        keys
    }
}

/// The key of the escape sequence whose body (after `ESC [` or `ESC O`)
/// starts `rest`, and the bytes of the body: parameters (digits and `;`),
/// then one final byte.
fn escape(rest: &[u8]) -> (Option<Typed>, usize) {
    let params = rest.iter().take_while(|b| b.is_ascii_digit() || **b == b';').count();
    let Some(&last) = rest.get(params) else { return (None, rest.len()) };
    let number =
        std::str::from_utf8(&rest[..params]).ok().and_then(|p| p.split(';').next()?.parse::<u16>().ok());
    let key = match (last, number) {
        (b'A', _) => Some(Key::Up),
        (b'B', _) => Some(Key::Down),
        (b'H', _) | (b'~', Some(1 | 7)) => Some(Key::Home),
        (b'F', _) | (b'~', Some(4 | 8)) => Some(Key::End),
        (b'~', Some(5)) => Some(Key::PageUp),
        (b'~', Some(6)) => Some(Key::PageDown),
        _ => None,
    };
    (key.map(Typed::Key), params + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(bytes: &[u8]) -> Vec<Typed> {
        Decoder::default().feed(bytes)
    }

    #[test]
    fn letters_controls_and_escapes() {
        assert_eq!(keys(b"q"), [Typed::Key(Key::Char('q'))]);
        assert_eq!(
            keys(b"\r\x7f\x03"),
            [Typed::Key(Key::Enter), Typed::Key(Key::Backspace), Typed::Key(Key::Interrupt)]
        );
        assert_eq!(keys(b"\x1a\x0c\x09"), [Typed::Suspend, Typed::Redraw]);
        assert_eq!(
            keys(b"\x1b[A\x1b[B\x1bOA\x1b[5~\x1b[6~\x1b[H\x1b[F\x1b[1~\x1b[4~"),
            [
                Key::Up,
                Key::Down,
                Key::Up,
                Key::PageUp,
                Key::PageDown,
                Key::Home,
                Key::End,
                Key::Home,
                Key::End
            ]
            .map(Typed::Key)
        );
        assert_eq!(keys(b"\x1b"), [Typed::Key(Key::Esc)], "a lone ESC is the key");
        assert_eq!(keys(b"\x1b[1;5A"), [Typed::Key(Key::Up)], "Ctrl-Up is Up");
        assert_eq!(keys(b"\x1b[15~x"), [Typed::Key(Key::Char('x'))], "F5 is left out");
    }

    #[test]
    fn utf8_split_between_reads() {
        let mut decoder = Decoder::default();
        let bytes = "é".as_bytes();
        assert_eq!(decoder.feed(&bytes[..1]), []);
        assert_eq!(decoder.feed(&bytes[1..]), [Typed::Key(Key::Char('é'))]);
    }
}
