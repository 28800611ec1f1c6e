//! Static sites: create, change, delete, files and the agents allowed to publish them.
