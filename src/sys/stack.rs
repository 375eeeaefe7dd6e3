//! `pthread_getattr_np` for the static build, without glibc's stdio and
//! scanf.
//!
//! Owns: where the calling thread's stack is, as glibc's
//! `pthread_getattr_np(3)` reports it. Must not hold policy or touch any
//! other thread.
//!
//! Why: the standard library calls `pthread_getattr_np(pthread_self())`
//! once at start and once in each thread it spawns, to know the stack's
//! guard area (so that a fault there is reported as "has overflowed its
//! stack"). For the main thread glibc's version reads `/proc/self/maps`
//! with `fopen`, `getline` and `sscanf`, which links scanf and the whole
//! `strto*` family into a static binary: about 0.1 MB of the 3 MB. The
//! static build (`packaging/build-static`) therefore links this one
//! instead (`export_name` below; the linker takes an object's definition
//! before it searches libc.a). Other builds keep glibc's, which the tests
//! compare this one against.
//!
//! What it reports, as glibc 2.36 (nptl/pthread_getattr_np.c) does:
//! - the main thread (its mapping holds `__libc_stack_end`): the top is
//!   the page above `__libc_stack_end`; the size is RLIMIT_STACK less what
//!   is already above the top of that mapping, rounded down to pages, and
//!   at most the gap down to the mapping below; no guard size (the kernel
//!   keeps its own gap below a growing stack);
//! - another thread: the read-write mapping that holds its stack pointer,
//!   above the `---p` guard mapping glibc put below it (a stack without
//!   that guard gets ENOENT: the standard library then just does not name
//!   overflows in that thread).
//!
//! Only the calling thread (`pthread_self()`) is known; another thread
//! gets ENOTSUP. Nothing in tend asks for another.
// Other builds only test it.
#![cfg_attr(not(all(target_feature = "crt-static", target_env = "gnu")), allow(dead_code))]

use std::ffi::{c_int, c_void};

extern "C" {
    /// The initial stack pointer, recorded by glibc at start (csu/libc-start.c).
    static __libc_stack_end: *mut c_void;
}

/// One line of `/proc/self/maps`: `from-to perms ...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mapping {
    from: usize,
    to: usize,
    /// `---p`: no access (a guard).
    inaccessible: bool,
}

fn mappings(maps: &[u8]) -> impl Iterator<Item = Mapping> + '_ {
    maps.split(|b| *b == b'\n').filter_map(|line| {
        let line = std::str::from_utf8(line).ok()?;
        let mut fields = line.split(' ');
        let (from, to) = fields.next()?.split_once('-')?;
        let perms = fields.next()?;
        Some(Mapping {
            from: usize::from_str_radix(from, 16).ok()?,
            to: usize::from_str_radix(to, 16).ok()?,
            inaccessible: perms.starts_with("---"),
        })
    })
}

/// The stack as `(lowest address, size, guard size)`, or the errno.
fn locate(
    maps: &[u8],
    stack_pointer: usize,
    libc_stack_end: usize,
    stack_limit: u64,
    page_size: usize,
) -> Result<(usize, usize, usize), c_int> {
    let mut below: Option<Mapping> = None;
    for mapping in mappings(maps) {
        let holds = |address: usize| mapping.from <= address && address < mapping.to;
        if holds(libc_stack_end) && holds(stack_pointer) {
            // The main thread, as glibc computes it (in size_t arithmetic).
            let top = (libc_stack_end & page_size.wrapping_neg()) + page_size;
            let limit = usize::try_from(stack_limit).unwrap_or(usize::MAX);
            let mut size = limit.wrapping_sub(mapping.to - top) & page_size.wrapping_neg();
            let last_to = below.map_or(0, |b| b.to);
            if size > top - last_to {
                size = top - last_to;
            }
            return Ok((top - size, size, 0));
        }
        if holds(stack_pointer) {
            return match below {
                Some(guard) if guard.inaccessible && guard.to == mapping.from && !mapping.inaccessible => {
                    Ok((mapping.from, mapping.to - mapping.from, guard.to - guard.from))
                }
                _ => Err(libc::ENOENT),
            };
        }
        below = Some(mapping);
    }
    Err(libc::ENOENT)
}

