//! `feedgate serve` as a process on a real socket: clients that are slow to
//! send their headers or sit idle are cut off, and a shutdown that cannot
//! drain its connections stops at its deadline.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "api/support/tcp.rs"]
mod tcp;

/// A `feedgate serve` child on a free port with a fresh SQLite file; killed
/// and cleaned up on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Server {
    /// Starts on port 0 and reads the bound address from the log, so no
    /// other test can take the port in between.
    fn start(env: &[(&str, &str)]) -> Self {
        let dir = std::env::temp_dir().join(format!("feedgate-serve-{}", random_suffix()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let mut child = Command::new(env!("CARGO_BIN_EXE_feedgate"))
            .current_dir(&dir)
            .env_clear()
            .env("FEEDGATE_LISTEN", "127.0.0.1:0")
            .env("FEEDGATE_LOG__FORMAT", "json")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the binary runs");
        let stdout = child.stdout.take().expect("piped");
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("feedgate listening") {
                    let _ = sender.send(line);
                }
            }
        });
        let line = receiver
            .recv_timeout(Duration::from_secs(30))
            .expect("feedgate serve says where it listens");
        let log: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
        let addr = log["address"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line}"));
        Self { child, addr, dir }
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).expect("the server accepts");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
    }

    /// Sends SIGTERM and returns how long the process took to exit.
    fn terminate(&mut self) -> Duration {
        let started = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let deadline = started + Duration::from_secs(20);
        while self.child.try_wait().expect("waitable").is_none() {
            assert!(
                Instant::now() < deadline,
                "still running 20 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        started.elapsed()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn random_suffix() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric
        .sample_string(&mut rand::rng(), 12)
        .to_lowercase()
}

/// Reads until the server closes the connection; returns what it sent and
/// how long that took.
fn read_until_closed(stream: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(err) if err.kind() == ErrorKind::ConnectionReset => break,
            Err(err) => panic!(
                "the connection is still open after {:?}: {err}",
                started.elapsed()
            ),
        }
    }
    (
        String::from_utf8_lossy(&received).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn a_connection_that_stops_mid_header_is_closed_within_the_timeout() {
    let server = Server::start(&[("FEEDGATE_SERVER__HEADER_READ_TIMEOUT_SECS", "1")]);
    let mut slow = server.connect();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    let (_, waited) = read_until_closed(&mut slow);
    assert!(
        waited < Duration::from_secs(4),
        "closed only after {waited:?}"
    );

    let mut prompt = server.connect();
    prompt
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (reply, _) = read_until_closed(&mut prompt);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
}

#[test]
fn an_idle_keep_alive_connection_is_closed() {
    let server = Server::start(&[("FEEDGATE_SERVER__HEADER_READ_TIMEOUT_SECS", "1")]);
    let mut stream = server.connect();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (reply, waited) = read_until_closed(&mut stream);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(
        waited < Duration::from_secs(4),
        "idle for {waited:?} and still open"
    );
}

#[test]
fn shutdown_ends_at_its_deadline_with_a_stalled_connection_open() {
    let mut server = Server::start(&[
        ("FEEDGATE_SERVER__HEADER_READ_TIMEOUT_SECS", "60"),
        ("FEEDGATE_SERVER__SHUTDOWN_TIMEOUT_SECS", "2"),
    ]);
    let mut stalled = server.connect();
    stalled
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    // Let the server take the bytes in before it is told to stop.
    let client = stalled.local_addr().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !tcp::caught_up(server.addr, client) {
        assert!(
            Instant::now() < deadline,
            "the server never read the request"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let took = server.terminate();
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    let (_, _) = read_until_closed(&mut stalled);
}

/// Sends one HTTP/1.1 request and returns the status code.
fn status_of(server: &Server, request: &str) -> u16 {
    let mut stream = server.connect();
    stream.write_all(request.as_bytes()).unwrap();
    let (reply, _) = read_until_closed(&mut stream);
    reply
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {reply:?}"))
}

/// The socket's peer address reaches the rate limiter: a second sign-up
/// from this connection's address is over a limit of one.
#[test]
fn limits_by_address_apply_to_real_connections() {
    let server = Server::start(&[("FEEDGATE_RATE_LIMIT__SIGNUP__LIMIT", "1")]);
    let sign_up = |name: &str| {
        let body = format!(r#"{{"username":"{name}","password":"long enough pw"}}"#);
        let request = format!(
            "POST /api/v1/users HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        status_of(&server, &request)
    };
    assert_eq!(sign_up("first"), 201);
    assert_eq!(sign_up("second"), 429);
}
