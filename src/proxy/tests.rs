//! The client's address is read from `X-Forwarded-For` only behind a trusted
//! proxy, and no client can make itself look like someone else.

use super::*;

fn nets(list: &[&str]) -> TrustedProxies {
    let nets: Vec<IpNet> = list.iter().map(|n| n.parse().expect("a CIDR")).collect();
    TrustedProxies::new(&nets)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("a socket address")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("an IP address")
}

/// The client of a connection from `peer` carrying these `X-Forwarded-For` headers.
fn client(trusted: &TrustedProxies, peer: &str, headers: &[&str]) -> ClientAddr {
    trusted.client_addr(addr(peer), headers.iter().map(|h| h.as_bytes()))
}

/// The client IP, asserting it was forwarded by `peer`.
fn forwarded(trusted: &TrustedProxies, peer: &str, headers: &[&str]) -> IpAddr {
    match client(trusted, peer, headers) {
        ClientAddr::Forwarded { client, proxy } => {
            assert_eq!(proxy, addr(peer));
            client
        }
        direct => panic!("{headers:?} from {peer}: expected forwarded, got {direct:?}"),
    }
}

const NGINX: &str = "127.0.0.1:40000";

#[test]
fn a_direct_client_cannot_name_its_own_address() {
    let trusted = nets(&["127.0.0.1/32"]);
    let peer = "198.51.100.20:5555";
    for spoof in ["203.0.113.7", "127.0.0.1", "203.0.113.7, 127.0.0.1"] {
        assert_eq!(
            client(&trusted, peer, &[spoof]),
            ClientAddr::Direct(addr(peer)),
            "{spoof}"
        );
    }
    assert_eq!(client(&trusted, peer, &[]), ClientAddr::Direct(addr(peer)));
}

#[test]
fn without_trusted_proxies_every_connection_is_direct() {
    let none = TrustedProxies::new(&[]);
    assert_eq!(
        client(&none, NGINX, &["203.0.113.7"]),
        ClientAddr::Direct(addr(NGINX))
    );
}

#[test]
fn behind_the_proxy_the_address_it_appended_is_the_client() {
    let trusted = nets(&["127.0.0.1/32"]);
    assert_eq!(forwarded(&trusted, NGINX, &["203.0.113.7"]), ip("203.0.113.7"));
    // No header from the proxy itself (a health check): the peer is the client.
    assert_eq!(client(&trusted, NGINX, &[]), ClientAddr::Direct(addr(NGINX)));
}

#[test]
fn a_client_sending_its_own_header_through_the_proxy_gets_its_real_address() {
    let trusted = nets(&["127.0.0.1/32"]);
    // nginx appends what it saw to whatever the client sent.
    for sent in [
        "6.6.6.6",
        "127.0.0.1",
        "6.6.6.6, 127.0.0.1",
        "unknown",
        "::1, garbage, 10.0.0.1",
    ] {
        let header = format!("{sent}, 203.0.113.7");
        assert_eq!(
            forwarded(&trusted, NGINX, &[&header]),
            ip("203.0.113.7"),
            "{header}"
        );
    }
    // The same spoof as a header line of its own, before the proxy's.
    assert_eq!(
        forwarded(&trusted, NGINX, &["127.0.0.1", "203.0.113.7"]),
        ip("203.0.113.7")
    );
}

#[test]
fn a_chain_of_trusted_proxies_is_walked_from_the_right() {
    // A load balancer in 10/8 in front of nginx on loopback.
    let trusted = nets(&["127.0.0.1/32", "10.0.0.0/8"]);
    assert_eq!(
        forwarded(&trusted, NGINX, &["6.6.6.6, 198.51.100.9, 10.1.2.3"]),
        ip("198.51.100.9")
    );
    // Header lines are one list, in order: here the proxy's line comes last.
    assert_eq!(
        forwarded(&trusted, NGINX, &["6.6.6.6, 198.51.100.9", "10.1.2.3"]),
        ip("198.51.100.9")
    );
    // Every hop trusted (a client inside the trusted network): the leftmost.
    assert_eq!(
        forwarded(&trusted, NGINX, &["10.0.0.5, 10.1.2.3"]),
        ip("10.0.0.5")
    );
}

