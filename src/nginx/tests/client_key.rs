//! `$portico_client`, the key of every rate and connection limit, through a
//! real nginx: addresses of one IPv6 /64 share a key however nginx writes
//! them, other /64s and IPv4 addresses get their own.
//!
//! The client address is set with the realip module from a header, so one
//! loopback connection can speak for any address; nginx then writes it back
//! in its own RFC 5952 form, as it does for a real peer.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;

use super::support::{NginxProcess, free_port};
use crate::nginx::limits::client_map;

/// The key nginx computes for a client at `address`.
fn key(port: u16, address: &str) -> String {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let request = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Client: {address}\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{address}: {out}");
    out.rsplit("\r\n\r\n").next().unwrap().trim().to_string()
}

#[test]
fn clients_are_counted_per_ipv4_address_and_per_ipv6_64() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = tmp.path().join("nginx.conf");
    let pid = tmp.path().join("nginx.pid");
    fs::write(
        &conf,
        format!(
            "pid {pid};\nerror_log stderr warn;\nevents {{}}\nhttp {{\n    access_log off;\n{map}
    server {{
        listen 127.0.0.1:{port};
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Client;
        location / {{ return 200 \"$portico_client\\n\"; }}
    }}\n}}\n",
            pid = pid.display(),
            map = client_map(),
        ),
    )
    .unwrap();
    let _nginx = NginxProcess::start(tmp.path(), &conf, port);

    // Each group: addresses of one client. Within a group one key; across
    // groups, all different.
    let groups: &[(&str, &[&str])] = &[
        ("2001:db8:1:2", &["2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:0DB8:0001:0002:0:0:0:9"]),
        ("2001:db8:0:0", &["2001:db8::1", "2001:db8:0:0:1:0:0:0", "2001:db8::1:2:3:4", "2001:db8:0:0:5:6:0:0"]),
        ("2001:db8:0:1", &["2001:db8:0:1::", "2001:db8:0:1:0:0:0:7", "2001:db8::1:0:0:0:7"]),
        ("2001:db8:5:0", &["2001:db8:5::", "2001:db8:5::9", "2001:db8:5:0:1:1:1:1"]),
        ("2001:0:0:5", &["2001::5:1:2:3:4", "2001:0:0:5:0:0:0:1", "2001:0:0:5::1"]),
        ("2001:0:0:0", &["2001::", "2001::6:7:8:9", "2001:0:0:0:6:0:0:1"]),
        ("0:0:7:8", &["::7:8:1:2:3:4", "0:0:7:8:0:0:0:1"]),
        ("0:0:0:7", &["::7:1:2:3:4", "0:0:0:7:0:0:0:1"]),
        ("0:0:0:0", &["::1", "::", "::1:2:3:4"]),
        ("192.0.2.7", &["192.0.2.7"]),
        ("192.0.2.8", &["192.0.2.8"]),
    ];
    let mut keys = BTreeMap::new();
    for (want, addresses) in groups {
        for address in *addresses {
            assert_eq!(&key(port, address), want, "key of {address}");
        }
        assert!(keys.insert(want.to_string(), addresses[0]).is_none(), "{want} twice");
    }
}
