//! The proxy crate's only `unsafe`: adopting a listening socket handed over by the process
//! being upgraded, and raising the open-files limit.
#![allow(unsafe_code)]

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Takes ownership of `fd`, a listening socket received from the old process on a graceful
/// upgrade (pingora's table of listening fds).
pub fn adopt(fd: RawFd) -> OwnedFd {
    // SAFETY: pingora received this descriptor over the upgrade socket and gives its number
    // to the one service that declared its address key; nothing else in the process closes
    // or owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Raises the soft limit on open files to the hard limit, as Go's runtime and many servers
/// do at start: the usual soft limit (1,024) is far below what `server.max_connections`
/// needs. Returns the limit now in force.
pub fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read or write the plain struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return raised.rlim_cur;
            }
        }
    }
    lim.rlim_cur
}
