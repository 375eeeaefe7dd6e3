//! The confinement steps the child runs between fork and exec (called from
//! `spawn/child.rs`, in its order). Async-signal-safe: raw system calls on
//! data the parent prepared in the [`ConfinePlan`]; no allocation, no
//! formatting, no locks; errno read right after each call; a failure is
//! reported as a [`ConfineError`] (step, errno, object index) that the
//! parent renders.

use std::ffi::CString;
use std::os::fd::AsRawFd;

use super::{ConfineError, ConfinePlan, ConfineStep};

/// `struct __user_cap_header_struct`.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

/// `struct __user_cap_data_struct`.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_VERSION_3: u32 = 0x2008_0522;

/// `struct ifreq` with the flags member, as SIOCGIFFLAGS/SIOCSIFFLAGS use it.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct IfreqFlags {
    name: [u8; 16],
    flags: libc::c_short,
    _pad: [u8; 22],
}

fn errno() -> i32 {
    // SAFETY: __errno_location returns the calling thread's errno slot.
    unsafe { *libc::__errno_location() }
}

fn check(rc: libc::c_long, step: ConfineStep, index: u32) -> Result<(), ConfineError> {
    if rc == -1 {
        Err(ConfineError { step, errno: errno(), index })
    } else {
        Ok(())
    }
}

fn ptr_or_null(value: &Option<CString>) -> *const libc::c_char {
    value.as_ref().map_or(std::ptr::null(), |v| v.as_ptr())
}

/// Unshare the namespaces asked for, set up the mounts, bring up the
/// loopback interface and set the hostname. Call while still privileged.
pub fn enter_namespaces(plan: &ConfinePlan) -> Result<(), ConfineError> {
    let unshares = [
        (plan.unshare_mount, libc::CLONE_NEWNS, ConfineStep::UnshareMount),
        (plan.unshare_network, libc::CLONE_NEWNET, ConfineStep::UnshareNetwork),
        (plan.unshare_uts, libc::CLONE_NEWUTS, ConfineStep::UnshareUts),
        (plan.unshare_ipc, libc::CLONE_NEWIPC, ConfineStep::UnshareIpc),
    ];
    for (wanted, flag, step) in unshares {
        if wanted {
            // SAFETY: unshare takes an integer.
            check(unsafe { libc::unshare(flag) }.into(), step, 0)?;
        }
    }
    for op in &plan.mounts {
        // SAFETY: every pointer is NULL or a NUL-terminated string owned by
        // the plan, which outlives the call.
        let rc = unsafe {
            libc::mount(
                ptr_or_null(&op.source),
                op.target.as_ptr(),
                ptr_or_null(&op.fstype),
                op.flags,
                ptr_or_null(&op.data).cast(),
            )
        };
        if rc == -1 {
            let error = errno();
            if op.optional && matches!(error, libc::ENOENT | libc::ENOTDIR | libc::EINVAL) {
                continue;
            }
            return Err(ConfineError { step: op.step, errno: error, index: op.index });
        }
    }
    if plan.unshare_network {
        loopback_up()?;
    }
    if let Some(name) = &plan.hostname {
        // SAFETY: name points to name.len() bytes owned by the plan.
        let rc = unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) };
        check(rc.into(), ConfineStep::Hostname, 0)?;
    }
    Ok(())
}

fn loopback_up() -> Result<(), ConfineError> {
    let step = ConfineStep::Loopback;
    // SAFETY: socket takes integers.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    check(fd.into(), step, 0)?;
    let mut request = IfreqFlags { name: [0; 16], flags: 0, _pad: [0; 22] };
    request.name[..2].copy_from_slice(b"lo");
    // SAFETY: the request is a local struct laid out as struct ifreq (name,
    // then the flags member of the union, padded to its full size).
    let mut rc = unsafe { libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut request) };
    if rc != -1 {
        request.flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        // SAFETY: as above.
        rc = unsafe { libc::ioctl(fd, libc::SIOCSIFFLAGS, &request) };
    }
    let error = errno();
    // SAFETY: fd was opened above and is closed once.
    unsafe { libc::close(fd) };
    if rc == -1 {
        return Err(ConfineError { step, errno: error, index: 0 });
    }
    Ok(())
}

