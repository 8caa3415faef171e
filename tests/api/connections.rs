//! Connections on a real socket, served as `feedgate serve` serves them: a
//! client that stops reading its responses is cut off, and a request
//! refused before its body was read says the connection closes.

use std::time::{Duration, Instant};

use feedgate::config::Settings;
use feedgate::domain::Role;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

use crate::ratelimit::{generous, per_minute};
use crate::support::{Backend, TestApp, tcp};

/// `app` served by `feedgate::server::serve` on a free local port.
struct Serving {
    app: TestApp,
    addr: std::net::SocketAddr,
    server: JoinHandle<()>,
}

impl Serving {
    async fn start(adjust: impl FnOnce(&mut Settings)) -> Self {
        let app = TestApp::with_settings(Backend::Sqlite, adjust).await;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let addr = listener.local_addr().expect("an address");
        let router = feedgate::http::router(app.state.clone());
        let settings = app.state.settings.server.clone();
        let server = tokio::spawn(async move {
            feedgate::server::serve(listener, router, &settings, std::future::pending()).await;
        });
        Self { app, addr, server }
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr)
            .await
            .expect("the server accepts")
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Reads one response's head (through the blank line) and its
/// `Content-Length` body; `None` if the connection ends first.
async fn read_response(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8(head)
        .expect("an ASCII head")
        .to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |value| value.trim().parse().expect("a length"));
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.ok()?;
    Some((head, body))
}

/// Whether the server has closed the connection (end of stream or reset),
/// waiting up to a few seconds.
async fn is_closed(stream: &mut TcpStream) -> bool {
    let mut rest = Vec::new();
    match tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await {
        Ok(Ok(_)) | Ok(Err(_)) => true,
        Err(_) => false,
    }
}

fn post_head(path: &str, length: usize, extra: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: feedgate\r\ncontent-type: application/json\r\n\
         content-length: {length}\r\n{extra}\r\n"
    )
}

