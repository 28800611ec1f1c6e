//! Onboarding: domain, DNS check and the start of provisioning.
