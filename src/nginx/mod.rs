//! nginx configuration: a pure renderer from store state to a tree of files,
//! and the serialized validate → snapshot → swap → reload → probe → restore
//! loop that makes a rendered tree live.

mod apply;
mod diff;
mod journal;
mod limits;
mod model;
mod reloader;
mod render;
pub mod side_by_side;
mod snapshot;
pub mod state;
mod vhosts;

pub use apply::{Applier, ApplyError, ApplyOutcome};
pub use diff::unified as unified_diff;
pub use model::{
    AdminVhost, CertPaths, Ports, RenderError, RenderInput, RenderedTree, SiteVhost, TunnelVhost, Upstreams,
    VisitorAuth,
};
pub use reloader::{NginxBinary, Probe, Reloader};
pub use render::render;
pub use snapshot::SnapshotMeta;
pub use state::{Pipeline, PipelineError};

#[cfg(test)]
pub(crate) mod tests;