/// Sends a request head, then its body once the server has read the head
/// (as a client that writes them separately does), and reads the answer.
async fn post_in_two_parts(stream: &mut TcpStream, path: &str, body: &str) -> (String, Vec<u8>) {
    stream
        .write_all(post_head(path, body.len(), "").as_bytes())
        .await
        .unwrap();
    let (server, client) = (stream.peer_addr().unwrap(), stream.local_addr().unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !tcp::caught_up(server, client) {
        assert!(Instant::now() < deadline, "the server never read the head");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The server may have answered and closed already: that is the point.
    let _ = stream.write_all(body.as_bytes()).await;
    read_response(stream).await.expect("an answer")
}

/// An anonymous write is refused (401) before its body is read: the answer
/// says the connection closes, and it does, so a client does not send its
/// next request into a closed connection.
#[tokio::test]
async fn a_request_refused_before_its_body_was_read_closes_the_connection_and_says_so() {
    let served = Serving::start(generous).await;
    let mut stream = served.connect().await;

    let (head, _) = post_in_two_parts(
        &mut stream,
        "/api/v1/articles",
        &json!({"title": "T", "body": "x"}).to_string(),
    )
    .await;

    assert!(head.starts_with("http/1.1 401"), "{head}");
    assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
    assert!(is_closed(&mut stream).await, "the connection stays open");
}

/// Over a rate limit (429 at the edge) and over the body limit (413 once
/// the limit is passed): the same.
#[tokio::test]
async fn a_429_or_413_before_the_body_closes_the_connection_and_says_so() {
    let served = Serving::start(|s| {
        generous(s);
        s.rate_limit.signup = per_minute(1);
        s.server.body_limit_bytes = 1024;
    })
    .await;
    let signup = |name: &str| json!({"username": name, "password": "long enough pw"}).to_string();
    let mut first = served.connect().await;
    let (head, _) = post_in_two_parts(&mut first, "/api/v1/users", &signup("one")).await;
    assert!(head.starts_with("http/1.1 201"), "{head}");
    assert!(!head.contains("connection: close"), "{head}");

    let (head, _) = post_in_two_parts(&mut first, "/api/v1/users", &signup("two")).await;
    assert!(head.starts_with("http/1.1 429"), "{head}");
    assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
    assert!(is_closed(&mut first).await);

    // Refused once more than the limit has arrived, the rest unread.
    let mut big = served.connect().await;
    big.write_all(post_head("/api/v1/tokens", 10_000, "").as_bytes())
        .await
        .unwrap();
    big.write_all(&[b' '; 2048]).await.unwrap();
    let (head, _) = read_response(&mut big).await.expect("an answer");
    assert!(head.starts_with("http/1.1 413"), "{head}");
    assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
    assert!(is_closed(&mut big).await);
}

/// A refusal after the body was read (a wrong password) keeps the
/// connection: the next request on it is answered.
#[tokio::test]
async fn a_refusal_after_the_body_was_read_keeps_the_connection() {
    let served = Serving::start(generous).await;
    served.app.user("ada", Role::Author).await;
    let mut stream = served.connect().await;
    let body = json!({"grant_type": "password", "username": "ada", "password": "wrong"});
    let body = body.to_string();
    let request = format!("{}{body}", post_head("/api/v1/tokens", body.len(), ""));
    stream.write_all(request.as_bytes()).await.unwrap();
    let (head, _) = read_response(&mut stream).await.expect("an answer");
    assert!(head.starts_with("http/1.1 401"), "{head}");
    assert!(!head.contains("connection: close"), "{head}");

    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: feedgate\r\n\r\n")
        .await
        .unwrap();
    let (head, _) = read_response(&mut stream).await.expect("a second answer");
    assert!(head.starts_with("http/1.1 200"), "{head}");
}

/// A client that pipelines requests for a large article and never reads
/// the answers is cut off once its responses make no progress for
/// `server.send_timeout_secs`, instead of holding the connection (and its
/// send buffers) for as long as it likes.
#[tokio::test]
async fn a_client_that_never_reads_its_responses_is_cut_off() {
    let served = Serving::start(|s| {
        generous(s);
        s.server.send_timeout_secs = 1;
        s.server.header_read_timeout_secs = 60;
    })
    .await;
    let ada = served.app.user("ada", Role::Author).await;
    let body = json!({"title": "Big", "body": "x".repeat(24_000), "status": "published"});
    let article = served.app.article(&ada, body).await;
    let request = format!(
        "GET /api/v1/articles/{} HTTP/1.1\r\nhost: feedgate\r\n\r\n",
        article["id"]
    );
    const PIPELINED: usize = 500;
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(served.addr).await.expect("connected");
    let client = stream.local_addr().unwrap();
    let pipeline = request.repeat(PIPELINED);
    let (mut reader, mut writer) = stream.split();
    let sending = writer.write_all(pipeline.as_bytes());
    // The server stops reading requests while its answers wait: do not
    // wait for all of them to be taken.
    let _ = tokio::time::timeout(Duration::from_secs(1), sending).await;
    // Read nothing while the server's answers back up, until it lets the
    // connection go (or for 10 s, after which the reading below tells).
    let deadline = Instant::now() + Duration::from_secs(10);
    while tcp::server_end(served.addr, client).is_some_and(|end| end.open)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Now read: a cut-off connection ends before every answer came.
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = vec![0; 64 * 1024];
    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(5), reader.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
            Err(_) => break false,
        }
        if started.elapsed() > Duration::from_secs(30) {
            break false;
        }
    };
    let answers = received
        .windows(b"HTTP/1.1 200".len())
        .filter(|w| w == b"HTTP/1.1 200")
        .count();
    assert!(
        ended && answers < PIPELINED,
        "still open after {answers} of {PIPELINED} answers"
    );
}
