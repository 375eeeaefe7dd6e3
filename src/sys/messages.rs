//! `dcgettext` for the static build: glibc's own messages, untranslated.
//!
//! Owns: the one function below. Must not touch anything else.
//!
//! Why: glibc looks its messages up (`strerror_r` for every `io::Error`
//! text, `__assert_fail`, `psignal`) through `dcgettext(3)`, whose
//! catalogue loader brings charset conversion (gconv, transliteration
//! tables) and static `dlopen` into a static binary. A catalogue is only
//! ever consulted in a locale set by `setlocale(3)`, and neither tend nor
//! Rust's standard library calls it: the program stays in the "C" locale,
//! where glibc's `dcgettext` returns the message it was given (even with
//! `LANGUAGE` set: see `guess_category_value` in glibc's
//! intl/dcigettext.c). The static build (`packaging/build-static`)
//! therefore links this one, which does just that; other builds keep
//! glibc's, which the test compares it with.

// Other builds only test it.
#![cfg_attr(not(all(target_feature = "crt-static", target_env = "gnu")), allow(dead_code))]

use std::ffi::{c_char, c_int};

/// glibc's `__dcgettext` in the "C" locale: `msgid` itself.
#[cfg_attr(all(target_feature = "crt-static", target_env = "gnu"), export_name = "__dcgettext")]
pub extern "C" fn untranslated(
    _domain: *const c_char,
    msgid: *const c_char,
    _category: c_int,
) -> *mut c_char {
    msgid.cast_mut()
}

#[cfg(test)]
mod tests {
    use super::*;

    extern "C" {
        fn dcgettext(domain: *const c_char, msgid: *const c_char, category: c_int) -> *mut c_char;
    }

    /// In the locale tend runs in (it never calls setlocale), glibc's
    /// answer is the message itself too, with LANGUAGE set or not.
    #[test]
    fn glibc_returns_the_message_itself_in_the_c_locale() {
        let domain = c"libc";
        let msgid = c"No such file or directory";
        // SAFETY: both are NUL-terminated strings that outlive the call.
        let glibc = unsafe { dcgettext(domain.as_ptr(), msgid.as_ptr(), libc::LC_MESSAGES) };
        assert_eq!(glibc.cast_const(), msgid.as_ptr());
        assert_eq!(
            untranslated(domain.as_ptr(), msgid.as_ptr(), libc::LC_MESSAGES).cast_const(),
            msgid.as_ptr()
        );
    }
}
