//! nginx configuration: a pure renderer from store state to a tree of files,
//! and the serialized validate → snapshot → swap → reload → probe → restore
//! loop that makes a rendered tree live.

mod model;
mod render;
mod vhosts;

pub use model::{
    Access, AdminVhost, CertPaths, Ports, RESERVED_NAMES, RenderError, RenderInput, RenderedTree,
    SiteVhost, TunnelVhost, Upstreams,
};
pub use render::render;

#[cfg(test)]
mod tests;