/// Before setresuid: a non-root service that keeps capabilities keeps its
/// permitted set across the uid change.
pub fn keep_caps(plan: &ConfinePlan) -> Result<(), ConfineError> {
    match &plan.caps {
        Some(caps) if caps.non_root => {
            // SAFETY: prctl with integer arguments.
            let rc = unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1 as libc::c_ulong, 0, 0, 0) };
            check(rc.into(), ConfineStep::KeepCaps, 0)
        }
        _ => Ok(()),
    }
}

fn capget(data: &mut [CapData; 2]) -> Result<(), ConfineError> {
    let mut header = CapHeader { version: CAP_VERSION_3, pid: 0 };
    // SAFETY: header and data are local; version 3 uses two data structs.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    check(rc, ConfineStep::ReadCaps, 0)
}

fn capset(data: &[CapData; 2], step: ConfineStep) -> Result<(), ConfineError> {
    let mut header = CapHeader { version: CAP_VERSION_3, pid: 0 };
    // SAFETY: header and data are local; version 3 reads two data structs.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    check(rc, step, 0)
}

fn split(mask: u64) -> [u32; 2] {
    [mask as u32, (mask >> 32) as u32]
}

/// After setresuid: bounding set, then permitted/effective/inheritable, then
/// ambient (see the module header).
pub fn apply_capabilities(plan: &ConfinePlan) -> Result<(), ConfineError> {
    let Some(caps) = &plan.caps else { return Ok(()) };
    let mut data = [CapData::default(); 2];
    capget(&mut data)?;
    // Effective = permitted, so that CAP_SETPCAP (needed for the bounding
    // set) is usable even after a uid change cleared the effective set.
    for d in &mut data {
        d.effective = d.permitted;
    }
    capset(&data, ConfineStep::SetCaps)?;
    let permitted = u64::from(data[0].permitted) | (u64::from(data[1].permitted) << 32);
    for cap in 0..=caps.last_cap {
        if caps.keep & (1 << cap) != 0 {
            continue;
        }
        // SAFETY: prctl with integer arguments.
        let present = unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(cap), 0, 0, 0) };
        if present == 1 {
            // SAFETY: prctl with integer arguments.
            let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) };
            check(rc.into(), ConfineStep::BoundingSet, cap.into())?;
        }
    }
    let keep = caps.keep & permitted;
    let [low, high] = split(keep);
    let sets = [
        CapData { effective: low, permitted: low, inheritable: low },
        CapData { effective: high, permitted: high, inheritable: high },
    ];
    capset(&sets, ConfineStep::SetCaps)?;
    let clear = libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong;
    // SAFETY: prctl with integer arguments.
    let rc = unsafe { libc::prctl(libc::PR_CAP_AMBIENT, clear, 0, 0, 0) };
    check(rc.into(), ConfineStep::ClearAmbient, 0)?;
    if caps.non_root {
        for cap in 0..=caps.last_cap {
            if keep & (1 << cap) == 0 {
                continue;
            }
            let raise = libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong;
            // SAFETY: prctl with integer arguments.
            let rc = unsafe { libc::prctl(libc::PR_CAP_AMBIENT, raise, libc::c_ulong::from(cap), 0, 0) };
            check(rc.into(), ConfineStep::RaiseAmbient, cap.into())?;
        }
    }
    Ok(())
}

/// PR_SET_NO_NEW_PRIVS, when the unit asks for it or Landlock needs it.
pub fn no_new_privs(plan: &ConfinePlan) -> Result<(), ConfineError> {
    if !plan.no_new_privs {
        return Ok(());
    }
    // SAFETY: prctl with integer arguments.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) };
    check(rc.into(), ConfineStep::NoNewPrivs, 0)
}

/// Restrict the child with the ruleset the parent filled. Needs
/// no_new_privs (set by [`no_new_privs`], which the plan forces on).
pub fn landlock(plan: &ConfinePlan) -> Result<(), ConfineError> {
    let Some(fd) = &plan.landlock else { return Ok(()) };
    // SAFETY: integer arguments; the descriptor is owned by the plan and
    // open in the child (close-on-exec only).
    let rc = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, fd.as_raw_fd(), 0u32) };
    check(rc, ConfineStep::Landlock, 0)
}
