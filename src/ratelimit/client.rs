//! Who the client is: the connection's peer, unless the peer is a trusted
//! proxy, in which case the forwarding headers name it. The headers are
//! read right to left (nearest hop first), skipping trusted hops, so a
//! client cannot pick its own address by sending a forged header.

use std::net::IpAddr;

use axum::http::HeaderMap;
use axum::http::header::FORWARDED;
use forwarded_header_value::ForwardedHeaderValue;
use ipnet::IpNet;
use sha2::{Digest, Sha256};

/// A client's address as stored to recognise it later (a known client of
/// a user): hex SHA-256, so stored rows do not list addresses as such.
pub fn client_key(ip: IpAddr) -> String {
    let digest = Sha256::digest(ip.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The client's address, given the socket peer (none for in-process
/// requests, which then have no address) and the trusted proxies.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = peer?;
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let hops = forwarded_hops(headers);
    let client = hops
        .iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .or_else(|| hops.first())
        .copied();
    Some(client.unwrap_or(peer))
}

/// The `for` addresses of every `Forwarded` header, else of every
/// `X-Forwarded-For`, in order (client first). Unparsable headers count as
/// no hops: the nearest trusted proxy is then the client.
fn forwarded_hops(headers: &HeaderMap) -> Vec<IpAddr> {
    let values = |name| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect::<Vec<_>>()
            .join(",")
    };
    let forwarded = values(FORWARDED.as_str());
    let x_forwarded_for = values("x-forwarded-for");
    let parsed = if !forwarded.is_empty() {
        ForwardedHeaderValue::from_forwarded(&forwarded)
    } else if !x_forwarded_for.is_empty() {
        ForwardedHeaderValue::from_x_forwarded_for(&x_forwarded_for)
    } else {
        return Vec::new();
    };
    parsed
        .map(|value| value.iter().filter_map(|s| s.forwarded_for_ip()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for &(name, value) in pairs {
            map.append(name, HeaderValue::from_static(value));
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        let forged = headers(&[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(
            client_ip(Some(ip("203.0.113.9")), &forged, &trusted),
            Some(ip("203.0.113.9"))
        );
    }

    #[test]
    fn behind_trusted_proxies_the_nearest_untrusted_hop_is_the_client() {
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        let chain = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.0.0.2")]);
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), &chain, &trusted),
            Some(ip("198.51.100.7"))
        );
        let forwarded = headers(&[(
            "forwarded",
            "for=6.6.6.6, for=\"[2001:db8::7]:4711\";proto=https, for=10.0.0.3",
        )]);
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), &forwarded, &trusted),
            Some(ip("2001:db8::7"))
        );
    }

    #[test]
    fn a_trusted_peer_without_headers_is_the_client_and_no_peer_is_none() {
        let trusted = ["127.0.0.1/32".parse().unwrap()];
        assert_eq!(
            client_ip(Some(ip("127.0.0.1")), &HeaderMap::new(), &trusted),
            Some(ip("127.0.0.1"))
        );
        assert_eq!(client_ip(None, &HeaderMap::new(), &trusted), None);
    }
}
