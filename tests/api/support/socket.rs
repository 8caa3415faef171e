//! The service on a real socket, and a plain HTTP/1 client to talk to it.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::http::Method;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::{TestResponse, json_request};

/// A server on `127.0.0.1:<free port>`, stopped when dropped.
pub struct Served {
    pub addr: SocketAddr,
    server: JoinHandle<()>,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Served {
    pub async fn start(router: Router) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let addr = listener.local_addr().expect("a bound address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self {
            addr,
            server,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> TestResponse {
        let uri = format!("http://{}{path}", self.addr);
        let request = json_request(method, &uri, body, token).map(Full::new);
        let response = self
            .client
            .request(request)
            .await
            .expect("the server answers");
        TestResponse::read(response).await
    }

    pub async fn get(&self, path: &str) -> TestResponse {
        self.call(Method::GET, path, None, None).await
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.server.abort();
    }
}
