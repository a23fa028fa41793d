//! One classification of what went wrong, shared by every crate.
//!
//! Each error type of the workspace says what *kind* of failure it is
//! ([`Classify`]); the command line maps the kind, once, to an exit status
//! (README: 2 bad usage or input, 3 a missing privilege or kernel feature
//! or a system failure). The error's own message names the problem and its
//! fix; [`Kind::remedy`] is the general advice for a kind, for messages
//! that carry none of their own (a bare I/O error).

/// What kind of failure an error is, which decides who can fix it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Arguments that cannot work: another argument fixes it.
    Usage,
    /// Input that cannot be read as what it should be (a file, a fixture).
    Input,
    /// A capability or root is needed.
    Privilege,
    /// The running kernel lacks something (a table, BTF, a tracepoint).
    KernelFeature,
    /// Anything else the system refused or failed at.
    System,
}

impl Kind {
    /// The general fix for this kind of failure.
    pub fn remedy(self) -> &'static str {
        match self {
            Kind::Usage => "check the arguments (`sockscope help COMMAND` lists them)",
            Kind::Input => "check that the input is what the command expects",
            Kind::Privilege => "run as root, or grant the capability the message names (setcap)",
            Kind::KernelFeature => {
                "this kernel lacks the feature: use a kernel with it built in or loaded"
            }
            Kind::System => {
                "check the system's limits and state (open files, memory, disk space) and retry"
            }
        }
    }

    /// The kind of a bare I/O error: refused for want of permission, or
    /// a system failure.
    pub fn of_io(e: &std::io::Error) -> Kind {
        match e.kind() {
            std::io::ErrorKind::PermissionDenied => Kind::Privilege,
            std::io::ErrorKind::Unsupported => Kind::KernelFeature,
            _ => Kind::System,
        }
    }
}

/// An error that knows its [`Kind`].
pub trait Classify: std::error::Error {
    fn kind(&self) -> Kind;
}

impl Classify for std::io::Error {
    fn kind(&self) -> Kind {
        Kind::of_io(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_are_privilege_or_system() {
        let denied = std::io::Error::from_raw_os_error(libc::EPERM);
        assert_eq!(denied.kind(), std::io::ErrorKind::PermissionDenied);
        assert_eq!(Classify::kind(&denied), Kind::Privilege);
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        assert_eq!(Classify::kind(&full), Kind::System);
        for k in [
            Kind::Usage,
            Kind::Input,
            Kind::Privilege,
            Kind::KernelFeature,
            Kind::System,
        ] {
            assert!(!k.remedy().is_empty());
        }
    }
}
