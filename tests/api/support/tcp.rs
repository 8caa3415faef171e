//! The server's end of a local TCP connection as the kernel shows it in
//! `/proc/net/tcp`, so that a test can wait until a server has taken in what
//! a client sent, or has let the connection go, instead of sleeping.
//! (`tests/serve.rs` uses it too.)

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

/// TCP_ESTABLISHED in the kernel's state numbering.
const ESTABLISHED: &str = "01";

/// The server's end of one connection.
#[derive(Debug, PartialEq, Eq)]
pub struct ServerEnd {
    /// Still established: the server has neither closed nor reset it.
    pub open: bool,
    /// Bytes the client sent that the server has not read yet (while the
    /// connection waits to be accepted, everything sent).
    pub unread: u64,
}

/// Whether the server has read everything the client sent so far, or has
/// let the connection go (having read enough to answer).
pub fn caught_up(server: SocketAddr, client: SocketAddr) -> bool {
    server_end(server, client).is_none_or(|end| !end.open || end.unread == 0)
}

/// The end at `server` of the connection from `client` (both IPv4 on this
/// machine); `None` once the kernel has dropped it (a reset, or a close
/// long done).
pub fn server_end(server: SocketAddr, client: SocketAddr) -> Option<ServerEnd> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp is readable");
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (local, remote, state, queues) = (fields[1], fields[2], fields[3], fields[4]);
        if parse(local) != server || parse(remote) != client {
            return None;
        }
        let (_, unread) = queues.split_once(':').expect("tx_queue:rx_queue");
        Some(ServerEnd {
            open: state == ESTABLISHED,
            unread: u64::from_str_radix(unread, 16).expect("a hex queue length"),
        })
    })
}

/// `0100007F:1F90`: the address as the kernel holds it (network order,
/// printed as a native-endian word), then the port.
fn parse(field: &str) -> SocketAddr {
    let (ip, port) = field.split_once(':').expect("address:port");
    let ip = u32::from_str_radix(ip, 16).expect("a hex address");
    let port = u16::from_str_radix(port, 16).expect("a hex port");
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip.to_ne_bytes()), port))
}
