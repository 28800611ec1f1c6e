//! nginx configuration: renderer and the validate → swap → reload → rollback apply loop.
