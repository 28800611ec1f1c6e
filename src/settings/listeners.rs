//! The loopback listeners behind nginx: the relay's two ports, authd and the
//! panel. nginx's rendered upstreams, `auth_request` and healthcheck all read
//! these settings, so each must be a fixed loopback address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::{Settings, SettingsError};

/// `portico relay`: where agents (through nginx's `wss://tunnel.<d>/`) and
/// visitors (from nginx's tunnel vhosts) arrive.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RelaySettings {
    /// Agent WebSocket side.
    pub agents_listen: SocketAddr,
    /// Visitor side; routes each connection by Host.
    pub visitors_listen: SocketAddr,
    /// Seconds a relayed connection may stay half-closed (one side ended,
    /// the other silent) before the relay closes it.
    pub half_close_timeout_secs: u32,
}

impl Default for RelaySettings {
    fn default() -> Self {
        RelaySettings {
            agents_listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9090),
            visitors_listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9080),
            half_close_timeout_secs: crate::protocol::HALF_CLOSE_TIMEOUT.as_secs() as u32,
        }
    }
}

impl Settings {
    /// The TCP listeners nginx proxies to, by settings key.
    pub fn internal_listeners(&self) -> [(&'static str, SocketAddr); 4] {
        [
            ("panel.listen", self.panel.listen),
            ("authd.listen", self.authd.listen),
            ("relay.agents_listen", self.relay.agents_listen),
            ("relay.visitors_listen", self.relay.visitors_listen),
        ]
    }

    /// Every internal listener is a loopback address with a fixed port, and
    /// no two share one: nginx must never proxy these hops off the machine,
    /// and a port nobody else binds is the only one it can point at.
    pub(super) fn validate_listeners(&self) -> Result<(), SettingsError> {
        if !(1..=3600).contains(&self.relay.half_close_timeout_secs) {
            return Err(SettingsError::invalid("relay.half_close_timeout_secs", "must be between 1 and 3600"));
        }
        let listeners = self.internal_listeners();
        for (i, &(key, addr)) in listeners.iter().enumerate() {
            if !addr.ip().to_canonical().is_loopback() {
                return Err(SettingsError::invalid(
                    key,
                    format!(
                        "{addr} is not a loopback address; nginx proxies to it, so it must be 127.0.0.1 (or another 127.x address, or [::1]) with a port"
                    ),
                ));
            }
            if addr.port() == 0 {
                return Err(SettingsError::invalid(key, "needs a fixed port (nginx is configured to proxy to it)"));
            }
            if let Some((other, _)) = listeners[..i].iter().find(|(_, a)| same_listener(*a, addr)) {
                return Err(SettingsError::invalid(key, format!("{addr} is already used by {other}")));
            }
        }
        Ok(())
    }
}

/// Two listeners collide when their ports match and their addresses match
/// (IPv4-mapped IPv6 counting as IPv4).
fn same_listener(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && a.ip().to_canonical() == b.ip().to_canonical()
}
