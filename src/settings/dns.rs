//! `dns.*`: the resolver the onboarding DNS check asks.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct DnsSettings {
    /// Resolver for the onboarding DNS check; the system resolver when unset.
    pub resolver: Option<SocketAddr>,
}
