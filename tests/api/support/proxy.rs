//! A TCP proxy that can fail: the app talks to MariaDB through it, and a test
//! cuts it to simulate the database going away (live connections dropped,
//! new ones refused), or stalls it to simulate a database that hangs
//! (nothing is answered, nothing is refused), and restores it afterwards.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct TcpProxy {
    inner: Arc<Inner>,
}

struct Inner {
    addr: SocketAddr,
    upstream: String,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    listener: Option<JoinHandle<()>>,
    connections: Vec<JoinHandle<()>>,
    /// Cut everything as soon as a client sends these bytes.
    trigger: Option<Vec<u8>>,
    /// Forward nothing more, on any connection, old or new.
    stalled: bool,
}

impl TcpProxy {
    /// Listens on a free local port and forwards to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let inner = Arc::new(Inner {
            addr: listener.local_addr().expect("a bound address"),
            upstream: upstream.to_owned(),
            state: Mutex::default(),
        });
        inner.listen(listener);
        Self { inner }
    }

    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// `url` with its `host:port` replaced by the proxy's.
    pub fn rewrite(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let userinfo = authority
            .rsplit_once('@')
            .map_or(String::new(), |(user, _)| format!("{user}@"));
        format!("{scheme}://{userinfo}{}{path}", self.addr())
    }

    /// Drops every live connection and refuses new ones (the port is closed).
    pub fn cut(&self) {
        self.inner.cut();
    }

    /// Hangs: connections stay open and new ones are accepted, but nothing
    /// a client sends from now on reaches the server (a paused database).
    pub fn stall(&self) {
        self.inner.state.lock().expect("not poisoned").stalled = true;
    }

    /// Cuts as soon as a client sends `pattern` (before forwarding it).
    pub fn cut_when_client_sends(&self, pattern: &[u8]) {
        self.inner.state.lock().expect("not poisoned").trigger = Some(pattern.to_vec());
    }

    /// Accepts connections again, on the same port (once the listener a
    /// cut aborted has let go of it).
    pub async fn restore(&self) {
        let mut attempts = 0;
        let listener = loop {
            match TcpListener::bind(self.addr()).await {
                Ok(listener) => break listener,
                Err(err) if attempts < 100 => {
                    attempts += 1;
                    let _ = err;
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                Err(err) => panic!("the proxy's port is free again: {err}"),
            }
        };
        self.inner.listen(listener);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.inner.cut();
    }
}

impl Inner {
    fn listen(self: &Arc<Self>, listener: TcpListener) {
        // Held while the task starts, so it never sees the state before its
        // own handle is in it.
        let mut state = self.state.lock().expect("not poisoned");
        let this = self.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mut state = this.state.lock().expect("not poisoned");
                if state.listener.is_none() {
                    return;
                }
                let connection = this.clone();
                state.connections.push(tokio::spawn(
                    async move { connection.forward(client).await },
                ));
            }
        });
        if let Some(old) = state.listener.replace(task) {
            old.abort();
        }
    }

    fn cut(&self) {
        let mut state = self.state.lock().expect("not poisoned");
        state.trigger = None;
        state.stalled = false;
        if let Some(listener) = state.listener.take() {
            listener.abort();
        }
        for connection in state.connections.drain(..) {
            connection.abort();
        }
    }

    async fn forward(self: Arc<Self>, client: TcpStream) {
        let Ok(server) = TcpStream::connect(&self.upstream).await else {
            return;
        };
        let (mut client_read, mut client_write) = client.into_split();
        let (mut server_read, mut server_write) = server.into_split();
        let upstream = async {
            let mut buffer = vec![0; 64 * 1024];
            // The end of the previous read, so a pattern split across reads
            // is still seen.
            let mut tail: Vec<u8> = Vec::new();
            loop {
                let n = client_read.read(&mut buffer).await?;
                if n == 0 {
                    return Ok::<_, std::io::Error>(());
                }
                let (trigger, stalled) = {
                    let state = self.state.lock().expect("not poisoned");
                    (state.trigger.clone(), state.stalled)
                };
                if stalled {
                    std::future::pending::<()>().await;
                }
                if let Some(pattern) = trigger {
                    tail.extend_from_slice(&buffer[..n]);
                    if tail.windows(pattern.len()).any(|w| w == pattern) {
                        self.cut();
                        return Ok(());
                    }
                    let keep = tail.len().saturating_sub(pattern.len());
                    tail.drain(..keep);
                }
                server_write.write_all(&buffer[..n]).await?;
            }
        };
        let downstream = tokio::io::copy(&mut server_read, &mut client_write);
        tokio::select! {
            _ = upstream => {}
            _ = downstream => {}
        }
    }
}
