//! Noticing SIGINT, SIGTERM and SIGHUP instead of dying of them, so that a long-running
//! command can stop the servers it started before it exits.
//!
//! The handler only records which signal arrived; the command polls [`received`] and shuts
//! down in the ordinary way (dropping its servers). On platforms other than unix nothing is
//! installed and [`received`] is always `None`.

/// Installs the handler for SIGINT, SIGTERM and SIGHUP. Until then those signals end the
/// process at once, whatever it has started.
pub(crate) fn install() {
    imp::install();
}

/// The name of the first stop signal received since [`install`], if any.
pub(crate) fn received() -> Option<&'static str> {
    imp::received()
}

#[cfg(unix)]
#[allow(unsafe_code)] // the C library's `signal`; std has no API for it
mod imp {
    use std::ffi::c_int;
    use std::sync::atomic::{AtomicI32, Ordering};

    // The same numbers on Linux, the BSDs and macOS.
    const SIGHUP: c_int = 1;
    const SIGINT: c_int = 2;
    const SIGTERM: c_int = 15;
    /// `SIG_ERR`, `(void (*)(int)) -1`.
    const SIG_ERR: usize = usize::MAX;

    static RECEIVED: AtomicI32 = AtomicI32::new(0);

    extern "C" {
        // `sighandler_t signal(int, sighandler_t)`; on glibc, musl and the BSDs the handler
        // stays installed and interrupted system calls are restarted.
        fn signal(signum: c_int, handler: extern "C" fn(c_int)) -> usize;
    }

    /// Async-signal-safe: a single atomic store.
    extern "C" fn record(signum: c_int) {
        let _ = RECEIVED.compare_exchange(0, signum, Ordering::SeqCst, Ordering::SeqCst);
    }

    pub(super) fn install() {
        for signum in [SIGHUP, SIGINT, SIGTERM] {
            // SAFETY: `record` only performs an atomic store, which is async-signal-safe.
            let previous = unsafe { signal(signum, record) };
            if previous == SIG_ERR {
                eprintln!("xtask: could not install a handler for signal {signum}");
            }
        }
    }

    pub(super) fn received() -> Option<&'static str> {
        match RECEIVED.load(Ordering::SeqCst) {
            0 => None,
            SIGHUP => Some("SIGHUP"),
            SIGINT => Some("SIGINT"),
            SIGTERM => Some("SIGTERM"),
            _ => Some("a signal"),
        }
    }
}

#[cfg(not(unix))]
mod imp {
    pub(super) fn install() {}

    pub(super) fn received() -> Option<&'static str> {
        None
    }
}
