//! Certificates: ACME renewals, uploaded certificates and the admin client certificate.
