//! The confinement child's steps and its error report: what the child
//! writes on the status pipe (step, errno, object index) and the words the
//! parent renders it with.

step_codes! {
    /// The child steps, for error reports. Numbered from 64 so that they can
    /// share a status-pipe word with the spawner's own steps.
    pub enum ConfineStep {
        UnshareMount = 64,
        UnshareNetwork = 65,
        UnshareUts = 66,
        UnshareIpc = 67,
        MountsPrivate = 68,
        ReadOnly = 69,
        ReadWrite = 70,
        PrivateTmp = 71,
        Inaccessible = 72,
        Loopback = 73,
        Hostname = 74,
        KeepCaps = 75,
        ReadCaps = 76,
        BoundingSet = 77,
        SetCaps = 78,
        ClearAmbient = 79,
        RaiseAmbient = 80,
        NoNewPrivs = 81,
        Landlock = 82,
        ProcMount = 83,
        Reaper = 84,
    }
}

impl ConfineStep {
    /// `cannot VERB OBJECT`, without the object: see
    /// [`ConfinePlan::describe_failure`] for the message with it.
    pub fn describe(self) -> &'static str {
        match self {
            ConfineStep::UnshareMount => "cannot create a mount namespace",
            ConfineStep::UnshareNetwork => "cannot create a network namespace",
            ConfineStep::UnshareUts => "cannot create a UTS namespace",
            ConfineStep::UnshareIpc => "cannot create an IPC namespace",
            ConfineStep::MountsPrivate => "cannot make the mounts private",
            ConfineStep::ReadOnly => "cannot make a path read-only",
            ConfineStep::ReadWrite => "cannot make a path writable",
            ConfineStep::PrivateTmp => "cannot mount a private temporary directory",
            ConfineStep::Inaccessible => "cannot make a path inaccessible",
            ConfineStep::Loopback => "cannot bring up the loopback interface",
            ConfineStep::Hostname => "cannot set the hostname",
            ConfineStep::KeepCaps => "cannot keep capabilities across the user change",
            ConfineStep::ReadCaps => "cannot read the capability sets",
            ConfineStep::BoundingSet => "cannot drop capabilities",
            ConfineStep::SetCaps => "cannot set the capability sets",
            ConfineStep::ClearAmbient => "cannot clear the ambient capabilities",
            ConfineStep::RaiseAmbient => "cannot raise an ambient capability",
            ConfineStep::NoNewPrivs => "cannot set no_new_privs",
            ConfineStep::Landlock => "cannot apply the landlock ruleset",
            ConfineStep::ProcMount => "cannot mount a /proc of the service's own",
            ConfineStep::Reaper => "cannot start the reaper of the service's PID namespace",
        }
    }

    /// A hint to print after the message, for failures with a usual cause.
    pub fn hint(self, errno: i32) -> Option<&'static str> {
        let namespace = matches!(
            self,
            ConfineStep::UnshareMount
                | ConfineStep::UnshareNetwork
                | ConfineStep::UnshareUts
                | ConfineStep::UnshareIpc
                | ConfineStep::MountsPrivate
                | ConfineStep::ReadOnly
                | ConfineStep::ReadWrite
                | ConfineStep::PrivateTmp
                | ConfineStep::Inaccessible
                | ConfineStep::Hostname
                | ConfineStep::ProcMount
        );
        if namespace && errno == libc::EPERM {
            Some(
                "namespaces and mounts need CAP_SYS_ADMIN (tend is unprivileged or in a container \
                 that forbids them); `filesystem: landlock` enforces path rules without privileges",
            )
        } else if matches!(self, ConfineStep::BoundingSet | ConfineStep::SetCaps) && errno == libc::EPERM {
            Some("changing capabilities needs CAP_SETPCAP")
        } else {
            None
        }
    }
}

/// A child step failed: which one, with which errno, on which object (an
/// index that [`ConfinePlan::describe_object`] turns back into a path or a
/// capability name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfineError {
    pub step: ConfineStep,
    pub errno: i32,
    pub index: u32,
}