/// glibc's `pthread_getattr_np(3)` for the calling thread (see the module
/// header); the static build links it under that name.
///
/// # Safety
/// `attr` must point to writable memory for one `pthread_attr_t`; as
/// with glibc's, the caller destroys it with `pthread_attr_destroy`.
#[cfg_attr(all(target_feature = "crt-static", target_env = "gnu"), export_name = "pthread_getattr_np")]
pub unsafe extern "C" fn stack_attributes(thread: libc::pthread_t, attr: *mut libc::pthread_attr_t) -> c_int {
    // SAFETY: pthread_self and pthread_equal have no preconditions.
    if unsafe { libc::pthread_equal(thread, libc::pthread_self()) } == 0 {
        return libc::ENOTSUP;
    }
    let here = 0u8;
    let stack_pointer = std::ptr::addr_of!(here) as usize;
    let maps = match std::fs::read("/proc/self/maps") {
        Ok(maps) => maps,
        Err(err) => return err.raw_os_error().unwrap_or(libc::EIO),
    };
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a valid rlimit to write to.
    if unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut limit) } != 0 {
        return std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO);
    }
    // SAFETY: sysconf has no preconditions.
    let page_size = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    // SAFETY: glibc sets __libc_stack_end before any code of ours runs and
    // never changes it.
    let libc_stack_end = unsafe { __libc_stack_end } as usize;
    let (low, size, guard) = match locate(&maps, stack_pointer, libc_stack_end, limit.rlim_cur, page_size) {
        Ok(found) => found,
        Err(errno) => return errno,
    };
    // SAFETY: the caller gives a writable pthread_attr_t (see above); the
    // setters only write into it.
    unsafe {
        let status = libc::pthread_attr_init(attr);
        if status != 0 {
            return status;
        }
        let status = libc::pthread_attr_setstack(attr, low as *mut c_void, size);
        if status != 0 {
            libc::pthread_attr_destroy(attr);
            return status;
        }
        libc::pthread_attr_setguardsize(attr, guard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: usize = 4096;

    #[test]
    fn main_thread_as_glibc_computes_it() {
        let maps = b"5555000-5556000 r-xp 00000000 00:00 0 /bin/x\n\
            7ff000000-7ff100000 rw-p 00000000 00:00 0 \n\
            7ffd0000000-7ffd0021000 rw-p 00000000 00:00 0                          [stack]\n\
            7ffd0100000-7ffd0102000 r--p 00000000 00:00 0                          [vvar]\n";
        let end = 0x7ffd001f123;
        let top = 0x7ffd0020000;
        // 8 MiB limit: 8 MiB less the page above the top, and at most the gap down to 7ff100000.
        assert_eq!(
            locate(maps, end - 64, end, 8 << 20, PAGE),
            Ok((top - (8 << 20) + PAGE, (8 << 20) - PAGE, 0))
        );
        // No limit: down to the mapping below.
        assert_eq!(locate(maps, end - 64, end, u64::MAX, PAGE), Ok((0x7ff100000, top - 0x7ff100000, 0)));
    }

    #[test]
    fn another_thread_above_its_guard() {
        let maps = b"7f0000000000-7f0000001000 ---p 00000000 00:00 0 \n\
            7f0000001000-7f0000801000 rw-p 00000000 00:00 0 \n\
            7ffd0000000-7ffd0021000 rw-p 00000000 00:00 0 [stack]\n";
        let end = 0x7ffd001f123;
        assert_eq!(locate(maps, 0x7f0000700000, end, 8 << 20, PAGE), Ok((0x7f0000001000, 0x800000, 0x1000)));
        // A stack with no guard below it is not one glibc made.
        let unguarded = b"7f0000001000-7f0000801000 rw-p 00000000 00:00 0 \n";
        assert_eq!(locate(unguarded, 0x7f0000700000, end, 8 << 20, PAGE), Err(libc::ENOENT));
        assert_eq!(locate(b"", 0x7f0000700000, end, 8 << 20, PAGE), Err(libc::ENOENT));
    }

    /// (lowest address, size, guard size) as a pthread_getattr_np reports them.
    fn ask(
        getattr: unsafe extern "C" fn(libc::pthread_t, *mut libc::pthread_attr_t) -> c_int,
    ) -> (usize, usize, usize) {
        // SAFETY: a zeroed pthread_attr_t is what std passes too; it is
        // destroyed after it was read.
        unsafe {
            let mut attr: libc::pthread_attr_t = std::mem::zeroed();
            assert_eq!(getattr(libc::pthread_self(), &mut attr), 0);
            let (mut low, mut size, mut guard) = (std::ptr::null_mut(), 0, 0);
            assert_eq!(libc::pthread_attr_getstack(&attr, &mut low, &mut size), 0);
            assert_eq!(libc::pthread_attr_getguardsize(&attr, &mut guard), 0);
            libc::pthread_attr_destroy(&mut attr);
            (low as usize, size, guard)
        }
    }

    /// The test runs on a thread std spawned: the same stack bottom and
    /// guard as glibc's own pthread_getattr_np says (what std reads), and
    /// the same size unless another mapping joined the top of the stack.
    #[test]
    fn a_spawned_thread_agrees_with_glibc() {
        let (ours, glibc) =
            std::thread::spawn(|| (ask(stack_attributes), ask(libc::pthread_getattr_np))).join().unwrap();
        assert_eq!((ours.0, ours.2), (glibc.0, glibc.2));
        assert!(ours.1 >= glibc.1, "{ours:?} {glibc:?}");
    }

    /// The main thread's id, recorded by a constructor (it runs on the
    /// main thread, before the test harness starts its threads).
    static MAIN_THREAD: std::sync::OnceLock<libc::pthread_t> = std::sync::OnceLock::new();

    extern "C" fn record_main_thread() {
        // SAFETY: pthread_self has no preconditions.
        let _ = MAIN_THREAD.set(unsafe { libc::pthread_self() });
    }

    #[used]
    #[link_section = ".init_array"]
    static RECORD_MAIN_THREAD: extern "C" fn() = record_main_thread;

    /// The main thread's stack, computed from this process's own maps, is
    /// where glibc's pthread_getattr_np puts it (asked about the main
    /// thread from this one).
    #[test]
    fn the_main_thread_agrees_with_glibc() {
        let main = *MAIN_THREAD.get().expect("the constructor ran");
        // SAFETY: as in `ask`; glibc answers for any thread of the process.
        let glibc = unsafe {
            let mut attr: libc::pthread_attr_t = std::mem::zeroed();
            assert_eq!(libc::pthread_getattr_np(main, &mut attr), 0);
            let (mut low, mut size) = (std::ptr::null_mut(), 0);
            assert_eq!(libc::pthread_attr_getstack(&attr, &mut low, &mut size), 0);
            libc::pthread_attr_destroy(&mut attr);
            (low as usize, size)
        };
        let maps = std::fs::read("/proc/self/maps").unwrap();
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: `limit` is a valid rlimit to write to; __libc_stack_end is set before main.
        let (end, page) = unsafe {
            assert_eq!(libc::getrlimit(libc::RLIMIT_STACK, &mut limit), 0);
            (__libc_stack_end as usize, libc::sysconf(libc::_SC_PAGESIZE) as usize)
        };
        let (low, size, _) = locate(&maps, end, end, limit.rlim_cur, page).unwrap();
        assert_eq!((low, size), glibc);
    }

    #[test]
    fn another_thread_is_not_known() {
        let other = std::thread::spawn(|| {
            std::thread::park();
        });
        use std::os::unix::thread::JoinHandleExt;
        // SAFETY: as in `ask`.
        let status = unsafe {
            let mut attr: libc::pthread_attr_t = std::mem::zeroed();
            stack_attributes(other.as_pthread_t(), &mut attr)
        };
        assert_eq!(status, libc::ENOTSUP);
        other.thread().unpark();
        other.join().unwrap();
    }
}
