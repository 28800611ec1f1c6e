//! Portico certificate authority: CA, admin client certificate, server certificate, agent certificates.
