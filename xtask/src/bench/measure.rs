//! Running a process and measuring it: wall time, and on Linux its CPU time and peak
//! resident set size (with those of the children it waited for, such as cargo's rustc).

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::Result;

/// What one process cost.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Sample {
    pub(super) wall: Duration,
    /// User plus system time; `None` where the platform does not say.
    pub(super) cpu: Option<Duration>,
    /// Peak resident set size in bytes, the largest of the process and of each child it
    /// waited for; `None` where the platform does not say.
    pub(super) peak_rss: Option<u64>,
}

/// Runs `command` to completion with its stdout captured (returned) and its stderr written
/// to `log`, and measures it. Fails, quoting the end of `log`, unless it exits with 0.
pub(super) fn run(
    description: &str,
    command: &mut Command,
    log: &Path,
) -> Result<(Sample, String)> {
    if let Some(dir) = log.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("creating {dir:?}: {e}"))?;
    }
    let stderr = fs::File::create(log).map_err(|e| format!("{log:?}: {e}"))?;
    let stdout_path = log.with_extension("stdout");
    let stdout = fs::File::create(&stdout_path).map_err(|e| format!("{stdout_path:?}: {e}"))?;
    command.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
    let started = Instant::now();
    let child = command
        .spawn()
        .map_err(|e| format!("{description}: could not start: {e}"))?;
    let (status, cpu, peak_rss) = imp::wait(child)?;
    let wall = started.elapsed();
    let output = fs::read_to_string(&stdout_path).unwrap_or_default();
    if status != 0 {
        let errors = fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = errors.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "{description} failed ({}); the end of {log:?}:\n{}",
            if status < 0 {
                format!("signal {}", -status)
            } else {
                format!("exit code {status}")
            },
            tail.join("\n")
        ));
    }
    Ok((
        Sample {
            wall,
            cpu,
            peak_rss,
        },
        output,
    ))
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // the C library's `wait4`; std reports no resource usage
mod imp {
    use std::ffi::{c_int, c_long};
    use std::io;
    use std::process::Child;
    use std::time::Duration;

    use crate::Result;

    #[repr(C)]
    #[derive(Default)]
    struct Timeval {
        tv_sec: c_long,
        tv_usec: c_long,
    }

    /// `struct rusage` on Linux: two `timeval`s, then fourteen `long`s of which the first is
    /// `ru_maxrss` in KiB.
    #[repr(C)]
    #[derive(Default)]
    struct Rusage {
        ru_utime: Timeval,
        ru_stime: Timeval,
        ru_maxrss: c_long,
        rest: [c_long; 13],
    }

    extern "C" {
        fn wait4(pid: c_int, status: *mut c_int, options: c_int, rusage: *mut Rusage) -> c_int;
    }

    fn duration(t: &Timeval) -> Duration {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    }

    /// Reaps `child` and returns its exit code (minus the signal number if a signal ended
    /// it), CPU time and peak RSS.
    pub(super) fn wait(child: Child) -> Result<(i32, Option<Duration>, Option<u64>)> {
        let pid = child.id() as c_int;
        let mut status: c_int = 0;
        let mut usage = Rusage::default();
        loop {
            // SAFETY: `status` and `usage` are valid for writes and outlive the call; `pid`
            // is our own unreaped child, which std never waits for since we drop `child`
            // without calling `wait`.
            let reaped = unsafe { wait4(pid, &mut status, 0, &mut usage) };
            if reaped == pid {
                break;
            }
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(format!("waiting for process {pid}: {error}"));
            }
        }
        drop(child);
        let code = if status & 0x7f == 0 {
            (status >> 8) & 0xff
        } else {
            -(status & 0x7f)
        };
        let cpu = duration(&usage.ru_utime) + duration(&usage.ru_stime);
        Ok((code, Some(cpu), Some(usage.ru_maxrss as u64 * 1024)))
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::process::Child;
    use std::time::Duration;

    use crate::Result;

    pub(super) fn wait(mut child: Child) -> Result<(i32, Option<Duration>, Option<u64>)> {
        let status = child
            .wait()
            .map_err(|e| format!("waiting for a process: {e}"))?;
        Ok((status.code().unwrap_or(-1), None, None))
    }
}

/// The median of `values` (the mean of the middle two for an even count).
pub(super) fn median(values: &[Duration]) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    match sorted.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2,
    }
}