#[test]
fn a_malformed_entry_ends_the_walk_at_the_last_good_address() {
    let trusted = nets(&["127.0.0.1/32", "10.0.0.0/8"]);
    // Left of the garbage nothing is vouched for: 6.6.6.6 must not win.
    for header in [
        "6.6.6.6, unknown, 10.1.2.3",
        "6.6.6.6, 1.2.3.4 5.6.7.8, 10.1.2.3",
        "6.6.6.6,_hidden,10.1.2.3",
    ] {
        assert_eq!(forwarded(&trusted, NGINX, &[header]), ip("10.1.2.3"), "{header}");
    }
    // Garbage right at the end: the proxy itself is all we know.
    for header in ["6.6.6.6, garbage", "6.6.6.6, 300.1.1.1", "6.6.6.6, fe80::1%eth0"] {
        assert_eq!(
            client(&trusted, NGINX, &[header]),
            ClientAddr::Direct(addr(NGINX)),
            "{header}"
        );
    }
    let not_utf8: &[u8] = b"6.6.6.6, \xff\xfe";
    assert_eq!(
        trusted.client_addr(addr(NGINX), [not_utf8]),
        ClientAddr::Direct(addr(NGINX))
    );
}

#[test]
fn empty_list_elements_are_skipped() {
    let trusted = nets(&["127.0.0.1/32"]);
    assert_eq!(
        forwarded(&trusted, NGINX, &["203.0.113.7, ,, "]),
        ip("203.0.113.7")
    );
    assert_eq!(
        forwarded(&trusted, NGINX, &["203.0.113.7", ""]),
        ip("203.0.113.7")
    );
    assert_eq!(client(&trusted, NGINX, &[" , "]), ClientAddr::Direct(addr(NGINX)));
}

#[test]
fn ports_brackets_and_mapped_addresses_are_understood() {
    let trusted = nets(&["127.0.0.1/32", "2001:db8:ffff::/48"]);
    let cases = [
        ("203.0.113.7:4711", "203.0.113.7"),
        ("2001:db8::7", "2001:db8::7"),
        ("[2001:db8::7]", "2001:db8::7"),
        ("[2001:db8::7]:443", "2001:db8::7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("\t203.0.113.7\t", "203.0.113.7"),
    ];
    for (entry, want) in cases {
        assert_eq!(forwarded(&trusted, NGINX, &[entry]), ip(want), "{entry}");
    }
    // A dual-stack listener sees an IPv4 proxy as ::ffff:127.0.0.1.
    assert_eq!(
        forwarded(&trusted, "[::ffff:127.0.0.1]:40000", &["203.0.113.7"]),
        ip("203.0.113.7")
    );
    assert_eq!(
        forwarded(
            &trusted,
            "[2001:db8:ffff::1]:40000",
            &["[2001:db8::7]:1, 2001:db8:ffff::2"]
        ),
        ip("2001:db8::7")
    );
}

#[test]
fn a_long_chain_stops_after_max_hops_on_a_trusted_address() {
    let trusted = nets(&["127.0.0.1/32", "10.0.0.0/8"]);
    let hops: Vec<String> = (0..100)
        .map(|i| format!("10.0.{}.{}", i / 250, i % 250 + 1))
        .collect();
    let header = format!("6.6.6.6, {}", hops.join(", "));
    let got = forwarded(&trusted, NGINX, &[&header]);
    assert!(trusted.contains(got), "{got}");
    assert_eq!(got, ip(&hops[hops.len() - MAX_HOPS]));
}

#[test]
fn networks_with_host_bits_and_mapped_peers_match() {
    let trusted = nets(&["10.1.2.3/8", "::1/128"]);
    assert!(trusted.contains(ip("10.200.0.1")));
    assert!(trusted.contains(ip("::ffff:10.0.0.1")));
    assert!(trusted.contains(ip("::1")));
    assert!(!trusted.contains(ip("11.0.0.1")));
    assert!(!trusted.contains(ip("127.0.0.1")));
}

#[test]
fn the_address_reads_well_in_a_log_line() {
    let direct = ClientAddr::Direct(addr("198.51.100.20:5555"));
    assert_eq!(direct.to_string(), "198.51.100.20:5555");
    let via = ClientAddr::Forwarded {
        client: ip("203.0.113.7"),
        proxy: addr(NGINX),
    };
    assert_eq!(via.to_string(), "203.0.113.7 via 127.0.0.1:40000");
}
