//! `cargo xtask server` stops its test database when it is told to stop, leaving no server
//! behind and its port free. (`cargo xtask` execs xtask on unix, so a signal sent to the
//! `cargo xtask server` process reaches xtask itself.)
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Starts `xtask server`, sends it `signal` once its server listens, and checks the aftermath.
fn stops_on(signal: &str) {
    if std::env::var_os("MONGODB_URI").is_some() {
        // Testing against a server of the user's own, who may not have Python for ours.
        eprintln!("MONGODB_URI is set: not testing `xtask server`");
        return;
    }
    let mut xtask = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("server")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting xtask server");
    let stderr = xtask.stderr.take().expect("piped stderr");
    let mut lines = BufReader::new(stderr).lines();

    // "xtask: test database (ReplicaSet) listening on 127.0.0.1:<port>, pid <pid>"
    let mut seen = String::new();
    let (port, server_pid) = loop {
        let Some(Ok(line)) = lines.next() else {
            let _ = xtask.kill();
            panic!("xtask server ended before its database listened:\n{seen}");
        };
        seen.push_str(&line);
        seen.push('\n');
        if let Some(rest) = line.split("listening on 127.0.0.1:").nth(1) {
            let (port, pid) = rest.split_once(", pid ").expect("port and pid");
            break (
                port.parse::<u16>().expect("a port"),
                pid.trim().parse::<u32>().expect("a pid"),
            );
        }
    };
    assert!(alive(server_pid), "the server should be running");
    let _cleanup = KillOnDrop(server_pid);
    // The rest of xtask's output, read so that it never blocks on a full pipe.
    let rest = thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>().join("\n"));

    let sent = Command::new("kill")
        .args(["-s", signal, &xtask.id().to_string()])
        .status()
        .expect("running kill");
    assert!(sent.success(), "kill -s {signal} failed");

    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = xtask.try_wait().expect("waiting for xtask") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = xtask.kill();
            panic!("xtask server did not exit within 30 s of {signal}");
        }
        thread::sleep(Duration::from_millis(50));
    };
    let output = rest.join().expect("reading xtask's output");
    assert!(
        status.success(),
        "xtask server on {signal}: {status}\n{output}"
    );
    assert!(
        output.contains(&format!("stopped on SIG{signal}")),
        "xtask should say why it stopped:\n{output}"
    );
    assert!(
        !alive(server_pid),
        "the test database (pid {server_pid}) outlived xtask server after {signal}"
    );
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still accepts connections"
    );
    TcpListener::bind(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("port {port} is not free after {signal}: {e}"));
}

/// Kills a server that a failing check left behind.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if alive(self.0) {
            let _ = Command::new("kill")
                .args(["-s", "KILL", &self.0.to_string()])
                .status();
        }
    }
}

/// Whether a process with this id exists (`kill -0`).
fn alive(pid: u32) -> bool {
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn server_stops_its_database_on_sigterm() {
    stops_on("TERM");
}

#[test]
fn server_stops_its_database_on_sighup() {
    stops_on("HUP");
}

#[test]
fn server_stops_its_database_on_sigint() {
    stops_on("INT");
}
