//! Tests of the renderer and the apply loop, several of them against a real
//! nginx started on free loopback ports inside a temp dir.

mod apply;
pub(crate) mod authd;
mod client_key;
pub(crate) mod crash;
mod external_auth;
mod kill;
mod live;
mod load;
mod pipeline;
mod render;
mod security;
pub(crate) mod support;
